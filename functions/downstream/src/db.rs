//! Postgres: the connection settings ([`settings_from_env`]), the batch insert ([`Rows`],
//! [`insert_sql`]) and the connection kept across invocations ([`Database`]).
//!
//! A batch is one statement: `INSERT ... SELECT * FROM UNNEST(<six arrays>) ON CONFLICT (id) DO
//! NOTHING RETURNING latency_ms`, so it lands whole or not at all, a redelivered record is not
//! inserted twice, and only the rows inserted now are returned for the latency metric.
//!
//! **Architecture Invariant:** any error drops the connection; the next use reconnects.

use postgres_tls::Tls;
use record::{latency_ms, now_ms, StampedRecord, SCHEMA_SQL, TABLE};
use std::error::Error as _;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Statement};

/// Longest wait for the TCP connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a whole session setup (connect, authenticate, schema, prepare).
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection settings from `DB_HOST`, `DB_PORT` (default 5432), `DB_NAME`, `DB_USER` and the
/// optional `DB_PASSWORD`, read through `var` (the process environment in production).
pub fn settings_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let required = |name: &str| var(name).ok_or(format!("environment variable {name} is not set"));
    let port = match var("DB_PORT") {
        None => 5432,
        Some(port) => port.parse().map_err(|_| format!("environment variable DB_PORT is not a port: {port:?}"))?,
    };
    let mut config = Config::new();
    config
        .host(required("DB_HOST")?)
        .port(port)
        .dbname(required("DB_NAME")?)
        .user(required("DB_USER")?)
        .application_name("downstream")
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = var("DB_PASSWORD") {
        config.password(password);
    }
    Ok(config)
}

/// The insert statement (see the module documentation); parameters are [`Rows`]' six columns.
pub fn insert_sql() -> String {
    format!(
        "INSERT INTO {TABLE} \
         (id, message, client_timestamp, received_at_ms, committed_at_ms, latency_ms) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) \
         ON CONFLICT (id) DO NOTHING RETURNING latency_ms"
    )
}

/// A batch as the insert's six column arrays.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    ids: Vec<String>,
    messages: Vec<String>,
    client_timestamps: Vec<i64>,
    received_at_ms: Vec<i64>,
    committed_at_ms: Vec<i64>,
    latencies_ms: Vec<i64>,
}

impl Rows {
    /// The rows for `records`, all committed at `committed_at_ms`.
    pub fn new(records: &[StampedRecord], committed_at_ms: i64) -> Self {
        let mut rows = Rows::default();
        for record in records {
            rows.ids.push(record.id.clone());
            rows.messages.push(record.message.clone());
            rows.client_timestamps.push(record.timestamp);
            rows.received_at_ms.push(record.received_at_ms);
            rows.committed_at_ms.push(committed_at_ms);
            rows.latencies_ms.push(latency_ms(record.received_at_ms, committed_at_ms));
        }
        rows
    }
}

/// An open connection with the insert prepared on it.
struct Session {
    client: Client,
    insert: Statement,
}

impl Session {
    /// Inserts the records (committed now) and returns the latencies of the rows inserted.
    async fn insert(&self, records: &[StampedRecord]) -> Result<Vec<i64>, tokio_postgres::Error> {
        let rows = Rows::new(records, now_ms());
        let inserted = self
            .client
            .query(
                &self.insert,
                &[
                    &rows.ids,
                    &rows.messages,
                    &rows.client_timestamps,
                    &rows.received_at_ms,
                    &rows.committed_at_ms,
                    &rows.latencies_ms,
                ],
            )
            .await?;
        inserted.iter().map(|row| row.try_get(0)).collect()
    }
}

/// Where the credentials come from when they can change (a Secrets Manager secret): asked again
/// when the server refuses the ones in hand, so a rotated or corrected secret is taken up
/// without a cold start. Answers `(user, password)`.
pub type CredentialSource = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Option<String>, String), String>> + Send>>
        + Send
        + Sync,
>;

/// The database, with one connection opened lazily and kept across invocations.
pub struct Database {
    config: std::sync::Mutex<Config>,
    tls: Tls,
    session: Mutex<Option<Session>>,
    credentials: Option<CredentialSource>,
}

impl Database {
    /// A database reached with `config` over `tls` (which sets the config's `sslmode`); nothing
    /// is connected yet.
    pub fn new(mut config: Config, tls: Tls) -> Self {
        config.ssl_mode(tls.ssl_mode());
        Self { config: std::sync::Mutex::new(config), tls, session: Mutex::new(None), credentials: None }
    }

