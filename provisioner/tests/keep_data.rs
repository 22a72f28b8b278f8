//! `down --keep-data`: everything goes but the resources that hold data (the table, the bucket,
//! the queue, the stream, the database and its schema) and what they need; they stay the stack's,
//! the next `up` carries on with their items, objects and rows, and a plain `down` deletes them.
//! A stack that holds no data is told so, and nothing is deleted.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// How many items the stack's DynamoDB table holds.
async fn item_count(stack: &TestStack) -> i32 {
    let cloud = cloud().await;
    let table = format!("{}-records", stack.name);
    let scan = cloud.dynamodb.scan().table_name(table).select(aws_sdk_dynamodb::types::Select::Count).send().await;
    scan.unwrap().count()
}

/// How many objects the stack's archive bucket holds.
async fn object_count(cloud: &provisioner::cloud::Cloud, bucket: &str) -> usize {
    let listed = cloud.s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    listed.contents().len()
}

#[tokio::test]
async fn kept_data_survives_down_and_the_next_up_carries_on_with_it() {
    let mut stack = TestStack::new("keep");
    stack.up();
    assert_pipeline_delivers(&stack, "before").await;
    let cloud = cloud().await;
    let bucket = stack.output("archive", "name");
    assert!(
        eventually(Duration::from_secs(90), || async { object_count(&cloud, &bucket).await > 0 }).await,
        "the archive received the records"
    );
    let (rows, items, objects) =
        (row_count(&stack).await, item_count(&stack).await, object_count(&cloud, &bucket).await);

    let down = stack.ok(&["down", "--keep-data", "--yes"]);
    for words in ["Kept (--keep-data), with their data:", "records", "archive", "dead-letters", "events", "database"] {
        assert!(down.contains(words), "says `{words}`:\n{down}");
    }
    let state = stack.state();
    let kept: Vec<&str> = state["kept"].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
    for id in ["records", "archive", "dead-letters", "events", "database", "schema"] {
        assert!(kept.contains(&id), "the state says `{id}` was kept: {kept:?}");
    }
    let left: Vec<String> = resources_named(&cloud, &stack.name).await;
    let kinds_left: Vec<&str> = left.iter().map(|r| r.split(' ').next().unwrap()).collect();
    assert_eq!(
        kinds_left,
        ["bucket", "database", "db", "queue", "stream", "table"],
        "only the data is left: {left:#?}"
    );
    assert_eq!(row_count(&stack).await, rows, "every row is still there");
    assert_eq!(item_count(&stack).await, items, "every item is still there");
    assert_eq!(object_count(&cloud, &bucket).await, objects, "every archived object is still there");

    // The next up builds the rest around what was kept; new records join the old.
    stack.up();
    assert!(stack.state().get("kept").is_none(), "up took the kept resources back");
    assert_pipeline_delivers(&stack, "after").await;
    assert!(row_count(&stack).await >= rows + 3, "the old rows and the new");
    assert!(item_count(&stack).await >= items + 3, "the old items and the new");
    assert_exactly_one_of_everything(&stack).await;
    assert_eq!(actions(&stack.plan()), Default::default(), "planned empty once up");

    // A plain down says what data it deletes, with the counts, before it asks (and with no
    // terminal to ask on, deletes nothing); with --yes it deletes everything (TestStack::down
    // checks that nothing is left).
    let (rows, items, objects) =
        (row_count(&stack).await, item_count(&stack).await, object_count(&cloud, &bucket).await);
    let asked = stack.provision(&["down"]);
    assert!(!asked.status.success(), "no terminal to ask on: nothing deleted");
    let listed = String::from_utf8_lossy(&asked.stdout);
    for words in [
        "Data deleted with them (`down --keep-data` keeps it):".to_string(),
        format!("records (DynamoDB table): {items} items"),
        format!("schema (Postgres schema): {rows} rows"),
        format!("archive (S3 bucket): {objects} objects"),
        "dead-letters (SQS queue): about 0 messages".to_string(),
        "events (Kinesis stream): the records it retains (not counted)".to_string(),
    ] {
        assert!(listed.contains(&words), "says `{words}`:\n{listed}");
    }
    assert_exactly_one_of_everything(&stack).await;
    stack.down();
}

#[tokio::test]
async fn keep_data_on_a_stack_without_data_says_so_and_deletes_nothing() {
    require_local_cloud();
    let dir = Scratch::new("nodata");
    std::fs::write(
        dir.join("provision.json"),
        json!({"program": {"name": "topics", "command": ["python3", "d.py"]}}).to_string(),
    )
    .unwrap();
    let script = "import json, sys\nr = json.load(sys.stdin)\nprint(json.dumps({'version': 1, 'stack': r['stack'], \
                  'resources': [{'id': 'alerts', 'kind': 'sns_topic', 'properties': {'name': r['stack'] + '-alerts'}}]}))\n";
    std::fs::write(dir.join("d.py"), script).unwrap();
    let stack = format!("nodata{}", std::process::id());
    let run = |args: &[&str]| project_command(&dir, &stack, args).output().unwrap();
    assert!(run(&["up", "--yes"]).status.success());
    let refused = run(&["down", "--keep-data", "--yes"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "nothing to keep is an error");
    for words in ["records nothing that holds data", "--keep-data would keep nothing", "nothing was deleted"] {
        assert!(said.contains(words), "says `{words}`:\n{said}");
    }
    let cloud = cloud().await;
    assert_eq!(resources_named(&cloud, &stack).await.len(), 1, "the topic is still there");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state").join(format!("{stack}.json"))).unwrap())
            .unwrap();
    assert!(state["resources"].get("alerts").is_some(), "the state is unchanged");
    assert!(run(&["down", "--yes"]).status.success());
    assert_eq!(resources_named(&cloud, &stack).await, Vec::<String>::new(), "down leaves nothing");
}
