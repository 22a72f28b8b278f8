//! The `api_key` kind's properties (its driver is the engine's `aws::api_key`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// An enabled key API Gateway generates the value of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeySpec {
    pub name: String,
}

impl Spec for ApiKeySpec {
    const KIND: &'static str = "api_key";
}

impl Handle<ApiKeySpec> {
    /// The key's id in API Gateway (not its value).
    pub fn key_id(&self) -> Input<String> {
        self.output("id")
    }
}
