//! The `usage_plan` kind's properties (its driver is the engine's `aws::usage_plan`).

use crate::{Input, Spec};
use serde::{Deserialize, Serialize};

/// A plan for one stage of one API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsagePlanSpec {
    pub name: String,
    pub api_id: Input<String>,
    pub stage: String,
    /// Requests a second per key, on average.
    pub rate_per_s: f64,
    /// Requests at once per key.
    pub burst: i32,
    /// Requests a day per key, when limited.
    pub quota_per_day: Option<i32>,
    /// The keys the plan holds (ids), sorted.
    pub api_key_ids: Vec<Input<String>>,
}

impl Spec for UsagePlanSpec {
    const KIND: &'static str = "usage_plan";
}
