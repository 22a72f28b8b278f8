//! DynamoDB table: string keys (a hash key, and a sort key where declared), on-demand billing,
//! and a stream of item changes where declared. The stream is turned on, off or to another view
//! in place; a new key replaces the table.

use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, DataCount, Driver, Kind, Observed, Outputs, Recorded,
    Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TableStatus, Tag,
};
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::dynamodb_table::*;

pub const KIND: Kind = Kind::new(<DynamodbTableSpec as declaration::Spec>::KIND);

const WAIT: Duration = Duration::from_secs(300);

/// At most this many pages of a scan count a table's items before `down`: beyond, "at least".
const COUNT_PAGES: usize = 10;

pub struct DynamodbTable;

impl Driver<Cloud> for DynamodbTable {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name", "stream_arn"]
    }
    crate::declared_as!(DynamodbTableSpec);
    fn label(&self) -> &'static str {
        "DynamoDB table"
    }
    fn holds_data(&self) -> bool {
        true
    }
    fn service(&self) -> &'static str {
        "dynamodb"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name", "hash_key", "sort_key"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::dynamodb_table)
    }
    /// Turning the stream on again gives it a new ARN, which mappings and policies refer to.
    fn outputs_may_change(&self, changed: &[String]) -> bool {
        changed.iter().any(|f| f == "stream_view_type")
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: DynamodbTableSpec = typed(props, KIND)?;
            let mut attributes = Vec::new();
            let mut key_schema = Vec::new();
            for (key, key_type) in keys(&spec) {
                let definition =
                    AttributeDefinition::builder().attribute_name(key).attribute_type(ScalarAttributeType::S);
                attributes.push(definition.build()?);
                key_schema.push(KeySchemaElement::builder().attribute_name(key).key_type(key_type).build()?);
            }
            let answer = cx
                .cloud
                .dynamodb
                .create_table()
                .table_name(&spec.name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(attributes))
                .set_key_schema(Some(key_schema))
                .set_stream_specification(spec.stream_view_type.as_deref().map(stream_spec).transpose()?)
                .deletion_protection_enabled(spec.deletion_protection)
                .set_tags(Some(tags(props)?))
                .send()
                .await;
            // ResourceInUseException: the table exists, or is still being deleted.
            errors::sent(answer, errors::is_in_use_or_conflict, format!("creating table {}", spec.name), |_| {
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
            let spec: DynamodbTableSpec = typed(props, KIND)?;
            if changed.iter().any(|f| f == "tags") {
                let found = find(cx, &spec.name).await?.context("the table vanished during its update")?;
                tag(cx, &found, props).await?;
            }
            if changed.iter().any(|f| f == "deletion_protection") {
                cx.cloud
                    .dynamodb
                    .update_table()
                    .table_name(&spec.name)
                    .deletion_protection_enabled(spec.deletion_protection)
                    .send()
                    .await
                    .map_err(|e| {
                        errors::context(format!("setting the deletion protection of table {}", spec.name), e)
                    })?;
                wait_active(cx, &spec.name).await?;
            }
            if changed.iter().any(|f| f == "stream_view_type") {
                return set_stream(cx, &spec).await;
            }
            find(cx, &spec.name).await?.map(|o| o.outputs).context("the table vanished during its update")
        })
    }
    /// The items, counted by a scan of at most [`COUNT_PAGES`] pages (1 MB each).
    fn count_data<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async move {
            let spec: DynamodbTableSpec = typed(&recorded.props, KIND)?;
            let mut counted = 0u64;
            let mut start = None;
            for _ in 0..COUNT_PAGES {
                let page = cx
                    .cloud
                    .dynamodb
                    .scan()
                    .table_name(&spec.name)
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| errors::context(format!("counting the items of table {}", spec.name), e))?;
                counted += u64::try_from(page.count()).unwrap_or(0);
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    return Ok(Some(DataCount::Exactly(counted, "items")));
                }
            }
            Ok(Some(DataCount::AtLeast(counted, "items")))
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            errors::deleted(
                cx.cloud.dynamodb.delete_table().table_name(name).send().await,
                format!("deleting table {name}"),
            )?;
            wait_deleted(cx, name).await
        })
    }
}