    /// The same, with credentials read again from `source` when the server refuses them.
    pub fn with_credentials(config: Config, tls: Tls, source: CredentialSource) -> Self {
        Self { credentials: Some(source), ..Self::new(config, tls) }
    }

    fn config(&self) -> Config {
        self.config.lock().expect("database config").clone()
    }

    /// Inserts the records in one statement and returns the latencies of the rows inserted now
    /// (records already in the table are skipped). A connection found closed on use is
    /// replaced once, as the statement is idempotent.
    pub async fn insert(&self, records: &[StampedRecord]) -> Result<Vec<i64>, String> {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| s.client.is_closed()) {
            *slot = None;
        }
        let reused = slot.is_some();
        let session = match slot.take() {
            Some(session) => session,
            None => self.connect().await?,
        };
        match session.insert(records).await {
            Ok(latencies) => {
                *slot = Some(session);
                Ok(latencies)
            }
            Err(e) if reused && e.is_closed() => {
                tracing::warn!(error = %chain(&e), "kept Postgres connection was closed; reconnecting");
                let session = self.connect().await?;
                let latencies = session.insert(records).await.map_err(|e| self.failed(&e))?;
                *slot = Some(session);
                Ok(latencies)
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    fn failed(&self, e: &tokio_postgres::Error) -> String {
        format!("inserting into Postgres table {TABLE} at {}: {}", self.target(), chain(e))
    }

    fn target(&self) -> String {
        let config = self.config();
        let host = config.get_hosts().first().map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[allow(unreachable_patterns)]
            other => format!("{other:?}"),
        });
        format!(
            "{}:{}/{}",
            host.unwrap_or_default(),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or_default()
        )
    }

    /// Opens a session; when the server refuses the credentials and they come from a secret,
    /// reads the secret again and tries once more with what it holds now.
    async fn connect(&self) -> Result<Session, String> {
        match self.open().await {
            Err((message, true)) if self.credentials.is_some() => {
                tracing::warn!(error = %message, "the database refused the credentials: reading the secret again");
                let source = self.credentials.as_ref().expect("a credential source");
                let (user, password) = source().await?;
                {
                    let mut config = self.config.lock().expect("database config");
                    if let Some(user) = user {
                        config.user(user);
                    }
                    config.password(password);
                }
                self.open().await.map_err(|(message, _)| message)
            }
            opened => opened.map_err(|(message, _)| message),
        }
    }

    /// Opens a session: connect, make sure the table exists, prepare the insert. An error says
    /// whether the server refused the credentials.
    async fn open(&self) -> Result<Session, (String, bool)> {
        let config = self.config();
        let setup = async {
            let (client, connection) = config.connect(self.tls.connector()).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %chain(&e), "Postgres connection ended");
                }
            });
            // The provisioner creates the table; this only helps a fresh database. Concurrent
            // cold starts can race on CREATE TABLE IF NOT EXISTS, so a failure is not fatal:
            // preparing the insert says whether the table is there.
            if let Err(e) = client.batch_execute(SCHEMA_SQL).await {
                tracing::warn!(error = %chain(&e), "creating table {TABLE} failed");
            }
            let insert = client.prepare(&insert_sql()).await?;
            Ok::<_, tokio_postgres::Error>(Session { client, insert })
        };
        match tokio::time::timeout(SETUP_TIMEOUT, setup).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) => {
                let refused = e.code().is_some_and(|code| {
                    [SqlState::INVALID_PASSWORD, SqlState::INVALID_AUTHORIZATION_SPECIFICATION].contains(code)
                });
                let error = chain(&e);
                let advice = self.tls.advice(&error).map(|advice| format!(" ({advice})")).unwrap_or_default();
                Err((format!("connecting to Postgres at {}: {error}{advice}", self.target()), refused))
            }
            Err(_) => Err((
                format!("connecting to Postgres at {}: no session within {SETUP_TIMEOUT:?}", self.target()),
                false,
            )),
        }
    }
}

