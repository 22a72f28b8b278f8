//! The host of the distributed adder's three functions: the Lambda runtime, DynamoDB and SQS, the
//! exactly-once steps (`store`), and fault injection (`chaos`). Each function's own logic is its
//! binary (`arrays`, `mapper`, `reducer`), handed to [`run_api`], [`run_mapper`] or
//! [`run_reducer`] as plain function pointers, as the pipeline's functions are: an edit to the
//! logic recompiles only the small binary crate.
//!
//! Environment: `RESULTS_TABLE`, `SCRATCHPAD_TABLE`, `MAP_QUEUE_URL`, `REDUCE_QUEUE_URL`,
//! `DEAD_LETTER_QUEUE_URL`, `DEAD_LETTER_QUEUE_ARN`, `CHUNK_SIZE`, `FAN_IN`, `CHAOS_CRASH_RATE`
//! (each function reads the ones it needs), and what `function_host::aws_config` reads.

pub mod chaos;
pub mod queues;
pub mod store;

pub use adder::interface::{Api, Map, Reduce};
use adder::{Rejection, Task, Tree};
pub use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};
use chaos::{Chaos, Crash};
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
use queues::Queue;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{Store, Written};

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is not set").into())
}

fn env_number(name: &str, default: u32) -> Result<u32, Error> {
    match std::env::var(name) {
        Ok(text) => text.parse().map_err(|e| format!("environment variable {name} `{text}`: {e}").into()),
        Err(_) => Ok(default),
    }
}

async fn clients() -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    let config = function_host::aws_config();
    (aws_sdk_dynamodb::Client::new(&config), aws_sdk_sqs::Client::new(&config))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

// The API: POST /arrays, GET /arrays/{arrayId}.

/// Runs the API function: `POST /arrays` records the array and enqueues its chunks (202 at once);
/// `GET /arrays/{arrayId}` answers where it stands.
pub fn run_api(api: Api) -> Result<(), Error> {
    function_host::run(async move {
        let (dynamodb, sqs) = clients().await;
        let store = Store::new(dynamodb, env("RESULTS_TABLE")?, String::new());
        let map_queue = Queue::new(sqs, env("MAP_QUEUE_URL")?);
        let (chunk_size, fan_in) = (env_number("CHUNK_SIZE", 2000)? as usize, env_number("FAN_IN", 16)?);
        let (store, map_queue) = (&store, &map_queue);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
            let request = &event.payload;
            let answer = match (request.http_method.as_str(), request.path_parameters.get("arrayId")) {
                ("POST", None) => submit(api, store, map_queue, request, chunk_size, fan_in).await,
                ("GET", Some(array_id)) => status(store, array_id).await,
                (method, _) => respond(404, &json!({ "message": format!("no route {method} {}: POST /arrays, GET /arrays/{{arrayId}}", request.path.as_deref().unwrap_or("")) })),
            };
            Ok::<_, Error>(answer)
        }))
        .await
    })
}

async fn submit(
    api: Api,
    store: &Store,
    map_queue: &Queue,
    request: &ApiGatewayProxyRequest,
    chunk_size: usize,
    fan_in: u32,
) -> ApiGatewayProxyResponse {
    let body = body_of(request);
    let elements = match body.as_deref().map_err(|e| Rejection { status: 400, reason: e.clone() }).and_then(api.parse) {
        Ok(elements) => elements,
        Err(rejection) => {
            tracing::warn!(status = rejection.status, reason = %rejection.reason, "array refused");
            return respond(rejection.status, &(api.refused)(&rejection));
        }
    };
    let array_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let tree = Tree::new(elements.len(), chunk_size, fan_in);
    if let Err(error) = store.open(&array_id, elements.len() as u64, &tree, now_ms()).await {
        tracing::error!(%error, "array not recorded");
        return respond(503, &json!({ "message": "the array could not be recorded; retry later" }));
    }
    let tasks: Vec<Task> = elements
        .chunks(chunk_size.max(1))
        .enumerate()
        .map(|(chunk, part)| Task::Map {
            array_id: array_id.clone(),
            chunk: chunk as u32,
            tree,
            elements: part.to_vec(),
        })
        .collect();
    if let Err(error) = map_queue.send_all(&tasks).await {
        tracing::error!(%array_id, %error, "chunks not enqueued");
        let _ = store.fail(&array_id, &format!("its chunks could not be enqueued: {error}")).await;
        return respond(
            503,
            &json!({ "arrayId": array_id, "message": "the array could not be enqueued; retry later" }),
        );
    }
    tracing::info!(%array_id, count = elements.len(), chunks = tree.chunks, "array accepted");
    respond(202, &json!({ "arrayId": array_id, "count": elements.len() }))
}

