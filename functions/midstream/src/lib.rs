//! The host of `midstream`: the Lambda runtime, the DynamoDB writer, the dead-letter queue,
//! logging. The function's own logic (which records of a batch are valid, and as what) is the
//! binary's `decode` module, handed to [`run`] as a plain function pointer in a [`Logic`].
//!
//! The split is for hot-swap speed, as in `upstream`: the runtime's and the SDK's generic code
//! is instantiated here, in a library an edit to the logic does not touch, so a one-line change
//! recompiles only the binary's small crate (and relinks).
//!
//! Environment: `TABLE_NAME` (required), `DLQ_URL` (optional; without it rejects are only
//! logged), `REPORT_BATCH_ITEM_FAILURES` (optional, default true; see
//! [`stream_support::batch`]), plus what `function_host::aws_config` reads (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! credentials).

pub mod table;

pub use aws_lambda_events::kinesis::{KinesisEvent, KinesisEventRecord};
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
pub use pipeline_interface::midstream::{Decoded, Logic, Rejected, Write, MAX_DEAD_LETTER_DATA};
use serde_json::Value;
use std::collections::HashSet;
use stream_support::batch;
use stream_support::dead_letter::DeadLetters;
use table::TableWriter;

/// What the function builds once at cold start.
struct Midstream {
    logic: Logic,
    table: TableWriter,
    dead_letters: DeadLetters,
    report_item_failures: bool,
}

/// Runs the function until the Lambda runtime stops: sets up logging, the table writer and the
/// dead-letter queue once (the cold start), then serves each batch with `logic`.
pub fn run(logic: Logic) -> Result<(), Error> {
    function_host::run(serve(logic))
}

async fn serve(logic: Logic) -> Result<(), Error> {
    let table_name = std::env::var("TABLE_NAME").map_err(|_| "environment variable TABLE_NAME is not set")?;
    let dlq_url = std::env::var("DLQ_URL").ok().filter(|url| !url.is_empty());
    let report = std::env::var("REPORT_BATCH_ITEM_FAILURES").ok();
    let config = function_host::aws_config();
    let midstream = Midstream {
        logic,
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
    /// One batch: decode, write, send the rejects to the dead-letter queue, report what failed.
    /// Logs one line per batch, and one per rejected record.
    async fn handle(&self, event: &KinesisEvent) -> Result<Value, String> {
        let decoded = (self.logic.decode)(&event.records);
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
