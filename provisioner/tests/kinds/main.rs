//! Every resource kind the engine knows, proven by one acceptance test in the shape of
//! Terraform's: the kind is declared in a stack of its own (with what it needs), and the engine
//! (plan, apply, the state) takes it through its life while the test's own clients, not the
//! driver's `read`, check the cloud:
//!
//! 1. created, and read back by our own client: every declared property as declared;
//! 2. planned again: no changes;
//! 3. deleted out of band: planned as a create, re-created, read back;
//! 4. adopted by its mark after the state is lost: the plan is empty, nothing is made twice;
//! 5. each updatable property (every property the driver does not replace on, less those a case
//!    names with the reason it cannot change here) changed in place, read back, planned empty;
//! 6. deleted by the engine, and verified gone by listing everything of the stack.
//!
//! MiniStack runs every kind; LocalStack Community runs those it serves here (Lambda needs
//! Docker, DynamoDB a Java download, RDS a Pro license). A kind added to the registry fails
//! `every_kind_has_a_case` until it has a case here.

#[path = "../support/mod.rs"]
mod support;

mod cases;
mod harness;

use cases::{Case, Step};
use harness::{action_of, Engine};
use provisioner::aws;
use provisioner::engine::plan::Action;
use serde_json::Value;
use std::collections::BTreeSet;
use support::*;

/// The resource under test is declared under this id; what it needs under others.
pub const IT: &str = "it";

/// Runs `case` through its whole life on the endpoint at `url` (`where_` names it).
async fn prove(case: &Case, url: &str, where_: &str) {
    let kind = case.kind;
    let label = format!("{} on {where_}", kind.label());
    let name = format!("k{}{}{}", short(kind.name()), &where_[..1].to_lowercase(), std::process::id());
    let engine = Engine::new(url, &name).await;
    let mut def = engine.declaration(case);
    eprintln!("{label}: create");
    let plan = engine.up(&def).await;
    assert_eq!(action_of(&plan, IT), Some(Action::Create), "{label}: the first up creates it");
    let mut recorded: Vec<String> = engine.recorded(IT).outputs.keys().cloned().collect();
    let mut named: Vec<String> =
        aws::registry().driver(kind).unwrap().outputs().iter().map(|o| o.to_string()).collect();
    recorded.sort();
    named.sort();
    assert_eq!(recorded, named, "{label}: the outputs a declaration may refer to are those it records");
    engine.assert_matches(case, where_, &label, "read back after create").await;
    assert!(engine.plan(&def).await.is_empty(), "{label}: planned again, nothing changes");

    eprintln!("{label}: deleted out of band");
    (case.destroy)(&engine.cloud, &engine.recorded(IT).props, &engine.recorded(IT).outputs).await;
    let plan = engine.plan(&def).await;
    assert_eq!(action_of(&plan, IT), Some(Action::Create), "{label}: deleted out of band, it is planned anew");
    engine.up(&def).await;
    engine.assert_matches(case, where_, &label, "re-created").await;
    assert!(engine.plan(&def).await.is_empty(), "{label}: re-created, nothing more to do");

    eprintln!("{label}: state lost");
    engine.forget_state();
    let plan = engine.plan(&def).await;
    assert!(plan.is_empty(), "{label}: state lost, everything is adopted by its mark:\n{plan}");
    assert_eq!(engine.up(&def).await.actionable().count(), 0, "{label}: adopted, nothing made again");
    engine.assert_matches(case, where_, &label, "adopted").await;

    for step in (case.updates)(engine.env()).iter().filter(|step| step.runs_on(where_)) {
        eprintln!("{label}: update {}", step.describe());
        let fields = step.apply_to(&mut def);
        let plan = engine.plan(&def).await;
        let change = plan.changes.iter().find(|c| c.id == IT).unwrap();
        assert_eq!(change.action, Action::Update, "{label}: {} is changed in place:\n{plan}", step.describe());
        let driver = aws::registry().driver(kind).unwrap();
        for field in fields.iter().filter(|f| !driver.ignore_in_diff().contains(&f.as_str())) {
            assert!(change.fields.contains(field), "{label}: the plan names `{field}`:\n{plan}");
        }
        engine.up(&def).await;
        engine.assert_matches(case, where_, &label, &format!("after {}", step.describe())).await;
        assert!(engine.plan(&def).await.is_empty(), "{label}: {} applied, nothing more to do", step.describe());
    }

    eprintln!("{label}: delete");
    let last = engine.recorded(IT);
    engine.down().await;
    assert!(
        (case.inspect)(&engine.cloud, &last.props, &last.outputs).await.is_none(),
        "{label}: our client finds it gone"
    );
    let listed = cases::all().into_iter().filter(|c| where_ == "MiniStack" || c.not_on_localstack.is_none());
    let left = resources_named_of(&engine.cloud, &engine.name, listed.map(|c| c.kind)).await;
    assert_eq!(left, Vec::<String>::new(), "{label}: nothing left");
    engine.assert_no_database().await;
}

