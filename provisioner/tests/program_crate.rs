//! A program crate of the user's own, outside this repository: the Rust example of
//! docs/program.md, depending on the `declaration` crate by path, named by `package` in
//! `provision.json`. The engine builds it, runs it, keeps its answer while nothing it depends on
//! changed, deploys what it declares and deletes it; a crate that does not build, a program that
//! panics and a setting it refuses each get their error with nothing changed.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::*;

/// A text block of docs/program.md: the first fenced block of `language` after `after`.
fn documented(after: &str, language: &str) -> String {
    let doc = std::fs::read_to_string(workspace().join("docs/program.md")).unwrap();
    let from = doc.find(after).unwrap_or_else(|| panic!("docs/program.md has `{after}`"));
    let fence = format!("```{language}\n");
    let start = from + doc[from..].find(&fence).expect("a fenced block follows") + fence.len();
    doc[start..][..doc[start..].find("```").unwrap()].to_string()
}

/// The documented project in a folder outside the repository, its program's `main.rs` being
/// `main` and its dependency pointing at this checkout's declaration crate. Every run of the
/// program appends a line to `runs.log` (test instrumentation: a real program reads nothing but
/// its request and writes nothing).
fn project(label: &str, main: &str) -> Scratch {
    let dir = Scratch::new(&format!("crate-{label}"));
    std::fs::create_dir_all(dir.join("program/src")).unwrap();
    let declaration = workspace().join("provisioner/declaration");
    let manifest = documented("`program/Cargo.toml`", "toml")
        .replace("/path/to/provision/provisioner/declaration", &declaration.display().to_string());
    assert!(manifest.contains(&declaration.display().to_string()), "the documented path is replaced");
    std::fs::write(dir.join("Cargo.toml"), documented("at the project's root", "toml")).unwrap();
    std::fs::write(dir.join("program/Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("program/src/main.rs"), counted(main)).unwrap();
    let file = documented("either as a package", "json");
    std::fs::write(dir.join("provision.json"), file).unwrap();
    dir
}

/// `main` with a line appended to `runs.log` each time `declare` runs.
fn counted(main: &str) -> String {
    let start = "fn declare(request: &Request) -> Result<StackDef, String> {\n";
    assert!(main.contains(start), "the program has `declare`");
    main.replacen(
        start,
        &format!(
            "{start}    use std::io::Write;\n    let mut log = std::fs::OpenOptions::new().create(true).append(true)\
             .open(\"runs.log\").unwrap();\n    writeln!(log, \"ran\").unwrap();\n"
        ),
        1,
    )
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs.log")).map_or(0, |log| log.lines().count())
}

/// `provision --stack <stack> <args>` run in the project `dir`.
fn provision(dir: &Path, stack: &str, args: &[&str]) -> Output {
    project_command(dir, stack, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn documented_main() -> String {
    documented("`program/src/main.rs`", "rust")
}

#[tokio::test]
async fn a_program_crate_is_built_run_once_per_change_deployed_and_deleted() {
    require_local_cloud();
    let dir = project("good", &documented_main());
    let stack = format!("crate{}", std::process::id());

    let synth = provision(&dir, &stack, &["synth"]);
    assert!(synth.status.success(), "{}", text(&synth.stderr));
    let document: Value = serde_json::from_slice(&synth.stdout).unwrap();
    assert_eq!(document["resources"][1]["properties"]["retention_seconds"], 345_600, "{document}");
    assert_eq!(runs(&dir), 1, "built and run once");

    let again = provision(&dir, &stack, &["synth"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(again.stdout, synth.stdout, "the same declaration");
    assert_eq!(runs(&dir), 1, "nothing changed: the kept answer, the program not run again");

    let up = provision(&dir, &stack, &["up", "--yes"]);
    assert!(up.status.success(), "{}\n{}", text(&up.stdout), text(&up.stderr));
    let cloud = cloud().await;
    assert_eq!(resources_named(&cloud, &stack).await.len(), 2, "both queues made");
    let plan = provision(&dir, &stack, &["plan"]);
    assert!(text(&plan.stdout).contains("No changes"), "{}", text(&plan.stdout));
    let outputs = provision(&dir, &stack, &["outputs", "--json"]);
    let outputs: Value = serde_json::from_slice(&outputs.stdout).unwrap();
    assert!(outputs["jobs_url"].as_str().unwrap().ends_with(&format!("{stack}-jobs")), "{outputs}");
    let ran = runs(&dir);
    assert_eq!(ran, 1, "up, plan and outputs used the kept answer");

    // A setting changes the request: the program runs again, and the plan says what changes.
    std::fs::write(dir.join("stack.json"), r#"{"jobs_retention_seconds": 86400}"#).unwrap();
    let plan = provision(&dir, &stack, &["plan"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(text(&plan.stdout).contains("retention_seconds"), "{}", text(&plan.stdout));
    assert_eq!(runs(&dir), ran + 1, "a new request: the program ran");

    // An edit of the program: cargo rebuilds it, and it runs again.
    let main = std::fs::read_to_string(dir.join("program/src/main.rs")).unwrap();
    std::fs::write(dir.join("program/src/main.rs"), main.replace("max_receive_count: 5", "max_receive_count: 7"))
        .unwrap();
    let plan = provision(&dir, &stack, &["plan"]);
    assert!(text(&plan.stdout).contains("update in place (redrive, retention_seconds)"), "{}", text(&plan.stdout));
    assert_eq!(runs(&dir), ran + 2, "a rebuilt program: it ran");

    let down = provision(&dir, &stack, &["down", "--yes"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(resources_named(&cloud, &stack).await, Vec::<String>::new(), "down leaves nothing");
}

#[tokio::test]
async fn a_program_crate_that_does_not_build_panics_or_refuses_its_settings_changes_nothing() {
    require_local_cloud();
    let main = documented_main();
    let cases: Vec<(&str, String, Option<&str>, Vec<&str>)> = vec![
        (
            "build",
            main.replace("let mut stack", "let mut stack = undefined_thing;\n    let mut stack"),
            None,
            vec![
                "cannot find value `undefined_thing`",
                "does not build: cargo's errors are above",
                "nothing was changed",
            ],
        ),
        (
            "panic",
            main.replace("stack.add(\"jobs\", jobs)", "stack.add(\"dead-letters\", jobs)"),
            None,
            vec!["exited with status 101", "resource id `dead-letters` declared twice"],
        ),
        (
            "setting",
            main.clone(),
            Some(r#"{"jobs_retention_seconds": "long"}"#),
            vec!["exited with status 2", "the setting `jobs_retention_seconds` is not what this program reads"],
        ),
    ];
    for (label, main, settings, expected) in cases {
        let dir = project(label, &main);
        if let Some(settings) = settings {
            std::fs::write(dir.join("stack.json"), settings).unwrap();
        }
        let stack = format!("badcrate{label}{}", std::process::id());
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

#[tokio::test]
async fn watch_applies_an_edit_of_the_program_crate_as_it_applies_a_settings_edit() {
    require_local_cloud();
    let dir = project("watch", &documented_main());
    let stack = format!("crwatch{}", std::process::id());
    let up = provision(&dir, &stack, &["up", "--yes"]);
    assert!(up.status.success(), "{}", text(&up.stderr));

    let mut watch = project_command(&dir, &stack, &["watch"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let lines = collect_lines(watch.stdout.take().unwrap());
    let said = |needle: &'static str| {
        let lines = lines.clone();
        move || {
            let found = lines.lock().unwrap().iter().any(|l| l.contains(needle));
            async move { found }
        }
    };
    let wait = Duration::from_secs(60);
    assert!(eventually(wait, said("watching")).await, "{:?}", lines.lock().unwrap());

    // An edit that declares the same stack: rebuilt, run, nothing to do.
    let main = dir.join("program/src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{source}\n// an edit that changes nothing declared\n")).unwrap();
    assert!(eventually(wait, said("program changed: the stack already matches")).await, "{:?}", lines.lock().unwrap());

    // An edit that changes a queue: more than configuration, so the plan and the hint to run up.
    std::fs::write(&main, source.replace("345_600", "86_400")).unwrap();
    assert!(eventually(wait, said("run `provision up` to apply it")).await, "{:?}", lines.lock().unwrap());
    let printed = lines.lock().unwrap().join("\n");
    assert!(printed.contains("update in place (retention_seconds)"), "{printed}");
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let _ = watch.wait();

    let up = provision(&dir, &stack, &["up", "--yes"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let plan = provision(&dir, &stack, &["plan"]);
    assert!(text(&plan.stdout).contains("No changes"), "{}", text(&plan.stdout));
    let down = provision(&dir, &stack, &["down", "--yes"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(resources_named(&cloud().await, &stack).await, Vec::<String>::new(), "down leaves nothing");
}
