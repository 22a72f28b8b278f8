//! A program of the user's own, outside this repository: a project whose `provision.json` names a
//! command that prints the declaration (docs/program.md). The document is the interface: a Python
//! script (the example in docs/program.md, run as written) is planned, deployed and deleted, and
//! every way a program can fail gets its own error with nothing changed.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use support::*;

/// A project folder outside the repository with `provision.json` naming `command`, and
/// `declare.py` holding `script`.
fn project(label: &str, command: &[&str], script: &str) -> Scratch {
    let dir = Scratch::new(&format!("project-{label}"));
    let file = json!({ "program": { "name": "queues", "command": command } });
    std::fs::write(dir.join("provision.json"), file.to_string()).unwrap();
    std::fs::write(dir.join("declare.py"), script).unwrap();
    dir
}

/// `provision --stack <stack> <args>` run in the project `dir` (a program has 5 s to answer).
fn provision(dir: &Path, stack: &str, args: &[&str]) -> Output {
    project_command(dir, stack, args).env("PROVISION_PROGRAM_TIMEOUT", "5").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Python example of docs/program.md, as written there.
fn documented_example() -> String {
    let doc = std::fs::read_to_string(workspace().join("docs/program.md")).unwrap();
    let start = doc.find("```python\n").expect("docs/program.md has a Python example") + "```python\n".len();
    doc[start..][..doc[start..].find("```").unwrap()].to_string()
}

#[tokio::test]
async fn a_declaration_written_by_a_python_script_is_planned_deployed_and_deleted() {
    require_local_cloud();
    let dir = project("python", &["python3", "declare.py"], &documented_example());
    let stack = format!("py{}", std::process::id());

    let synth = provision(&dir, &stack, &["synth"]);
    assert!(synth.status.success(), "{}", text(&synth.stderr));
    let document: Value = serde_json::from_slice(&synth.stdout).unwrap();
    assert_eq!(document["resources"].as_array().unwrap().len(), 2, "{document}");

    let up = provision(&dir, &stack, &["up", "--yes"]);
    assert!(up.status.success(), "{}\n{}", text(&up.stdout), text(&up.stderr));
    assert!(text(&up.stdout).contains(&format!("Stack `{stack}` (queues)")), "{}", text(&up.stdout));

    let cloud = cloud().await;
    let jobs = cloud.sqs.get_queue_url().queue_name(format!("{stack}-jobs")).send().await.unwrap();
    let jobs_url = jobs.queue_url().unwrap().to_string();
    let dead = cloud.sqs.get_queue_url().queue_name(format!("{stack}-dead-letters")).send().await.unwrap();
    let attributes = cloud
        .sqs
        .get_queue_attributes()
        .queue_url(&jobs_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let redrive: Value = serde_json::from_str(
        attributes.attributes().unwrap().get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy).unwrap(),
    )
    .unwrap();
    assert!(
        redrive["deadLetterTargetArn"].as_str().unwrap().ends_with(&format!("{stack}-dead-letters")),
        "the reference became the dead-letter queue's ARN: {redrive}"
    );
    let tags = cloud.sqs.list_queue_tags().queue_url(dead.queue_url().unwrap()).send().await.unwrap();
    assert_eq!(tags.tags().unwrap().get("provision:stack"), Some(&stack), "the engine wrote the mark");

    let outputs = provision(&dir, &stack, &["outputs"]);
    assert!(text(&outputs.stdout).contains(&jobs_url), "the export resolves: {}", text(&outputs.stdout));
    let plan = provision(&dir, &stack, &["plan"]);
    assert!(text(&plan.stdout).contains("No changes."), "{}", text(&plan.stdout));

    // The keys every stack has are the engine's, for a project's program too.
    std::fs::write(dir.join("stack.json"), json!({ "protect": true }).to_string()).unwrap();
    let refused = provision(&dir, &stack, &["down", "--yes"]);
    assert!(!refused.status.success(), "a protected project's down is refused");
    assert!(text(&refused.stderr).contains("jobs (SQS queue)"), "{}", text(&refused.stderr));
    std::fs::remove_file(dir.join("stack.json")).unwrap();

    let down = provision(&dir, &stack, &["down", "--yes"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(resources_named(&cloud, &stack).await, Vec::<String>::new(), "down leaves nothing");
    assert!(!dir.join("state").join(format!("{stack}.json")).exists(), "the state is gone with the stack");
}

#[tokio::test]
async fn each_way_a_program_can_fail_gets_its_error_and_changes_nothing() {
    require_local_cloud();
    let good = documented_example();
    let python = ["python3", "declare.py"];
    let replaced = |from: &str, to: &str| {
        assert!(good.contains(from), "the example has `{from}`");
        good.replacen(from, to, 1)
    };
    let cases: Vec<(&str, Vec<&str>, String, Vec<&str>)> = vec![
        (
            "missing",
            vec!["no-such-command-here"],
            good.clone(),
            vec!["running program `queues` (`no-such-command-here`"],
        ),
        (
            "exits",
            python.to_vec(),
            "import sys\nprint('settings: retention must be a number', file=sys.stderr)\nsys.exit(3)\n".into(),
            vec!["exited with status 3", "| settings: retention must be a number", "nothing was changed"],
        ),
        (
            "hangs",
            python.to_vec(),
            "import time\ntime.sleep(60)\n".into(),
            vec!["did not answer within 5 s; it was stopped and nothing was changed"],
        ),
        (
            "panics",
            python.to_vec(),
            "raise RuntimeError('boom')\n".into(),
            vec!["exited with status 1", "RuntimeError: boom"],
        ),
        (
            "chatty",
            python.to_vec(),
            "print('building...')\n".into(),
            vec!["did not print a declaration", "\"building...\""],
        ),
        (
            "version",
            python.to_vec(),
            replaced("\"version\": 1", "\"version\": 7"),
            vec!["with version 7: this provision reads version 1"],
        ),
        (
            "kind",
            python.to_vec(),
            replaced("\"kind\": \"sqs_queue\"", "\"kind\": \"sqs_queueue\""),
            vec!["there is no kind `sqs_queueue`"],
        ),
        (
            "property",
            python.to_vec(),
            replaced("\"retention_seconds\": 1209600", "\"retention\": 1209600"),
            vec!["unknown property `retention`: the properties of a SQS queue are name, retention_seconds"],
        ),
        (
            "nested",
            python.to_vec(),
            replaced("\"max_receive_count\": 5", "\"max_receive_count\": 5, \"colour\": 1"),
            vec!["unknown property `redrive.colour`"],
        ),
        (
            "reference",
            python.to_vec(),
            replaced("dead-letters.arn", "dead-letter.arn"),
            vec!["refers to `dead-letter`, which is not declared"],
        ),
        (
            "output",
            python.to_vec(),
            replaced("dead-letters.arn", "dead-letters.id"),
            vec!["has no such output: its outputs are arn, url, name"],
        ),
        (
            "duplicate",
            python.to_vec(),
            replaced("\"id\": \"jobs\"", "\"id\": \"dead-letters\""),
            vec!["resource id `dead-letters` is declared twice"],
        ),
    ];
    for (label, command, script, expected) in cases {
        let dir = project(label, &command, &script);
        let stack = format!("bad{label}{}", std::process::id());
        let up = provision(&dir, &stack, &["up", "--yes"]);
        let said = text(&up.stderr);
        assert!(!up.status.success(), "{label}: up must fail");
        for words in expected {
            assert!(said.contains(words), "{label}: says `{words}`:\n{said}");
        }
        assert!(!dir.join("state").join(format!("{stack}.json")).exists(), "{label}: no state written");
        assert_eq!(resources_named(&cloud().await, &stack).await, Vec::<String>::new(), "{label}: nothing made");
    }
}
