//! Lambda resource-based permission: lets a service principal (API Gateway) invoke a function,
//! only from a given source ARN. A statement cannot be edited: an update removes it and adds it
//! again as declared.

use crate::aws::retry::{retry_when, PROPAGATION_DEADLINE};
use crate::aws::{errors, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent};
use crate::cloud::Cloud;
use anyhow::Result;
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::lambda_permission::*;

pub const KIND: Kind = Kind::new(<LambdaPermissionSpec as declaration::Spec>::KIND);

pub struct LambdaPermission;

impl Driver<Cloud> for LambdaPermission {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["statement_id"]
    }
    crate::declared_as!(LambdaPermissionSpec);
    fn label(&self) -> &'static str {
        "Lambda permission"
    }
    fn service(&self) -> &'static str {
        "lambda"
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
    /// A statement of this id is looked for first (AddPermission refuses a taken id).
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move { add(cx, &typed(props, KIND)?).await })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: LambdaPermissionSpec = typed(props, KIND)?;
            remove(cx, &spec).await?;
            match add(cx, &spec).await? {
                Sent::Created(outputs) => Ok(outputs),
                Sent::Taken(answer) => Err(answer),
            }
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { remove(cx, &typed(&recorded.props, KIND)?).await })
    }
}

/// Adds the statement. ResourceConflictException: a statement of this id exists.
async fn add(cx: &Cx<'_>, spec: &LambdaPermissionSpec) -> Result<Sent> {
    let lambda = &cx.cloud.lambda;
    let answer = retry_when(
        PROPAGATION_DEADLINE,
        |e| errors::is_busy(e) && !errors::is_in_use_or_conflict(e),
        || {
            lambda
                .add_permission()
                .function_name(spec.function_name.get())
                .statement_id(&spec.statement_id)
                .action("lambda:InvokeFunction")
                .principal(&spec.principal)
                .source_arn(spec.source_arn.get())
                .send()
        },
    )
    .await;
    let what = format!("allowing {} to invoke {}", spec.principal, spec.function_name.get());
    errors::sent(answer, errors::is_in_use_or_conflict, what, |_| outputs([("statement_id", json!(spec.statement_id))]))
}

async fn remove(cx: &Cx<'_>, spec: &LambdaPermissionSpec) -> Result<()> {
    let answer = cx
        .cloud
        .lambda
        .remove_permission()
        .function_name(spec.function_name.get())
        .statement_id(&spec.statement_id)
        .send()
        .await;
    errors::deleted(answer, format!("removing permission {} of {}", spec.statement_id, spec.function_name.get()))
}

async fn find(cx: &Cx<'_>, spec: &LambdaPermissionSpec) -> Result<Option<Observed>> {
    let function = spec.function_name.get();
    let answer = cx.cloud.lambda.get_policy().function_name(function).send().await;
    let Some(answer) = errors::found(answer, format!("reading the resource policy of {function}"))? else {
        return Ok(None);
    };
    let policy = answer.policy.unwrap_or_default();
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
