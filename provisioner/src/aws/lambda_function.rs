//! Lambda function from a zip built by provision (`bootstrap` for the `provided.al2023`
//! runtime). Code is compared by the zip's SHA-256 (what Lambda reports as `CodeSha256`), so an
//! unchanged build uploads nothing; configuration (memory, timeout, environment, role) is
//! updated in place.

use crate::aws::retry::{poll_until, retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime, State, VpcConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::lambda_function::*;

pub const KIND: Kind = Kind::new(<LambdaFunctionSpec as declaration::Spec>::KIND);

const WAIT: Duration = Duration::from_secs(300);

/// How often the readiness polls read a function's state. On a local emulator, 50 ms: its
/// transitions take half a second, and the SDK waiters' 1 s minimum delay would be most of a
/// create or a hot-swap. On AWS, 500 ms: `GetFunctionConfiguration` shares Lambda's control-plane
/// quota of 15 requests per second per API, and three functions polled every 50 ms would be
/// throttled (and starve other tools in the account) while a real transition takes seconds.
fn readiness_poll(cx: &Cx<'_>) -> Duration {
    if cx.cloud.target.is_local() {
        Duration::from_millis(50)
    } else {
        Duration::from_millis(500)
    }
}

pub struct LambdaFunction;

impl Driver<Cloud> for LambdaFunction {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name"]
    }
    crate::declared_as!(LambdaFunctionSpec);
    fn label(&self) -> &'static str {
        "Lambda function"
    }
    fn service(&self) -> &'static str {
        "lambda"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn ignore_in_diff(&self) -> &'static [&'static str] {
        &["zip_path", "binary"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::lambda_function)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let mut found = find(cx, name_prop(props, "name", KIND)?).await?;
            // Hot-reloaded code has no meaningful hash: the folder is the code.
            if let (Some(_), Some(found)) = (props.get("hot_reload_dir").and_then(Value::as_str), found.as_mut()) {
                found.props["code_sha256"] = props["code_sha256"].clone();
            }
            Ok(found)
        })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(send_create(cx, props))
    }
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value, _: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let name = name_prop(props, "name", KIND)?;
            wait_ready(cx, name, true).await?;
            self.lookup(cx, props).await
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
            let spec: LambdaFunctionSpec = typed(props, KIND)?;
            if changed.iter().any(|f| f == "tags") {
                tag(cx, &spec.name, props).await?;
            }
            let code_changed = changed.iter().any(|f| f == "code_sha256" || f == "architecture");
            let config_changed = changed.iter().any(|f| !matches!(f.as_str(), "code_sha256" | "architecture" | "tags"));
            converge(cx, &spec, code_changed, config_changed).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            let answer = cx.cloud.lambda.delete_function().function_name(name).send().await;
            errors::deleted(answer, format!("deleting function {name}"))
        })
    }
}

async fn send_create(cx: &Cx<'_>, props: &Value) -> Result<Sent> {
    let spec: LambdaFunctionSpec = typed(props, KIND)?;
    let code = Code::of(&spec)?;
    let lambda = &cx.cloud.lambda;
    // A role just created may not be assumable yet (IAM propagates in seconds): retried.
    let answer = retry_when(PROPAGATION_DEADLINE, errors::is_propagation, || {
        lambda
            .create_function()
            .function_name(&spec.name)
            .role(spec.role_arn.get())
            .runtime(Runtime::from(spec.runtime.as_str()))
            .handler(&spec.handler)
            .architectures(Architecture::from(spec.architecture.as_str()))
            .memory_size(spec.memory_mb)
            .timeout(spec.timeout_s)
            .environment(environment(&spec))
            .set_vpc_config(spec.vpc.as_ref().map(vpc_config))
            .code(code.function_code())
            .set_tags(Some(declared_tags(props)))
            .send()
    })
    .await;
    // ResourceConflictException: the name is taken, or an operation is in progress on it.
    errors::sent(answer, errors::is_in_use_or_conflict, format!("creating function {}", spec.name), |_| Outputs::new())
}

