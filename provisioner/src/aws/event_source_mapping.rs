//! Event source mapping: a stream (Kinesis or DynamoDB) feeding a function in batches.
//! Batch size, batching window, retries, record age, bisect, response types and the on-failure
//! destination are updated in place; a new source or starting position replaces the mapping.

use crate::aws::retry::{poll_until, retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    errors, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent, Teardown,
};
use crate::cloud::Cloud;
use anyhow::{Context, Result};
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;
use aws_sdk_lambda::types::{DestinationConfig, EventSourcePosition, FunctionResponseType, OnFailure};
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::event_source_mapping::*;

pub const KIND: Kind = Kind::new(<EventSourceMappingSpec as declaration::Spec>::KIND);

pub struct EventSourceMapping;

impl Driver<Cloud> for EventSourceMapping {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["uuid"]
    }
    crate::declared_as!(EventSourceMappingSpec);
    fn label(&self) -> &'static str {
        "event source mapping"
    }
    /// When `down` deletes it: an event source mapping invokes the stack's functions: it goes first.
    fn teardown(&self) -> Teardown {
        Teardown::Source
    }
    fn service(&self) -> &'static str {
        "lambda"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["event_source_arn", "starting_position", "function_name"]
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: EventSourceMappingSpec = typed(props, KIND)?;
            let (Some(function), Some(source)) = (spec.function_name.value(), spec.event_source_arn.value()) else {
                return Ok(None); // its function or source does not exist yet
            };
            let Some(uuid) = find_between(cx, function, source).await? else {
                return Ok(None);
            };
            let recorded = Recorded { props: props.clone(), outputs: outputs([("uuid", json!(uuid))]) };
            self.read(cx, &recorded).await
        })
    }
    /// By the recorded UUID; when that mapping is gone, the one between the same function and
    /// source is this one all the same (a reshard on MiniStack makes it anew: see
    /// [`restart_from_trim_horizon`]), and its new UUID is what the refresh records.
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let uuid = recorded_output(recorded, "uuid")?;
            if let Some(found) = read_uuid(cx, uuid, recorded).await? {
                return Ok(Some(found));
            }
            match successor(cx, recorded).await? {
                Some(current) => read_uuid(cx, &current, recorded).await,
                None => Ok(None),
            }
        })
    }
    /// A mapping between the same source and function is found by listing (mappings have no
    /// name): it is looked for first. One between two of this stack's resources is the stack's.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(send_create(cx, props))
    }
    /// Waits while the mapping is Creating, Updating or Enabling, then reads it.
    fn ready<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        known: &'a Outputs,
    ) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let uuid =
                known.get("uuid").and_then(Value::as_str).context("CreateEventSourceMapping returned no UUID")?;
            wait_enabled(cx, uuid).await?;
            let recorded = Recorded { props: props.clone(), outputs: outputs([("uuid", json!(uuid))]) };
            self.read(cx, &recorded).await
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        recorded: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: EventSourceMappingSpec = typed(props, KIND)?;
            let uuid = recorded_output(recorded, "uuid")?;
            let current = match made_anew(cx, recorded).await? {
                Some(current) => current,
                None => uuid.to_string(),
            };
            update(cx, &spec, &current).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            if let Some(current) = made_anew(cx, recorded).await? {
                delete(cx, &Recorded { props: json!({}), outputs: outputs([("uuid", json!(current))]) }).await?;
            }
            delete(cx, recorded).await
        })
    }
}

/// The UUID of the mapping between the recorded function and source when the recorded one is
/// gone and another took its place (made anew after a reshard on MiniStack: see
/// [`restart_from_trim_horizon`]); `None` when the recorded one is still there, or none is.
async fn made_anew(cx: &Cx<'_>, recorded: &Recorded) -> Result<Option<String>> {
    match read_uuid(cx, recorded_output(recorded, "uuid")?, recorded).await? {
        Some(_) => Ok(None),
        None => successor(cx, recorded).await,
    }
}

/// Another mapping than the recorded one between the recorded function and source, if any.
async fn successor(cx: &Cx<'_>, recorded: &Recorded) -> Result<Option<String>> {
    let uuid = recorded_output(recorded, "uuid")?;
    let spec: EventSourceMappingSpec = typed(&recorded.props, KIND)?;
    let (Some(function), Some(source)) = (spec.function_name.value(), spec.event_source_arn.value()) else {
        return Ok(None);
    };
    Ok(find_between(cx, function, source).await?.filter(|current| current != uuid))
}

/// The mapping `uuid`, unless it is gone or going.
async fn read_uuid(cx: &Cx<'_>, uuid: &str, recorded: &Recorded) -> Result<Option<Observed>> {
    let answer = cx.cloud.lambda.get_event_source_mapping().uuid(uuid).send().await;
    let found = errors::found(answer, format!("reading event source mapping {uuid}"))?;
    Ok(found.filter(|out| !is_deleting(out.state())).map(|out| observe(&out, recorded)))
}