async fn status(store: &Store, array_id: &str) -> ApiGatewayProxyResponse {
    match store.status(array_id).await {
        Ok(Some(status)) => respond(200, &status.body(array_id)),
        Ok(None) => respond(404, &json!({ "arrayId": array_id, "message": "no such array" })),
        Err(error) => {
            tracing::error!(%array_id, %error, "status not read");
            respond(503, &json!({ "message": "the status could not be read; retry later" }))
        }
    }
}

/// The raw body, base64-decoded when API Gateway says it is encoded.
fn body_of(request: &ApiGatewayProxyRequest) -> Result<String, String> {
    let body = request.body.clone().unwrap_or_default();
    if !request.is_base64_encoded {
        return Ok(body);
    }
    let bytes = base64_decode(&body).ok_or("the body is not valid base64")?;
    String::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_string())
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> =
        text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').map(value).collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let bits = group.iter().enumerate().fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&bits.to_be_bytes()[1..group.len()]);
    }
    Some(out)
}

fn respond(status: u16, body: &Value) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

// The map and reduce steps, fed by SQS.

/// An SQS event, as much of it as the steps read.
#[derive(Debug, Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsRecord {
    message_id: String,
    #[serde(default)]
    body: String,
    #[serde(rename = "eventSourceARN", default)]
    event_source_arn: String,
}

/// The partial batch response: the messages to deliver again.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchResponse {
    batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemFailure {
    item_identifier: String,
}

/// Why one message's step stopped.
#[derive(Debug)]
enum Stop {
    /// Chaos: the whole invocation fails, as a crash would.
    Crash(String),
    /// A transient failure: this message is delivered again.
    Retry(String),
}

impl From<String> for Stop {
    fn from(error: String) -> Self {
        Stop::Retry(error)
    }
}

/// What the workers share: the tables, the queues, the chaos.
struct Worker {
    store: Store,
    reduce_queue: Queue,
    dead_letters: Queue,
    chaos: Chaos,
}

impl Worker {
    async fn from_env() -> Result<Self, Error> {
        let chaos = Chaos::from_env()?;
        let (dynamodb, sqs) = clients().await;
        Ok(Self {
            store: Store::new(dynamodb, env("RESULTS_TABLE")?, env("SCRATCHPAD_TABLE")?),
            reduce_queue: Queue::new(sqs.clone(), env("REDUCE_QUEUE_URL")?),
            dead_letters: Queue::new(sqs, env("DEAD_LETTER_QUEUE_URL")?),
            chaos,
        })
    }

    /// Sends a message that can never be processed to the dead-letter queue, with why; the
    /// reducer then marks its array failed.
    async fn unprocessable(&self, body: &str, reason: String) -> Result<(), Stop> {
        let array_id =
            serde_json::from_str::<Value>(body).ok().and_then(|v| v["array_id"].as_str().map(str::to_string));
        tracing::warn!(array_id = ?array_id, %reason, "message cannot be processed: sent to the dead-letter queue");
        self.dead_letters.send(&Task::Unprocessable { array_id, reason }).await.map_err(Stop::Retry)
    }

