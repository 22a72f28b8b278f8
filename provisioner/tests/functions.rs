//! The functions' behaviour end to end on the local cloud: every valid record becomes exactly one
//! row (also when it is delivered twice), invalid requests are refused with a 4xx naming the
//! problem and reach neither the stream nor the database, and poison records put straight on the
//! stream or in the table go to the dead-letter queue without stopping the records behind them.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::*;

/// Longest wait for records to cross the pipeline (they take well under a second when idle).
const ARRIVAL: Duration = Duration::from_secs(120);

fn ids<const N: usize>(ids: [&str; N]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

fn now_s() -> i64 {
    record::now_ms() / 1000
}

/// Posts one record in the classic body and asserts the classic answer.
async fn post_record(url: &str, id: &str, message: &str) {
    let answer = http().post_json(url, &json!({"id": id, "message": message, "timestamp": now_s()})).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, r#"{"message":"success"}"#), "posting {id}");
}

/// `(received_at_ms, committed_at_ms)` of the row with this id.
async fn row_times(stack: &TestStack, id: &str) -> (i64, i64) {
    let row = stack
        .db()
        .await
        .query_one("SELECT received_at_ms, committed_at_ms FROM records WHERE id = $1", &[&id])
        .await
        .unwrap_or_else(|e| panic!("reading the row of {id}: {e}"));
    (row.get(0), row.get(1))
}

/// How many latencies the stack's downstream has reported to CloudWatch (the sample count of
/// the metric, over every datapoint of the last hour).
async fn metric_sample_count(stack: &TestStack, namespace: &str) -> f64 {
    let cloud = cloud().await;
    let now = std::time::SystemTime::now();
    let statistics = cloud
        .cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(record::METRIC_NAME)
        .start_time((now - Duration::from_secs(3600)).into())
        .end_time((now + Duration::from_secs(3600)).into())
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::SampleCount)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("reading the metric of {}: {}", stack.name, aws_sdk_cloudwatch::error::DisplayErrorContext(&e))
        });
    statistics.datapoints().iter().filter_map(|d| d.sample_count()).sum()
}

/// The dead letters on the queue by `key`, once there is one for each of `wanted` (or after
/// [`ARRIVAL`]). A key seen twice keeps its last letter.
async fn dead_letters(
    cloud: &provisioner::cloud::Cloud,
    queue: &str,
    key: impl Fn(&Value) -> Option<&str>,
    wanted: &[&str],
) -> BTreeMap<String, Value> {
    let mut letters = BTreeMap::new();
    let started = std::time::Instant::now();
    while started.elapsed() < ARRIVAL && !wanted.iter().all(|k| letters.contains_key(*k)) {
        for letter in drain_queue(cloud, queue).await {
            letters.insert(key(&letter).unwrap_or_default().to_owned(), letter);
        }
    }
    letters
}

