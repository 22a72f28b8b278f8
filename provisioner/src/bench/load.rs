//! The load: virtual users, one tokio task each, posting the classic record
//! `{"id", "message", "timestamp"}` (or a JSON array of them) over keep-alive connections.
//!
//! Closed model by default (as k6's looping VUs): each user sends its next request as soon as
//! the previous one is answered. With a rate, an open model (as k6's constant arrival rate): the
//! n-th request is due at `start + n / rate`, and the first idle user takes it; when every user
//! is busy the request goes out late, and the achieved rate shows it. Requests are numbered from
//! one shared counter, so ids (`<run>-<n>`, or `<run>-<n>-<k>` inside an array) are unique per run.
//! Every answer is checked ([`check_response`]): 200 and the body the API promises.

use crate::http::HttpClient;
use record::now_ms;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The classic sample's message.
pub const MESSAGE: &str = "Hello World";

/// When the load stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// Send for this long (requests in flight at the end are still awaited).
    After(Duration),
    /// Send exactly this many requests.
    Count(u64),
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: String,
    pub run_id: String,
    pub users: usize,
    pub stop: Stop,
    /// Requests per second across all users; `None`: back to back.
    pub rate: Option<f64>,
    /// Records per request: 1 sends one object, more send an array.
    pub records_per_request: usize,
    pub request_timeout: Duration,
}

/// Live counts, read by the progress display while the load runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub accepted_records: AtomicU64,
    pub rejected: AtomicU64,
    /// Set when every user has finished.
    pub done: AtomicBool,
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The request's number in the run.
    pub index: u64,
    /// Unix milliseconds when it was sent.
    pub sent_at_ms: i64,
    /// Round trip, milliseconds.
    pub http_ms: f64,
    /// `Ok` when accepted; otherwise the kind of rejection (for counting) .
    pub result: Result<(), String>,
}

/// The id of record `k` of request `index` in run `run_id`.
pub fn record_id(run_id: &str, index: u64, k: usize, records_per_request: usize) -> String {
    if records_per_request <= 1 {
        format!("{run_id}-{index}")
    } else {
        format!("{run_id}-{index}-{k}")
    }
}

/// The ids request `index` carries.
pub fn request_ids(run_id: &str, index: u64, records_per_request: usize) -> Vec<String> {
    (0..records_per_request.max(1)).map(|k| record_id(run_id, index, k, records_per_request)).collect()
}

/// The body of request `index`: the classic object, or an array of `records_per_request` of them.
pub fn body(run_id: &str, index: u64, records_per_request: usize, timestamp_s: i64) -> String {
    let record = |id: String| json!({ "id": id, "message": MESSAGE, "timestamp": timestamp_s });
    let ids = request_ids(run_id, index, records_per_request);
    if records_per_request <= 1 {
        record(ids.into_iter().next().unwrap_or_default()).to_string()
    } else {
        Value::Array(ids.into_iter().map(record).collect()).to_string()
    }
}

/// Whether an answer accepts the request: 200 and `{"message":"success"}` (plus `"accepted": n`
/// for an array of `n`). `Err` names the kind of rejection, short enough to count by.
pub fn check_response(status: u16, body: &str, records_per_request: usize) -> Result<(), String> {
    if status != 200 {
        let detail = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").or_else(|| v.get("message")).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(80).collect());
        return Err(format!("HTTP {status}: {detail}"));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|_| format!("HTTP 200 with a body that is not JSON: {:.60}", body))?;
    if value.get("message").and_then(Value::as_str) != Some("success") {
        return Err(format!("HTTP 200 without \"message\":\"success\": {:.60}", body));
    }
    if records_per_request > 1 {
        let accepted = value.get("accepted").and_then(Value::as_u64);
        if accepted != Some(records_per_request as u64) {
            return Err(format!("HTTP 200 accepting {accepted:?} of {records_per_request} records"));
        }
    }
    Ok(())
}

