//! The API is protected and every log is the stack's own, end to end on the local cloud:
//! - with `"auth": "api_key"`, a request without the key is refused (403) and reaches nothing, one
//!   with it is accepted and arrives; a burst above the throttle gets 429s and every accepted
//!   record arrives; the key's value is nowhere in the state folder, the outputs or the functions'
//!   environment; the key requirement removed, the throttle raised or the plan unbound out of
//!   band is reported and repaired;
//! - every function's log group is the stack's (marked, with the retention, written only by its
//!   function's role), a retention change is an update in place, and `down` leaves none;
//! - with `"auth": "iam"`, on a MiniStack that verifies signatures, only callers signing as a
//!   principal allowed to invoke the API get through, and `bench` signs its requests.

mod support;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use provisioner::http::{CallerAuth, HttpClient};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

fn record(id: &str) -> String {
    json!({ "id": id, "message": "protected", "timestamp": 1_764_500_000_000u64 }).to_string()
}

async fn post(client: &HttpClient, url: &str, id: &str) -> u16 {
    client.post(url, Some("application/json"), record(id)).await.expect("the API answers").status
}

/// Every file under `folder`, read as text.
fn files_under(folder: &std::path::Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if let Ok(text) = std::fs::read(&path) {
            found.push((path.display().to_string(), String::from_utf8_lossy(&text).into_owned()));
        }
    }
    found
}

fn changed(plan: &Value) -> BTreeSet<String> {
    actions(plan).into_iter().map(|(id, action)| format!("{id} {action}")).collect()
}

