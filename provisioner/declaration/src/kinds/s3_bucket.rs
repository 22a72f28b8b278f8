//! The `s3_bucket` kind's properties (its driver is the engine's `aws::s3_bucket`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// S3's longest bucket name.
pub const MAX_NAME_LEN: usize = 63;

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

/// A globally unique, valid bucket name for a stack's archive: `<stack>-archive-<account>-<region>`,
/// lowercased, with anything but letters and digits turned into single hyphens, starting and
/// ending with a letter or digit. Past 63 characters the stack part is cut and a short hash of
/// the whole name is added, so the name stays unique and the same on every run.
pub fn bucket_name(stack: &str, account_id: &str, region: &str) -> String {
    let stack = sanitize(stack);
    let tail = sanitize(&format!("archive-{account_id}-{region}"));
    let full = join(&[stack.as_str(), tail.as_str()]);
    if full.len() <= MAX_NAME_LEN {
        return full;
    }
    let hash = short_hash(&full);
    let room = MAX_NAME_LEN.saturating_sub(tail.len() + hash.len() + 2);
    let name = join(&[stack[..room.min(stack.len())].trim_end_matches('-'), hash.as_str(), tail.as_str()]);
    name[..name.len().min(MAX_NAME_LEN)].trim_end_matches('-').to_string()
}

/// Lowercase letters and digits, every other run of characters one hyphen, none at either end.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn join(parts: &[&str]) -> String {
    parts.iter().copied().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

/// Eight hex digits of the SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}
