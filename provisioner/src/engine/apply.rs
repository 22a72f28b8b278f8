//! Doing: carries out a [`Plan`] against the cloud. Independent resources run concurrently
//! (bounded); a resource starts as soon as the resources it refers to are done; dependents of a
//! failure are skipped. Deletions run last, dependents before what they depend on.
//!
//! **Invariant:** the state is saved after every completed operation, and each operation is
//! journaled in `pending` before its first API call and cleared only when it succeeds, so a run
//! killed (or failed) at any point leaves a state the next run converges from.

use crate::engine::declare::StackDef;
use crate::engine::driver::{Cx, Driver, Kind, Outputs, Recorded, Registry, Teardown};
use crate::engine::input;
use crate::engine::plan::{changed_fields, Action, Change, Plan};
use crate::engine::state::{now_unix, PendingOperation, ResourceState, State, StateStore};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many resource operations run at once.
const MAX_CONCURRENT: usize = 8;

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: Vec<(String, Action, Duration)>,
    pub failed: Vec<(String, anyhow::Error)>,
    pub skipped: Vec<String>,
}

impl ApplyReport {
    /// An error summarising every failure, or `Ok` when all went through; `command` is the one
    /// that continues the work (`up`, `down`).
    pub fn into_result(self, command: &str) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let mut message = format!("{} operation(s) failed", self.failed.len());
        for (_, err) in &self.failed {
            message.push_str(&format!("\n  - {err:#}"));
        }
        if !self.skipped.is_empty() {
            message.push_str(&format!("\n  skipped because a dependency failed: {}", self.skipped.join(", ")));
        }
        message.push_str(&format!(
            "\nWhat succeeded is recorded; fix the cause and run `provision {command}` again to continue."
        ));
        Err(anyhow!(message))
    }
}

struct Step {
    id: String,
    kind: Kind,
    action: Action,
    fields: Vec<String>,
    /// Ids that must finish first.
    waits_for: BTreeSet<String>,
    /// Properties managed at run time, with the values to keep (see `plan::Change`).
    run_time_values: serde_json::Map<String, Value>,
}

/// Applies `plan`, recording every completed operation in `state` through `store`.
pub async fn apply<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    registry: &Registry<C>,
    stack: &StackDef,
    plan: &Plan,
    state: &mut State,
    store: &StateStore,
) -> Result<ApplyReport> {
    // Refreshed outputs of unchanged resources are recorded without any API call.
    for change in plan.changes.iter().filter(|c| c.action == Action::Same) {
        if let (Some(outputs), Some(resource)) = (&change.refreshed_outputs, state.resources.get_mut(&change.id)) {
            resource.outputs = outputs.clone();
        }
    }
    let steps = order_steps(stack, plan, state, |kind| registry.teardown(kind));
    // Resources planned as unchanged: re-planned if an output they refer to changes on the way.
    let mut unchanged: BTreeSet<String> =
        plan.changes.iter().filter(|c| c.action == Action::Same).map(|c| c.id.clone()).collect();
    let mut report = ApplyReport::default();
    let mut remaining: Vec<Step> = steps;
    let mut running: JoinSet<(String, Result<Option<Outputs>>, Duration)> = JoinSet::new();
    let mut in_flight: HashMap<String, (Kind, Action, Value, Vec<String>)> = HashMap::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();

    loop {
        // Skip steps that wait on a failure; start steps whose waits are all finished.
        let (skip, rest): (Vec<Step>, Vec<Step>) =
            remaining.into_iter().partition(|s| s.waits_for.iter().any(|w| failed.contains(w)));
        for step in skip {
            failed.insert(step.id.clone());
            report.skipped.push(step.id);
        }
        let (ready, waiting): (Vec<Step>, Vec<Step>) =
            rest.into_iter().partition(|s| s.waits_for.iter().all(|w| finished.contains(w)));
        remaining = waiting;
        let mut deferred = Vec::new();
        for step in ready {
            if running.len() >= MAX_CONCURRENT {
                deferred.push(step);
                continue;
            }
            let driver = registry.driver(step.kind)?;
            start(cloud, driver, stack, state, store, step, &plan.adopt, &mut running, &mut in_flight).await?;
        }
        remaining.extend(deferred);

        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, result, took) = joined.context("a resource operation panicked")?;
        let (kind, action, props, deps) = in_flight.remove(&id).expect("every running step is in flight");
        // A failed operation keeps its journal entry: its API call may have made something (a
        // stream created, then its tagging failed) that the next command must find.
        if result.is_ok() {
            state.pending.remove(&id);
        }
        match result {
            Ok(Some(outputs)) => {
                let outputs_changed = state.resources.get(&id).is_none_or(|before| before.outputs != outputs);
                state.resources.insert(id.clone(), ResourceState { kind, props, outputs, deps });
                finished.insert(id.clone());
                if outputs_changed {
                    let scheduled: BTreeSet<String> =
                        remaining.iter().map(|s| s.id.clone()).chain(in_flight.keys().cloned()).collect();
                    remaining.extend(replan_dependents(registry, stack, state, &id, &mut unchanged, &scheduled)?);
                }
                report.done.push((id, action, took));
            }
            Ok(None) => {
                state.resources.remove(&id);
                finished.insert(id.clone());
                report.done.push((id, action, took));
            }
            Err(err) => {
                failed.insert(id.clone());
                report.failed.push((id, err));
            }
        }
        store.save(state).await?;
    }
    for step in remaining {
        report.skipped.push(step.id);
    }
    Ok(report)
}