/// Brings an existing function to the spec: new code and/or new configuration, each followed
/// by a wait until the update is live.
async fn converge(cx: &Cx<'_>, spec: &LambdaFunctionSpec, code: bool, config: bool) -> Result<Outputs> {
    let lambda = &cx.cloud.lambda;
    if config {
        retry_when(
            PROPAGATION_DEADLINE,
            |e| errors::is_busy(e) || errors::is_propagation(e),
            || {
                lambda
                    .update_function_configuration()
                    .function_name(&spec.name)
                    .role(spec.role_arn.get())
                    .runtime(Runtime::from(spec.runtime.as_str()))
                    .handler(&spec.handler)
                    .memory_size(spec.memory_mb)
                    .timeout(spec.timeout_s)
                    .environment(environment(spec))
                    .vpc_config(spec.vpc.as_ref().map_or_else(no_vpc, vpc_config))
                    .send()
            },
        )
        .await
        .map_err(|e| errors::context(format!("updating the configuration of function {}", spec.name), e))?;
        wait_ready(cx, &spec.name, false).await?;
    }
    if code {
        upload_code(cx, &spec.name, &spec.architecture, Code::of(spec)?).await?;
    }
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the function vanished during its update")
}

/// Uploads new code and waits until it is live (`LastUpdateStatus` Successful). Used by
/// updates and by hot-swap; returns how long the upload and the wait for readiness took.
pub async fn upload_code(cx: &Cx<'_>, name: &str, architecture: &str, code: Code) -> Result<(Duration, Duration)> {
    let lambda = &cx.cloud.lambda;
    let started = std::time::Instant::now();
    retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
        lambda
            .update_function_code()
            .function_name(name)
            .architectures(Architecture::from(architecture))
            .set_zip_file(match &code {
                Code::Zip(zip) => Some(Blob::new(zip.clone())),
                Code::HotReload(_) => None,
            })
            .set_s3_bucket(matches!(code, Code::HotReload(_)).then(|| HOT_RELOAD_BUCKET.to_string()))
            .set_s3_key(match &code {
                Code::HotReload(dir) => Some(dir.clone()),
                Code::Zip(_) => None,
            })
            .send()
    })
    .await
    .map_err(|e| errors::context(format!("uploading the code of function {name}"), e))?;
    let uploaded = started.elapsed();
    wait_update_live(cx, name).await?;
    Ok((uploaded, started.elapsed() - uploaded))
}

/// Polls ([`readiness_poll`]) until the last update is `Successful`. The SDK's
/// `FunctionUpdatedV2` waiter sleeps at least 1 s between checks, which would be most of a
/// hot-swap's latency on a local emulator.
async fn wait_update_live(cx: &Cx<'_>, name: &str) -> Result<()> {
    use aws_sdk_lambda::types::LastUpdateStatus;
    poll_until(&format!("the new code of {name} to go live"), readiness_poll(cx), WAIT, || async {
        let config = configuration(cx, name).await?;
        match config.last_update_status {
            Some(LastUpdateStatus::Failed) => anyhow::bail!(
                "the update of function {name} failed: {}",
                config.last_update_status_reason.as_deref().unwrap_or("no reason given")
            ),
            Some(LastUpdateStatus::Successful) | None => Ok(Some(())),
            _ => Ok(None),
        }
    })
    .await
}

/// The function's configuration, read for the readiness polls.
async fn configuration(
    cx: &Cx<'_>,
    name: &str,
) -> Result<aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput> {
    cx.cloud
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| errors::context(format!("reading function {name}"), e))
}

/// Waits until a new function is `Active` (or a configuration update is done), polling at
/// [`readiness_poll`]'s pace. `Failed` is an error with Lambda's reason.
async fn wait_ready(cx: &Cx<'_>, name: &str, just_created: bool) -> Result<()> {
    use aws_sdk_lambda::types::LastUpdateStatus;
    if !just_created {
        return wait_update_live(cx, name).await;
    }
    poll_until(&format!("function {name} to become active"), readiness_poll(cx), WAIT, || async {
        let config = configuration(cx, name).await?;
        match config.state {
            Some(State::Failed) => anyhow::bail!(
                "function {name} failed to become active: {}",
                config.state_reason.as_deref().unwrap_or("no reason given")
            ),
            Some(State::Active) | None => {
                Ok((config.last_update_status != Some(LastUpdateStatus::InProgress)).then_some(()))
            }
            _ => Ok(None),
        }
    })
    .await
}

