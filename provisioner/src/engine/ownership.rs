//! Ownership: what the stack may adopt, and the journal of interrupted operations acted on.
//!
//! Every resource of a kind that takes tags carries the stack's **mark**: the tags
//! `provision:stack=<stack>` and `provision:origin=<origin>`, the origin telling apart two
//! checkouts (two people, two machines) that use the same stack name on one account. The engine
//! puts the mark into the declared properties (`tags`), so drivers write it at creation, in the
//! same call where the API allows, and a removed or changed mark shows in the diff as drift.
//! Resources of kinds without tags (mappings, permissions, the schema) are owned through the
//! resources they belong to.
//!
//! Before any plan, [`reconcile`] brings the state in line with what the marks in the cloud say:
//! - an operation the journal shows as interrupted is resolved: a create's resource is looked up
//!   by name and adopted when it carries the mark (or was created after the journaled start and
//!   never got its tags: the run died between the two calls), so `up` finishes it and `down`
//!   deletes it;
//! - a declared resource the state does not record is looked up by name: with the mark it is
//!   adopted (lost state, a moved checkout); without it, it is **foreign**: `up` stops before any
//!   change unless the user named it with `--adopt`, and `down` leaves it alone.
//!
//! **Architecture Invariant:** nothing is adopted by name alone.

use crate::engine::declare::StackDef;
use crate::engine::driver::{Cx, Kind, Observed, Registry};
use crate::engine::input;
use crate::engine::state::{ResourceState, State};
use anyhow::{Context, Result};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// The tag naming the stack that owns a resource.
pub const STACK_TAG: &str = "provision:stack";
/// The tag naming the checkout (origin) that owns a resource.
pub const ORIGIN_TAG: &str = "provision:origin";
/// The property that carries the mark in declared and observed properties.
pub const TAGS_PROPERTY: &str = "tags";
/// Only tags with this prefix are the engine's business: users' own tags are never drift.
pub const TAG_PREFIX: &str = "provision:";
/// How far before the journaled start a resource's creation time may lie and still be the
/// journaled create's (clock granularity between this machine and the endpoint).
const CLOCK_SLACK_S: u64 = 2;

/// The owner's mark of one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub stack: String,
    pub origin: String,
}

