//! The pipeline's database and table inside the DB instance: not an AWS resource, but part of the
//! stack, so it is created once the instance answers and dropped on `down`. The DDL is
//! idempotent; a change to it is applied in place.
//!
//! RDS creates the named database with the instance. A server that did not (the local cloud's
//! PostgreSQL stands in for many stacks' instances) gets it created here, marked with a comment
//! naming the stack (`owner_comment`), and only a database carrying that comment is dropped
//! again: so a run killed right after `CREATE DATABASE` leaves nothing the next `down` misses.

use crate::aws::retry::poll_until;
use crate::aws::{
    declared_tags, ensure_adoptable, outputs, typed, BoxFut, Cx, DataCount, Driver, Kind, Observed, Outputs, Recorded,
    Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::{carries_mark, marked_tags};
use anyhow::{Context, Result};
use postgres_tls::Tls;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::postgres_schema::*;

pub const KIND: Kind = Kind::new(<PostgresSchemaSpec as declaration::Spec>::KIND);

/// How long to wait for the database to accept connections after it reports available.
const CONNECT_WAIT: Duration = Duration::from_secs(120);

pub struct PostgresSchema;

impl Driver<Cloud> for PostgresSchema {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["table", "created_database"]
    }
    crate::declared_as!(PostgresSchemaSpec);
    fn label(&self) -> &'static str {
        "Postgres schema"
    }
    fn holds_data(&self) -> bool {
        true
    }
    /// Another database is another place: the table there is made anew, and the old one (with
    /// its rows) dropped, which the plan says before it happens.
    fn replace_on(&self) -> &'static [&'static str] {
        &["table", "database"]
    }
    /// The table carries the mark as its comment (JSON), written in the transaction that
    /// creates it; a database this stack created carries `owner_comment`.
    fn takes_tags(&self) -> bool {
        true
    }
    /// The CA is how to reach the database, not part of it: a corrected one is used at once,
    /// and a changed one changes nothing in the database.
    fn reach_properties(&self) -> &'static [&'static str] {
        &["ca_pem"]
    }
    fn ignore_in_diff(&self) -> &'static [&'static str] {
        &["ca_pem"]
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("database").and_then(Value::as_str).map_or(Ok(()), super::names::postgres_identifier)
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: PostgresSchemaSpec = typed(&recorded.props, KIND)?;
            let client = match connect(cx, &spec, &spec.database).await {
                Ok(client) => client,
                // A refused certificate is a cause with a fix, not a database gone.
                Err(err) if err.is::<TlsRefused>() => return Err(err),
                // An unreachable database shows as drift of the schema; the DB instance's own
                // refresh says whether the instance exists.
                Err(err) => {
                    cx.progress(format!("database {}:{} cannot be read ({err:#})", spec.host.get(), spec.port.get()));
                    return Ok(None);
                }
            };
            let columns = columns_of(&client, &spec.table).await?;
            if columns.is_empty() {
                return Ok(None); // no table
            }
            let mut props = recorded.props.clone();
            props["columns"] = json!(columns);
            props["tags"] = table_tags(&client, &spec.table).await?;
            Ok(Some(Observed::new(props, recorded.outputs.clone())))
        })
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: PostgresSchemaSpec = typed(props, KIND)?;
            if spec.host.value().is_none() || spec.port.value().is_none() {
                return Ok(None); // the instance does not exist yet
            }
            let created_database = match spec.create_database {
                true => match database_mark(cx, &spec).await? {
                    Some(ours) => ours,
                    None => return Ok(None), // no database, so no table
                },
                false => false,
            };
            let client = match connect(cx, &spec, &spec.database).await {
                Ok(client) => client,
                // A database the user brings must be there before anything is made for it: said
                // by the plan, before the 19 other resources are made.
                Err(err) if !spec.create_database => return Err(unusable(&spec, &err)),
                // Only the scratch name exists (a create killed half-way): nothing but that to drop.
                Err(_) => return Ok(created_database.then(|| found(props, &spec, json!(declared_tags(props)), true))),
            };
            let tags = match columns_of(&client, &spec.table).await?.is_empty() {
                false => table_tags(&client, &spec.table).await?,
                // No table yet: the database's own mark says whose it is.
                true if created_database => json!(declared_tags(props)),
                true => return Ok(None),
            };
            Ok(Some(found(props, &spec, tags, created_database)))
        })
    }
    /// The table is created with its mark in one transaction, which itself refuses a table
    /// already there without the mark: no "taken" answer reaches the shared path.
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move { apply_ddl(cx, props).await.map(Sent::Created) })
    }
    /// Applies the DDL again; a new ownership comment (the stack's origin changed with `state
    /// migrate`) is first written on the database this stack created.
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        recorded: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let created_database = recorded.outputs.get("created_database").and_then(Value::as_bool) == Some(true);
            if created_database && changed.iter().any(|f| f == "owner_comment") {
                let spec: PostgresSchemaSpec = typed(props, KIND)?;
                let client = connect(cx, &spec, MAINTENANCE_DB).await.context("connecting to re-mark the database")?;
                client
                    .batch_execute(&format!(
                        "COMMENT ON DATABASE {} IS {}",
                        quote_ident(&spec.database),
                        quote_literal(&spec.owner_comment)
                    ))
                    .await
                    .with_context(|| format!("re-marking database {} as the stack's", spec.database))?;
            }
            apply_ddl(cx, props).await
        })
    }
    /// The rows of the table.
    fn count_data<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async move {
            let spec: PostgresSchemaSpec = typed(&recorded.props, KIND)?;
            let client = connect(cx, &spec, &spec.database).await.context("connecting to count the rows")?;
            let counted = client
                .query_one(&format!("SELECT count(*) FROM {}", quote_ident(&spec.table)), &[])
                .await
                .with_context(|| format!("counting the rows of table {}", spec.table))?;
            Ok(Some(DataCount::Exactly(u64::try_from(counted.get::<_, i64>(0)).unwrap_or(0), "rows")))
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: PostgresSchemaSpec = typed(&recorded.props, KIND)?;
            let created_database = recorded.outputs.get("created_database").and_then(Value::as_bool).unwrap_or(false);
            let dropped = async {
                if created_database {
                    let client = connect(cx, &spec, MAINTENANCE_DB).await?;
                    // FORCE ends the sessions functions still hold.
                    for database in [spec.database.clone(), scratch_name(&spec.database)] {
                        client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&database)))
                            .await?;
                    }
                } else {
                    // A database brought by the user stays; the table goes if it is still the stack's.
                    let client = connect(cx, &spec, &spec.database).await?;
                    let mark = json!({ "tags": table_tags(&client, &spec.table).await? });
                    if carries_mark(&recorded.props, &mark) {
                        client.batch_execute(&format!("DROP TABLE IF EXISTS {}", quote_ident(&spec.table))).await?;
                    } else {
                        cx.progress(format!("table {} does not carry this stack's mark: left alone", spec.table));
                    }
                }
                anyhow::Ok(())
            };
            dropped.await.map_err(|e| {
                let what = format!(
                    "dropping the stack's database {} on {}:{}",
                    spec.database,
                    spec.host.get(),
                    spec.port.get()
                );
                match e.is::<TlsRefused>() {
                    // The refusal says what to change.
                    true => e.context(what),
                    false => e.context(format!(
                        "{what}: it must answer for `down` to remove it (on the local cloud: provision local start), \
                         then run `down` again"
                    )),
                }
            })
        })
    }
}

