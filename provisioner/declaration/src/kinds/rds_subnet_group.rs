//! The `rds_subnet_group` kind's properties (its driver is the engine's `aws::rds_subnet_group`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// A named set of subnets in one VPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RdsSubnetGroupSpec {
    pub name: String,
    pub subnet_ids: Vec<String>,
}

impl Spec for RdsSubnetGroupSpec {
    const KIND: &'static str = "rds_subnet_group";
}

impl Handle<RdsSubnetGroupSpec> {
    /// The group's name, as DB instances refer to it.
    pub fn name(&self) -> Input<String> {
        self.output("name")
    }
}
