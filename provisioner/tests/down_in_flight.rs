//! `down` while records are in flight leaves nothing that blocks the next `up`: it deletes what
//! starts the stack's work first (the API, the mappings) and the functions' log groups last, and
//! a log group that an invocation still running made again after its deletion is recognised as
//! the stack's and deleted again.

mod support;

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::fault_proxy::FaultProxy;
use support::*;

/// Posts `count` records at once to the stack's API.
async fn burst(stack: &TestStack, round: usize, count: usize) {
    let url = stack.output("api", "url");
    let posts = (0..count).map(|i| {
        let url = url.clone();
        async move {
            let record = json!({"id": format!("r{round}-{i}"), "message": "in flight", "timestamp": 1});
            http().post_json(&url, &record).await
        }
    });
    for answer in futures::future::join_all(posts).await {
        assert_eq!(answer.expect("the API answers").status, 200);
    }
}

#[tokio::test]
async fn down_right_after_a_burst_leaves_nothing_that_blocks_the_next_up_ten_times() {
    let mut stack = TestStack::new("inflight");
    for round in 0..10 {
        stack.up();
        burst(&stack, round, 20).await;
        // `down` at once: records are still on their way through the functions.
        stack.down();
    }
}

#[tokio::test]
async fn a_log_group_made_again_while_down_runs_is_deleted_again() {
    let proxy = FaultProxy::start(ENDPOINT);
    let mut stack = TestStack::new("remade");
    stack.up();
    stack.endpoint = proxy.url.clone();
    // As an invocation still running would: write to midstream's log group just after `down`
    // deleted it (the local cloud then makes the group again, without the stack's mark).
    let group = format!("/aws/lambda/{}-midstream", stack.name);
    let fired = Arc::new(AtomicBool::new(false));
    proxy.choose({
        let (group, fired) = (group.clone(), fired.clone());
        move |call| {
            if call.operation.ends_with("DeleteLogGroup") && !fired.swap(true, Ordering::SeqCst) {
                let group = group.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(150));
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    runtime.block_on(async {
                        cloud().await.logs.create_log_group().log_group_name(&group).send().await.unwrap();
                    });
                });
            }
            None
        }
    });
    let said = stack.ok(&["down", "--yes"]);
    stack.forget();
    assert!(fired.load(Ordering::SeqCst), "down deleted the log groups");
    assert!(said.contains(&format!("log group {group}: made again")), "down says what it deleted again:\n{said}");
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "down left something");

    // The next `up` of the same stack finds nothing in its way.
    stack.endpoint = ENDPOINT.to_string();
    stack.up();
    stack.down();
}
