//! From a DynamoDB stream batch to the records to insert, without I/O. `INSERT` and `MODIFY`
//! records carry the item's `NewImage` (DynamoDB JSON: `{"id": {"S": "..."}, "timestamp":
//! {"N": "..."}, ...}`), which must hold a valid [`StampedRecord`]; `REMOVE` records are
//! ignored. Images that cannot be read become [`Rejected`]s bound for the dead-letter queue, as
//! no retry can change them. A record id appears once in the result (its first image): the row
//! is inserted once and never updated.

use aws_lambda_events::dynamodb::{Event, EventRecord};
use pipeline_interface::downstream::{Parsed, Rejected};
use record::{StampedRecord, ATTR_ID, ATTR_MESSAGE, ATTR_RECEIVED_AT_MS, ATTR_TIMESTAMP};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Sorts a batch; see the module documentation.
pub fn parse(event: &Event) -> Parsed {
    let mut parsed = Parsed::default();
    let mut seen = HashSet::new();
    for stream_record in &event.records {
        if !matches!(stream_record.event_name.as_str(), "INSERT" | "MODIFY") {
            continue;
        }
        // `Item` serializes as DynamoDB JSON; reading that keeps this crate off serde_dynamo.
        let image = serde_json::to_value(&stream_record.change.new_image).unwrap_or(Value::Null);
        match stamped_from_image(&image) {
            Ok(record) => {
                if seen.insert(record.id.clone()) {
                    parsed.records.push(record);
                }
            }
            Err(reason) => parsed.rejected.push(Rejected {
                item_identifier: item_identifier(stream_record),
                event_id: stream_record.event_id.clone(),
                reason,
                image,
            }),
        }
    }
    parsed
}

/// The identifier `batchItemFailures` expects for a DynamoDB stream record: its sequence number.
pub fn item_identifier(stream_record: &EventRecord) -> String {
    stream_record.change.sequence_number.clone().unwrap_or_else(|| stream_record.event_id.clone())
}

/// Reads a record from a new image in DynamoDB JSON and checks the record rules.
pub fn stamped_from_image(image: &Value) -> Result<StampedRecord, String> {
    let attributes = image
        .as_object()
        .filter(|attributes| !attributes.is_empty())
        .ok_or("the stream record has no NewImage (the stream must include new images)")?;
    let record = StampedRecord {
        id: string_attribute(attributes, ATTR_ID)?,
        message: string_attribute(attributes, ATTR_MESSAGE)?,
        timestamp: integer_attribute(attributes, ATTR_TIMESTAMP)?,
        received_at_ms: integer_attribute(attributes, ATTR_RECEIVED_AT_MS)?,
    };
    record.validate().map_err(|e| e.to_string())?;
    Ok(record)
}

fn typed<'a>(attributes: &'a Map<String, Value>, name: &str, type_tag: &str) -> Result<&'a str, String> {
    let value = attributes.get(name).ok_or_else(|| format!("missing attribute {name:?}"))?;
    value
        .get(type_tag)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("attribute {name:?} must be of type {type_tag}, got {value}"))
}

fn string_attribute(attributes: &Map<String, Value>, name: &str) -> Result<String, String> {
    typed(attributes, name, "S").map(str::to_owned)
}

fn integer_attribute(attributes: &Map<String, Value>, name: &str) -> Result<i64, String> {
    let number = typed(attributes, name, "N")?;
    number.parse().map_err(|_| format!("attribute {name:?} must be an integer, got {number:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(id: &str, received_at_ms: &str) -> Value {
        json!({
            "id": {"S": id},
            "message": {"S": "hello"},
            "timestamp": {"N": "1700000000"},
            "received_at_ms": {"N": received_at_ms}
        })
    }

    fn stream_record(name: &str, seq: &str, new_image: Option<Value>) -> Value {
        let mut dynamodb = json!({
            "ApproximateCreationDateTime": 1_700_000_000,
            "Keys": {"id": {"S": "k"}},
            "SequenceNumber": seq,
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE"
        });
        if let Some(image) = new_image {
            dynamodb["NewImage"] = image;
        }
        json!({
            "eventID": format!("event-{seq}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dynamodb,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x"
        })
    }

    fn event(records: Vec<Value>) -> Event {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    #[test]
    fn reads_a_new_image() {
        assert_eq!(
            stamped_from_image(&image("a", "1700000000123")).unwrap(),
            StampedRecord {
                id: "a".into(),
                message: "hello".into(),
                timestamp: 1_700_000_000,
                received_at_ms: 1_700_000_000_123,
            }
        );
    }

    #[test]
    fn malformed_images_say_what_is_wrong() {
        let mut missing = image("a", "1");
        missing.as_object_mut().unwrap().remove("message");
        assert_eq!(stamped_from_image(&missing).unwrap_err(), r#"missing attribute "message""#);
        let mut wrong_type = image("a", "1");
        wrong_type["timestamp"] = json!({"S": "1"});
        assert!(stamped_from_image(&wrong_type).unwrap_err().starts_with(r#"attribute "timestamp" must be of type N"#));
        assert_eq!(
            stamped_from_image(&image("a", "1.5")).unwrap_err(),
            r#"attribute "received_at_ms" must be an integer, got "1.5""#
        );
        assert_eq!(stamped_from_image(&image("", "1")).unwrap_err(), r#"field "id" must be a non-empty string"#);
        assert!(stamped_from_image(&json!({})).unwrap_err().contains("no NewImage"));
    }

    #[test]
    fn inserts_and_modifies_are_read_removes_ignored_bad_images_rejected() {
        let parsed = parse(&event(vec![
            stream_record("INSERT", "100", Some(image("a", "1"))),
            stream_record("REMOVE", "101", None),
            stream_record("MODIFY", "102", Some(image("b", "2"))),
            stream_record("INSERT", "103", Some(json!({"id": {"S": "c"}}))),
            stream_record("INSERT", "104", None),
        ]));
        let ids: Vec<_> = parsed.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let rejected: Vec<_> =
            parsed.rejected.iter().map(|r| (r.item_identifier.as_str(), r.event_id.as_str())).collect();
        assert_eq!(rejected, [("103", "event-103"), ("104", "event-104")]);
        assert_eq!(parsed.rejected[0].reason, r#"missing attribute "message""#);
    }

    #[test]
    fn a_repeated_id_keeps_its_first_image() {
        let parsed = parse(&event(vec![
            stream_record("INSERT", "1", Some(image("a", "10"))),
            stream_record("MODIFY", "2", Some(image("a", "20"))),
        ]));
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].received_at_ms, 10);
    }

    #[test]
    fn dead_letter_carries_the_image_and_the_reason() {
        let parsed = parse(&event(vec![stream_record("INSERT", "7", Some(json!({"id": {"S": "c"}})))]));
        let body: Value = serde_json::from_str(&parsed.rejected[0].dead_letter()).unwrap();
        assert_eq!(
            body,
            json!({"source": "downstream", "item_identifier": "7",
                   "reason": "missing attribute \"message\"", "event_id": "event-7",
                   "new_image": {"id": {"S": "c"}}})
        );
    }
}
