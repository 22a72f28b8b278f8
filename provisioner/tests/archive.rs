//! The archive on the local cloud: every record posted (single and in arrays) also lands in the
//! stack's bucket as a JSON line, the same JSON Postgres gets, within the buffering interval plus
//! a margin; Firehose delivers at least once, so duplicates are counted and reported. A changed
//! buffering setting is applied in place; drift on the delivery stream and on the bucket's public
//! access block is reported and repaired; `down` empties and deletes the bucket.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

/// Every JSON line of every object in `bucket`, parsed.
async fn archived(cloud: &provisioner::cloud::Cloud, bucket: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let listed = cloud.s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    for object in listed.contents() {
        let key = object.key().unwrap();
        if !key.starts_with("records/") {
            continue;
        }
        let body = cloud.s3.get_object().bucket(bucket).key(key).send().await.unwrap().body.collect().await.unwrap();
        let text = String::from_utf8(body.into_bytes().to_vec()).unwrap();
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    lines
}

#[tokio::test]
async fn every_record_lands_in_the_archive_as_a_json_line() {
    let mut stack = TestStack::new("arch");
    stack.set_settings(&json!({ "archive": { "buffer_interval_s": 5, "buffer_size_mb": 1 } }));
    let up = stack.up();
    let bucket = stack.output("archive", "name");
    assert!(
        up["outputs"]["archive"].as_str().unwrap().starts_with(&format!("s3://{bucket}/records/")),
        "{:#}",
        up["outputs"]
    );
    let url = stack.output("api", "url");
    let http = http();
    let mut sent = Vec::new();
    for i in 0..6 {
        let record = json!({"id": format!("single-{i}"), "message": format!("m{i}"), "timestamp": i});
        assert_eq!(http.post_json(&url, &record).await.unwrap().status, 200);
        sent.push(record);
    }
    let batch: Vec<Value> =
        (0..10).map(|i| json!({"id": format!("array-{i}"), "message": "in an array", "timestamp": 7})).collect();
    assert_eq!(http.post_json(&url, &Value::Array(batch.clone())).await.unwrap().status, 200);
    sent.extend(batch);

    let cloud = cloud().await;
    let margin = Duration::from_secs(5 + 30);
    let all_there = eventually(margin, || async {
        let ids: std::collections::BTreeSet<String> =
            archived(&cloud, &bucket).await.iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
        sent.iter().all(|r| ids.contains(r["id"].as_str().unwrap()))
    })
    .await;
    assert!(all_there, "every record reaches the archive within the buffering interval plus a margin");
    let lines = archived(&cloud, &bucket).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        *seen.entry(line["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("archive: {} lines for {} records, {duplicates} duplicates", lines.len(), sent.len());
    // The same JSON as the rows in Postgres: id, message, timestamp, and the receive time.
    let rows = wait_for_rows(&stack, &seen.keys().cloned().collect(), Duration::from_secs(60)).await;
    let db = stack.db().await;
    for line in &lines {
        let id = line["id"].as_str().unwrap();
        assert!(rows.contains(id), "{id} is archived and in Postgres");
        let row = db
            .query_one("SELECT message, client_timestamp, received_at_ms FROM records WHERE id = $1", &[&id])
            .await
            .unwrap();
        assert_eq!(line["message"], json!(row.get::<_, String>(0)));
        assert_eq!(line["timestamp"], json!(row.get::<_, i64>(1)));
        assert_eq!(line["received_at_ms"], json!(row.get::<_, i64>(2)));
    }

    // A buffering change is applied in place.
    stack.set_settings(&json!({ "archive": { "buffer_interval_s": 10, "buffer_size_mb": 2 } }));
    let applied = stack.up();
    let delivery = applied["changes"].as_array().unwrap().iter().find(|c| c["id"] == "archive-delivery").cloned();
    assert_eq!(delivery.map(|c| c["action"].clone()), Some(json!("update")), "{applied:#}");
    let described =
        cloud.firehose.describe_delivery_stream().delivery_stream_name(format!("{}-archive", stack.name)).send().await;
    let destination = described.unwrap().delivery_stream_description.unwrap().destinations()[0].clone();
    let hints = destination.extended_s3_destination_description().unwrap().buffering_hints().unwrap().clone();
    assert_eq!((hints.interval_in_seconds(), hints.size_in_mbs()), (Some(10), Some(2)));

    // Drift on the delivery stream and on the bucket's public access block: seen, then repaired.
    let stream =
        cloud.firehose.describe_delivery_stream().delivery_stream_name(format!("{}-archive", stack.name)).send().await;
    let stream = stream.unwrap().delivery_stream_description.unwrap();
    cloud
        .firehose
        .update_destination()
        .delivery_stream_name(format!("{}-archive", stack.name))
        .current_delivery_stream_version_id(stream.version_id())
        .destination_id(stream.destinations()[0].destination_id())
        .extended_s3_destination_update(
            aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder()
                .buffering_hints(
                    aws_sdk_firehose::types::BufferingHints::builder().interval_in_seconds(300).size_in_mbs(64).build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    cloud.s3.delete_public_access_block().bucket(&bucket).send().await.unwrap();
    let plan = stack.plan();
    assert_eq!(plan["mutating_calls"], json!([]));
    let drifted: Vec<String> =
        plan["drift"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert!(drifted.contains(&"archive-delivery".into()) && drifted.contains(&"archive".into()), "{plan:#}");
    stack.up();
    assert_eq!(stack.up()["changes"], json!([]), "repaired");

    // down empties the bucket and deletes it, and says how many objects it removed.
    let out = stack.provision(&["down", "--yes"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("emptied bucket {bucket}")) && stderr.contains("objects removed"), "{stderr}");
    assert!(cloud.s3.head_bucket().bucket(&bucket).send().await.is_err(), "the bucket is gone");
    stack.down();
}

#[tokio::test]
async fn turning_the_archive_off_removes_it_on_the_next_up() {
    let mut stack = TestStack::new("archoff");
    stack.up();
    let bucket = stack.output("archive", "name");
    stack.set_settings(&json!({ "archive": { "enabled": false } }));
    let plan = stack.ok(&["plan", "--skip-build"]);
    let line = plan.lines().find(|l| l.contains("archive ") && l.contains("delete")).unwrap_or_default();
    assert!(line.contains("[holds data: deleted with it]"), "the plan says the bucket's objects go: {plan}");
    let applied = stack.up();
    let holding: Vec<&str> = applied["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["deletes_data"] == true)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(holding, ["archive"], "only the bucket holds data: {applied:#}");
    let deleted: Vec<&str> = applied["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["archive", "archive-delivery", "archive-role"], "{applied:#}");
    assert!(cloud().await.s3.head_bucket().bucket(&bucket).send().await.is_err(), "the bucket is gone");
    assert_eq!(stack.up()["changes"], json!([]));
    stack.down();
}
