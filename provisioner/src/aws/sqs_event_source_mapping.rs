//! Event source mapping from an SQS queue to a function, under AWS's rules for it, which are
//! checked here even where an emulator is lenient:
//! - the queue's visibility timeout must be at least the function's timeout (AWS refuses the
//!   mapping otherwise; its advice is six times), read from both before the create and each update;
//! - a batch of more than 10 messages needs a batching window of at least 1 s;
//! - `ScalingConfig.MaximumConcurrency` is 2 to 1000;
//! - a failed message is retried through the queue (visibility timeout, then the queue's redrive
//!   policy): OnFailure destinations do not apply to SQS mappings, so there is none to declare.
//!
//! MiniStack 1.5.33 runs these mappings, but caps each batch at 10 messages whatever the batch
//! size, ignores the batching window, honours `ReportBatchItemFailures`, uses the maximum
//! concurrency as its limit of batches in flight (5 when unset) and does not check the
//! visibility timeout.

use crate::aws::event_source_mapping::{delete, find_between, is_deleting, wait_enabled};
use crate::aws::retry::{retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    errors, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent, Teardown,
};
use crate::cloud::Cloud;
use anyhow::{Context, Result};
use aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput;
use aws_sdk_lambda::types::{FunctionResponseType, ScalingConfig};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::sqs_event_source_mapping::*;

pub const KIND: Kind = Kind::new(<SqsEventSourceMappingSpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct SqsEventSourceMapping;

impl Driver<Cloud> for SqsEventSourceMapping {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["uuid"]
    }
    crate::declared_as!(SqsEventSourceMappingSpec);
    fn label(&self) -> &'static str {
        "SQS event source mapping"
    }
    /// When `down` deletes it: it invokes the stack's functions: it goes first.
    fn teardown(&self) -> Teardown {
        Teardown::Source
    }
    fn service(&self) -> &'static str {
        "lambda"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["queue_arn", "function_name"]
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        let spec: SqsEventSourceMappingSpec = serde_json::from_value(props.clone()).map_err(|e| e.to_string())?;
        check(&spec)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: SqsEventSourceMappingSpec = typed(props, KIND)?;
            let (Some(function), Some(queue)) = (spec.function_name.value(), spec.queue_arn.value()) else {
                return Ok(None); // its function or queue does not exist yet
            };
            let Some(uuid) = find_between(cx, function, queue).await? else { return Ok(None) };
            self.read(cx, &Recorded { props: props.clone(), outputs: outputs([("uuid", json!(uuid))]) }).await
        })
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let uuid = recorded_output(recorded, "uuid")?;
            let answer = cx.cloud.lambda.get_event_source_mapping().uuid(uuid).send().await;
            let found = errors::found(answer, format!("reading SQS event source mapping {uuid}"))?;
            Ok(found.filter(|out| !is_deleting(out.state())).map(|out| observe(&out)))
        })
    }
    /// Mappings have no name: one between the same queue and function (both the stack's) is
    /// looked for first.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: SqsEventSourceMappingSpec = typed(props, KIND)?;
            check_visibility(cx, &spec).await?;
            let lambda = &cx.cloud.lambda;
            let answer = retry_when(
                PROPAGATION_DEADLINE,
                |e| errors::is_propagation(e) || (errors::is_busy(e) && !errors::is_in_use_or_conflict(e)),
                || {
                    lambda
                        .create_event_source_mapping()
                        .function_name(spec.function_name.get())
                        .event_source_arn(spec.queue_arn.get())
                        .enabled(spec.enabled)
                        .batch_size(spec.batch_size)
                        .maximum_batching_window_in_seconds(spec.batching_window_s)
                        .set_function_response_types(Some(response_types(&spec)))
                        .set_scaling_config(scaling(&spec))
                        .send()
                },
            )
            .await;
            let what = format!("creating the mapping from {} to {}", spec.queue_arn.get(), spec.function_name.get());
            errors::sent(answer, errors::is_in_use_or_conflict, what, |created| {
                outputs([("uuid", json!(created.uuid))])
            })
        })
    }
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, _: &'a Value, known: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let uuid =
                known.get("uuid").and_then(Value::as_str).context("CreateEventSourceMapping returned no UUID")?;
            wait_enabled(cx, uuid).await?;
            self.read(cx, &Recorded { props: Value::Null, outputs: outputs([("uuid", json!(uuid))]) }).await
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
            let spec: SqsEventSourceMappingSpec = typed(props, KIND)?;
            let uuid = recorded_output(recorded, "uuid")?;
            check_visibility(cx, &spec).await?;
            let lambda = &cx.cloud.lambda;
            // A limit taken away is sent as an empty scaling configuration.
            let scaling_config = scaling(&spec).unwrap_or_else(|| ScalingConfig::builder().build());
            retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
                lambda
                    .update_event_source_mapping()
                    .uuid(uuid)
                    .enabled(spec.enabled)
                    .batch_size(spec.batch_size)
                    .maximum_batching_window_in_seconds(spec.batching_window_s)
                    .set_function_response_types(Some(response_types(&spec)))
                    .scaling_config(scaling_config.clone())
                    .send()
            })
            .await
            .map_err(|e| errors::context(format!("updating SQS event source mapping {uuid}"), e))?;
            wait_enabled(cx, uuid).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(delete(cx, recorded))
    }
}

