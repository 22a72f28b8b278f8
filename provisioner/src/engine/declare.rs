//! Declaring a stack in Rust: each resource is added with typed properties and yields a typed
//! [`Handle`] whose outputs feed later resources' inputs. The order of declaration is therefore
//! a valid creation order, and dependencies are read from the references themselves.

use crate::engine::driver::{Kind, Registry};
use crate::engine::input::{self, Input, KnownOutputs};
use crate::engine::mark::{Mark, TAGS_PROPERTY};
use serde_json::Value;
use std::collections::BTreeMap;

pub use declaration::Spec;

/// A declared resource: its id in the stack, kind, properties (with references) and dependencies.
#[derive(Debug, Clone)]
pub struct Declared {
    pub id: String,
    pub kind: Kind,
    pub props: Value,
    pub deps: Vec<String>,
    /// Properties left to be managed at run time within bounds (see [`StackDef::manage`]).
    pub managed: Vec<Managed>,
}

/// A property the declaration leaves to something at run time (an autoscaler's shard count),
/// within bounds, as Terraform's `ignore_changes` and Pulumi's `ignoreChanges` do, but bounded:
/// the declared value is what a create starts with; afterwards a value within `min..=max` is not
/// a change, and one outside is brought back to the nearest bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    pub property: String,
    pub min: f64,
    pub max: f64,
    /// Who manages it, for plans: `autoscaled`, `moved by the scaler`.
    pub by: String,
}

pub use declaration::Handle;

/// A value users need once the stack is up (an API URL, a queue URL), as a program declares it:
/// text and other resources' outputs, joined. `provision outputs` resolves it from the state.
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    /// Literal parts and references, in order.
    pub parts: Vec<Input<String>>,
}

/// The whole declared stack.
#[derive(Debug, Clone)]
pub struct StackDef {
    pub name: String,
    /// The owner's mark every taggable resource carries (`engine::mark`).
    pub mark: Mark,
    pub resources: Vec<Declared>,
    /// What users need once it is up, in the order declared.
    pub exports: Vec<Export>,
    /// What a plan says about the declaration itself (how a size was derived), in order.
    pub notes: Vec<String>,
    /// The program's advice when the endpoint lacks a service, by service.
    pub advice: BTreeMap<String, String>,
}

impl StackDef {
    /// An empty stack. `name` prefixes every physical resource name; `origin` tells this
    /// checkout's resources from another's of the same stack name.
    pub fn new(name: &str, origin: &str) -> Self {
        Self {
            name: name.to_string(),
            mark: Mark { stack: name.to_string(), origin: origin.to_string() },
            resources: Vec::new(),
            exports: Vec::new(),
            notes: Vec::new(),
            advice: BTreeMap::new(),
        }
    }

    /// Leaves `property` of `resource` to be managed at run time within `min..=max` by `by`
    /// (see [`Managed`]).
    ///
    /// Panics when the resource is not declared or the property is not a number within the
    /// bounds: bugs in the program.
    pub fn manage<S>(&mut self, resource: &Handle<S>, property: &str, (min, max): (f64, f64), by: &str) {
        let declared = self.resources.iter_mut().find(|r| r.id == resource.id()).expect("managed resource is declared");
        let start = declared.props.get(property).and_then(Value::as_f64);
        assert!(
            start.is_some_and(|v| (min..=max).contains(&v)),
            "`{property}` of `{}` starts within its bounds",
            resource.id()
        );
        declared.managed.push(Managed { property: property.to_string(), min, max, by: by.to_string() });
    }

    /// Adds a line a plan prints about the declaration (how a size was derived).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Declares a value users need once the stack is up: `parts` (text, and outputs of
    /// resources declared before) joined.
    ///
    /// Panics on a duplicate name or a reference to an undeclared resource: bugs in the program.
    pub fn export(&mut self, name: &str, parts: impl IntoIterator<Item = Input<String>>) {
        assert!(self.exports.iter().all(|e| e.name != name), "export `{name}` declared twice");
        let parts: Vec<Input<String>> = parts.into_iter().collect();
        for part in &parts {
            if let Input::Output { reference } = part {
                let id = reference.split_once('.').map_or(reference.as_str(), |(id, _)| id);
                assert!(self.get(id).is_some(), "export `{name}` refers to `{id}`, which is not declared");
            }
        }
        self.exports.push(Export { name: name.to_string(), parts });
    }

    /// Every export with its value from `known` outputs (`None` while a part is not known: the
    /// resource is not created yet).
    pub fn resolve_exports(&self, known: &KnownOutputs) -> Vec<(String, Option<String>)> {
        self.exports
            .iter()
            .map(|export| {
                let parts: Option<Vec<String>> = export
                    .parts
                    .iter()
                    .map(|part| {
                        let value = input::resolve_one(&serde_json::to_value(part).ok()?, known)?;
                        value.as_str().map(str::to_string)
                    })
                    .collect();
                (export.name.clone(), parts.map(|parts| parts.concat()))
            })
            .collect()
    }

    /// Adds a resource and returns its handle.
    ///
    /// Panics on a duplicate id: that is a bug in the stack's declaration, not a user error.
    pub fn add<S: Spec>(&mut self, id: &str, spec: S) -> Handle<S> {
        assert!(self.get(id).is_none(), "resource id `{id}` declared twice");
        let props = serde_json::to_value(&spec).expect("specs serialize to JSON");
        let deps = input::references(&props);
        for dep in &deps {
            assert!(self.get(dep).is_some(), "`{id}` refers to `{dep}`, which is not declared before it");
        }
        self.resources.push(Declared {
            id: id.to_string(),
            kind: Kind::new(S::KIND),
            props,
            deps,
            managed: Vec::new(),
        });
        Handle::of(id)
    }

    /// Puts the stack's ownership mark into the `tags` property of every resource whose kind
    /// takes tags (see `engine::ownership`). Call once the stack is declared.
    pub fn mark_taggable<C: Sync>(&mut self, registry: &Registry<C>) {
        let tags = serde_json::to_value(self.mark.tags()).expect("tags serialize");
        for resource in &mut self.resources {
            if registry.takes_tags(resource.kind) {
                resource.props[TAGS_PROPERTY] = tags.clone();
            }
        }
    }

    /// Everything declared that the provider would refuse (a name, a setting), as `(resource id,
    /// what is wrong)`: checked before anything is planned.
    pub fn problems<C: Sync>(&self, registry: &Registry<C>) -> Vec<(String, String)> {
        self.resources
            .iter()
            .filter_map(|r| {
                let driver = registry.driver(r.kind).ok()?;
                driver.check(&r.props).err().map(|problem| (r.id.clone(), problem))
            })
            .collect()
    }

    /// The declared resource with this id.
    pub fn get(&self, id: &str) -> Option<&Declared> {
        self.resources.iter().find(|r| r.id == id)
    }

    /// A physical name for a resource of this stack: `<stack>-<suffix>`.
    pub fn physical_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }
}
