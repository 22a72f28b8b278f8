//! The declaration as a document: what a program prints and the engine reads
//! (`docs/declaration.md` describes it, `docs/declaration.schema.json` holds its schema).

use crate::Input;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The version of the document this crate writes (and the engine of the same release reads).
pub const VERSION: u32 = 1;

/// A declared stack, as a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// The document's version: [`VERSION`].
    pub version: u32,
    /// The stack's name: it prefixes every physical name.
    pub stack: String,
    /// The resources, each after those it refers to.
    pub resources: Vec<Resource>,
    /// Values users need once the stack is up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExportDocument>,
    /// Lines a plan prints about the declaration itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What to tell a user whose endpoint does not offer a service the stack needs, by service
    /// (`rds`): the program's own way around it, said after the engine names what is missing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub advice: BTreeMap<String, String>,
    /// Files the program read while declaring ([`crate::StackDef::read_file`]), relative to the
    /// project's root or absolute: its answer holds only while they are unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
}

/// One declared resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Its id in the stack (what references name).
    pub id: String,
    /// Its kind, as the state records it (`kinesis_stream`).
    pub kind: String,
    /// Its properties; a reference to another resource's output is `{"$ref": "<id>.<output>"}`.
    pub properties: Map<String, Value>,
    /// Properties left to be managed at run time within bounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed: Vec<ManagedProperty>,
}

/// A property managed at run time within `min..=max`, by `by`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedProperty {
    pub property: String,
    pub min: f64,
    pub max: f64,
    pub by: String,
}

/// A value users need once the stack is up: text and outputs, joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    pub name: String,
    /// Strings and references, in order.
    pub parts: Vec<Input<String>>,
}
