//! The engine as `up`, `plan` and `down` drive it, for a stack declared by a test (not by a
//! program): plan and apply through `engine::plan` and `engine::apply`, the state in a folder of
//! the test's own.

use crate::cases::{Case, Env};
use crate::support::{cloud_at, connect, default_network, workspace, ENDPOINT};
use crate::{shown, IT};
use provisioner::aws;
use provisioner::cloud::Cloud;
use provisioner::engine::declare::StackDef;
use provisioner::engine::driver::Recorded;
use provisioner::engine::plan::{self, Action, Plan};
use provisioner::engine::state::local::LocalFolder;
use provisioner::engine::state::{State, StateStore};
use provisioner::engine::{apply, mark};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// The origin every test stack carries in its mark.
const ORIGIN: &str = "kinds-test";

/// One stack's engine: its clients, its name, its state folder.
pub struct Engine {
    pub cloud: Arc<Cloud>,
    pub name: String,
    folder: LocalFolder,
    env: Env,
}

impl Engine {
    /// An engine for stack `name` on the endpoint at `url`, with no state yet.
    pub async fn new(url: &str, name: &str) -> Self {
        let dir: PathBuf = workspace().join("target").join("kinds-state").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let network = match url == ENDPOINT {
            true => default_network().await,
            false => (vec!["subnet-none".into(), "subnet-none2".into()], vec!["sg-none".into()]),
        };
        let cloud = cloud_at(url).await;
        let policy_arn = test_policy(&cloud).await;
        let env = Env { stack: name.to_string(), dir: dir.clone(), network, policy_arn };
        Self { cloud: Arc::new(cloud), name: name.to_string(), folder: LocalFolder::new(dir), env }
    }

    /// The case's stack, declared and marked.
    pub fn declaration(&self, case: &Case) -> StackDef {
        let mut def = StackDef::new(&self.name, ORIGIN);
        (case.declare)(&mut def, &self.env);
        def.mark_taggable(aws::registry());
        def
    }

    /// What update steps change to, for this stack.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// `plan`: refreshes and diffs, changing nothing.
    pub async fn plan(&self, def: &StackDef) -> Plan {
        let (_reader, mut state) = StateStore::open_read_only(&self.folder, &self.name).await.unwrap();
        let (plan, foreign) = plan::prepare(&self.cloud, aws::registry(), def, &mut state, &BTreeSet::new())
            .await
            .unwrap_or_else(|e| panic!("planning {}: {e:#}", self.name));
        assert!(foreign.is_empty(), "{}: nothing of another's is found: {foreign:?}", self.name);
        plan
    }

    /// `up`: plans and applies; panics when an operation fails. Returns the plan applied.
    pub async fn up(&self, def: &StackDef) -> Plan {
        let (store, mut state) = StateStore::open(&self.folder, &self.name, "up").await.unwrap();
        let (plan, foreign) = plan::prepare(&self.cloud, aws::registry(), def, &mut state, &BTreeSet::new())
            .await
            .unwrap_or_else(|e| panic!("planning {}: {e:#}", self.name));
        assert!(foreign.is_empty(), "{}: nothing of another's is found: {foreign:?}", self.name);
        state.origin = Some(ORIGIN.to_string());
        let report = apply::apply(&self.cloud, aws::registry(), def, &plan, &mut state, &store).await.unwrap();
        store.save(&state).await.unwrap();
        report.into_result("up").unwrap_or_else(|e| panic!("applying to {}:\n{plan}{e:#}", self.name));
        plan
    }

    /// `down`: deletes everything the state records.
    pub async fn down(&self) {
        let (store, mut state) = StateStore::open(&self.folder, &self.name, "down").await.unwrap();
        let plan = plan::destroy_all(&self.name, &state);
        let empty = StackDef::new(&self.name, ORIGIN);
        let report = apply::apply(&self.cloud, aws::registry(), &empty, &plan, &mut state, &store).await.unwrap();
        report.into_result("down").unwrap_or_else(|e| panic!("deleting {}: {e:#}", self.name));
        store.remove(&state).await.unwrap();
    }