/// Known after apply, as a net under the plan: once `changed` has new outputs, every resource
/// planned as unchanged that refers to it is compared again with the new values (against what was
/// last applied to it) and, if its inputs differ, gets an update or replacement step in this run.
fn replan_dependents<C: Sync>(
    registry: &Registry<C>,
    stack: &StackDef,
    state: &State,
    changed: &str,
    unchanged: &mut BTreeSet<String>,
    scheduled: &BTreeSet<String>,
) -> Result<Vec<Step>> {
    let known = state.known_outputs();
    let mut steps = Vec::new();
    let dependents: Vec<_> =
        stack.resources.iter().filter(|d| unchanged.contains(&d.id) && d.deps.iter().any(|x| x == changed)).collect();
    for declared in dependents {
        let Some(recorded) = state.resources.get(&declared.id) else { continue };
        let driver = registry.driver(declared.kind)?;
        let (desired, unresolved) = input::resolve(&declared.props, &known);
        let mut fields = changed_fields(&desired, &recorded.props, None, &unresolved, driver.ignore_in_diff());
        // What is managed at run time is not the declaration's to move here.
        fields.retain(|f| !declared.managed.iter().any(|m| &m.property == f));
        if fields.is_empty() {
            continue;
        }
        unchanged.remove(&declared.id);
        let replace = fields.iter().any(|f| driver.replace_on().contains(&f.as_str()));
        eprintln!(
            "  re-planned {} `{}`: {} changed with `{changed}`'s new outputs",
            declared.kind.label(),
            declared.id,
            fields.join(", ")
        );
        steps.push(Step {
            id: declared.id.clone(),
            kind: declared.kind,
            action: if replace { Action::Replace } else { Action::Update },
            fields,
            waits_for: declared.deps.iter().filter(|d| scheduled.contains(*d)).cloned().collect(),
            run_time_values: Default::default(),
        });
    }
    Ok(steps)
}

