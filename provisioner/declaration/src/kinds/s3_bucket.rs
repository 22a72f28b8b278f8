//! The `s3_bucket` kind's properties (its driver is the engine's `aws::s3_bucket`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A private, encrypted bucket whose objects may expire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3BucketSpec {
    /// The bucket's name, unique across all AWS accounts (see [`bucket_name`]).
    pub name: String,
    /// Days after which objects are deleted (a lifecycle rule); `None` keeps them. Serialized as
    /// `null` when `None`, so removing it is a change.
    pub expire_after_days: Option<i32>,
    /// All four Block Public Access settings are on. Always declared `true`.
    pub public_access_blocked: bool,
    /// Default encryption (SSE-S3) is set. Always declared `true`.
    pub encrypted: bool,
}

impl S3BucketSpec {
    /// A private, encrypted bucket named `name` whose objects expire after `expire_after_days`.
    pub fn new(name: impl Into<String>, expire_after_days: Option<i32>) -> Self {
        Self { name: name.into(), expire_after_days, public_access_blocked: true, encrypted: true }
    }
}

impl Spec for S3BucketSpec {
    const KIND: &'static str = "s3_bucket";
}

impl Handle<S3BucketSpec> {
    /// The bucket's ARN (`arn:aws:s3:::<name>`), for IAM policies and Firehose destinations.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The bucket's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}
