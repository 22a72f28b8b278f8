//! `provision new`, tried as a new user would: a project written outside this repository, its
//! stack deployed to the local cloud, its API answering with the function really writing to its
//! table, an edit of the function's logic hot-swapped by `watch` and answering the next request,
//! `plan` empty, `down` leaving nothing. And what `new` refuses, writing nothing.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use support::*;

/// `provision <args>` for the project `dir`, sharing this workspace's compiled dependencies.
fn run(dir: &Path, stack: &str, args: &[&str]) -> Output {
    project_command(dir, stack, args).env("CARGO_TARGET_DIR", workspace().join("target")).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh folder outside the repository.
fn folder(label: &str) -> Scratch {
    Scratch::new(&format!("new-{label}"))
}

/// The text stored for `id` in the project's table, if any.
async fn stored(table: &str, id: &str) -> Option<String> {
    let key = aws_sdk_dynamodb::types::AttributeValue::S(id.into());
    let item = cloud().await.dynamodb.get_item().table_name(table).key("id", key).send().await.ok()?;
    item.item()?.get("text")?.as_s().ok().cloned()
}

#[tokio::test]
async fn a_new_project_is_deployed_answers_hot_swaps_and_goes() {
    require_local_cloud();
    let parent = folder("http");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
        .args(["new", "notes", "--dir"])
        .arg(&*parent)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dir = parent.join("notes");
    for file in ["Cargo.toml", "Cargo.lock", "provision.json", ".gitignore", "README.md", "state/.gitkeep"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let stack = format!("new{}", std::process::id());

    let up = run(&dir, &stack, &["up", "--yes"]);
    assert!(up.status.success(), "{}\n{}", text(&up.stdout), text(&up.stderr));
    let outputs: Value = serde_json::from_slice(&run(&dir, &stack, &["outputs", "--json"]).stdout).unwrap();
    let (url, table) =
        (outputs["api_url"].as_str().unwrap().to_string(), outputs["table"].as_str().unwrap().to_string());
    let http = http();
    let answer = http.post_json(&url, &json!({"id": "1", "text": "hello"})).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"stored":"1"}"#));
    assert_eq!(stored(&table, "1").await.as_deref(), Some("hello"), "the function wrote to its table");
    let refused = http.post_json(&url, &json!({"text": "no id"})).await.unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);

    // watch: an edit of the logic answers the next request.
    let mut watch = project_command(&dir, &stack, &["watch"])
        .env("CARGO_TARGET_DIR", workspace().join("target"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_lines(watch.stdout.take().unwrap());
    let watching = eventually(Duration::from_secs(60), || {
        let found = lines.lock().unwrap().iter().any(|l| l.contains("watching"));
        async move { found }
    });
    assert!(watching.await, "{:?}", lines.lock().unwrap());
    let logic = dir.join("functions/notes-api/src/logic.rs");
    let source = std::fs::read_to_string(&logic).unwrap();
    let edited =
        source.replace("(\"text\".to_string(), body_text)", "(\"text\".to_string(), body_text.to_uppercase())");
    assert_ne!(edited, source, "the template's logic stores the text as given");
    std::fs::write(&logic, edited).unwrap();
    let swapped = eventually(Duration::from_secs(120), || {
        let (http, url, table) = (http.clone(), url.clone(), table.clone());
        async move {
            let _ = http.post_json(&url, &json!({"id": "2", "text": "after the edit"})).await;
            stored(&table, "2").await.as_deref() == Some("AFTER THE EDIT")
        }
    })
    .await;
    assert!(swapped, "the edited logic answered: {:?}", lines.lock().unwrap());
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let _ = watch.wait();

    let plan = run(&dir, &stack, &["plan"]);
    assert!(text(&plan.stdout).contains("No changes"), "{}\n{}", text(&plan.stdout), text(&plan.stderr));
    let down = run(&dir, &stack, &["down", "--yes"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(resources_named(&cloud().await, &stack).await, Vec::<String>::new(), "down leaves nothing");
}

#[test]
fn new_refuses_a_bad_name_an_unknown_template_and_a_folder_in_use_writing_nothing() {
    let parent = folder("refused");
    let new = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
            .arg("new")
            .args(args)
            .arg("--dir")
            .arg(&*parent)
            .output()
            .unwrap()
    };
    let cases: [(&[&str], &str); 3] = [
        (&["Notes_App"], "must be 1-24 lowercase letters, digits or '-'"),
        (&["notes", "--template", "grpc"], "there is no template `grpc`: the templates are `http`"),
        (&["taken"], "exists and is not empty: nothing was written"),
    ];
    std::fs::create_dir_all(parent.join("taken")).unwrap();
    std::fs::write(parent.join("taken/mine.txt"), "the user's").unwrap();
    for (args, words) in cases {
        let out = new(args);
        assert!(!out.status.success(), "{args:?} is refused");
        assert!(text(&out.stderr).contains(words), "{args:?} says `{words}`: {}", text(&out.stderr));
    }
    let left: Vec<_> = std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["taken"], "nothing written beside the folder in use");
    assert_eq!(std::fs::read_to_string(parent.join("taken/mine.txt")).unwrap(), "the user's");
    assert_eq!(std::fs::read_dir(parent.join("taken")).unwrap().count(), 1, "nothing written into it");
}

#[tokio::test]
async fn a_new_stream_project_archives_what_is_put_on_its_stream_and_its_consumer_reads_it() {
    require_local_cloud();
    let parent = folder("stream");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
        .args(["new", "clicks", "--template", "stream", "--dir"])
        .arg(&*parent)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dir = parent.join("clicks");
    let stack = format!("newst{}", std::process::id());
    let up = run(&dir, &stack, &["up", "--yes"]);
    assert!(up.status.success(), "{}\n{}", text(&up.stdout), text(&up.stderr));

    let cloud = cloud().await;
    put_on_stream(&cloud, &format!("{stack}-events"), "k", b"a click").await;
    let bucket = format!("{stack}-archive-000000000000-us-east-1");
    let archived = eventually(Duration::from_secs(90), || {
        let (cloud, bucket) = (&cloud, bucket.clone());
        async move {
            let Ok(listed) = cloud.s3.list_objects_v2().bucket(&bucket).prefix("records/").send().await else {
                return false;
            };
            for object in listed.contents() {
                let got = cloud.s3.get_object().bucket(&bucket).key(object.key().unwrap()).send().await.unwrap();
                if got.body.collect().await.unwrap().to_vec().windows(7).any(|w| w == b"a click") {
                    return true;
                }
            }
            false
        }
    })
    .await;
    assert!(archived, "the record put on the stream lands in the bucket");
    let logged = eventually(Duration::from_secs(60), || {
        let logs = run(&dir, &stack, &["logs", "--since", "10m"]);
        let found = text(&logs.stdout).contains("record: a click");
        async move { found }
    })
    .await;
    assert!(logged, "the consumer read it: {}", text(&run(&dir, &stack, &["logs", "--since", "10m"]).stdout));

    let plan = run(&dir, &stack, &["plan"]);
    assert!(text(&plan.stdout).contains("No changes"), "{}\n{}", text(&plan.stdout), text(&plan.stderr));
    let down = run(&dir, &stack, &["down", "--yes"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(resources_named(&cloud, &stack).await, Vec::<String>::new(), "down leaves nothing");
}
