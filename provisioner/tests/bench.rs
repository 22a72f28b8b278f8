//! `provision bench` against a stack on the local cloud: it sends what it says, every accepted
//! record is found in Postgres, the figures come from the rows, and the plot is written.

mod support;

use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn bench_reports_every_accepted_record_arriving_with_its_latency() {
    let mut stack = TestStack::new("bench");
    stack.set_settings(&json!({"metric_namespace": format!("Bench{}", stack.name)}));
    stack.up();
    let plot = stack.state_dir.join("bench.svg");
    let out = stack.ok(&[
        "--json",
        "bench",
        "--users",
        "3",
        "--count",
        "30",
        "--plot",
        plot.to_str().unwrap(),
        "--metric-wait",
        "20s",
    ]);
    let report: Value = serde_json::from_str(&out).expect("bench --json prints JSON");

    assert_eq!(report["requests"]["sent"], 30, "{report}");
    assert_eq!(report["requests"]["accepted"], 30, "{report}");
    assert_eq!(report["records"]["lost"], 0, "{report}");
    assert_eq!(report["records"]["arrived"], 30, "{report}");
    let db_rows = row_count(&stack).await;
    assert_eq!(db_rows, 30, "the report's arrivals are the rows in Postgres");
    let e2e = &report["records"]["end_to_end_latency_ms"];
    let (p50, p99, max) = (e2e["p50"].as_f64().unwrap(), e2e["p99"].as_f64().unwrap(), e2e["max"].as_f64().unwrap());
    assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "percentiles are ordered: {e2e}");
    let worst: i64 = stack.db().await.query_one("SELECT max(latency_ms) FROM records", &[]).await.unwrap().get(0);
    assert_eq!(max as i64, worst, "the max is the slowest row's latency");
    // The archive's side: every accepted record found in the bucket, with its lag from the API.
    let archive = &report["archive"];
    assert_eq!(archive["archived"], 30, "{archive}");
    assert_eq!(archive["missing"], 0, "{archive}");
    let lag = &archive["lag_ms"];
    assert!(lag["p50"].as_f64().unwrap() >= 0.0 && lag["p50"].as_f64() <= lag["max"].as_f64(), "{lag}");
    let svg = std::fs::read_to_string(&plot).expect("the plot is written");
    assert!(svg.starts_with("<svg") || svg.contains("<svg"), "an SVG");
    stack.down();
}
