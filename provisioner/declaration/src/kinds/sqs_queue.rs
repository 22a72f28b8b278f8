//! The `sqs_queue` kind's properties (its driver is the engine's `aws::sqs_queue`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A standard queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqsQueueSpec {
    pub name: String,
    pub retention_seconds: u32,
    /// How long a received message stays hidden from other consumers (0 to 43,200 s); `None`:
    /// the queue's default (30 s), not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_s: Option<u32>,
    /// Where a message goes once received too often without being deleted; `None`: nowhere,
    /// not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive: Option<Redrive>,
}

/// A redrive policy: after `max_receive_count` receives a message moves to `dead_letter_arn`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Redrive {
    pub dead_letter_arn: Input<String>,
    pub max_receive_count: u32,
}

impl SqsQueueSpec {
    /// A queue keeping messages `retention_seconds`, with the queue's default visibility and no
    /// redrive.
    pub fn new(name: String, retention_seconds: u32) -> Self {
        Self { name, retention_seconds, visibility_timeout_s: None, redrive: None }
    }
}

impl Spec for SqsQueueSpec {
    const KIND: &'static str = "sqs_queue";
}

impl Handle<SqsQueueSpec> {
    /// The queue's ARN (for IAM policies and on-failure destinations).
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The queue's URL (for SendMessage).
    pub fn url(&self) -> Input<String> {
        self.output("url")
    }
}
