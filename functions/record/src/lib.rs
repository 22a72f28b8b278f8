//! The pipeline's record and everything the three functions must agree on about it.
//!
//! A client POSTs a [`Record`] (or an array of them); `upstream` validates it with
//! [`parse_request_body`], stamps it with the time it arrived ([`Record::stamp`]) and puts the
//! resulting [`StampedRecord`] on Kinesis as JSON. `midstream` reads it back with
//! [`StampedRecord::from_json`] and writes it to DynamoDB under the attribute names
//! [`ATTR_ID`], [`ATTR_MESSAGE`], [`ATTR_TIMESTAMP`] and [`ATTR_RECEIVED_AT_MS`]. `downstream`
//! inserts it into the Postgres table [`TABLE`] (created by [`SCHEMA_SQL`]) and reports
//! [`latency_ms`] as the CloudWatch metric [`METRIC_NAME`].
//!
//! **Architecture Invariant:** this crate does no I/O (the clock read in [`now_ms`] aside) and
//! knows nothing about AWS SDK types: the functions map to and from their services' forms.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest request body `upstream` accepts, in bytes (1 MiB); larger ones are [`ValidationError::TooLarge`].
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most records one request may carry (the Kinesis `PutRecords` limit).
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
/// Longest accepted `id`, in characters (Unicode scalar values).
pub const MAX_ID_CHARS: usize = 128;
/// Longest accepted `message`, in bytes of UTF-8 (16 KiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The rule `id` and `message` break when they contain U+0000, which PostgreSQL `TEXT` cannot store.
const NO_NUL: &str = "free of NUL characters (U+0000)";

/// DynamoDB attribute holding [`StampedRecord::id`] (type `S`, the table's partition key).
pub const ATTR_ID: &str = "id";
/// DynamoDB attribute holding [`StampedRecord::message`] (type `S`).
pub const ATTR_MESSAGE: &str = "message";
/// DynamoDB attribute holding [`StampedRecord::timestamp`] (type `N`).
pub const ATTR_TIMESTAMP: &str = "timestamp";
/// DynamoDB attribute holding [`StampedRecord::received_at_ms`] (type `N`).
pub const ATTR_RECEIVED_AT_MS: &str = "received_at_ms";

/// The Postgres table `downstream` writes to.
pub const TABLE: &str = "records";
/// Idempotent DDL for [`TABLE`]; safe to run on every deployment and at every cold start.
pub const SCHEMA_SQL: &str = "CREATE TABLE IF NOT EXISTS records (\
id TEXT PRIMARY KEY, \
message TEXT NOT NULL, \
client_timestamp BIGINT NOT NULL, \
received_at_ms BIGINT NOT NULL, \
committed_at_ms BIGINT NOT NULL, \
latency_ms BIGINT NOT NULL, \
inserted_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/// The columns [`SCHEMA_SQL`] creates, with their types as PostgreSQL reports them
/// (`information_schema.columns.data_type`): what provision checks the table against.
pub const COLUMNS: [(&str, &str); 7] = [
    ("id", "text"),
    ("message", "text"),
    ("client_timestamp", "bigint"),
    ("received_at_ms", "bigint"),
    ("committed_at_ms", "bigint"),
    ("latency_ms", "bigint"),
    ("inserted_at", "timestamp with time zone"),
];

/// CloudWatch metric carrying each record's end-to-end latency ([`latency_ms`]), unit Milliseconds.
pub const METRIC_NAME: &str = "EndToEndLatency";

/// What a client sends: one record of the classic sample's format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Client-chosen identifier: non-empty, at most [`MAX_ID_CHARS`] characters, no U+0000.
    /// Records with the same id are the same record (every write downstream is keyed and
    /// idempotent on it).
    pub id: String,
    /// Free text, at most [`MAX_MESSAGE_BYTES`] bytes, no U+0000.
    pub message: String,
    /// The client's clock when it sent the record, in Unix seconds.
    pub timestamp: i64,
}

