//! Typed references between resources: an [`Input`] is either a value known when the stack is
//! declared, or an output of another resource that becomes known when that resource exists.
//!
//! Inputs serialize to JSON so the engine can diff and record them; a reference is the object
//! `{"$ref": "<resource id>.<output name>"}`, which [`resolve`] replaces with the output's value.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use declaration::Input;

/// The resource ids that `props` refers to, sorted and without repeats.
pub fn references(props: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk_refs(props, &mut |reference| {
        if let Some((id, _)) = reference.split_once('.') {
            found.push(id.to_string());
        }
    });
    found.sort();
    found.dedup();
    found
}

fn walk_refs(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = as_reference(map) {
                visit(reference);
            } else {
                map.values().for_each(|v| walk_refs(v, visit));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk_refs(v, visit)),
        _ => {}
    }
}

fn as_reference(map: &Map<String, Value>) -> Option<&str> {
    match (map.len(), map.get("$ref")) {
        (1, Some(Value::String(reference))) => Some(reference),
        _ => None,
    }
}

/// Outputs of resources by id, as recorded in the state or produced during an apply.
pub type KnownOutputs = BTreeMap<String, Map<String, Value>>;

/// Replaces every reference in `props` whose output is known. Returns the resolved properties
/// and the top-level property names that still hold an unresolved reference ("known after apply").
pub fn resolve(props: &Value, known: &KnownOutputs) -> (Value, Vec<String>) {
    let mut unresolved = Vec::new();
    let resolved = match props {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let (value, complete) = resolve_value(value, known);
                    if !complete {
                        unresolved.push(key.clone());
                    }
                    (key.clone(), value)
                })
                .collect(),
        ),
        other => resolve_value(other, known).0,
    };
    (resolved, unresolved)
}

/// One value with its references resolved, or `None` while one of them is not known.
pub fn resolve_one(value: &Value, known: &KnownOutputs) -> Option<Value> {
    let (value, complete) = resolve_value(value, known);
    complete.then_some(value)
}

fn resolve_value(value: &Value, known: &KnownOutputs) -> (Value, bool) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = as_reference(map) {
                // An output that is null (a table without a stream has no stream ARN) is not known.
                let found = reference
                    .split_once('.')
                    .and_then(|(id, output)| known.get(id)?.get(output).cloned())
                    .filter(|v| !v.is_null());
                return match found {
                    Some(v) => (v, true),
                    None => (value.clone(), false),
                };
            }
            let mut complete = true;
            let out = map
                .iter()
                .map(|(k, v)| {
                    let (v, c) = resolve_value(v, known);
                    complete &= c;
                    (k.clone(), v)
                })
                .collect();
            (Value::Object(out), complete)
        }
        Value::Array(items) => {
            let mut complete = true;
            let out = items
                .iter()
                .map(|v| {
                    let (v, c) = resolve_value(v, known);
                    complete &= c;
                    v
                })
                .collect();
            (Value::Array(out), complete)
        }
        other => (other.clone(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_at_any_depth() {
        let props = json!({"a": {"$ref": "role.arn"}, "b": [{"x": {"$ref": "stream.arn"}}], "c": 3});
        assert_eq!(references(&props), vec!["role", "stream"]);
    }

    #[test]
    fn resolve_replaces_known_and_reports_unknown_fields() {
        let props = json!({"role": {"$ref": "role.arn"}, "source": {"$ref": "stream.arn"}, "n": 1});
        let mut known = KnownOutputs::new();
        known.insert("role".into(), json!({"arn": "arn:role"}).as_object().unwrap().clone());
        let (resolved, unresolved) = resolve(&props, &known);
        assert_eq!(resolved["role"], json!("arn:role"));
        assert_eq!(resolved["source"], json!({"$ref": "stream.arn"}));
        assert_eq!(unresolved, vec!["source"]);
    }

    #[test]
    fn typed_input_round_trips_through_json() {
        let reference: Input<String> = Input::output("table", "stream_arn");
        let json = serde_json::to_value(&reference).unwrap();
        assert_eq!(json, serde_json::json!({"$ref": "table.stream_arn"}));
        let value: Input<String> = serde_json::from_value(json!("plain")).unwrap();
        assert_eq!(value.get(), "plain");
    }
}
