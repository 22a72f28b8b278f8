//! API Gateway API key: what callers send as `x-api-key` when the API requires a key. API Gateway
//! generates the value; it is a secret, so it is never read into properties, outputs or the
//! state: only the key's id is kept, and `provision api-key` asks API Gateway for the value when a
//! user or a script needs it ([`value`]).

use crate::aws::{
    apigateway_tags, declared_tags, errors, name_prop, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind,
    Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::TAGS_PROPERTY;
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::api_key::*;

pub const KIND: Kind = Kind::new(<ApiKeySpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct ApiKey;

impl Driver<Cloud> for ApiKey {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["id"]
    }
    crate::declared_as!(ApiKeySpec);
    fn label(&self) -> &'static str {
        "API key"
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
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            match find_by_name(cx, name_prop(props, "name", KIND)?, props).await? {
                Some(id) => find(cx, &id).await,
                None => Ok(None),
            }
        })
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let id = recorded_output(recorded, "id")?;
            find(cx, id).await
        })
    }
    /// Key names are not unique: the stack's key is looked for before one is made.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: ApiKeySpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .apigateway
                .create_api_key()
                .name(&spec.name)
                .enabled(true)
                .description("Managed by provision")
                .set_tags(Some(declared_tags(props)))
                .send()
                .await;
            // The answer holds the value: only the id is taken from it.
            errors::sent(
                answer,
                |_| false,
                format!("creating API key {}", spec.name),
                |key| outputs([("id", json!(key.id))]),
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
            let id = known.get("id").and_then(Value::as_str).context("CreateApiKey returned no id")?;
            find(cx, id).await
        })
    }
    /// Only the tags change in place (a new name is a new key, with a new value).
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        recorded: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let id = recorded_output(recorded, "id")?;
            if changed.iter().any(|f| f == TAGS_PROPERTY) {
                apigateway_tags::write(cx, &arn_of(cx, id), &format!("API key {id}"), props).await?;
            }
            find(cx, id).await?.map(|o| o.outputs).context("the API key vanished during its update")
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let Some(id) = recorded.outputs.get("id").and_then(Value::as_str) else { return Ok(()) };
            errors::deleted(
                cx.cloud.apigateway.delete_api_key().api_key(id).send().await,
                format!("deleting API key {id}"),
            )
        })
    }
}

fn arn_of(cx: &Cx<'_>, id: &str) -> String {
    format!("arn:aws:apigateway:{}::/apikeys/{id}", cx.cloud.region)
}

/// The id of the key named `name`: the one carrying the mark declared in `props` when several
/// share the name, else any (a foreign one, which the caller refuses).
async fn find_by_name(cx: &Cx<'_>, name: &str, props: &Value) -> Result<Option<String>> {
    let listed = cx
        .cloud
        .apigateway
        .get_api_keys()
        .name_query(name)
        .include_values(false)
        .limit(500)
        .send()
        .await
        .map_err(|e| errors::context("listing API keys", e))?;
    let named = listed
        .items()
        .iter()
        .filter(|k| k.name() == Some(name))
        .filter_map(|k| Some((k.id()?.to_string(), k.tags().cloned().unwrap_or_default())))
        .collect();
    apigateway_tags::pick_marked(cx, props, named, |id| arn_of(cx, id)).await
}

/// The key `id` without its value: its name and the engine's tags.
async fn find(cx: &Cx<'_>, id: &str) -> Result<Option<Observed>> {
    let answer = cx.cloud.apigateway.get_api_key().api_key(id).include_value(false).send().await;
    let Some(key) = errors::found(answer, format!("reading API key {id}"))? else { return Ok(None) };
    let tags =
        apigateway_tags::read(cx, &arn_of(cx, id), &format!("API key {id}"), key.tags().cloned().unwrap_or_default())
            .await?;
    Ok(Some(Observed::new(json!({ "name": key.name(), TAGS_PROPERTY: tags }), outputs([("id", json!(id))]))))
}

/// The value of the key `id`: for `provision api-key`, and for the benchmark and the demo to send.
/// Never stored.
pub async fn value(cloud: &Cloud, id: &str) -> Result<String> {
    let key = cloud
        .apigateway
        .get_api_key()
        .api_key(id)
        .include_value(true)
        .send()
        .await
        .map_err(|e| errors::context(format!("reading the value of API key {id}"), e))?;
    key.value.with_context(|| format!("API Gateway returned no value for API key {id}"))
}