/// An error with its sources: tokio-postgres says only "db error" at the top.
fn chain(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn settings_come_from_the_environment() {
        let config = settings_from_env(env(&[
            ("DB_HOST", "localhost"),
            ("DB_PORT", "15432"),
            ("DB_NAME", "pipeline"),
            ("DB_USER", "pipeline"),
            ("DB_PASSWORD", "secret"),
        ]))
        .unwrap();
        assert_eq!(config.get_ports(), [15432]);
        assert_eq!(config.get_dbname(), Some("pipeline"));
        assert_eq!(config.get_user(), Some("pipeline"));
        assert_eq!(config.get_password(), Some(&b"secret"[..]));
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    }

    #[test]
    fn port_defaults_and_password_is_optional() {
        let config = settings_from_env(env(&[("DB_HOST", "h"), ("DB_NAME", "d"), ("DB_USER", "u")])).unwrap();
        assert_eq!(config.get_ports(), [5432]);
        assert_eq!(config.get_password(), None);
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let error = settings_from_env(env(&[("DB_HOST", "h"), ("DB_USER", "u")])).unwrap_err();
        assert_eq!(error, "environment variable DB_NAME is not set");
        let error = settings_from_env(env(&[("DB_HOST", "h"), ("DB_NAME", "d"), ("DB_USER", "u"), ("DB_PORT", "x")]))
            .unwrap_err();
        assert!(error.contains("DB_PORT"), "{error}");
    }

    #[test]
    fn rows_carry_commit_time_and_latency() {
        let records = [
            record::Record { id: "a".into(), message: "m".into(), timestamp: 7 }.stamp(1_000),
            record::Record { id: "b".into(), message: "n".into(), timestamp: 8 }.stamp(1_600),
        ];
        let rows = Rows::new(&records, 1_500);
        assert_eq!(rows.ids, ["a", "b"]);
        assert_eq!(rows.messages, ["m", "n"]);
        assert_eq!(rows.client_timestamps, [7, 8]);
        assert_eq!(rows.received_at_ms, [1_000, 1_600]);
        assert_eq!(rows.committed_at_ms, [1_500, 1_500]);
        assert_eq!(rows.latencies_ms, [500, 0]);
    }

    /// The server the test below uses: the one DB_HOST, DB_PORT, DB_NAME and DB_USER name, else
    /// the local cloud's PostgreSQL (`scripts/local-cloud start`; `scripts/test` starts it).
    fn test_server(name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| match name {
            "DB_HOST" => Some("127.0.0.1".into()),
            "DB_PORT" => Some(std::env::var("PG_PORT").unwrap_or_else(|_| "15432".into())),
            "DB_NAME" | "DB_USER" => Some("pipeline".into()),
            _ => None,
        })
    }

    /// TLS as on the local cloud, where no CA is named: `prefer`.
    fn local_tls() -> Tls {
        Tls::from_env(|name| (name == "DB_TLS").then(|| "prefer".to_string())).unwrap()
    }

    #[tokio::test]
    async fn inserts_once_into_a_real_postgres() {
        let config = settings_from_env(test_server).unwrap();
        let (admin, connection) = config.connect(tokio_postgres::NoTls).await.unwrap_or_else(|e| {
            panic!("no PostgreSQL at {:?}: start the local cloud (scripts/local-cloud start): {e}", config.get_ports())
        });
        tokio::spawn(connection);
        admin.batch_execute(SCHEMA_SQL).await.unwrap();
        let db = Database::new(config, local_tls());
        let run = now_ms();
        let record = |id: &str, received_at_ms| {
            record::Record { id: format!("db-test-{run}-{id}"), message: "m".into(), timestamp: 1 }
                .stamp(received_at_ms)
        };
        let batch = [record("a", run - 100), record("b", run + 60_000)];
        let latencies = db.insert(&batch).await.unwrap();
        assert_eq!(latencies.len(), 2);
        assert!(latencies[0] >= 100, "{latencies:?}");
        assert_eq!(latencies[1], 0, "a receive time in the future counts as 0");
        // Redelivery, plus one new record: only the new one is inserted.
        let again = [batch[0].clone(), record("c", run)];
        assert_eq!(db.insert(&again).await.unwrap().len(), 1);

        // The server ends the kept connection (idle timeout, restart): the next insert reconnects.
        let pid: i32 = {
            let slot = db.session.lock().await;
            let client = &slot.as_ref().unwrap().client;
            client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
        };
        let (killer, connection) = db.config().connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        killer.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(db.insert(&[record("d", run)]).await.unwrap().len(), 1);
    }

    #[test]
    fn insert_is_one_idempotent_statement_returning_latencies() {
        let sql = insert_sql();
        assert!(sql.starts_with("INSERT INTO records (id, message, client_timestamp, received_at_ms, committed_at_ms, latency_ms) SELECT * FROM UNNEST("));
        assert!(sql.ends_with("ON CONFLICT (id) DO NOTHING RETURNING latency_ms"));
        assert_eq!(sql.matches('$').count(), 6);
    }
}
