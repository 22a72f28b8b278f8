//! API Gateway REST API: routes (a method on a path) answered by functions through Lambda proxy
//! integrations (`routes.rs`), deployed to one stage with a throttle on every method of it. A
//! change to the routes or the throttle is applied in place and deployed again.

pub mod routes;

use crate::aws::endpoint::Flavor;
use crate::aws::retry::{retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    apigateway_tags, declared_tags, errors, name_prop, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind,
    Observed, Outputs, Recorded, Sent, Teardown,
};
use crate::cloud::Cloud;
use crate::engine::mark::carries_mark;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::rest_api::*;

pub const KIND: Kind = Kind::new(<RestApiSpec as declaration::Spec>::KIND);

pub struct RestApi;

impl Driver<Cloud> for RestApi {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["id", "deployment_id", "url", "invoke_source_arn"]
    }
    crate::declared_as!(RestApiSpec);
    fn label(&self) -> &'static str {
        "REST API"
    }
    /// When `down` deletes it: requests to it invoke the stack's functions: it goes first, with its stage and permissions.
    fn teardown(&self) -> Teardown {
        Teardown::Source
    }
    fn service(&self) -> &'static str {
        "apigateway"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        let routes: Vec<Route> = serde_json::from_value(props["routes"].clone()).map_err(|e| format!("routes: {e}"))?;
        routes::check(&routes)
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: RestApiSpec = typed(&recorded.props, KIND)?;
            let deployed = recorded.outputs.get("deployment_id").and_then(Value::as_str);
            find(cx, recorded_output(recorded, "id")?, &spec.stage, deployed).await
        })
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let name = name_prop(props, "name", KIND)?;
            let Some(id) = find_by_name(cx, name, props).await? else { return Ok(None) };
            // Found without a record (adopted after a lost state): the deployment its stage
            // serves is the last one known, so an up that changes nothing records it as served.
            let stage = name_prop(props, "stage", KIND)?;
            let serving = read_stage(cx, &id, stage).await?.map(|s| s.deployment_id);
            find(cx, &id, stage, serving.as_deref()).await
        })
    }
    /// API names are not unique: an API of this name is looked for (the stack's first) before
    /// one is created.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(send_create(cx, props))
    }
    /// Reads the API by the id the create returned (or the lookup found): a same-named API of
    /// someone else's is never confused with it.
    fn ready<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        known: &'a Outputs,
    ) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let id = known.get("id").and_then(Value::as_str).context("CreateRestApi returned no id")?;
            find(cx, id, name_prop(props, "stage", KIND)?, None).await
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
            let id = recorded_output(recorded, "id")?;
            if changed.iter().any(|f| f == "tags") {
                tag(cx, id, props).await?;
            }
            deploy(cx, &typed(props, KIND)?, id).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let id = recorded_output(recorded, "id")?;
            let apigateway = &cx.cloud.apigateway;
            // DeleteRestApi is throttled hard on AWS (one call per 30 s per account).
            let answer = retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
                apigateway.delete_rest_api().rest_api_id(id).send()
            })
            .await;
            errors::deleted(answer, format!("deleting REST API {id}"))
        })
    }
}

/// How many times CreateRestApi is sent before a transient failure is reported.
const CREATE_ATTEMPTS: u32 = 10;

