//! Watching rows arrive in the stack's Postgres table: the connection ([`connect`]), the
//! progress line on stderr every [`PROGRESS_EVERY`] while the load runs ([`progress`]), the
//! wait after it until every accepted record has a row or the timeout passes ([`wait`]), and
//! reading the run's rows back ([`rows`]). A run's rows are those whose id starts with
//! `<run id>-` (run ids hold only letters, digits and '-', so `LIKE` needs no escaping).

use super::load::Counters;
use anyhow::{Context, Result};
use postgres_tls::Tls;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::Client;

/// How often progress is printed.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often the row count is polled while waiting (the end is seen within this).
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Where the stack's rows are.
#[derive(Debug, Clone)]
pub struct Database {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    /// The CA the server's certificate must chain to, when the stack names one (downstream's
    /// `DB_CA_PEM`).
    pub ca_pem: Option<String>,
    /// On the local cloud: TLS without verification when no CA is named, as downstream there.
    pub local: bool,
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "postgres://{}@{}:{}/{}", self.user, self.host, self.port, self.name)
    }
}

/// Connects to the stack's database (password from `PGPASSWORD`, as `provision up` does; TLS
/// verified as downstream does) and checks that the table is there.
pub async fn connect(db: &Database) -> Result<Client> {
    let tls = Tls::for_database(db.ca_pem.as_deref(), db.local).map_err(anyhow::Error::msg)?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&db.host)
        .port(db.port)
        .dbname(&db.name)
        .user(&db.user)
        .application_name("provision-bench")
        .connect_timeout(Duration::from_secs(5))
        .ssl_mode(tls.ssl_mode());
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    let (client, connection) = config.connect(tls.connector()).await.map_err(anyhow::Error::from).map_err(|err| {
        let cause = tls.advice(&format!("{err:#}")).unwrap_or_else(|| {
            "Locally: is PostgreSQL running (`provision local start`)? On AWS the instance is private: run the \
             benchmark from inside its VPC, with PGPASSWORD set"
                .into()
        });
        err.context(format!("connecting to the stack's database {db} to watch rows arrive. {cause}"))
    })?;
    tokio::spawn(connection);
    client
        .execute(&format!("SELECT 1 FROM {} WHERE false", record::TABLE), &[])
        .await
        .with_context(|| format!("reading table {} in {db}: run `provision up` to create it", record::TABLE))?;
    Ok(client)
}

/// The `LIKE` pattern of a run's ids.
pub fn pattern(run_id: &str) -> String {
    format!("{run_id}-%")
}

/// How many rows of the run have arrived.
pub async fn arrived(client: &Client, run_id: &str) -> Result<u64> {
    let sql = format!("SELECT count(*) FROM {} WHERE id LIKE $1", record::TABLE);
    let row = client.query_one(&sql, &[&pattern(run_id)]).await.context("counting the run's rows")?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// A row of the run.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub received_at_ms: i64,
    pub committed_at_ms: i64,
    pub latency_ms: i64,
}

/// Every row of the run.
pub async fn rows(client: &Client, run_id: &str) -> Result<Vec<Row>> {
    let sql = format!("SELECT id, received_at_ms, committed_at_ms, latency_ms FROM {} WHERE id LIKE $1", record::TABLE);
    let rows = client.query(&sql, &[&pattern(run_id)]).await.context("reading the run's rows")?;
    Ok(rows
        .iter()
        .map(|r| Row { id: r.get(0), received_at_ms: r.get(1), committed_at_ms: r.get(2), latency_ms: r.get(3) })
        .collect())
}

/// Prints a progress line every [`PROGRESS_EVERY`] until the load is done.
pub async fn progress(client: Arc<Client>, run_id: String, counters: Arc<Counters>) {
    let start = Instant::now();
    let mut ticker = tokio::time::interval_at(start + PROGRESS_EVERY, PROGRESS_EVERY);
    let (mut last_sent, mut last_arrived) = (0, 0);
    loop {
        ticker.tick().await;
        if counters.done.load(Ordering::SeqCst) {
            return;
        }
        let sent = counters.sent.load(Ordering::Relaxed);
        let arrived = arrived(&client, &run_id).await.unwrap_or(last_arrived);
        let every = PROGRESS_EVERY.as_secs_f64();
        eprintln!(
            "  {:5.1} s  sent {sent} ({:.1}/s)  accepted {}  rejected {}  arrived {arrived}/{} ({:.1}/s)",
            start.elapsed().as_secs_f64(),
            (sent - last_sent) as f64 / every,
            counters.accepted.load(Ordering::Relaxed),
            counters.rejected.load(Ordering::Relaxed),
            counters.accepted_records.load(Ordering::Relaxed),
            arrived.saturating_sub(last_arrived) as f64 / every,
        );
        (last_sent, last_arrived) = (sent, arrived);
    }
}

/// How the wait ended.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    /// Every accepted record has a row.
    pub complete: bool,
    pub waited: Duration,
}

/// Waits until every id in `accepted` has a row, printing progress, or until `timeout`.
pub async fn wait(client: &Client, run_id: &str, accepted: &[String], timeout: Duration) -> Result<Drained> {
    let start = Instant::now();
    let expected = accepted.len() as u64;
    let mut next_progress = start + PROGRESS_EVERY;
    let mut last = (start, arrived(client, run_id).await?);
    loop {
        let count = arrived(client, run_id).await?;
        // The count can reach the expected number with rows of rejected requests while an
        // accepted one is still missing: only the ids themselves tell.
        if count >= expected && missing(accepted, &ids(client, run_id).await?).is_empty() {
            return Ok(Drained { complete: true, waited: start.elapsed() });
        }
        let now = Instant::now();
        if now - start >= timeout {
            return Ok(Drained { complete: false, waited: start.elapsed() });
        }
        if now >= next_progress {
            let rate = count.saturating_sub(last.1) as f64 / (now - last.0).as_secs_f64();
            eprintln!(
                "  drain {:5.1} s  arrived {count}/{expected} ({:.1} %)  {rate:.1}/s  gives up in {:.0} s",
                (now - start).as_secs_f64(),
                100.0 * count as f64 / expected.max(1) as f64,
                timeout.saturating_sub(now - start).as_secs_f64()
            );
            last = (now, count);
            next_progress = now + PROGRESS_EVERY;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn ids(client: &Client, run_id: &str) -> Result<HashSet<String>> {
    Ok(rows(client, run_id).await?.into_iter().map(|r| r.id).collect())
}

/// The ids of `accepted` that have no row among `arrived`, in the order given.
pub fn missing(accepted: &[String], arrived: &HashSet<String>) -> Vec<String> {
    accepted.iter().filter(|id| !arrived.contains(*id)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keeps_the_order_of_the_accepted_ids() {
        let accepted: Vec<String> = ["a-1", "a-2", "a-3", "a-4"].map(String::from).into();
        let arrived: HashSet<String> = ["a-2", "a-4", "a-9"].map(String::from).into();
        assert_eq!(missing(&accepted, &arrived), ["a-1", "a-3"]);
        assert!(missing(&[], &arrived).is_empty());
    }

    #[test]
    fn a_run_pattern_does_not_match_a_longer_run_id() {
        assert_eq!(pattern("bench-17"), "bench-17-%");
        assert_eq!(
            Database { host: "h".into(), port: 1, name: "d".into(), user: "u".into(), ca_pem: None, local: true }
                .to_string(),
            "postgres://u@h:1/d"
        );
    }
}
