//! Deciding, separate from doing: refresh every recorded resource from the cloud, compare with
//! the declared stack, and produce a [`Plan`] of creates, in-place updates, replacements and
//! deletions. Nothing here mutates the cloud.

use crate::engine::declare::StackDef;
use crate::engine::driver::{Cx, Kind, Observed, Outputs, Registry};
use crate::engine::input::{self, KnownOutputs};
use crate::engine::mark::{self, Owner};
use crate::engine::ownership::{self, Foreign};
use crate::engine::state::State;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// What will happen to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    Same,
}

impl Action {
    fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Same => " ",
        }
    }
}

/// One resource's planned change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub id: String,
    pub kind: Kind,
    pub action: Action,
    /// For updates and replacements: the properties that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Why, when the cloud changed rather than the stack (drift).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    /// True when the change deletes a resource that holds data (a delete or a replacement of a
    /// table, bucket, database, queue or stream): its data goes with it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deletes_data: bool,
    /// Outputs found by the refresh, recorded for resources that stay the same.
    #[serde(skip)]
    pub refreshed_outputs: Option<Outputs>,
    /// Values of properties managed at run time, as they are (or brought back within their
    /// bounds): an update sends these instead of the declared starting values.
    #[serde(skip)]
    pub run_time_values: Map<String, Value>,
}

/// The plan for one stack.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stack: String,
    pub changes: Vec<Change>,
    /// What the ownership check found: resources adopted, interrupted operations resolved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Ids the user asked to take over although they lack the stack's mark (`--adopt`).
    #[serde(skip)]
    pub adopt: BTreeSet<String>,
}

impl Plan {
    /// The changes that do something.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::Same)
    }

    /// True when applying the plan would call no mutating API.
    pub fn is_empty(&self) -> bool {
        self.actionable().next().is_none()
    }

    /// How many changes of each action.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// The resources whose drift the refresh found.
    pub fn drifted(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.drift.is_some())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "  ! {note}")?;
        }
        if self.is_empty() {
            return writeln!(
                f,
                "No changes. Stack `{}` matches its declaration ({} resources).",
                self.stack,
                self.changes.len()
            );
        }
        for change in self.actionable() {
            let verb = match change.action {
                Action::Create => "create",
                Action::Update => "update in place",
                Action::Replace => "replace",
                Action::Delete => "delete",
                Action::Same => "",
            };
            write!(f, "  {:>3} {:<30} {:<24} {verb}", change.action.symbol(), change.id, change.kind.label())?;
            if !change.fields.is_empty() {
                write!(f, " ({})", change.fields.join(", "))?;
            }
            if let Some(drift) = &change.drift {
                write!(f, "  [drift: {drift}]")?;
            }
            if change.deletes_data {
                write!(f, "  [holds data: deleted with it]")?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "Plan: {} to create, {} to update, {} to replace, {} to delete.",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Replace),
            self.count(Action::Delete)
        )
    }
}

/// Deciding in full: acts on the journal and adopts what carries the stack's mark (in `state`,
/// in memory), refreshes every recorded resource and diffs. Returns the plan, and the same-named
/// resources the stack does not own: the caller must not apply while there are any.
pub async fn prepare<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    stack: &StackDef,
    state: &mut State,
    adopt: &BTreeSet<String>,
) -> Result<(Plan, Vec<Foreign>)> {
    let problems = stack.problems(registry);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|(id, problem)| format!("  - `{id}`: {problem}")).collect();
        anyhow::bail!(
            "stack `{}` declares what the endpoint would refuse. Nothing was changed.\n{}\nA name is refused: choose \
             a stack name (--stack) of letters, digits and single hyphens that starts with a letter. A setting is \
             refused: change it in the settings file.",
            stack.name,
            lines.join("\n")
        );
    }
    let mut findings = ownership::reconcile(cloud, registry, stack, state, adopt).await?;
    findings.require_readable()?;
    let observed = refresh(cloud, registry, state).await?;
    let mut adopt = adopt.clone();
    // A recorded resource now marked by another stack or checkout is theirs (ours was deleted and
    // the name reused): refused like any foreign one. A removed mark is drift, repaired by `up`.
    // One still marked with an origin the state had before `state migrate` is re-marked.
    for (id, found) in observed.iter().filter_map(|(id, found)| Some((id, found.as_ref()?))) {
        let kind = state.resources[id].kind;
        if !registry.takes_tags(kind) || adopt.contains(id) {
            continue;
        }
        let owner = mark::owner(&stack.mark, &found.props);
        if matches!(&owner, Owner::OtherOrigin(origin) if state.former_origins.contains(origin)) {
            adopt.insert(id.clone());
            continue;
        }
        if matches!(owner, Owner::OtherOrigin(_) | Owner::OtherStack(_)) {
            let name = ["name", "identifier"].iter().find_map(|k| found.props.get(*k)?.as_str()).unwrap_or(id);
            findings.foreign.push(Foreign { id: id.clone(), kind, name: name.to_string(), owner });
        }
    }
    let mut plan = diff(stack, state, &observed, registry)?;
    plan.notes.extend(findings.notes);
    plan.notes.extend(
        findings.unused_adopt.iter().map(|id| format!("--adopt {id}: nothing without this stack's mark to take over")),
    );
    plan.adopt = adopt;
    Ok((plan, findings.foreign))
}

