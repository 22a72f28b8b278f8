//! The two tables: `results` (one item per array: status, count, chunks mapped, sum or reason)
//! and the `scratchpad` (one item per node of an array's reduction tree: its partial sum). Every
//! write that must happen once is conditional, so repeating it changes nothing:
//! - a node is put only if it is not there ([`Store::put_node`]);
//! - a chunk's node and the array's `done` count move together in one transaction
//!   ([`Store::put_chunk`]), so a redelivered chunk adds nothing;
//! - an array leaves `pending` once, for `done` or `failed` ([`Store::finish`], [`Store::fail`]).

use adder::{node_key, Status, Tree};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The write happened now.
    Now,
    /// It had happened before (a repeat): nothing changed.
    Before,
    /// The array is no longer pending (done, or failed): nothing changed.
    ArrayClosed,
}

/// The tables, with the client that reaches them.
pub struct Store {
    client: Client,
    results: String,
    scratchpad: String,
}

/// An error with what failed, for logs and batch failures.
pub type Error = String;

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn described<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    err: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> Error {
    format!("{what}: {}", DisplayErrorContext(err))
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

impl Store {
    pub fn new(client: Client, results: String, scratchpad: String) -> Self {
        Self { client, results, scratchpad }
    }

    /// Records a new array: pending, `count` elements in `tree.chunks` chunks, none mapped yet.
    /// An empty array is done at once with sum 0.
    pub async fn open(&self, array_id: &str, count: u64, tree: &Tree, now_ms: i64) -> Result<(), Error> {
        let mut item = HashMap::from([
            ("arrayId".to_string(), s(array_id)),
            ("count".to_string(), n(count)),
            ("chunks".to_string(), n(tree.chunks)),
            ("done".to_string(), n(0)),
            ("createdAtMs".to_string(), n(now_ms)),
        ]);
        if count == 0 {
            item.insert("status".into(), s("done"));
            item.insert("sum".into(), n(0));
        } else {
            item.insert("status".into(), s("pending"));
        }
        self.client
            .put_item()
            .table_name(&self.results)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(arrayId)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| described(&format!("recording array {array_id}"), &e))
    }

    /// Where the array stands; `None` for an array never submitted.
    pub async fn status(&self, array_id: &str) -> Result<Option<Status>, Error> {
        let found = self
            .client
            .get_item()
            .table_name(&self.results)
            .key("arrayId", s(array_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| described(&format!("reading array {array_id}"), &e))?;
        let Some(item) = found.item else { return Ok(None) };
        let number = |key: &str| item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
        let text = |key: &str| item.get(key).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let count = number("count").unwrap_or(0) as u64;
        Ok(Some(match text("status").as_str() {
            "done" => Status::Done { count, sum: number("sum").unwrap_or(0) },
            "failed" => Status::Failed { reason: text("reason") },
            _ => Status::Pending { count, done: number("done").unwrap_or(0) as u64 },
        }))
    }

    /// Writes chunk `chunk`'s partial sum (node `(0, chunk)`) and adds its `elements` to the
    /// array's `done` count, in one transaction: both happen once, or neither.
    pub async fn put_chunk(&self, array_id: &str, chunk: u32, value: i64, elements: u64) -> Result<Written, Error> {
        let node = Put::builder()
            .table_name(&self.scratchpad)
            .item("arrayId", s(array_id))
            .item("node", s(&node_key(0, chunk)))
            .item("value", n(value))
            .condition_expression("attribute_not_exists(#node)")
            .expression_attribute_names("#node", "node")
            .build()
            .map_err(|e| e.to_string())?;
        let count = Update::builder()
            .table_name(&self.results)
            .key("arrayId", s(array_id))
            .update_expression("SET #done = #done + :elements")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#done", "done")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":elements", n(elements))
            .expression_attribute_values(":pending", s("pending"))
            .build()
            .map_err(|e| e.to_string())?;
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(node).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(Written::Now),
            Err(err) => err,
        };
        // Which condition failed says which repeat this is.
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let reasons: Vec<Option<String>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                canceled.cancellation_reasons().iter().map(|r| r.code().map(str::to_string)).collect()
            }
            _ => Vec::new(),
        };
        let failed = |at: usize| reasons.get(at).and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed");
        if failed(0) {
            Ok(Written::Before)
        } else if failed(1) {
            Ok(Written::ArrayClosed)
        } else {
            Err(described(&format!("writing chunk {chunk} of array {array_id}"), &err))
        }
    }

    /// The values of nodes `(level, first..end)`, as far as they are written, read consistently.
    pub async fn nodes(&self, array_id: &str, level: u32, range: std::ops::Range<u32>) -> Result<Vec<i64>, Error> {
        if range.is_empty() {
            return Ok(vec![]);
        }
        let (low, high) = (node_key(level, range.start), node_key(level, range.end - 1));
        let mut values = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.scratchpad)
                .key_condition_expression("arrayId = :array AND #node BETWEEN :low AND :high")
                .expression_attribute_names("#node", "node")
                .expression_attribute_values(":array", s(array_id))
                .expression_attribute_values(":low", s(&low))
                .expression_attribute_values(":high", s(&high))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| described(&format!("reading level {level} of array {array_id}"), &e))?;
            values.extend(page.items().iter().filter_map(|item| item.get("value")?.as_n().ok()?.parse::<i64>().ok()));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(values),
            }
        }
    }

    /// Writes node `(level, index)` once.
    pub async fn put_node(&self, array_id: &str, level: u32, index: u32, value: i64) -> Result<Written, Error> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.scratchpad)
            .item("arrayId", s(array_id))
            .item("node", s(&node_key(level, index)))
            .item("value", n(value))
            .condition_expression("attribute_not_exists(#node)")
            .expression_attribute_names("#node", "node")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Written::Now),
            Err(err) if is_condition_failed(&err) => Ok(Written::Before),
            Err(err) => Err(described(&format!("writing node ({level}, {index}) of array {array_id}"), &err)),
        }
    }

    /// Marks the array done with `sum`, if it is still pending, with the time it was done (for
    /// the benchmark's time to result).
    pub async fn finish(&self, array_id: &str, sum: i64, now_ms: i64) -> Result<Written, Error> {
        self.close(array_id, "done", &[("#sum", n(sum)), ("#doneAtMs", n(now_ms))]).await
    }

    /// Marks the array failed with `reason`, if it is still pending.
    pub async fn fail(&self, array_id: &str, reason: &str) -> Result<Written, Error> {
        self.close(array_id, "failed", &[("#reason", s(reason))]).await
    }

    /// Moves the array from `pending` to `status`, setting `fields` (`#name`, value) with it.
    async fn close(&self, array_id: &str, status: &str, fields: &[(&str, AttributeValue)]) -> Result<Written, Error> {
        let sets: Vec<String> = fields.iter().enumerate().map(|(i, (name, _))| format!(", {name} = :v{i}")).collect();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.results)
            .key("arrayId", s(array_id))
            .update_expression(format!("SET #status = :closed{}", sets.concat()))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":closed", s(status))
            .expression_attribute_values(":pending", s("pending"));
        for (i, (name, value)) in fields.iter().enumerate() {
            update = update
                .expression_attribute_names(*name, &name[1..])
                .expression_attribute_values(format!(":v{i}"), value.clone());
        }
        let sent = update.send().await;
        match sent {
            Ok(_) => Ok(Written::Now),
            Err(err) if is_condition_failed(&err) => Ok(Written::ArrayClosed),
            Err(err) => Err(described(&format!("marking array {array_id} {status}"), &err)),
        }
    }
}
