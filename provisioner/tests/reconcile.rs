//! The reconcile engine against the local cloud: updates in place, drift repaired, lost state
//! adopted, corrupt state refused. Killed runs and concurrent runs: tests/interrupted.rs.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::*;

#[tokio::test]
async fn each_updatable_setting_is_applied_in_place() {
    let mut stack = TestStack::new("upd");
    stack.up();
    stack.set_settings(&json!({
        "shard_count": 2,
        "upstream": {"memory_mb": 512, "timeout_s": 20},
        "kinesis_mapping": {"batch_size": 50, "batching_window_s": 1, "bisect_on_error": false,
                            "maximum_retry_attempts": 3, "maximum_record_age_s": 600},
    }));
    let plan = stack.plan();
    let planned = actions(&plan);
    assert_eq!(
        planned,
        BTreeMap::from([
            ("events".to_string(), "update".to_string()),
            ("upstream".to_string(), "update".to_string()),
            ("events-to-midstream".to_string(), "update".to_string()),
        ]),
        "only the changed resources, all in place: {plan}"
    );
    let applied = stack.up();
    assert_eq!(applied["applied"], 3, "{applied}");

    let cloud = cloud().await;
    let function = function_config(&cloud, &stack, "upstream").await;
    assert_eq!((function.memory_size(), function.timeout()), (Some(512), Some(20)));
    let uuid = stack.output("events-to-midstream", "uuid");
    let mapping = cloud.lambda.get_event_source_mapping().uuid(&uuid).send().await.unwrap();
    assert_eq!(mapping.batch_size(), Some(50));
    assert_eq!(mapping.maximum_batching_window_in_seconds(), Some(1));
    assert_eq!(mapping.bisect_batch_on_function_error(), Some(false));
    assert_eq!(mapping.maximum_retry_attempts(), Some(3));
    assert_eq!(mapping.maximum_record_age_in_seconds(), Some(600));
    let stream =
        cloud.kinesis.describe_stream_summary().stream_name(format!("{}-events", stack.name)).send().await.unwrap();
    assert_eq!(stream.stream_description_summary().unwrap().open_shard_count(), 2);

    assert_eq!(stack.up()["changes"], json!([]), "converged: nothing left to change");
    assert_pipeline_delivers(&stack, "after-update").await;
    stack.down();
}