/// Sends CreateRestApi. API names are not unique, so a create that failed transiently may still
/// have made an API (the answer was lost): the SDK does not retry it blindly; before each new
/// attempt an API of this name with this stack's mark is looked for and, if found, is the one.
async fn send_create(cx: &Cx<'_>, props: &Value) -> Result<Sent> {
    use aws_smithy_types::retry::RetryConfig;
    let spec: RestApiSpec = typed(props, KIND)?;
    let what = format!("creating REST API {}", spec.name);
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=CREATE_ATTEMPTS {
        let answer = cx
            .cloud
            .apigateway
            .create_rest_api()
            .name(&spec.name)
            .description("Managed by provision")
            .set_tags(Some(declared_tags(props)))
            .customize()
            .config_override(aws_sdk_apigateway::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match answer {
            Ok(api) => return Ok(Sent::Created(outputs([("id", json!(api.id))]))),
            Err(e) if errors::is_transient(&e) && attempt < CREATE_ATTEMPTS => {
                cx.progress(format!(
                    "{}: looking for what it may have made before trying again",
                    errors::context(&what, e)
                ));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(20));
                if let Some(id) = find_by_name(cx, &spec.name, props).await? {
                    let found = find(cx, &id, &spec.stage, None).await?;
                    if found.is_some_and(|api| carries_mark(props, &api.props)) {
                        return Ok(Sent::Created(outputs([("id", json!(id))])));
                    }
                }
            }
            Err(e) => return Err(errors::context(what, e)),
        }
    }
    unreachable!("the last attempt returns")
}

/// Makes the API answer the declared routes, then deploys the stage.
async fn deploy(cx: &Cx<'_>, spec: &RestApiSpec, id: &str) -> Result<Outputs> {
    let apigateway = &cx.cloud.apigateway;
    routes::write(cx, id, &spec.routes).await?;
    let deployment = retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
        apigateway.create_deployment().rest_api_id(id).stage_name(&spec.stage).send()
    })
    .await
    .map_err(|e| errors::context(format!("deploying REST API {id} to stage {}", spec.stage), e))?;
    if let Some(throttle) = spec.throttle {
        set_throttle(cx, id, &spec.stage, throttle).await?;
    }
    // Read back with the new deployment as the one provision made.
    find(cx, id, &spec.stage, deployment.id())
        .await?
        .map(|o| o.outputs)
        .context("the REST API vanished during its deployment")
}

/// The id of the REST API named `name`: the one carrying the mark declared in `props` when
/// several share the name (API names are not unique), else any (a foreign one).
async fn find_by_name(cx: &Cx<'_>, name: &str, props: &Value) -> Result<Option<String>> {
    let apis = cx
        .cloud
        .apigateway
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .map_err(|e| errors::context("listing REST APIs", e))?;
    let named = apis.items().iter().filter(|a| a.name() == Some(name));
    let named = named.filter_map(|a| Some((a.id()?.to_string(), a.tags().cloned().unwrap_or_default())));
    apigateway_tags::pick_marked(cx, props, named.collect(), |id| arn_of(cx, id)).await
}

fn arn_of(cx: &Cx<'_>, id: &str) -> String {
    format!("arn:aws:apigateway:{}::/restapis/{id}", cx.cloud.region)
}

/// The engine's tags of the API (see [`apigateway_tags`]).
async fn tags_of(cx: &Cx<'_>, id: &str, created: std::collections::HashMap<String, String>) -> Result<Value> {
    apigateway_tags::read(cx, &arn_of(cx, id), &format!("REST API {id}"), created).await
}

async fn tag(cx: &Cx<'_>, id: &str, props: &Value) -> Result<()> {
    apigateway_tags::write(cx, &arn_of(cx, id), &format!("REST API {id}"), props).await
}

/// What provision manages of a stage.
struct StageState {
    /// The deployment the stage serves.
    deployment_id: String,
    /// The limit on every method (`*/*`), when set.
    throttle: Option<StageThrottle>,
}

/// The stage (`None` when there is no such stage).
async fn read_stage(cx: &Cx<'_>, id: &str, stage: &str) -> Result<Option<StageState>> {
    let answer = cx.cloud.apigateway.get_stage().rest_api_id(id).stage_name(stage).send().await;
    let found = errors::found(answer, format!("reading stage {stage} of REST API {id}"))?;
    Ok(found.map(|stage| {
        let every_method = stage.method_settings().and_then(|settings| settings.get("*/*"));
        StageState {
            deployment_id: stage.deployment_id().unwrap_or_default().to_string(),
            throttle: every_method
                .map(|m| StageThrottle { rate_per_s: m.throttling_rate_limit(), burst: m.throttling_burst_limit() }),
        }
    }))
}

