//! Event source mapping: a stream (Kinesis or DynamoDB) feeding a function in batches.
//! Batch size, batching window, retries, record age, bisect, response types and the on-failure
//! destination are updated in place; a new source or starting position replaces the mapping.

use crate::aws::retry::{poll_until, retry_when, PROPAGATION_DEADLINE};
use crate::aws::{errors, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded};
use crate::cloud::Cloud;
use crate::engine::declare::Spec;
use crate::engine::input::Input;
use anyhow::{Context, Result};
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;
use aws_sdk_lambda::types::{DestinationConfig, EventSourcePosition, FunctionResponseType, OnFailure};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub const KIND: Kind = Kind::new("event_source_mapping");

/// The batching and failure settings of a stream mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventSourceMappingSpec {
    pub function_name: Input<String>,
    pub event_source_arn: Input<String>,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub batch_size: i32,
    pub batching_window_s: i32,
    pub bisect_on_error: bool,
    /// -1 = retry until the record expires.
    pub maximum_retry_attempts: i32,
    /// -1 = no age limit.
    pub maximum_record_age_s: i32,
    pub report_batch_item_failures: bool,
    pub on_failure_arn: Option<Input<String>>,
    /// Whether the mapping polls its source (a disabled mapping stops the records).
    pub enabled: bool,
}

impl Spec for EventSourceMappingSpec {
    const KIND: Kind = self::KIND;
}

pub struct EventSourceMapping;

impl Driver<Cloud> for EventSourceMapping {
    fn kind(&self) -> Kind {
        KIND
    }
    fn label(&self) -> &'static str {
        "event source mapping"
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
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let uuid = recorded_output(recorded, "uuid")?;
            match cx.cloud.lambda.get_event_source_mapping().uuid(uuid).send().await {
                Ok(out) if is_deleting(out.state()) => Ok(None),
                Ok(out) => Ok(Some(observe(&out, recorded))),
                Err(e) if errors::is_not_found(&e) => Ok(None),
                Err(e) => Err(errors::context(format!("reading event source mapping {uuid}"), e)),
            }
        })
    }
    fn create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(create(cx, props))
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
            update(cx, &spec, recorded_output(recorded, "uuid")?).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let Ok(uuid) = recorded_output(recorded, "uuid") else {
                return Ok(());
            };
            let lambda = &cx.cloud.lambda;
            match retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
                lambda.delete_event_source_mapping().uuid(uuid).send()
            })
            .await
            {
                Err(e) if errors::is_not_found(&e) => return Ok(()),
                Err(e) => return Err(errors::context(format!("deleting event source mapping {uuid}"), e)),
                Ok(_) => {}
            }
            poll_until(
                &format!("event source mapping {uuid} to be deleted"),
                Duration::from_millis(500),
                Duration::from_secs(300),
                || async {
                    match lambda.get_event_source_mapping().uuid(uuid).send().await {
                        Err(e) if errors::is_not_found(&e) => Ok(Some(())),
                        Err(e) => Err(errors::context(format!("reading event source mapping {uuid}"), e)),
                        Ok(_) => Ok(None),
                    }
                },
            )
            .await
        })
    }
}

async fn create(cx: &Cx<'_>, props: &Value) -> Result<Outputs> {
    let spec: EventSourceMappingSpec = typed(props, KIND)?;
    let lambda = &cx.cloud.lambda;
    // A mapping between the same source and function of this stack is this stack's (the engine
    // checked the function's and the source's marks): adopt it.
    if let Some(uuid) = find_between(cx, spec.function_name.get(), spec.event_source_arn.get()).await? {
        cx.progress(format!("mapping {uuid} already exists: adopting it"));
        return update(cx, &spec, &uuid).await;
    }
    // ResourceConflictException means "this mapping exists" or "an operation is in progress":
    // read to know which; the other busy answers and IAM propagation are waited out.
    let started = std::time::Instant::now();
    let created = loop {
        let sent = retry_when(
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
        let context =
            || format!("creating the mapping from {} to {}", spec.event_source_arn.get(), spec.function_name.get());
        match sent {
            Ok(created) => break created,
            Err(e) if errors::is_in_use_or_conflict(&e) => {
                if let Some(uuid) = find_between(cx, spec.function_name.get(), spec.event_source_arn.get()).await? {
                    cx.progress(format!("mapping {uuid} already exists: adopting it"));
                    return update(cx, &spec, &uuid).await;
                }
                if started.elapsed() > PROPAGATION_DEADLINE {
                    return Err(errors::context(context(), e));
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(errors::context(context(), e)),
        }
    };
    let uuid = created.uuid.context("CreateEventSourceMapping returned no UUID")?;
    wait_enabled(cx, &uuid).await
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
async fn find_between(cx: &Cx<'_>, function: &str, source: &str) -> Result<Option<String>> {
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
async fn wait_enabled(cx: &Cx<'_>, uuid: &str) -> Result<Outputs> {
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

fn is_deleting(state: Option<&str>) -> bool {
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