#[tokio::test]
async fn every_valid_record_becomes_exactly_one_row_even_when_delivered_twice() {
    let mut stack = TestStack::new("once");
    let namespace = format!("Test/{}", stack.name);
    stack.set_settings(&json!({ "metric_namespace": namespace }));
    stack.up();
    let (url, stream) = (stack.output("api", "url"), stack.output("events", "name"));
    let cloud = cloud().await;
    let http = http();
    let mut expected = BTreeSet::new();

    // Single records in the classic body, and an array.
    for i in 0..20 {
        let id = format!("single-{i}");
        post_record(&url, &id, "Hello World").await;
        expected.insert(id);
    }
    let batch: Vec<Value> =
        (0..10).map(|i| json!({"id": format!("batch-{i}"), "message": "batched", "timestamp": now_s()})).collect();
    let answer = http.post_json(&url, &json!(batch)).await.unwrap();
    assert_eq!(
        (answer.status, serde_json::from_str::<Value>(&answer.body).unwrap()),
        (200, json!({"message": "success", "accepted": 10}))
    );
    expected.extend((0..10).map(|i| format!("batch-{i}")));

    // The same record twice: posted twice in a row, twice in one array, and put straight on
    // the stream twice (the same stamped record, as a redelivering producer would).
    post_record(&url, "twice-posted", "first").await;
    post_record(&url, "twice-posted", "second").await;
    let pair = json!([{"id": "twice-in-array", "message": "a", "timestamp": 1}, {"id": "twice-in-array", "message": "b", "timestamp": 2}]);
    assert_eq!(http.post_json(&url, &pair).await.unwrap().status, 200);
    let stamped =
        record::Record { id: "twice-on-stream".into(), message: "put straight on the stream".into(), timestamp: 7 }
            .stamp(record::now_ms() - 1000);
    put_on_stream(&cloud, &stream, &stamped.id, &stamped.to_json()).await;
    put_on_stream(&cloud, &stream, &stamped.id, &stamped.to_json()).await;
    expected.extend(ids(["twice-posted", "twice-in-array", "twice-on-stream"]));

    let arrived = wait_for_rows(&stack, &expected, ARRIVAL).await;
    assert_eq!(arrived, expected, "every valid record arrives, and nothing else");

    // Deliver two records again after their rows exist (another batch, another DynamoDB write
    // and stream record), then a last record: once it has arrived, so have the redeliveries.
    let first_times = row_times(&stack, "single-0").await;
    post_record(&url, "single-0", "posted again").await;
    put_on_stream(&cloud, &stream, &stamped.id, &stamped.to_json()).await;
    post_record(&url, "last", "after the redeliveries").await;
    expected.insert("last".into());
    let arrived = wait_for_rows(&stack, &expected, ARRIVAL).await;
    assert_eq!(arrived, expected, "redeliveries add no row");

    let db = stack.db().await;
    let count: i64 = db.query_one("SELECT count(*) FROM records", &[]).await.unwrap().get(0);
    assert_eq!(count as usize, expected.len(), "exactly one row per record");
    assert_eq!(row_times(&stack, "single-0").await, first_times, "a redelivered record leaves its row as it was");
    let row = db
        .query_one("SELECT message, client_timestamp, received_at_ms FROM records WHERE id = 'twice-on-stream'", &[])
        .await
        .unwrap();
    let (message, timestamp, received): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((message.as_str(), timestamp, received), (stamped.message.as_str(), 7, stamped.received_at_ms));
    let message: String =
        db.query_one("SELECT message FROM records WHERE id = 'twice-posted'", &[]).await.unwrap().get(0);
    assert!(["first", "second"].contains(&message.as_str()), "{message}");

    // One item per record in DynamoDB, and one latency per row in CloudWatch: a redelivery is
    // neither written as a second item nor counted twice.
    let table = stack.output("records", "name");
    let items = cloud.dynamodb.scan().table_name(&table).send().await.unwrap();
    let item_ids: BTreeSet<String> =
        items.items().iter().filter_map(|item| item.get("id").and_then(|id| id.as_s().ok()).cloned()).collect();
    assert_eq!((items.count() as usize, item_ids), (expected.len(), expected.clone()));
    let reported =
        eventually(ARRIVAL, || async { metric_sample_count(&stack, &namespace).await >= expected.len() as f64 }).await;
    let samples = metric_sample_count(&stack, &namespace).await;
    assert!(reported, "only {samples} latencies reported for {} rows", expected.len());
    assert_eq!(samples, expected.len() as f64, "one latency per row");
    drop(db);
    stack.down();
}