/// Journals the step, resolves its inputs from finished resources' outputs, and spawns it.
#[allow(clippy::too_many_arguments)]
async fn start<C: Send + Sync + 'static>(
    cloud: &Arc<C>,
    driver: &'static dyn Driver<C>,
    stack: &StackDef,
    state: &mut State,
    store: &StateStore,
    step: Step,
    adopt: &BTreeSet<String>,
    running: &mut JoinSet<(String, Result<Option<Outputs>>, Duration)>,
    in_flight: &mut HashMap<String, (Kind, Action, Value, Vec<String>)>,
) -> Result<()> {
    let recorded: Option<Recorded> = state.resources.get(&step.id).map(ResourceState::recorded);
    let (props, deps) = match stack.get(&step.id).filter(|_| step.action != Action::Delete) {
        Some(declared) => {
            let (props, unresolved) = input::resolve(&declared.props, &state.known_outputs());
            if !unresolved.is_empty() {
                return Err(anyhow!(
                    "`{}`: inputs {unresolved:?} are not known after their resources finished",
                    step.id
                ));
            }
            let mut props = props;
            for (property, value) in &step.run_time_values {
                props[property] = value.clone();
            }
            (props, declared.deps.clone())
        }
        None => (Value::Null, vec![]),
    };
    let operation = match step.action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Same => unreachable!("unchanged resources are not steps"),
    };
    state.pending.insert(
        step.id.clone(),
        PendingOperation {
            kind: step.kind,
            operation: operation.into(),
            started_unix: now_unix(),
            props: if step.action == Action::Delete {
                recorded.as_ref().map(|r| r.props.clone()).unwrap_or_default()
            } else {
                props.clone()
            },
            deps: deps.clone(),
        },
    );
    store.save(state).await?;
    eprintln!("  {:<10} {} `{}` …", operation, step.kind.label(), step.id);
    in_flight.insert(step.id.clone(), (step.kind, step.action, props.clone(), deps));

    let cloud = cloud.clone();
    let may_adopt = adopt.contains(&step.id);
    running.spawn(async move {
        let started = Instant::now();
        let cx = Cx { cloud: &*cloud, id: &step.id, may_adopt };
        let label = step.kind.label();
        let result = match step.action {
            Action::Create => {
                driver.create(&cx, &props).await.map(Some).with_context(|| format!("creating {label} `{}`", step.id))
            }
            Action::Update => {
                let recorded = recorded.expect("updates are planned only for recorded resources");
                driver
                    .update(&cx, &props, &recorded, &step.fields)
                    .await
                    .map(Some)
                    .with_context(|| format!("updating {label} `{}`", step.id))
            }
            Action::Replace => {
                let recorded = recorded.expect("replacements are planned only for recorded resources");
                async {
                    driver.delete(&cx, &recorded).await?;
                    driver.create(&cx, &props).await
                }
                .await
                .map(Some)
                .with_context(|| format!("replacing {label} `{}`", step.id))
            }
            Action::Delete => match recorded {
                Some(recorded) => driver
                    .delete(&cx, &recorded)
                    .await
                    .map(|_| None)
                    .with_context(|| format!("deleting {label} `{}`", step.id)),
                None => Ok(None),
            },
            Action::Same => unreachable!(),
        };
        let took = started.elapsed();
        match &result {
            Ok(_) => eprintln!("  {:<10} {label} `{}` done in {:.1} s", operation, step.id, took.as_secs_f64()),
            Err(_) => eprintln!("  {:<10} {label} `{}` FAILED after {:.1} s", operation, step.id, took.as_secs_f64()),
        }
        (step.id, result, took)
    });
    Ok(())
}

/// Turns the plan's changes into steps with the ids each must wait for: creates and updates
/// wait for the declared resources they refer to; deletions wait for every resource that
/// depends on them (reverse order) and for all creates and updates (deletions last), and by
/// their kind's [`Teardown`]: sources (with what depends on them) go first, sinks (with what
/// they depend on) last.
fn order_steps(stack: &StackDef, plan: &Plan, state: &State, teardown: impl Fn(Kind) -> Teardown) -> Vec<Step> {
    let forward: Vec<&Change> = plan.actionable().filter(|c| c.action != Action::Delete).collect();
    let forward_ids: BTreeSet<String> = forward.iter().map(|c| c.id.clone()).collect();
    let deleting: BTreeSet<String> =
        plan.actionable().filter(|c| c.action == Action::Delete).map(|c| c.id.clone()).collect();
    let mut steps = Vec::new();
    for change in forward {
        let deps = stack.get(&change.id).map(|d| d.deps.clone()).unwrap_or_default();
        let waits_for = deps.into_iter().filter(|d| forward_ids.contains(d)).collect();
        steps.push(Step {
            id: change.id.clone(),
            kind: change.kind,
            action: change.action,
            fields: change.fields.clone(),
            waits_for,
            run_time_values: change.run_time_values.clone(),
        });
    }
    let (sources, sinks) = teardown_phases(state, &deleting, teardown);
    for id in &deleting {
        let dependents = state
            .resources
            .iter()
            .filter(|(other, r)| deleting.contains(*other) && r.deps.contains(id))
            .map(|(other, _)| other.clone());
        let mut waits_for: BTreeSet<String> = dependents.chain(forward_ids.iter().cloned()).collect();
        if !sources.contains(id) {
            waits_for.extend(sources.iter().cloned());
        }
        if sinks.contains(id) {
            waits_for.extend(deleting.iter().filter(|other| !sinks.contains(*other)).cloned());
        }
        let kind = state.resources[id].kind;
        steps.push(Step {
            id: id.clone(),
            kind,
            action: Action::Delete,
            fields: vec![],
            waits_for,
            run_time_values: Default::default(),
        });
    }
    steps
}

