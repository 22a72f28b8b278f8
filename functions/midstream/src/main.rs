//! `midstream`: Kinesis batch -> DynamoDB items.
//!
//! The handler is thin: [`decode::decode`] sorts the batch into writes and rejects, rejects go
//! to the dead-letter queue ([`stream_support::dead_letter`]) and count as done, writes go to
//! the table ([`table::TableWriter`]), and [`stream_support::batch::finish`] reports the records
//! that could not be written.
//!
//! Environment: `TABLE_NAME` (required), `DLQ_URL` (optional; without it rejects are only
//! logged), `REPORT_BATCH_ITEM_FAILURES` (optional, default true; see
//! [`stream_support::batch`]), plus what `aws-config` reads (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! credentials).

mod decode;
mod table;

use aws_config::BehaviorVersion;
use aws_lambda_events::kinesis::KinesisEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::collections::HashSet;
use stream_support::batch;
use stream_support::dead_letter::DeadLetters;
use table::TableWriter;

/// What the function builds once at cold start.
struct Midstream {
    table: TableWriter,
    dead_letters: DeadLetters,
    report_item_failures: bool,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();

    let table_name = std::env::var("TABLE_NAME").map_err(|_| "environment variable TABLE_NAME is not set")?;
    let dlq_url = std::env::var("DLQ_URL").ok().filter(|url| !url.is_empty());
    let report = std::env::var("REPORT_BATCH_ITEM_FAILURES").ok();
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let midstream = Midstream {
        table: TableWriter::new(aws_sdk_dynamodb::Client::new(&config), table_name),
        dead_letters: DeadLetters::new(&config, dlq_url),
        report_item_failures: batch::report_item_failures(report.as_deref()),
    };
    let midstream = &midstream;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| async move {
        midstream.handle(&event.payload).await.map_err(Error::from)
    }))
    .await
}

impl Midstream {
    async fn handle(&self, event: &KinesisEvent) -> Result<Value, String> {
        let decoded = decode::decode(&event.records);
        let records: Vec<_> = decoded.writes.iter().map(|w| &w.record).collect();
        let unwritten: HashSet<String> = self.table.write(&records).await.into_iter().collect();
        let mut failed = Vec::new();
        for write in &decoded.writes {
            if unwritten.contains(&write.record.id) {
                failed.extend(write.sequence_numbers.iter().cloned());
            }
        }

        // After the writes, so that a batch failed as a whole sends fewer duplicates.
        for rejected in &decoded.rejected {
            tracing::warn!(
                sequence_number = %rejected.sequence_number,
                reason = %rejected.reason,
                "record rejected: sending it to the dead-letter queue"
            );
            if let Err(error) = self.dead_letters.send(rejected.dead_letter()).await {
                tracing::error!(sequence_number = %rejected.sequence_number, %error, "dead letter not sent");
                failed.push(rejected.sequence_number.clone());
            }
        }
        tracing::info!(
            records = event.records.len(),
            written = records.len().saturating_sub(unwritten.len()),
            rejected = decoded.rejected.len(),
            failed = failed.len(),
            "batch done"
        );
        batch::finish(&failed, self.report_item_failures)
    }
}