async fn tag(cx: &Cx<'_>, name: &str, props: &Value) -> Result<()> {
    let arn = find(cx, name).await?.and_then(|f| f.outputs.get("arn").and_then(Value::as_str).map(str::to_string));
    let arn = arn.with_context(|| format!("function {name} vanished before it could be tagged"))?;
    cx.cloud
        .lambda
        .tag_resource()
        .resource(&arn)
        .set_tags(Some(declared_tags(props)))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging function {name}"), e))?;
    Ok(())
}

fn environment(spec: &LambdaFunctionSpec) -> Environment {
    Environment::builder()
        .set_variables(Some(spec.environment.iter().map(|(k, v)| (k.clone(), v.get().clone())).collect()))
        .build()
}

fn read_zip(spec: &LambdaFunctionSpec) -> Result<Vec<u8>> {
    std::fs::read(&spec.zip_path).with_context(|| {
        format!("reading the code zip {} of function {}: run `provision up` to rebuild it", spec.zip_path, spec.name)
    })
}

/// Reads the function's configuration and tags (one GetFunction call).
async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let answer = cx.cloud.lambda.get_function().function_name(name).send().await;
    let Some(out) = errors::found(answer, format!("reading function {name}"))? else { return Ok(None) };
    let tags = marked_tags(out.tags().into_iter().flatten());
    let function = out.configuration.context("GetFunction returned no configuration")?;
    if function.state == Some(State::Failed) {
        cx.progress(format!(
            "function {name} is in state Failed: {}",
            function.state_reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let environment: BTreeMap<String, String> =
        function.environment.as_ref().and_then(|e| e.variables.clone()).unwrap_or_default().into_iter().collect();
    let vpc = function.vpc_config.as_ref().filter(|v| !v.subnet_ids().is_empty()).map(|v| {
        let mut subnet_ids = v.subnet_ids().to_vec();
        let mut security_group_ids = v.security_group_ids().to_vec();
        subnet_ids.sort();
        security_group_ids.sort();
        json!({ "subnet_ids": subnet_ids, "security_group_ids": security_group_ids })
    });
    Ok(Some(Observed {
        props: json!({
            "vpc": vpc,
            "name": name,
            "role_arn": function.role,
            "runtime": function.runtime.as_ref().map(|r| r.as_str()),
            "handler": function.handler,
            "architecture": function.architectures().first().map(|a| a.as_str()).unwrap_or("x86_64"),
            "memory_mb": function.memory_size,
            "timeout_s": function.timeout,
            "environment": environment,
            "code_sha256": function.code_sha256,
            "tags": tags,
        }),
        outputs: outputs([("arn", json!(function.function_arn)), ("name", json!(name))]),
        created_unix: None,
        failed: None,
    }))
}

/// LocalStack's magic bucket: a function whose code comes from `hot-reload` / `<folder>` runs
/// the files in that folder and picks up changes to them without an upload.
pub const HOT_RELOAD_BUCKET: &str = "hot-reload";

/// The code a create or update sends.
pub enum Code {
    /// The zip's bytes.
    Zip(Vec<u8>),
    /// A folder on the emulator's host, through the `hot-reload` bucket.
    HotReload(String),
}

impl Code {
    fn of(spec: &LambdaFunctionSpec) -> Result<Self> {
        match &spec.hot_reload_dir {
            Some(dir) => Ok(Code::HotReload(dir.clone())),
            None => read_zip(spec).map(Code::Zip),
        }
    }

    fn function_code(&self) -> FunctionCode {
        match self {
            Code::Zip(zip) => FunctionCode::builder().zip_file(Blob::new(zip.clone())).build(),
            Code::HotReload(dir) => FunctionCode::builder().s3_bucket(HOT_RELOAD_BUCKET).s3_key(dir).build(),
        }
    }
}

/// The configuration that takes a function out of any VPC.
fn no_vpc() -> VpcConfig {
    VpcConfig::builder().set_subnet_ids(Some(vec![])).set_security_group_ids(Some(vec![])).build()
}

/// The configuration that places a function in `vpc`.
fn vpc_config(vpc: &VpcSpec) -> VpcConfig {
    VpcConfig::builder()
        .set_subnet_ids(Some(vpc.subnet_ids.clone()))
        .set_security_group_ids(Some(vpc.security_group_ids.clone()))
        .build()
}