/// Among the resources being deleted: the sources and everything that depends on them, and
/// (of the rest) the sinks and everything they depend on. Closed that way, the extra waits
/// cannot make a cycle: a source waits only for sources (what depends on it is a source), and
/// nothing outside the sinks waits for a sink (what a sink depends on is a sink, or a source,
/// and then the sink, its dependent, is a source too).
fn teardown_phases(
    state: &State,
    deleting: &BTreeSet<String>,
    teardown: impl Fn(Kind) -> Teardown,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let deps_of = |id: &String| state.resources.get(id).map(|r| r.deps.clone()).unwrap_or_default();
    let of_kind = |phase: Teardown| -> BTreeSet<String> {
        deleting.iter().filter(|id| teardown(state.resources[*id].kind) == phase).cloned().collect()
    };
    let mut sources = of_kind(Teardown::Source);
    loop {
        let more: Vec<String> = deleting
            .iter()
            .filter(|id| !sources.contains(*id) && deps_of(id).iter().any(|d| sources.contains(d)))
            .cloned()
            .collect();
        if more.is_empty() {
            break;
        }
        sources.extend(more);
    }
    let mut sinks: BTreeSet<String> = of_kind(Teardown::Sink).difference(&sources).cloned().collect();
    loop {
        let more: Vec<String> = sinks
            .iter()
            .flat_map(deps_of)
            .filter(|d| deleting.contains(d) && !sinks.contains(d) && !sources.contains(d))
            .collect();
        if more.is_empty() {
            break;
        }
        sinks.extend(more);
    }
    (sources, sinks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan;
    use std::collections::BTreeMap;

    const MAPPING: Kind = Kind::new("test_mapping");
    const FUNCTION: Kind = Kind::new("test_function");
    const TABLE: Kind = Kind::new("test_table");
    const LOGS: Kind = Kind::new("test_log_group");

    fn teardown(kind: Kind) -> Teardown {
        match kind {
            MAPPING => Teardown::Source,
            LOGS => Teardown::Sink,
            _ => Teardown::InOrder,
        }
    }

    /// The waits of each deletion when all of `resources` (id, kind, deps) are deleted.
    fn deletion_waits(resources: &[(&str, Kind, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        let mut state = State::empty("s");
        for (id, kind, deps) in resources {
            let deps = deps.iter().map(|d| d.to_string()).collect();
            state.resources.insert(
                id.to_string(),
                ResourceState { kind: *kind, props: Value::Null, outputs: Outputs::new(), deps },
            );
        }
        let plan = plan::destroy_all("s", &state);
        order_steps(&StackDef::new("s", "o"), &plan, &state, teardown)
            .into_iter()
            .map(|step| (step.id, step.waits_for))
            .collect()
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn down_deletes_sources_first_and_log_groups_last() {
        let waits = deletion_waits(&[
            ("logs", LOGS, &[]),
            ("function", FUNCTION, &["logs"]),
            ("table", TABLE, &[]),
            ("mapping", MAPPING, &["function", "table"]),
        ]);
        assert_eq!(waits["mapping"], set(&[]), "a source waits for nothing");
        assert_eq!(waits["table"], set(&["mapping"]), "the rest waits for the sources");
        assert_eq!(waits["function"], set(&["mapping"]));
        assert_eq!(waits["logs"], set(&["function", "mapping", "table"]), "log groups wait for everything");
    }

    #[test]
    fn what_depends_on_a_source_goes_with_it_and_what_a_sink_needs_goes_after_it() {
        let waits = deletion_waits(&[
            ("api", MAPPING, &[]),
            ("stage", TABLE, &["api"]),
            ("key", TABLE, &[]),
            ("logs", LOGS, &["key"]),
            ("function", FUNCTION, &["logs", "key"]),
        ]);
        assert_eq!(waits["stage"], set(&[]), "a source's dependent is deleted with it, not after");
        assert_eq!(waits["api"], set(&["stage"]));
        assert_eq!(waits["function"], set(&["api", "stage"]));
        assert_eq!(waits["logs"], set(&["api", "stage", "function"]));
        assert_eq!(waits["key"], set(&["api", "stage", "function", "logs"]), "what a sink needs goes after it");
    }
}
