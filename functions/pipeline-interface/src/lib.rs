//! The types the pipeline's functions and their logic exchange: per function, what the logic is
//! given, what it decides, and the logic as the host calls it (a struct of plain function
//! pointers). They live apart from the hosts so that a function's logic, built as a library for
//! hot-swap, links against nothing of the runtime or the SDK: only this crate, `record` and the
//! event types.

pub mod downstream;
pub mod midstream;
pub mod scaler;
pub mod upstream;

use serde_json::{json, Map, Value};

/// A dead-letter message body: `source`, `item_identifier` (the batch item identifier, i.e. the
/// sequence number), `reason`, then the fields of `detail`.
pub fn dead_letter_message(source: &str, item_identifier: &str, reason: &str, detail: Map<String, Value>) -> String {
    let mut body = json!({
        "source": source,
        "item_identifier": item_identifier,
        "reason": reason,
    });
    if let Value::Object(fields) = &mut body {
        fields.extend(detail);
    }
    body.to_string()
}