impl Mark {
    /// The mark as tags.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(STACK_TAG.to_string(), self.stack.clone()), (ORIGIN_TAG.to_string(), self.origin.clone())])
    }

    /// The origin of a checkout: a short hash of this host's name and the workspace's path, so
    /// the same checkout finds its resources again after losing its state, and another checkout
    /// of the same stack name does not take them.
    pub fn origin_of(workspace: &Path) -> String {
        let mut host = [0u8; 256];
        // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
        let named = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
        let host = if named {
            String::from_utf8_lossy(&host[..host.iter().position(|b| *b == 0).unwrap_or(host.len())]).into_owned()
        } else {
            String::new()
        };
        let path = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
        let digest = Sha256::digest(format!("{host}:{}", path.display()).as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

/// Who a found resource belongs to, by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// It carries this stack's mark.
    ThisStack,
    /// It carries this stack's name from another checkout.
    OtherOrigin(String),
    /// It carries another stack's mark.
    OtherStack(String),
    /// It carries no mark.
    Unmarked,
}

/// The owner of a resource whose observed properties carry `tags` (only `provision:` keys).
pub fn owner(mark: &Mark, observed: &Value) -> Owner {
    let tags = observed.get(TAGS_PROPERTY).and_then(Value::as_object);
    let tag = |key: &str| tags.and_then(|t| t.get(key)).and_then(Value::as_str).map(str::to_string);
    match (tag(STACK_TAG), tag(ORIGIN_TAG)) {
        (Some(stack), Some(origin)) if stack == mark.stack && origin == mark.origin => Owner::ThisStack,
        (Some(stack), origin) if stack == mark.stack => Owner::OtherOrigin(origin.unwrap_or_default()),
        (Some(stack), _) => Owner::OtherStack(stack),
        (None, _) => Owner::Unmarked,
    }
}

/// True when `observed` (properties with `tags`) carries every tag of `desired`'s mark. Used by
/// drivers whose create finds the name taken: they adopt only what this is true of.
pub fn carries_mark(desired: &Value, observed: &Value) -> bool {
    let Some(wanted) = desired.get(TAGS_PROPERTY).and_then(Value::as_object) else {
        return true; // a kind without tags is owned through its parent
    };
    let seen = observed.get(TAGS_PROPERTY).and_then(Value::as_object);
    wanted.iter().all(|(k, v)| seen.and_then(|s| s.get(k)) == Some(v))
}

/// Keeps only the engine's own tags of a tag map, as JSON for observed properties.
pub fn marked_tags<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Object(
        tags.into_iter()
            .filter(|(k, _)| k.starts_with(TAG_PREFIX))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// A resource found under a name the stack wants, that the stack does not own.
#[derive(Debug, Clone)]
pub struct Foreign {
    pub id: String,
    pub kind: Kind,
    pub name: String,
    pub owner: Owner,
}

impl Foreign {
    /// One line: which resource, whose it is.
    pub fn describe(&self) -> String {
        let whose = match &self.owner {
            Owner::Unmarked => "carries no provision mark".to_string(),
            Owner::OtherOrigin(origin) => {
                format!("carries this stack's name from another checkout (provision:origin={origin})")
            }
            Owner::OtherStack(stack) => format!("belongs to stack `{stack}`"),
            Owner::ThisStack => "is this stack's".to_string(),
        };
        format!("`{}`: {} {} already exists and {whose}", self.id, self.kind.label(), self.name)
    }
}

/// What [`reconcile`] found and did to the in-memory state.
#[derive(Debug, Default)]
pub struct Findings {
    /// Lines for the plan: adopted resources and resolved interruptions.
    pub notes: Vec<String>,
    /// Same-named resources the stack does not own (and was not told to adopt).
    pub foreign: Vec<Foreign>,
    /// `--adopt` ids that named nothing to adopt.
    pub unused_adopt: Vec<String>,
    /// Resources an interrupted create made that never got their mark (adopted by the journal's
    /// creation-time rule): the stack's, though a refresh shows no mark yet.
    pub recovered_unmarked: BTreeSet<String>,
}

/// Resolves the journal and adopts what carries the mark, in `state` (in memory: the caller
/// saves it, or not, as `plan` does). Only reads the cloud.
pub async fn reconcile<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    stack: &StackDef,
    state: &mut State,
    adopt: &BTreeSet<String>,
) -> Result<Findings> {
    let mut findings = Findings::default();
    resolve_journal(cloud, registry, stack, state, &mut findings).await?;
    let mut adopted_on_request = BTreeSet::new();
    // Looked up in waves: every resource whose name is known now, all at once; then those whose
    // references became known through what the wave adopted (a mapping once its function is).
    let mut tried: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let known = state.known_outputs();
        let wave: Vec<(&crate::engine::declare::Declared, Value)> = stack
            .resources
            .iter()
            .filter(|d| !state.resources.contains_key(&d.id))
            .map(|d| (d, input::resolve(&d.props, &known).0))
            .filter(|(d, props)| tried.get(&d.id) != Some(props))
            .collect();
        if wave.is_empty() {
            break;
        }
        let lookups = wave.iter().map(|(d, props)| lookup(cloud, registry, &d.id, d.kind, props));
        let found_all = futures::future::try_join_all(lookups).await?;
        for ((declared, props), found) in wave.into_iter().zip(found_all) {
            tried.insert(declared.id.clone(), props.clone());
            let Some(found) = found else { continue };
            let owner = owner_of_found(registry, stack, declared.kind, &found, &declared.deps, state);
            let label = format!("`{}` ({} {})", declared.id, declared.kind.label(), name_of(&props));
            if owner == Owner::ThisStack {
                findings.notes.push(format!("{label} exists with this stack's mark: adopted"));
            } else if adopt.contains(&declared.id) {
                findings.notes.push(format!("{label} is taken over on request (--adopt): it gets this stack's mark"));
                adopted_on_request.insert(declared.id.clone());
            } else {
                findings.foreign.push(Foreign {
                    id: declared.id.clone(),
                    kind: declared.kind,
                    name: name_of(&props),
                    owner,
                });
                continue;
            }
            state.resources.insert(
                declared.id.clone(),
                ResourceState {
                    kind: declared.kind,
                    props: merged(&props, &found.props),
                    outputs: found.outputs,
                    deps: declared.deps.clone(),
                },
            );
        }
    }
    findings.unused_adopt = adopt.iter().filter(|id| !adopted_on_request.contains(*id)).cloned().collect();
    Ok(findings)
}

/// Acts on each journaled operation: a create or replace whose resource exists with the mark is
/// recorded; update and delete leave the resource recorded, so the next step repeats them.
async fn resolve_journal<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    stack: &StackDef,
    state: &mut State,
    findings: &mut Findings,
) -> Result<()> {
    let journal = std::mem::take(&mut state.pending);
    for (id, pending) in journal {
        if !matches!(pending.operation.as_str(), "create" | "replace") {
            findings.notes.push(format!(
                "an earlier run was interrupted while it was {} {} `{id}`: done again now",
                gerund(&pending.operation),
                pending.kind.label()
            ));
            continue;
        }
        let found = lookup(cloud, registry, &id, pending.kind, &pending.props).await?;
        let Some(found) = found else {
            findings.notes.push(format!(
                "an earlier run was interrupted while it was creating {} `{id}`: it was never made",
                pending.kind.label()
            ));
            continue;
        };
        let owned = match owner_of_found(registry, stack, pending.kind, &found, &pending.deps, state) {
            Owner::ThisStack => true,
            // Created, then killed before its tags were written (APIs that tag in a second call).
            Owner::Unmarked if found.created_unix.is_some_and(|t| t + CLOCK_SLACK_S >= pending.started_unix) => {
                findings.recovered_unmarked.insert(id.clone());
                true
            }
            _ => false,
        };
        if owned {
            findings.notes.push(format!(
                "an earlier run was interrupted while it was creating {} `{id}`: found and adopted",
                pending.kind.label()
            ));
            state.resources.insert(
                id.clone(),
                ResourceState {
                    kind: pending.kind,
                    props: merged(&pending.props, &found.props),
                    outputs: found.outputs,
                    deps: pending.deps,
                },
            );
        } else {
            findings.notes.push(format!(
                "an earlier run was interrupted while it was creating {} `{id}`; a same-named one exists without this \
                 stack's mark and is left alone",
                pending.kind.label()
            ));
        }
    }
    Ok(())
}

