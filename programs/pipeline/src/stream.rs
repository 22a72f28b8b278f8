//! The pipeline's stream and what sizes it: provisioned with a shard count (given, or derived from
//! the rate users expect, `capacity`), or on demand; autoscaled by a scaler within bounds; read by
//! `midstream` through a consumer of its own (enhanced fan-out) where asked.

use crate::settings::{PipelineSettings, StreamMode};
use declaration::capacity::{self, shards_for};
use declaration::helpers::{function_role, Declaring, Function};
use declaration::kinds::cloudwatch_alarm::{AlarmMetric, CloudwatchAlarmSpec, MetricRef};
use declaration::kinds::dynamodb_table::DynamodbTableSpec;
use declaration::kinds::iam_role::Statement;
use declaration::kinds::kinesis_stream::KinesisStreamSpec;
use declaration::kinds::kinesis_stream_consumer::KinesisStreamConsumerSpec;
use declaration::kinds::lambda_permission::LambdaPermissionSpec;
use declaration::kinds::sns_subscription::SnsSubscriptionSpec;
use declaration::kinds::sns_topic::SnsTopicSpec;
use declaration::{Handle, StackDef};
use std::collections::BTreeMap;

/// The consumers of the stream that share its shards' reads: `midstream`, unless it reads
/// through a consumer of its own, and the archive's Firehose delivery stream.
pub(super) fn shared_readers(settings: &PipelineSettings) -> u32 {
    u32::from(!settings.kinesis_mapping.enhanced_fan_out) + u32::from(settings.archive.enabled)
}

/// Declares the stream `events` as the settings size it, and says how in the plan's notes.
pub fn declare_stream(stack: &mut StackDef, settings: &PipelineSettings) -> Handle<KinesisStreamSpec> {
    let name = stack.physical_name("events");
    let stream = &settings.stream;
    if stream.mode == StreamMode::OnDemand {
        stack.note("stream `events`: on demand: AWS sizes it (4 MiB/s and 4,000 records/s of writes to start, up to twice its peak)");
        return stack.add("events", KinesisStreamSpec::on_demand(name));
    }
    let mut shards = match (&stream.target, stream.shards) {
        (Some(target), _) => {
            let sizing = shards_for(target.records_per_s, target.record_bytes, shared_readers(settings));
            stack.note(format!("stream `events`: {}", sizing.why));
            sizing.shards
        }
        (None, Some(shards)) => shards,
        (None, None) => stream.autoscale.as_ref().map_or(1, |a| a.min_shards),
    };
    if let Some(bounds) = &stream.autoscale {
        let start = shards.clamp(bounds.min_shards, bounds.max_shards);
        if start != shards {
            stack.note(format!(
                "stream `events`: starts at {start} shards, the nearest bound of autoscale {}-{} to {shards}",
                bounds.min_shards, bounds.max_shards
            ));
            shards = start;
        }
    }
    let events = stack.add("events", KinesisStreamSpec::provisioned(name, shards.min(capacity::MAX_SHARDS)));
    if let Some(bounds) = &stream.autoscale {
        stack.manage(
            &events,
            "shard_count",
            (f64::from(bounds.min_shards), f64::from(bounds.max_shards)),
            "autoscaled",
        );
    }
    events
}

/// The share of capacity at which the scale-up alarm fires, and below which the scale-down one does.
const SCALE_UP_AT: f64 = 0.75;
const SCALE_DOWN_BELOW: f64 = 0.25;
/// How long consumers may lag (GetRecords.IteratorAgeMilliseconds) before scaling down waits.
const LAG_MS: &str = "60000";

