//! SQS queue: retention, visibility timeout and a redrive policy (the dead-letter queue a message
//! moves to after too many receives), each updated in place.

use crate::aws::retry::retry_when;
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, DataCount, Driver, Kind, Observed, Outputs, Recorded,
    Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a create waits for AWS to release a recently deleted queue's name (60 s, and a margin).
const DELETED_RECENTLY_WAIT: Duration = Duration::from_secs(75);

/// The kind as the state records it.
pub use declaration::kinds::sqs_queue::*;

pub const KIND: Kind = Kind::new(<SqsQueueSpec as declaration::Spec>::KIND);

pub struct SqsQueue;

impl Driver<Cloud> for SqsQueue {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "url", "name"]
    }
    crate::declared_as!(SqsQueueSpec);
    fn label(&self) -> &'static str {
        "SQS queue"
    }
    fn holds_data(&self) -> bool {
        true
    }
    fn service(&self) -> &'static str {
        "sqs"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::sqs_queue)?;
        let spec: SqsQueueSpec = serde_json::from_value(props.clone()).map_err(|e| e.to_string())?;
        if !(60..=1_209_600).contains(&spec.retention_seconds) {
            return Err(format!("retention_seconds is 60 to 1209600 (14 days), not {}", spec.retention_seconds));
        }
        if spec.visibility_timeout_s.is_some_and(|v| v > 43_200) {
            return Err("visibility_timeout_s is 0 to 43200 (12 hours)".into());
        }
        if spec.redrive.as_ref().is_some_and(|r| !(1..=1000).contains(&r.max_receive_count)) {
            return Err("redrive.max_receive_count is 1 to 1000".into());
        }
        Ok(())
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    /// CreateQueue answers with an existing queue of the same name and attributes as if it had
    /// made it: the name is looked up first.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: SqsQueueSpec = typed(props, KIND)?;
            // AWS refuses a queue name for 60 s after a queue of that name was deleted (`up`
            // right after `down`): wait it out, saying so.
            let started = Instant::now();
            let mut attempts = 0;
            let answer = retry_when(DELETED_RECENTLY_WAIT, errors::is_queue_deleted_recently, || {
                attempts += 1;
                if attempts > 1 {
                    cx.progress(format!(
                        "queue {} was deleted less than 60 s ago and AWS keeps the name until then: waiting ({} s so far)",
                        spec.name,
                        started.elapsed().as_secs()
                    ));
                }
                cx.cloud
                    .sqs
                    .create_queue()
                    .queue_name(&spec.name)
                    .set_attributes(Some(attributes(&spec).into_iter().collect()))
                    .set_tags(Some(declared_tags(props)))
                    .send()
            })
            .await;
            errors::sent(answer, errors::is_already_exists, format!("creating queue {}", spec.name), |_| Outputs::new())
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move { converge(cx, &typed(props, KIND)?, props).await })
    }
    /// The messages, as the queue reports them (approximately: waiting, in flight and delayed).
    fn count_data<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async move {
            let Some(url) = recorded.outputs.get("url").and_then(Value::as_str) else { return Ok(None) };
            let counts = [
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ];
            let answer = cx
                .cloud
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .set_attribute_names(Some(counts.to_vec()))
                .send()
                .await
                .map_err(|e| errors::context(format!("counting the messages of queue {url}"), e))?;
            let attributes = answer.attributes().cloned().unwrap_or_default();
            let total = counts.iter().filter_map(|name| attributes.get(name)?.parse::<u64>().ok()).sum();
            Ok(Some(DataCount::About(total, "messages")))
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let Some(url) = recorded.outputs.get("url").and_then(Value::as_str) else {
                return Ok(());
            };
            errors::deleted(cx.cloud.sqs.delete_queue().queue_url(url).send().await, format!("deleting queue {url}"))
        })
    }
}

