//! API Gateway usage plan: binds API keys to an API's stage, with a throttle per key and an
//! optional daily quota. A key is accepted only by the stages of a plan that holds it, so an
//! API whose methods require a key answers only callers with one of the plan's keys.
//!
//! The plan's keys are managed in place (CreateUsagePlanKey, DeleteUsagePlanKey). A change of its
//! stage, throttle or quota replaces the plan: UpdateUsagePlan's patches are stored as text by
//! MiniStack, which no SDK can read back (the REST API's methods are put again for the same
//! reason). The stage's own throttle ([`super::rest_api`]) applies to every caller meanwhile.

use crate::aws::{
    apigateway_tags, declared_tags, errors, name_prop, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind,
    Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::TAGS_PROPERTY;
use anyhow::{Context, Result};
use aws_sdk_apigateway::types::{ApiStage, Op, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The kind as the state records it.
pub use declaration::kinds::usage_plan::*;

pub const KIND: Kind = Kind::new(<UsagePlanSpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct UsagePlan;

impl Driver<Cloud> for UsagePlan {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["id"]
    }
    crate::declared_as!(UsagePlanSpec);
    fn label(&self) -> &'static str {
        "usage plan"
    }
    fn service(&self) -> &'static str {
        "apigateway"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name", "api_id", "stage", "rate_per_s", "burst", "quota_per_day"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            match find_by_name(cx, name_prop(props, "name", KIND)?, props).await? {
                Some(id) => find(cx, &id).await,
                None => Ok(None),
            }
        })
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, recorded_output(recorded, "id")?).await })
    }
    /// Plan names are not unique: the stack's plan is looked for before one is made.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: UsagePlanSpec = typed(props, KIND)?;
            let stage = ApiStage::builder().api_id(spec.api_id.get()).stage(&spec.stage).build();
            let throttle = ThrottleSettings::builder().rate_limit(spec.rate_per_s).burst_limit(spec.burst).build();
            let quota = spec
                .quota_per_day
                .map(|limit| QuotaSettings::builder().limit(limit).period(QuotaPeriodType::Day).build());
            let answer = cx
                .cloud
                .apigateway
                .create_usage_plan()
                .name(&spec.name)
                .description("Managed by provision")
                .api_stages(stage)
                .throttle(throttle)
                .set_quota(quota)
                .set_tags(Some(declared_tags(props)))
                .send()
                .await;
            // The keys are added by the update that follows (they differ from the new plan's none).
            errors::sent(
                answer,
                |_| false,
                format!("creating usage plan {}", spec.name),
                |plan| outputs([("id", json!(plan.id))]),
            )
        })
    }
    fn ready<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        _props: &'a Value,
        known: &'a Outputs,
    ) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            find(cx, known.get("id").and_then(Value::as_str).context("the usage plan's create returned no id")?).await
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
            let spec: UsagePlanSpec = typed(props, KIND)?;
            let id = recorded_output(recorded, "id")?;
            let apigateway = &cx.cloud.apigateway;
            if changed.iter().any(|f| f == "api_key_ids") {
                let wanted: BTreeSet<&str> = spec.api_key_ids.iter().map(|k| k.get().as_str()).collect();
                let held = keys_of(cx, id).await?;
                for key in wanted.iter().filter(|k| !held.contains(**k)) {
                    apigateway
                        .create_usage_plan_key()
                        .usage_plan_id(id)
                        .key_id(*key)
                        .key_type("API_KEY")
                        .send()
                        .await
                        .map_err(|e| errors::context(format!("adding API key {key} to usage plan {id}"), e))?;
                }
                for key in held.iter().filter(|k| !wanted.contains(k.as_str())) {
                    let answer = apigateway.delete_usage_plan_key().usage_plan_id(id).key_id(key).send().await;
                    errors::deleted(answer, format!("removing API key {key} from usage plan {id}"))?;
                }
            }
            if changed.iter().any(|f| f == TAGS_PROPERTY) {
                apigateway_tags::write(cx, &arn_of(cx, id), &format!("usage plan {id}"), props).await?;
            }
            find(cx, id).await?.map(|o| o.outputs).context("the usage plan vanished during its update")
        })
    }
    /// Unbinds the plan's stages first: AWS refuses to delete a plan that still has some.
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let Some(id) = recorded.outputs.get("id").and_then(Value::as_str) else { return Ok(()) };
            let apigateway = &cx.cloud.apigateway;
            let answer = apigateway.get_usage_plan().usage_plan_id(id).send().await;
            let Some(plan) = errors::found(answer, format!("reading usage plan {id}"))? else { return Ok(()) };
            let unbind: Vec<PatchOperation> = plan
                .api_stages()
                .iter()
                .map(|s| {
                    let value = format!("{}:{}", s.api_id().unwrap_or_default(), s.stage().unwrap_or_default());
                    PatchOperation::builder().op(Op::Remove).path("/apiStages").value(value).build()
                })
                .collect();
            if !unbind.is_empty() {
                let answer =
                    apigateway.update_usage_plan().usage_plan_id(id).set_patch_operations(Some(unbind)).send().await;
                errors::deleted(answer, format!("unbinding usage plan {id} from its stages"))?;
            }
            errors::deleted(
                apigateway.delete_usage_plan().usage_plan_id(id).send().await,
                format!("deleting usage plan {id}"),
            )
        })
    }
}

