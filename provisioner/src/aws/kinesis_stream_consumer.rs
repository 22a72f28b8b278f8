//! Kinesis stream consumer: enhanced fan-out, a reader of a stream with 2 MiB/s per shard of its
//! own (pushed over HTTP/2) instead of a share of the shards' reads. A mapping reads from the
//! consumer's ARN. It takes no tags and is owned through its stream. Not offered by MiniStack
//! 1.5.33, whose mappings read only from streams (see `aws::services`).

use crate::aws::retry::poll_until;
use crate::aws::{errors, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent};
use crate::cloud::Cloud;
use anyhow::Result;
use aws_sdk_kinesis::types::ConsumerStatus;
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::kinesis_stream_consumer::*;

pub const KIND: Kind = Kind::new(<KinesisStreamConsumerSpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct KinesisStreamConsumer;

impl Driver<Cloud> for KinesisStreamConsumer {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn"]
    }
    crate::declared_as!(KinesisStreamConsumerSpec);
    fn label(&self) -> &'static str {
        "Kinesis stream consumer"
    }
    /// Offered where the endpoint's mappings read from consumers (`aws::services`).
    fn service(&self) -> &'static str {
        "kinesis:enhanced-fan-out"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name", "stream_arn"]
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::kinesis_consumer)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: KinesisStreamConsumerSpec = typed(props, KIND)?;
            let Some(stream) = spec.stream_arn.value() else { return Ok(None) };
            find(cx, stream, &spec.name)
                .await
                .map(|found| found.filter(|(status, _)| *status != ConsumerStatus::Deleting).map(|(_, o)| o))
        })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: KinesisStreamConsumerSpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .kinesis
                .register_stream_consumer()
                .stream_arn(spec.stream_arn.get())
                .consumer_name(&spec.name)
                .send()
                .await;
            // ResourceInUseException: registered already, or being deregistered.
            errors::sent(answer, errors::is_in_use_or_conflict, format!("registering consumer {}", spec.name), |_| {
                Outputs::new()
            })
        })
    }
    fn wait_deleted<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: KinesisStreamConsumerSpec = typed(props, KIND)?;
            wait_gone(cx, spec.stream_arn.get(), &spec.name).await
        })
    }
    /// Waits while the consumer is CREATING.
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value, _: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: KinesisStreamConsumerSpec = typed(props, KIND)?;
            let stream = spec.stream_arn.get();
            poll_until(
                &format!("consumer {} to become active", spec.name),
                Duration::from_millis(500),
                Duration::from_secs(300),
                || async {
                    Ok(match find(cx, stream, &spec.name).await? {
                        Some((ConsumerStatus::Active, found)) => Some(Some(found)),
                        Some(_) => None,
                        None => Some(None),
                    })
                },
            )
            .await
        })
    }
    /// Nothing of a consumer changes in place (its name and stream replace it).
    fn update<'a>(
        &'a self,
        _: &'a Cx<'a>,
        _: &'a Value,
        recorded: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move { Ok(recorded.outputs.clone()) })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: KinesisStreamConsumerSpec = typed(&recorded.props, KIND)?;
            let answer = cx
                .cloud
                .kinesis
                .deregister_stream_consumer()
                .stream_arn(spec.stream_arn.get())
                .consumer_name(&spec.name)
                .send()
                .await;
            errors::deleted(answer, format!("deregistering consumer {}", spec.name))?;
            wait_gone(cx, spec.stream_arn.get(), &spec.name).await
        })
    }
}

async fn wait_gone(cx: &Cx<'_>, stream: &str, name: &str) -> Result<()> {
    poll_until(
        &format!("consumer {name} to be deregistered"),
        Duration::from_millis(500),
        Duration::from_secs(300),
        || async { Ok(find(cx, stream, name).await?.is_none().then_some(())) },
    )
    .await
}

/// The consumer named `name` of `stream`, with its status.
async fn find(cx: &Cx<'_>, stream: &str, name: &str) -> Result<Option<(ConsumerStatus, Observed)>> {
    let answer = cx.cloud.kinesis.describe_stream_consumer().stream_arn(stream).consumer_name(name).send().await;
    let Some(answer) = errors::found(answer, format!("reading consumer {name} of {stream}"))? else { return Ok(None) };
    let Some(consumer) = answer.consumer_description else { return Ok(None) };
    let observed = Observed::new(
        json!({ "name": consumer.consumer_name, "stream_arn": consumer.stream_arn }),
        outputs([("arn", json!(consumer.consumer_arn))]),
    );
    Ok(Some((consumer.consumer_status, observed)))
}