/// Sets the attributes and the mark of an existing queue.
async fn converge(cx: &Cx<'_>, spec: &SqsQueueSpec, props: &Value) -> Result<Outputs> {
    let url = queue_url(cx, &spec.name).await?.with_context(|| format!("queue {} does not exist", spec.name))?;
    let sqs = &cx.cloud.sqs;
    sqs.set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(attributes(&spec).into_iter().collect()))
        .send()
        .await
        .map_err(|e| errors::context(format!("setting the attributes of queue {}", spec.name), e))?;
    sqs.tag_queue()
        .queue_url(&url)
        .set_tags(Some(declared_tags(props)))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging queue {}", spec.name), e))?;
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the queue vanished during its update")
}

async fn queue_url(cx: &Cx<'_>, name: &str) -> Result<Option<String>> {
    let answer = cx.cloud.sqs.get_queue_url().queue_name(name).send().await;
    Ok(errors::found(answer, format!("looking up queue {name}"))?.and_then(|out| out.queue_url))
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let Some(url) = queue_url(cx, name).await? else {
        return Ok(None);
    };
    let answer = cx
        .cloud
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::MessageRetentionPeriod)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await;
    let Some(answer) = errors::found(answer, format!("reading queue {name}"))? else { return Ok(None) };
    let attributes = answer.attributes.unwrap_or_default();
    let arn =
        attributes.get(&QueueAttributeName::QueueArn).cloned().context("GetQueueAttributes returned no QueueArn")?;
    let number = |name: &QueueAttributeName| attributes.get(name).and_then(|v| v.parse::<u32>().ok());
    let retention = number(&QueueAttributeName::MessageRetentionPeriod);
    let visibility = number(&QueueAttributeName::VisibilityTimeout);
    let redrive = attributes.get(&QueueAttributeName::RedrivePolicy).and_then(|policy| redrive_of(policy));
    let listed = cx.cloud.sqs.list_queue_tags().queue_url(&url).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of queue {name}"))? else { return Ok(None) };
    let tags = listed.tags.unwrap_or_default();
    Ok(Some(Observed::new(
        json!({
            "name": name,
            "retention_seconds": retention,
            "visibility_timeout_s": visibility,
            "redrive": redrive,
            "tags": marked_tags(&tags),
        }),
        outputs([("arn", json!(arn)), ("url", json!(url)), ("name", json!(name))]),
    )))
}

/// A RedrivePolicy attribute in [`Redrive`]'s JSON shape (`maxReceiveCount` comes as a number or
/// a string, depending on who wrote it).
fn redrive_of(policy: &str) -> Option<Value> {
    let policy: Value = serde_json::from_str(policy).ok()?;
    let count = match &policy["maxReceiveCount"] {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(json!({ "dead_letter_arn": policy["deadLetterTargetArn"].as_str()?, "max_receive_count": count }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::changed_fields;

    #[test]
    fn a_redrive_policy_reads_back_as_declared_whoever_wrote_it() {
        let spec = SqsQueueSpec {
            redrive: Some(Redrive { dead_letter_arn: "arn:aws:sqs:us-east-1:1:dlq".into(), max_receive_count: 10 }),
            visibility_timeout_s: Some(18),
            ..SqsQueueSpec::new("q".into(), 3600)
        };
        let written = &attributes(&spec).into_iter().find(|(k, _)| *k == QueueAttributeName::RedrivePolicy).unwrap().1;
        let observed = json!({ "name": "q", "retention_seconds": 3600, "visibility_timeout_s": 18, "redrive": redrive_of(written) });
        assert!(changed_fields(&serde_json::to_value(&spec).unwrap(), &observed, None, &[], &[]).is_empty());
        let numeric = r#"{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 10}"#;
        assert_eq!(redrive_of(numeric), redrive_of(written));
    }
}

/// The attributes the declaration sets.
fn attributes(spec: &SqsQueueSpec) -> Vec<(QueueAttributeName, String)> {
    let mut attributes = vec![(QueueAttributeName::MessageRetentionPeriod, spec.retention_seconds.to_string())];
    if let Some(visibility) = spec.visibility_timeout_s {
        attributes.push((QueueAttributeName::VisibilityTimeout, visibility.to_string()));
    }
    if let Some(redrive) = &spec.redrive {
        let policy = json!({
            "deadLetterTargetArn": redrive.dead_letter_arn.get(),
            "maxReceiveCount": redrive.max_receive_count.to_string(),
        });
        attributes.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
    }
    attributes
}
