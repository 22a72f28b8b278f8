//! The declaration as a document: what a program hands the engine, as versioned JSON
//! (`docs/declaration.md`, `docs/declaration.schema.json`). Every stack the engine plans comes
//! through here: a program's declaration is written as a [`Declaration`] and read back with
//! [`Declaration::into_stack`], which checks it whole before anything is read or changed in the
//! cloud (the version, ids, kinds, every property against its kind, every reference, cycles,
//! exports, managed properties) and names each problem with the resource, the property and the
//! fix.

use crate::engine::declare::{Declared, Export, Managed, StackDef};
use crate::engine::driver::{Kind, Registry};
use crate::engine::input::{self, Input};
use crate::engine::mark::TAGS_PROPERTY;
use anyhow::{bail, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub use declaration::document::{Declaration, ExportDocument, ManagedProperty, Resource, VERSION};

/// What the engine does with a declaration document: write one from a stack declared in the
/// engine, read one a program printed, and check it into the stack the engine plans.
pub trait Document: Sized {
    /// The document of a declared stack (the mark left out: the engine writes it).
    fn of(stack: &StackDef) -> Self;
    /// Reads a document from JSON text `from` wrote (a program's output), naming what is wrong.
    fn parse(text: &str, from: &str) -> Result<Self>;
    /// The stack this document declares for stack `name` with the checkout's `origin`, marked,
    /// once every check passes; otherwise one error naming each problem. Reads nothing.
    fn into_stack<C: Sync>(self, name: &str, origin: &str, registry: &Registry<C>) -> Result<StackDef>;
}

impl Document for Declaration {
    fn of(stack: &StackDef) -> Self {
        let resources = stack
            .resources
            .iter()
            .map(|resource| {
                let mut properties = resource.props.as_object().cloned().unwrap_or_default();
                properties.remove(TAGS_PROPERTY);
                Resource {
                    id: resource.id.clone(),
                    kind: resource.kind.name().to_string(),
                    properties,
                    managed: resource
                        .managed
                        .iter()
                        .map(|m| ManagedProperty {
                            property: m.property.clone(),
                            min: m.min,
                            max: m.max,
                            by: m.by.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        let exports =
            stack.exports.iter().map(|e| ExportDocument { name: e.name.clone(), parts: e.parts.clone() }).collect();
        Declaration {
            version: VERSION,
            stack: stack.name.clone(),
            resources,
            exports,
            notes: stack.notes.clone(),
            advice: stack.advice.clone(),
            // What the program read matters to the answer cache only, not to the stack.
            reads: vec![],
        }
    }

    fn parse(text: &str, from: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|err| {
            let printed: String = text.trim().chars().take(200).collect();
            anyhow::anyhow!(
                "{from} did not print a declaration: its output is not JSON ({err}). A program prints one JSON \
                 document on stdout (docs/declaration.md); print anything else on stderr. It printed: {}",
                if printed.is_empty() { "nothing".to_string() } else { format!("{printed:?}") }
            )
        })?;
        let version = value.get("version").and_then(Value::as_u64);
        if version != Some(u64::from(VERSION)) {
            let found = value.get("version").map_or("no `version`".to_string(), |v| format!("version {v}"));
            bail!(
                "{from} printed a declaration with {found}: this provision reads version {VERSION}. Build the \
                 program against the declaration crate of this release, or install the provision that matches it"
            );
        }
        serde_path_to_error::deserialize(value).map_err(|err| {
            anyhow::anyhow!(
                "{from} printed a declaration that is not well formed: at `{}`: {} (docs/declaration.md describes \
                 the document)",
                err.path(),
                err.inner()
            )
        })
    }

    fn into_stack<C: Sync>(self, name: &str, origin: &str, registry: &Registry<C>) -> Result<StackDef> {
        let problems = problems(&self, name, registry);
        if !problems.is_empty() {
            bail!(
                "the declaration of stack `{name}` cannot be deployed; nothing was read or changed:\n{}",
                problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
            );
        }
        let mut stack = StackDef::new(name, origin);
        for resource in in_creation_order(self.resources) {
            let kind = registry.kinds().find(|k| k.name() == resource.kind).expect("checked");
            let props = Value::Object(resource.properties);
            let deps = input::references(&props);
            let managed = resource
                .managed
                .into_iter()
                .map(|m| Managed { property: m.property, min: m.min, max: m.max, by: m.by })
                .collect();
            stack.resources.push(Declared { id: resource.id, kind, props, deps, managed });
        }
        stack.exports = self.exports.into_iter().map(|e| Export { name: e.name, parts: e.parts }).collect();
        stack.notes = self.notes;
        stack.advice = self.advice;
        stack.mark_taggable(registry);
        Ok(stack)
    }
}

/// Everything wrong with the document, each naming the resource, the property and the fix.
fn problems<C: Sync>(document: &Declaration, name: &str, registry: &Registry<C>) -> Vec<String> {
    let mut problems = Vec::new();
    if document.stack != name {
        problems.push(format!(
            "the declaration is for stack `{}`, not `{name}`: a program declares the stack it is asked for",
            document.stack
        ));
    }
    // Each declared id, with its kind when there is such a kind.
    let mut kinds: BTreeMap<&str, Option<Kind>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for resource in &document.resources {
        if !seen.insert(resource.id.as_str()) {
            problems.push(format!("resource id `{}` is declared twice: give each resource its own id", resource.id));
        }
        let kind = registry.kinds().find(|k| k.name() == resource.kind);
        kinds.insert(&resource.id, kind);
        match kind {
            Some(_) => {}
            None => {
                let known: Vec<&str> = registry.kinds().map(Kind::name).collect();
                problems.push(format!(
                    "resource `{}`: there is no kind `{}`; the kinds are {}",
                    resource.id,
                    resource.kind,
                    known.join(", ")
                ));
            }
        }
    }
    for resource in &document.resources {
        let Some(Some(kind)) = kinds.get(resource.id.as_str()) else { continue };
        problems.extend(resource_problems(resource, *kind, &kinds, registry));
    }
    problems.extend(cycle(&document.resources).map(|ids| {
        format!("resources {} refer to each other in a cycle: one of them must not refer back", ids.join(" -> "))
    }));
    for export in &document.exports {
        for part in &export.parts {
            if let Input::Output { reference } = part {
                if let Err(problem) = check_reference(reference, &kinds, registry) {
                    problems.push(format!("export `{}`: {problem}", export.name));
                }
            }
        }
    }
    problems
}

/// What is wrong with one resource of a known kind: its properties, references and managed ones.
fn resource_problems<C: Sync>(
    resource: &Resource,
    kind: Kind,
    kinds: &BTreeMap<&str, Option<Kind>>,
    registry: &Registry<C>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let driver = registry.driver(kind).expect("a registered kind");
    let at = format!("resource `{}` ({})", resource.id, driver.label());
    if resource.properties.contains_key(TAGS_PROPERTY) {
        problems.push(format!("{at}: `tags` is provision's ownership mark, written by the engine: remove it"));
    }
    let mut props = resource.properties.clone();
    props.remove(TAGS_PROPERTY);
    if let Err(problem) = driver.check_declared(&Value::Object(props.clone())) {
        problems.push(format!("{at}: {problem}"));
    }
    for (property, value) in &props {
        let mut references = Vec::new();
        walk_references(value, &mut |reference| references.push(reference.to_string()));
        for reference in references {
            if let Err(problem) = check_reference(&reference, kinds, registry) {
                problems.push(format!("{at}, property `{property}`: {problem}"));
            }
        }
    }
    for managed in &resource.managed {
        let start = props.get(&managed.property).and_then(Value::as_f64);
        if !start.is_some_and(|v| (managed.min..=managed.max).contains(&v)) {
            problems.push(format!(
                "{at}: managed property `{}` must be a number declared within {}..={}",
                managed.property, managed.min, managed.max
            ));
        }
    }
    problems
}

/// Checks that `reference` (`<id>.<output>`) names a declared resource and one of its outputs.
fn check_reference<C: Sync>(
    reference: &str,
    kinds: &BTreeMap<&str, Option<Kind>>,
    registry: &Registry<C>,
) -> Result<(), String> {
    let Some((id, output)) = reference.split_once('.') else {
        return Err(format!("the reference `{reference}` is not `<resource id>.<output>`"));
    };
    let Some(kind) = kinds.get(id) else {
        return Err(format!("refers to `{id}`, which is not declared: declare it, or correct the id"));
    };
    let Some(kind) = kind else {
        return Ok(()); // declared with a kind there is no such thing as: said once, for it
    };
    let driver = registry.driver(*kind).expect("a registered kind");
    if !driver.outputs().contains(&output) {
        return Err(format!(
            "refers to output `{output}` of `{id}`, a {} that has no such output: its outputs are {}",
            driver.label(),
            driver.outputs().join(", ")
        ));
    }
    Ok(())
}

/// Calls `found` with each reference (`<id>.<output>`) in `value`.
fn walk_references(value: &Value, found: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => match (map.len(), map.get("$ref")) {
            (1, Some(Value::String(reference))) => found(reference),
            _ => map.values().for_each(|v| walk_references(v, found)),
        },
        Value::Array(items) => items.iter().for_each(|v| walk_references(v, found)),
        _ => {}
    }
}

/// The ids of one cycle of references among `resources`, first id repeated at the end (`None`
/// when there is none).
fn cycle(resources: &[Resource]) -> Option<Vec<String>> {
    let refers: BTreeMap<&str, Vec<String>> =
        resources.iter().map(|r| (r.id.as_str(), input::references(&Value::Object(r.properties.clone())))).collect();
    // Depth-first search, colouring each id: 1 while on the path, 2 once finished.
    fn visit<'a>(
        id: &'a str,
        refers: &'a BTreeMap<&str, Vec<String>>,
        colour: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match colour.get(id) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == id).unwrap_or(0);
                let mut ids: Vec<String> = path[start..].iter().map(|s| format!("`{s}`")).collect();
                ids.push(format!("`{id}`"));
                return Some(ids);
            }
            _ => {}
        }
        colour.insert(id, 1);
        path.push(id);
        for next in refers.get(id).into_iter().flatten() {
            if let Some((key, _)) = refers.get_key_value(next.as_str()) {
                if let Some(found) = visit(key, refers, colour, path) {
                    return Some(found);
                }
            }
        }
        path.pop();
        colour.insert(id, 2);
        None
    }
    let mut colour = BTreeMap::new();
    refers.keys().find_map(|id| visit(id, &refers, &mut colour, &mut Vec::new()))
}

