//! The `kinesis_stream_consumer` kind's properties (its driver is the engine's `aws::kinesis_stream_consumer`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A named consumer of a stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KinesisStreamConsumerSpec {
    pub name: String,
    pub stream_arn: Input<String>,
}

impl Spec for KinesisStreamConsumerSpec {
    const KIND: &'static str = "kinesis_stream_consumer";
}

impl Handle<KinesisStreamConsumerSpec> {
    /// The consumer's ARN (what a mapping reads from).
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
}
