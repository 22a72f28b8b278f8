//! What most programs declare alike: a function of the project's with its log group and an
//! execution role allowing exactly what it needs, and a REST API protected as the settings'
//! `api` section says.

use crate::kinds::api_key::ApiKeySpec;
use crate::kinds::iam_role::{IamRoleSpec, Statement};
use crate::kinds::lambda_function::LambdaFunctionSpec;
use crate::kinds::log_group::LogGroupSpec;
use crate::kinds::rest_api::{RestApiSpec, Route, StageThrottle};
use crate::kinds::usage_plan::UsagePlanSpec;
use crate::settings::{ApiAuth, Common, FunctionSettings};
use crate::{Handle, Input, Request, StackDef};

/// What a program declares from: the engine's request, and the settings' common keys read from
/// it.
pub struct Declaring<'a> {
    pub request: &'a Request,
    pub common: Common,
}

impl<'a> Declaring<'a> {
    /// The request's, with its common settings read (the engine checked them before it asked).
    pub fn of(request: &'a Request) -> Result<Self, String> {
        Ok(Self { request, common: request.common()? })
    }

    /// The spec of `function` on `provided.al2023`, built for the settings' architecture.
    pub fn function(&self, stack: &StackDef, function: Function) -> LambdaFunctionSpec {
        let mut spec =
            LambdaFunctionSpec::of_binary(stack.physical_name(function.binary), function.binary, function.role.arn());
        spec.architecture = self.common.architecture.clone();
        spec.memory_mb = function.memory_mb;
        spec.timeout_s = function.timeout_s;
        spec.environment = function.environment.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        spec
    }
}

/// One function a program deploys: the binary of the package of that name in the project's
/// workspace, which the engine builds and fills in.
pub struct Function<'a> {
    /// The binary (and package) name; the physical name is `<stack>-<binary>`.
    pub binary: &'a str,
    pub role: &'a Handle<IamRoleSpec>,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub environment: Vec<(&'a str, Input<String>)>,
}

/// The spec of function `binary` sized as `settings` say, assuming `role`, with `environment`.
pub fn sized_function(
    stack: &StackDef,
    on: &Declaring,
    binary: &str,
    role: &Handle<IamRoleSpec>,
    settings: &FunctionSettings,
    environment: Vec<(&str, Input<String>)>,
) -> LambdaFunctionSpec {
    let (memory_mb, timeout_s) = (settings.memory_mb, settings.timeout_s);
    on.function(stack, Function { binary, role, memory_mb, timeout_s, environment })
}

/// Declares the log group of function `binary` (`/aws/lambda/<stack>-<binary>`, its events kept
/// the settings' `log_retention_days`) and the function's execution role: Lambda may assume it,
/// with `statements` and the right to write to that one log group. The role refers to the group,
/// so the group is made before the function and deleted after it (Lambda would make it again).
pub fn function_role(
    stack: &mut StackDef,
    on: &Declaring,
    binary: &str,
    mut statements: Vec<Statement>,
) -> Handle<IamRoleSpec> {
    let group = LogGroupSpec::of_function(&stack.physical_name(binary), on.common.log_retention_days);
    let logs = stack.add(&format!("{binary}-logs"), group);
    statements.push(Statement::allow(&["logs:CreateLogStream", "logs:PutLogEvents"], vec![logs.streams_arn()]));
    let role = IamRoleSpec {
        name: stack.physical_name(&format!("{binary}-role")),
        service: "lambda.amazonaws.com".into(),
        statements,
        other_inline_policies: vec![],
        managed_policy_arns: vec![],
    };
    stack.add(&format!("{binary}-role"), role)
}

/// Declares a REST API (`api`, deployed to `stage`) answering `routes`, protected as the
/// settings' `api` section says: the stage's throttle always; with `"auth": "api_key"` every
/// route requires a key, and the stack declares one (`api-key`, its id exported as `api_key_id`;
/// `provision api-key` prints its value) and a usage plan of the stage holding it (`api-plan`,
/// with the same throttle per key and the daily quota); with `"auth": "iam"` every route
/// requires SigV4 from a principal allowed to invoke it.
pub fn protected_api(stack: &mut StackDef, on: &Declaring, stage: &str, routes: Vec<Route>) -> Handle<RestApiSpec> {
    let api_settings = &on.common.api;
    let routes = routes
        .into_iter()
        .map(|route| Route {
            authorization: if api_settings.auth == ApiAuth::Iam { "AWS_IAM".into() } else { "NONE".into() },
            api_key_required: api_settings.auth == ApiAuth::ApiKey,
            ..route
        })
        .collect();
    let throttle = StageThrottle { rate_per_s: api_settings.throttle.rate_per_s, burst: api_settings.throttle.burst };
    let spec = RestApiSpec { throttle: Some(throttle), ..RestApiSpec::new(stack.physical_name("api"), stage, routes) };
    let api = stack.add("api", spec);
    if api_settings.auth == ApiAuth::ApiKey {
        let key = stack.add("api-key", ApiKeySpec { name: stack.physical_name("api-key") });
        let plan = UsagePlanSpec {
            name: stack.physical_name("api-plan"),
            api_id: api.output("id"),
            stage: stage.to_string(),
            rate_per_s: throttle.rate_per_s,
            burst: throttle.burst,
            quota_per_day: api_settings.quota_per_day,
            api_key_ids: vec![key.key_id()],
        };
        stack.add("api-plan", plan);
        stack.export("api_key_id", [key.key_id()]);
    }
    api
}