/// The resources reordered so each comes after those it refers to (the order a program wrote
/// them kept otherwise). There is no cycle: checked before.
fn in_creation_order(mut pending: Vec<Resource>) -> Vec<Resource> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|r| input::references(&Value::Object(r.properties.clone())).iter().all(|d| placed.contains(d)))
            .expect("no cycle among checked resources");
        let resource = pending.remove(ready);
        placed.insert(resource.id.clone());
        ordered.push(resource);
    }
    ordered
}

/// The JSON Schema of the document for the kinds `registry` knows: the shape of the document,
/// each kind's property names, references and exports (`docs/declaration.schema.json` is this,
/// written out; a test holds the two together). The engine's own checks go further: property
/// types, that references name declared resources and their outputs, cycles.
pub fn schema<C: Sync>(registry: &Registry<C>) -> Value {
    let kinds: Vec<&str> = registry.kinds().map(Kind::name).collect();
    let per_kind: Vec<Value> = registry
        .kinds()
        .map(|kind| {
            let driver = registry.driver(kind).expect("a registered kind");
            serde_json::json!({
                "if": { "properties": { "kind": { "const": kind.name() } } },
                "then": { "properties": { "properties": {
                    "description": format!("the properties of a {}; its outputs: {}", driver.label(), driver.outputs().join(", ")),
                    "propertyNames": { "enum": driver.properties() },
                } } },
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("provision declaration, version {VERSION}"),
        "description": "A stack as a program declares it: docs/declaration.md",
        "type": "object",
        "required": ["version", "stack", "resources"],
        "additionalProperties": false,
        "properties": {
            "version": { "const": VERSION },
            "stack": { "type": "string", "minLength": 1 },
            "resources": { "type": "array", "items": { "$ref": "#/$defs/resource" } },
            "exports": { "type": "array", "items": { "$ref": "#/$defs/export" } },
            "notes": { "type": "array", "items": { "type": "string" } },
            "advice": { "type": "object", "additionalProperties": { "type": "string" } },
            "reads": {
                "description": "Files the program read (relative to the project's root, or absolute): it runs again when one changes",
                "type": "array",
                "items": { "type": "string", "minLength": 1 },
            },
        },
        "$defs": {
            "resource": {
                "type": "object",
                "required": ["id", "kind", "properties"],
                "additionalProperties": false,
                "properties": {
                    "id": { "type": "string", "minLength": 1, "pattern": "^[^.]+$" },
                    "kind": { "enum": kinds },
                    "properties": { "type": "object", "not": { "required": ["tags"] } },
                    "managed": { "type": "array", "items": { "$ref": "#/$defs/managed" } },
                },
                "allOf": per_kind,
            },
            "reference": {
                "description": "An output of another resource: {\"$ref\": \"<resource id>.<output>\"}",
                "type": "object",
                "required": ["$ref"],
                "additionalProperties": false,
                "properties": { "$ref": { "type": "string", "pattern": "^[^.]+\\.[A-Za-z0-9_]+$" } },
            },
            "managed": {
                "type": "object",
                "required": ["property", "min", "max", "by"],
                "additionalProperties": false,
                "properties": {
                    "property": { "type": "string" },
                    "min": { "type": "number" },
                    "max": { "type": "number" },
                    "by": { "type": "string" },
                },
            },
            "export": {
                "type": "object",
                "required": ["name", "parts"],
                "additionalProperties": false,
                "properties": {
                    "name": { "type": "string" },
                    "parts": { "type": "array", "items": { "anyOf": [{ "type": "string" }, { "$ref": "#/$defs/reference" }] } },
                },
            },
        },
    })
}
