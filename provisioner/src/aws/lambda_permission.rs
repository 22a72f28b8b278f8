//! Lambda resource-based permission: lets a service principal (API Gateway) invoke a function,
//! only from a given source ARN. Any change replaces the statement.

use crate::aws::retry::{retry_when, PROPAGATION_DEADLINE};
use crate::aws::{errors, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded};
use crate::cloud::Cloud;
use crate::engine::declare::Spec;
use crate::engine::input::Input;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The kind as the state records it.
pub const KIND: Kind = Kind::new("lambda_permission");

/// One statement of a function's resource policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LambdaPermissionSpec {
    pub function_name: Input<String>,
    pub statement_id: String,
    pub principal: String,
    pub source_arn: Input<String>,
}

impl Spec for LambdaPermissionSpec {
    const KIND: Kind = self::KIND;
}

pub struct LambdaPermission;

impl Driver<Cloud> for LambdaPermission {
    fn kind(&self) -> Kind {
        KIND
    }
    fn label(&self) -> &'static str {
        "Lambda permission"
    }
    fn service(&self) -> &'static str {
        "lambda"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["function_name", "statement_id", "principal", "source_arn"]
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: LambdaPermissionSpec = typed(props, KIND)?;
            if spec.function_name.value().is_none() || spec.source_arn.value().is_none() {
                return Ok(None); // its function or API does not exist yet
            }
            find(cx, &spec).await
        })
    }
    fn create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: LambdaPermissionSpec = typed(props, KIND)?;
            // A statement with this id from an earlier run is replaced, so it matches the spec.
            remove(cx, &spec).await?;
            let lambda = &cx.cloud.lambda;
            retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
                lambda
                    .add_permission()
                    .function_name(spec.function_name.get())
                    .statement_id(&spec.statement_id)
                    .action("lambda:InvokeFunction")
                    .principal(&spec.principal)
                    .source_arn(spec.source_arn.get())
                    .send()
            })
            .await
            .map_err(|e| {
                errors::context(format!("allowing {} to invoke {}", spec.principal, spec.function_name.get()), e)
            })?;
            Ok(outputs([("statement_id", json!(spec.statement_id))]))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        self.create(cx, props)
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { remove(cx, &typed(&recorded.props, KIND)?).await })
    }
}

async fn remove(cx: &Cx<'_>, spec: &LambdaPermissionSpec) -> Result<()> {
    match cx
        .cloud
        .lambda
        .remove_permission()
        .function_name(spec.function_name.get())
        .statement_id(&spec.statement_id)
        .send()
        .await
    {
        Err(e) if !errors::is_not_found(&e) => Err(errors::context(
            format!("removing permission {} of {}", spec.statement_id, spec.function_name.get()),
            e,
        )),
        _ => Ok(()),
    }
}

async fn find(cx: &Cx<'_>, spec: &LambdaPermissionSpec) -> Result<Option<Observed>> {
    let function = spec.function_name.get();
    let policy = match cx.cloud.lambda.get_policy().function_name(function).send().await {
        Ok(out) => out.policy.unwrap_or_default(),
        Err(e) if errors::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(errors::context(format!("reading the resource policy of {function}"), e)),
    };
    let document: Value = serde_json::from_str(&policy).unwrap_or(Value::Null);
    let statement = document.get("Statement").and_then(Value::as_array).and_then(|statements| {
        statements.iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(&spec.statement_id))
    });
    Ok(statement.map(|s| {
        let principal = s.pointer("/Principal/Service").or_else(|| s.get("Principal")).cloned().unwrap_or(Value::Null);
        // A statement without the condition lets any API Gateway invoke the function: reported
        // as a null source ARN, so it differs from the declared one (drift that opens access).
        let source_arn = s.pointer("/Condition/ArnLike/AWS:SourceArn").cloned().unwrap_or(Value::Null);
        let props = json!({
            "function_name": function,
            "statement_id": spec.statement_id,
            "principal": principal,
            "source_arn": source_arn,
        });
        Observed::new(props, outputs([("statement_id", json!(spec.statement_id))]))
    }))
}
