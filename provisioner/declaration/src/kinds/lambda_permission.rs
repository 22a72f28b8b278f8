//! The `lambda_permission` kind's properties (its driver is the engine's `aws::lambda_permission`).

use crate::{Input, Spec};
use serde::{Deserialize, Serialize};

/// One statement of a function's resource policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LambdaPermissionSpec {
    pub function_name: Input<String>,
    pub statement_id: String,
    pub principal: String,
    pub source_arn: Input<String>,
}

impl Spec for LambdaPermissionSpec {
    const KIND: &'static str = "lambda_permission";
}