/// The owner of a found resource: by its mark for kinds that take tags; through the resources
/// it refers to (all recorded by this stack) for the others.
fn owner_of_found<C>(
    registry: &Registry<C>,
    stack: &StackDef,
    kind: Kind,
    found: &Observed,
    deps: &[String],
    state: &State,
) -> Owner {
    if registry.takes_tags(kind) {
        owner(&stack.mark, &found.props)
    } else if deps.iter().all(|d| state.resources.contains_key(d)) {
        Owner::ThisStack
    } else {
        Owner::Unmarked
    }
}

async fn lookup<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    id: &str,
    kind: Kind,
    props: &Value,
) -> Result<Option<Observed>> {
    let cx = Cx { cloud: &**cloud, id, may_adopt: false };
    let driver = registry.driver(kind)?;
    driver.lookup(&cx, props).await.with_context(|| format!("looking up {} `{id}` by name", kind.label()))
}

/// The properties to record for an adopted resource: the declared ones, overlaid with what the
/// cloud reports (so a difference shows as a change to apply). What the cloud reports as null
/// (not set, not deployed) keeps the declared value, so drivers can still read the record.
fn merged(declared: &Value, observed: &Value) -> Value {
    let mut props = declared.clone();
    if let (Some(props), Some(observed)) = (props.as_object_mut(), observed.as_object()) {
        for (key, value) in observed.iter().filter(|(_, v)| !v.is_null()) {
            props.insert(key.clone(), value.clone());
        }
    }
    props
}

fn name_of(props: &Value) -> String {
    ["name", "identifier", "function_name"]
        .iter()
        .find_map(|key| props.get(*key).and_then(Value::as_str))
        .unwrap_or("(unnamed)")
        .to_string()
}

/// "creating" for "create", for messages about the journal.
pub fn gerund(operation: &str) -> String {
    match operation {
        "create" => "creating".into(),
        "update" => "updating".into(),
        "replace" => "replacing".into(),
        "delete" => "deleting".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mark() -> Mark {
        Mark { stack: "demo".into(), origin: "abc".into() }
    }

    #[test]
    fn owner_reads_the_mark() {
        let tags = |t: Value| json!({ "name": "x", "tags": t });
        assert_eq!(
            owner(&mark(), &tags(json!({"provision:stack": "demo", "provision:origin": "abc"}))),
            Owner::ThisStack
        );
        assert_eq!(
            owner(&mark(), &tags(json!({"provision:stack": "demo", "provision:origin": "zzz"}))),
            Owner::OtherOrigin("zzz".into())
        );
        assert_eq!(owner(&mark(), &tags(json!({"provision:stack": "other"}))), Owner::OtherStack("other".into()));
        assert_eq!(owner(&mark(), &tags(json!({}))), Owner::Unmarked);
        assert_eq!(owner(&mark(), &json!({ "name": "x" })), Owner::Unmarked);
    }

    #[test]
    fn only_the_engines_tags_are_observed() {
        let tags = BTreeMap::from([
            ("provision:stack".to_string(), "demo".to_string()),
            ("team".to_string(), "payments".to_string()),
        ]);
        assert_eq!(marked_tags(&tags), json!({"provision:stack": "demo"}));
    }

    #[test]
    fn carries_mark_needs_every_tag() {
        let desired = json!({ "tags": mark().tags() });
        assert!(carries_mark(
            &desired,
            &json!({ "tags": {"provision:stack": "demo", "provision:origin": "abc", "x": "y"} })
        ));
        assert!(!carries_mark(&desired, &json!({ "tags": {"provision:stack": "demo"} })));
        assert!(carries_mark(&json!({ "name": "mapping" }), &json!({})), "kinds without tags are owned via parents");
    }

    #[test]
    fn the_origin_is_stable_and_tells_checkouts_apart() {
        let here = Mark::origin_of(Path::new("/"));
        assert_eq!(here, Mark::origin_of(Path::new("/")));
        assert_ne!(here, Mark::origin_of(Path::new("/tmp")));
        assert_eq!(here.len(), 12);
    }
}
