//! The `firehose_delivery_stream` kind's properties (its driver is the engine's `aws::firehose_delivery_stream`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A delivery stream reading a Kinesis stream and writing batches of its records to S3.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirehoseDeliveryStreamSpec {
    /// The delivery stream's name. Changing it replaces the delivery stream.
    pub name: String,
    /// The Kinesis stream read (its ARN). Changing it replaces the delivery stream.
    pub source_stream_arn: Input<String>,
    /// The role Firehose assumes to read the Kinesis stream. Changing it replaces the delivery stream.
    pub source_role_arn: Input<String>,
    /// The bucket written (its ARN, `arn:aws:s3:::<name>`).
    pub bucket_arn: Input<String>,
    /// The role Firehose assumes to write to the bucket (may be the source role).
    pub role_arn: Input<String>,
    /// The key prefix of delivered objects, e.g. `records/year=!{timestamp:yyyy}/month=!{timestamp:MM}/`.
    pub prefix: String,
    /// The key prefix of records that failed, e.g. `errors/!{firehose:error-output-type}/`.
    /// Firehose requires one when `prefix` has expressions.
    pub error_prefix: String,
    /// Buffer size before a delivery, 1 to 128 MB.
    pub buffer_size_mb: i32,
    /// Buffer time before a delivery, 0 to 900 s.
    pub buffer_interval_s: i32,
    /// `UNCOMPRESSED` or `GZIP` (or another format Firehose knows: `ZIP`, `Snappy`, `HADOOP_SNAPPY`).
    pub compression: String,
}

impl Spec for FirehoseDeliveryStreamSpec {
    const KIND: &'static str = "firehose_delivery_stream";
}

impl Handle<FirehoseDeliveryStreamSpec> {
    /// The delivery stream's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
    /// The delivery stream's name.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}