#[tokio::test]
async fn an_api_key_stack_refuses_callers_without_the_key_throttles_and_keeps_the_key_secret() {
    let mut stack = TestStack::new("key");
    stack.set_settings(&json!({ "api": { "auth": "api_key", "throttle": { "rate_per_s": 5, "burst": 5 } } }));
    stack.up();
    let cloud = cloud().await;
    let url = stack.output("api", "url");
    let key = stack.ok(&["api-key"]).trim().to_string();
    assert!(key.len() >= 20, "provision api-key prints the key's value: {key:?}");
    let keyed = HttpClient::new().with_auth(CallerAuth::ApiKey(key.clone()));

    // Without the key: refused before the function runs; with it: accepted and delivered.
    assert_eq!(post(&http(), &url, "no-key").await, 403, "a request without the key is refused");
    assert_eq!(post(&keyed, &url, "with-key").await, 200);
    let arrived = wait_for_rows(&stack, &BTreeSet::from(["with-key".to_string()]), Duration::from_secs(60)).await;
    assert!(arrived.contains("with-key"), "the keyed record arrives: {arrived:?}");
    assert!(!arrived.contains("no-key"), "the refused record reached nothing: {arrived:?}");

    // A burst above the throttle (5/s, burst 5): some 429s, and every accepted record arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut accepted = BTreeSet::new();
    let mut throttled = 0;
    // Truly at once: all 20 in flight together, so the burst exceeds the bucket however slow
    // each request is on a loaded machine.
    let ids: Vec<String> = (0..20).map(|i| format!("burst-{i}")).collect();
    let answers = futures::future::join_all(ids.iter().map(|id| post(&keyed, &url, id))).await;
    for (id, status) in ids.into_iter().zip(answers) {
        match status {
            200 => {
                accepted.insert(id);
            }
            429 => throttled += 1,
            other => panic!("a burst request got {other}"),
        }
    }
    assert!(throttled > 0, "20 requests at once above a burst of 5 get 429s");
    assert!(!accepted.is_empty(), "the first requests of the burst are accepted");
    let arrived = wait_for_rows(&stack, &accepted, Duration::from_secs(60)).await;
    assert!(
        arrived.is_superset(&accepted),
        "every accepted record arrives: missing {:?}",
        accepted.difference(&arrived)
    );

    assert!(stack.plan()["changes"].as_array().unwrap().is_empty(), "plan after up is empty");

    // The key's value is a secret: not in the state folder, the outputs, or any function's environment.
    for (path, text) in files_under(&stack.state_dir) {
        assert!(!text.contains(&key), "{path} holds the API key's value");
    }
    for args in [vec!["outputs"], vec!["--json", "outputs"]] {
        let outputs = stack.ok(&args);
        assert!(!outputs.contains(&key), "outputs show the key's value: {outputs}");
        assert!(outputs.contains(&stack.output("api-key", "id")), "outputs show the key's id: {outputs}");
    }
    for function in ["upstream", "midstream", "downstream"] {
        let config = function_config(&cloud, &stack, function).await;
        let environment = format!("{:?}", config.environment());
        assert!(!environment.contains(&key), "{function}'s environment holds the key's value");
    }

    // Drift, made out of band, is reported and repaired: the key requirement removed...
    let api_id = stack.output("api", "id");
    let resources = cloud.apigateway.get_resources().rest_api_id(&api_id).send().await.unwrap();
    let root = resources.items().iter().find(|r| r.path() == Some("/")).and_then(|r| r.id()).unwrap().to_string();
    cloud
        .apigateway
        .put_method()
        .rest_api_id(&api_id)
        .resource_id(&root)
        .http_method("POST")
        .authorization_type("NONE")
        .api_key_required(false)
        .send()
        .await
        .unwrap();
    // ...the stage's throttle raised...
    let raise = |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    cloud
        .apigateway
        .update_stage()
        .rest_api_id(&api_id)
        .stage_name("prod")
        .patch_operations(raise("/*/*/throttling/rateLimit", "9000"))
        .send()
        .await
        .unwrap();
    // ...and the usage plan unbound from the stage.
    let plan_id = stack.output("api-plan", "id");
    cloud
        .apigateway
        .update_usage_plan()
        .usage_plan_id(&plan_id)
        .patch_operations(
            PatchOperation::builder().op(Op::Remove).path("/apiStages").value(format!("{api_id}:prod")).build(),
        )
        .send()
        .await
        .unwrap();
    let drift = changed(&stack.plan());
    assert!(drift.contains("api update"), "the key requirement and throttle are drift: {drift:?}");
    assert!(drift.contains("api-plan replace"), "the unbound plan is drift: {drift:?}");
    stack.up();
    assert!(stack.plan()["changes"].as_array().unwrap().is_empty(), "up repaired the drift");
    assert_eq!(post(&http(), &url, "no-key-again").await, 403, "the key is required again");
    assert!(
        eventually(Duration::from_secs(10), || async { post(&keyed, &url, "key-again").await == 200 }).await,
        "the key is accepted again once the plan is bound"
    );

    stack.down();
}

#[tokio::test]
async fn every_log_group_is_the_stacks_own_and_down_leaves_none() {
    let mut stack = TestStack::new("logs");
    stack.up();
    let cloud = cloud().await;
    for function in ["upstream", "midstream", "downstream"] {
        let name = format!("/aws/lambda/{}-{function}", stack.name);
        let groups = cloud.logs.describe_log_groups().log_group_name_prefix(&name).send().await.unwrap();
        let group = groups.log_groups().iter().find(|g| g.log_group_name() == Some(name.as_str()));
        assert_eq!(group.and_then(|g| g.retention_in_days()), Some(14), "{name} keeps its events 14 days");
        let policy = cloud
            .iam
            .get_role_policy()
            .role_name(format!("{}-{function}-role", stack.name))
            .policy_name("pipeline-least-privilege")
            .send()
            .await
            .unwrap();
        let document = urlencoding_decode(policy.policy_document());
        let logs: Vec<&str> = document.match_indices("arn:aws:logs").map(|(i, _)| &document[i..]).collect();
        assert_eq!(logs.len(), 1, "one log statement resource in {function}'s policy: {document}");
        assert!(
            logs[0].starts_with(&format!("arn:aws:logs:us-east-1:000000000000:log-group:{name}:*\"")),
            "{function} may write only to its own group: {document}"
        );
    }

    stack.set_settings(&json!({ "log_retention_days": 30 }));
    let plan = stack.plan();
    let retention: Vec<&Value> =
        plan["changes"].as_array().unwrap().iter().filter(|c| c["id"].as_str().unwrap().ends_with("-logs")).collect();
    assert_eq!(retention.len(), 3, "a retention change updates the three groups: {plan}");
    assert!(retention.iter().all(|c| c["action"] == "update"), "in place: {plan}");
    stack.up();
    assert!(stack.plan()["changes"].as_array().unwrap().is_empty());

    stack.down();
    let left: Vec<String> =
        resources_named(&cloud, &stack.name).await.into_iter().filter(|r| r.starts_with("loggroup")).collect();
    assert!(left.is_empty(), "down leaves no log group: {left:?}");
}

