//! What the logic makes of a Kinesis batch, as the host acts on it: the records to write and
//! the records to reject (each with its dead-letter message).

use aws_lambda_events::kinesis::KinesisEventRecord;
use base64::Engine as _;
use record::StampedRecord;
use serde_json::{json, Map};

/// Most bytes of a rejected record's data a dead letter carries (base64-encoded, it stays well
/// under SQS's 256 KiB message limit).
pub const MAX_DEAD_LETTER_DATA: usize = 96 * 1024;

/// A batch sorted into writes and rejects.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// Valid records, one per id, in order of first appearance.
    pub writes: Vec<Write>,
    /// Records that can never be written.
    pub rejected: Vec<Rejected>,
}

/// One item to write and the Kinesis records it stands for.
#[derive(Debug, PartialEq)]
pub struct Write {
    /// The last valid record with this id in the batch.
    pub record: StampedRecord,
    /// Sequence numbers of every record in the batch with this id: they succeed or fail together.
    pub sequence_numbers: Vec<String>,
}

/// A Kinesis record whose data is not a valid [`StampedRecord`].
#[derive(Debug, PartialEq)]
pub struct Rejected {
    /// The record's sequence number (its batch item identifier).
    pub sequence_number: String,
    /// The record's partition key.
    pub partition_key: String,
    /// Why it was rejected.
    pub reason: String,
    /// The record's data as it arrived.
    pub data: Vec<u8>,
}

impl Rejected {
    /// The dead-letter message for this record: the data base64-encoded (cut at
    /// [`MAX_DEAD_LETTER_DATA`] bytes, with `truncated` saying so) and its full size.
    pub fn dead_letter(&self) -> String {
        let kept = &self.data[..self.data.len().min(MAX_DEAD_LETTER_DATA)];
        let mut detail = Map::new();
        detail.insert("partition_key".into(), json!(self.partition_key));
        detail.insert("data_bytes".into(), json!(self.data.len()));
        detail.insert("truncated".into(), json!(kept.len() < self.data.len()));
        detail.insert("data_base64".into(), json!(base64::engine::general_purpose::STANDARD.encode(kept)));
        crate::dead_letter_message("midstream", &self.sequence_number, &self.reason, detail)
    }
}

/// The function's logic, as the host calls it.
#[derive(Debug, Clone, Copy)]
pub struct Logic {
    /// Sorts a batch into the records to write and the records to reject.
    pub decode: fn(&[KinesisEventRecord]) -> Decoded,
}
