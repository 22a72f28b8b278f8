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
use crate::engine::lifecycle::{merged, name_of};
use crate::engine::mark::{is_lineage, owner, Mark, Owner, ORIGIN_TAG, TAGS_PROPERTY};
use crate::engine::state::{ResourceState, State};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How far before the journaled start a resource's creation time may lie and still be the
/// journaled create's (clock granularity between this machine and the endpoint).
const CLOCK_SLACK_S: u64 = 2;

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
            Owner::OtherOrigin(origin) if is_lineage(origin) => format!(
                "is held by another state of this stack, kept elsewhere (a remote state, or one `state migrate` \
                 moved; provision:origin={origin}): run against that state (--state-url) instead of starting a new one"
            ),
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
    /// Resources whose lookup failed, with the error: whether they exist and whose they are is
    /// unknown. A journaled one stays in the journal for the next command.
    pub unreadable: Vec<(String, String)>,
}

impl Findings {
    /// An error naming every resource whose lookup failed, or `Ok` when there are none: a plan
    /// cannot decide what to adopt without them.
    pub fn require_readable(&self) -> Result<()> {
        if self.unreadable.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self.unreadable.iter().map(|(id, why)| format!("  - `{id}`: {why}")).collect();
        anyhow::bail!(
            "{} resource(s) could not be looked up, so whether they exist and whose they are is unknown. Nothing was \
             changed.\n{}",
            self.unreadable.len(),
            lines.join("\n")
        )
    }
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
    reach_as_declared(registry, stack, state)?;
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
        let found_all = futures::future::join_all(lookups).await;
        for ((declared, props), found) in wave.into_iter().zip(found_all) {
            tried.insert(declared.id.clone(), props.clone());
            let found = match found {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(err) => {
                    findings.unreadable.push((declared.id.clone(), format!("{err:#}")));
                    continue;
                }
            };
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

/// Gives each recorded and journaled resource the values its declaration has now for the
/// properties that say how to reach it ([`Driver::reach_properties`]; a value the declaration
/// leaves out is removed), while the declaration puts it in the same place: every other property
/// both hold (references resolved) is the same. A resource moved elsewhere, one whose declaration
/// waits on outputs not known yet, and one no longer declared keep what was recorded: that is
/// what reaches where it is.
///
/// [`Driver::reach_properties`]: crate::engine::driver::Driver::reach_properties
fn reach_as_declared<C: Sync + 'static>(registry: &Registry<C>, stack: &StackDef, state: &mut State) -> Result<()> {
    let known = state.known_outputs();
    let recorded = state.resources.iter_mut().map(|(id, r)| (id, r.kind, &mut r.props));
    let journaled = state.pending.iter_mut().map(|(id, p)| (id, p.kind, &mut p.props));
    for (id, kind, props) in recorded.chain(journaled) {
        let driver = registry.driver(kind)?;
        let reach = driver.reach_properties();
        let Some(declared) = stack.get(id).filter(|d| d.kind == kind && !reach.is_empty()) else { continue };
        let (declared, unresolved) = input::resolve(&declared.props, &known);
        let elsewhere = |key: &String, value: &Value| {
            let compared = !reach.contains(&key.as_str()) && !driver.ignore_in_diff().contains(&key.as_str());
            compared && props.get(key).is_some_and(|recorded| recorded != value)
        };
        let Some(fields) =
            declared.as_object().filter(|fields| unresolved.is_empty() && !fields.iter().any(|(k, v)| elsewhere(k, v)))
        else {
            continue;
        };
        let reached: Vec<(&str, Option<Value>)> = reach.iter().map(|p| (*p, fields.get(*p).cloned())).collect();
        for (property, value) in reached {
            match (value, props.as_object_mut()) {
                (Some(value), _) => props[property] = value,
                (None, Some(props)) => {
                    props.remove(property);
                }
                (None, None) => {}
            }
        }
    }
    Ok(())
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
        let found = match lookup(cloud, registry, &id, pending.kind, &pending.props).await {
            Ok(found) => found,
            Err(err) => {
                // Whether the interrupted create made something is unknown: keep asking.
                findings.unreadable.push((id.clone(), format!("{err:#}")));
                state.pending.insert(id, pending);
                continue;
            }
        };
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
fn owner_of_found<C: Sync>(
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

/// Gives every recorded resource that carries the origin `former` the origin `origin` instead:
/// its tags, and any other property naming the origin (a database's ownership comment), updated
/// through its driver, and the record with them; concurrently. `state migrate` does this when it
/// gives a moved state a lineage of its own, so a run without that state can no longer take the
/// resources for its own. Returns the ids whose update failed, with the error: their record
/// keeps the old properties, and the next `up` re-marks them.
pub async fn remark<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    state: &mut State,
    former: &str,
    origin: &str,
) -> Result<Vec<(String, String)>> {
    let mut updates = tokio::task::JoinSet::new();
    let stack = state.stack.clone();
    for (id, resource) in &state.resources {
        let carries = resource.props.get(TAGS_PROPERTY).and_then(|t| t.get(ORIGIN_TAG)).and_then(Value::as_str);
        if !registry.takes_tags(resource.kind) || carries != Some(former) {
            continue;
        }
        let mut props = with_origin(&resource.props, former, origin);
        props[TAGS_PROPERTY][ORIGIN_TAG] = Value::String(origin.to_string());
        let changed: Vec<String> = props
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, value)| resource.props.get(key.as_str()) != Some(*value))
            .map(|(key, _)| key.clone())
            .collect();
        let driver = registry.driver(resource.kind)?;
        let (cloud, id, recorded, kind) = (cloud.clone(), id.clone(), resource.recorded(), resource.kind);
        let former_mark = Mark { stack: stack.to_string(), origin: former.to_string() };
        updates.spawn(async move {
            let cx = Cx { cloud: &*cloud, id: &id, may_adopt: false };
            // Only what still carries the stack's former mark is re-marked: a resource deleted
            // and made again by someone else under the same name is not taken over.
            let found = driver.read(&cx, &recorded).await.with_context(|| format!("reading {} `{id}`", kind.label()));
            let updated = match found {
                Ok(Some(found)) if owner(&former_mark, &found.props) == Owner::ThisStack => {
                    // Its mark is the stack's, under the former origin: taken over under the new one.
                    let cx = Cx { may_adopt: true, ..cx };
                    driver
                        .update(&cx, &props, &recorded, &changed)
                        .await
                        .with_context(|| format!("re-marking {} `{id}`", kind.label()))
                }
                Ok(Some(_)) => Err(anyhow::anyhow!("{} `{id}` no longer carries the stack's mark", kind.label())),
                Ok(None) => Err(anyhow::anyhow!("{} `{id}` is gone: the next `up` makes it again", kind.label())),
                Err(err) => Err(err),
            };
            (id, props, updated)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = updates.join_next().await {
        let (id, props, updated) = joined.context("a re-marking task panicked")?;
        match updated {
            Ok(outputs) => {
                let resource = state.resources.get_mut(&id).expect("recorded");
                resource.props = props;
                resource.outputs.extend(outputs);
            }
            Err(err) => failed.push((id, format!("{err:#}"))),
        }
    }
    Ok(failed)
}

/// `props` with every string that names the origin `former` as `provision:origin=<former>` (a
/// database's ownership comment) naming `origin` instead; nothing else is touched.
fn with_origin(props: &Value, former: &str, origin: &str) -> Value {
    match props {
        Value::String(text) => {
            Value::String(text.replace(&format!("{ORIGIN_TAG}={former}"), &format!("{ORIGIN_TAG}={origin}")))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| with_origin(v, former, origin)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), with_origin(v, former, origin))).collect())
        }
        other => other.clone(),
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
