//! The `log_group` kind's properties (its driver is the engine's `aws::log_group`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// What Lambda names a function's log group: this, then the function's name.
pub const LAMBDA_PREFIX: &str = "/aws/lambda/";

/// A log group whose events expire after `retention_days`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
    /// The group carries the stack's mark itself (not only through its function): declared true,
    /// read false for a group Lambda made, which an update then marks.
    pub marked: bool,
}

impl LogGroupSpec {
    /// The group Lambda writes the function `function_name`'s logs to, kept `retention_days`.
    pub fn of_function(function_name: &str, retention_days: i32) -> Self {
        Self { name: format!("{LAMBDA_PREFIX}{function_name}"), retention_days, marked: true }
    }
}

impl Spec for LogGroupSpec {
    const KIND: &'static str = "log_group";
}

impl Handle<LogGroupSpec> {
    /// The ARN of the group's log streams (`...:log-group:<name>:*`): what a policy allowing a
    /// function to write its logs names.
    pub fn streams_arn(&self) -> Input<String> {
        self.output("streams_arn")
    }
}