/// The scaler of an autoscaled stream, in the shape of AWS's own sample: two alarms on the
/// stream's usage against its shards' capacity (records, or bytes counted as 1,000 records per
/// MiB), scale up at 75 % or more for 5 minutes and down below 25 % for an hour (never while
/// consumers lag more than a minute), notifying an SNS topic the `scaler` function listens to. The
/// scaler moves the shard count within the bounds and the alarms' thresholds with it: both are
/// managed at run time, so `up` does not revert them.
pub fn declare_scaler(
    stack: &mut StackDef,
    on: &Declaring,
    settings: &PipelineSettings,
    events: &Handle<KinesisStreamSpec>,
) {
    let Some(bounds) = &settings.stream.autoscale else { return };
    let start = stack.get("events").and_then(|e| e.properties.get("shard_count")?.as_i64()).unwrap_or(1) as i32;
    let topic = stack.add("events-scaling", SnsTopicSpec { name: stack.physical_name("events-scaling") });
    let history =
        stack.add("scaler-history", DynamodbTableSpec::new(stack.physical_name("scaler-history"), "stream", None));
    let dimensions = BTreeMap::from([("StreamName".to_string(), events.name())]);
    let usage = |extra: Vec<AlarmMetric>, expression: &str| {
        let kinesis = |id: &str, metric: &str, stat: &str| {
            AlarmMetric::metric(id, "AWS/Kinesis", metric, dimensions.clone(), stat, 60)
        };
        let mut metrics = vec![kinesis("records", "IncomingRecords", "Sum"), kinesis("bytes", "IncomingBytes", "Sum")];
        metrics.extend(
            extra.into_iter().map(|m| AlarmMetric {
                metric: m.metric.map(|r| MetricRef { dimensions: dimensions.clone(), ..r }),
                ..m
            }),
        );
        metrics.push(AlarmMetric::expression("usage", expression));
        metrics
    };
    let alarm = |name: String,
                 description: &str,
                 metrics: Vec<AlarmMetric>,
                 share: f64,
                 comparison: &str,
                 periods: i32,
                 missing: &str| {
        CloudwatchAlarmSpec {
            name,
            description: description.into(),
            metrics,
            threshold: capacity::alarm_threshold(start, share),
            comparison: comparison.into(),
            evaluation_periods: periods,
            datapoints_to_alarm: periods,
            treat_missing_data: missing.into(),
            alarm_actions: vec![topic.arn()],
        }
    };
    let up = stack.add(
        "events-scale-up",
        alarm(
            stack.physical_name("events-scale-up"),
            "The stream takes 75 % or more of its shards' capacity for 5 minutes: the scaler doubles the shards",
            usage(vec![], "MAX([records, bytes / 1048.576])"),
            SCALE_UP_AT,
            "GreaterThanOrEqualToThreshold",
            5,
            "notBreaching",
        ),
    );
    let lag =
        AlarmMetric::metric("lag", "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", BTreeMap::new(), "Maximum", 60);
    let down = stack.add(
        "events-scale-down",
        alarm(
            stack.physical_name("events-scale-down"),
            "The stream takes less than 25 % of its shards' capacity for an hour and no consumer lags: the scaler \
             halves the shards",
            usage(vec![lag], &format!("IF(lag > {LAG_MS}, 1000000000, MAX([records, bytes / 1048.576]))")),
            SCALE_DOWN_BELOW,
            "LessThanThreshold",
            60,
            "breaching",
        ),
    );
    let (min, max) = (bounds.min_shards, bounds.max_shards);
    for (handle, share) in [(&up, SCALE_UP_AT), (&down, SCALE_DOWN_BELOW)] {
        let range = (capacity::alarm_threshold(min, share), capacity::alarm_threshold(max, share));
        stack.manage(handle, "threshold", range, "moved by the scaler");
    }

    let role = function_role(
        stack,
        on,
        "scaler",
        vec![
            Statement::allow(&["kinesis:UpdateShardCount", "kinesis:DescribeStreamSummary"], vec![events.arn()]),
            Statement::allow(&["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"], vec![up.arn(), down.arn()]),
            Statement::allow(&["dynamodb:GetItem", "dynamodb:PutItem"], vec![history.arn()]),
        ],
    );
    let per_shard = |share: f64| capacity::alarm_threshold(1, share).to_string().into();
    let scaler = on.function(
        stack,
        Function {
            binary: "scaler",
            role: &role,
            memory_mb: 128,
            timeout_s: 300,
            environment: vec![
                ("STREAM_NAME", events.name()),
                ("MIN_SHARDS", min.to_string().into()),
                ("MAX_SHARDS", max.to_string().into()),
                ("HISTORY_TABLE", history.name()),
                ("SCALE_UP_ALARM", up.name()),
                ("SCALE_DOWN_ALARM", down.name()),
                ("SCALE_UP_PER_SHARD", per_shard(SCALE_UP_AT)),
                ("SCALE_DOWN_PER_SHARD", per_shard(SCALE_DOWN_BELOW)),
            ],
        },
    );
    let scaler = stack.add("scaler", scaler);
    stack.add("events-scaling-to-scaler", SnsSubscriptionSpec { topic_arn: topic.arn(), function_arn: scaler.arn() });
    stack.add(
        "events-scaling-invokes-scaler",
        LambdaPermissionSpec {
            function_name: scaler.name(),
            statement_id: "sns-invoke".into(),
            principal: "sns.amazonaws.com".into(),
            source_arn: topic.arn(),
        },
    );
}

/// `midstream`'s own consumer of the stream, where it reads with enhanced fan-out.
pub fn midstream_consumer(
    stack: &mut StackDef,
    settings: &PipelineSettings,
    events: &Handle<KinesisStreamSpec>,
) -> Option<Handle<KinesisStreamConsumerSpec>> {
    settings.kinesis_mapping.enhanced_fan_out.then(|| {
        let name = stack.physical_name("midstream");
        stack.add("midstream-consumer", KinesisStreamConsumerSpec { name, stream_arn: events.arn() })
    })
}
