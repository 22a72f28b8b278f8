//! Checking a declared resource's properties against its kind's spec, before anything is read or
//! changed: each unknown property (with the properties there are), each missing or mistyped one
//! (with the path to it), in words a user of a declaration document can act on.

use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::Value;

/// A driver's [`Driver::check_declared`](crate::engine::driver::Driver::check_declared) and
/// [`Driver::properties`](crate::engine::driver::Driver::properties) for its spec type: written
/// inside `impl Driver<Cloud> for ...`, as `crate::declared_as!(SqsQueueSpec);`.
#[macro_export]
macro_rules! declared_as {
    ($spec:ty) => {
        fn check_declared(&self, props: &serde_json::Value) -> std::result::Result<(), String> {
            $crate::aws::declared::check::<$spec>(self.label(), props)
        }
        fn properties(&self) -> &'static [&'static str] {
            $crate::aws::declared::fields_of::<$spec>()
        }
    };
}

/// The property names of spec `S`, read from its `Deserialize` implementation (every field,
/// optional ones included), in declaration order.
pub fn fields_of<S: DeserializeOwned>() -> &'static [&'static str] {
    let mut probe = FieldProbe { fields: &[] };
    let _ = S::deserialize(&mut probe);
    probe.fields
}

/// Checks `props` (the mark excluded) against spec `S` of a kind labelled `label`.
pub fn check<S: DeserializeOwned + serde::Serialize>(label: &str, props: &Value) -> Result<(), String> {
    let Some(object) = props.as_object() else {
        return Err(format!("the properties of a {label} are an object, not {props}"));
    };
    let fields = fields_of::<S>();
    let unknown: Vec<&String> = object.keys().filter(|key| !fields.contains(&key.as_str())).collect();
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|key| format!("`{key}`")).collect();
        return Err(format!(
            "unknown propert{} {}: the properties of a {label} are {}",
            if unknown.len() == 1 { "y" } else { "ies" },
            names.join(", "),
            fields.join(", ")
        ));
    }
    let spec: S = serde_path_to_error::deserialize::<_, S>(props).map_err(|err| match err.path().to_string() {
        path if path == "." => err.inner().to_string(),
        path => format!("property `{path}`: {}", err.inner()),
    })?;
    // A field inside a property (a redrive's, a route's) that the spec does not have is dropped
    // by deserializing: what is read back lacks it.
    let read_back =
        serde_json::to_value(&spec).map_err(|err| format!("the properties cannot be written back: {err}"))?;
    match dropped(props, &read_back, "") {
        Some(path) => Err(format!("unknown property `{path}`: a {label} has no such field there")),
        None => Ok(()),
    }
}

/// The path of the first non-null field of `given` that `read_back` lacks (`None`: none).
fn dropped(given: &Value, read_back: &Value, path: &str) -> Option<String> {
    let at = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match (given, read_back) {
        (Value::Object(given), Value::Object(read)) => given.iter().find_map(|(key, value)| match read.get(key) {
            None if !value.is_null() => Some(at(key)),
            None => None,
            Some(back) => dropped(value, back, &at(key)),
        }),
        (Value::Array(given), Value::Array(read)) => given
            .iter()
            .zip(read)
            .enumerate()
            .find_map(|(i, (value, back))| dropped(value, back, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// A deserializer that only records the field names a struct asks for.
struct FieldProbe {
    fields: &'static [&'static str],
}

#[derive(Debug)]
struct Probed;

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed
    }
}

impl<'de> de::Deserializer<'de> for &mut FieldProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        self.fields = fields;
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::sqs_queue::SqsQueueSpec;
    use serde_json::json;

    #[test]
    fn every_field_of_a_spec_is_known_optional_ones_included() {
        assert_eq!(fields_of::<SqsQueueSpec>(), ["name", "retention_seconds", "visibility_timeout_s", "redrive"]);
    }

    #[test]
    fn an_unknown_property_is_named_with_the_properties_there_are() {
        let said = check::<SqsQueueSpec>("SQS queue", &json!({ "name": "q", "retention": 60 })).unwrap_err();
        assert_eq!(
            said,
            "unknown property `retention`: the properties of a SQS queue are name, retention_seconds, \
             visibility_timeout_s, redrive"
        );
    }

    #[test]
    fn an_unknown_field_inside_a_property_is_named_with_its_path() {
        let props = json!({ "name": "q", "retention_seconds": 60,
            "redrive": { "dead_letter_arn": "a", "max_receive_count": 5, "colour": "red" } });
        let said = check::<SqsQueueSpec>("SQS queue", &props).unwrap_err();
        assert_eq!(said, "unknown property `redrive.colour`: a SQS queue has no such field there");
        let null_optional = json!({ "name": "q", "retention_seconds": 60, "visibility_timeout_s": null });
        check::<SqsQueueSpec>("SQS queue", &null_optional).unwrap();
    }

    #[test]
    fn a_missing_or_mistyped_property_is_named_with_its_path() {
        let missing = check::<SqsQueueSpec>("SQS queue", &json!({ "name": "q" })).unwrap_err();
        assert!(missing.contains("missing field `retention_seconds`"), "{missing}");
        let mistyped = json!({ "name": "q", "retention_seconds": 60, "redrive": { "dead_letter_arn": "a", "max_receive_count": "five" } });
        let said = check::<SqsQueueSpec>("SQS queue", &mistyped).unwrap_err();
        assert!(said.starts_with("property `redrive.max_receive_count`: invalid type"), "{said}");
        check::<SqsQueueSpec>("SQS queue", &json!({ "name": "q", "retention_seconds": 60 })).unwrap();
    }
}
