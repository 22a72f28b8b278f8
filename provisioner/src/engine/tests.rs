//! The engine's own logic with an in-memory provider: plan, diff, ordering, known after apply,
//! failures, removed properties, and the one create-or-adopt path every kind follows. No cloud:
//! these run in milliseconds.
//!
//! Two fake kinds: a `cell` holds a value and outputs a `version` that changes whenever its
//! value does; a `link` copies another resource's `version` into its own `seen` property and
//! outputs a `version` of its own. A chain cell <- link <- link is the two-level propagation.

use crate::engine::apply::{apply, ApplyReport};
use crate::engine::declare::{Handle, Spec, StackDef};
use crate::engine::driver::{BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Registry, Sent};
use crate::engine::input::Input;
use crate::engine::plan::{prepare, Action, Plan};
use crate::engine::state::local::LocalFolder;
use crate::engine::state::{State, StateStore};
use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const CELL: Kind = Kind::new("test_cell");
const LINK: Kind = Kind::new("test_link");

/// The fake cloud: resources by name, and a log of every mutating call in order.
#[derive(Default)]
struct Fake {
    resources: Mutex<BTreeMap<String, Value>>,
    versions: Mutex<BTreeMap<String, u64>>,
    log: Mutex<Vec<String>>,
    /// Names whose create fails.
    broken: Mutex<BTreeSet<String>>,
    /// Names the cloud reports as failed (they exist, but no update mends them).
    failed: Mutex<BTreeSet<String>>,
    /// Names still being deleted: a create is refused as "taken", a lookup finds nothing.
    deleting: Mutex<BTreeSet<String>>,
    /// How many more lookups find nothing (a read right after a create, eventually consistent).
    unseen_reads: Mutex<u32>,
    /// The `note` a lookup must carry to reach the cloud at all (a database's CA, say).
    reach_note: Mutex<Option<String>>,
}

impl Fake {
    fn log(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn props(&self, name: &str) -> Option<Value> {
        self.resources.lock().unwrap().get(name).cloned()
    }
    /// Stores `props` under its name; the version moves on when anything but the name changes.
    fn put(&self, props: &Value) -> Outputs {
        let name = props["name"].as_str().unwrap().to_string();
        let mut resources = self.resources.lock().unwrap();
        let mut versions = self.versions.lock().unwrap();
        let version = versions.entry(name.clone()).or_insert(0);
        if resources.get(&name) != Some(props) {
            *version += 1;
        }
        resources.insert(name.clone(), props.clone());
        outputs(&name, *version)
    }
    fn get(&self, name: &str) -> Option<Observed> {
        let props = self.props(name)?;
        let version = self.versions.lock().unwrap()[name];
        let mut observed = Observed::new(props, outputs(name, version));
        observed.failed = self.failed.lock().unwrap().contains(name).then(|| "it broke".to_string());
        Some(observed)
    }
}

fn outputs(name: &str, version: u64) -> Outputs {
    json!({ "name": name, "version": version.to_string() }).as_object().unwrap().clone()
}

struct FakeDriver {
    kind: Kind,
    /// Whether this kind announces that an update changes its outputs.
    announces_output_changes: bool,
    /// Whether this kind carries the stack's mark as tags.
    takes_tags: bool,
    /// Its reach properties (also left out of its diff).
    reach: &'static [&'static str],
}

static CELLS: FakeDriver = FakeDriver { kind: CELL, announces_output_changes: true, takes_tags: false, reach: &[] };
static LINKS: FakeDriver = FakeDriver { kind: LINK, announces_output_changes: true, takes_tags: false, reach: &[] };
static QUIET_LINKS: FakeDriver =
    FakeDriver { kind: LINK, announces_output_changes: false, takes_tags: false, reach: &[] };
static TAGGED_CELLS: FakeDriver =
    FakeDriver { kind: CELL, announces_output_changes: false, takes_tags: true, reach: &[] };