/// Reads every recorded resource from the cloud, concurrently. `None` means it is gone. Fails
/// naming every resource that could not be read.
pub async fn refresh<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    state: &State,
) -> Result<BTreeMap<String, Option<Observed>>> {
    let mut observed = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (id, found) in refresh_each(cloud, registry, state).await? {
        match found {
            Ok(found) => {
                observed.insert(id, found);
            }
            Err(err) => unreadable.push(format!("  - {err:#}")),
        }
    }
    if !unreadable.is_empty() {
        anyhow::bail!(
            "{} recorded resource(s) could not be read, so what `up` would change is unknown. Nothing was changed.\n{}",
            unreadable.len(),
            unreadable.join("\n")
        );
    }
    Ok(observed)
}

/// Reads every recorded resource from the cloud, concurrently, each with its own answer: `down`
/// deletes what it could read and keeps what it could not.
pub async fn refresh_each<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    state: &State,
) -> Result<BTreeMap<String, Result<Option<Observed>>>> {
    let mut reads = tokio::task::JoinSet::new();
    for (id, resource) in &state.resources {
        let driver = registry.driver(resource.kind)?;
        let (cloud, id, resource) = (cloud.clone(), id.clone(), resource.clone());
        reads.spawn(async move {
            let cx = Cx { cloud: &*cloud, id: &id, may_adopt: false };
            let found = driver
                .read(&cx, &resource.recorded())
                .await
                .with_context(|| format!("reading {} `{id}`", resource.kind.label()));
            (id, found)
        });
    }
    let mut observed = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        let (id, found) = joined.context("a refresh task panicked")?;
        observed.insert(id, found);
    }
    Ok(observed)
}

/// Compares the declared stack with the refreshed state.
pub fn diff<C: Sync>(
    stack: &StackDef,
    state: &State,
    observed: &BTreeMap<String, Option<Observed>>,
    registry: &Registry<C>,
) -> Result<Plan> {
    let mut changes = Vec::new();
    let mut notes = stack.notes.clone();
    // Outputs of resources that will keep their outputs; those to be (re)created are unknown.
    let mut known: KnownOutputs = KnownOutputs::new();
    for declared in &stack.resources {
        let driver = registry.driver(declared.kind)?;
        let (mut desired, unresolved) = input::resolve(&declared.props, &known);
        let recorded = state.resources.get(&declared.id);
        let found = observed.get(&declared.id).and_then(Option::as_ref);
        let run_time_values = match found {
            Some(found) => keep_run_time_values(declared, &mut desired, &found.props, &mut notes),
            None => Map::new(),
        };
        let change = match (recorded, found) {
            (None, _) => Change::new(declared, Action::Create, vec![], None),
            (Some(_), None) => Change::new(declared, Action::Create, vec![], Some("deleted outside provision".into())),
            (Some(_), Some(found)) if found.failed.is_some() => {
                let why = found.failed.as_deref().unwrap_or_default();
                Change::new(declared, Action::Replace, vec![], Some(format!("failed in the cloud: {why}")))
            }
            (Some(recorded), Some(found)) => {
                let fields =
                    changed_fields(&desired, &found.props, Some(&recorded.props), &unresolved, driver.ignore_in_diff());
                let action = match () {
                    _ if fields.is_empty() => Action::Same,
                    _ if fields.iter().any(|f| driver.replace_on().contains(&f.as_str())) => Action::Replace,
                    _ => Action::Update,
                };
                // Drift: the stack asks for what was last applied, yet the cloud differs.
                let drifted: Vec<&String> = fields
                    .iter()
                    .filter(|f| !unresolved.contains(f) && recorded.props.get(f.as_str()) == desired.get(f.as_str()))
                    .collect();
                let drift = (!drifted.is_empty()).then(|| {
                    format!(
                        "changed outside provision: {}",
                        drifted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    )
                });
                let mut change = Change::new(declared, action, fields, drift);
                if action == Action::Same {
                    change.refreshed_outputs = Some(found.outputs.clone());
                }
                change
            }
        };
        let mut change = change;
        change.run_time_values = run_time_values;
        change.deletes_data = change.action == Action::Replace && driver.holds_data();
        // Outputs stay known through an update unless the driver says the update may change them
        // (a re-enabled table stream has a new ARN): then what refers to them is planned too,
        // and applied with the new values once the update is done ("known after apply").
        let keeps_outputs = change.action == Action::Same
            || (change.action == Action::Update && !driver.outputs_may_change(&change.fields));
        if keeps_outputs {
            if let Some(found) = found {
                known.insert(declared.id.clone(), found.outputs.clone());
            }
        }
        changes.push(change);
    }
    // Recorded but no longer declared: delete, dependents first (the apply orders them).
    for (id, resource) in &state.resources {
        if stack.get(id).is_none() {
            changes.push(Change {
                id: id.clone(),
                kind: resource.kind,
                action: Action::Delete,
                fields: vec![],
                drift: None,
                deletes_data: registry.driver(resource.kind)?.holds_data(),
                refreshed_outputs: None,
                run_time_values: Map::new(),
            });
        }
    }
    Ok(Plan { stack: stack.name.clone(), changes, notes, adopt: BTreeSet::new() })
}