    /// After node `(level, index)` of `tree` holds `value`: the array is done when it is the root,
    /// otherwise its parent is asked for.
    async fn next(&self, array_id: &str, tree: Tree, level: u32, index: u32, value: i64) -> Result<(), Stop> {
        if level == tree.root_level() {
            if self.store.finish(array_id, value, now_ms()).await? == Written::Now {
                tracing::info!(%array_id, sum = value, "array done");
            }
            return Ok(());
        }
        let (level, index) = tree.parent(level, index);
        self.reduce_queue.send(&Task::Reduce { array_id: array_id.to_string(), level, index, tree }).await?;
        Ok(())
    }
}

impl BatchResponse {
    /// Takes one message's outcome: a crash fails the whole invocation (its messages are all
    /// delivered again); a transient failure is reported for that message alone.
    fn settle(&mut self, record: &SqsRecord, outcome: Result<(), Stop>) -> Result<(), Error> {
        match outcome {
            Ok(()) => Ok(()),
            Err(Stop::Crash(reason)) => Err(reason.into()),
            Err(Stop::Retry(error)) => {
                tracing::warn!(message = %record.message_id, %error, "message failed: it is delivered again");
                self.batch_item_failures.push(ItemFailure { item_identifier: record.message_id.clone() });
                Ok(())
            }
        }
    }
}

/// A chaos point as a step's stop.
fn point(crash: &mut Crash, what: &str) -> Result<(), Stop> {
    crash.point(what).map_err(Stop::Crash)
}

/// Runs the mapper: each message is a chunk, doubled and summed with `map`, written once with the
/// array's progress, then handed on (the array is done, or its parent node is asked for).
pub fn run_mapper(map: Map) -> Result<(), Error> {
    function_host::run(async move {
        let worker = Worker::from_env().await?;
        let worker = &worker;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            let mut crash = worker.chaos.invocation(3 * event.payload.records.len());
            point(&mut crash, "before its first write").map_err(|_| Error::from("chaos: crashed before any step"))?;
            let mut response = BatchResponse::default();
            for record in &event.payload.records {
                let outcome = map_one(worker, map, record, &mut crash).await;
                response.settle(record, outcome)?;
            }
            crash.end()?;
            tracing::info!(
                chunks = event.payload.records.len(),
                retried = response.batch_item_failures.len(),
                "map batch done"
            );
            Ok::<_, Error>(response)
        }))
        .await
    })
}

async fn map_one(worker: &Worker, map: Map, record: &SqsRecord, crash: &mut Crash) -> Result<(), Stop> {
    let task = serde_json::from_str::<Task>(&record.body).map_err(|e| format!("not a task ({e})"));
    let (array_id, chunk, tree, elements) = match task.and_then(|t| t.check().map(|()| t)) {
        Ok(Task::Map { array_id, chunk, tree, elements }) => (array_id, chunk, tree, elements),
        Ok(other) => return worker.unprocessable(&record.body, format!("the map queue got a {other:?}")).await,
        Err(reason) => return worker.unprocessable(&record.body, format!("a chunk could not be read: {reason}")).await,
    };
    let value = (map.map)(&elements);
    let written = worker.store.put_chunk(&array_id, chunk, value, elements.len() as u64).await?;
    point(crash, "after writing a chunk")?;
    if written == Written::ArrayClosed {
        return Ok(()); // failed (or done) already: nothing more to do for it
    }
    worker.next(&array_id, tree, 0, chunk, value).await?;
    point(crash, "after handing a chunk on")
}

