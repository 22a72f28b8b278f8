//! CloudWatch Logs log group: where a function's logs go (`/aws/lambda/<function>`), made by the
//! stack before the function with a retention, so its logs expire and `down` removes it (after the
//! function, which depends on it through its role's policy: Lambda would make it again otherwise).
//!
//! Lambda makes this group itself the first time a function logs. A group of that name without
//! the stack's mark is still the stack's when the function it is named after carries the mark:
//! it is then adopted, and `up` marks it (`marked` turns true).

use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
    Teardown,
};
use crate::cloud::Cloud;
use crate::engine::mark::{carries_mark, marked_tags, TAGS_PROPERTY, TAG_PREFIX};
use anyhow::{Context, Result};
use aws_sdk_cloudwatchlogs::types::LogGroup as ListedGroup;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The kind as the state records it.
pub use declaration::kinds::log_group::*;

pub const KIND: Kind = Kind::new(<LogGroupSpec as declaration::Spec>::KIND);

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Whether `days` is one of CloudWatch Logs' retention periods; the error says which are.
pub fn check_retention(days: i64) -> std::result::Result<(), String> {
    if RETENTION_DAYS.iter().any(|d| i64::from(*d) == days) {
        return Ok(());
    }
    let periods = RETENTION_DAYS.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
    Err(format!("is one of CloudWatch Logs' periods ({periods} days), not {days}"))
}

/// The driver of [`KIND`].
pub struct LogGroup;

impl Driver<Cloud> for LogGroup {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "streams_arn"]
    }
    crate::declared_as!(LogGroupSpec);
    fn label(&self) -> &'static str {
        "log group"
    }
    fn service(&self) -> &'static str {
        "logs"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    /// When `down` deletes it: the stack's functions write to it: it goes last.
    fn teardown(&self) -> Teardown {
        Teardown::Sink
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        let days = props.get("retention_days").and_then(Value::as_i64).unwrap_or_default();
        check_retention(days).map_err(|e| format!("a log group's retention {e}"))
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?, props).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: LogGroupSpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .logs
                .create_log_group()
                .log_group_name(&spec.name)
                .set_tags(Some(declared_tags(props)))
                .send()
                .await;
            let sent =
                errors::sent(answer, errors::is_already_exists, format!("creating log group {}", spec.name), |_| {
                    Outputs::new()
                })?;
            if matches!(sent, Sent::Created(_)) {
                set_retention(cx, &spec).await?;
            }
            Ok(sent)
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _recorded: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: LogGroupSpec = typed(props, KIND)?;
            if changed.iter().any(|f| f == "retention_days") {
                set_retention(cx, &spec).await?;
            }
            if changed.iter().any(|f| f == TAGS_PROPERTY || f == "marked") {
                let arn = group_arn(cx, &spec.name).await?;
                cx.cloud
                    .logs
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(declared_tags(props)))
                    .send()
                    .await
                    .map_err(|e| errors::context(format!("tagging log group {}", spec.name), e))?;
            }
            find(cx, &spec.name, props).await?.map(|o| o.outputs).context("the log group vanished during its update")
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            errors::deleted(
                cx.cloud.logs.delete_log_group().log_group_name(name).send().await,
                format!("deleting log group {name}"),
            )
        })
    }
    /// A group of the same name made since `down` began and carrying no mark at all: the
    /// stack's own function wrote to it while still running (an emulator lets it make the
    /// group; on AWS its role may not, as the stack makes its log groups itself). A group with
    /// any mark was made by a run of `provision` and is left alone.
    fn sweep_remade<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        recorded: &'a Recorded,
        since: std::time::SystemTime,
    ) -> BoxFut<'a, Result<Option<String>>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            let Some(created_ms) = creation_time(cx, name).await? else { return Ok(None) };
            let since_ms = since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            if created_ms < since_ms {
                return Ok(None);
            }
            let arn = group_arn(cx, name).await?;
            let answer = cx.cloud.logs.list_tags_for_resource().resource_arn(&arn).send().await;
            let Some(listed) = errors::found(answer, format!("reading the tags of log group {name}"))? else {
                return Ok(None);
            };
            if listed.tags().is_some_and(|tags| tags.keys().any(|key| key.starts_with(TAG_PREFIX))) {
                return Ok(None);
            }
            errors::deleted(
                cx.cloud.logs.delete_log_group().log_group_name(name).send().await,
                format!("deleting log group {name} again"),
            )?;
            Ok(Some(format!(
                "log group {name}: made again by an invocation still running when it was deleted; deleted again"
            )))
        })
    }
}