/// Makes every mapping that reads the stream `source` anew, with the same settings, reading from
/// the start of the stream's shards (`TRIM_HORIZON`); returns how many.
///
/// Only for MiniStack, after `UpdateShardCount` (`kinesis_stream::reshard`): MiniStack rebuilds
/// every shard empty under the same ids, while a mapping keeps its place in each shard as an
/// index into the shard's list of records, never reset. The old places point past the end of the
/// new, empty lists, so the records written there are skipped until a list grows past its old
/// place (about two thirds of them after a second reshard). Disabling and enabling a mapping, or
/// updating it, keeps the places; only a new mapping starts afresh. A new mapping reading from
/// the start delivers every record written since the reshard, the ones written before it was
/// made too; a record the old mapping already delivered from a new shard may come again, which
/// the functions' idempotent writes absorb. AWS closes the parent shards and opens children with
/// new ids, which mappings follow in order: there, nothing is needed.
pub(crate) async fn restart_from_trim_horizon(cx: &Cx<'_>, source: &str) -> Result<usize> {
    let listed = cx
        .cloud
        .lambda
        .list_event_source_mappings()
        .event_source_arn(source)
        .send()
        .await
        .map_err(|e| errors::context(format!("listing the mappings of stream {source}"), e))?;
    let mappings: Vec<_> = listed.event_source_mappings().iter().filter(|m| !is_deleting(m.state())).cloned().collect();
    for old in &mappings {
        let uuid = old.uuid().context("a listed mapping has no UUID")?;
        let function = old.function_arn().context("a listed mapping names no function")?;
        delete(cx, &Recorded { props: json!({}), outputs: outputs([("uuid", json!(uuid))]) }).await?;
        let created = retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
            cx.cloud
                .lambda
                .create_event_source_mapping()
                .function_name(function)
                .event_source_arn(source)
                .starting_position(EventSourcePosition::TrimHorizon)
                .enabled(!matches!(old.state(), Some("Disabled" | "Disabling")))
                .set_batch_size(old.batch_size())
                .set_maximum_batching_window_in_seconds(old.maximum_batching_window_in_seconds())
                .set_bisect_batch_on_function_error(old.bisect_batch_on_function_error())
                .set_maximum_retry_attempts(old.maximum_retry_attempts())
                .set_maximum_record_age_in_seconds(old.maximum_record_age_in_seconds())
                .set_parallelization_factor(old.parallelization_factor())
                .set_function_response_types(Some(old.function_response_types().to_vec()))
                .set_destination_config(old.destination_config().cloned())
                .send()
        })
        .await
        .map_err(|e| errors::context(format!("making the mapping from {source} to {function} anew"), e))?;
        wait_enabled(cx, created.uuid().context("CreateEventSourceMapping returned no UUID")?).await?;
    }
    Ok(mappings.len())
}

/// Deletes the mapping recorded with `recorded`'s uuid and waits until it is gone.
pub(crate) async fn delete(cx: &Cx<'_>, recorded: &Recorded) -> Result<()> {
    let Ok(uuid) = recorded_output(recorded, "uuid") else {
        return Ok(());
    };
    let lambda = &cx.cloud.lambda;
    let answer =
        retry_when(PROPAGATION_DEADLINE, errors::is_busy, || lambda.delete_event_source_mapping().uuid(uuid).send())
            .await;
    errors::deleted(answer, format!("deleting event source mapping {uuid}"))?;
    poll_until(
        &format!("event source mapping {uuid} to be deleted"),
        Duration::from_millis(500),
        Duration::from_secs(300),
        || async {
            let answer = lambda.get_event_source_mapping().uuid(uuid).send().await;
            let found = errors::found(answer, format!("reading event source mapping {uuid}"))?;
            Ok(found.is_none().then_some(()))
        },
    )
    .await
}

/// Sends CreateEventSourceMapping, waiting out IAM propagation and busy answers other than a
/// conflict. ResourceConflictException: this mapping exists, or an operation is in progress.
async fn send_create(cx: &Cx<'_>, props: &Value) -> Result<Sent> {
    let spec: EventSourceMappingSpec = typed(props, KIND)?;
    let lambda = &cx.cloud.lambda;
    let answer = retry_when(
        PROPAGATION_DEADLINE,
        |e| errors::is_propagation(e) || (errors::is_busy(e) && !errors::is_in_use_or_conflict(e)),
        || {
            lambda
                .create_event_source_mapping()
                .function_name(spec.function_name.get())
                .event_source_arn(spec.event_source_arn.get())
                .starting_position(EventSourcePosition::from(spec.starting_position.as_str()))
                .enabled(spec.enabled)
                .batch_size(spec.batch_size)
                .maximum_batching_window_in_seconds(spec.batching_window_s)
                .bisect_batch_on_function_error(spec.bisect_on_error)
                .maximum_retry_attempts(spec.maximum_retry_attempts)
                .maximum_record_age_in_seconds(spec.maximum_record_age_s)
                .set_function_response_types(response_types(&spec))
                .set_destination_config(destination(&spec))
                .send()
        },
    )
    .await;
    let what = format!("creating the mapping from {} to {}", spec.event_source_arn.get(), spec.function_name.get());
    errors::sent(answer, errors::is_in_use_or_conflict, what, |created| outputs([("uuid", json!(created.uuid))]))
}