impl Record {
    /// Attaches the time `upstream` received the record, in Unix milliseconds.
    pub fn stamp(self, received_at_ms: i64) -> StampedRecord {
        StampedRecord { id: self.id, message: self.message, timestamp: self.timestamp, received_at_ms }
    }
}

/// A validated record plus the time `upstream` received it: what travels on Kinesis (as JSON)
/// and what DynamoDB stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampedRecord {
    /// See [`Record::id`].
    pub id: String,
    /// See [`Record::message`].
    pub message: String,
    /// See [`Record::timestamp`] (client clock, Unix seconds).
    pub timestamp: i64,
    /// When `upstream` received the record, Unix milliseconds: the start of the latency measure.
    pub received_at_ms: i64,
}

impl StampedRecord {
    /// Parses and validates the Kinesis form (one JSON object, the same field rules as a
    /// request plus an integer `received_at_ms`). An error here means the data can never be
    /// processed, however often it is retried.
    pub fn from_json(data: &[u8]) -> Result<Self, ValidationError> {
        let value: Value = serde_json::from_slice(data).map_err(|e| ValidationError::InvalidJson(e.to_string()))?;
        let obj = value.as_object().ok_or(ValidationError::NotAnObject { index: None })?;
        let record = record_from_object(obj, None)?;
        let received_at_ms = integer_field(obj, ATTR_RECEIVED_AT_MS, None)?;
        Ok(record.stamp(received_at_ms))
    }

    /// The Kinesis form: compact JSON with the four fields and a newline, so records written
    /// back to back (Firehose's S3 archive) are JSON lines.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers cannot fail.
        let mut json = serde_json::to_vec(self).expect("StampedRecord serializes to JSON");
        json.push(b'\n');
        json
    }

    /// Checks the field rules of a request ([`Record`]'s) on an already-typed record, e.g. one
    /// rebuilt from a DynamoDB image.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_id(&self.id, None)?;
        check_message(&self.message, None)
    }
}

/// A request body as the client shaped it: one object, or an array of objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The body was one JSON object (the classic sample's form).
    Single(Record),
    /// The body was a JSON array of 1..=[`MAX_RECORDS_PER_REQUEST`] objects.
    Batch(Vec<Record>),
}

impl Payload {
    /// The records, in request order.
    pub fn into_records(self) -> Vec<Record> {
        match self {
            Payload::Single(record) => vec![record],
            Payload::Batch(records) => records,
        }
    }
}

/// Why a request body (or a record read back from Kinesis or DynamoDB) was rejected.
///
/// `index` is the 0-based position in a JSON array, `None` for a single object; the message
/// then starts with `record <index>: `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body is {size} bytes, more than the limit of {limit}", limit = MAX_BODY_BYTES)]
    TooLarge {
        /// The body's size in bytes.
        size: usize,
    },
    /// The body is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON, but neither an object nor an array (or an array element is not an object).
    #[error("{}expected a JSON object with \"id\", \"message\" and \"timestamp\"", at(.index))]
    NotAnObject {
        /// Position in the array, if the body was one.
        index: Option<usize>,
    },
    /// The array has no element or more than [`MAX_RECORDS_PER_REQUEST`].
    #[error("expected 1 to {max} records, got {count}", max = MAX_RECORDS_PER_REQUEST)]
    BatchSize {
        /// How many elements the array had.
        count: usize,
    },
    /// A required field is absent (or `null`).
    #[error("{}missing field \"{field}\"", at(.index))]
    MissingField {
        /// Position in the array, if the body was one.
        index: Option<usize>,
        /// The field's name.
        field: &'static str,
    },
    /// A field is present but breaks its rule; `rule` completes "field "x" must be ...".
    #[error("{}field \"{field}\" must be {rule}", at(.index))]
    InvalidField {
        /// Position in the array, if the body was one.
        index: Option<usize>,
        /// The field's name.
        field: &'static str,
        /// What the field must be, e.g. "an integer".
        rule: String,
    },
}

