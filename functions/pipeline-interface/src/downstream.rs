//! What the logic makes of a DynamoDB stream batch, as the host acts on it: the records to insert
//! and the stream records to reject (each with its dead-letter message).

use aws_lambda_events::dynamodb::Event;
use record::StampedRecord;
use serde_json::{json, Map, Value};

/// A batch sorted into records to insert and rejects.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// Valid records with distinct ids, in stream order.
    pub records: Vec<StampedRecord>,
    /// Stream records whose image cannot be read.
    pub rejected: Vec<Rejected>,
}

/// A stream record whose new image is not a valid [`StampedRecord`].
#[derive(Debug, PartialEq)]
pub struct Rejected {
    /// The batch item identifier: the stream record's sequence number (its event id if absent).
    pub item_identifier: String,
    /// The stream record's event id.
    pub event_id: String,
    /// Why it was rejected.
    pub reason: String,
    /// The new image as DynamoDB JSON.
    pub image: Value,
}

impl Rejected {
    /// The dead-letter message for this record, with its event id and image.
    pub fn dead_letter(&self) -> String {
        let mut detail = Map::new();
        detail.insert("event_id".into(), json!(self.event_id));
        detail.insert("new_image".into(), self.image.clone());
        crate::dead_letter_message("downstream", &self.item_identifier, &self.reason, detail)
    }
}

/// The function's logic, as the host calls it.
#[derive(Debug, Clone, Copy)]
pub struct Logic {
    /// Sorts a batch into the records to insert and the stream records to reject.
    pub parse: fn(&Event) -> Parsed,
}
