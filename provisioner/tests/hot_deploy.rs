//! `hot_deploy` (LocalStack's hot-reload code bucket) on an endpoint that lacks it: provision
//! says so plainly, falls back to uploading zips, and the pipeline works.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn hot_deploy_on_an_endpoint_without_the_bucket_falls_back_to_zips_and_says_so() {
    let mut stack = TestStack::new("hot");
    stack.set_settings(&json!({"hot_deploy": true}));
    let out = stack.provision(&["--json", "up", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no `hot-reload` code bucket") && stderr.contains("uploaded as zips"), "{stderr}");
    let state = stack.state();
    for function in ["upstream", "midstream", "downstream"] {
        assert!(state["resources"][function]["props"].get("hot_reload_dir").is_none(), "{function} runs from its zip");
    }
    let answer = http()
        .post_json(&stack.output("api", "url"), &json!({"id": "hot", "message": "m", "timestamp": 1}))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"message":"success"}"#));
    stack.down();
}