/// AWS's limits on an SQS mapping's batching and concurrency.
fn check(spec: &SqsEventSourceMappingSpec) -> std::result::Result<(), String> {
    if !(1..=10_000).contains(&spec.batch_size) {
        return Err(format!("batch_size is 1 to 10000 messages, not {}", spec.batch_size));
    }
    if !(0..=300).contains(&spec.batching_window_s) {
        return Err(format!("batching_window_s is 0 to 300, not {}", spec.batching_window_s));
    }
    if spec.batch_size > 10 && spec.batching_window_s < 1 {
        return Err(format!(
            "a batch of {} messages needs a batching window of at least 1 s (AWS takes more than 10 only with one)",
            spec.batch_size
        ));
    }
    if let Some(concurrency) = spec.maximum_concurrency.filter(|c| !(2..=1000).contains(c)) {
        return Err(format!("maximum_concurrency is 2 to 1000, not {concurrency}"));
    }
    Ok(())
}

/// Refuses, as AWS does, a queue whose visibility timeout is shorter than the function's timeout:
/// a message would become visible again, and be processed twice, while its first batch runs.
async fn check_visibility(cx: &Cx<'_>, spec: &SqsEventSourceMappingSpec) -> Result<()> {
    let (queue_arn, function) = (spec.queue_arn.get(), spec.function_name.get());
    let queue_name = queue_arn.rsplit(':').next().unwrap_or_default();
    let url = cx
        .cloud
        .sqs
        .get_queue_url()
        .queue_name(queue_name)
        .send()
        .await
        .map_err(|e| errors::context(format!("looking up queue {queue_name}"), e))?
        .queue_url
        .context("GetQueueUrl returned no URL")?;
    let attributes = cx
        .cloud
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| errors::context(format!("reading the visibility timeout of queue {queue_name}"), e))?;
    let visibility: i32 = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let configuration = cx
        .cloud
        .lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| errors::context(format!("reading function {function}"), e))?;
    let timeout = configuration.timeout().unwrap_or(3);
    if visibility < timeout {
        anyhow::bail!(
            "queue {queue_name} has a visibility timeout of {visibility} s, less than function {function}'s timeout of \
             {timeout} s: AWS refuses this mapping. Give the queue a visibility timeout of at least {timeout} s (AWS \
             advises six times the function's timeout, {} s)",
            6 * timeout
        );
    }
    Ok(())
}

fn response_types(spec: &SqsEventSourceMappingSpec) -> Vec<FunctionResponseType> {
    if spec.report_batch_item_failures {
        vec![FunctionResponseType::ReportBatchItemFailures]
    } else {
        vec![]
    }
}

fn scaling(spec: &SqsEventSourceMappingSpec) -> Option<ScalingConfig> {
    spec.maximum_concurrency.map(|c| ScalingConfig::builder().maximum_concurrency(c).build())
}

fn observe(out: &GetEventSourceMappingOutput) -> Observed {
    let function_name = out.function_arn().map(|arn| arn.rsplit(':').next().unwrap_or(arn).to_string());
    Observed::new(
        json!({
            "function_name": function_name,
            "queue_arn": out.event_source_arn(),
            "batch_size": out.batch_size(),
            "batching_window_s": out.maximum_batching_window_in_seconds().unwrap_or(0),
            "report_batch_item_failures": out.function_response_types().contains(&FunctionResponseType::ReportBatchItemFailures),
            "maximum_concurrency": out.scaling_config().and_then(|s| s.maximum_concurrency()),
            "enabled": !matches!(out.state(), Some("Disabled" | "Disabling")),
        }),
        outputs([("uuid", json!(out.uuid()))]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(batch_size: i32, batching_window_s: i32, maximum_concurrency: Option<i32>) -> SqsEventSourceMappingSpec {
        SqsEventSourceMappingSpec {
            function_name: "f".into(),
            queue_arn: "arn:aws:sqs:us-east-1:1:q".into(),
            batch_size,
            batching_window_s,
            report_batch_item_failures: true,
            maximum_concurrency,
            enabled: true,
        }
    }

    #[test]
    fn aws_limits_on_batching_and_concurrency_are_checked_before_any_call() {
        assert!(check(&spec(10, 0, None)).is_ok());
        assert!(check(&spec(100, 1, Some(5))).is_ok());
        assert!(check(&spec(11, 0, None)).unwrap_err().contains("batching window"));
        assert!(check(&spec(0, 0, None)).is_err());
        assert!(check(&spec(10, 301, None)).is_err());
        assert!(check(&spec(10, 0, Some(1))).unwrap_err().contains("2 to 1000"));
        assert!(check(&spec(10, 0, Some(1001))).is_err());
    }
}
