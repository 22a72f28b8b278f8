//! `provision watch` beside the code: a running watch prints a poison record's failure as it
//! happens (from the functions' logs), and applies a settings edit to a function's configuration
//! in place, with no `up`; a later `up` plans nothing. A test binary of its own, so no other test
//! edits function sources meanwhile (tests/watch.rs does).

mod support;

use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn watch_shows_a_poison_records_failure_and_applies_a_settings_edit_in_place() {
    let mut stack = TestStack::new("watchcfg");
    stack.set_settings(&json!({ "downstream": { "memory_mb": 256, "timeout_s": 30 } }));
    stack.up();
    let mut watch = stack.command(&["watch"]).stdout(Stdio::piped()).spawn().unwrap();
    let lines = collect_lines(watch.stdout.take().unwrap());
    let said = |needle: &'static str| {
        let lines = lines.clone();
        move || {
            let found = lines.lock().unwrap().iter().any(|l| l.contains(needle));
            async move { found }
        }
    };
    assert!(eventually(Duration::from_secs(60), said("watching")).await, "{:?}", lines.lock().unwrap());

    // A record that can never be processed: midstream sends it to the dead-letter queue and says
    // so; the running watch prints that line without being asked.
    let cloud = cloud().await;
    put_on_stream(&cloud, &format!("{}-events", stack.name), "poison", b"this is not JSON").await;
    let shown = eventually(Duration::from_secs(30), || {
        let found = lines.lock().unwrap().iter().any(|l| l.contains("midstream") && l.contains("WARN"));
        async move { found }
    })
    .await;
    assert!(shown, "watch shows the poison record's failure: {:?}", lines.lock().unwrap());

    // A settings edit: downstream's memory changes in place, with no `up` and no prompt.
    std::fs::write(
        stack.settings.as_ref().unwrap(),
        json!({ "downstream": { "memory_mb": 512, "timeout_s": 30 } }).to_string(),
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(60), said("settings applied")).await, "{:?}", lines.lock().unwrap());
    assert_eq!(function_config(&cloud, &stack, "downstream").await.memory_size(), Some(512));
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let _ = watch.wait();
    assert_eq!(stack.up()["changes"], json!([]), "the state recorded what watch applied");
    stack.down();
}