/// Why a database the user brings cannot be used, and what to do.
fn unusable(spec: &PostgresSchemaSpec, err: &anyhow::Error) -> anyhow::Error {
    let code = err.downcast_ref::<tokio_postgres::Error>().and_then(tokio_postgres::Error::code);
    let (host, port, database) = (spec.host.get(), spec.port.get(), &spec.database);
    if err.is::<TlsRefused>() {
        return anyhow::anyhow!("the database you bring, `{database}` on {host}:{port}, is refused: {err}");
    }
    if code == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) {
        return anyhow::anyhow!(
            "database `{database}` does not exist on {host}:{port}: create it first (CREATE DATABASE {};) or correct \
             database.url in the settings",
            quote_ident(database)
        );
    }
    anyhow::anyhow!(
        "the database you bring, `{database}` on {host}:{port} as `{}`, cannot be used ({err:#}): check database.url \
         in the settings, that the server answers from here, and PGPASSWORD",
        spec.user
    )
}

/// The database every PostgreSQL server has, used to create and drop the stack's own.
const MAINTENANCE_DB: &str = "postgres";

/// Creates (or completes) the table with its mark in one transaction, then repairs its columns.
/// A table already there is taken only with this stack's mark (or on `--adopt`).
async fn apply_ddl(cx: &Cx<'_>, props: &Value) -> Result<Outputs> {
    let spec: PostgresSchemaSpec = typed(props, KIND)?;
    let created_database = ensure_database(cx, &spec).await?;
    let client = connect(cx, &spec, &spec.database).await.context("connecting to the stack's database")?;
    if !columns_of(&client, &spec.table).await?.is_empty() {
        let existing = found(props, &spec, table_tags(&client, &spec.table).await?, created_database);
        if !carries_mark(props, &existing.props) {
            let name = format!("table {} in database {}", spec.table, spec.database);
            ensure_adoptable(cx, PostgresSchema.label(), &name, props, &existing)?;
        }
    }
    let mark = serde_json::to_string(&declared_tags(props)).context("the mark as JSON")?;
    // One simple query: one transaction, so the table never exists without its mark.
    client
        .batch_execute(&format!(
            "{}; COMMENT ON TABLE {} IS {}",
            spec.ddl,
            quote_ident(&spec.table),
            quote_literal(&mark)
        ))
        .await
        .context("creating the pipeline table")?;
    repair_columns(&client, &spec).await?;
    Ok(outputs([("table", json!(spec.table)), ("created_database", json!(created_database))]))
}

