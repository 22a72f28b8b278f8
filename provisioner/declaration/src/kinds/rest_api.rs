//! The `rest_api` kind's properties (its driver is the engine's `aws::rest_api`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A REST API whose routes invoke functions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestApiSpec {
    pub name: String,
    pub stage: String,
    /// Sorted by path, then method (as [`RestApiSpec::new`] does), the order a read reports.
    pub routes: Vec<Route>,
    /// The stage serves the deployment provision made of the current integration: a stage rolled
    /// back or redeployed out of band is drift, and an update deploys again.
    pub serves_last_deployment: bool,
    /// The limit on requests to every method of the stage (`None`: API Gateway's account limit).
    #[serde(default)]
    pub throttle: Option<StageThrottle>,
}

/// A token bucket on every method of a stage: `rate_per_s` requests a second, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageThrottle {
    pub rate_per_s: f64,
    pub burst: i32,
}

impl RestApiSpec {
    /// An API named `name` deployed to `stage`, answering `routes`.
    pub fn new(name: String, stage: &str, routes: Vec<Route>) -> Self {
        Self { name, stage: stage.to_string(), routes: sorted(routes), serves_last_deployment: true, throttle: None }
    }
}

impl Spec for RestApiSpec {
    const KIND: &'static str = "rest_api";
}

impl Handle<RestApiSpec> {
    /// The URL of the deployed stage (ends in `/`); routes are relative to it.
    pub fn url(&self) -> Input<String> {
        self.output("url")
    }
    /// The ARN pattern API Gateway presents when it invokes a function (for permissions).
    pub fn invoke_source_arn(&self) -> Input<String> {
        self.output("invoke_source_arn")
    }
}

/// One route: `method path` answered by the function `function_arn`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Route {
    pub method: String,
    /// `/`, `/arrays` or `/arrays/{arrayId}`: segments in braces are path parameters.
    pub path: String,
    pub function_arn: Input<String>,
    /// `NONE` or `AWS_IAM` (callers sign with SigV4).
    pub authorization: String,
    /// Callers must send an API key (`x-api-key`) that a usage plan of the stage holds.
    pub api_key_required: bool,
}

impl Route {
    /// `method path` answered by `function_arn`, open to any caller.
    pub fn new(method: &str, path: &str, function_arn: Input<String>) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            function_arn,
            authorization: "NONE".into(),
            api_key_required: false,
        }
    }
}

/// Routes in the order a read reports them (by path, then method), so a declaration compares
/// equal to what the API holds.
pub fn sorted(mut routes: Vec<Route>) -> Vec<Route> {
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    routes
}