    /// The state as saved.
    fn state(&self) -> State {
        let (_reader, state) = self.folder.read_now(&self.name).unwrap();
        state
    }

    /// What the state records of resource `id`: its properties (references resolved) and outputs.
    pub fn recorded(&self, id: &str) -> Recorded {
        let state = self.state();
        let resource = state.resources.get(id).unwrap_or_else(|| panic!("{}: `{id}` is not recorded", self.name));
        resource.recorded()
    }

    /// Deletes the state file, as a lost laptop or a wiped CI runner does.
    pub fn forget_state(&self) {
        std::fs::remove_file(self.folder.state_path(&self.name)).unwrap();
    }

    /// Reads the resource under test with the case's own client and compares every property the
    /// state records as applied (less the provisioner's own inputs and what the case names as not
    /// observable) with what the cloud holds.
    pub async fn assert_matches(&self, case: &Case, where_: &str, label: &str, when: &str) {
        let recorded = self.recorded(IT);
        let observed = (case.inspect)(&self.cloud, &recorded.props, &recorded.outputs)
            .await
            .unwrap_or_else(|| panic!("{label}: {when}: our own client does not find it"));
        let driver = aws::registry().driver(case.kind).unwrap();
        let unobservable = case.unobservable.iter().filter(|(_, on, _)| on.is_empty() || *on == where_);
        let skipped: BTreeSet<&str> =
            driver.ignore_in_diff().iter().copied().chain(unobservable.map(|(field, _, _)| *field)).collect();
        let differing: Vec<String> = recorded
            .props
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, _)| !skipped.contains(key.as_str()))
            .filter(|(key, declared)| !observed.get(key.as_str()).is_some_and(|seen| same(seen, declared)))
            .map(|(key, declared)| {
                format!(
                    "`{key}`: declared {}, our client reads {}",
                    shown(declared),
                    observed.get(key.as_str()).map_or("nothing".into(), shown)
                )
            })
            .collect();
        assert!(differing.is_empty(), "{label}: {when}:\n  {}", differing.join("\n  "));
        assert!(mark::carries_mark(&recorded.props, &observed) || !driver.takes_tags(), "{label}: {when}: marked");
    }

    /// No database named for the stack is left on the local PostgreSQL.
    pub async fn assert_no_database(&self) {
        let pattern = format!("{}%", self.name.replace('-', "_"));
        let client = connect("postgres").await.unwrap();
        let left = client.query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&pattern]).await.unwrap();
        let names: Vec<String> = left.iter().map(|row| row.get(0)).collect();
        assert!(names.is_empty(), "{}: databases left: {names:?}", self.name);
    }
}

/// The managed policy the IAM role's case attaches: made once per endpoint (IAM keeps it; it
/// allows nothing that exists).
async fn test_policy(cloud: &Cloud) -> String {
    const NAME: &str = "provision-kinds-test";
    let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:GetQueueUrl","Resource":"arn:aws:sqs:us-east-1:000000000000:none"}]}"#;
    match cloud.iam.create_policy().policy_name(NAME).policy_document(document).send().await {
        Ok(made) => made.policy().and_then(|p| p.arn()).unwrap().to_string(),
        Err(_) => {
            let account = cloud.account_id().await.unwrap();
            format!("arn:aws:iam::{account}:policy/{NAME}")
        }
    }
}

/// The action planned for `id` (`None`: not in the plan).
pub fn action_of(plan: &Plan, id: &str) -> Option<Action> {
    plan.changes.iter().find(|change| change.id == id).map(|change| change.action)
}

/// Equal as JSON, numbers compared by value (`5` is `5.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(key, value)| y.get(key).is_some_and(|other| same(value, other)))
        }
        _ => a == b,
    }
}