/// The kind's name without underscores, short enough for every service's name limits.
fn short(kind: &str) -> String {
    kind.split('_').map(|word| &word[..word.len().min(3)]).collect()
}

#[test]
fn every_kind_has_a_case_and_every_updatable_property_a_step() {
    let registry = aws::registry();
    let cases = cases::all();
    for kind in registry.kinds() {
        let case = cases.iter().find(|case| case.kind == kind);
        let case =
            case.unwrap_or_else(|| panic!("kind `{}` has no case in tests/kinds/cases.rs: add one", kind.name()));
        let driver = registry.driver(kind).unwrap();
        let fixed: BTreeSet<&str> = driver.replace_on().iter().chain(driver.ignore_in_diff()).copied().collect();
        // Every property of the kind, not only those the case declares: a property added to a
        // kind fails here until a step changes it.
        let updatable: BTreeSet<&str> =
            driver.properties().iter().copied().filter(|key| !fixed.contains(key) && *key != "tags").collect();
        let steps = cases::steps_of(case);
        let stepped: BTreeSet<&str> = steps
            .iter()
            .flat_map(|step: &Step| step.fields())
            .chain(case.not_updated.iter().map(|(field, _)| *field))
            .collect();
        assert_eq!(
            updatable.iter().filter(|f| !stepped.contains(**f)).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "{}: every updatable property has an update step, or a reason in `not_updated`",
            kind.name()
        );
        for (field, reason) in case.not_updated {
            assert!(updatable.contains(field), "{}: `{field}` in not_updated is not updatable", kind.name());
            assert!(!reason.is_empty(), "{}: `{field}` needs a reason", kind.name());
        }
    }
}

/// Runs the case of the kind named `kind` on the endpoint at `url` (`where_` names it).
async fn prove_kind(kind: &str, url: &str, where_: &str) {
    let case = cases::all().into_iter().find(|case| case.kind.name() == kind).expect("the kind has a case");
    if where_ == "LocalStack" {
        if let Some(why) = case.not_on_localstack {
            eprintln!("{}: proven on MiniStack only: {why}", case.kind.label());
            return;
        }
        require_localstack();
    } else {
        require_local_cloud();
    }
    prove(&case, url, where_).await;
}

/// One test per kind and emulator, and the list of kinds they cover.
macro_rules! proven {
    ($($kind:ident),* $(,)?) => {
        /// The kinds with a test of their own below.
        const PROVEN: &[&str] = &[$(stringify!($kind)),*];
        $(
            mod $kind {
                #[tokio::test]
                async fn lives_its_whole_life_on_ministack() {
                    super::prove_kind(stringify!($kind), super::ENDPOINT, "MiniStack").await;
                }
                #[tokio::test]
                async fn lives_its_whole_life_on_localstack_where_served() {
                    super::prove_kind(stringify!($kind), super::LOCALSTACK, "LocalStack").await;
                }
            }
        )*
    };
}

proven!(
    api_key,
    cloudwatch_alarm,
    dynamodb_table,
    event_source_mapping,
    firehose_delivery_stream,
    iam_role,
    kinesis_stream,
    kinesis_stream_consumer,
    lambda_function,
    lambda_permission,
    log_group,
    postgres_schema,
    rds_instance,
    rds_subnet_group,
    rest_api,
    s3_bucket,
    sns_subscription,
    sns_topic,
    sqs_event_source_mapping,
    sqs_queue,
    usage_plan,
);

#[test]
fn every_kind_the_engine_knows_has_a_test_of_its_own() {
    let known: Vec<&str> = aws::registry().kinds().map(|kind| kind.name()).collect();
    assert_eq!(PROVEN.to_vec(), known, "add each new kind to `proven!` in tests/kinds/main.rs");
}

/// What a JSON value is, for messages.
pub fn shown(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
