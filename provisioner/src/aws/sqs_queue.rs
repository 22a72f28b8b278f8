//! SQS queue: the dead-letter queue for records that can never succeed.

use crate::aws::retry::retry_when;
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::declare::{Handle, Spec};
use crate::engine::input::Input;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a create waits for AWS to release a recently deleted queue's name (60 s, and a margin).
const DELETED_RECENTLY_WAIT: Duration = Duration::from_secs(75);

/// The kind as the state records it.
pub const KIND: Kind = Kind::new("sqs_queue");

/// A standard queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqsQueueSpec {
    pub name: String,
    pub retention_seconds: u32,
}

impl Spec for SqsQueueSpec {
    const KIND: Kind = self::KIND;
}

impl Handle<SqsQueueSpec> {
    /// The queue's ARN (for IAM policies and on-failure destinations).
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The queue's URL (for SendMessage).
    pub fn url(&self) -> Input<String> {
        self.output("url")
    }
}

pub struct SqsQueue;

impl Driver<Cloud> for SqsQueue {
    fn kind(&self) -> Kind {
        KIND
    }
    fn label(&self) -> &'static str {
        "SQS queue"
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
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::sqs_queue)
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
                    .attributes(QueueAttributeName::MessageRetentionPeriod, spec.retention_seconds.to_string())
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
        .attributes(QueueAttributeName::MessageRetentionPeriod, spec.retention_seconds.to_string())
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
        .send()
        .await;
    let Some(answer) = errors::found(answer, format!("reading queue {name}"))? else { return Ok(None) };
    let attributes = answer.attributes.unwrap_or_default();
    let arn =
        attributes.get(&QueueAttributeName::QueueArn).cloned().context("GetQueueAttributes returned no QueueArn")?;
    let retention: Option<u32> =
        attributes.get(&QueueAttributeName::MessageRetentionPeriod).and_then(|v| v.parse().ok());
    let listed = cx.cloud.sqs.list_queue_tags().queue_url(&url).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of queue {name}"))? else { return Ok(None) };
    let tags = listed.tags.unwrap_or_default();
    Ok(Some(Observed::new(
        json!({ "name": name, "retention_seconds": retention, "tags": marked_tags(&tags) }),
        outputs([("arn", json!(arn)), ("url", json!(url)), ("name", json!(name))]),
    )))
}