/// Cells reached through their `note`.
static REACHED_CELLS: FakeDriver =
    FakeDriver { kind: CELL, announces_output_changes: true, takes_tags: false, reach: &["note"] };

impl Driver<Fake> for FakeDriver {
    fn kind(&self) -> Kind {
        self.kind
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["name", "version"]
    }
    fn properties(&self) -> &'static [&'static str] {
        &["name", "value", "shape", "note", "seen"]
    }
    fn check_declared(&self, props: &Value) -> std::result::Result<(), String> {
        match props.get("name") {
            Some(Value::String(_)) => Ok(()),
            _ => Err("property `name`: a string is required".into()),
        }
    }
    fn label(&self) -> &'static str {
        if self.kind == CELL {
            "test cell"
        } else {
            "test link"
        }
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name", "shape"]
    }
    fn outputs_may_change(&self, _changed: &[String]) -> bool {
        self.announces_output_changes
    }
    fn takes_tags(&self) -> bool {
        self.takes_tags
    }
    fn reach_properties(&self) -> &'static [&'static str] {
        self.reach
    }
    fn ignore_in_diff(&self) -> &'static [&'static str] {
        self.reach
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a, Fake>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let name = props["name"].as_str().unwrap();
            if let Some(note) = cx.cloud.reach_note.lock().unwrap().as_deref().filter(|_| !self.reach.is_empty()) {
                if props.get("note").and_then(Value::as_str) != Some(note) {
                    bail!("{name} cannot be reached with note {}", props["note"]);
                }
            }
            let mut unseen = cx.cloud.unseen_reads.lock().unwrap();
            if *unseen > 0 {
                *unseen -= 1;
                return Ok(None);
            }
            if cx.cloud.deleting.lock().unwrap().contains(name) {
                return Ok(None);
            }
            Ok(cx.cloud.get(name))
        })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a, Fake>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let name = props["name"].as_str().unwrap();
            cx.cloud.log(format!("create {name}"));
            if cx.cloud.broken.lock().unwrap().contains(name) {
                bail!("{name} cannot be created");
            }
            if cx.cloud.props(name).is_some() || cx.cloud.deleting.lock().unwrap().contains(name) {
                return Ok(Sent::Taken(anyhow::anyhow!("{name} is taken")));
            }
            Ok(Sent::Created(cx.cloud.put(props)))
        })
    }
    fn wait_deleted<'a>(&'a self, cx: &'a Cx<'a, Fake>, props: &'a Value) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = props["name"].as_str().unwrap();
            cx.cloud.log(format!("wait until {name} is deleted"));
            cx.cloud.deleting.lock().unwrap().remove(name);
            cx.cloud.resources.lock().unwrap().remove(name);
            Ok(())
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a, Fake>,
        props: &'a Value,
        _: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            cx.cloud.log(format!("update {} ({})", props["name"].as_str().unwrap(), changed.join(",")));
            Ok(cx.cloud.put(props))
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a, Fake>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = recorded.props["name"].as_str().unwrap();
            cx.cloud.log(format!("delete {name}"));
            cx.cloud.resources.lock().unwrap().remove(name);
            cx.cloud.failed.lock().unwrap().remove(name);
            Ok(())
        })
    }
}

#[derive(Serialize)]
struct CellSpec {
    name: String,
    value: u32,
    shape: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}
impl Spec for CellSpec {
    const KIND: &'static str = CELL.name();
}

#[derive(Serialize)]
struct LinkSpec {
    name: String,
    seen: Input<String>,
}
impl Spec for LinkSpec {
    const KIND: &'static str = LINK.name();
}

/// A chain: cell `a` <- link `b` (sees a's version) <- link `c` (sees b's version), and a
/// standalone cell `d`.
fn chain(value: u32, note: Option<&str>, with_d: bool) -> StackDef {
    let mut stack = StackDef::new("t", "origin");
    let cell = |name: &str, value| CellSpec { name: name.into(), value, shape: "round".into(), note: None };
    let a = stack.add("a", CellSpec { note: note.map(String::from), ..cell("a", value) });
    let b = stack.add("b", LinkSpec { name: "b".into(), seen: a.output("version") });
    stack.add("c", LinkSpec { name: "c".into(), seen: b.output("version") });
    if with_d {
        stack.add("d", cell("d", 1));
    }
    stack
}

