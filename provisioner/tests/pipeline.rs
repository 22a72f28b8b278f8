//! End to end on the local cloud: `up` creates the whole pipeline, records posted to the API
//! arrive in Postgres with their latency, a second `up` changes nothing, and `down` leaves
//! nothing behind.

mod support;

use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn records_posted_to_the_api_arrive_in_postgres_and_down_leaves_nothing() {
    let mut stack = TestStack::new("pipe");
    let cloud = cloud().await;

    let first = stack.up();
    assert_eq!(
        first["applied"], 21,
        "a cold up creates all 21 resources (the archive and the three log groups included): {first}"
    );
    let url = first["outputs"]["api_url"].as_str().unwrap().to_string();

    // Exactly one of everything after a second up, which changes nothing and mutates nothing.
    let second = stack.up();
    assert_eq!(second["changes"], json!([]), "second up plans no change: {second}");
    assert_eq!(second["mutating_calls"], json!([]), "second up makes no mutating API call: {second}");
    assert_exactly_one_of_everything(&stack).await;

    // Post single records in the classic body, and one batch.
    let http = http();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut sent = BTreeSet::new();
    for i in 0..20 {
        let id = format!("single-{i}");
        let answer =
            http.post_json(&url, &json!({"id": id, "message": "Hello World", "timestamp": now})).await.unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"message":"success"}"#));
        sent.insert(id);
    }
    let batch: Vec<_> =
        (0..5).map(|i| json!({"id": format!("batch-{i}"), "message": "batched", "timestamp": now})).collect();
    let answer = http.post_json(&url, &json!(batch)).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    sent.extend((0..5).map(|i| format!("batch-{i}")));

    let arrived = eventually(Duration::from_secs(90), || async { row_count(&stack).await >= sent.len() as i64 }).await;
    let db = stack.db().await;
    let rows = db
        .query("SELECT id, message, client_timestamp, received_at_ms, committed_at_ms, latency_ms FROM records", &[])
        .await
        .unwrap();
    assert!(arrived, "only {} of {} records arrived", rows.len(), sent.len());
    let ids: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, sent, "exactly the posted ids arrive, once each");
    for row in &rows {
        let (client_ts, received, committed, latency): (i64, i64, i64, i64) =
            (row.get(2), row.get(3), row.get(4), row.get(5));
        assert_eq!(client_ts, now as i64);
        assert!(received >= client_ts * 1000, "received_at_ms is the API's receive time in ms");
        assert_eq!(latency, committed - received, "latency is commit time minus receive time");
        assert!((0..60_000).contains(&latency), "latency {latency} ms is plausible");
    }
    // downstream offers TLS (RDS forces it); the local PostgreSQL has it on, so the kept
    // connection is encrypted.
    let encrypted: Vec<bool> = db
        .query(
            "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = 'downstream' AND a.datname = $1",
            &[&stack.database()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!encrypted.is_empty() && encrypted.iter().all(|e| *e), "downstream's connections use TLS: {encrypted:?}");
    drop(db);

    stack.down();
    assert_eq!(resources_named(&cloud, &stack.name).await, Vec::<String>::new(), "down leaves nothing behind");
    assert!(!stack.state_file().exists(), "down empties the state");
    assert!(connect(&stack.database()).await.is_err(), "down drops the stack's database");
}
