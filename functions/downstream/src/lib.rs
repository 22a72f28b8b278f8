//! The host of `downstream`: the Lambda runtime, Postgres, the CloudWatch metric, the
//! dead-letter queue, logging. The function's own logic (which stream records hold valid
//! records) is the binary's `image` module, handed to [`run`] as a plain function pointer in a
//! [`Logic`]. The split is for hot-swap speed, as in `upstream`: an edit to the logic recompiles
//! only the binary's small crate, not the runtime's and the SDK's generic code instantiated here.
//!
//! Each batch: the logic reads the new images, [`db::Database`] inserts the
//! batch in one idempotent statement (any failure fails the invocation, so the mapping retries
//! the whole batch and nothing is lost), [`metrics::publish`] reports the latencies of the rows
//! inserted (a failure there is only logged), unreadable images go to the dead-letter queue
//! ([`stream_support::dead_letter`]) and [`stream_support::batch::finish`] answers.
//!
//! Environment: `DB_HOST`, `DB_PORT` (default 5432), `DB_NAME`, `DB_USER`, `DB_PASSWORD`
//! (optional; on AWS instead `DB_SECRET_ARN`, the RDS-managed secret read at cold start by
//! [`secret`], and again whenever the server refuses its password: rotated or corrected), `DB_TLS` and
//! `DB_CA_PEM` (how the server's certificate is verified: [`postgres_tls`]), `METRIC_NAMESPACE` (default `Pipeline`), `DLQ_URL` (optional; without it
//! rejects are only logged), `REPORT_BATCH_ITEM_FAILURES` (optional, default true; see
//! [`stream_support::batch`]), plus what `function_host::aws_config` reads (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials).

pub mod db;
pub mod metrics;
pub mod secret;

pub use aws_lambda_events::dynamodb::Event;
use db::Database;
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
pub use pipeline_interface::downstream::{Logic, Parsed, Rejected};
use serde_json::Value;
use stream_support::batch;
use stream_support::dead_letter::DeadLetters;

/// What the function builds once at cold start.
struct Downstream {
    logic: Logic,
    db: Database,
    cloudwatch: aws_sdk_cloudwatch::Client,
    namespace: String,
    dead_letters: DeadLetters,
    report_item_failures: bool,
}

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Runs the function until the Lambda runtime stops: sets up logging, the database, the
/// metric client and the dead-letter queue once (the cold start), then serves each batch with
/// `logic`.
pub fn run(logic: Logic) -> Result<(), Error> {
    function_host::run(serve(logic))
}

async fn serve(logic: Logic) -> Result<(), Error> {
    let mut db_config = db::settings_from_env(env)?;
    let tls = postgres_tls::Tls::from_env(env)?;
    let config = function_host::aws_config();
    let db = match env("DB_SECRET_ARN") {
        Some(arn) => {
            let credentials = secret::fetch(&config, &arn).await?;
            if let Some(username) = &credentials.username {
                db_config.user(username);
            }
            db_config.password(credentials.password);
            // A rotated or corrected secret is read again when the server refuses the password.
            let (aws, arn) = (config.clone(), arn.clone());
            let source: db::CredentialSource = Box::new(move || {
                let (aws, arn) = (aws.clone(), arn.clone());
                Box::pin(async move { secret::fetch(&aws, &arn).await.map(|c| (c.username, c.password)) })
            });
            Database::with_credentials(db_config, tls, source)
        }
        None => Database::new(db_config, tls),
    };
    let downstream = Downstream {
        logic,
        db,
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        namespace: env("METRIC_NAMESPACE").unwrap_or_else(|| "Pipeline".to_owned()),
        dead_letters: DeadLetters::new(&config, env("DLQ_URL")),
        report_item_failures: batch::report_item_failures(env("REPORT_BATCH_ITEM_FAILURES").as_deref()),
    };
    let downstream = &downstream;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        downstream.handle(&event.payload).await.map_err(Error::from)
    }))
    .await
}

impl Downstream {
    /// One batch: parse, insert, report the latencies, send the rejects to the dead-letter
    /// queue, report what failed. Logs one line per batch, and one per rejected record.
    async fn handle(&self, event: &Event) -> Result<Value, String> {
        let parsed = (self.logic.parse)(event);
        if !parsed.records.is_empty() {
            let latencies = self.db.insert(&parsed.records).await?;
            tracing::info!(records = parsed.records.len(), inserted = latencies.len(), "batch inserted");
            if !latencies.is_empty() {
                if let Err(error) = metrics::publish(&self.cloudwatch, &self.namespace, &latencies).await {
                    tracing::warn!(%error, "latency metric not sent");
                }
            }
        }

        // After the insert, so that a failed insert (whole batch retried) sends no duplicates.
        let mut failed = Vec::new();
        for rejected in &parsed.rejected {
            tracing::warn!(
                item_identifier = %rejected.item_identifier,
                reason = %rejected.reason,
                "stream record rejected: sending it to the dead-letter queue"
            );
            if let Err(error) = self.dead_letters.send(rejected.dead_letter()).await {
                tracing::error!(item_identifier = %rejected.item_identifier, %error, "dead letter not sent");
                failed.push(rejected.item_identifier.clone());
            }
        }
        batch::finish(&failed, self.report_item_failures)
    }
}
