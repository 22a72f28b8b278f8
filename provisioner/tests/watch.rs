//! `provision watch` end to end: saving a function's source changes what the API answers with
//! no other command; a broken save keeps the old code answering; the fixed save recovers; a panic
//! in the swapped code fails its requests without hanging them; the state stays true (a later
//! `up` plans no change).
//!
//! This edits functions/upstream/src/api.rs in place and restores it, even on failure. It lives
//! in a test binary of its own, so no other test builds the functions meanwhile.

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const ORIGINAL: &str = r#"json_response(200, &json!({"message": "success"}))"#;

/// Puts a source file back as it was when dropped.
struct RestoreOnDrop {
    path: PathBuf,
    original: String,
}

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        std::fs::write(&self.path, &self.original).expect("restoring the edited source");
    }
}

/// Saves the source the way editors do: write a temporary file, then rename it over the original.
fn save(path: &PathBuf, content: &str) {
    let tmp = path.with_extension("rs.tmp-save");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn answer(url: &str) -> String {
    let body = json!({"id": "watch-probe", "message": "m", "timestamp": 1});
    match tokio::time::timeout(Duration::from_secs(10), http().post_json(url, &body)).await {
        Ok(Ok(response)) => response.body,
        Ok(Err(err)) => format!("error: {err:#}"),
        Err(_) => "error: no answer within 10 s".to_string(),
    }
}

#[tokio::test]
async fn saving_a_function_source_hot_swaps_what_the_api_answers() {
    let mut stack = TestStack::new("watch");
    stack.up();
    let url = stack.output("api", "url");
    assert_eq!(answer(&url).await, r#"{"message":"success"}"#);

    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/upstream/src/api.rs");
    let original = std::fs::read_to_string(&source).unwrap();
    assert!(original.contains(ORIGINAL), "the test edits this line of api.rs: {ORIGINAL}");
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
    assert!(
        eventually(Duration::from_secs(60), said("watching")).await,
        "watch did not start: {:?}",
        lines.lock().unwrap()
    );

    // 1. A real change goes live with no other command.
    save(&source, &original.replace(ORIGINAL, r#"json_response(200, &json!({"message": "success-v2"}))"#));
    let v2 = r#"{"message":"success-v2"}"#;
    let swapped = eventually(Duration::from_secs(180), || async { answer(&url).await == v2 }).await;
    assert!(swapped, "the API never answered the new code; watch said {:?}", lines.lock().unwrap());
    assert!(
        eventually(Duration::from_secs(10), said("upstream live in")).await,
        "watch reports the swap: {:?}",
        lines.lock().unwrap()
    );

    // 2. A broken save: the compiler fails, the old code keeps answering, watch keeps going.
    save(
        &source,
        &format!(
            "{}\nfn broken( {{\n",
            original.replace(ORIGINAL, r#"json_response(200, &json!({"message": "never"}))"#)
        ),
    );
    assert!(eventually(Duration::from_secs(180), said("hot-swap failed")).await, "{:?}", lines.lock().unwrap());
    assert_eq!(answer(&url).await, v2, "a broken build must leave the previous code live");

    // 3. The fixed save recovers.
    save(&source, &original.replace(ORIGINAL, r#"json_response(200, &json!({"message": "success-v3"}))"#));
    let v3 = r#"{"message":"success-v3"}"#;
    assert!(
        eventually(Duration::from_secs(180), || async { answer(&url).await == v3 }).await,
        "{:?}",
        lines.lock().unwrap()
    );

    // 4. A panic in the hot-swapped logic (a library beside the host on a local cloud) unwinds
    // into the host's Lambda runtime, which catches it and reports it as the invocation's error,
    // request after request, as a single binary does.
    save(&source, &original.replace(ORIGINAL, r#"panic!("a panic in the swapped logic")"#));
    let caught = "Lambda panicked: a panic in the swapped logic";
    let failing = eventually(Duration::from_secs(180), || async { answer(&url).await.contains(caught) }).await;
    assert!(failing, "{:?}", lines.lock().unwrap());
    for _ in 0..3 {
        let again = answer(&url).await;
        assert!(again.contains(caught), "the runtime survives the panic: {again}");
    }

    // 5. Back to the original source; Ctrl-C stops watch cleanly.
    save(&source, &original);
    let back =
        eventually(Duration::from_secs(180), || async { answer(&url).await == r#"{"message":"success"}"# }).await;
    assert!(back, "{:?}", lines.lock().unwrap());
    // Wait for the swap's report first, so Ctrl-C arrives between swaps as a user's would...
    let swaps = || lines.lock().unwrap().iter().filter(|l| l.starts_with("upstream live in")).count();
    assert!(eventually(Duration::from_secs(30), || async { swaps() >= 4 }).await, "{:?}", lines.lock().unwrap());
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    // ...and never wait forever for the exit.
    let exited = eventually(Duration::from_secs(30), || {
        let done = watch.try_wait().unwrap().is_some();
        async move { done }
    })
    .await;
    if !exited {
        let _ = watch.kill();
    }
    assert!(exited, "watch must exit on Ctrl-C: {:?}", lines.lock().unwrap());
    let status = watch.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "watch exits cleanly on Ctrl-C: {status:?}");
    assert!(lines.lock().unwrap().iter().any(|l| l.contains("stopped watching")));

    // 6. The state recorded what watch deployed: `up` plans no change.
    assert_eq!(stack.up()["changes"], json!([]), "after watch, up must find nothing to change");
    stack.down();
}