async fn update(cx: &Cx<'_>, spec: &EventSourceMappingSpec, uuid: &str) -> Result<Outputs> {
    let lambda = &cx.cloud.lambda;
    retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
        lambda
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(spec.enabled)
            .batch_size(spec.batch_size)
            .maximum_batching_window_in_seconds(spec.batching_window_s)
            .bisect_batch_on_function_error(spec.bisect_on_error)
            .maximum_retry_attempts(spec.maximum_retry_attempts)
            .maximum_record_age_in_seconds(spec.maximum_record_age_s)
            .set_function_response_types(Some(response_types(spec).unwrap_or_default()))
            .destination_config(destination(spec).unwrap_or_else(|| DestinationConfig::builder().build()))
            .send()
    })
    .await
    .map_err(|e| errors::context(format!("updating event source mapping {uuid}"), e))?;
    wait_enabled(cx, uuid).await
}

/// The mapping (not being deleted) from `source` to `function`, if there is one.
pub(crate) async fn find_between(cx: &Cx<'_>, function: &str, source: &str) -> Result<Option<String>> {
    let existing = cx
        .cloud
        .lambda
        .list_event_source_mappings()
        .function_name(function)
        .event_source_arn(source)
        .send()
        .await
        .map_err(|e| errors::context(format!("listing the mappings of function {function}"), e))?;
    Ok(existing.event_source_mappings().iter().filter(|m| !is_deleting(m.state())).find_map(|m| m.uuid.clone()))
}

/// Waits while the mapping is Creating/Updating/Enabling, then returns its outputs.
pub(crate) async fn wait_enabled(cx: &Cx<'_>, uuid: &str) -> Result<Outputs> {
    let lambda = &cx.cloud.lambda;
    poll_until(
        &format!("event source mapping {uuid} to be enabled"),
        Duration::from_millis(300),
        Duration::from_secs(300),
        || async {
            let out = lambda
                .get_event_source_mapping()
                .uuid(uuid)
                .send()
                .await
                .map_err(|e| errors::context(format!("reading mapping {uuid}"), e))?;
            Ok(matches!(out.state(), Some("Enabled" | "Disabled")).then_some(()))
        },
    )
    .await?;
    Ok(outputs([("uuid", json!(uuid))]))
}

pub(crate) fn is_deleting(state: Option<&str>) -> bool {
    state == Some("Deleting")
}

fn response_types(spec: &EventSourceMappingSpec) -> Option<Vec<FunctionResponseType>> {
    spec.report_batch_item_failures.then(|| vec![FunctionResponseType::ReportBatchItemFailures])
}

fn destination(spec: &EventSourceMappingSpec) -> Option<DestinationConfig> {
    spec.on_failure_arn
        .as_ref()
        .map(|arn| DestinationConfig::builder().on_failure(OnFailure::builder().destination(arn.get()).build()).build())
}

fn observe(out: &GetEventSourceMappingOutput, recorded: &Recorded) -> Observed {
    let function_name = out.function_arn().map(|arn| arn.rsplit(':').next().unwrap_or(arn).to_string());
    let on_failure =
        out.destination_config().and_then(|d| d.on_failure()).and_then(|f| f.destination()).filter(|d| !d.is_empty());
    let reports = out.function_response_types().contains(&FunctionResponseType::ReportBatchItemFailures);
    // Starting position is write-once; the API echoes it back only sometimes.
    let starting_position = out
        .starting_position()
        .map(|p| p.as_str().to_string())
        .or_else(|| recorded.props.get("starting_position").and_then(|v| v.as_str()).map(String::from));
    Observed::new(
        json!({
            "function_name": function_name,
            "event_source_arn": out.event_source_arn(),
            "starting_position": starting_position,
            "batch_size": out.batch_size(),
            "batching_window_s": out.maximum_batching_window_in_seconds().unwrap_or(0),
            "bisect_on_error": out.bisect_batch_on_function_error().unwrap_or(false),
            "maximum_retry_attempts": out.maximum_retry_attempts().unwrap_or(-1),
            "maximum_record_age_s": out.maximum_record_age_in_seconds().unwrap_or(-1),
            "report_batch_item_failures": reports,
            "on_failure_arn": on_failure,
            "enabled": !matches!(out.state(), Some("Disabled" | "Disabling")),
        }),
        outputs([("uuid", json!(out.uuid()))]),
    )
}
