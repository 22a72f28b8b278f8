//! `provision watch` on a `mapreduce` stack: saving the `arrays` function's source changes what the
//! API answers with no other command, and `up` afterwards plans nothing. Watch finds the program's
//! functions in its declaration, not in a list of its own.
//!
//! This edits functions/mapreduce/arrays/src/answers.rs in place and restores it, even on failure. It
//! lives in a test binary of its own, so no other test builds the functions meanwhile.

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const ORIGINAL: &str = "POST /arrays with a JSON array of integers";

struct RestoreOnDrop {
    path: PathBuf,
    original: String,
}

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        std::fs::write(&self.path, &self.original).expect("restoring the edited source");
    }
}

/// What the API tells a refused request about its usage.
async fn usage(url: &str) -> String {
    match tokio::time::timeout(Duration::from_secs(10), http().post(url, Some("application/json"), "{}")).await {
        Ok(Ok(answer)) => serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["usage"].as_str().map(str::to_string))
            .unwrap_or(answer.body),
        Ok(Err(err)) => format!("error: {err:#}"),
        Err(_) => "error: no answer within 10 s".to_string(),
    }
}

#[tokio::test]
async fn saving_an_adder_function_hot_swaps_it() {
    let mut stack = TestStack::of_program("wmr", "mapreduce");
    stack.up();
    let url = stack.output("api", "url") + "arrays";
    assert!(usage(&url).await.starts_with(ORIGINAL));

    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/mapreduce/arrays/src/answers.rs");
    let original = std::fs::read_to_string(&source).unwrap();
    assert!(original.contains(ORIGINAL), "the test edits this text of arrays/src/answers.rs: {ORIGINAL}");
    let _restore = RestoreOnDrop { path: source.clone(), original: original.clone() };

    let mut watch = stack.command(&["watch"]).stdout(Stdio::piped()).spawn().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (lines, stdout) = (lines.clone(), watch.stdout.take().unwrap());
        std::thread::spawn(move || {
            BufReader::new(stdout).lines().map_while(Result::ok).for_each(|l| lines.lock().unwrap().push(l))
        })
    };
    let said = |needle: &'static str| {
        let lines = lines.clone();
        move || {
            let found = lines.lock().unwrap().iter().any(|l| l.contains(needle));
            async move { found }
        }
    };
    assert!(eventually(Duration::from_secs(60), said("watching")).await, "{:?}", lines.lock().unwrap());
    assert!(
        lines.lock().unwrap().iter().any(|l| l.contains("arrays, mapper, reducer")),
        "watch names the program's functions: {:?}",
        lines.lock().unwrap()
    );

    let edited = "POST /arrays with a JSON array of whole numbers";
    std::fs::write(&source, original.replace(ORIGINAL, edited)).unwrap();
    let swapped = eventually(Duration::from_secs(180), || async { usage(&url).await.starts_with(edited) }).await;
    assert!(swapped, "the API never answered the new code; watch said {:?}", lines.lock().unwrap());
    assert!(eventually(Duration::from_secs(10), said("arrays live in")).await, "{:?}", lines.lock().unwrap());
    assert!(
        !lines.lock().unwrap().iter().any(|l| l.starts_with("mapper live in") || l.starts_with("reducer live in")),
        "only the edited function is swapped: {:?}",
        lines.lock().unwrap()
    );

    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let exited = eventually(Duration::from_secs(30), || {
        let done = watch.try_wait().unwrap().is_some();
        async move { done }
    })
    .await;
    if !exited {
        let _ = watch.kill();
    }
    reader.join().unwrap();
    assert!(exited, "watch exits on Ctrl-C");
    assert_eq!(stack.up()["changes"], json!([]), "after watch, up finds nothing to change");
    drop(_restore);
    stack.down();
}
