//! Declaring a stack: each resource is added with its kind's typed properties and yields a typed
//! [`Handle`] whose outputs feed later resources' properties. The order of declaration is a valid
//! creation order, and the engine reads dependencies from the references themselves.

use crate::document::{Declaration, ExportDocument, ManagedProperty, Resource, VERSION};
use crate::Input;
use serde::Serialize;
use serde_json::{Map, Value};
use std::marker::PhantomData;

/// A resource kind's declared properties.
pub trait Spec: Serialize {
    /// The kind's name, as the document and the state record it (`sqs_queue`).
    const KIND: &'static str;
}

/// A reference to a declared resource, typed by its spec so only real outputs can be named.
pub struct Handle<S> {
    id: String,
    spec: PhantomData<S>,
}

impl<S> Handle<S> {
    /// The handle of the resource declared as `id` (for code that declared it elsewhere).
    pub fn of(id: &str) -> Self {
        Handle { id: id.to_string(), spec: PhantomData }
    }

    /// The resource's id in the stack.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A reference to one of the resource's outputs. Each kind's module wraps this in typed
    /// accessors (`queue.arn()`), which is what stack code should use.
    pub fn output(&self, name: &str) -> Input<String> {
        Input::output(&self.id, name)
    }
}

/// A stack being declared: the document a program prints, built resource by resource.
///
/// Its methods panic on what can only be a bug in the program (an id declared twice, a
/// reference to a resource not declared before): the engine shows the panic and changes nothing.
#[derive(Debug, Clone)]
pub struct StackDef {
    document: Declaration,
}

impl StackDef {
    /// An empty stack named `name` (the request's `stack`): it prefixes every physical name.
    pub fn new(name: &str) -> Self {
        let document = Declaration {
            version: VERSION,
            stack: name.to_string(),
            resources: vec![],
            exports: vec![],
            notes: vec![],
            advice: Default::default(),
            reads: vec![],
        };
        Self { document }
    }

    /// The stack's name.
    pub fn name(&self) -> &str {
        &self.document.stack
    }