/// The id of the plan named `name`: the one carrying the mark declared in `props` when several
/// share the name, else any (a foreign one, which the caller refuses).
async fn find_by_name(cx: &Cx<'_>, name: &str, props: &Value) -> Result<Option<String>> {
    let mut position = None;
    let mut named = Vec::new();
    loop {
        let page = cx
            .cloud
            .apigateway
            .get_usage_plans()
            .set_position(position)
            .limit(500)
            .send()
            .await
            .map_err(|e| errors::context("listing usage plans", e))?;
        named.extend(page.items().iter().filter(|p| p.name() == Some(name)).cloned());
        match page.position {
            Some(next) if !page.items().is_empty() => position = Some(next),
            _ => break,
        }
    }
    let named = named.iter().filter_map(|p| Some((p.id()?.to_string(), p.tags().cloned().unwrap_or_default())));
    apigateway_tags::pick_marked(cx, props, named.collect(), |id| arn_of(cx, id)).await
}

fn arn_of(cx: &Cx<'_>, id: &str) -> String {
    format!("arn:aws:apigateway:{}::/usageplans/{id}", cx.cloud.region)
}

/// The ids of the keys plan `id` holds.
async fn keys_of(cx: &Cx<'_>, id: &str) -> Result<BTreeSet<String>> {
    let listed = cx
        .cloud
        .apigateway
        .get_usage_plan_keys()
        .usage_plan_id(id)
        .limit(500)
        .send()
        .await
        .map_err(|e| errors::context(format!("listing the keys of usage plan {id}"), e))?;
    Ok(listed.items().iter().filter_map(|k| k.id().map(str::to_string)).collect())
}

/// The plan `id`: its stage (the first, when there are several), throttle, daily quota, keys
/// and the engine's tags.
async fn find(cx: &Cx<'_>, id: &str) -> Result<Option<Observed>> {
    let answer = cx.cloud.apigateway.get_usage_plan().usage_plan_id(id).send().await;
    let Some(plan) = errors::found(answer, format!("reading usage plan {id}"))? else { return Ok(None) };
    let stage = plan.api_stages().first();
    let throttle = plan.throttle();
    let quota_per_day = plan.quota().filter(|q| q.period() == Some(&QuotaPeriodType::Day)).map(|q| q.limit());
    let keys: Vec<String> = keys_of(cx, id).await?.into_iter().collect();
    let created = plan.tags().cloned().unwrap_or_default();
    let tags = apigateway_tags::read(cx, &arn_of(cx, id), &format!("usage plan {id}"), created).await?;
    Ok(Some(Observed::new(
        json!({
            "name": plan.name(),
            "api_id": stage.and_then(|s| s.api_id()),
            "stage": stage.and_then(|s| s.stage()),
            "rate_per_s": throttle.map(|t| t.rate_limit()),
            "burst": throttle.map(|t| t.burst_limit()),
            "quota_per_day": quota_per_day,
            "api_key_ids": keys,
            TAGS_PROPERTY: tags,
        }),
        outputs([("id", json!(id))]),
    )))
}
