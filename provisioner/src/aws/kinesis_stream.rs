//! Kinesis data stream, provisioned mode. The shard count is updated in place
//! (`UpdateShardCount`, uniform scaling).

use crate::aws::{errors, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded};
use crate::engine::declare::{Handle, Spec};
use crate::engine::input::Input;
use anyhow::{Context, Result};
use aws_sdk_kinesis::client::Waiters;
use aws_sdk_kinesis::types::{ScalingType, StreamStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// How long stream state changes may take before we give up.
const WAIT: Duration = Duration::from_secs(300);

/// A stream and its shard count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KinesisStreamSpec {
    pub name: String,
    pub shard_count: i32,
}

impl Spec for KinesisStreamSpec {
    const KIND: Kind = Kind::KinesisStream;
}

impl Handle<KinesisStreamSpec> {
    /// The stream's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The stream's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}

pub struct KinesisStream;

impl Driver for KinesisStream {
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, &typed::<KinesisStreamSpec>(&recorded.props, Kind::KinesisStream)?.name).await })
    }
    fn create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: KinesisStreamSpec = typed(props, Kind::KinesisStream)?;
            let created =
                cx.cloud.kinesis.create_stream().stream_name(&spec.name).shard_count(spec.shard_count).send().await;
            let adopted = match created {
                Ok(_) => false,
                Err(e) if errors::is_already_exists(&e) => true,
                Err(e) => return Err(errors::context(format!("creating stream {}", spec.name), e)),
            };
            wait_active(cx, &spec.name).await?;
            let found = find(cx, &spec.name).await?.context("the stream was created but cannot be read back")?;
            if adopted && found.props["shard_count"] != json!(spec.shard_count) {
                cx.progress(format!("adopting existing stream {} with a different shard count", spec.name));
                return reshard(cx, &spec).await;
            }
            Ok(found.outputs)
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move { reshard(cx, &typed(props, Kind::KinesisStream)?).await })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: KinesisStreamSpec = typed(&recorded.props, Kind::KinesisStream)?;
            let kinesis = &cx.cloud.kinesis;
            match kinesis.delete_stream().stream_name(&spec.name).enforce_consumer_deletion(true).send().await {
                Err(e) if errors::is_not_found(&e) => return Ok(()),
                Err(e) => return Err(errors::context(format!("deleting stream {}", spec.name), e)),
                Ok(_) => {}
            }
            kinesis
                .wait_until_stream_not_exists()
                .stream_name(&spec.name)
                .wait(WAIT)
                .await
                .map_err(|e| anyhow::anyhow!("waiting for stream {} to be deleted: {e}", spec.name))?;
            Ok(())
        })
    }
}

async fn reshard(cx: &Cx<'_>, spec: &KinesisStreamSpec) -> Result<Outputs> {
    cx.cloud
        .kinesis
        .update_shard_count()
        .stream_name(&spec.name)
        .target_shard_count(spec.shard_count)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .map_err(|e| {
            errors::context(format!("updating the shard count of stream {} to {}", spec.name, spec.shard_count), e)
        })?;
    wait_active(cx, &spec.name).await?;
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the stream vanished during its update")
}

async fn wait_active(cx: &Cx<'_>, name: &str) -> Result<()> {
    cx.cloud
        .kinesis
        .wait_until_stream_exists()
        .stream_name(name)
        .wait(WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("waiting for stream {name} to become active: {e}"))?;
    Ok(())
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let summary = match cx.cloud.kinesis.describe_stream_summary().stream_name(name).send().await {
        Ok(out) => out.stream_description_summary.context("DescribeStreamSummary returned no summary")?,
        Err(e) if errors::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(errors::context(format!("reading stream {name}"), e)),
    };
    if summary.stream_status == StreamStatus::Deleting {
        return Ok(None);
    }
    Ok(Some(Observed {
        props: json!({ "name": summary.stream_name, "shard_count": summary.open_shard_count }),
        outputs: outputs([("arn", json!(summary.stream_arn)), ("name", json!(summary.stream_name))]),
    }))
}
