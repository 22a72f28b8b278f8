//! From a Kinesis batch to what to do with each record, without I/O: records that decode to a
//! valid [`StampedRecord`] become [`Write`]s (one per id: DynamoDB rejects a `BatchWriteItem`
//! naming a key twice, so a later record with the same id replaces an earlier one, as its
//! `PutItem` would); the rest become [`Rejected`]s bound for the dead-letter queue, since no
//! retry can make them valid.

use aws_lambda_events::kinesis::KinesisEventRecord;
use pipeline_interface::midstream::{Decoded, Rejected, Write};
use record::StampedRecord;
use std::collections::HashMap;

/// Sorts a batch; see the module documentation.
pub fn decode(records: &[KinesisEventRecord]) -> Decoded {
    let mut decoded = Decoded::default();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for event_record in records {
        let kinesis = &event_record.kinesis;
        let sequence_number = kinesis.sequence_number.clone();
        match StampedRecord::from_json(&kinesis.data.0) {
            Ok(record) => match by_id.get(&record.id) {
                Some(&i) => {
                    let write = &mut decoded.writes[i];
                    write.record = record;
                    write.sequence_numbers.push(sequence_number);
                }
                None => {
                    by_id.insert(record.id.clone(), decoded.writes.len());
                    decoded.writes.push(Write { record, sequence_numbers: vec![sequence_number] });
                }
            },
            Err(error) => decoded.rejected.push(Rejected {
                sequence_number,
                partition_key: kinesis.partition_key.clone(),
                reason: error.to_string(),
                data: kinesis.data.0.clone(),
            }),
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::kinesis::KinesisEvent;
    use base64::Engine as _;
    use pipeline_interface::midstream::MAX_DEAD_LETTER_DATA;
    use serde_json::{json, Value};

    /// A Kinesis event as Lambda delivers it, one record per (sequence number, data).
    fn event(records: &[(&str, &[u8])]) -> KinesisEvent {
        let records: Vec<_> = records
            .iter()
            .map(|(seq, data)| {
                json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": "pk",
                        "sequenceNumber": seq,
                        "data": base64::engine::general_purpose::STANDARD.encode(data),
                        "approximateArrivalTimestamp": 1_700_000_000.5
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("shardId-000000000000:{seq}"),
                    "eventName": "aws:kinesis:record",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn stamped(id: &str, received_at_ms: i64) -> Vec<u8> {
        record::Record { id: id.into(), message: "m".into(), timestamp: 1 }.stamp(received_at_ms).to_json()
    }

    #[test]
    fn valid_records_become_writes_and_invalid_ones_rejects() {
        let a = stamped("a", 10);
        let event = event(&[
            ("1", &a),
            ("2", b"not json"),
            ("3", br#"{"id":"b","message":"m","timestamp":"x","received_at_ms":1}"#),
        ]);
        let decoded = decode(&event.records);
        assert_eq!(decoded.writes.len(), 1);
        assert_eq!(decoded.writes[0].record.id, "a");
        assert_eq!(decoded.writes[0].sequence_numbers, ["1"]);
        let reasons: Vec<_> = decoded.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].starts_with("invalid JSON"), "{reasons:?}");
        assert_eq!(reasons[1], r#"field "timestamp" must be an integer"#);
        assert_eq!(decoded.rejected[0].sequence_number, "2");
        assert_eq!(decoded.rejected[0].data, b"not json");
        assert_eq!(decoded.rejected[1].partition_key, "pk");
    }

    #[test]
    fn repeated_ids_become_one_write_with_the_last_record() {
        let (a1, b, a2) = (stamped("a", 1), stamped("b", 2), stamped("a", 3));
        let decoded = decode(&event(&[("1", &a1), ("2", &b), ("3", &a2)]).records);
        assert_eq!(decoded.writes.len(), 2);
        assert_eq!(decoded.writes[0].record.received_at_ms, 3);
        assert_eq!(decoded.writes[0].sequence_numbers, ["1", "3"]);
        assert_eq!(decoded.writes[1].record.id, "b");
    }

    #[test]
    fn dead_letter_carries_the_data_and_the_reason() {
        let decoded = decode(&event(&[("7", b"{oops")]).records);
        let body: Value = serde_json::from_str(&decoded.rejected[0].dead_letter()).unwrap();
        assert_eq!(body["source"], "midstream");
        assert_eq!(body["item_identifier"], "7");
        assert_eq!(body["partition_key"], "pk");
        assert_eq!(body["data_base64"], "e29vcHM=");
        assert_eq!(body["data_bytes"], 5);
        assert_eq!(body["truncated"], false);
        assert!(body["reason"].as_str().unwrap().starts_with("invalid JSON"));
    }

    #[test]
    fn dead_letter_data_is_cut_to_the_limit() {
        let big = vec![b'x'; MAX_DEAD_LETTER_DATA + 10];
        let decoded = decode(&event(&[("1", &big)]).records);
        let body: Value = serde_json::from_str(&decoded.rejected[0].dead_letter()).unwrap();
        assert_eq!(body["truncated"], true);
        assert_eq!(body["data_bytes"], MAX_DEAD_LETTER_DATA + 10);
        let kept = base64::engine::general_purpose::STANDARD.decode(body["data_base64"].as_str().unwrap()).unwrap();
        assert_eq!(kept.len(), MAX_DEAD_LETTER_DATA);
    }

    #[test]
    fn empty_batch_decodes_to_nothing() {
        assert_eq!(decode(&[]), Decoded::default());
    }
}
