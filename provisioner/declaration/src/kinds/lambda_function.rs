//! The `lambda_function` kind's properties (its driver is the engine's `aws::lambda_function`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A function and its code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LambdaFunctionSpec {
    pub name: String,
    /// The binary deployed: the package of that name in the project's Cargo workspace, which
    /// the engine builds. Not compared; an input of the engine itself, like the zip path.
    #[serde(default)]
    pub binary: String,
    pub role_arn: Input<String>,
    pub runtime: String,
    pub handler: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub environment: BTreeMap<String, Input<String>>,
    /// The zip to upload; not compared (the hash is). Left empty, the engine fills it in from
    /// `binary`.
    #[serde(default)]
    pub zip_path: String,
    /// Base64 SHA-256 of the zip. Left empty, the engine fills it in from `binary`.
    #[serde(default)]
    pub code_sha256: String,
    /// LocalStack hot reload: the folder holding `bootstrap`, mounted through the `hot-reload`
    /// code bucket instead of uploading a zip. `code_sha256` is then not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_reload_dir: Option<String>,
    /// Subnets and security groups, for a function that must reach into a VPC. `None` is
    /// declared as such (null), so a VPC attached out of band is drift.
    #[serde(default)]
    pub vpc: Option<VpcSpec>,
}

/// Where in a VPC a function runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VpcSpec {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

impl LambdaFunctionSpec {
    /// A function named `name` running the project's binary `binary` on `provided.al2023`
    /// (x86_64, 128 MB, 10 s, no environment) as role `role_arn`; the engine builds the binary
    /// and fills in its code.
    pub fn of_binary(name: String, binary: &str, role_arn: Input<String>) -> Self {
        Self {
            name,
            binary: binary.to_string(),
            role_arn,
            runtime: "provided.al2023".into(),
            handler: "bootstrap".into(),
            architecture: "x86_64".into(),
            memory_mb: 128,
            timeout_s: 10,
            environment: BTreeMap::new(),
            zip_path: String::new(),
            code_sha256: String::new(),
            hot_reload_dir: None,
            vpc: None,
        }
    }
}

impl Spec for LambdaFunctionSpec {
    const KIND: &'static str = "lambda_function";
}

impl Handle<LambdaFunctionSpec> {
    /// The function's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The function's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}
