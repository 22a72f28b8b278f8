//! `provision --program mapreduce bench`: the distributed adder measured on its goals. Posts
//! arrays of random integers (random signs, up to 2^31) and waits for their results, read from the
//! results table (so polling does not load the API being measured):
//! - one array of 1 element, `repeats` times: one chunk through the map step: the round trip of
//!   one message, from which the seed's design (one message per element, a reduce combining two
//!   rows per invocation: about n invocations one after another) is computed for the same arrays;
//! - one array of 10,000 and one of 100,000, `repeats` times each;
//! - 200 arrays of 1 to 2,000 elements posted at once (`users` at a time).
//!
//! Time to result is what a user sees: from sending the POST to seeing the array done (the results
//! table is polled every 50 ms). The same inside the stack (from the API's record to the step
//! that marked it done, `createdAtMs` to `doneAtMs`) is in the JSON report. Every sum is checked
//! against the one computed here.

use crate::cloud::Cloud;
use crate::commands::Context;
use crate::engine::state::StateStore;
use crate::http::HttpClient;
use anyhow::{bail, Context as _, Result};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The goals the issue set for this emulator (seconds to result).
const GOAL_10K_S: f64 = 5.0;
const GOAL_100K_S: f64 = 15.0;
/// How long one scenario may take before the arrays still pending are reported as such.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// What one array came to.
#[derive(Debug, Clone)]
struct Outcome {
    elements: usize,
    exact: bool,
    /// `done`, `failed` or `pending` (still, at the timeout).
    status: String,
    /// From sending the POST to seeing the array done.
    time_to_result_ms: Option<i64>,
    /// From the API's record to done, as the stack's functions stamped them.
    in_stack_ms: Option<i64>,
    /// Which batch of posts it was in, and how long that batch took from its first post to its
    /// last result.
    batch: usize,
    batch_wall_ms: u128,
}

/// Runs the adder's benchmark against the stack in `ctx`.
pub async fn run(ctx: &Context, repeats: usize, users: usize) -> Result<()> {
    let (url, results) = deployed(ctx).await?;
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let http = HttpClient::new().with_auth(crate::commands::caller_auth(ctx, &cloud).await?);
    let mut report = Vec::new();
    for (label, length) in [("1 element", 1usize), ("10,000 elements", 10_000), ("100,000 elements", 100_000)] {
        let mut outcomes = Vec::new();
        for repeat in 0..repeats {
            outcomes.extend(batch(&http, &cloud, &url, &results, &[length], 1, repeat).await?);
        }
        report.push((label.to_string(), outcomes));
    }
    let lengths: Vec<usize> = (0..200).map(|_| fastrand::usize(1..=2000)).collect();
    let outcomes = batch(&http, &cloud, &url, &results, &lengths, users.max(1), 0).await?;
    report.push(("200 arrays of 1-2,000 at once".to_string(), outcomes));
    print(ctx.json, &report);
    if report.iter().flat_map(|(_, o)| o).any(|o| !o.exact) {
        bail!("some arrays were not done with the exact sum (see above)");
    }
    Ok(())
}

/// The API's `/arrays` URL and the results table, from the state.
async fn deployed(ctx: &Context) -> Result<(String, String)> {
    let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    let output = |id: &str, name: &str| {
        state.resources.get(id).and_then(|r| r.outputs.get(name)).and_then(Value::as_str).map(str::to_string)
    };
    let url = output("api", "url").context("the stack has no API: run `provision --program mapreduce up` first")?;
    let results = output("results", "name").context("the stack has no results table: run `up` first")?;
    Ok((format!("{url}arrays"), results))
}

/// Posts arrays of these lengths (`users` at a time) and waits until each is done or failed.
async fn batch(
    http: &HttpClient,
    cloud: &Cloud,
    url: &str,
    results: &str,
    lengths: &[usize],
    users: usize,
    batch_index: usize,
) -> Result<Vec<Outcome>> {
    let started = Instant::now();
    let arrays: Vec<(Vec<i64>, i64)> = lengths
        .iter()
        .map(|n| {
            let elements: Vec<i64> = (0..*n).map(|_| fastrand::i64(-(1 << 31)..=(1 << 31))).collect();
            let sum = elements.iter().map(|x| 2 * x).sum();
            (elements, sum)
        })
        .collect();
    let mut posted: HashMap<String, (usize, i64, Instant)> = HashMap::new();
    for group in arrays.chunks(users) {
        let posts = group.iter().map(|(elements, _)| async move {
            let sent = Instant::now();
            let body = serde_json::to_string(elements).expect("integers serialize");
            (sent, http.post(url, Some("application/json"), body).await)
        });
        for ((elements, sum), (sent, answer)) in group.iter().zip(futures::future::join_all(posts).await) {
            let answer = answer?;
            if answer.status != 202 {
                bail!("POST {url} answered {}: {}", answer.status, answer.body);
            }
            let body: Value = serde_json::from_str(&answer.body).context("the API's answer is not JSON")?;
            let id = body["arrayId"].as_str().context("the API's answer has no arrayId")?.to_string();
            posted.insert(id, (elements.len(), *sum, sent));
        }
    }
    let finished = wait_for(cloud, results, &posted, started).await?;
    let batch_wall_ms = started.elapsed().as_millis();
    Ok(posted
        .iter()
        .map(|(id, (elements, sum, sent))| {
            let (item, seen) = match finished.get(id) {
                Some((item, seen)) => (Some(item), Some(seen)),
                None => (None, None),
            };
            let number = |key: &str| {
                item.and_then(|i| i.get(key)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok())
            };
            let status =
                item.and_then(|i| i.get("status")).and_then(|v| v.as_s().ok()).cloned().unwrap_or("pending".into());
            Outcome {
                elements: *elements,
                exact: status == "done" && number("sum") == Some(*sum),
                time_to_result_ms: seen.map(|seen| seen.duration_since(*sent).as_millis() as i64),
                in_stack_ms: number("doneAtMs").zip(number("createdAtMs")).map(|(done, created)| done - created),
                status,
                batch: batch_index,
                batch_wall_ms,
            }
        })
        .collect())
}

