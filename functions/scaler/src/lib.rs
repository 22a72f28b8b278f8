//! The host of `scaler`: the Lambda runtime, and the Kinesis, CloudWatch and DynamoDB calls that
//! carry out what the binary's logic decides (handed to [`run`] as a plain function pointer, so
//! an edit to the logic rebuilds only the small binary crate).
//!
//! One notification from the alarms' SNS topic: the stream is read (waiting while it is UPDATING),
//! with the changes of the last day from the history table; the logic decides; a change is first
//! written to the history (conditional on the version read, so two alarms firing at once cannot
//! both spend the day's budget on one decision), then `UpdateShardCount` is sent, the stream
//! waited for until ACTIVE, and both alarms' thresholds moved to the new shard count.
//!
//! Environment: `STREAM_NAME`, `MIN_SHARDS`, `MAX_SHARDS`, `HISTORY_TABLE`, `SCALE_UP_ALARM`,
//! `SCALE_DOWN_ALARM`, `SCALE_UP_PER_SHARD` and `SCALE_DOWN_PER_SHARD` (each alarm's threshold for
//! one shard), plus what `function_host::aws_config` reads.

use aws_sdk_cloudwatch::types::MetricAlarm;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::types::{ScalingType, StreamStatus};
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use std::time::Duration;

pub use pipeline_interface::scaler::{utc, Alarm, Decide, Decision, Situation, CHANGES_PER_DAY, DAY_S};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An SNS event, as much of it as the scaler reads.
#[derive(Debug, Deserialize)]
struct SnsEvent {
    #[serde(rename = "Records")]
    records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
struct SnsRecord {
    #[serde(rename = "Sns")]
    sns: SnsMessage,
}

#[derive(Debug, Deserialize)]
struct SnsMessage {
    #[serde(rename = "Message")]
    message: String,
}

/// A CloudWatch alarm's notification, as much of it as the scaler reads.
#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "AlarmName")]
    alarm_name: String,
    #[serde(rename = "NewStateValue")]
    new_state_value: String,
}

/// What the host needs, read once at cold start.
struct Scaler {
    kinesis: aws_sdk_kinesis::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    stream: String,
    min_shards: i32,
    max_shards: i32,
    history: String,
    /// Each alarm with its threshold per shard.
    alarms: [(String, f64); 2],
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is not set").into())
}

fn env_number<T: std::str::FromStr>(name: &str) -> Result<T, Error> {
    env(name)?.parse().map_err(|_| format!("environment variable {name} is not a number").into())
}

/// Runs the function until the Lambda runtime stops.
pub fn run(decide: Decide) -> Result<(), Error> {
    function_host::run(async move {
        let config = function_host::aws_config();
        let scaler = Scaler {
            kinesis: aws_sdk_kinesis::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            stream: env("STREAM_NAME")?,
            min_shards: env_number("MIN_SHARDS")?,
            max_shards: env_number("MAX_SHARDS")?,
            history: env("HISTORY_TABLE")?,
            alarms: [
                (env("SCALE_UP_ALARM")?, env_number("SCALE_UP_PER_SHARD")?),
                (env("SCALE_DOWN_ALARM")?, env_number("SCALE_DOWN_PER_SHARD")?),
            ],
        };
        let scaler = &scaler;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
            for record in &event.payload.records {
                let notification: Notification = serde_json::from_str(&record.sns.message)
                    .map_err(|e| format!("the notification is not an alarm's: {e}"))?;
                let alarm = Alarm { name: notification.alarm_name, new_state: notification.new_state_value };
                scaler.act(decide, &alarm).await?;
            }
            Ok::<(), Error>(())
        }))
        .await
    })
}

impl Scaler {
    /// Decides about `alarm` and carries the decision out. A decision raced by another scaler
    /// (the history changed since it was read) is made again on what is there now.
    async fn act(&self, decide: Decide, alarm: &Alarm) -> Result<(), Error> {
        for _ in 0..5 {
            let (changes, version) = self.changes().await?;
            let open_shards = self.wait_active().await?;
            let situation = Situation {
                open_shards,
                min_shards: self.min_shards,
                max_shards: self.max_shards,
                changes: changes.clone(),
            };
            match decide(alarm, now(), &situation) {
                Decision::Hold(why) => {
                    tracing::info!(alarm = %alarm.name, "holding: {why}");
                    return Ok(());
                }
                Decision::Refuse(why) => {
                    tracing::warn!(alarm = %alarm.name, "{why}");
                    return Ok(());
                }
                Decision::Scale { from, to, why } => {
                    let mut changes: Vec<u64> =
                        changes.into_iter().filter(|t| now().saturating_sub(*t) < DAY_S).collect();
                    changes.push(now());
                    if !self.record(&changes, version).await? {
                        continue; // another scaler decided meanwhile: decide again on what it did
                    }
                    return self.scale(from, to, &why).await;
                }
            }
        }
        Err("the history kept changing under five decisions in a row".into())
    }

