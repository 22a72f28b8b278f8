//! The `sqs_event_source_mapping` kind's properties (its driver is the engine's `aws::sqs_event_source_mapping`).

use crate::{Input, Spec};
use serde::{Deserialize, Serialize};

/// A queue feeding a function in batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqsEventSourceMappingSpec {
    pub function_name: Input<String>,
    pub queue_arn: Input<String>,
    /// 1 to 10,000 messages; more than 10 needs a batching window.
    pub batch_size: i32,
    /// 0 to 300 s.
    pub batching_window_s: i32,
    /// The function answers `batchItemFailures`: only those messages are retried.
    pub report_batch_item_failures: bool,
    /// At most this many batches in flight (2 to 1000); `None` (null): no limit of its own.
    pub maximum_concurrency: Option<i32>,
    /// Whether the mapping polls the queue.
    pub enabled: bool,
}

impl Spec for SqsEventSourceMappingSpec {
    const KIND: &'static str = "sqs_event_source_mapping";
}
