//! Typed references between resources: an [`Input`] is either a value known when the stack is
//! declared, or an output of another resource that becomes known when that resource exists. A
//! reference is the JSON object `{"$ref": "<resource id>.<output name>"}`.

use serde::{Deserialize, Serialize};

/// A value of type `T`, or a reference to another resource's output of that type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Input<T> {
    /// An output of another resource, as `resource_id.output_name`.
    Output {
        #[serde(rename = "$ref")]
        reference: String,
    },
    /// A value known at declaration time (or a reference already resolved).
    Value(T),
}

impl<T> Input<T> {
    /// A reference to `output` of the resource `resource_id`.
    pub fn output(resource_id: &str, output: &str) -> Self {
        Input::Output { reference: format!("{resource_id}.{output}") }
    }

    /// The value, or `None` while it is a reference not yet resolved.
    pub fn value(&self) -> Option<&T> {
        match self {
            Input::Value(value) => Some(value),
            Input::Output { .. } => None,
        }
    }

    /// The resolved value. The engine resolves every reference before it hands properties to a
    /// driver, so a driver never sees an unresolved one.
    pub fn get(&self) -> &T {
        match self {
            Input::Value(value) => value,
            Input::Output { reference } => {
                panic!("input {reference} reached a driver unresolved: the engine resolves inputs before apply")
            }
        }
    }
}

impl<T> From<T> for Input<T> {
    fn from(value: T) -> Self {
        Input::Value(value)
    }
}

impl From<&str> for Input<String> {
    fn from(value: &str) -> Self {
        Input::Value(value.to_string())
    }
}
