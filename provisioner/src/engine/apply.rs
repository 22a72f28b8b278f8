//! Doing: carries out a [`Plan`] against the cloud. Independent resources run concurrently
//! (bounded); a resource starts as soon as the resources it refers to are done; dependents of a
//! failure are skipped. Deletions run last, dependents before what they depend on.
//!
//! **Invariant:** the state is saved after every completed operation, and each operation is
//! journaled in `pending` before its first API call, so a run killed at any point leaves a state
//! the next run converges from.

use crate::aws::{Cx, Kind, Outputs, Recorded};
use crate::cloud::Cloud;
use crate::engine::declare::StackDef;
use crate::engine::input;
use crate::engine::plan::{Action, Change, Plan};
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
    /// An error summarising every failure, or `Ok` when all went through.
    pub fn into_result(self) -> Result<()> {
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
        message.push_str("\nWhat succeeded is recorded; fix the cause and run `provision up` again to continue.");
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
}

/// Applies `plan`, recording every completed operation in `state` through `store`.
pub async fn apply(
    cloud: &Arc<Cloud>,
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
    let steps = order_steps(stack, plan, state);
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
            start(cloud, stack, state, store, step, &plan.adopt, &mut running, &mut in_flight)?;
        }
        remaining.extend(deferred);

        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, result, took) = joined.context("a resource operation panicked")?;
        let (kind, action, props, deps) = in_flight.remove(&id).expect("every running step is in flight");
        state.pending.remove(&id);
        match result {
            Ok(Some(outputs)) => {
                state.resources.insert(id.clone(), ResourceState { kind, props, outputs, deps });
                finished.insert(id.clone());
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
        store.save(state)?;
    }
    for step in remaining {
        report.skipped.push(step.id);
    }
    Ok(report)
}

/// Journals the step, resolves its inputs from finished resources' outputs, and spawns it.
fn start(
    cloud: &Arc<Cloud>,
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
    store.save(state)?;
    eprintln!("  {:<10} {} `{}` …", operation, step.kind.label(), step.id);
    in_flight.insert(step.id.clone(), (step.kind, step.action, props.clone(), deps));

    let cloud = cloud.clone();
    let may_adopt = adopt.contains(&step.id);
    running.spawn(async move {
        let started = Instant::now();
        let cx = Cx { cloud: &cloud, id: &step.id, may_adopt };
        let driver = step.kind.driver();
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
/// depends on them (reverse order) and for all creates and updates (deletions last).
fn order_steps(stack: &StackDef, plan: &Plan, state: &State) -> Vec<Step> {
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
        });
    }
    for id in &deleting {
        let dependents = state
            .resources
            .iter()
            .filter(|(other, r)| deleting.contains(*other) && r.deps.contains(id))
            .map(|(other, _)| other.clone());
        let waits_for = dependents.chain(forward_ids.iter().cloned()).collect();
        let kind = state.resources[id].kind;
        steps.push(Step { id: id.clone(), kind, action: Action::Delete, fields: vec![], waits_for });
    }
    steps
}
