//! The tags of an API Gateway resource (a REST API, an API key, a usage plan): those it was
//! created with, as its own read answers them, and those written since (GetTags). AWS keeps one
//! set and answers it both ways; the emulators (MiniStack, LocalStack) keep the two apart, so the
//! engine's tags are read from both, the later writes winning. GetTags is a secondary read that
//! the primary one covers on AWS: an endpoint that does not implement it (moto answers a bare
//! 404) is read from the primary read alone, so its gap strands nothing.

use crate::aws::{errors, Cx};
use crate::engine::mark::{carries_mark, marked_tags, TAGS_PROPERTY};
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The engine's tags of the resource `arn`, created with `created`.
pub async fn read(cx: &Cx<'_>, arn: &str, what: &str, created: HashMap<String, String>) -> Result<Value> {
    let written = match cx.cloud.apigateway.get_tags().resource_arn(arn).send().await {
        Ok(out) => out.tags().cloned().unwrap_or_default(),
        Err(e) if errors::is_not_found(&e) || errors::is_unimplemented(&e) => Default::default(),
        Err(e) => return Err(errors::context(format!("reading the tags of {what}"), e)),
    };
    let mut tags = created;
    tags.extend(written);
    Ok(marked_tags(&tags))
}

/// Writes the stack's declared tags (`tags` of `props`) to the resource `arn`.
pub async fn write(cx: &Cx<'_>, arn: &str, what: &str, props: &Value) -> Result<()> {
    cx.cloud
        .apigateway
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(crate::aws::declared_tags(props)))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging {what}"), e))?;
    Ok(())
}

/// Of same-named resources (`(id, tags it was created with)`; API Gateway's names are not
/// unique), the one carrying the mark declared in `props`, else the first (a foreign one, which
/// the caller refuses). `arn_of` gives a resource's ARN from its id.
pub async fn pick_marked(
    cx: &Cx<'_>,
    props: &Value,
    named: Vec<(String, HashMap<String, String>)>,
    arn_of: impl Fn(&str) -> String,
) -> Result<Option<String>> {
    if named.len() <= 1 {
        // One candidate is the answer either way: the caller reads it and checks its mark.
        return Ok(named.into_iter().next().map(|(id, _)| id));
    }
    for (id, created) in &named {
        let arn = arn_of(id);
        let tags = read(cx, &arn, &arn, created.clone()).await?;
        if carries_mark(props, &json!({ TAGS_PROPERTY: tags })) {
            return Ok(Some(id.clone()));
        }
    }
    Ok(named.into_iter().next().map(|(id, _)| id))
}
