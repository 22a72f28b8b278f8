//! The `postgres_schema` kind's properties (its driver is the engine's `aws::postgres_schema`).

use crate::{Input, Spec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the database is, and the DDL to run there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostgresSchemaSpec {
    pub host: Input<String>,
    pub port: Input<String>,
    pub database: String,
    pub user: String,
    /// The table the DDL creates (checked by refresh, dropped by delete).
    pub table: String,
    pub ddl: String,
    /// The table's columns and their types, as PostgreSQL reports them: a refresh compares the
    /// real table with these, and an update adds a missing column or restores a changed type.
    pub columns: BTreeMap<String, String>,
    /// Create the database when it is missing (the stack's own database on the local cloud's
    /// PostgreSQL); `false` for a database the user brings, which must exist.
    #[serde(default = "yes")]
    pub create_database: bool,
    /// The comment put on a database this stack creates: its ownership mark.
    pub owner_comment: String,
    /// The CA (PEM) the server's certificate must chain to, for a database with a CA of its own.
    /// Without it the engine trusts Amazon RDS's CAs and the system's roots; on the local cloud
    /// it encrypts without verifying. The connection is always libpq's `verify-full` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

fn yes() -> bool {
    true
}

impl Spec for PostgresSchemaSpec {
    const KIND: &'static str = "postgres_schema";
}