#[tokio::test]
async fn invalid_requests_get_a_4xx_naming_the_problem_and_reach_neither_stream_nor_database() {
    let mut stack = TestStack::new("invalid");
    stack.up();
    let (url, stream) = (stack.output("api", "url"), stack.output("events", "name"));
    let http = http();

    let huge = format!(r#"{{"id":"bad-huge","message":"{}","timestamp":1}}"#, "x".repeat(record::MAX_BODY_BYTES));
    let too_large = format!("request body is {} bytes, more than the limit of 1048576", huge.len());
    // (id, content type, body, status, what the error says: exactly, or how it starts)
    let cases: [(&str, &str, String, u16, &str); 8] = [
        (
            "bad-missing",
            "application/json",
            r#"{"id":"bad-missing","timestamp":1}"#.into(),
            400,
            r#"missing field "message""#,
        ),
        (
            "bad-type",
            "application/json",
            r#"{"id":"bad-type","message":"m","timestamp":"1700000000"}"#.into(),
            400,
            r#"field "timestamp" must be an integer"#,
        ),
        (
            "bad-json",
            "application/json",
            r#"{"id":"bad-json","message":"m","timestamp":1"#.into(),
            400,
            "invalid JSON: ",
        ),
        ("bad-huge", "application/json", huge, 413, &too_large),
        (
            "bad-content-type",
            "text/plain",
            r#"{"id":"bad-content-type","message":"m","timestamp":1}"#.into(),
            415,
            r#"unsupported content type "text/plain": expected application/json"#,
        ),
        (
            "bad-nul",
            "application/json",
            r#"{"id":"bad-nul","message":"a\u0000b","timestamp":1}"#.into(),
            400,
            r#"field "message" must be free of NUL characters (U+0000)"#,
        ),
        // One invalid record refuses the whole array: its valid records are not sent either.
        (
            "bad-array-ok",
            "application/json",
            r#"[{"id":"bad-array-ok","message":"m","timestamp":1},{"id":"bad-array-no","message":"m"}]"#.into(),
            400,
            r#"record 1: missing field "timestamp""#,
        ),
        ("bad-empty-array", "application/json", "[]".into(), 400, "expected 1 to 500 records, got 0"),
    ];
    for (id, content_type, body, status, error) in &cases {
        let answer = http.post(&url, Some(content_type), body.clone()).await.unwrap();
        let answer_json: Value = serde_json::from_str(&answer.body)
            .unwrap_or_else(|_| panic!("{id}: the answer is not JSON: {:?}", answer.body));
        let message =
            answer_json["error"].as_str().unwrap_or_else(|| panic!("{id}: no error message in {answer_json}"));
        assert_eq!(answer.status, *status, "{id}: {answer_json}");
        assert!(message == *error || (error.ends_with(": ") && message.starts_with(error)), "{id}: {message:?}");
        assert_eq!(answer_json.as_object().unwrap().len(), 1, "{id}: {answer_json}");
    }

    // A valid record after them: once it is in the database, everything posted before it has
    // crossed the pipeline.
    post_record(&url, "good-after", "valid").await;
    let arrived = wait_for_rows(&stack, &ids(["good-after"]), ARRIVAL).await;
    assert_eq!(arrived, ids(["good-after"]), "only the valid record reaches the database");

    let on_stream = stream_records(&cloud().await, &stream).await;
    assert!(on_stream.iter().any(|(key, _)| key == "good-after"), "the valid record is read back from the stream");
    for (key, data) in &on_stream {
        let data = String::from_utf8_lossy(data);
        for (id, ..) in &cases {
            assert!(key != id && !data.contains(id), "refused record {id} is on the stream: {data}");
        }
        assert!(!data.contains("bad-array-no"), "{data}");
    }
    assert_eq!(on_stream.len(), 1, "only the valid record is on the stream");
    stack.down();
}

#[tokio::test]
async fn poison_records_on_the_stream_go_to_the_dead_letter_queue_and_do_not_stop_the_rest() {
    let mut stack = TestStack::new("poison");
    stack.up();
    let (url, stream, queue) =
        (stack.output("api", "url"), stack.output("events", "name"), stack.output("dead-letters", "url"));
    let cloud = cloud().await;

    // Poison first (partition key, data, what the dead letter's reason says: exactly, or how it
    // starts), valid records behind it: on the stream itself, in one PutRecords call with
    // poison in the middle, and through the API.
    let poison: [(&str, &[u8], &str); 5] = [
        ("poison-not-json", b"this is not JSON", "invalid JSON: "),
        ("poison-not-object", b"[1,2,3]", r#"expected a JSON object with "id", "message" and "timestamp""#),
        (
            "poison-type",
            br#"{"id":"poison-type","message":"m","timestamp":"soon","received_at_ms":1}"#,
            r#"field "timestamp" must be an integer"#,
        ),
        (
            "poison-unstamped",
            br#"{"id":"poison-unstamped","message":"m","timestamp":1}"#,
            r#"missing field "received_at_ms""#,
        ),
        (
            "poison-nul",
            br#"{"id":"poison-nul","message":"a\u0000b","timestamp":1,"received_at_ms":1}"#,
            r#"field "message" must be free of NUL characters (U+0000)"#,
        ),
    ];
    let stamped = |id: &str| {
        record::Record { id: id.into(), message: "behind the poison".into(), timestamp: 1 }.stamp(record::now_ms())
    };
    let mut valid = BTreeSet::new();
    for (key, data, _) in &poison[..4] {
        put_on_stream(&cloud, &stream, key, data).await;
    }
    for i in 0..5 {
        let record = stamped(&format!("behind-{i}"));
        put_on_stream(&cloud, &stream, &record.id, &record.to_json()).await;
        valid.insert(record.id);
    }
    let entry = |key: &str, data: Vec<u8>| {
        aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .build()
            .unwrap()
    };
    let (mixed_0, mixed_1) = (stamped("mixed-0"), stamped("mixed-1"));
    let (key, data, _) = poison[4];
    let put = cloud
        .kinesis
        .put_records()
        .stream_name(&stream)
        .records(entry(&mixed_0.id, mixed_0.to_json()))
        .records(entry(key, data.to_vec()))
        .records(entry(&mixed_1.id, mixed_1.to_json()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_record_count(), Some(0));
    valid.extend([mixed_0.id.clone(), mixed_1.id.clone()]);
    for i in 0..5 {
        let id = format!("posted-{i}");
        post_record(&url, &id, "behind the poison").await;
        valid.insert(id);
    }

    let arrived = wait_for_rows(&stack, &valid, ARRIVAL).await;
    assert_eq!(arrived, valid, "every valid record behind the poison arrives, and no poison");

    let keys: Vec<&str> = poison.iter().map(|(key, ..)| *key).collect();
    let letters = dead_letters(&cloud, &queue, |letter| letter["partition_key"].as_str(), &keys).await;
    for (key, data, reason) in &poison {
        let letter = letters.get(*key).unwrap_or_else(|| panic!("no dead letter for {key}; got {letters:#?}"));
        assert_eq!(letter["source"], "midstream", "{letter}");
        let said = letter["reason"].as_str().unwrap();
        assert!(said == *reason || (reason.ends_with(": ") && said.starts_with(reason)), "{key}: {said:?}");
        let kept = base64::engine::general_purpose::STANDARD.decode(letter["data_base64"].as_str().unwrap()).unwrap();
        assert_eq!(kept, *data, "{key}: the dead letter carries the record's data");
        assert_eq!(
            (letter["data_bytes"].as_u64(), letter["truncated"].as_bool()),
            (Some(data.len() as u64), Some(false))
        );
    }
    let unexpected: Vec<&String> = letters.keys().filter(|key| !poison.iter().any(|(k, ..)| k == key)).collect();
    assert!(unexpected.is_empty(), "only poison is dead-lettered: {unexpected:?}");
    stack.down();
}

#[tokio::test]
async fn poison_items_in_the_table_go_to_the_dead_letter_queue_and_do_not_stop_the_rest() {
    let mut stack = TestStack::new("poisonitem");
    stack.up();
    let (url, table, queue) =
        (stack.output("api", "url"), stack.output("records", "name"), stack.output("dead-letters", "url"));
    let cloud = cloud().await;

    // Items no valid record makes, written straight to the table; valid records behind them.
    let s = |value: &str| AttributeValue::S(value.into());
    let n = |value: &str| AttributeValue::N(value.into());
    let poison = [
        (
            "poison-no-message",
            vec![("timestamp", n("1")), ("received_at_ms", n("1"))],
            r#"missing attribute "message""#,
        ),
        (
            "poison-typed",
            vec![("message", s("m")), ("timestamp", s("1")), ("received_at_ms", n("1"))],
            r#"attribute "timestamp" must be of type N, got {"S":"1"}"#,
        ),
        (
            "poison-nul",
            vec![("message", s("a\u{0}b")), ("timestamp", n("1")), ("received_at_ms", n("1"))],
            r#"field "message" must be free of NUL characters (U+0000)"#,
        ),
    ];
    for (id, attributes, _) in &poison {
        let mut put = cloud.dynamodb.put_item().table_name(&table).item("id", s(id));
        for (name, value) in attributes {
            put = put.item(*name, value.clone());
        }
        put.send().await.unwrap();
    }
    let mut valid = BTreeSet::new();
    for i in 0..5 {
        let id = format!("after-{i}");
        post_record(&url, &id, "behind the poison").await;
        valid.insert(id);
    }

    let arrived = wait_for_rows(&stack, &valid, ARRIVAL).await;
    assert_eq!(arrived, valid, "every valid record behind the poison arrives, and no poison");

    let keys: Vec<&str> = poison.iter().map(|(id, ..)| *id).collect();
    let letters = dead_letters(&cloud, &queue, |letter| letter["new_image"]["id"]["S"].as_str(), &keys).await;
    for (id, _, reason) in &poison {
        let letter = letters.get(*id).unwrap_or_else(|| panic!("no dead letter for {id}; got {letters:#?}"));
        assert_eq!(
            (letter["source"].as_str(), letter["reason"].as_str()),
            (Some("downstream"), Some(*reason)),
            "{letter}"
        );
        assert!(letter["item_identifier"].as_str().is_some_and(|s| !s.is_empty()), "{letter}");
    }
    assert_eq!(letters.len(), poison.len(), "only poison is dead-lettered: {letters:#?}");
    stack.down();
}
