//! The end-to-end latency metric: a batch's latencies aggregated into CloudWatch statistic
//! sets of `values` and `counts` ([`distributions`]: identical latencies become one value with a
//! count, at most [`MAX_VALUES_PER_DATUM`] values per datum) and sent with as few
//! `PutMetricData` calls as the limits allow ([`MAX_DATUMS_PER_CALL`] datums each).

use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;
use record::METRIC_NAME;
use std::collections::BTreeMap;

/// Most distinct values one `MetricDatum` may carry.
pub const MAX_VALUES_PER_DATUM: usize = 150;
/// Most datums one `PutMetricData` call may carry.
pub const MAX_DATUMS_PER_CALL: usize = 1000;

/// One datum's worth of latencies: distinct values (ascending) and how often each occurred.
#[derive(Debug, PartialEq)]
pub struct Distribution {
    /// Distinct latencies in milliseconds.
    pub values: Vec<f64>,
    /// Occurrences of the value at the same position.
    pub counts: Vec<f64>,
}

/// Aggregates latencies into distributions of at most [`MAX_VALUES_PER_DATUM`] values.
pub fn distributions(latencies_ms: &[i64]) -> Vec<Distribution> {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for &latency in latencies_ms {
        *counts.entry(latency).or_default() += 1;
    }
    let counted: Vec<(i64, u64)> = counts.into_iter().collect();
    counted
        .chunks(MAX_VALUES_PER_DATUM)
        .map(|chunk| Distribution {
            values: chunk.iter().map(|&(value, _)| value as f64).collect(),
            counts: chunk.iter().map(|&(_, count)| count as f64).collect(),
        })
        .collect()
}

/// Sends the latencies as [`METRIC_NAME`] (Milliseconds) in `namespace`.
pub async fn publish(client: &Client, namespace: &str, latencies_ms: &[i64]) -> Result<(), String> {
    let datums: Vec<MetricDatum> = distributions(latencies_ms)
        .into_iter()
        .map(|d| {
            MetricDatum::builder()
                .metric_name(METRIC_NAME)
                .unit(StandardUnit::Milliseconds)
                .set_values(Some(d.values))
                .set_counts(Some(d.counts))
                .build()
        })
        .collect();
    for call in datums.chunks(MAX_DATUMS_PER_CALL) {
        client.put_metric_data().namespace(namespace).set_metric_data(Some(call.to_vec())).send().await.map_err(
            |e| format!("putting {METRIC_NAME} metric data in namespace {namespace}: {}", DisplayErrorContext(&e)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_latencies_are_counted_once() {
        assert_eq!(
            distributions(&[30, 10, 30, 20, 30]),
            [Distribution { values: vec![10.0, 20.0, 30.0], counts: vec![1.0, 1.0, 3.0] }]
        );
    }

    #[test]
    fn no_latencies_no_datum() {
        assert!(distributions(&[]).is_empty());
    }

    #[test]
    fn more_than_150_distinct_values_split_into_datums() {
        let latencies: Vec<i64> = (0..400).chain(0..10).collect();
        let datums = distributions(&latencies);
        let sizes: Vec<_> = datums.iter().map(|d| d.values.len()).collect();
        assert_eq!(sizes, [150, 150, 100]);
        assert_eq!(datums[0].counts[..10], [2.0; 10]);
        assert_eq!(datums[2].values[99], 399.0);
        let total: f64 = datums.iter().flat_map(|d| d.counts.iter()).sum();
        assert_eq!(total, 410.0);
    }
}
