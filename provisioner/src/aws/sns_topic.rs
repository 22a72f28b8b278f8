//! SNS topic: where CloudWatch alarms send their notifications (the stream's scaler listens).
//! CreateTopic answers with an existing topic of the same name as if it had made it, so the name is
//! looked up first and a topic is adopted only with the stack's mark.

use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_sns::types::Tag;
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::sns_topic::*;

pub const KIND: Kind = Kind::new(<SnsTopicSpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct SnsTopic;

impl Driver<Cloud> for SnsTopic {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name"]
    }
    crate::declared_as!(SnsTopicSpec);
    fn label(&self) -> &'static str {
        "SNS topic"
    }
    fn service(&self) -> &'static str {
        "sns"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::sns_topic)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: SnsTopicSpec = typed(props, KIND)?;
            let answer = cx.cloud.sns.create_topic().name(&spec.name).set_tags(Some(tags(props)?)).send().await;
            errors::sent(
                answer,
                |_| false,
                format!("creating SNS topic {}", spec.name),
                |out| outputs([("arn", json!(out.topic_arn)), ("name", json!(spec.name))]),
            )
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
            let spec: SnsTopicSpec = typed(props, KIND)?;
            let arn = recorded.outputs.get("arn").and_then(Value::as_str).context("the topic has no ARN")?;
            if changed.iter().any(|f| f == "tags") {
                cx.cloud
                    .sns
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags(props)?))
                    .send()
                    .await
                    .map_err(|e| errors::context(format!("tagging SNS topic {}", spec.name), e))?;
            }
            find(cx, &spec.name).await?.map(|o| o.outputs).context("the topic vanished during its update")
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let Some(arn) = recorded.outputs.get("arn").and_then(Value::as_str) else { return Ok(()) };
            errors::deleted(
                cx.cloud.sns.delete_topic().topic_arn(arn).send().await,
                format!("deleting SNS topic {arn}"),
            )
        })
    }
}

fn tags(props: &Value) -> Result<Vec<Tag>> {
    declared_tags(props).into_iter().map(|(k, v)| Ok(Tag::builder().key(k).value(v).build()?)).collect()
}

/// The topic of this name in the client's account and region, with its tags (ListTopics, then
/// ListTagsForResource).
async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let mut token = None;
    let arn = loop {
        let page = cx
            .cloud
            .sns
            .list_topics()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| errors::context("listing SNS topics", e))?;
        let found = page.topics().iter().filter_map(|t| t.topic_arn()).find(|arn| arn.rsplit(':').next() == Some(name));
        if let Some(arn) = found {
            break arn.to_string();
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok(None),
        }
    };
    let listed = cx.cloud.sns.list_tags_for_resource().resource_arn(&arn).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of SNS topic {name}"))? else { return Ok(None) };
    let tags: Vec<(String, String)> = listed.tags().iter().map(|t| (t.key.clone(), t.value.clone())).collect();
    Ok(Some(Observed::new(
        json!({ "name": name, "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))) }),
        outputs([("arn", json!(arn)), ("name", json!(name))]),
    )))
}
