//! Kinesis data stream, provisioned (a shard count) or on demand (AWS sizes it). The shard count
//! is updated in place by doubling or halving (`UpdateShardCount`, uniform scaling, at most 10
//! calls a day); the mode is switched in place (`UpdateStreamMode`), which AWS allows twice per
//! stream in 24 hours: the switches are kept in the stream's outputs, and a third is refused
//! with the time it becomes possible.

use crate::aws::endpoint::Flavor;
use crate::aws::event_source_mapping;
use crate::aws::retry::{retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, DataCount, Driver, Kind, Observed, Outputs, Recorded,
    Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_kinesis::client::Waiters;
use aws_sdk_kinesis::types::{ScalingType, StreamMode, StreamStatus};
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::kinesis_stream::*;

pub const KIND: Kind = Kind::new(<KinesisStreamSpec as declaration::Spec>::KIND);

/// How long stream state changes may take before we give up.
const WAIT: Duration = Duration::from_secs(300);

pub struct KinesisStream;

impl Driver<Cloud> for KinesisStream {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name"]
    }
    crate::declared_as!(KinesisStreamSpec);
    fn label(&self) -> &'static str {
        "Kinesis stream"
    }
    fn holds_data(&self) -> bool {
        true
    }
    fn service(&self) -> &'static str {
        "kinesis"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    /// A switch of the capacity mode needs `UpdateStreamMode`, which MiniStack lacks.
    fn service_for_update(&self, changed: &[String]) -> &'static str {
        if changed.iter().any(|f| f == "mode") {
            "kinesis:update-stream-mode"
        } else {
            ""
        }
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::kinesis_stream)?;
        let spec: KinesisStreamSpec = serde_json::from_value(props.clone()).map_err(|e| e.to_string())?;
        check_capacity(&spec).map_err(|e| e.to_string())
    }
    /// The stream as it is, with the mode switches the state keeps (the API does not say).
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let mut found = find(cx, name_prop(&recorded.props, "name", KIND)?).await?;
            if let (Some(found), Some(switches)) = (found.as_mut(), recorded.outputs.get(MODE_SWITCHES)) {
                found.outputs.insert(MODE_SWITCHES.into(), switches.clone());
            }
            Ok(found)
        })
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: KinesisStreamSpec = typed(props, KIND)?;
            check_capacity(&spec)?;
            let answer = cx
                .cloud
                .kinesis
                .create_stream()
                .stream_name(&spec.name)
                .set_shard_count(spec.shard_count)
                .stream_mode_details(mode_details(&spec.mode)?)
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
        recorded: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: KinesisStreamSpec = typed(props, KIND)?;
            check_capacity(&spec)?;
            let mut switches = recorded_switches(recorded);
            if changed.iter().any(|f| f == "tags") {
                tag(cx, &spec.name, props).await?;
            }
            if changed.iter().any(|f| f == "mode") {
                switch_mode(cx, &spec, &mut switches).await?;
            }
            if spec.mode == PROVISIONED && changed.iter().any(|f| f == "shard_count" || f == "mode") {
                reshard(cx, &spec).await?;
            }
            let mut outputs =
                find(cx, &spec.name).await?.map(|o| o.outputs).context("the stream vanished during its update")?;
            if !switches.is_empty() {
                outputs.insert(MODE_SWITCHES.into(), json!(switches));
            }
            Ok(outputs)
        })
    }
    /// Records cannot be counted without reading every shard: the stream's are said, not counted.
    fn count_data<'a>(&'a self, _cx: &'a Cx<'a>, _recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async { Ok(Some(DataCount::Uncounted("the records it retains"))) })
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

/// The output keeping when the stream's mode was switched (Unix seconds).
const MODE_SWITCHES: &str = "mode_switches";
/// How many mode switches AWS allows per stream in a rolling 24 hours.
const MODE_SWITCHES_PER_DAY: usize = 2;
const DAY_S: u64 = 24 * 3600;

fn mode_details(mode: &str) -> Result<aws_sdk_kinesis::types::StreamModeDetails> {
    Ok(aws_sdk_kinesis::types::StreamModeDetails::builder().stream_mode(StreamMode::from(mode)).build()?)
}