fn at(index: &Option<usize>) -> String {
    index.map(|i| format!("record {i}: ")).unwrap_or_default()
}

impl ValidationError {
    /// The HTTP status to answer with: 413 for [`ValidationError::TooLarge`], 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            ValidationError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// Parses and validates a request body: one JSON object or a JSON array of
/// 1..=[`MAX_RECORDS_PER_REQUEST`] objects, each with a non-empty `id` string of at most
/// [`MAX_ID_CHARS`] characters, a `message` string of at most [`MAX_MESSAGE_BYTES`] bytes and an
/// integer `timestamp` (neither string may contain U+0000, which PostgreSQL cannot store). Unknown fields are ignored. Keeps the shape (see [`parse_request_body`]
/// for the records alone).
pub fn parse_request(body: &[u8]) -> Result<Payload, ValidationError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ValidationError::TooLarge { size: body.len() });
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ValidationError::InvalidJson(e.to_string()))?;
    match value {
        Value::Object(obj) => Ok(Payload::Single(record_from_object(&obj, None)?)),
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_RECORDS_PER_REQUEST {
                return Err(ValidationError::BatchSize { count: items.len() });
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let obj = item.as_object().ok_or(ValidationError::NotAnObject { index: Some(i) })?;
                    record_from_object(obj, Some(i))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Payload::Batch)
        }
        _ => Err(ValidationError::NotAnObject { index: None }),
    }
}

/// [`parse_request`], flattened to the records in request order.
pub fn parse_request_body(body: &[u8]) -> Result<Vec<Record>, ValidationError> {
    parse_request(body).map(Payload::into_records)
}

fn record_from_object(obj: &Map<String, Value>, index: Option<usize>) -> Result<Record, ValidationError> {
    let id = string_field(obj, ATTR_ID, index, "a non-empty string")?;
    check_id(id, index)?;
    let message = string_field(obj, ATTR_MESSAGE, index, "a string")?;
    check_message(message, index)?;
    let timestamp = integer_field(obj, ATTR_TIMESTAMP, index)?;
    Ok(Record { id: id.to_owned(), message: message.to_owned(), timestamp })
}

fn field<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
    index: Option<usize>,
) -> Result<&'a Value, ValidationError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(ValidationError::MissingField { index, field: name }),
        Some(value) => Ok(value),
    }
}

fn string_field<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
    index: Option<usize>,
    rule: &str,
) -> Result<&'a str, ValidationError> {
    field(obj, name, index)?.as_str().ok_or_else(|| invalid(index, name, rule))
}

fn integer_field(obj: &Map<String, Value>, name: &'static str, index: Option<usize>) -> Result<i64, ValidationError> {
    // `as_i64` is `None` for floats (even `1.0`), for integers beyond i64 and for non-numbers.
    field(obj, name, index)?.as_i64().ok_or_else(|| invalid(index, name, "an integer"))
}

fn check_id(id: &str, index: Option<usize>) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(invalid(index, ATTR_ID, "a non-empty string"));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(invalid(index, ATTR_ID, &format!("at most {MAX_ID_CHARS} characters")));
    }
    check_no_nul(id, ATTR_ID, index)
}

fn check_message(message: &str, index: Option<usize>) -> Result<(), ValidationError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(invalid(index, ATTR_MESSAGE, &format!("at most {MAX_MESSAGE_BYTES} bytes")));
    }
    check_no_nul(message, ATTR_MESSAGE, index)
}

/// PostgreSQL `TEXT` cannot hold U+0000: a record carrying it would fail its batch's insert on
/// every retry, so it is invalid from the start.
fn check_no_nul(text: &str, field: &'static str, index: Option<usize>) -> Result<(), ValidationError> {
    if text.contains('\0') {
        return Err(invalid(index, field, NO_NUL));
    }
    Ok(())
}

