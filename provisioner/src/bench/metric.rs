//! Reading back the CloudWatch metric `downstream` publishes ([`record::METRIC_NAME`] in the
//! stack's namespace) over the run's window with `GetMetricStatistics` (one-minute periods:
//! SampleCount, Sum, Maximum), and comparing it with the rows ([`compare`]): the count and the
//! average must match within [`COUNT_TOLERANCE`] and [`AVERAGE_TOLERANCE`].
//!
//! The metric has no dimension, so every stack publishing to the same namespace in the same
//! minutes counts too; a disagreement says so.

use super::report::MetricCheck;
use crate::cloud::Cloud;
use anyhow::Result;
use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::Statistic;
use std::time::Duration;
use tokio::time::Instant;

/// Largest relative difference of the counts that still agrees (and at least one sample).
pub const COUNT_TOLERANCE: f64 = 0.01;
/// Largest relative difference of the averages that still agrees (and at least 1 ms).
pub const AVERAGE_TOLERANCE: f64 = 0.02;
/// The period read: CloudWatch's finest for standard-resolution metrics.
const PERIOD_S: i64 = 60;

/// The metric over a window, all periods added up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub sample_count: f64,
    pub sum: f64,
    pub maximum: Option<f64>,
}

impl Totals {
    pub fn average(&self) -> Option<f64> {
        (self.sample_count > 0.0).then(|| self.sum / self.sample_count)
    }
}

/// The whole minutes that cover `[first_ms, last_ms]`.
pub fn window(first_ms: i64, last_ms: i64) -> (i64, i64) {
    let minute = PERIOD_S * 1000;
    let start = first_ms.div_euclid(minute) * minute;
    let end = (last_ms.div_euclid(minute) + 1) * minute;
    (start, end)
}

/// Reads the metric's totals over `[start_ms, end_ms)`.
pub async fn read(cloud: &Cloud, namespace: &str, start_ms: i64, end_ms: i64) -> Result<Totals> {
    let out = cloud
        .cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(record::METRIC_NAME)
        .start_time(DateTime::from_millis(start_ms))
        .end_time(DateTime::from_millis(end_ms))
        .period(PERIOD_S as i32)
        .statistics(Statistic::SampleCount)
        .statistics(Statistic::Sum)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!("GetMetricStatistics of {namespace}/{}: {}", record::METRIC_NAME, DisplayErrorContext(&e))
        })?;
    let mut totals = Totals { sample_count: 0.0, sum: 0.0, maximum: None };
    for point in out.datapoints() {
        totals.sample_count += point.sample_count().unwrap_or(0.0);
        totals.sum += point.sum().unwrap_or(0.0);
        if let Some(max) = point.maximum() {
            totals.maximum = Some(totals.maximum.map_or(max, |m: f64| m.max(max)));
        }
    }
    Ok(totals)
}

/// Reads until the count reaches `rows` or `wait` passes (CloudWatch takes a while to show new
/// data on AWS), then compares.
pub async fn check(
    cloud: &Cloud,
    namespace: &str,
    (first_ms, last_ms): (i64, i64),
    rows: u64,
    rows_average_ms: Option<f64>,
    wait: Duration,
) -> Result<MetricCheck> {
    let (start_ms, end_ms) = window(first_ms, last_ms);
    let deadline = Instant::now() + wait;
    let totals = loop {
        let totals = read(cloud, namespace, start_ms, end_ms).await?;
        if totals.sample_count >= rows as f64 || Instant::now() >= deadline {
            break totals;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let notes = compare(&totals, rows, rows_average_ms);
    Ok(MetricCheck {
        namespace: namespace.to_string(),
        metric: record::METRIC_NAME.to_string(),
        window_start_ms: start_ms,
        window_end_ms: end_ms,
        sample_count: totals.sample_count,
        average_ms: totals.average(),
        maximum_ms: totals.maximum,
        agrees: notes.is_empty(),
        notes,
    })
}

/// How the metric disagrees with the rows (empty: it agrees).
pub fn compare(metric: &Totals, rows: u64, rows_average_ms: Option<f64>) -> Vec<String> {
    let mut notes = Vec::new();
    let rows_f = rows as f64;
    if (metric.sample_count - rows_f).abs() > (rows_f * COUNT_TOLERANCE).max(1.0) {
        let why = if metric.sample_count > rows_f {
            "more: other stacks publishing to this namespace in these minutes count too, or a batch was reported twice"
        } else {
            "fewer: downstream failed to publish some latencies, or CloudWatch has not caught up (raise --metric-wait)"
        };
        notes.push(format!("count: {} samples for {rows} rows ({why})", metric.sample_count));
    }
    if let (Some(metric_avg), Some(rows_avg)) = (metric.average(), rows_average_ms) {
        if (metric_avg - rows_avg).abs() > (rows_avg.abs() * AVERAGE_TOLERANCE).max(1.0) {
            notes.push(format!("average: {metric_avg:.1} ms in the metric, {rows_avg:.1} ms in the rows"));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(count: f64, average: f64) -> Totals {
        Totals { sample_count: count, sum: count * average, maximum: Some(average * 2.0) }
    }

    #[test]
    fn the_window_is_whole_minutes() {
        assert_eq!(window(61_000, 61_001), (60_000, 120_000));
        assert_eq!(window(60_000, 179_999), (60_000, 180_000));
        assert_eq!(window(59_999, 120_000), (0, 180_000));
    }

    #[test]
    fn agrees_within_the_tolerance() {
        assert!(compare(&totals(1000.0, 500.0), 1000, Some(500.0)).is_empty());
        assert!(compare(&totals(1009.0, 509.0), 1000, Some(500.0)).is_empty());
        assert!(compare(&totals(3.0, 10.0), 2, Some(10.5)).is_empty());
    }

    #[test]
    fn says_how_it_disagrees() {
        let notes = compare(&totals(1200.0, 500.0), 1000, Some(500.0));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("count: 1200 samples for 1000 rows (more"), "{notes:?}");
        let notes = compare(&totals(0.0, 0.0), 1000, Some(500.0));
        assert!(notes[0].contains("fewer"), "{notes:?}");
        let notes = compare(&totals(1000.0, 600.0), 1000, Some(500.0));
        assert_eq!(notes, ["average: 600.0 ms in the metric, 500.0 ms in the rows"]);
        assert_eq!(totals(0.0, 1.0).average(), None);
    }
}