/// Sets the limit on every method of the stage (UpdateStage on `/*/*/throttling/...`).
async fn set_throttle(cx: &Cx<'_>, id: &str, stage: &str, throttle: StageThrottle) -> Result<()> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    let replace = |path: &str, value: String| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    cx.cloud
        .apigateway
        .update_stage()
        .rest_api_id(id)
        .stage_name(stage)
        .patch_operations(replace("/*/*/throttling/rateLimit", throttle.rate_per_s.to_string()))
        .patch_operations(replace("/*/*/throttling/burstLimit", throttle.burst.to_string()))
        .send()
        .await
        .map_err(|e| errors::context(format!("setting the throttle of stage {stage} of REST API {id}"), e))?;
    Ok(())
}

/// Reads the API. `deployed` is the deployment provision made last: a stage serving another one
/// (rolled back, or redeployed out of band) reports `serves_last_deployment: false`.
async fn find(cx: &Cx<'_>, id: &str, stage: &str, deployed: Option<&str>) -> Result<Option<Observed>> {
    let apigateway = &cx.cloud.apigateway;
    let answer = apigateway.get_rest_api().rest_api_id(id).send().await;
    let Some(api) = errors::found(answer, format!("reading REST API {id}"))? else { return Ok(None) };
    let routes = routes::read(cx, id).await?;
    let stage_state = read_stage(cx, id, stage).await?;
    let throttle = stage_state.as_ref().and_then(|s| s.throttle);
    let serving = stage_state.map(|s| s.deployment_id);
    let deployed_stage = serving.as_ref().map(|_| stage.to_string());
    let serves_last_deployment = serving.is_some() && serving.as_deref() == deployed;
    let account = cx.cloud.account_id().await?;
    let region = &cx.cloud.region;
    Ok(Some(Observed {
        props: json!({
            "name": api.name(),
            "stage": deployed_stage,
            "routes": routes,
            "serves_last_deployment": serves_last_deployment,
            "throttle": throttle,
            "tags": tags_of(cx, id, api.tags().cloned().unwrap_or_default()).await?,
        }),
        outputs: outputs([
            ("id", json!(id)),
            ("deployment_id", json!(serving)),
            ("url", json!(invoke_url(cx, id, stage).await)),
            ("invoke_source_arn", json!(format!("arn:aws:execute-api:{region}:{account}:{id}/*/*"))),
        ]),
        created_unix: None,
        failed: None,
    }))
}

/// The URL clients POST to: AWS's; on LocalStack the form its users paste,
/// `http://<id>.execute-api.localhost.localstack.cloud:<port>/<stage>/`, where that name resolves;
/// otherwise the path-style URL every emulator serves without DNS.
async fn invoke_url(cx: &Cx<'_>, id: &str, stage: &str) -> String {
    let Some(endpoint) = &cx.cloud.target.endpoint_url else {
        return format!("https://{id}.execute-api.{}.amazonaws.com/{stage}/", cx.cloud.region);
    };
    let endpoint = endpoint.trim_end_matches('/');
    if matches!(cx.cloud.endpoint().await.flavor, Flavor::LocalStack { .. }) {
        let port = endpoint.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(4566);
        let host = format!("{id}.execute-api.localhost.localstack.cloud");
        let resolves = tokio::time::timeout(Duration::from_secs(1), tokio::net::lookup_host((host.as_str(), port)))
            .await
            .is_ok_and(|found| found.is_ok_and(|mut addresses| addresses.next().is_some()));
        if resolves {
            return format!("http://{host}:{port}/{stage}/");
        }
    }
    format!("{endpoint}/restapis/{id}/{stage}/_user_request_/")
}