type Item = HashMap<String, AttributeValue>;

/// Polls the results table (100 arrays a call) until every array has left `pending`; returns each
/// one's item and when it was first seen so.
async fn wait_for(
    cloud: &Cloud,
    results: &str,
    posted: &HashMap<String, (usize, i64, Instant)>,
    started: Instant,
) -> Result<BTreeMap<String, (Item, Instant)>> {
    let mut finished = BTreeMap::new();
    while finished.len() < posted.len() && started.elapsed() < SCENARIO_TIMEOUT {
        let pending: Vec<&String> = posted.keys().filter(|id| !finished.contains_key(*id)).collect();
        for ids in pending.chunks(100) {
            let keys = ids.iter().map(|id| HashMap::from([("arrayId".to_string(), AttributeValue::S(id.to_string()))]));
            let wanted = KeysAndAttributes::builder().set_keys(Some(keys.collect())).consistent_read(true).build()?;
            let answer = cloud
                .dynamodb
                .batch_get_item()
                .request_items(results, wanted)
                .send()
                .await
                .map_err(|e| crate::aws::errors::context(format!("reading table {results}"), e))?;
            for item in answer.responses().and_then(|r| r.get(results)).into_iter().flatten() {
                let status = item.get("status").and_then(|v| v.as_s().ok()).map(String::as_str);
                if matches!(status, Some("done" | "failed")) {
                    let id = item.get("arrayId").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                    finished.insert(id, (item.clone(), Instant::now()));
                }
            }
        }
        if finished.len() < posted.len() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(finished)
}

/// The value at quantile `q` (0..=1) of sorted `values`.
fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

fn sorted(values: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut values: Vec<i64> = values.collect();
    values.sort();
    values
}

fn spread(sorted: &[i64]) -> Value {
    json!({ "min": sorted.first(), "p50": quantile(sorted, 0.5), "p99": quantile(sorted, 0.99), "max": sorted.last() })
}

fn print(json: bool, report: &[(String, Vec<Outcome>)]) {
    let one_message_ms =
        report.first().and_then(|(_, o)| quantile(&sorted(o.iter().filter_map(|o| o.in_stack_ms)), 0.5)).unwrap_or(0);
    let rows: Vec<Value> = report
        .iter()
        .map(|(label, outcomes)| {
            let elements: usize = outcomes.iter().map(|o| o.elements).sum();
            let walls: BTreeMap<usize, u128> = outcomes.iter().map(|o| (o.batch, o.batch_wall_ms)).collect();
            let wall_ms = walls.values().sum::<u128>().max(1);
            let largest = outcomes.iter().map(|o| o.elements).max().unwrap_or(0) as i64;
            json!({
                "scenario": label,
                "arrays": outcomes.len(),
                "elements": elements,
                "exact": outcomes.iter().filter(|o| o.exact).count(),
                "failed": outcomes.iter().filter(|o| o.status == "failed").count(),
                "pending": outcomes.iter().filter(|o| o.status == "pending").count(),
                "time_to_result_ms": spread(&sorted(outcomes.iter().filter_map(|o| o.time_to_result_ms))),
                "in_stack_ms": spread(&sorted(outcomes.iter().filter_map(|o| o.in_stack_ms))),
                "elements_per_s": (elements as f64 * 1000.0 / wall_ms as f64).round() as u64,
                "seed_design_estimate_s": (largest * one_message_ms) as f64 / 1000.0,
            })
        })
        .collect();
    if json {
        let report = json!({ "scenarios": rows, "one_message_ms": one_message_ms });
        println!("{}", serde_json::to_string_pretty(&report).expect("reports serialize"));
        return;
    }
    println!(
        "{:<30} {:>6} {:>8} {:>6}  {:>32}  {:>10}  {:>13}",
        "scenario", "arrays", "elements", "exact", "time to result ms min/p50/p99/max", "elements/s", "seed's design"
    );
    for row in &rows {
        let ms = |key: &str| row["time_to_result_ms"][key].as_i64().map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<30} {:>6} {:>8} {:>6}  {:>32}  {:>10}  {:>11.0} s",
            row["scenario"].as_str().unwrap_or_default(),
            row["arrays"].as_u64().unwrap_or(0),
            row["elements"].as_u64().unwrap_or(0),
            row["exact"].as_u64().unwrap_or(0),
            format!("{}/{}/{}/{}", ms("min"), ms("p50"), ms("p99"), ms("max")),
            row["elements_per_s"].as_u64().unwrap_or(0),
            row["seed_design_estimate_s"].as_f64().unwrap_or(0.0),
        );
    }
    let p50 = |at: usize| rows.get(at).and_then(|r| r["time_to_result_ms"]["p50"].as_i64()).map(|v| v as f64 / 1000.0);
    if let (Some(ten), Some(hundred)) = (p50(1), p50(2)) {
        println!(
            "goals: 10,000 elements in at most {GOAL_10K_S} s (median {ten:.2} s), 100,000 in at most {GOAL_100K_S} s \
             (median {hundred:.2} s)"
        );
    }
    println!(
        "seed's design (last column), computed: one message per element and a reduce of two rows per invocation \
         take about n invocations one after another, {one_message_ms} ms each here (one message's round trip in \
         the stack, the 1-element median), for the scenario's largest array"
    );
}