#[tokio::test]
async fn resources_deleted_out_of_band_are_reported_then_repaired() {
    let mut stack = TestStack::new("drift");
    stack.up();
    let cloud = cloud().await;
    let name = |suffix: &str| format!("{}-{suffix}", stack.name);
    cloud.kinesis.delete_stream().stream_name(name("events")).send().await.unwrap();
    cloud.dynamodb.delete_table().table_name(name("records")).send().await.unwrap();
    cloud.lambda.delete_function().function_name(name("upstream")).send().await.unwrap();
    cloud.lambda.delete_event_source_mapping().uuid(stack.output("events-to-midstream", "uuid")).send().await.unwrap();
    cloud.apigateway.delete_rest_api().rest_api_id(stack.output("api", "id")).send().await.unwrap();

    // plan reports the drift and changes nothing.
    let plan = stack.plan();
    let drifted: Vec<&str> = plan["drift"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    for id in ["events", "records", "upstream", "events-to-midstream", "api"] {
        assert!(drifted.contains(&id), "{id} should be reported as drifted: {plan}");
    }
    assert_eq!(plan["mutating_calls"], json!([]), "plan must not change anything: {plan}");
    assert!(
        cloud.kinesis.describe_stream_summary().stream_name(name("events")).send().await.is_err(),
        "plan left it deleted"
    );

    stack.up();
    assert_exactly_one_of_everything(&stack).await;
    assert_eq!(stack.up()["changes"], json!([]), "repaired: nothing left to change");
    assert_pipeline_delivers(&stack, "after-repair").await;
    stack.down();
}

#[tokio::test]
async fn lost_state_is_adopted_not_duplicated() {
    let mut stack = TestStack::new("lost");
    stack.up();
    let created = instance_created(&stack).await;
    std::fs::remove_file(stack.state_file()).unwrap();
    let _ = std::fs::remove_file(stack.state_file().with_extension("json.bak"));
    // Regression: the adopted database was planned for replacement (subnet group, security
    // groups the read reported but the declaration leaves out), and the queue for an update.
    let plan = stack.plan();
    assert_eq!(plan["changes"], json!([]), "what is adopted as it was made needs no change: {plan}");
    let up = stack.up();
    assert_eq!(up["changes"], json!([]), "{up}");
    assert_eq!(instance_created(&stack).await, created, "the database is the one made first, not a new one");
    assert_exactly_one_of_everything(&stack).await;
    assert_eq!(stack.up()["changes"], json!([]));
    assert_pipeline_delivers(&stack, "after-adoption").await;
    stack.down();
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_corrupt_state_file_is_refused_and_nothing_is_deleted() {
    let mut stack = TestStack::new("corrupt");
    stack.up();
    let good = std::fs::read_to_string(stack.state_file()).unwrap();
    std::fs::write(stack.state_file(), "{\"format_version\": 1, \"stack\": ").unwrap();
    for command in [&["up", "--yes"][..], &["down", "--yes"][..], &["plan"][..]] {
        let out = stack.provision(command);
        assert!(!out.status.success(), "{command:?} must refuse a corrupt state");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not valid JSON") && stderr.contains("Nothing was changed"), "{stderr}");
    }
    assert_exactly_one_of_everything(&stack).await;
    assert_eq!(
        std::fs::read_to_string(stack.state_file()).unwrap(),
        "{\"format_version\": 1, \"stack\": ",
        "left as it was"
    );

    let mut foreign: Value = serde_json::from_str(&good).unwrap();
    foreign["format_version"] = json!(999);
    std::fs::write(stack.state_file(), foreign.to_string()).unwrap();
    let out = stack.provision(&["down", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("format version 999"));
    assert_exactly_one_of_everything(&stack).await;

    std::fs::write(stack.state_file(), good).unwrap();
    stack.down();
}

/// Every file under `dir` with its size, permissions, modification time and content hash.
fn snapshot(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            files.extend(snapshot(&path));
            continue;
        }
        let content = std::fs::read(&path).unwrap_or_default();
        let digest: u64 =
            content.iter().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
        files.insert(
            path.display().to_string(),
            format!("{} {:?} {:?} {digest:x}", meta.len(), meta.permissions(), meta.modified().ok()),
        );
    }
    files
}

#[tokio::test]
async fn plan_changes_nothing_in_the_cloud_or_on_disk() {
    let mut stack = TestStack::new("plan");
    stack.ok(&["plan"]); // builds the functions, so the plans below only read

    // A stack that does not exist yet: no state folder, lock or state file appears.
    let fresh_dir = stack.state_dir.join("never-created");
    let mut fresh = stack.command(&["--json", "plan", "--skip-build"]);
    fresh.arg("--state-dir").arg(&fresh_dir);
    let out = fresh.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["mutating_calls"], json!([]));
    assert!(!plan["changes"].as_array().unwrap().is_empty(), "a fresh stack plans creates");
    assert!(!fresh_dir.exists(), "plan created the state folder {}", fresh_dir.display());

    // A stack that exists, with drift to report: the state folder is left exactly as it was.
    // (The folder hot-reloaded functions run from is LocalStack's, which runs no Lambda here:
    // on MiniStack nothing is ever staged there, so comparing it would prove nothing.)
    stack.up();
    let cloud = cloud().await;
    cloud.kinesis.delete_stream().stream_name(format!("{}-events", stack.name)).send().await.unwrap();
    let state_before = snapshot(&stack.state_dir);
    assert!(
        state_before.keys().any(|path| path.ends_with(&format!("{}.json", stack.name))),
        "the snapshot holds the state file: {state_before:?}"
    );
    let plan = stack.plan();
    assert_eq!(plan["mutating_calls"], json!([]), "plan made a mutating call: {plan:#}");
    assert!(actions(&plan).contains_key("events"), "the deleted stream is planned: {plan:#}");
    assert_eq!(snapshot(&stack.state_dir), state_before, "plan changed the state folder");
    stack.down();
}

/// When the stack's RDS instance was created, as RDS says.
async fn instance_created(stack: &TestStack) -> String {
    let described = cloud()
        .await
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("{}-db", stack.name))
        .send()
        .await
        .expect("the instance exists");
    let instance = described.db_instances().first().expect("one instance").clone();
    format!("{:?}", instance.instance_create_time.expect("a creation time"))
}