/// On a MiniStack that verifies signatures and evaluates IAM policies (`AUTH=true`): only a
/// request signed by a principal allowed `execute-api:Invoke` on the API gets through, and
/// `provision bench` signs its own.
#[tokio::test]
async fn an_iam_stack_accepts_only_callers_signing_as_a_principal_allowed_to_invoke_it() {
    let verifying = VerifyingCloud::start(4581);
    let mut stack = TestStack::new("iam");
    stack.endpoint = verifying.endpoint.clone();
    stack.set_settings(&json!({ "api": { "auth": "iam" } }));
    stack.up();
    let root = verifying.cloud().await;
    let url = stack.output("api", "url");
    let api_id = stack.output("api", "id");

    let user = format!("{}-caller", stack.name);
    root.iam.create_user().user_name(&user).send().await.unwrap();
    let key = root.iam.create_access_key().user_name(&user).send().await.unwrap().access_key.unwrap();
    let as_user = |secret: &str| {
        let credentials = aws_credential_types::Credentials::new(key.access_key_id(), secret, None, None, "test");
        HttpClient::new().with_auth(CallerAuth::SigV4 { credentials, region: "us-east-1".into() })
    };
    let signed = as_user(key.secret_access_key());

    assert_eq!(post(&http(), &url, "unsigned").await, 403, "an unsigned request is refused");
    assert_eq!(post(&signed, &url, "not-allowed").await, 403, "a principal no policy allows is refused");
    let allow = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "execute-api:Invoke",
        "Resource": format!("arn:aws:execute-api:us-east-1:000000000000:{api_id}/*") }] });
    root.iam
        .put_user_policy()
        .user_name(&user)
        .policy_name("invoke")
        .policy_document(allow.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(post(&signed, &url, "signed").await, 200, "a signed request of an allowed principal is accepted");
    assert_eq!(post(&as_user("not-the-secret"), &url, "forged").await, 403, "a wrong signature is refused");
    let arrived = wait_for_rows(&stack, &BTreeSet::from(["signed".to_string()]), Duration::from_secs(60)).await;
    assert!(arrived.contains("signed"), "the signed record arrives: {arrived:?}");
    assert!(["unsigned", "not-allowed", "forged"].iter().all(|id| !arrived.contains(*id)), "{arrived:?}");

    let bench = stack.ok(&["--json", "bench", "--users", "1", "--count", "5"]);
    let report: Value = serde_json::from_str(&bench).expect("bench --json prints JSON");
    assert_eq!(report["requests"]["accepted"], 5, "bench signs its requests: {report}");

    root.iam.delete_user_policy().user_name(&user).policy_name("invoke").send().await.unwrap();
    root.iam.delete_access_key().user_name(&user).access_key_id(key.access_key_id()).send().await.unwrap();
    root.iam.delete_user().user_name(&user).send().await.unwrap();
    stack.down();
}

/// IAM returns policy documents URL-encoded (AWS) or as they were written (emulators).
fn urlencoding_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