async fn wait_deleted(cx: &Cx<'_>, name: &str) -> Result<()> {
    cx.cloud
        .dynamodb
        .wait_until_table_not_exists()
        .table_name(name)
        .wait(WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("waiting for table {name} to be deleted: {e}"))?;
    Ok(())
}

fn tags(props: &Value) -> Result<Vec<Tag>> {
    declared_tags(props).into_iter().map(|(k, v)| Ok(Tag::builder().key(k).value(v).build()?)).collect()
}

/// Writes the stack's mark on the table `found`.
async fn tag(cx: &Cx<'_>, found: &Observed, props: &Value) -> Result<()> {
    let arn = found.outputs.get("arn").and_then(Value::as_str).context("the table has no ARN")?;
    cx.cloud
        .dynamodb
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags(props)?))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging table {arn}"), e))?;
    Ok(())
}

fn stream_spec(view_type: &str) -> Result<StreamSpecification> {
    Ok(StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::from(view_type)).build()?)
}

/// Sets the stream as declared: on with its view type, or off. A view type cannot change while a
/// stream is enabled, so an existing stream is turned off first (its ARN changes: mappings
/// follow).
async fn set_stream(cx: &Cx<'_>, spec: &DynamodbTableSpec) -> Result<Outputs> {
    let dynamodb = &cx.cloud.dynamodb;
    let current = find(cx, &spec.name).await?.context("the table vanished during its update")?;
    if !current.props["stream_view_type"].is_null() {
        dynamodb
            .update_table()
            .table_name(&spec.name)
            .stream_specification(StreamSpecification::builder().stream_enabled(false).build()?)
            .send()
            .await
            .map_err(|e| errors::context(format!("turning off the stream of table {}", spec.name), e))?;
        wait_active(cx, &spec.name).await?;
    }
    if let Some(view_type) = &spec.stream_view_type {
        dynamodb
            .update_table()
            .table_name(&spec.name)
            .stream_specification(stream_spec(view_type)?)
            .send()
            .await
            .map_err(|e| errors::context(format!("turning on the stream of table {}", spec.name), e))?;
        wait_active(cx, &spec.name).await?;
    }
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the table vanished during its update")
}

async fn wait_active(cx: &Cx<'_>, name: &str) -> Result<()> {
    cx.cloud
        .dynamodb
        .wait_until_table_exists()
        .table_name(name)
        .wait(WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("waiting for table {name} to become active: {e}"))?;
    Ok(())
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let described = cx.cloud.dynamodb.describe_table().table_name(name).send().await;
    let Some(described) = errors::found(described, format!("reading table {name}"))? else { return Ok(None) };
    let table = described.table.context("DescribeTable returned no table")?;
    if table.table_status == Some(TableStatus::Deleting) {
        return Ok(None);
    }
    let key = |key_type: KeyType| {
        table.key_schema().iter().find(|k| k.key_type == key_type).map(|k| k.attribute_name.clone())
    };
    let (hash_key, sort_key) = (key(KeyType::Hash), key(KeyType::Range));
    let view_type = table
        .stream_specification
        .as_ref()
        .filter(|s| s.stream_enabled)
        .and_then(|s| s.stream_view_type.as_ref())
        .map(|v| v.as_str().to_string());
    let arn = table.table_arn.clone().context("DescribeTable returned no ARN")?;
    let listed = cx.cloud.dynamodb.list_tags_of_resource().resource_arn(&arn).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of table {name}"))? else { return Ok(None) };
    let tags: Vec<(String, String)> = listed.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect();
    Ok(Some(Observed::new(
        json!({
            "name": name,
            "hash_key": hash_key,
            "sort_key": sort_key,
            "stream_view_type": view_type,
            "deletion_protection": table.deletion_protection_enabled.unwrap_or(false),
            "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))),
        }),
        outputs([
            ("arn", json!(table.table_arn)),
            ("name", json!(name)),
            ("stream_arn", json!(table.latest_stream_arn)),
        ]),
    )))
}

/// The key attributes: the hash key, then the sort key.
fn keys(spec: &DynamodbTableSpec) -> Vec<(&str, KeyType)> {
    std::iter::once((spec.hash_key.as_str(), KeyType::Hash))
        .chain(spec.sort_key.as_deref().map(|k| (k, KeyType::Range)))
        .collect()
}
