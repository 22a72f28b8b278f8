//! `provision logs` on the local cloud: a posted request shows up as one line from each function
//! (accepted by upstream, written by midstream, inserted by downstream), in time order, within a
//! few seconds; a refused request shows upstream's reason; `--filter` and unknown names behave.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// `provision --json logs <args>`, parsed line by line.
fn log_lines(stack: &TestStack, args: &[&str]) -> Vec<Value> {
    let mut command = vec!["--json", "logs"];
    command.extend_from_slice(args);
    stack.ok(&command).lines().map(|l| serde_json::from_str(l).expect("logs --json prints JSON lines")).collect()
}

#[tokio::test]
async fn a_request_is_told_by_one_line_from_each_function() {
    let mut stack = TestStack::new("logs");
    stack.up();
    let url = stack.output("api", "url");
    let answer = http().post_json(&url, &json!({"id": "logged-1", "message": "m", "timestamp": 1})).await.unwrap();
    assert_eq!(answer.status, 200);
    let refused = http().post_json(&url, &json!({"id": "", "message": "m", "timestamp": 1})).await.unwrap();
    assert_eq!(refused.status, 400);

    let mut lines = Vec::new();
    let told = eventually(Duration::from_secs(30), || {
        lines = log_lines(&stack, &["--since", "5m"]);
        let has = |function: &str, text: &str| {
            lines.iter().any(|l| l["function"] == function && l["message"].as_str().unwrap().contains(text))
        };
        let all = has("upstream", "request accepted")
            && has("midstream", "batch done")
            && has("downstream", "batch inserted")
            && has("upstream", "request rejected");
        async move { all }
    })
    .await;
    assert!(told, "each function's line appears in provision logs: {lines:#?}");
    let stamps: Vec<i64> = lines.iter().map(|l| l["timestamp_ms"].as_i64().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "merged in time order");
    assert!(!lines.iter().any(|l| l["message"].as_str().unwrap().starts_with("REPORT")), "platform lines left out");

    let midstream_only = log_lines(&stack, &["midstream", "--since", "5m"]);
    assert!(!midstream_only.is_empty() && midstream_only.iter().all(|l| l["function"] == "midstream"));
    let filtered = log_lines(&stack, &["--since", "5m", "--filter", "rejected"]);
    assert!(!filtered.is_empty() && filtered.iter().all(|l| l["message"].as_str().unwrap().contains("rejected")));

    let out = stack.provision(&["logs", "sidestream"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("upstream, midstream, downstream"));
    stack.down();
}
