//! The `rds_instance` kind's properties (its driver is the engine's `aws::rds_instance`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A single-AZ PostgreSQL instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RdsInstanceSpec {
    pub identifier: String,
    pub instance_class: String,
    pub allocated_storage_gb: i32,
    pub db_name: String,
    pub master_username: String,
    pub port: i32,
    pub publicly_accessible: bool,
    /// The DB subnet group to place the instance in (a network given to the stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<Input<String>>,
    /// VPC security groups of the instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// RDS's own deletion protection: while on, no tool can delete the instance (a protected
    /// stack's database has it).
    #[serde(default)]
    pub deletion_protection: bool,
}

impl Spec for RdsInstanceSpec {
    const KIND: &'static str = "rds_instance";
}

impl Handle<RdsInstanceSpec> {
    /// The host name clients connect to.
    pub fn address(&self) -> Input<String> {
        self.output("address")
    }
    /// The port clients connect to, as a string.
    pub fn port(&self) -> Input<String> {
        self.output("port")
    }
    /// The ARN of the Secrets Manager secret holding the master password (empty when none).
    pub fn secret_arn(&self) -> Input<String> {
        self.output("secret_arn")
    }
}
