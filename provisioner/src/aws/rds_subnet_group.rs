//! RDS DB subnet group: the (private) subnets a DB instance may live in, when the stack is given a
//! network. Its subnets are updated in place.

use crate::aws::rds_instance::{rds_tags, tag_resource};
use crate::aws::{
    ensure_adoptable, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded,
};
use crate::cloud::Cloud;
use crate::engine::declare::{Handle, Spec};
use crate::engine::input::Input;
use crate::engine::ownership::marked_tags;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The kind as the state records it.
pub const KIND: Kind = Kind::new("rds_subnet_group");

/// A named set of subnets in one VPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RdsSubnetGroupSpec {
    pub name: String,
    pub subnet_ids: Vec<String>,
}

impl Spec for RdsSubnetGroupSpec {
    const KIND: Kind = self::KIND;
}

impl Handle<RdsSubnetGroupSpec> {
    /// The group's name, as DB instances refer to it.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}

pub struct RdsSubnetGroup;

impl Driver<Cloud> for RdsSubnetGroup {
    fn kind(&self) -> Kind {
        KIND
    }
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
    fn check_names(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::db_subnet_group)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: RdsSubnetGroupSpec = typed(props, KIND)?;
            let created = cx
                .cloud
                .rds
                .create_db_subnet_group()
                .db_subnet_group_name(&spec.name)
                .db_subnet_group_description("Managed by provision")
                .set_subnet_ids(Some(spec.subnet_ids.clone()))
                .set_tags(Some(rds_tags(props)))
                .send()
                .await;
            match created {
                Ok(_) => {}
                Err(e) if errors::is_already_exists(&e) => {
                    let existing =
                        find(cx, &spec.name).await?.context("the subnet group is said to exist but cannot be read")?;
                    ensure_adoptable(cx, KIND, &spec.name, props, &existing)?;
                    tag_resource(cx, &existing, props).await?;
                    return modify(cx, &spec).await;
                }
                Err(e) => {
                    return Err(errors::context(
                        format!("creating DB subnet group {} (subnets {:?})", spec.name, spec.subnet_ids),
                        e,
                    ))
                }
            }
            find(cx, &spec.name)
                .await?
                .map(|o| o.outputs)
                .context("the subnet group was created but cannot be read back")
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
            if changed.iter().any(|f| f == "tags") {
                let found = find(cx, &spec.name).await?.context("the subnet group vanished during its update")?;
                tag_resource(cx, &found, props).await?;
            }
            modify(cx, &spec).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: RdsSubnetGroupSpec = typed(&recorded.props, KIND)?;
            match cx.cloud.rds.delete_db_subnet_group().db_subnet_group_name(&spec.name).send().await {
                Err(e) if !errors::is_not_found(&e) => {
                    Err(errors::context(format!("deleting DB subnet group {}", spec.name), e))
                }
                _ => Ok(()),
            }
        })
    }
}

async fn modify(cx: &Cx<'_>, spec: &RdsSubnetGroupSpec) -> Result<Outputs> {
    cx.cloud
        .rds
        .modify_db_subnet_group()
        .db_subnet_group_name(&spec.name)
        .set_subnet_ids(Some(spec.subnet_ids.clone()))
        .send()
        .await
        .map_err(|e| errors::context(format!("updating the subnets of DB subnet group {}", spec.name), e))?;
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the subnet group vanished during its update")
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let out = match cx.cloud.rds.describe_db_subnet_groups().db_subnet_group_name(name).send().await {
        Ok(out) => out,
        Err(e) if errors::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(errors::context(format!("reading DB subnet group {name}"), e)),
    };
    let Some(group) = out.db_subnet_groups().first() else { return Ok(None) };
    let mut subnet_ids: Vec<String> = group.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect();
    subnet_ids.sort();
    let arn = group.db_subnet_group_arn().unwrap_or_default().to_string();
    let tags = match cx.cloud.rds.list_tags_for_resource().resource_name(&arn).send().await {
        Ok(out) => out.tag_list().iter().filter_map(|t| Some((t.key.clone()?, t.value.clone()?))).collect::<Vec<_>>(),
        Err(e) if errors::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(errors::context(format!("reading the tags of DB subnet group {name}"), e)),
    };
    Ok(Some(Observed::new(
        json!({ "name": name, "subnet_ids": subnet_ids, "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))) }),
        outputs([("name", json!(name)), ("vpc_id", json!(group.vpc_id())), ("arn", json!(arn))]),
    )))
}