/// When the group named `name` was made (ms since the epoch), if it exists.
async fn creation_time(cx: &Cx<'_>, name: &str) -> Result<Option<i64>> {
    Ok(describe(cx, name).await?.map(|group| group.creation_time().unwrap_or_default()))
}

/// The group named exactly `name`, as DescribeLogGroups (by prefix) lists it.
async fn describe(cx: &Cx<'_>, name: &str) -> Result<Option<ListedGroup>> {
    let listed = cx
        .cloud
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| errors::context(format!("looking up log group {name}"), e))?;
    Ok(listed.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned())
}

async fn set_retention(cx: &Cx<'_>, spec: &LogGroupSpec) -> Result<()> {
    cx.cloud
        .logs
        .put_retention_policy()
        .log_group_name(&spec.name)
        .retention_in_days(spec.retention_days)
        .send()
        .await
        .map_err(|e| errors::context(format!("setting the retention of log group {}", spec.name), e))?;
    Ok(())
}

/// The group's ARN without the `:*` suffix (what TagResource takes).
async fn group_arn(cx: &Cx<'_>, name: &str) -> Result<String> {
    let account = cx.cloud.account_id().await?;
    Ok(format!("arn:aws:logs:{}:{account}:log-group:{name}", cx.cloud.region))
}

/// The group named `name` (DescribeLogGroups by prefix, then its tags). A group without the
/// stack's mark that is named after a function carrying it (Lambda made it) is reported with the
/// function's mark and `marked: false`.
async fn find(cx: &Cx<'_>, name: &str, props: &Value) -> Result<Option<Observed>> {
    let Some(group) = describe(cx, name).await? else { return Ok(None) };
    let arn = group_arn(cx, name).await?;
    let answer = cx.cloud.logs.list_tags_for_resource().resource_arn(&arn).send().await;
    let Some(listed) = errors::found(answer, format!("reading the tags of log group {name}"))? else { return Ok(None) };
    let own: HashMap<String, String> = listed.tags().cloned().unwrap_or_default();
    let mut tags = marked_tags(&own);
    let marked = carries_mark(props, &json!({ TAGS_PROPERTY: tags }));
    if !marked {
        if let Some(function_tags) = function_mark(cx, name).await? {
            if carries_mark(props, &json!({ TAGS_PROPERTY: function_tags })) {
                tags = function_tags;
            }
        }
    }
    let streams_arn = format!("{arn}:*");
    Ok(Some(Observed::new(
        json!({
            "name": name,
            "retention_days": group.retention_in_days(),
            "marked": marked,
            TAGS_PROPERTY: tags,
        }),
        outputs([("arn", json!(arn)), ("streams_arn", json!(streams_arn))]),
    )))
}

/// The mark of the function a `/aws/lambda/<function>` group is named after, if it exists.
async fn function_mark(cx: &Cx<'_>, group: &str) -> Result<Option<Value>> {
    let Some(function) = group.strip_prefix(LAMBDA_PREFIX) else { return Ok(None) };
    let answer = cx.cloud.lambda.get_function().function_name(function).send().await;
    let Some(found) =
        errors::found(answer, format!("reading function {function}, which log group {group} is named after"))?
    else {
        return Ok(None);
    };
    Ok(Some(marked_tags(&found.tags().cloned().unwrap_or_default())))
}
