//! CloudWatch metric alarm on a metric math expression (the stream's usage against its shards'
//! capacity), notifying SNS topics when it goes into ALARM. PutMetricAlarm overwrites an alarm of
//! the same name without a word, so the name is looked up first and an alarm is adopted only with
//! the stack's mark. Every property is written by one PutMetricAlarm, so an update writes them all.
//!
//! MiniStack 1.5.33 keeps an alarm's simple fields but drops its `Metrics` (metric math is never
//! evaluated there either): a read that reports no metrics leaves them out of the comparison
//! instead of calling that drift. Tests drive such alarms with `SetAlarmState`.

use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::input::Input;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, Tag};
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::cloudwatch_alarm::*;

pub const KIND: Kind = Kind::new(<CloudwatchAlarmSpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct CloudwatchAlarm;

impl Driver<Cloud> for CloudwatchAlarm {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name"]
    }
    crate::declared_as!(CloudwatchAlarmSpec);
    fn label(&self) -> &'static str {
        "CloudWatch alarm"
    }
    fn service(&self) -> &'static str {
        "cloudwatch"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::cloudwatch_alarm)?;
        let spec: CloudwatchAlarmSpec = serde_json::from_value(props.clone()).map_err(|e| e.to_string())?;
        if spec.metrics.iter().filter(|m| m.return_data).count() != 1 {
            return Err("an alarm on metric math returns exactly one of its metrics".into());
        }
        let period = spec.metrics.iter().filter_map(|m| m.metric.as_ref()).map(|m| m.period_s).max().unwrap_or(60);
        if i64::from(spec.evaluation_periods) * i64::from(period) > 86_400 {
            return Err("evaluation_periods x period may cover at most one day".into());
        }
        if spec.datapoints_to_alarm > spec.evaluation_periods {
            return Err("datapoints_to_alarm is at most evaluation_periods".into());
        }
        Ok(())
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: CloudwatchAlarmSpec = typed(props, KIND)?;
            put(cx, &spec, Some(tags(props)?)).await?;
            Ok(Sent::Created(outputs([("name", json!(spec.name))])))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: CloudwatchAlarmSpec = typed(props, KIND)?;
            if changed.iter().any(|f| f != "tags") {
                put(cx, &spec, None).await?;
            }
            let found = find(cx, &spec.name).await?.context("the alarm vanished during its update")?;
            if changed.iter().any(|f| f == "tags") {
                let arn = found.outputs.get("arn").and_then(Value::as_str).context("the alarm has no ARN")?;
                cx.cloud
                    .cloudwatch
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags(props)?))
                    .send()
                    .await
                    .map_err(|e| errors::context(format!("tagging alarm {}", spec.name), e))?;
            }
            Ok(found.outputs)
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            let answer = cx.cloud.cloudwatch.delete_alarms().alarm_names(name).send().await;
            errors::deleted(answer, format!("deleting alarm {name}"))
        })
    }
}

fn tags(props: &Value) -> Result<Vec<Tag>> {
    Ok(declared_tags(props).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect())
}

/// The alarm's metrics as the API takes them.
fn queries(spec: &CloudwatchAlarmSpec) -> Result<Vec<MetricDataQuery>> {
    spec.metrics
        .iter()
        .map(|m| {
            let stat = match &m.metric {
                Some(metric) => {
                    let dimensions = metric
                        .dimensions
                        .iter()
                        .map(|(k, v)| Dimension::builder().name(k).value(v.get()).build())
                        .collect::<Vec<_>>();
                    let of = Metric::builder()
                        .namespace(&metric.namespace)
                        .metric_name(&metric.name)
                        .set_dimensions(Some(dimensions))
                        .build();
                    Some(MetricStat::builder().metric(of).period(metric.period_s).stat(&metric.stat).build())
                }
                None => None,
            };
            Ok(MetricDataQuery::builder()
                .id(&m.id)
                .set_expression(m.expression.clone())
                .set_metric_stat(stat)
                .return_data(m.return_data)
                .build())
        })
        .collect()
}

/// Writes the whole alarm (PutMetricAlarm creates or overwrites); `tags` only on create.
async fn put(cx: &Cx<'_>, spec: &CloudwatchAlarmSpec, tags: Option<Vec<Tag>>) -> Result<()> {
    cx.cloud
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(&spec.description)
        .set_metrics(Some(queries(spec)?))
        .threshold(spec.threshold)
        .comparison_operator(ComparisonOperator::from(spec.comparison.as_str()))
        .evaluation_periods(spec.evaluation_periods)
        .datapoints_to_alarm(spec.datapoints_to_alarm)
        .treat_missing_data(&spec.treat_missing_data)
        .actions_enabled(true)
        .set_alarm_actions(Some(spec.alarm_actions.iter().map(|a| a.get().clone()).collect()))
        .set_tags(tags)
        .send()
        .await
        .map_err(|e| errors::context(format!("writing alarm {}", spec.name), e))?;
    Ok(())
}

/// An alarm's metrics in [`AlarmMetric`]'s shape.
fn metrics_of(alarm: &MetricAlarm) -> Vec<AlarmMetric> {
    alarm
        .metrics()
        .iter()
        .map(|q| AlarmMetric {
            id: q.id().unwrap_or_default().to_string(),
            expression: q.expression().map(str::to_string),
            metric: q.metric_stat().and_then(|s| {
                let metric = s.metric()?;
                Some(MetricRef {
                    namespace: metric.namespace()?.to_string(),
                    name: metric.metric_name()?.to_string(),
                    dimensions: metric
                        .dimensions()
                        .iter()
                        .filter_map(|d| Some((d.name()?.to_string(), Input::Value(d.value()?.to_string()))))
                        .collect(),
                    stat: s.stat()?.to_string(),
                    period_s: s.period()?,
                })
            }),
            return_data: q.return_data().unwrap_or(true),
        })
        .collect()
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let answer = cx
        .cloud
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| errors::context(format!("reading alarm {name}"), e))?;
    let Some(alarm) = answer.metric_alarms().iter().find(|a| a.alarm_name() == Some(name)) else { return Ok(None) };
    let arn = alarm.alarm_arn().context("DescribeAlarms returned no ARN")?.to_string();
    let listed = cx.cloud.cloudwatch.list_tags_for_resource().resource_arn(&arn).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of alarm {name}"))? else { return Ok(None) };
    let tags: Vec<(String, String)> =
        listed.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect();
    let mut props = json!({
        "name": name,
        "description": alarm.alarm_description().unwrap_or_default(),
        "threshold": alarm.threshold(),
        "comparison": alarm.comparison_operator().map(|c| c.as_str()),
        "evaluation_periods": alarm.evaluation_periods(),
        "datapoints_to_alarm": alarm.datapoints_to_alarm(),
        "treat_missing_data": alarm.treat_missing_data(),
        "alarm_actions": alarm.alarm_actions(),
        "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))),
    });
    let metrics = metrics_of(alarm);
    if !metrics.is_empty() {
        props["metrics"] = serde_json::to_value(metrics)?;
    }
    Ok(Some(Observed::new(props, outputs([("arn", json!(arn)), ("name", json!(name))]))))
}
