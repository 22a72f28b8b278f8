//! The `event_source_mapping` kind's properties (its driver is the engine's `aws::event_source_mapping`).

use crate::{Input, Spec};
use serde::{Deserialize, Serialize};

/// The batching and failure settings of a stream mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventSourceMappingSpec {
    pub function_name: Input<String>,
    pub event_source_arn: Input<String>,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub batch_size: i32,
    pub batching_window_s: i32,
    pub bisect_on_error: bool,
    /// -1 = retry until the record expires.
    pub maximum_retry_attempts: i32,
    /// -1 = no age limit.
    pub maximum_record_age_s: i32,
    pub report_batch_item_failures: bool,
    pub on_failure_arn: Option<Input<String>>,
    /// Whether the mapping polls its source (a disabled mapping stops the records).
    pub enabled: bool,
}

impl Spec for EventSourceMappingSpec {
    const KIND: &'static str = "event_source_mapping";
}
