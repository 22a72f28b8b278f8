//! Writing stamped records to the DynamoDB table: the item mapping ([`item`]) and
//! `BatchWriteItem` in chunks of [`MAX_PER_CALL`], a few chunks in flight at once, each
//! re-sending its `UnprocessedItems` (or the whole chunk after a failed call) with exponential
//! backoff for at most [`ATTEMPTS`] calls. Every write is a `PutRequest` keyed on the record id,
//! so writing a record twice leaves the same item.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use record::{StampedRecord, ATTR_ID, ATTR_MESSAGE, ATTR_RECEIVED_AT_MS, ATTR_TIMESTAMP};
use std::collections::HashMap;
use std::time::Duration;
use tokio::task::JoinSet;

/// Most put requests one `BatchWriteItem` call takes.
pub const MAX_PER_CALL: usize = 25;
/// Calls per chunk before the items still unwritten are given up (for this invocation).
pub const ATTEMPTS: u32 = 5;
/// Wait before the first re-send; doubles on each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Chunks written concurrently.
const IN_FLIGHT: usize = 4;

/// The DynamoDB item for a record: `id` S, `message` S, `timestamp` N, `received_at_ms` N.
pub fn item(record: &StampedRecord) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (ATTR_ID.to_owned(), AttributeValue::S(record.id.clone())),
        (ATTR_MESSAGE.to_owned(), AttributeValue::S(record.message.clone())),
        (ATTR_TIMESTAMP.to_owned(), AttributeValue::N(record.timestamp.to_string())),
        (ATTR_RECEIVED_AT_MS.to_owned(), AttributeValue::N(record.received_at_ms.to_string())),
    ])
}

/// The id a put request writes (how unprocessed items are traced back to records).
fn request_id(request: &WriteRequest) -> Option<&str> {
    request.put_request()?.item().get(ATTR_ID)?.as_s().ok().map(String::as_str)
}

/// Writes to one table with a client built at cold start.
#[derive(Debug)]
pub struct TableWriter {
    client: Client,
    table: String,
}

impl TableWriter {
    /// A writer for `table`.
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// Writes the records (their ids must be distinct) and returns the ids that could not be
    /// written, after logging why.
    pub async fn write(&self, records: &[&StampedRecord]) -> Vec<String> {
        let mut failed = Vec::new();
        let mut tasks = JoinSet::new();
        for chunk in records.chunks(MAX_PER_CALL) {
            if tasks.len() >= IN_FLIGHT {
                collect(tasks.join_next().await, &mut failed);
            }
            let requests = chunk.iter().map(|r| put(r)).collect();
            tasks.spawn(write_chunk(self.client.clone(), self.table.clone(), requests));
        }
        while let Some(joined) = tasks.join_next().await {
            collect(Some(joined), &mut failed);
        }
        failed
    }
}

fn put(record: &StampedRecord) -> WriteRequest {
    let put = PutRequest::builder().set_item(Some(item(record))).build().expect("a PutRequest with an item builds");
    WriteRequest::builder().put_request(put).build()
}

fn collect(joined: Option<Result<Result<(), Vec<String>>, tokio::task::JoinError>>, failed: &mut Vec<String>) {
    match joined {
        Some(Ok(Err(ids))) => failed.extend(ids),
        Some(Err(e)) => tracing::error!(error = %e, "a DynamoDB write task panicked"),
        Some(Ok(Ok(()))) | None => {}
    }
}

/// One chunk with its retries; `Err` holds the ids still unwritten at the end.
async fn write_chunk(client: Client, table: String, mut pending: Vec<WriteRequest>) -> Result<(), Vec<String>> {
    let mut backoff = FIRST_BACKOFF;
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        match client.batch_write_item().request_items(&table, pending.clone()).send().await {
            Ok(output) => {
                pending = output.unprocessed_items().and_then(|items| items.get(&table)).cloned().unwrap_or_default();
                if pending.is_empty() {
                    return Ok(());
                }
                last_error = format!("{} items left unprocessed", pending.len());
            }
            Err(e) => last_error = DisplayErrorContext(&e).to_string(),
        }
        tracing::warn!(%table, attempt, pending = pending.len(), error = %last_error, "BatchWriteItem incomplete");
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    let ids: Vec<String> = pending.iter().filter_map(request_id).map(str::to_owned).collect();
    tracing::error!(
        %table,
        ids = ?ids,
        error = %last_error,
        "writing items to DynamoDB table failed after {ATTEMPTS} attempts"
    );
    Err(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StampedRecord {
        record::Record { id: "id-1".into(), message: "hello".into(), timestamp: -5 }.stamp(1_700_000_000_123)
    }

    #[test]
    fn item_has_the_four_attributes_with_their_types() {
        let item = item(&record());
        assert_eq!(item.len(), 4);
        assert_eq!(item["id"], AttributeValue::S("id-1".into()));
        assert_eq!(item["message"], AttributeValue::S("hello".into()));
        assert_eq!(item["timestamp"], AttributeValue::N("-5".into()));
        assert_eq!(item["received_at_ms"], AttributeValue::N("1700000000123".into()));
    }

    #[test]
    fn unprocessed_requests_trace_back_to_their_record_id() {
        assert_eq!(request_id(&put(&record())), Some("id-1"));
        assert_eq!(request_id(&WriteRequest::builder().build()), None);
    }
}