    /// The changes of the stream recorded in the history table, with the item's version.
    async fn changes(&self) -> Result<(Vec<u64>, Option<u64>), Error> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.history)
            .key("stream", AttributeValue::S(self.stream.clone()))
            .consistent_read(true)
            .send()
            .await?
            .item;
        let Some(item) = item else { return Ok((vec![], None)) };
        let changes = item
            .get("changes")
            .and_then(|v| v.as_l().ok())
            .map(|list| list.iter().filter_map(|v| v.as_n().ok()?.parse().ok()).collect())
            .unwrap_or_default();
        let version = item.get("version").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
        Ok((changes, version))
    }

    /// Writes the history if its version is still `version`; false when someone wrote it first.
    async fn record(&self, changes: &[u64], version: Option<u64>) -> Result<bool, Error> {
        let list = changes.iter().map(|t| AttributeValue::N(t.to_string())).collect();
        let mut put = self
            .dynamodb
            .put_item()
            .table_name(&self.history)
            .item("stream", AttributeValue::S(self.stream.clone()))
            .item("changes", AttributeValue::L(list))
            .item("version", AttributeValue::N((version.unwrap_or(0) + 1).to_string()));
        // `stream` is one of DynamoDB's reserved words: named through a placeholder.
        put = match version {
            Some(version) => put
                .condition_expression("#version = :read")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read", AttributeValue::N(version.to_string())),
            None => put
                .condition_expression("attribute_not_exists(#stream)")
                .expression_attribute_names("#stream", "stream"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// The open shards once the stream is ACTIVE (it is UPDATING during a change).
    async fn wait_active(&self) -> Result<i32, Error> {
        for _ in 0..120 {
            let summary = self
                .kinesis
                .describe_stream_summary()
                .stream_name(&self.stream)
                .send()
                .await?
                .stream_description_summary
                .ok_or("DescribeStreamSummary returned no summary")?;
            if summary.stream_status == StreamStatus::Active {
                return Ok(summary.open_shard_count);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(format!("stream {} did not become ACTIVE within two minutes", self.stream).into())
    }

    /// Changes the shard count, waits for ACTIVE, and moves both alarms' thresholds.
    async fn scale(&self, from: i32, to: i32, why: &str) -> Result<(), Error> {
        tracing::info!(stream = %self.stream, from, to, "{why}");
        self.kinesis
            .update_shard_count()
            .stream_name(&self.stream)
            .target_shard_count(to)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await?;
        let open = self.wait_active().await?;
        for (name, per_shard) in &self.alarms {
            self.move_threshold(name, per_shard * f64::from(open)).await?;
        }
        tracing::info!(stream = %self.stream, from, to = open, "scaled; alarm thresholds moved to {open} shards");
        Ok(())
    }

    /// Writes the alarm again as it is, with a new threshold (PutMetricAlarm replaces it whole).
    async fn move_threshold(&self, name: &str, threshold: f64) -> Result<(), Error> {
        let alarms = self.cloudwatch.describe_alarms().alarm_names(name).send().await?;
        let Some(alarm) = alarms.metric_alarms().iter().find(|a| a.alarm_name() == Some(name)) else {
            return Err(format!("alarm {name} does not exist").into());
        };
        rewrite(&self.cloudwatch, alarm, threshold).send().await?;
        Ok(())
    }
}

/// A PutMetricAlarm that writes `alarm` again with `threshold`.
fn rewrite(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    alarm: &MetricAlarm,
    threshold: f64,
) -> aws_sdk_cloudwatch::operation::put_metric_alarm::builders::PutMetricAlarmFluentBuilder {
    let metrics = alarm.metrics();
    cloudwatch
        .put_metric_alarm()
        .set_alarm_name(alarm.alarm_name().map(str::to_string))
        .set_alarm_description(alarm.alarm_description().map(str::to_string))
        .set_metrics((!metrics.is_empty()).then(|| metrics.to_vec()))
        .set_metric_name(alarm.metric_name().map(str::to_string))
        .set_namespace(alarm.namespace().map(str::to_string))
        .set_statistic(alarm.statistic().cloned())
        .set_period(alarm.period())
        .set_dimensions((!alarm.dimensions().is_empty()).then(|| alarm.dimensions().to_vec()))
        .threshold(threshold)
        .set_comparison_operator(alarm.comparison_operator().cloned())
        .set_evaluation_periods(alarm.evaluation_periods())
        .set_datapoints_to_alarm(alarm.datapoints_to_alarm())
        .set_treat_missing_data(alarm.treat_missing_data().map(str::to_string))
        .set_actions_enabled(alarm.actions_enabled())
        .set_alarm_actions(Some(alarm.alarm_actions().to_vec()))
        .set_ok_actions(Some(alarm.ok_actions().to_vec()))
        .set_insufficient_data_actions(Some(alarm.insufficient_data_actions().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarms_notification_parses() {
        let event: SnsEvent = serde_json::from_value(serde_json::json!({"Records": [{"Sns": {
            "Message": "{\"AlarmName\": \"s-events-scale-up\", \"NewStateValue\": \"ALARM\", \"NewStateReason\": \"x\"}"
        }}]}))
        .unwrap();
        let notification: Notification = serde_json::from_str(&event.records[0].sns.message).unwrap();
        assert_eq!(
            (notification.alarm_name.as_str(), notification.new_state_value.as_str()),
            ("s-events-scale-up", "ALARM")
        );
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_764_500_000), "2025-11-30 10:53");
    }
}
