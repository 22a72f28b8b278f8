//! One module per AWS resource kind, each implementing the engine's [`Driver`] trait on the AWS
//! clients ([`Cloud`]): read, lookup, create, update, delete. [`registry`] lists them: adding a
//! kind is one file here plus one line there.
//!
//! Drivers know one service each and nothing about the engine's graph or state file. They supply
//! calls; the engine decides. Creating goes through the engine's one create-or-adopt path
//! (`engine::lifecycle`): a driver sends the create with the stack's mark where the API takes
//! tags (`send_create`, classifying "name taken or busy" as [`Sent::Taken`]), finds by name
//! (`lookup`), waits out a deletion in progress (`wait_deleted`), waits until the resource is
//! usable (`ready`) and applies what differs (`update`, the mark included). Reads and deletes
//! follow one rule each, in [`errors::found`] and [`errors::deleted`]: "not found" is `None` for
//! a read and done for a delete.

pub mod api_key;
pub mod apigateway_tags;
pub mod cloudwatch_alarm;
pub mod declared;
pub mod dynamodb_table;
pub mod endpoint;
pub mod errors;
pub mod event_source_mapping;
pub mod firehose_delivery_stream;
pub mod iam_role;
pub mod kinesis_stream;
pub mod kinesis_stream_consumer;
pub mod lambda_function;
pub mod lambda_permission;
pub mod log_group;
pub mod names;
pub mod postgres_schema;
pub mod rds_instance;
pub mod rds_subnet_group;
pub mod rest_api;
pub mod retry;
pub mod s3_bucket;
pub mod services;
pub mod sns_subscription;
pub mod sns_topic;
pub mod sqs_event_source_mapping;
pub mod sqs_queue;
pub mod usage_plan;

use crate::cloud::Cloud;
use crate::engine::driver::{self, Registry};
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::OnceLock;

pub use crate::engine::driver::{BoxFut, DataCount, Driver, Kind, Observed, Outputs, Recorded, Sent, Teardown};
pub use crate::engine::lifecycle::ensure_adoptable;

/// The context a driver call runs in, on AWS.
pub type Cx<'a> = driver::Cx<'a, Cloud>;

/// Every kind of resource this provisioner manages on AWS: one line per kind.
pub fn registry() -> &'static Registry<Cloud> {
    static REGISTRY: OnceLock<Registry<Cloud>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::new(&[
            &iam_role::IamRole,
            &sqs_queue::SqsQueue,
            &kinesis_stream::KinesisStream,
            &dynamodb_table::DynamodbTable,
            &rds_subnet_group::RdsSubnetGroup,
            &rds_instance::RdsInstance,
            &postgres_schema::PostgresSchema,
            &lambda_function::LambdaFunction,
            &event_source_mapping::EventSourceMapping,
            &rest_api::RestApi,
            &lambda_permission::LambdaPermission,
            &s3_bucket::S3Bucket,
            &firehose_delivery_stream::FirehoseDeliveryStream,
            &sqs_event_source_mapping::SqsEventSourceMapping,
            &sns_topic::SnsTopic,
            &sns_subscription::SnsSubscription,
            &cloudwatch_alarm::CloudwatchAlarm,
            &kinesis_stream_consumer::KinesisStreamConsumer,
            &log_group::LogGroup,
            &api_key::ApiKey,
            &usage_plan::UsagePlan,
        ])
    })
}

/// The stack's mark as declared in `props` (empty for kinds without tags).
pub fn declared_tags(props: &Value) -> std::collections::HashMap<String, String> {
    props
        .get(crate::engine::mark::TAGS_PROPERTY)
        .and_then(Value::as_object)
        .map(|tags| tags.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// Reads a driver's typed properties out of resolved JSON.
pub fn typed<T: DeserializeOwned>(props: &Value, kind: Kind) -> Result<T> {
    serde_json::from_value(props.clone())
        .with_context(|| format!("{} properties do not match the driver's schema: {props}", kind.label()))
}

/// One string property, for lookups by name: they read only what names the resource, so other
/// properties may still be references or outputs not yet known.
pub fn name_prop<'a>(props: &'a Value, key: &str, kind: Kind) -> Result<&'a str> {
    props
        .get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("{} properties have no `{key}`: {props}", kind.label()))
}

/// Builds an [`Outputs`] map from `(name, value)` pairs.
pub fn outputs<const N: usize>(pairs: [(&str, Value); N]) -> Outputs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A string output recorded by an earlier create, or an error naming what is missing.
pub fn recorded_output<'a>(recorded: &'a Recorded, name: &str) -> Result<&'a str> {
    recorded.outputs.get(name).and_then(Value::as_str).with_context(|| {
        format!("the state has no `{name}` output for this resource: run `provision up` to recreate it")
    })
}