fn invalid(index: Option<usize>, field: &'static str, rule: &str) -> ValidationError {
    ValidationError::InvalidField { index, field, rule: rule.to_owned() }
}

/// Milliseconds from `received_at_ms` to `committed_at_ms`: saturating, and 0 when the commit
/// clock reads earlier than the receive clock (they are different machines' clocks).
pub fn latency_ms(received_at_ms: i64, committed_at_ms: i64) -> i64 {
    committed_at_ms.saturating_sub(received_at_ms).max(0)
}

/// The current time in Unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Vec<Record>, ValidationError> {
        parse_request_body(value.to_string().as_bytes())
    }

    fn err_single(value: Value) -> String {
        parse(value).unwrap_err().to_string()
    }

    /// The same object, alone and as element 1 of an array behind a valid one.
    fn err_both(value: Value) -> (String, String) {
        let ok = json!({"id": "a", "message": "m", "timestamp": 1});
        let single = err_single(value.clone());
        let batch = parse(json!([ok, value])).unwrap_err().to_string();
        (single, batch)
    }

    #[test]
    fn accepts_the_classic_single_record() {
        let body = br#"{"id": "1", "message": "Hello World", "timestamp": 1700000000}"#;
        assert_eq!(
            parse_request(body).unwrap(),
            Payload::Single(Record { id: "1".into(), message: "Hello World".into(), timestamp: 1_700_000_000 })
        );
    }

    #[test]
    fn accepts_an_array_and_keeps_order() {
        let records = parse(json!([
            {"id": "a", "message": "x", "timestamp": 1},
            {"id": "b", "message": "", "timestamp": -2},
        ]))
        .unwrap();
        assert_eq!(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(matches!(
            parse_request(br#"[{"id":"a","message":"m","timestamp":1}]"#).unwrap(),
            Payload::Batch(v) if v.len() == 1
        ));
    }

    #[test]
    fn ignores_unknown_fields() {
        let records = parse(json!({"id": "a", "message": "m", "timestamp": 1, "extra": [1]}));
        assert_eq!(records.unwrap()[0].id, "a");
    }

    #[test]
    fn missing_fields_are_named() {
        let (single, batch) = err_both(json!({"id": "a", "timestamp": 1}));
        assert_eq!(single, r#"missing field "message""#);
        assert_eq!(batch, r#"record 1: missing field "message""#);
        let (single, _) = err_both(json!({"message": "m", "timestamp": 1}));
        assert_eq!(single, r#"missing field "id""#);
        let (single, batch) = err_both(json!({"id": "a", "message": "m", "timestamp": null}));
        assert_eq!(single, r#"missing field "timestamp""#);
        assert_eq!(batch, r#"record 1: missing field "timestamp""#);
    }

    #[test]
    fn id_must_be_a_non_empty_string() {
        for id in [json!(""), json!(7), json!(["a"])] {
            let (single, batch) = err_both(json!({"id": id, "message": "m", "timestamp": 1}));
            assert_eq!(single, r#"field "id" must be a non-empty string"#);
            assert_eq!(batch, r#"record 1: field "id" must be a non-empty string"#);
        }
    }

    #[test]
    fn id_is_limited_to_128_characters() {
        let max = "é".repeat(MAX_ID_CHARS); // 256 bytes but 128 characters: accepted
        assert!(parse(json!({"id": max, "message": "m", "timestamp": 1})).is_ok());
        let long = "a".repeat(MAX_ID_CHARS + 1);
        let (single, batch) = err_both(json!({"id": long, "message": "m", "timestamp": 1}));
        assert_eq!(single, r#"field "id" must be at most 128 characters"#);
        assert_eq!(batch, r#"record 1: field "id" must be at most 128 characters"#);
    }

    #[test]
    fn message_must_be_a_string_of_at_most_16_kib() {
        let (single, batch) = err_both(json!({"id": "a", "message": 5, "timestamp": 1}));
        assert_eq!(single, r#"field "message" must be a string"#);
        assert_eq!(batch, r#"record 1: field "message" must be a string"#);
        let max = "m".repeat(MAX_MESSAGE_BYTES);
        assert!(parse(json!({"id": "a", "message": max, "timestamp": 1})).is_ok());
        let long = "m".repeat(MAX_MESSAGE_BYTES + 1);
        let (single, batch) = err_both(json!({"id": "a", "message": long, "timestamp": 1}));
        assert_eq!(single, r#"field "message" must be at most 16384 bytes"#);
        assert_eq!(batch, r#"record 1: field "message" must be at most 16384 bytes"#);
    }

    #[test]
    fn id_and_message_must_be_free_of_nul() {
        let (single, batch) = err_both(json!({"id": "a\u{0}b", "message": "m", "timestamp": 1}));
        assert_eq!(single, r#"field "id" must be free of NUL characters (U+0000)"#);
        assert_eq!(batch, r#"record 1: field "id" must be free of NUL characters (U+0000)"#);
        let e = parse_request_body(br#"{"id":"a","message":"x\u0000","timestamp":1}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"field "message" must be free of NUL characters (U+0000)"#);
        assert_eq!(e.status_code(), 400);
        // Other control characters are stored as they are.
        assert!(parse(json!({"id": "a\u{1}", "message": "\t\u{7f}", "timestamp": 1})).is_ok());
        // The same rule holds for the Kinesis form and for records rebuilt from DynamoDB.
        let e = StampedRecord::from_json(br#"{"id":"a","message":"\u0000","timestamp":1,"received_at_ms":2}"#);
        assert_eq!(e.unwrap_err().to_string(), r#"field "message" must be free of NUL characters (U+0000)"#);
        let nul = Record { id: "\0".into(), message: "m".into(), timestamp: 1 }.stamp(2);
        assert_eq!(nul.validate().unwrap_err().to_string(), r#"field "id" must be free of NUL characters (U+0000)"#);
    }

    #[test]
    fn timestamp_must_be_an_integer() {
        for ts in [json!("1700000000"), json!(1.5), json!(1.0), json!(u64::MAX), json!(true)] {
            let (single, batch) = err_both(json!({"id": "a", "message": "m", "timestamp": ts}));
            assert_eq!(single, r#"field "timestamp" must be an integer"#, "{ts}");
            assert_eq!(batch, r#"record 1: field "timestamp" must be an integer"#);
        }
        assert_eq!(parse(json!({"id": "a", "message": "m", "timestamp": i64::MIN})).unwrap()[0].timestamp, i64::MIN);
    }

    #[test]
    fn rejects_bodies_that_are_not_records() {
        assert!(err_single(json!("text")).starts_with("expected a JSON object"));
        assert!(parse(json!([{"id": "a", "message": "m", "timestamp": 1}, 3]))
            .unwrap_err()
            .to_string()
            .starts_with("record 1: expected a JSON object"));
        let e = parse_request_body(b"{not json").unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON: "), "{e}");
        assert_eq!(e.status_code(), 400);
        assert!(parse_request_body(b"").is_err());
    }

    #[test]
    fn arrays_hold_1_to_500_records() {
        assert_eq!(err_single(json!([])), "expected 1 to 500 records, got 0".to_string());
        let one = json!({"id": "a", "message": "m", "timestamp": 1});
        assert_eq!(parse(Value::Array(vec![one.clone(); 500])).unwrap().len(), 500);
        let e = parse(Value::Array(vec![one; 501])).unwrap_err();
        assert_eq!(e, ValidationError::BatchSize { count: 501 });
        assert_eq!(e.status_code(), 400);
    }

    #[test]
    fn bodies_over_1_mib_are_too_large() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let e = parse_request_body(&body).unwrap_err();
        assert_eq!(e, ValidationError::TooLarge { size: MAX_BODY_BYTES + 1 });
        assert_eq!(e.status_code(), 413);
        // Exactly the limit is parsed (and here fails as JSON, not as size).
        let body = vec![b' '; MAX_BODY_BYTES];
        assert_eq!(parse_request_body(&body).unwrap_err().status_code(), 400);
    }

    #[test]
    fn stamped_record_round_trips_through_json() {
        let stamped = Record { id: "id-1".into(), message: "héllo \"world\"\n".into(), timestamp: 1_700_000_000 }
            .stamp(1_700_000_000_123);
        let json = stamped.to_json();
        let value: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value,
            json!({"id": "id-1", "message": "héllo \"world\"\n",
                   "timestamp": 1_700_000_000, "received_at_ms": 1_700_000_000_123i64})
        );
        assert_eq!(StampedRecord::from_json(&json).unwrap(), stamped);
        assert_eq!(serde_json::from_slice::<StampedRecord>(&json).unwrap(), stamped);
    }

    #[test]
    fn stamped_record_from_json_applies_the_rules() {
        let e = StampedRecord::from_json(br#"{"id":"a","message":"m","timestamp":1}"#);
        assert_eq!(e.unwrap_err().to_string(), r#"missing field "received_at_ms""#);
        let e = StampedRecord::from_json(br#"{"id":"","message":"m","timestamp":1,"received_at_ms":2}"#);
        assert_eq!(e.unwrap_err().to_string(), r#"field "id" must be a non-empty string"#);
        assert!(StampedRecord::from_json(b"\xff").is_err());
        let bad = Record { id: String::new(), message: "m".into(), timestamp: 1 }.stamp(2);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn latency_is_the_difference_and_never_negative() {
        assert_eq!(latency_ms(1_000, 1_250), 250);
        assert_eq!(latency_ms(1_000, 1_000), 0);
        assert_eq!(latency_ms(2_000, 1_000), 0);
        assert_eq!(latency_ms(i64::MIN, i64::MAX), i64::MAX);
        assert_eq!(latency_ms(i64::MAX, i64::MIN), 0);
    }

    #[test]
    fn now_is_after_2020_in_milliseconds() {
        let now = now_ms();
        assert!(now > 1_577_836_800_000, "{now}");
        assert!(now < 4_102_444_800_000, "{now}");
    }

    #[test]
    fn schema_creates_the_table_idempotently() {
        assert!(SCHEMA_SQL.starts_with("CREATE TABLE IF NOT EXISTS records ("));
        assert!(SCHEMA_SQL.contains(&format!(" {TABLE} (")));
        for column in [
            "id TEXT PRIMARY KEY",
            "message TEXT NOT NULL",
            "client_timestamp BIGINT NOT NULL",
            "received_at_ms BIGINT NOT NULL",
            "committed_at_ms BIGINT NOT NULL",
            "latency_ms BIGINT NOT NULL",
            "inserted_at TIMESTAMPTZ NOT NULL DEFAULT now()",
        ] {
            assert!(SCHEMA_SQL.contains(column), "{column}");
        }
    }

    #[test]
    fn the_column_list_matches_the_schema() {
        let ddl = SCHEMA_SQL.to_lowercase().replace("timestamptz", "timestamp with time zone");
        for (column, data_type) in COLUMNS {
            assert!(ddl.contains(&format!("{column} {data_type}")), "{column} {data_type} is not in {SCHEMA_SQL}");
        }
        assert_eq!(ddl.matches(',').count() + 1, COLUMNS.len(), "every column of the DDL is listed");
    }

    #[test]
    fn the_kinesis_form_is_one_json_line_and_reads_back() {
        let record = StampedRecord { id: "a".into(), message: "m".into(), timestamp: 1, received_at_ms: 2 };
        let json = record.to_json();
        assert_eq!(json.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(json.ends_with(b"\n"));
        assert_eq!(StampedRecord::from_json(&json).unwrap(), record);
    }
}
