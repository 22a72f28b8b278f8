//! Kinesis data stream, provisioned mode. The shard count is updated in place
//! (`UpdateShardCount`, uniform scaling).

use crate::aws::retry::{retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::declare::{Handle, Spec};
use crate::engine::input::Input;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_kinesis::client::Waiters;
use aws_sdk_kinesis::types::{ScalingType, StreamStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub const KIND: Kind = Kind::new("kinesis_stream");

/// How long stream state changes may take before we give up.
const WAIT: Duration = Duration::from_secs(300);

/// A stream and its shard count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KinesisStreamSpec {
    pub name: String,
    pub shard_count: i32,
}

impl Spec for KinesisStreamSpec {
    const KIND: Kind = self::KIND;
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

impl Driver<Cloud> for KinesisStream {
    fn kind(&self) -> Kind {
        KIND
    }
    fn label(&self) -> &'static str {
        "Kinesis stream"
    }
    fn service(&self) -> &'static str {
        "kinesis"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::kinesis_stream)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: KinesisStreamSpec = typed(props, KIND)?;
            check_shard_count(spec.shard_count)?;
            let answer = cx
                .cloud
                .kinesis
                .create_stream()
                .stream_name(&spec.name)
                .shard_count(spec.shard_count)
                .set_tags(Some(declared_tags(props)))
                .send()
                .await;
            // ResourceInUseException: the stream exists, or is still being deleted.
            errors::sent(answer, errors::is_in_use_or_conflict, format!("creating stream {}", spec.name), |_| {
                Outputs::new()
            })
        })
    }
    fn wait_deleted<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { wait_deleted(cx, name_prop(props, "name", KIND)?).await })
    }
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value, _: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let name = name_prop(props, "name", KIND)?;
            wait_active(cx, name).await?;
            find(cx, name).await
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
            let spec: KinesisStreamSpec = typed(props, KIND)?;
            if changed.iter().any(|f| f == "tags") {
                tag(cx, &spec.name, props).await?;
            }
            if changed.iter().any(|f| f == "shard_count") {
                return reshard(cx, &spec).await;
            }
            find(cx, &spec.name).await?.map(|o| o.outputs).context("the stream vanished during its update")
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            let answer =
                cx.cloud.kinesis.delete_stream().stream_name(name).enforce_consumer_deletion(true).send().await;
            errors::deleted(answer, format!("deleting stream {name}"))?;
            wait_deleted(cx, name).await
        })
    }
}

/// How many UpdateShardCount calls AWS allows per stream in a rolling 24 hours.
const RESHARDS_PER_DAY: usize = 10;
/// The most shards one stream may have (AWS's hard limit per UpdateShardCount target).
const MAX_SHARDS: i32 = 10_000;

fn check_shard_count(target: i32) -> Result<()> {
    if !(1..=MAX_SHARDS).contains(&target) {
        anyhow::bail!("a Kinesis stream has 1 to {MAX_SHARDS} shards, not {target}");
    }
    Ok(())
}

/// The shard counts UpdateShardCount goes through from `current` to `target`: AWS's uniform
/// scaling takes each call at most to double, or at least to half, the open shards.
pub fn shard_steps(current: i32, target: i32) -> Vec<i32> {
    let mut steps = Vec::new();
    let mut at = current;
    while at != target {
        at = if target > at { target.min(at * 2) } else { target.max((at + 1) / 2) };
        steps.push(at);
    }
    steps
}

/// Changes the shard count step by step (doubling or halving), waiting for the stream to be
/// ACTIVE after each step, as AWS requires; refuses a change AWS would not allow within a day.
async fn reshard(cx: &Cx<'_>, spec: &KinesisStreamSpec) -> Result<Outputs> {
    check_shard_count(spec.shard_count)?;
    let current = find(cx, &spec.name).await?.context("the stream vanished before its update")?;
    let open = current.props["shard_count"].as_i64().unwrap_or(i64::from(spec.shard_count)) as i32;
    if open < 1 {
        anyhow::bail!("stream {} reports {open} open shards: wait until it is ACTIVE, then run `up` again", spec.name);
    }
    let steps = shard_steps(open, spec.shard_count);
    if steps.len() > RESHARDS_PER_DAY {
        anyhow::bail!(
            "going from {open} to {} shards takes {} UpdateShardCount calls (each at most doubles or halves the \
             shards) and AWS allows {RESHARDS_PER_DAY} per stream a day: change shard_count in smaller steps over \
             more than one day",
            spec.shard_count,
            steps.len()
        );
    }
    let mut from = open;
    for step in steps {
        cx.progress(format!("stream {}: {from} -> {step} shards", spec.name));
        retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
            cx.cloud
                .kinesis
                .update_shard_count()
                .stream_name(&spec.name)
                .target_shard_count(step)
                .scaling_type(ScalingType::UniformScaling)
                .send()
        })
        .await
        .map_err(|e| errors::context(format!("updating the shard count of stream {} to {step}", spec.name), e))?;
        wait_active(cx, &spec.name).await?;
        from = step;
    }
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the stream vanished during its update")
}

async fn wait_deleted(cx: &Cx<'_>, name: &str) -> Result<()> {
    cx.cloud
        .kinesis
        .wait_until_stream_not_exists()
        .stream_name(name)
        .wait(WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("waiting for stream {name} to be deleted: {e}"))?;
    Ok(())
}

async fn tag(cx: &Cx<'_>, name: &str, props: &Value) -> Result<()> {
    cx.cloud
        .kinesis
        .add_tags_to_stream()
        .stream_name(name)
        .set_tags(Some(declared_tags(props)))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging stream {name}"), e))?;
    Ok(())
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
    let kinesis = &cx.cloud.kinesis;
    let described = kinesis.describe_stream_summary().stream_name(name).send().await;
    let Some(described) = errors::found(described, format!("reading stream {name}"))? else { return Ok(None) };
    let summary = described.stream_description_summary.context("DescribeStreamSummary returned no summary")?;
    if summary.stream_status == StreamStatus::Deleting {
        return Ok(None);
    }
    let listed = kinesis.list_tags_for_stream().stream_name(name).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of stream {name}"))? else { return Ok(None) };
    let tags: Vec<(String, String)> = listed.tags.into_iter().map(|t| (t.key, t.value.unwrap_or_default())).collect();
    Ok(Some(Observed {
        props: json!({
            "name": summary.stream_name,
            "shard_count": summary.open_shard_count,
            "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))),
        }),
        outputs: outputs([("arn", json!(summary.stream_arn)), ("name", json!(summary.stream_name))]),
        created_unix: u64::try_from(summary.stream_creation_timestamp.secs()).ok(),
        failed: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_changes_step_by_doubling_or_halving() {
        assert_eq!(shard_steps(1, 4), vec![2, 4]);
        assert_eq!(shard_steps(4, 1), vec![2, 1]);
        assert_eq!(shard_steps(3, 8), vec![6, 8]);
        assert_eq!(shard_steps(8, 3), vec![4, 3]);
        assert_eq!(shard_steps(5, 3), vec![3]);
        assert_eq!(shard_steps(2, 2), Vec::<i32>::new());
        assert_eq!(shard_steps(1, 500).len(), 9);
        assert!(shard_steps(1, 10_000).len() > RESHARDS_PER_DAY, "refused as more than a day's calls");
    }
}
