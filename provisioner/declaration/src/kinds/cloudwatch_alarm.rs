//! The `cloudwatch_alarm` kind's properties (its driver is the engine's `aws::cloudwatch_alarm`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An alarm on metric math.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloudwatchAlarmSpec {
    pub name: String,
    pub description: String,
    /// The metrics and expressions; the one with `return_data` is compared with the threshold.
    pub metrics: Vec<AlarmMetric>,
    pub threshold: f64,
    /// `GreaterThanOrEqualToThreshold`, `LessThanThreshold`, ...
    pub comparison: String,
    /// Periods evaluated, and how many of them must breach.
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    /// `breaching`, `notBreaching`, `ignore` or `missing`.
    pub treat_missing_data: String,
    /// Topics notified when the alarm goes into ALARM.
    pub alarm_actions: Vec<Input<String>>,
}

/// One metric of an alarm: a metric, or an expression over the others.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlarmMetric {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricRef>,
    pub return_data: bool,
}

/// A metric read for an alarm.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, Input<String>>,
    /// `Sum`, `Maximum`, ...
    pub stat: String,
    pub period_s: i32,
}

impl AlarmMetric {
    /// The metric `namespace`/`name` with these dimensions, as `stat` over `period_s`.
    pub fn metric(
        id: &str,
        namespace: &str,
        name: &str,
        dimensions: BTreeMap<String, Input<String>>,
        stat: &str,
        period_s: i32,
    ) -> Self {
        let metric =
            MetricRef { namespace: namespace.into(), name: name.into(), dimensions, stat: stat.into(), period_s };
        Self { id: id.into(), expression: None, metric: Some(metric), return_data: false }
    }

    /// The expression the alarm compares with its threshold.
    pub fn expression(id: &str, expression: &str) -> Self {
        Self { id: id.into(), expression: Some(expression.into()), metric: None, return_data: true }
    }
}

impl Spec for CloudwatchAlarmSpec {
    const KIND: &'static str = "cloudwatch_alarm";
}

impl Handle<CloudwatchAlarmSpec> {
    /// The alarm's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The alarm's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}