/// What a lookup found, in the shape the engine compares.
fn found(props: &Value, spec: &PostgresSchemaSpec, tags: Value, created_database: bool) -> Observed {
    let mut observed = props.clone();
    observed["tags"] = tags;
    Observed::new(observed, outputs([("table", json!(spec.table)), ("created_database", json!(created_database))]))
}

/// The mark on the table (its comment, JSON), as observed tags.
async fn table_tags(client: &tokio_postgres::Client, table: &str) -> Result<Value> {
    let comment: Option<String> = client
        .query_one("SELECT obj_description(to_regclass($1), 'pg_class')", &[&table])
        .await
        .context("reading the pipeline table's mark")?
        .get(0);
    let tags: std::collections::BTreeMap<String, String> =
        comment.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default();
    Ok(marked_tags(&tags))
}

/// Whether the stack's database exists, and if so whether this stack created it (its comment,
/// or a scratch database left by a create killed half-way). `None`: there is no database.
async fn database_mark(cx: &Cx<'_>, spec: &PostgresSchemaSpec) -> Result<Option<bool>> {
    let client = match connect(cx, spec, MAINTENANCE_DB).await {
        Ok(client) => client,
        Err(err) if err.is::<TlsRefused>() => return Err(err),
        Err(_) => return Ok(None),
    };
    let comment = client
        .query_opt(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1",
            &[&spec.database],
        )
        .await
        .context("looking up the stack's database")?
        .map(|row| row.get::<_, String>(0));
    let scratch_left = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&scratch_name(&spec.database)])
        .await
        .context("looking up the stack's database")?
        .is_some();
    Ok(match comment {
        Some(comment) => Some(comment == spec.owner_comment),
        None => scratch_left.then_some(true),
    })
}

/// Waits for the server to answer, then creates the stack's database unless it exists.
/// Returns whether the database is this stack's (created here, now or by an earlier run).
async fn ensure_database(cx: &Cx<'_>, spec: &PostgresSchemaSpec) -> Result<bool> {
    let tls = &tls(cx, spec)?;
    let mut attempts = 0;
    let client = poll_until(
        &format!("database {}:{} to accept connections", spec.host.get(), spec.port.get()),
        Duration::from_secs(2),
        CONNECT_WAIT,
        || {
            attempts += 1;
            let first = attempts == 1;
            async move {
                match connect_over(tls, spec, MAINTENANCE_DB).await {
                    Ok(client) => Ok(Some(client)),
                    // Waiting does not make a certificate trusted.
                    Err(err) if err.is::<TlsRefused>() => Err(err),
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
    .map_err(|e| match e.is::<TlsRefused>() {
        true => e,
        false => e.context(
            "the database never answered: on the local cloud run `provision local start`; on AWS check the network path",
        ),
    })?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&spec.database])
        .await
        .context("listing databases")?
        .is_some();
    if !exists && !spec.create_database {
        anyhow::bail!(
            "database `{}` does not exist on {}:{}: create it first (CREATE DATABASE {};) or correct database.url \
             in the settings. Nothing was created in it",
            spec.database,
            spec.host.get(),
            spec.port.get(),
            quote_ident(&spec.database)
        );
    }
    if !exists {
        // Made under a name only provision uses, marked, then renamed: the database appears under
        // its real name with its mark in one step, and a run killed half-way leaves only the
        // temporary name, which the next `down` (or this create) clears.
        let scratch = scratch_name(&spec.database);
        // A killed run's CREATE DATABASE may still be finishing on the server (its session
        // outlives the client for a moment): the name is then briefly taken. Try again shortly.
        let mut attempt = 0;
        loop {
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&scratch))).await?;
            match client.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&scratch))).await {
                Ok(()) => break,
                Err(e) if attempt < 20 && is_name_taken(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("creating database {}", spec.database)),
            }
        }
        client
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                quote_ident(&scratch),
                quote_literal(&spec.owner_comment)
            ))
            .await
            .with_context(|| format!("marking database {} as the stack's", spec.database))?;
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&scratch),
                quote_ident(&spec.database)
            ))
            .await
            .with_context(|| format!("naming database {}", spec.database))?;
    }
    // A database this stack created earlier (its comment says so) is still its own to drop.
    let owned = client
        .query_one(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') = $2 FROM pg_database WHERE datname = $1",
            &[&spec.database, &spec.owner_comment],
        )
        .await
        .context("reading the database's mark")?
        .get::<_, bool>(0);
    Ok(owned)
}