    /// A physical name for a resource of this stack: `<stack>-<suffix>`.
    pub fn physical_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.document.stack)
    }

    /// Adds a resource and returns its handle.
    ///
    /// Panics on a duplicate id, or a reference to a resource not declared before this one.
    pub fn add<S: Spec>(&mut self, id: &str, spec: S) -> Handle<S> {
        assert!(!self.declares(id), "resource id `{id}` declared twice");
        let properties = match serde_json::to_value(&spec).expect("specs serialize to JSON") {
            Value::Object(properties) => properties,
            other => panic!("the spec of `{id}` serializes to {other}, not an object"),
        };
        for reference in references(&properties) {
            let target = reference.split_once('.').map_or(reference.as_str(), |(target, _)| target);
            assert!(self.declares(target), "`{id}` refers to `{target}`, which is not declared before it");
        }
        self.document.resources.push(Resource {
            id: id.to_string(),
            kind: S::KIND.to_string(),
            properties,
            managed: vec![],
        });
        Handle::of(id)
    }

    /// Leaves `property` of `resource` to be managed at run time within `min..=max` by `by` (an
    /// autoscaler's shard count): the declared value is what a create starts with; afterwards a
    /// value within the bounds is not a change, and one outside is brought back to the nearest.
    ///
    /// Panics when the resource is not declared or the property does not start within bounds.
    pub fn manage<S>(&mut self, resource: &Handle<S>, property: &str, (min, max): (f64, f64), by: &str) {
        let declared = self.document.resources.iter_mut().find(|r| r.id == resource.id);
        let declared = declared.unwrap_or_else(|| panic!("managed resource `{}` is not declared", resource.id));
        let start = declared.properties.get(property).and_then(Value::as_f64);
        assert!(
            start.is_some_and(|v| (min..=max).contains(&v)),
            "`{property}` of `{}` starts within its bounds",
            resource.id
        );
        declared.managed.push(ManagedProperty { property: property.to_string(), min, max, by: by.to_string() });
    }

    /// Declares a value users need once the stack is up (`provision outputs`): `parts` (text,
    /// and outputs of resources declared before) joined.
    ///
    /// Panics on a duplicate name or a reference to an undeclared resource.
    pub fn export(&mut self, name: &str, parts: impl IntoIterator<Item = Input<String>>) {
        assert!(self.document.exports.iter().all(|e| e.name != name), "export `{name}` declared twice");
        let parts: Vec<Input<String>> = parts.into_iter().collect();
        for part in &parts {
            if let Input::Output { reference } = part {
                let id = reference.split_once('.').map_or(reference.as_str(), |(id, _)| id);
                assert!(self.declares(id), "export `{name}` refers to `{id}`, which is not declared");
            }
        }
        self.document.exports.push(ExportDocument { name: name.to_string(), parts });
    }

    /// Adds a line a plan prints about the declaration (how a size was derived).
    pub fn note(&mut self, text: impl Into<String>) {
        self.document.notes.push(text.into());
    }

    /// The resource declared as `id`, as the document holds it.
    pub fn get(&self, id: &str) -> Option<&Resource> {
        self.document.resources.iter().find(|r| r.id == id)
    }

    /// What to tell a user whose endpoint does not offer `service` (`rds`): the program's way
    /// around it, said after the engine names what is missing.
    pub fn advise(&mut self, service: &str, advice: impl Into<String>) {
        self.document.advice.insert(service.to_string(), advice.into());
    }

    /// The text of a file the declaration depends on (a CA certificate to trust, a policy),
    /// recorded in the document's `reads`: the engine runs the program again when the file
    /// changes, as it does when the program or its request does. `path` is relative to the
    /// project's root (where the program runs) or absolute.
    pub fn read_file(&mut self, path: &str) -> std::io::Result<String> {
        if !self.document.reads.iter().any(|read| read == path) {
            self.document.reads.push(path.to_string());
        }
        std::fs::read_to_string(path)
    }

    /// True when a resource `id` is declared.
    pub fn declares(&self, id: &str) -> bool {
        self.document.resources.iter().any(|r| r.id == id)
    }

    /// The declaration document.
    pub fn document(&self) -> &Declaration {
        &self.document
    }

    /// The declaration document, taken.
    pub fn into_document(self) -> Declaration {
        self.document
    }
}

/// Every `"$ref"` inside `properties`.
fn references(properties: &Map<String, Value>) -> Vec<String> {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => match map.get("$ref").and_then(Value::as_str) {
                Some(reference) if map.len() == 1 => found.push(reference.to_string()),
                _ => map.values().for_each(|v| walk(v, found)),
            },
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    properties.values().for_each(|v| walk(v, &mut found));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::sqs_queue::{Redrive, SqsQueueSpec};

    #[test]
    fn a_reference_names_the_resource_and_output_and_lands_in_the_document() {
        let mut stack = StackDef::new("s");
        let dead = stack.add("dead", SqsQueueSpec::new(stack.physical_name("dead"), 1_209_600));
        let jobs = SqsQueueSpec {
            redrive: Some(Redrive { dead_letter_arn: dead.arn(), max_receive_count: 3 }),
            ..SqsQueueSpec::new(stack.physical_name("jobs"), 60)
        };
        stack.add("jobs", jobs);
        let document = serde_json::to_value(stack.document()).unwrap();
        assert_eq!(
            document["resources"][1]["properties"]["redrive"]["dead_letter_arn"],
            serde_json::json!({"$ref": "dead.arn"})
        );
        assert_eq!(document["resources"][0]["properties"]["name"], "s-dead");
        assert_eq!(document["version"], VERSION);
    }

    #[test]
    #[should_panic(expected = "not declared before it")]
    fn a_reference_to_a_later_resource_is_a_bug_in_the_program() {
        let mut stack = StackDef::new("s");
        let later: Handle<SqsQueueSpec> = Handle::of("later");
        let redrive = Redrive { dead_letter_arn: later.arn(), max_receive_count: 3 };
        stack.add("jobs", SqsQueueSpec { redrive: Some(redrive), ..SqsQueueSpec::new("s-jobs".into(), 60) });
    }
}
