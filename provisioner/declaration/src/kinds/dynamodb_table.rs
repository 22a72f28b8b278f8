//! The `dynamodb_table` kind's properties (its driver is the engine's `aws::dynamodb_table`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A table with string keys and, optionally, a stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynamodbTableSpec {
    pub name: String,
    pub hash_key: String,
    /// The sort (range) key, where items share a hash key; `None` (null): none.
    #[serde(default)]
    pub sort_key: Option<String>,
    /// `NEW_AND_OLD_IMAGES`, `NEW_IMAGE`, `OLD_IMAGE` or `KEYS_ONLY`; `None` (null): no stream.
    pub stream_view_type: Option<String>,
    /// DynamoDB's own deletion protection: while on, no tool can delete the table (a protected
    /// stack's tables have it).
    #[serde(default)]
    pub deletion_protection: bool,
}

impl DynamodbTableSpec {
    /// A table keyed by `hash_key` (and `sort_key`), without a stream.
    pub fn new(name: String, hash_key: &str, sort_key: Option<&str>) -> Self {
        Self {
            name,
            hash_key: hash_key.into(),
            sort_key: sort_key.map(str::to_string),
            stream_view_type: None,
            deletion_protection: false,
        }
    }
}

impl Spec for DynamodbTableSpec {
    const KIND: &'static str = "dynamodb_table";
}

impl Handle<DynamodbTableSpec> {
    /// The table's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The table's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
    /// The ARN of the table's current stream.
    pub fn stream_arn(&self) -> Input<String> {
        self.output("stream_arn")
    }
}