/// The mode switches the state recorded, within the last 24 hours.
fn recorded_switches(recorded: &Recorded) -> Vec<u64> {
    let now = crate::engine::state::now_unix();
    let switches: Vec<u64> = recorded
        .outputs
        .get(MODE_SWITCHES)
        .and_then(Value::as_array)
        .map(|all| all.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    switches.into_iter().filter(|t| now.saturating_sub(*t) < DAY_S).collect()
}

/// Why a switch is refused now, given the switches of the last 24 hours (`None`: it is allowed).
fn switch_refusal(name: &str, switches: &[u64], now: u64) -> Option<String> {
    let recent: Vec<u64> = switches.iter().copied().filter(|t| now.saturating_sub(*t) < DAY_S).collect();
    if recent.len() < MODE_SWITCHES_PER_DAY {
        return None;
    }
    let possible_at = recent.iter().min().expect("two switches") + DAY_S;
    Some(format!(
        "stream {name} switched its capacity mode {} times in the last 24 hours and AWS allows {MODE_SWITCHES_PER_DAY}: \
         the next switch is possible at {} UTC, in {} min; until then keep the mode it has",
        recent.len(),
        utc(possible_at),
        possible_at.saturating_sub(now).div_ceil(60)
    ))
}

/// `YYYY-MM-DD HH:MM` of Unix seconds, UTC.
fn utc(unix: u64) -> String {
    let (days, seconds) = ((unix / 86_400) as i64, unix % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// Switches the stream to the declared mode (`UpdateStreamMode`), within AWS's two a day, and
/// waits until it is ACTIVE again.
async fn switch_mode(cx: &Cx<'_>, spec: &KinesisStreamSpec, switches: &mut Vec<u64>) -> Result<()> {
    let now = crate::engine::state::now_unix();
    if let Some(refusal) = switch_refusal(&spec.name, switches, now) {
        anyhow::bail!(refusal);
    }
    let arn =
        find(cx, &spec.name).await?.and_then(|f| f.outputs.get("arn").and_then(Value::as_str).map(str::to_string));
    let arn = arn.with_context(|| format!("stream {} vanished before its mode switch", spec.name))?;
    cx.progress(format!("stream {}: switching to {}", spec.name, spec.mode));
    cx.cloud
        .kinesis
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode_details(&spec.mode)?)
        .send()
        .await
        .map_err(|e| errors::context(format!("switching stream {} to {}", spec.name, spec.mode), e))?;
    switches.push(now);
    wait_active(cx, &spec.name).await
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
async fn reshard(cx: &Cx<'_>, spec: &KinesisStreamSpec) -> Result<()> {
    let target = spec.shard_count.context("a provisioned stream needs a shard count")?;
    check_shard_count(target)?;
    let current = find(cx, &spec.name).await?.context("the stream vanished before its update")?;
    let Some(open) = current.props["shard_count"].as_i64().map(|n| n as i32) else {
        anyhow::bail!("stream {} reports no shard count: wait until it is ACTIVE, then run `up` again", spec.name);
    };
    if open < 1 {
        anyhow::bail!("stream {} reports {open} open shards: wait until it is ACTIVE, then run `up` again", spec.name);
    }
    let steps = shard_steps(open, target);
    if steps.len() > RESHARDS_PER_DAY {
        anyhow::bail!(
            "going from {open} to {} shards takes {} UpdateShardCount calls (each at most doubles or halves the \
             shards) and AWS allows {RESHARDS_PER_DAY} per stream a day: change shard_count in smaller steps over \
             more than one day",
            target,
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
    if cx.cloud.endpoint().await.flavor == Flavor::MiniStack {
        let arn = current.outputs.get("arn").and_then(Value::as_str).context("the stream has no ARN")?;
        restart_mappings(cx, &spec.name, arn).await?;
    }
    Ok(())
}

/// MiniStack's reshard leaves its mappings' places in the shards stale, so most records written
/// afterwards would never be delivered: every mapping reading the stream is made anew, reading
/// from the start (see `event_source_mapping::restart_from_trim_horizon` for the cause). Records
/// that were on the stream, undelivered, when the shards were rebuilt are gone with them: MiniStack
/// keeps none of a stream's records through `UpdateShardCount`.
async fn restart_mappings(cx: &Cx<'_>, name: &str, arn: &str) -> Result<()> {
    cx.progress(format!("stream {name}: MiniStack rebuilt its shards: making the mappings that read it anew"));
    let restarted = event_source_mapping::restart_from_trim_horizon(cx, arn).await?;
    cx.progress(format!("stream {name}: {restarted} mapping(s) read the new shards from their start"));
    Ok(())
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
    let mode = summary.stream_mode_details.as_ref().map_or(PROVISIONED, |m| m.stream_mode.as_str());
    // An on-demand stream's shards are AWS's business: not part of what is compared.
    let shard_count = (mode == PROVISIONED).then_some(summary.open_shard_count);
    Ok(Some(Observed {
        props: json!({
            "name": summary.stream_name,
            "mode": mode,
            "shard_count": shard_count,
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

    #[test]
    fn a_third_mode_switch_within_a_day_is_refused_with_when_it_becomes_possible() {
        let now = 1_764_500_000; // 2025-11-30 10:53 UTC
        assert_eq!(utc(now), "2025-11-30 10:53");
        assert!(switch_refusal("s", &[], now).is_none());
        assert!(switch_refusal("s", &[now - 100], now).is_none());
        let refusal = switch_refusal("s", &[now - 3600, now - 100], now).expect("a third switch is refused");
        assert!(refusal.contains("2025-11-30 09:53") || refusal.contains("2025-12-01 09:53"), "{refusal}");
        assert!(refusal.contains("in 1380 min"), "{refusal}");
        assert!(
            switch_refusal("s", &[now - DAY_S - 1, now - 100], now).is_none(),
            "a switch a day old no longer counts"
        );
    }
}

/// The mode and shard count agree.
fn check_capacity(spec: &KinesisStreamSpec) -> Result<()> {
    match (spec.mode.as_str(), spec.shard_count) {
        (PROVISIONED, Some(shards)) => check_shard_count(shards),
        (ON_DEMAND, None) => Ok(()),
        (PROVISIONED, None) => anyhow::bail!("a provisioned stream needs a shard count"),
        (ON_DEMAND, Some(_)) => anyhow::bail!("an on-demand stream has no shard count of its own: AWS sizes it"),
        (mode, _) => anyhow::bail!("stream mode is PROVISIONED or ON_DEMAND, not {mode}"),
    }
}
