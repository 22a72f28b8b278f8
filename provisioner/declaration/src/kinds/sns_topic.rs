//! The `sns_topic` kind's properties (its driver is the engine's `aws::sns_topic`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A standard topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnsTopicSpec {
    pub name: String,
}

impl Spec for SnsTopicSpec {
    const KIND: &'static str = "sns_topic";
}

impl Handle<SnsTopicSpec> {
    /// The topic's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
}