/// Runs the reducer: a message from the reduce queue asks for node `(level, index)`; once all its
/// children are written it writes their combination once, then hands it on. A message from the
/// dead-letter queue marks its array failed, with why.
pub fn run_reducer(reduce: Reduce) -> Result<(), Error> {
    function_host::run(async move {
        let worker = Worker::from_env().await?;
        let dead_letter_arn = env("DEAD_LETTER_QUEUE_ARN")?;
        let (worker, dead_letter_arn) = (&worker, &dead_letter_arn);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            let mut crash = worker.chaos.invocation(3 * event.payload.records.len());
            point(&mut crash, "before its first write").map_err(|_| Error::from("chaos: crashed before any step"))?;
            let mut response = BatchResponse::default();
            for record in &event.payload.records {
                let outcome = if &record.event_source_arn == dead_letter_arn {
                    fail_array(worker, record).await
                } else {
                    reduce_one(worker, reduce, record, &mut crash).await
                };
                response.settle(record, outcome)?;
            }
            crash.end()?;
            tracing::info!(
                tasks = event.payload.records.len(),
                retried = response.batch_item_failures.len(),
                "reduce batch done"
            );
            Ok::<_, Error>(response)
        }))
        .await
    })
}

async fn reduce_one(worker: &Worker, reduce: Reduce, record: &SqsRecord, crash: &mut Crash) -> Result<(), Stop> {
    let task = serde_json::from_str::<Task>(&record.body).map_err(|e| format!("not a task ({e})"));
    let (array_id, level, index, tree) = match task.and_then(|t| t.check().map(|()| t)) {
        Ok(Task::Reduce { array_id, level, index, tree }) => (array_id, level, index, tree),
        Ok(other) => return worker.unprocessable(&record.body, format!("the reduce queue got a {other:?}")).await,
        Err(reason) => {
            return worker.unprocessable(&record.body, format!("a reduce task could not be read: {reason}")).await
        }
    };
    let children = tree.children(level, index);
    let values = worker.store.nodes(&array_id, level - 1, children.clone()).await?;
    if values.len() < children.len() {
        // Not all written yet: the last child's writer asks for this node again.
        return Ok(());
    }
    let value = (reduce.combine)(&values);
    let written = worker.store.put_node(&array_id, level, index, value).await?;
    point(crash, "after writing a node")?;
    if written == Written::Before {
        // Someone wrote it first (a repeat, or a second reducer): the same value, handed on again.
        tracing::debug!(%array_id, level, index, "node written before");
    }
    worker.next(&array_id, tree, level, index, value).await?;
    point(crash, "after handing a node on")
}

/// A dead letter: its array cannot be completed, so it is marked failed, with why.
async fn fail_array(worker: &Worker, record: &SqsRecord) -> Result<(), Stop> {
    let task = match serde_json::from_str::<Task>(&record.body) {
        Ok(task) => task,
        Err(error) => {
            tracing::error!(message = %record.message_id, %error, "a dead letter names no array: dropped");
            return Ok(());
        }
    };
    let reason = match &task {
        Task::Unprocessable { reason, .. } => reason.clone(),
        Task::Map { chunk, .. } => format!("chunk {chunk} failed too many times and was dead-lettered"),
        Task::Reduce { level, index, .. } => {
            format!("node ({level}, {index}) failed too many times and was dead-lettered")
        }
    };
    let Some(array_id) = task.array_id() else {
        tracing::error!(message = %record.message_id, %reason, "a dead letter names no array: dropped");
        return Ok(());
    };
    if worker.store.fail(array_id, &reason).await? == Written::Now {
        tracing::warn!(%array_id, %reason, "array failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_bodies_decode() {
        assert_eq!(base64_decode("WzEsMiwzXQ==").unwrap(), b"[1,2,3]");
        assert_eq!(base64_decode("WzFd").unwrap(), b"[1]");
        assert!(base64_decode("!!").is_none());
    }

    #[test]
    fn sqs_events_and_batch_responses_have_lambdas_shape() {
        let event: SqsEvent = serde_json::from_value(json!({"Records": [
            {"messageId": "m1", "body": "{}", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "attributes": {}}
        ]}))
        .unwrap();
        assert_eq!(event.records[0].event_source_arn, "arn:aws:sqs:us-east-1:1:q");
        let response = BatchResponse { batch_item_failures: vec![ItemFailure { item_identifier: "m1".into() }] };
        assert_eq!(serde_json::to_value(&response).unwrap(), json!({"batchItemFailures": [{"itemIdentifier": "m1"}]}));
    }
}