struct World {
    cloud: Arc<Fake>,
    registry: Registry<Fake>,
    dir: LocalFolder,
    /// The state folder's path, removed when the test ends.
    path: std::path::PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl World {
    fn new(name: &str, links: &'static FakeDriver) -> Self {
        let dir = std::env::temp_dir().join(format!("provision-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let registry = Registry::new(&[&CELLS, links]);
        Self { cloud: Arc::new(Fake::default()), registry, dir: LocalFolder::new(dir.clone()), path: dir }
    }

    async fn plan(&self, stack: &StackDef) -> Plan {
        let (_reader, mut state) = StateStore::open_read_only(&self.dir, "t").await.unwrap();
        prepare(&self.cloud, &self.registry, stack, &mut state, &BTreeSet::new()).await.unwrap().0
    }

    async fn up(&self, stack: &StackDef) -> (Plan, ApplyReport, State) {
        let (store, mut state) = StateStore::open(&self.dir, "t", "up").await.unwrap();
        let (plan, foreign) = prepare(&self.cloud, &self.registry, stack, &mut state, &BTreeSet::new()).await.unwrap();
        assert!(foreign.is_empty());
        let report = apply(&self.cloud, &self.registry, stack, &plan, &mut state, &store).await.unwrap();
        (plan, report, state)
    }

    fn seen(&self, link: &str) -> String {
        self.cloud.props(link).unwrap()["seen"].as_str().unwrap().to_string()
    }

    fn version(&self, name: &str) -> String {
        self.cloud.versions.lock().unwrap()[name].to_string()
    }
}

fn actions(plan: &Plan) -> BTreeMap<String, Action> {
    plan.changes.iter().map(|c| (c.id.clone(), c.action)).collect()
}

#[tokio::test]
async fn create_then_nothing_to_do() {
    let world = World::new("create", &LINKS);
    let stack = chain(1, None, true);
    let plan = world.plan(&stack).await;
    assert!(plan.changes.iter().all(|c| c.action == Action::Create), "{plan}");
    let (_, report, state) = world.up(&stack).await;
    assert!(report.failed.is_empty() && report.skipped.is_empty());
    assert_eq!(state.resources.len(), 4);
    let calls = world.cloud.calls();
    let at = |entry: &str| calls.iter().position(|c| c == entry).unwrap();
    assert!(at("create a") < at("create b") && at("create b") < at("create c"), "dependencies first: {calls:?}");
    assert_eq!(world.seen("b"), world.version("a"));
    assert!(world.plan(&stack).await.is_empty(), "a second plan is empty");
}

#[tokio::test]
async fn an_update_that_changes_outputs_propagates_through_two_levels_in_one_run() {
    let world = World::new("known-after", &LINKS);
    world.up(&chain(1, None, true)).await;
    let stack = chain(2, None, true);
    let plan = world.plan(&stack).await;
    let expected = [("a", Action::Update), ("b", Action::Update), ("c", Action::Update), ("d", Action::Same)];
    assert_eq!(actions(&plan), expected.iter().map(|(k, v)| (k.to_string(), *v)).collect(), "{plan}");
    world.up(&stack).await;
    assert_eq!(world.seen("b"), world.version("a"), "b sees a's new version");
    assert_eq!(world.seen("c"), world.version("b"), "c sees b's new version");
    assert!(world.plan(&stack).await.is_empty(), "converged in one run");
}

#[tokio::test]
async fn outputs_that_change_unannounced_are_still_followed_in_the_same_run() {
    // Links that do not say their outputs may change: the plan shows only a and b, and the
    // apply re-plans c once b's version has moved.
    let world = World::new("net", &QUIET_LINKS);
    world.up(&chain(1, None, false)).await;
    let stack = chain(2, None, false);
    let plan = world.plan(&stack).await;
    assert_eq!(actions(&plan)["c"], Action::Same, "{plan}");
    let (_, report, _) = world.up(&stack).await;
    assert!(report.done.iter().any(|(id, action, _)| id == "c" && *action == Action::Update), "{:?}", report.done);
    assert_eq!(world.seen("c"), world.version("b"));
    assert!(world.plan(&stack).await.is_empty(), "converged in one run");
}

#[tokio::test]
async fn a_resource_the_cloud_reports_failed_is_replaced_and_dependents_follow() {
    let world = World::new("failed", &LINKS);
    let stack = chain(1, None, false);
    world.up(&stack).await;
    world.cloud.failed.lock().unwrap().insert("a".into());
    let plan = world.plan(&stack).await;
    let a = plan.changes.iter().find(|c| c.id == "a").unwrap();
    assert_eq!(a.action, Action::Replace, "{plan}");
    assert_eq!(a.drift.as_deref(), Some("failed in the cloud: it broke"), "{plan}");
    world.up(&stack).await;
    let calls = world.cloud.calls();
    assert_eq!(calls.iter().filter(|c| *c == "delete a").count(), 1, "{calls:?}");
    assert_eq!(world.seen("b"), world.version("a"));
    assert!(world.plan(&stack).await.is_empty(), "converged in one run");
}

#[tokio::test]
async fn a_replace_deletes_then_creates_and_dependents_follow() {
    let world = World::new("replace", &LINKS);
    world.up(&chain(1, None, false)).await;
    let mut stack = chain(1, None, false);
    stack.resources[0].props["shape"] = json!("square");
    let plan = world.plan(&stack).await;
    assert_eq!(actions(&plan)["a"], Action::Replace, "{plan}");
    world.up(&stack).await;
    let calls = world.cloud.calls();
    assert_eq!(calls.iter().filter(|c| *c == "delete a").count(), 1, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| *c == "create a").count(), 2, "{calls:?}");
    assert_eq!(world.seen("b"), world.version("a"));
    assert!(world.plan(&stack).await.is_empty());
}

#[tokio::test]
async fn deletions_run_last_and_dependents_first() {
    let world = World::new("delete", &LINKS);
    world.up(&chain(1, None, true)).await;
    let empty = StackDef::new("t", "origin");
    let plan = world.plan(&empty).await;
    assert!(plan.changes.iter().all(|c| c.action == Action::Delete), "{plan}");
    let (_, _, state) = world.up(&empty).await;
    assert!(state.resources.is_empty());
    let calls = world.cloud.calls();
    let at = |entry: &str| calls.iter().position(|c| c == entry).unwrap();
    assert!(at("delete c") < at("delete b") && at("delete b") < at("delete a"), "reverse order: {calls:?}");
}

#[tokio::test]
async fn dependents_of_a_failure_are_skipped_and_the_rest_goes_on() {
    let world = World::new("failure", &LINKS);
    world.cloud.broken.lock().unwrap().insert("a".into());
    let (_, report, state) = world.up(&chain(1, None, true)).await;
    assert_eq!(report.failed.len(), 1);
    let mut skipped = report.skipped.clone();
    skipped.sort();
    assert_eq!(skipped, vec!["b", "c"]);
    assert!(state.resources.contains_key("d"), "an independent resource is still made");
    assert!(!world.cloud.calls().iter().any(|c| c == "create b"), "a dependent of a failure is never called");
    assert_eq!(
        state.pending.keys().collect::<Vec<_>>(),
        ["a"],
        "a failed create stays journaled, so the next run looks for what it may have made"
    );
}

#[tokio::test]
async fn a_property_removed_from_the_declaration_is_a_change() {
    let world = World::new("removed", &LINKS);
    world.up(&chain(1, Some("remember me"), false)).await;
    let stack = chain(1, None, false);
    let plan = world.plan(&stack).await;
    let a = plan.changes.iter().find(|c| c.id == "a").unwrap();
    assert_eq!((a.action, a.fields.clone()), (Action::Update, vec!["note".to_string()]), "{plan}");
    world.up(&stack).await;
    assert!(world.cloud.props("a").unwrap().get("note").is_none());
    assert!(world.plan(&stack).await.is_empty());
}

#[tokio::test]
async fn drift_is_reported_as_such() {
    let world = World::new("drift", &LINKS);
    let stack = chain(1, None, false);
    world.up(&stack).await;
    world.cloud.resources.lock().unwrap().get_mut("a").unwrap()["value"] = json!(7);
    let plan = world.plan(&stack).await;
    let a = plan.changes.iter().find(|c| c.id == "a").unwrap();
    assert_eq!(a.action, Action::Update);
    assert!(a.drift.as_deref().is_some_and(|d| d.contains("value")), "{plan}");
    world.cloud.resources.lock().unwrap().remove("b");
    let plan = world.plan(&stack).await;
    assert_eq!(actions(&plan)["b"], Action::Create, "deleted out of band: {plan}");
}

// The one create-or-adopt path (engine::lifecycle), on a kind that carries the mark.

const MARK: &str = r#"{"provision:stack": "t", "provision:origin": "origin"}"#;

fn tagged(name: &str, value: u32, tags: &str) -> Value {
    json!({ "name": name, "value": value, "shape": "round", "tags": serde_json::from_str::<Value>(tags).unwrap() })
}

async fn create(cloud: &Fake, props: &Value, may_adopt: bool) -> Result<Outputs> {
    let cx = Cx { cloud, id: "x", may_adopt };
    TAGGED_CELLS.create(&cx, props).await
}

#[tokio::test]
async fn a_create_that_meets_a_resource_without_the_mark_changes_nothing_and_says_how_to_adopt() {
    let cloud = Fake::default();
    cloud.put(&tagged("x", 1, "{}"));
    let err = create(&cloud, &tagged("x", 2, MARK), false).await.unwrap_err().to_string();
    assert!(err.contains("does not carry this stack's mark") && err.contains("`provision up --adopt x`"), "{err}");
    assert!(!err.contains("  "), "one space between words: {err}");
    assert_eq!(cloud.calls(), ["create x"], "no update, no delete: {:?}", cloud.calls());
    assert_eq!(cloud.props("x").unwrap()["value"], 1, "left untouched");
    let other_stack = r#"{"provision:stack": "other", "provision:origin": "origin"}"#;
    cloud.put(&tagged("x", 1, other_stack));
    assert!(create(&cloud, &tagged("x", 2, MARK), false).await.is_err(), "another stack's mark is refused too");
}

#[tokio::test]
async fn a_create_adopts_a_resource_with_the_mark_and_applies_only_what_differs() {
    let cloud = Fake::default();
    cloud.put(&tagged("x", 1, MARK));
    create(&cloud, &tagged("x", 2, MARK), false).await.unwrap();
    assert_eq!(cloud.calls(), ["create x", "update x (value)"]);
    assert_eq!(cloud.props("x").unwrap()["value"], 2);
}

#[tokio::test]
async fn adopt_on_request_takes_an_unmarked_resource_and_writes_the_mark() {
    let cloud = Fake::default();
    cloud.put(&tagged("x", 1, "{}"));
    create(&cloud, &tagged("x", 1, MARK), true).await.unwrap();
    assert_eq!(cloud.calls(), ["create x", "update x (tags)"]);
    assert_eq!(cloud.props("x").unwrap()["tags"], serde_json::from_str::<Value>(MARK).unwrap());
}

#[tokio::test]
async fn a_name_still_being_deleted_is_waited_for_once_then_created() {
    let cloud = Fake::default();
    cloud.deleting.lock().unwrap().insert("x".into());
    create(&cloud, &tagged("x", 1, MARK), false).await.unwrap();
    assert_eq!(cloud.calls(), ["create x", "wait until x is deleted", "create x"]);
}

#[tokio::test]
async fn a_resource_of_ours_that_failed_in_the_cloud_is_deleted_and_made_again() {
    let cloud = Fake::default();
    cloud.put(&tagged("x", 1, MARK));
    cloud.failed.lock().unwrap().insert("x".into());
    create(&cloud, &tagged("x", 1, MARK), false).await.unwrap();
    assert_eq!(cloud.calls(), ["create x", "delete x", "create x"]);
    assert!(cloud.get("x").is_some_and(|x| x.failed.is_none()));
}

#[tokio::test]
async fn a_read_that_does_not_show_a_new_resource_yet_is_retried() {
    let cloud = Fake::default();
    *cloud.unseen_reads.lock().unwrap() = 3;
    let outputs = create(&cloud, &tagged("x", 1, MARK), false).await.unwrap();
    assert_eq!(outputs["name"], "x");
    assert_eq!(cloud.calls(), ["create x"], "read back without creating twice");
}

#[tokio::test]
async fn a_property_managed_at_run_time_is_kept_within_its_bounds() {
    let world = World::new("managed", &LINKS);
    let managed = |value: u32| {
        let mut stack = chain(value, None, false);
        let a = Handle::<CellSpec>::of("a");
        stack.manage(&a, "value", (1.0, 10.0), "autoscaled");
        stack
    };
    world.up(&managed(2)).await;
    // Something at run time moves it within its bounds: not a change, and said so.
    world.cloud.resources.lock().unwrap().get_mut("a").unwrap()["value"] = json!(7);
    let plan = world.plan(&managed(2)).await;
    assert!(plan.is_empty(), "{plan}");
    assert!(plan.notes.iter().any(|n| n == "`a`: value 7, autoscaled within 1-10"), "{:?}", plan.notes);
    // Another declared change keeps the run-time value.
    let mut noted = managed(2);
    noted.resources[0].props["note"] = json!("hello");
    world.up(&noted).await;
    assert_eq!(world.cloud.props("a").unwrap()["value"], 7, "an update does not revert it");
    // Outside its bounds it is brought back to the nearest one.
    world.cloud.resources.lock().unwrap().get_mut("a").unwrap()["value"] = json!(20);
    let plan = world.plan(&noted).await;
    assert_eq!(actions(&plan)["a"], Action::Update, "{plan}");
    world.up(&noted).await;
    assert_eq!(world.cloud.props("a").unwrap()["value"], 10);
    assert!(world.plan(&noted).await.is_empty());
}

#[tokio::test]
async fn a_stack_adopted_after_its_state_was_lost_plans_no_change_for_what_it_never_declared() {
    // Regression: after a lost state, the adopted RDS instance recorded the default subnet group
    // the cloud reported, which the declaration leaves out, and was planned for replacement.
    let world = World::new("lost", &LINKS);
    let stack = chain(1, None, true);
    world.up(&stack).await;
    let mut a = world.cloud.props("a").unwrap();
    a["note"] = json!("a default the endpoint fills in");
    world.cloud.resources.lock().unwrap().insert("a".into(), a);
    std::fs::remove_dir_all(world.dir.dir()).unwrap();
    let plan = world.plan(&stack).await;
    assert!(plan.is_empty(), "adopted by mark with nothing to change: {plan}");
    assert!(plan.notes.iter().any(|n| n.contains("adopted")), "{plan}");
}

#[tokio::test]
async fn a_removed_property_the_cloud_already_lacks_is_no_change() {
    let world = World::new("gone", &LINKS);
    world.up(&chain(1, Some("hello"), false)).await;
    let mut a = world.cloud.props("a").unwrap();
    a["note"] = Value::Null;
    world.cloud.resources.lock().unwrap().insert("a".into(), a);
    let plan = world.plan(&chain(1, None, false)).await;
    assert!(plan.is_empty(), "nothing left to take off: {plan}");
}

#[tokio::test]
async fn remark_gives_the_stacks_resources_the_new_origin_and_leaves_what_is_no_longer_its_own() {
    let cloud = Arc::new(Fake::default());
    let registry = Registry::new(&[&TAGGED_CELLS]);
    let old = r#"{"provision:stack": "t", "provision:origin": "old"}"#;
    let mut state = State::empty("t");
    for name in ["a", "b"] {
        let props = tagged(name, 1, old);
        let outputs = cloud.put(&props);
        state
            .resources
            .insert(name.into(), crate::engine::state::ResourceState { kind: CELL, props, outputs, deps: vec![] });
    }
    // `b` was deleted and made again by another stack under the same name.
    cloud.put(&tagged("b", 1, r#"{"provision:stack": "other", "provision:origin": "x"}"#));
    let failed = crate::engine::ownership::remark(&cloud, &registry, &mut state, "old", "new").await.unwrap();
    assert_eq!(cloud.props("a").unwrap()["tags"]["provision:origin"], json!("new"), "a is re-marked");
    assert_eq!(state.resources["a"].props["tags"]["provision:origin"], json!("new"), "and recorded so");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].0 == "b" && failed[0].1.contains("no longer carries the stack's mark"), "{failed:?}");
    assert_eq!(cloud.props("b").unwrap()["tags"]["provision:stack"], json!("other"), "b is left alone");
    assert_eq!(state.resources["b"].props["tags"]["provision:origin"], json!("old"), "its record unchanged");
}

// The declaration as a document (`engine::document`).

mod document {
    use super::*;
    use crate::engine::document::{Declaration, Document, VERSION};

    fn registry() -> Registry<Fake> {
        Registry::new(&[&CELLS, &LINKS])
    }

    /// A document's JSON with `change` applied to it.
    fn edited(change: impl FnOnce(&mut Value)) -> String {
        let mut document = serde_json::to_value(Declaration::of(&chain(1, Some("n"), true))).unwrap();
        change(&mut document);
        document.to_string()
    }

    /// The error reading `text` as stack `t`'s declaration gives.
    fn refusal(text: &str) -> String {
        let parsed = Declaration::parse(text, "program `p`");
        match parsed.and_then(|d| d.into_stack("t", "origin", &registry())) {
            Ok(_) => panic!("accepted: {text}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn a_stack_written_as_a_document_and_read_back_is_the_same_stack() {
        let stack = chain(1, Some("n"), true);
        let text = serde_json::to_string(&Declaration::of(&stack)).unwrap();
        let read = Declaration::parse(&text, "program `p`").unwrap().into_stack("t", "origin", &registry()).unwrap();
        assert_eq!(read.resources.len(), stack.resources.len());
        for (read, declared) in read.resources.iter().zip(&stack.resources) {
            assert_eq!(
                (&read.id, read.kind, &read.props, &read.deps),
                (&declared.id, declared.kind, &declared.props, &declared.deps)
            );
        }
        assert_eq!(Declaration::of(&read), Declaration::of(&stack), "the same document again");
    }

    #[test]
    fn resources_out_of_order_are_created_after_what_they_refer_to() {
        let text = edited(|doc| doc["resources"].as_array_mut().unwrap().reverse());
        let stack = Declaration::parse(&text, "p").unwrap().into_stack("t", "origin", &registry()).unwrap();
        let ids: Vec<&str> = stack.resources.iter().map(|r| r.id.as_str()).collect();
        // Reversed, d (which refers to nothing) comes first as written; c and b wait for a.
        assert_eq!(ids, ["d", "a", "b", "c"]);
    }

    #[test]
    fn a_document_that_is_not_json_or_of_another_version_is_refused_naming_the_program() {
        let said = refusal("building... done\n{");
        assert!(said.contains("program `p` did not print a declaration: its output is not JSON"), "{said}");
        let said = refusal(&edited(|doc| doc["version"] = json!(VERSION + 1)));
        assert!(said.contains("with version 2: this provision reads version 1"), "{said}");
        let said = refusal(&edited(|doc| doc["resources"][0]["propertes"] = json!({})));
        assert!(said.contains("not well formed: at `resources[0].propertes`: unknown field"), "{said}");
    }

    #[test]
    fn each_problem_of_a_declaration_is_named_with_its_resource_property_and_fix() {
        let text = edited(|doc| {
            let resources = doc["resources"].as_array_mut().unwrap();
            resources[1]["properties"]["seen"] = json!({ "$ref": "nowhere.version" });
            resources[2]["properties"]["seen"] = json!({ "$ref": "a.colour" });
            resources[3]["kind"] = json!("test_cube");
            resources[0]["properties"]["tags"] = json!({ "provision:stack": "t" });
            let twin = resources[0].clone();
            resources.push(twin);
            doc["exports"] = json!([{ "name": "url", "parts": ["http://", { "$ref": "zz.name" }] }]);
        });
        let said = refusal(&text);
        for expected in [
            "cannot be deployed; nothing was read or changed",
            "resource id `a` is declared twice",
            "resource `d`: there is no kind `test_cube`; the kinds are test_cell, test_link",
            "resource `a` (test cell): `tags` is provision's ownership mark",
            "resource `b` (test link), property `seen`: refers to `nowhere`, which is not declared",
            "resource `c` (test link), property `seen`: refers to output `colour` of `a`, a test cell that has no such output: its outputs are name, version",
            "export `url`: refers to `zz`, which is not declared",
        ] {
            assert!(said.contains(expected), "says `{expected}`:\n{said}");
        }
    }

    #[test]
    fn a_cycle_a_wrong_stack_and_a_bad_property_are_refused() {
        let text = edited(|doc| {
            doc["stack"] = json!("other");
            doc["resources"][0]["properties"]["note"] = json!({ "$ref": "c.version" });
            doc["resources"][3]["properties"]["name"] = json!(7);
        });
        let said = refusal(&text);
        assert!(said.contains("the declaration is for stack `other`, not `t`"), "{said}");
        assert!(said.contains("resources `a` -> `c` -> `b` -> `a` refer to each other in a cycle"), "{said}");
        assert!(said.contains("resource `d` (test cell): property `name`: a string is required"), "{said}");
    }
}

#[tokio::test]
async fn how_to_reach_a_resource_is_taken_from_the_declaration_not_the_state() {
    let mut world = World::new("reach", &LINKS);
    world.registry = Registry::new(&[&REACHED_CELLS, &LINKS]);
    world.up(&chain(1, Some("ca-1"), false)).await;
    // The cloud now takes only the new note: the recorded one no longer reaches `a`.
    *world.cloud.reach_note.lock().unwrap() = Some("ca-2".into());
    let stack = chain(1, Some("ca-2"), false);
    let plan = world.plan(&stack).await;
    assert!(plan.is_empty(), "the declared note reaches `a`, and changes nothing in it: {plan}");
    let stored = StateStore::open_read_only(&world.dir, "t").await.unwrap().1;
    assert_eq!(stored.resources["a"].props["note"], "ca-1", "plan wrote nothing");
    let (_, report, state) = world.up(&stack).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(state.resources["a"].props["note"], "ca-2", "up works with how `a` is reached now");
}

#[tokio::test]
async fn a_resource_declared_differently_is_reached_as_recorded() {
    let mut world = World::new("reach-recorded", &LINKS);
    world.registry = Registry::new(&[&REACHED_CELLS, &LINKS]);
    world.up(&chain(1, Some("ca-1"), false)).await;
    *world.cloud.reach_note.lock().unwrap() = Some("ca-1".into());
    // Another value and another note: not the same resource in the same place, so the recorded
    // note is what reaches it (the declared one would not), and the value is an update.
    let plan = world.plan(&chain(2, Some("ca-2"), false)).await;
    assert_eq!(actions(&plan)["a"], Action::Update, "{plan}");
}
