//! One module per AWS resource kind, each a [`Driver`]: read, create, update, delete.
//!
//! Drivers know one service each and nothing about the engine's graph or state file. Their
//! contract: `read` finding nothing returns `Ok(None)` (drift, not an error); `lookup` finds a
//! resource by the name in its declared properties, with its tags, so the engine can decide
//! whether the stack owns it; `create` writes the stack's mark (`tags`) in the creating call where
//! the API allows, and when the name is taken adopts the resource only if it carries the mark
//! (or the user asked to adopt it), then converges it; `delete` of something already gone
//! succeeds.

pub mod dynamodb_table;
pub mod errors;
pub mod event_source_mapping;
pub mod iam_role;
pub mod kinesis_stream;
pub mod lambda_function;
pub mod lambda_permission;
pub mod postgres_schema;
pub mod rds_instance;
pub mod rds_subnet_group;
pub mod rest_api;
pub mod sqs_queue;

use crate::cloud::Cloud;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so drivers can sit behind one object-safe trait.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a resource exposes to others once it exists (ARNs, names, URLs).
pub type Outputs = Map<String, Value>;

/// What a refresh found in the cloud: the declared properties as they are now (only those the
/// API reports), and the current outputs.
#[derive(Debug, Clone)]
pub struct Observed {
    pub props: Value,
    pub outputs: Outputs,
    /// When the resource was created (Unix seconds), where the API says: tells a resource an
    /// interrupted create made from one that was there before it.
    pub created_unix: Option<u64>,
}

impl Observed {
    /// Properties and outputs, with no creation time.
    pub fn new(props: Value, outputs: Outputs) -> Self {
        Self { props, outputs, created_unix: None }
    }
}

/// What the state recorded for a resource after its last successful operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub props: Value,
    pub outputs: Outputs,
}

/// The context a driver call runs in: the clients, and the resource's id for messages.
pub struct Cx<'a> {
    pub cloud: &'a Cloud,
    pub id: &'a str,
    /// The user asked to take over a same-named resource without this stack's mark (`--adopt`).
    pub may_adopt: bool,
}

impl Cx<'_> {
    /// Reports progress on a long wait, on stderr, prefixed with the resource id.
    pub fn progress(&self, message: impl std::fmt::Display) {
        eprintln!("    {} … {message}", self.id);
    }
}

/// Create, read, update and delete for one kind of resource.
pub trait Driver: Sync {
    /// Property names whose change cannot be applied in place: the resource is replaced.
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// Properties left out of the comparison (inputs of the provisioner itself, like a zip path).
    fn ignore_in_diff(&self) -> &'static [&'static str] {
        &[]
    }
    /// True for kinds that carry the stack's ownership mark as tags (the `tags` property).
    fn takes_tags(&self) -> bool {
        false
    }
    /// Finds the resource named in `props` (declared properties, possibly with unresolved
    /// references: then it cannot be known yet and `Ok(None)` is right). Observed properties
    /// include `tags` for kinds that take tags.
    fn lookup<'a>(&'a self, _cx: &'a Cx<'a>, _props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async { Ok(None) })
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>>;
    fn create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Outputs>>;
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        recorded: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>>;
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>>;
}

/// Every kind of resource the engine can manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    IamRole,
    SqsQueue,
    KinesisStream,
    DynamodbTable,
    RdsSubnetGroup,
    RdsInstance,
    PostgresSchema,
    LambdaFunction,
    EventSourceMapping,
    RestApi,
    LambdaPermission,
}

impl Kind {
    /// The driver that manages this kind.
    pub fn driver(self) -> &'static dyn Driver {
        match self {
            Kind::IamRole => &iam_role::IamRole,
            Kind::SqsQueue => &sqs_queue::SqsQueue,
            Kind::KinesisStream => &kinesis_stream::KinesisStream,
            Kind::DynamodbTable => &dynamodb_table::DynamodbTable,
            Kind::RdsSubnetGroup => &rds_subnet_group::RdsSubnetGroup,
            Kind::RdsInstance => &rds_instance::RdsInstance,
            Kind::PostgresSchema => &postgres_schema::PostgresSchema,
            Kind::LambdaFunction => &lambda_function::LambdaFunction,
            Kind::EventSourceMapping => &event_source_mapping::EventSourceMapping,
            Kind::RestApi => &rest_api::RestApi,
            Kind::LambdaPermission => &lambda_permission::LambdaPermission,
        }
    }

    /// The name users read in plans and errors.
    pub fn label(self) -> &'static str {
        match self {
            Kind::IamRole => "IAM role",
            Kind::SqsQueue => "SQS queue",
            Kind::KinesisStream => "Kinesis stream",
            Kind::DynamodbTable => "DynamoDB table",
            Kind::RdsSubnetGroup => "DB subnet group",
            Kind::RdsInstance => "RDS instance",
            Kind::PostgresSchema => "Postgres schema",
            Kind::LambdaFunction => "Lambda function",
            Kind::EventSourceMapping => "event source mapping",
            Kind::RestApi => "REST API",
            Kind::LambdaPermission => "Lambda permission",
        }
    }
}

/// The stack's mark as declared in `props` (empty for kinds without tags).
pub fn declared_tags(props: &Value) -> std::collections::HashMap<String, String> {
    props
        .get(crate::engine::ownership::TAGS_PROPERTY)
        .and_then(Value::as_object)
        .map(|tags| tags.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// On a create that finds its name taken: goes on (to adopt) only when the existing resource
/// carries this stack's mark, or the user asked to adopt it.
pub fn ensure_adoptable(cx: &Cx<'_>, kind: Kind, name: &str, props: &Value, existing: &Observed) -> Result<()> {
    if cx.may_adopt || crate::engine::ownership::carries_mark(props, &existing.props) {
        cx.progress(format!("{} {name} already exists with this stack's mark: adopting it", kind.label()));
        return Ok(());
    }
    anyhow::bail!(
        "{} {name} already exists and does not carry this stack's mark: it was left untouched. To take it over, run          `provision up --adopt {}`",
        kind.label(),
        cx.id
    )
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
