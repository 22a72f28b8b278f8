//! RDS DB subnet group: the (private) subnets a DB instance may live in, when the stack is given a
//! network. Its subnets are updated in place.

use crate::aws::rds_instance::{rds_tags, tag_resource};
use crate::aws::{errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::rds_subnet_group::*;

pub const KIND: Kind = Kind::new(<RdsSubnetGroupSpec as declaration::Spec>::KIND);

pub struct RdsSubnetGroup;

impl Driver<Cloud> for RdsSubnetGroup {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["name", "vpc_id", "arn"]
    }
    crate::declared_as!(RdsSubnetGroupSpec);
    fn label(&self) -> &'static str {
        "DB subnet group"
    }
    fn service(&self) -> &'static str {
        "rds"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::db_subnet_group)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: RdsSubnetGroupSpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .rds
                .create_db_subnet_group()
                .db_subnet_group_name(&spec.name)
                .db_subnet_group_description("Managed by provision")
                .set_subnet_ids(Some(spec.subnet_ids.clone()))
                .set_tags(Some(rds_tags(props)))
                .send()
                .await;
            let what = format!("creating DB subnet group {} (subnets {:?})", spec.name, spec.subnet_ids);
            errors::sent(answer, errors::is_already_exists, what, |_| Outputs::new())
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
            let spec: RdsSubnetGroupSpec = typed(props, KIND)?;
            let found = find(cx, &spec.name).await?.context("the subnet group vanished during its update")?;
            if changed.iter().any(|f| f == "tags") {
                tag_resource(cx, &found, props).await?;
            }
            if !changed.iter().any(|f| f == "subnet_ids") {
                return Ok(found.outputs);
            }
            let answer = cx
                .cloud
                .rds
                .modify_db_subnet_group()
                .db_subnet_group_name(&spec.name)
                .set_subnet_ids(Some(spec.subnet_ids.clone()))
                .send()
                .await;
            answer.map_err(|e| errors::context(format!("updating the subnets of DB subnet group {}", spec.name), e))?;
            find(cx, &spec.name).await?.map(|o| o.outputs).context("the subnet group vanished during its update")
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            let answer = cx.cloud.rds.delete_db_subnet_group().db_subnet_group_name(name).send().await;
            errors::deleted(answer, format!("deleting DB subnet group {name}"))
        })
    }
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let answer = cx.cloud.rds.describe_db_subnet_groups().db_subnet_group_name(name).send().await;
    let Some(out) = errors::found(answer, format!("reading DB subnet group {name}"))? else { return Ok(None) };
    let Some(group) = out.db_subnet_groups().first() else { return Ok(None) };
    let mut subnet_ids: Vec<String> = group.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect();
    subnet_ids.sort();
    let arn = group.db_subnet_group_arn().unwrap_or_default().to_string();
    let listed = cx.cloud.rds.list_tags_for_resource().resource_name(&arn).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of DB subnet group {name}"))? else {
        return Ok(None);
    };
    let tags: Vec<(String, String)> =
        listed.tag_list().iter().filter_map(|t| Some((t.key.clone()?, t.value.clone()?))).collect();
    Ok(Some(Observed::new(
        json!({ "name": name, "subnet_ids": subnet_ids, "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))) }),
        outputs([("name", json!(name)), ("vpc_id", json!(group.vpc_id())), ("arn", json!(arn))]),
    )))
}
