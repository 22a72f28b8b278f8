//! Putting stamped records on the Kinesis stream, partitioned by record id: one record with
//! `PutRecord`, several with `PutRecords` in chunks of [`MAX_PER_CALL`], re-sending the entries
//! Kinesis reports as failed (throttled shards) a few times with a short backoff. The SDK's own
//! retry already covers throttled or failed calls as a whole.

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, PutRecordsResultEntry};
use aws_sdk_kinesis::Client;
use record::StampedRecord;
use std::time::Duration;

/// Most entries one `PutRecords` call takes.
pub const MAX_PER_CALL: usize = 500;
/// Calls per chunk before entries that keep failing are given up.
const ATTEMPTS: u32 = 4;
/// Wait before the first re-send; doubles on each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Writes records to one stream with a client built at cold start.
#[derive(Debug)]
pub struct Publisher {
    client: Client,
    stream_name: String,
}

impl Publisher {
    /// A publisher for `stream_name`.
    pub fn new(client: Client, stream_name: String) -> Self {
        Self { client, stream_name }
    }

    /// Puts every record on the stream, or says (with context) what could not be put. On error
    /// some records may already be on the stream; re-sending them is harmless, as every write
    /// after the stream is keyed on the record id.
    pub async fn publish(&self, records: &[StampedRecord]) -> Result<(), String> {
        match records {
            [] => Ok(()),
            [record] => self.put_one(record).await,
            _ => {
                for chunk in records.chunks(MAX_PER_CALL) {
                    self.put_chunk(chunk).await?;
                }
                Ok(())
            }
        }
    }

    async fn put_one(&self, record: &StampedRecord) -> Result<(), String> {
        self.client
            .put_record()
            .stream_name(&self.stream_name)
            .partition_key(&record.id)
            .data(Blob::new(record.to_json()))
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "putting record {:?} on Kinesis stream {}: {}",
                    record.id,
                    self.stream_name,
                    DisplayErrorContext(&e)
                )
            })
    }

    async fn put_chunk(&self, chunk: &[StampedRecord]) -> Result<(), String> {
        let mut pending = chunk
            .iter()
            .map(|record| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&record.id)
                    .data(Blob::new(record.to_json()))
                    .build()
                    .map_err(|e| format!("building the Kinesis entry for {:?}: {e}", record.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut backoff = FIRST_BACKOFF;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            let output = self
                .client
                .put_records()
                .stream_name(&self.stream_name)
                .set_records(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "putting {} records on Kinesis stream {}: {}",
                        pending.len(),
                        self.stream_name,
                        DisplayErrorContext(&e)
                    )
                })?;
            let (failed, error) = still_failed(&pending, output.records());
            if failed.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                stream = %self.stream_name,
                attempt,
                failed = failed.len(),
                error = %error,
                "Kinesis rejected some PutRecords entries"
            );
            pending = failed;
            last_error = error;
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(format!(
            "putting records on Kinesis stream {}: {} of {} still failed after {ATTEMPTS} attempts (last error: {last_error})",
            self.stream_name,
            pending.len(),
            chunk.len(),
        ))
    }
}

/// The sent entries whose results carry an error code (results are in request order), and the
/// first error seen. Entries without a result are counted as failed: nothing says they landed.
fn still_failed<T: Clone>(sent: &[T], results: &[PutRecordsResultEntry]) -> (Vec<T>, String) {
    let mut error = String::new();
    let failed = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let Some(result) = results.get(*i) else {
                return true;
            };
            let Some(code) = result.error_code() else {
                return false;
            };
            if error.is_empty() {
                error = format!("{code}: {}", result.error_message().unwrap_or_default());
            }
            true
        })
        .map(|(_, entry)| entry.clone())
        .collect();
    (failed, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> PutRecordsResultEntry {
        PutRecordsResultEntry::builder().sequence_number("1").shard_id("shardId-000000000000").build()
    }

    fn throttled() -> PutRecordsResultEntry {
        PutRecordsResultEntry::builder()
            .error_code("ProvisionedThroughputExceededException")
            .error_message("Rate exceeded for shard")
            .build()
    }

    #[test]
    fn only_entries_with_an_error_code_are_resent() {
        let (failed, error) = still_failed(&["a", "b", "c"], &[ok(), throttled(), ok()]);
        assert_eq!(failed, ["b"]);
        assert_eq!(error, "ProvisionedThroughputExceededException: Rate exceeded for shard");
    }

    #[test]
    fn all_ok_means_nothing_left() {
        let (failed, error) = still_failed(&["a", "b"], &[ok(), ok()]);
        assert!(failed.is_empty());
        assert!(error.is_empty());
    }

    #[test]
    fn entries_without_a_result_count_as_failed() {
        let (failed, _) = still_failed(&["a", "b"], &[ok()]);
        assert_eq!(failed, ["b"]);
    }
}
