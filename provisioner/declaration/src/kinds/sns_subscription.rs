//! The `sns_subscription` kind's properties (its driver is the engine's `aws::sns_subscription`).

use crate::{Input, Spec};
use serde::{Deserialize, Serialize};

/// A topic delivering to a function.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnsSubscriptionSpec {
    pub topic_arn: Input<String>,
    /// The function's ARN (protocol `lambda`).
    pub function_arn: Input<String>,
}

impl Spec for SnsSubscriptionSpec {
    const KIND: &'static str = "sns_subscription";
}
