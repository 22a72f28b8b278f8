//! The pipeline's database and table inside the DB instance: not an AWS resource, but part of the
//! stack, so it is created once the instance answers and dropped on `down`. The DDL is
//! idempotent; a change to it is applied in place.
//!
//! RDS creates the named database with the instance. A server that did not (the local cloud's
//! PostgreSQL stands in for many stacks' instances) gets it created here, and only a database
//! created here is dropped again.

use crate::aws::{outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded};
use crate::engine::declare::Spec;
use crate::engine::input::Input;
use crate::engine::retry::poll_until;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// How long to wait for the database to accept connections after it reports available.
const CONNECT_WAIT: Duration = Duration::from_secs(120);

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
}

impl Spec for PostgresSchemaSpec {
    const KIND: Kind = Kind::PostgresSchema;
}

pub struct PostgresSchema;

impl Driver for PostgresSchema {
    fn replace_on(&self) -> &'static [&'static str] {
        &["table"]
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: PostgresSchemaSpec = typed(&recorded.props, Kind::PostgresSchema)?;
            let Ok(client) = connect(&spec, &spec.database).await else {
                // An unreachable database shows as drift of the schema; the DB instance's own
                // refresh says whether the instance exists.
                cx.progress(format!("database {}:{} does not answer", spec.host.get(), spec.port.get()));
                return Ok(None);
            };
            let exists = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&spec.table])
                .await
                .context("checking whether the pipeline table exists")?
                .get::<_, bool>(0);
            Ok(exists.then(|| Observed { props: recorded.props.clone(), outputs: recorded.outputs.clone() }))
        })
    }
    fn create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(apply_ddl(cx, props))
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(apply_ddl(cx, props))
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: PostgresSchemaSpec = typed(&recorded.props, Kind::PostgresSchema)?;
            let created_database = recorded.outputs.get("created_database").and_then(Value::as_bool).unwrap_or(false);
            let dropped = async {
                if created_database {
                    let client = connect(&spec, MAINTENANCE_DB).await?;
                    // FORCE ends the sessions functions still hold.
                    client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&spec.database)))
                        .await?;
                } else {
                    let client = connect(&spec, &spec.database).await?;
                    client.batch_execute(&format!("DROP TABLE IF EXISTS {}", quote_ident(&spec.table))).await?;
                }
                anyhow::Ok(())
            };
            if let Err(err) = dropped.await {
                cx.progress(format!("database unreachable ({err:#}); its data goes with the instance"));
            }
            Ok(())
        })
    }
}

/// The database every PostgreSQL server has, used to create and drop the stack's own.
const MAINTENANCE_DB: &str = "postgres";

async fn apply_ddl(cx: &Cx<'_>, props: &Value) -> Result<Outputs> {
    let spec: PostgresSchemaSpec = typed(props, Kind::PostgresSchema)?;
    let created_database = ensure_database(cx, &spec).await?;
    let client = connect(&spec, &spec.database).await.context("connecting to the stack's database")?;
    client.batch_execute(&spec.ddl).await.context("creating the pipeline table")?;
    Ok(outputs([("table", json!(spec.table)), ("created_database", json!(created_database))]))
}

/// Waits for the server to answer, then creates the stack's database unless it exists.
/// Returns whether it created it.
async fn ensure_database(cx: &Cx<'_>, spec: &PostgresSchemaSpec) -> Result<bool> {
    let mut attempts = 0;
    let client = poll_until(
        &format!("database {}:{} to accept connections", spec.host.get(), spec.port.get()),
        Duration::from_secs(2),
        CONNECT_WAIT,
        || {
            attempts += 1;
            let first = attempts == 1;
            async move {
                match connect(spec, MAINTENANCE_DB).await {
                    Ok(client) => Ok(Some(client)),
                    Err(err) => {
                        if first {
                            cx.progress(format!("waiting for the database to answer ({err:#})"));
                        }
                        Ok(None)
                    }
                }
            }
        },
    )
    .await
    .map_err(|e| {
        e.context("the database never answered: on the local cloud run `scripts/local-cloud start`; on AWS check the network path")
    })?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&spec.database])
        .await
        .context("listing databases")?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&spec.database)))
            .await
            .with_context(|| format!("creating database {}", spec.database))?;
    }
    Ok(!exists)
}

/// Quotes a PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connects as the master user. Locally the cluster trusts loopback; on AWS the password comes
/// from `PGPASSWORD` in provision's own environment, never from the state.
async fn connect(spec: &PostgresSchemaSpec, database: &str) -> Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(spec.host.get())
        .port(spec.port.get().parse().context("the database port is not a number")?)
        .dbname(database)
        .user(&spec.user)
        .connect_timeout(Duration::from_secs(3));
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