/// Runs the load and returns every request's outcome, in no particular order.
pub async fn run(plan: Arc<Plan>, client: HttpClient, counters: Arc<Counters>) -> Vec<Outcome> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let users: Vec<_> = (0..plan.users.max(1))
        .map(|_| tokio::spawn(user(plan.clone(), client.clone(), counters.clone(), next.clone(), start)))
        .collect();
    let mut outcomes = Vec::new();
    for user in users {
        // A user task only ends by returning (it does not panic on a failed request).
        if let Ok(mut done) = user.await {
            outcomes.append(&mut done);
        }
    }
    counters.done.store(true, Ordering::SeqCst);
    outcomes
}

/// One virtual user: takes request numbers until the plan says stop.
async fn user(
    plan: Arc<Plan>,
    client: HttpClient,
    counters: Arc<Counters>,
    next: Arc<AtomicU64>,
    start: Instant,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    loop {
        let index = next.fetch_add(1, Ordering::SeqCst);
        if let Stop::Count(count) = plan.stop {
            if index >= count {
                break;
            }
        }
        if let Some(rate) = plan.rate {
            let due = start + Duration::from_secs_f64(index as f64 / rate);
            if let Stop::After(duration) = plan.stop {
                if due >= start + duration {
                    break;
                }
            }
            tokio::time::sleep_until(due).await;
        } else if let Stop::After(duration) = plan.stop {
            if start.elapsed() >= duration {
                break;
            }
        }
        outcomes.push(send(&plan, &client, &counters, index).await);
    }
    outcomes
}

async fn send(plan: &Plan, client: &HttpClient, counters: &Counters, index: u64) -> Outcome {
    let sent_at_ms = now_ms();
    let body = body(&plan.run_id, index, plan.records_per_request, sent_at_ms / 1000);
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let answer =
        tokio::time::timeout(plan.request_timeout, client.post(&plan.url, Some("application/json"), body)).await;
    let http_ms = started.elapsed().as_secs_f64() * 1000.0;
    let result = match answer {
        Err(_) => Err(format!("no answer within {:?}", plan.request_timeout)),
        Ok(Err(e)) => Err(format!("connection error: {}", root_cause(&e))),
        Ok(Ok(response)) => check_response(response.status, &response.body, plan.records_per_request),
    };
    if result.is_ok() {
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        counters.accepted_records.fetch_add(plan.records_per_request.max(1) as u64, Ordering::Relaxed);
    } else {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
    }
    Outcome { index, sent_at_ms, http_ms, result }
}

fn root_cause(e: &anyhow::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_request_and_record() {
        assert_eq!(request_ids("r", 7, 1), ["r-7"]);
        assert_eq!(request_ids("r", 7, 3), ["r-7-0", "r-7-1", "r-7-2"]);
    }

    #[test]
    fn bodies_are_the_classic_record_or_an_array() {
        let one: Value = serde_json::from_str(&body("run", 3, 1, 1_700_000_000)).unwrap();
        assert_eq!(one, json!({"id": "run-3", "message": "Hello World", "timestamp": 1_700_000_000}));
        let many: Value = serde_json::from_str(&body("run", 3, 2, 5)).unwrap();
        assert_eq!(many.as_array().unwrap().len(), 2);
        assert_eq!(many[1]["id"], "run-3-1");
        // The API's own validation accepts them.
        assert_eq!(record::parse_request_body(body("run", 3, 500, 5).as_bytes()).unwrap().len(), 500);
    }

    #[test]
    fn only_200_with_the_promised_body_is_accepted() {
        assert_eq!(check_response(200, r#"{"message":"success"}"#, 1), Ok(()));
        assert_eq!(check_response(200, r#"{"message":"success","accepted":3}"#, 3), Ok(()));
        assert_eq!(
            check_response(200, r#"{"message":"success","accepted":2}"#, 3).unwrap_err(),
            "HTTP 200 accepting Some(2) of 3 records"
        );
        assert_eq!(check_response(502, r#"{"error":"stream busy"}"#, 1).unwrap_err(), "HTTP 502: stream busy");
        assert_eq!(check_response(500, "Internal", 1).unwrap_err(), "HTTP 500: Internal");
        assert!(check_response(200, "ok", 1).unwrap_err().contains("not JSON"));
        assert!(check_response(200, r#"{"message":"nope"}"#, 1).unwrap_err().contains("without"));
    }
}
