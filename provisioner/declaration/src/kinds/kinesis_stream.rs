//! The `kinesis_stream` kind's properties (its driver is the engine's `aws::kinesis_stream`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A stream and its capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KinesisStreamSpec {
    pub name: String,
    /// `PROVISIONED` or `ON_DEMAND`.
    #[serde(default = "provisioned")]
    pub mode: String,
    /// The open shards of a provisioned stream; `None` (null) on demand.
    pub shard_count: Option<i32>,
}

fn provisioned() -> String {
    PROVISIONED.into()
}

/// The capacity modes.
pub const PROVISIONED: &str = "PROVISIONED";
pub const ON_DEMAND: &str = "ON_DEMAND";

impl KinesisStreamSpec {
    /// A provisioned stream of `shards` shards.
    pub fn provisioned(name: String, shards: i32) -> Self {
        Self { name, mode: PROVISIONED.into(), shard_count: Some(shards) }
    }

    /// An on-demand stream.
    pub fn on_demand(name: String) -> Self {
        Self { name, mode: ON_DEMAND.into(), shard_count: None }
    }
}

impl Spec for KinesisStreamSpec {
    const KIND: &'static str = "kinesis_stream";
}

impl Handle<KinesisStreamSpec> {
    /// The stream's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The stream's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}