/// The columns of `table` and their types (empty when there is no such table).
async fn columns_of(client: &tokio_postgres::Client, table: &str) -> Result<BTreeMap<String, String>> {
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .await
        .context("reading the pipeline table's columns")?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Adds declared columns the table lacks and restores declared types that were changed. Columns
/// added this way accept NULL (rows already there have no value); extra columns are left alone.
async fn repair_columns(client: &tokio_postgres::Client, spec: &PostgresSchemaSpec) -> Result<()> {
    let present = columns_of(client, &spec.table).await?;
    let table = quote_ident(&spec.table);
    for (column, data_type) in &spec.columns {
        let statement = match present.get(column) {
            None => format!("ALTER TABLE {table} ADD COLUMN {} {data_type}", quote_ident(column)),
            Some(found) if found != data_type => format!(
                "ALTER TABLE {table} ALTER COLUMN {0} TYPE {data_type} USING {0}::{data_type}",
                quote_ident(column)
            ),
            Some(_) => continue,
        };
        client.batch_execute(&statement).await.with_context(|| format!("repairing the table: {statement}"))?;
    }
    Ok(())
}

/// True when PostgreSQL refuses a name another session is creating or holds right now.
fn is_name_taken(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.code().is_some_and(|c| *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_DATABASE)
}

/// The name a database is created under before it is marked and renamed. Only provision makes
/// databases with this suffix.
fn scratch_name(database: &str) -> String {
    format!("{database}__provisioning")
}

/// Quotes a PostgreSQL string literal.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Quotes a PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The server's certificate was refused, or the server offers no TLS where it must: a cause and
/// its fix, not something waiting mends.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TlsRefused(String);

/// How `provision` reaches the database, as downstream does: libpq's `verify-full` against the
/// CA the program named, else against Amazon RDS's CAs and the system's roots; on the local cloud
/// with no CA named, `prefer` (its PostgreSQL's certificate is self-signed).
fn tls(cx: &Cx<'_>, spec: &PostgresSchemaSpec) -> Result<Tls> {
    Tls::for_database(spec.ca_pem.as_deref(), cx.cloud.target.is_local()).map_err(|e| match spec.ca_pem {
        Some(_) => TlsRefused(format!("{e}: correct database.ca_file in the settings")).into(),
        None => anyhow::anyhow!("{e}"),
    })
}

/// Connects as the master user, over TLS as [`tls`] says. Locally the cluster trusts loopback;
/// on AWS the password comes from `PGPASSWORD` in provision's own environment, never from the
/// state.
async fn connect(cx: &Cx<'_>, spec: &PostgresSchemaSpec, database: &str) -> Result<tokio_postgres::Client> {
    connect_over(&tls(cx, spec)?, spec, database).await
}

/// [`connect`] over `tls` made once (a wait that connects again and again).
async fn connect_over(tls: &Tls, spec: &PostgresSchemaSpec, database: &str) -> Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(spec.host.get())
        .port(spec.port.get().parse().context("the database port is not a number")?)
        .dbname(database)
        .user(&spec.user)
        .connect_timeout(Duration::from_secs(3))
        .ssl_mode(tls.ssl_mode());
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    match config.connect(tls.connector()).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Ok(client)
        }
        Err(err) => {
            let error = anyhow::Error::from(err);
            let text = format!("{error:#}");
            // Any failed handshake is a cause to mend, not a server still starting.
            let advice = tls.advice(&text).or_else(|| {
                text.contains("TLS handshake").then(|| {
                    "the TLS handshake with the database failed: check that the server's TLS is set up (ssl = on, \
                     its certificate and key)"
                        .to_string()
                })
            });
            match advice {
                Some(advice) => {
                    let (host, port) = (spec.host.get(), spec.port.get());
                    Err(TlsRefused(format!("connecting to {host}:{port}: {text}: {advice}")).into())
                }
                None => Err(error),
            }
        }
    }
}