/// For each property `declared` leaves to be managed at run time: the value the cloud has is the
/// desired one while within its bounds, the nearest bound otherwise. Sets it in `desired`, says
/// so in `notes`, and returns the values for an update to send.
fn keep_run_time_values(
    declared: &crate::engine::declare::Declared,
    desired: &mut Value,
    observed: &Value,
    notes: &mut Vec<String>,
) -> Map<String, Value> {
    let mut kept = Map::new();
    for managed in &declared.managed {
        let Some(seen) = observed.get(&managed.property).and_then(Value::as_f64) else { continue };
        let within = seen.clamp(managed.min, managed.max);
        let value = if within.fract() == 0.0 { Value::from(within as i64) } else { Value::from(within) };
        let bounds = format!("{}-{}", number(managed.min), number(managed.max));
        notes.push(if within == seen {
            format!("`{}`: {} {}, {} within {bounds}", declared.id, managed.property, number(seen), managed.by)
        } else {
            format!(
                "`{}`: {} {} is outside {bounds} ({}): brought back to {}",
                declared.id,
                managed.property,
                number(seen),
                managed.by,
                number(within)
            )
        });
        desired[&managed.property] = value.clone();
        kept.insert(managed.property.clone(), value);
    }
    kept
}

/// A number as people write it: `4`, not `4.0`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// A plan that deletes everything recorded in the state (`provision down`).
pub fn destroy_all(stack_name: &str, state: &State) -> Plan {
    let changes = state
        .resources
        .iter()
        .map(|(id, r)| Change {
            id: id.clone(),
            kind: r.kind,
            action: Action::Delete,
            fields: vec![],
            drift: None,
            deletes_data: false,
            refreshed_outputs: None,
            run_time_values: Map::new(),
        })
        .collect();
    Plan { stack: stack_name.to_string(), changes, notes: vec![], adopt: BTreeSet::new() }
}

impl Change {
    fn new(
        declared: &crate::engine::declare::Declared,
        action: Action,
        fields: Vec<String>,
        drift: Option<String>,
    ) -> Self {
        Self {
            id: declared.id.clone(),
            kind: declared.kind,
            action,
            fields,
            drift,
            deletes_data: false,
            refreshed_outputs: None,
            run_time_values: Map::new(),
        }
    }
}

/// Top-level properties whose desired value differs from the observed one. A property the
/// refresh could not observe is taken as unchanged; one still waiting on another resource's
/// output ("known after apply") is taken as changed; one last applied (`recorded`) but no longer
/// declared is changed too (a removed network section must be taken off the function), unless
/// the cloud shows it unset already.
pub(crate) fn changed_fields(
    desired: &Value,
    observed: &Value,
    recorded: Option<&Value>,
    unresolved: &[String],
    ignored: &[&str],
) -> Vec<String> {
    let Some(desired) = desired.as_object() else {
        return vec![];
    };
    let mut fields: Vec<String> = desired
        .iter()
        .filter(|(key, _)| !ignored.contains(&key.as_str()))
        .filter(|(key, value)| {
            unresolved.contains(key) || observed.get(key.as_str()).is_some_and(|seen| !same_value(seen, value))
        })
        .map(|(key, _)| key.clone())
        .collect();
    let removed = recorded
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(key, value)| !value.is_null() && !desired.contains_key(*key) && !ignored.contains(&key.as_str()))
        // The cloud already shows it unset: there is nothing left to take off.
        .filter(|(key, _)| !observed.get(key.as_str()).is_some_and(Value::is_null))
        .map(|(key, _)| key.clone());
    fields.extend(removed);
    fields
}

/// JSON equality that treats numbers by value (1 == 1.0) and objects by content.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_value(v, w)),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unobserved_fields_are_unchanged_and_unresolved_ones_changed() {
        let desired = json!({"memory": 128, "zip": "/x", "role": {"$ref": "r.arn"}, "timeout": 10});
        let observed = json!({"memory": 256, "timeout": 10.0});
        let recorded = json!({"memory": 256, "vpc": {"subnets": ["a"]}, "gone_null": null});
        let fields = changed_fields(&desired, &observed, Some(&recorded), &["role".to_string()], &["zip"]);
        assert_eq!(fields, vec!["memory", "role", "vpc"], "a property no longer declared is a change");
    }
}
