//! The distributed adder (`--program mapreduce`) end to end on the local cloud: every array
//! reaches `done` with the exact sum while a third of the map and reduce invocations crash at a
//! random point; an array whose chunk can never be processed reports `failed`, never a wrong sum;
//! bad input is refused with nothing enqueued or recorded; the benchmark's arrays are all exact;
//! another program is refused on the stack; `logs` shows its functions; `down` leaves nothing.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

/// Posts `elements` and returns the answer's status and body.
async fn post(url: &str, body: String) -> (u16, Value) {
    let answer = http().post(url, Some("application/json"), body).await.expect("posting an array");
    (answer.status, serde_json::from_str(&answer.body).unwrap_or(Value::String(answer.body)))
}

async fn status(url: &str, array_id: &str) -> Value {
    let answer = http().get(&format!("{url}/{array_id}")).await.expect("reading an array's status");
    serde_json::from_str(&answer.body).unwrap_or(Value::String(answer.body))
}

/// Waits until every array has left `pending`, or `timeout` passes; returns each one's status.
async fn settled(url: &str, ids: &[String], timeout: Duration) -> BTreeMap<String, Value> {
    let started = Instant::now();
    let mut statuses = BTreeMap::new();
    loop {
        let pending: Vec<&String> =
            ids.iter().filter(|id| statuses.get(*id).is_none_or(|s: &Value| s["status"] == "pending")).collect();
        for id in pending {
            statuses.insert(id.clone(), status(url, id).await);
        }
        if statuses.values().all(|s| s["status"] != "pending") || started.elapsed() > timeout {
            return statuses;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The settings of a stack made to crash often and recover fast: small chunks and fan-in for
/// deep trees, short timeouts so a crashed message is delivered again within seconds, and enough
/// receives that no array is dead-lettered by bad luck (0.3^30).
fn chaotic(crash_rate: f64) -> Value {
    json!({
        "chunk_size": 250,
        "fan_in": 4,
        "mapper": { "timeout_s": 2 },
        "reducer": { "timeout_s": 2 },
        "visibility_timeout_s": 3,
        "max_receive_count": 30,
        "chaos": { "crash_rate": crash_rate },
    })
}

#[tokio::test]
async fn with_a_third_of_invocations_crashing_every_array_is_exact() {
    let mut stack = TestStack::of_program("mrx", "mapreduce");
    stack.set_settings(&chaotic(0.3));
    stack.up();
    let url = stack.output("api", "url") + "arrays";

    let mut lengths: Vec<usize> = vec![1, 2000, 250, 251];
    lengths.extend((0..96).map(|_| fastrand::usize(1..=2000)));
    let mut expected = BTreeMap::new();
    for length in lengths {
        let elements: Vec<i64> = (0..length).map(|_| fastrand::i64(-(1 << 31)..=(1 << 31))).collect();
        let (code, answer) = post(&url, serde_json::to_string(&elements).unwrap()).await;
        assert_eq!(code, 202, "{answer}");
        assert_eq!(answer["count"], length, "{answer}");
        let id = answer["arrayId"].as_str().unwrap().to_string();
        expected.insert(id, elements.iter().map(|x| 2 * x).sum::<i64>());
    }
    let ids: Vec<String> = expected.keys().cloned().collect();
    let statuses = settled(&url, &ids, Duration::from_secs(600)).await;
    for (id, sum) in &expected {
        let found = &statuses[id];
        assert_eq!(found["status"], "done", "array {id}: {found}");
        assert_eq!(found["sum"].as_i64(), Some(*sum), "array {id} is exact: {found}");
    }
    let crashes = stack.ok(&["logs", "--since", "30m", "--filter", "chaos:"]);
    assert!(crashes.lines().count() >= 5, "crashes were injected (their errors are logged):\n{crashes}");

    stack.down();
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "down left something");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_enqueued_or_recorded() {
    let mut stack = TestStack::of_program("mrb", "mapreduce");
    stack.up();
    let url = stack.output("api", "url") + "arrays";
    let too_many = format!("[{}]", vec!["1"; 500_001].join(","));
    for (body, code, says) in [
        ("{\"a\": 1}".to_string(), 400, "not an object"),
        ("[1, 2.5]".to_string(), 400, "not an integer"),
        ("[1, \"2\"]".to_string(), 400, "a string"),
        ("[2147483649]".to_string(), 400, "2^31"),
        ("[1,".to_string(), 400, "not JSON"),
        (too_many, 413, "500000"),
    ] {
        let (status, answer) = post(&url, body.clone()).await;
        assert_eq!(status, code, "{body:.60}: {answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains(says), "{body:.60}: {answer}");
    }
    let cloud = cloud().await;
    for queue in ["map", "reduce"] {
        let url = cloud.sqs.get_queue_url().queue_name(format!("{}-{queue}", stack.name)).send().await.unwrap();
        let attributes = cloud
            .sqs
            .get_queue_attributes()
            .queue_url(url.queue_url().unwrap())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name: &str| attributes.attributes().unwrap()[&name.into()].parse::<u64>().unwrap();
        assert_eq!(
            count("ApproximateNumberOfMessages") + count("ApproximateNumberOfMessagesNotVisible"),
            0,
            "nothing was enqueued on the {queue} queue"
        );
    }
    let results = cloud.dynamodb.scan().table_name(format!("{}-results", stack.name)).send().await.unwrap();
    assert_eq!(results.count(), 0, "nothing was recorded");

    let (code, empty) = post(&url, "[]".into()).await;
    assert_eq!((code, &empty["count"]), (202, &json!(0)));
    let done = status(&url, empty["arrayId"].as_str().unwrap()).await;
    assert_eq!((&done["status"], &done["sum"]), (&json!("done"), &json!(0)), "an empty array is done at once: {done}");
    let unknown = http().get(&format!("{url}/no-such-array")).await.unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // The benchmark checks every sum it posts and says how many were exact.
    let report: Value = serde_json::from_str(&stack.ok(&["--json", "bench", "--count", "1"])).unwrap();
    for scenario in report["scenarios"].as_array().unwrap() {
        assert_eq!(scenario["exact"], scenario["arrays"], "{scenario}");
    }

    // The stack is a mapreduce: the pipeline is refused on it, naming the program.
    let mut as_pipeline = stack.command(&["plan"]);
    as_pipeline.args(["--program", "pipeline"]);
    let out = as_pipeline.output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("instance of program `mapreduce`"), "{said}");

    // Its state names its program: `outputs` and `down` need no --program.
    stack.program = "";
    let outputs = stack.ok(&["outputs"]);
    assert!(outputs.contains(url.trim_end_matches("arrays")), "the adder's outputs: {outputs}");
    stack.down();
    assert_eq!(resources_named(&cloud, &stack.name).await, Vec::<String>::new());
}

#[tokio::test]
async fn an_array_whose_chunk_can_never_be_processed_fails_and_never_sums() {
    let mut stack = TestStack::of_program("mrf", "mapreduce");
    stack.up();
    let cloud = cloud().await;
    // An array of two chunks, recorded as the API records one; its second chunk holds an element
    // no map can take, as a corrupted message would.
    let array_id = format!("poisoned-{}", std::process::id());
    let item = [
        ("arrayId", aws_sdk_dynamodb::types::AttributeValue::S(array_id.clone())),
        ("status", aws_sdk_dynamodb::types::AttributeValue::S("pending".into())),
        ("count", aws_sdk_dynamodb::types::AttributeValue::N("4".into())),
        ("chunks", aws_sdk_dynamodb::types::AttributeValue::N("2".into())),
        ("done", aws_sdk_dynamodb::types::AttributeValue::N("0".into())),
    ];
    cloud
        .dynamodb
        .put_item()
        .table_name(format!("{}-results", stack.name))
        .set_item(Some(item.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        .send()
        .await
        .unwrap();
    let queue = stack.output("map-queue", "url");
    let tree = json!({ "chunks": 2, "fan_in": 16 });
    for (chunk, elements) in [(0, json!([1, 2])), (1, json!([3, 9_999_999_999_i64]))] {
        let task = json!({ "task": "map", "array_id": array_id, "chunk": chunk, "tree": tree, "elements": elements });
        cloud.sqs.send_message().queue_url(&queue).message_body(task.to_string()).send().await.unwrap();
    }
    let url = stack.output("api", "url") + "arrays";
    let (code, fine) = post(&url, "[5, 6]".into()).await;
    assert_eq!(code, 202, "{fine}");
    let fine_id = fine["arrayId"].as_str().unwrap().to_string();
    let statuses = settled(&url, &[array_id.clone(), fine_id.clone()], Duration::from_secs(120)).await;
    assert_eq!(statuses[&fine_id]["sum"], 22, "other arrays are unaffected: {}", statuses[&fine_id]);
    let found = &statuses[&array_id];
    assert_eq!(found["status"], "failed", "{found}");
    assert!(found["reason"].as_str().unwrap().contains("chunk 1"), "the reason names the chunk: {found}");
    assert!(found.get("sum").is_none(), "a failed array has no sum: {found}");

    let logged = stack.ok(&["--json", "logs", "--since", "10m"]);
    for function in ["arrays", "mapper", "reducer"] {
        let seen =
            logged.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).any(|l| l["function"] == function);
        assert!(seen, "logs shows the {function}'s lines:\n{logged}");
    }
    stack.down();
}
