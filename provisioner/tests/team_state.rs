//! One stack shared by two checkouts through a remote state in the local cloud's S3, as a team
//! and CI would share it: `state init` makes the bucket; the second checkout plans "No changes"
//! and can `down`; of two `up`s at once exactly one runs and the other names the holder; an `up`
//! killed with SIGKILL leaves its lock, the other checkout is refused until `unlock`, then
//! converges with nothing leaked; an `up` interrupted with SIGINT, SIGTERM or SIGHUP releases its lock;
//! a run whose lock was broken stops at its next write and the
//! other run's state stays (on MiniStack and on LocalStack, whose S3 has no conditional deletes);
//! writes whose answers were lost are known as the run's own; two states naming the same stack
//! refuse each other's resources; `state migrate` local -> S3 -> local keeps every resource; a
//! run at the place a state moved from is refused, naming the new one, and a run with no state
//! at all adopts nothing of a moved state.

mod support;

use provisioner::engine::state::StateStore;
use provisioner::remote_state::{S3State, StateUrl};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use support::fault_proxy::{Fault, FaultProxy};
use support::*;

/// A state bucket of this test's own, made with `provision state init`; its URL.
fn state_bucket(stack: &TestStack, label: &str) -> String {
    let url = format!("s3://tstate-{label}-{}/team", std::process::id());
    let made = stack.ok(&["state", "init", &url]);
    assert!(made.contains("versioned, encrypted"), "{made}");
    let again = stack.ok(&["state", "init", &url]);
    assert!(again.contains("already set up"), "a second init changes nothing: {again}");
    url
}

/// The same stack from a second checkout at another path, sharing the remote state.
fn teammate(stack: &TestStack, label: &str) -> TestStack {
    let mut other = TestStack::new(label);
    other.name = stack.name.clone();
    other.state_url = stack.state_url.clone();
    other.checkout = Some(second_checkout(label));
    other
}

fn no_changes(plan: &Value) -> bool {
    plan["changes"].as_array().is_some_and(|c| c.is_empty())
}

fn lock_id_in(refusal: &str) -> String {
    refusal.split("unlock ").last().and_then(|rest| rest.split_whitespace().next()).unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_second_checkout_shares_the_stack_through_the_remote_state() {
    let mut stack = TestStack::new("share");
    stack.state_url = Some(state_bucket(&stack, "share"));
    stack.up();
    let mut other = teammate(&stack, "sharb");
    let plan = other.plan();
    assert!(no_changes(&plan), "the second checkout owns the same resources: {plan}");
    other.down();
    let left = resources_named(&cloud().await, &stack.name).await;
    assert!(left.is_empty(), "down from the second checkout removed everything: {left:?}");
    stack.down();
}

#[tokio::test]
async fn of_two_ups_at_once_from_two_checkouts_exactly_one_runs_and_the_other_names_it() {
    let mut stack = TestStack::new("race");
    stack.state_url = Some(state_bucket(&stack, "race"));
    stack.up();
    stack.set_settings(&json!({ "upstream": { "memory_mb": 512 } }));
    let mut other = teammate(&stack, "racb");
    other.settings = stack.settings.clone();
    let first =
        stack.command(&["up", "--yes", "--skip-build"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let second =
        other.command(&["up", "--yes", "--skip-build"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let outcomes = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    let succeeded = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(succeeded, 1, "exactly one up runs: {outcomes:?}");
    let refused = outcomes.iter().find(|o| !o.status.success()).unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("is locked by `provision up`") && message.contains("unlock "), "{message}");
    let winner = outcomes.iter().find(|o| o.status.success()).unwrap();
    assert!(String::from_utf8_lossy(&winner.stdout).contains("1 changes applied"), "{winner:?}");
    assert!(no_changes(&other.plan()), "the run that ran converged the stack");
    other.forget();
    stack.down();
}

#[tokio::test]
async fn an_up_killed_in_one_checkout_holds_the_lock_until_unlock_then_the_other_converges() {
    let mut stack = TestStack::new("kill");
    stack.state_url = Some(state_bucket(&stack, "kill"));
    let mut killed = stack.command(&["up", "--yes"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Kill it mid-run: once its journal shows an operation in flight.
    let url = StateUrl::parse(stack.state_url.as_deref().unwrap()).unwrap();
    let s3 = cloud().await.s3;
    let key = url.state_key(&stack.name);
    let mid_run = eventually(Duration::from_secs(120), || {
        let (s3, bucket, key) = (s3.clone(), url.bucket.clone(), key.clone());
        async move {
            let Ok(object) = s3.get_object().bucket(&bucket).key(&key).send().await else { return false };
            let bytes = object.body.collect().await.unwrap().into_bytes();
            serde_json::from_slice::<Value>(&bytes).is_ok_and(|state| {
                state["pending"].as_object().is_some_and(|p| !p.is_empty())
                    && state["resources"].as_object().is_some_and(|r| r.len() >= 3)
            })
        }
    })
    .await;
    assert!(mid_run, "the up never got under way");
    killed.kill().unwrap();
    killed.wait().unwrap();

    let mut other = teammate(&stack, "kilb");
    let refused = other.provision(&["up", "--yes", "--skip-build"]);
    assert!(!refused.status.success(), "the killed run's lock holds");
    let message = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(message.contains("is locked by `provision up`"), "{message}");
    let lock_id = lock_id_in(&message);
    // `plan` reads without the lock and writes nothing.
    let object = |s3: aws_sdk_s3::Client, key: String| {
        let bucket = url.bucket.clone();
        async move { s3.head_object().bucket(bucket).key(key).send().await.unwrap().e_tag().unwrap().to_string() }
    };
    let (state_before, lock_before) =
        (object(s3.clone(), key.clone()).await, object(s3.clone(), url.lock_key(&stack.name)).await);
    let plan = other.plan();
    assert!(!no_changes(&plan), "the plan, read through the lock, shows what the killed run left: {plan}");
    assert_eq!(object(s3.clone(), key.clone()).await, state_before, "plan wrote no state");
    assert_eq!(object(s3.clone(), url.lock_key(&stack.name)).await, lock_before, "plan left the lock alone");
    assert!(!other.provision(&["unlock", "not-the-lock"]).status.success(), "only the named lock is released");
    let released = other.ok(&["unlock", &lock_id]);
    assert!(released.contains(&lock_id), "{released}");
    let converged: Value = serde_json::from_str(&other.ok(&["--json", "up", "--yes", "--skip-build"])).unwrap();
    assert!(converged["failed"].as_array().is_none_or(|f| f.is_empty()), "{converged}");
    assert!(no_changes(&other.plan()), "converged");
    assert_exactly_one_of_everything(&stack).await;
    other.down();
    assert!(resources_named(&cloud().await, &stack.name).await.is_empty(), "nothing leaked");
    stack.forget();
}

/// Ctrl-C, the SIGTERM CI sends on a cancel or a timeout, or the SIGHUP of a closed terminal,
/// mid-run: the run releases its lock and exits 130, 143 or 129; the other checkout goes on
/// without `unlock` and converges.
#[tokio::test]
async fn an_up_interrupted_mid_run_releases_its_lock_and_the_other_checkout_converges() {
    let mut stack = TestStack::new("intr");
    stack.state_url = Some(state_bucket(&stack, "intr"));
    let url = StateUrl::parse(stack.state_url.as_deref().unwrap()).unwrap();
    let remote = S3State::new(url.clone(), target_at(ENDPOINT));
    let mut other = teammate(&stack, "intb");
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let run = stack.command(&["up", "--yes"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mid_run = eventually(Duration::from_secs(120), || async {
            let (_reader, state) = StateStore::open_read_only(&remote, &stack.name).await.unwrap();
            !state.pending.is_empty()
        })
        .await;
        assert!(mid_run, "the up never got under way");
        unsafe { libc::kill(run.id() as i32, signal) };
        let out = run.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{said}");
        assert!(said.contains("interrupted") && said.contains("lock released"), "{said}");
        assert!(remote.read_lock(&stack.name).await.unwrap().is_none(), "the interrupted run released its lock");
        let converged = other.ok(&["--json", "up", "--yes", "--skip-build"]);
        assert!(no_changes(&other.plan()), "converged after {signal}: {converged}");
        assert_exactly_one_of_everything(&stack).await;
        other.down();
        assert!(resources_named(&cloud().await, &stack.name).await.is_empty(), "nothing leaked");
    }
    stack.forget();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_lock_was_broken_stops_at_its_next_write_and_the_other_runs_state_stays() {
    let stack = TestStack::new("fence");
    let url = state_bucket(&stack, "fence");
    let remote = S3State::new(StateUrl::parse(&url).unwrap(), target_at(ENDPOINT));
    a_broken_lock_fences_its_run(&remote, &stack.name).await;
}

/// The same on LocalStack's S3, a second implementation, which answers conditional deletes with
/// 501: the lock is released by read-compare-delete there.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_lock_was_broken_is_fenced_on_localstack_too() {
    require_localstack();
    let stack = TestStack::new("fencl");
    let bucket = format!("tstate-fencl-{}", std::process::id());
    let localstack = cloud_at(LOCALSTACK).await;
    localstack.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let remote = S3State::new(StateUrl::parse(&format!("s3://{bucket}/team")).unwrap(), target_at(LOCALSTACK));
    a_broken_lock_fences_its_run(&remote, &stack.name).await;
}

/// A run takes the lock and writes; its lock is broken with `unlock` and a second run writes:
/// the first run's next write is refused, its release leaves the second run's lock alone, and
/// the second run's state stays.
async fn a_broken_lock_fences_its_run(remote: &S3State, stack: &str) {
    let (first, mut state) = StateStore::open(remote, stack, "up").await.unwrap();
    assert!(state.origin.as_deref().is_some_and(|o| o.starts_with("lineage-")), "a new remote state has a lineage");
    state.program = Some("pipeline".into());
    first.save(&state).await.unwrap();
    let refused = StateStore::open(remote, stack, "up").await.err().expect("a second run is refused").to_string();
    assert!(refused.contains("is locked by `provision up`") && refused.contains("unlock "), "{refused}");

    // Someone unlocks it (the run looked dead) and another run goes on.
    let (held, _) = remote.read_lock(stack).await.unwrap().expect("the first run holds the lock");
    assert!(remote.unlock(stack, "not-the-lock").await.is_err(), "only the named lock is released");
    remote.unlock(stack, &held.lock_id).await.unwrap();
    let (second, mut theirs) = StateStore::open(remote, stack, "down").await.unwrap();
    theirs.program = Some("theirs".into());
    second.save(&theirs).await.unwrap();

    let err = first.save(&state).await.expect_err("the first run's write is fenced").to_string();
    assert!(err.contains("written by another run since this one read it"), "{err}");
    drop(first);
    let (holder, _) = remote.read_lock(stack).await.unwrap().expect("the first run's release left the lock alone");
    assert_ne!(holder.lock_id, held.lock_id, "the lock is the second run's");
    let (_reader, kept) = StateStore::open_read_only(remote, stack).await.unwrap();
    assert_eq!(kept.program.as_deref(), Some("theirs"), "the other run's state stays");
    drop(second);
    assert!(remote.read_lock(stack).await.unwrap().is_none(), "every lock released");

    // The stack gone, its state is removed (a conditional delete, or read-compare-delete).
    let (last, _) = StateStore::open(remote, stack, "down").await.unwrap();
    assert!(last.existed());
    last.remove(&provisioner::engine::state::State::empty(stack)).await.expect("the state is removed");
    drop(last);
    let (again, _) = StateStore::open(remote, stack, "up").await.unwrap();
    assert!(!again.existed(), "no state is left");
}

/// A write that took effect but whose answer was lost is retried by the SDK: the retry meets its
/// own lock, its own state, its own deletion, and goes on as if the first answer had come.
#[tokio::test(flavor = "multi_thread")]
async fn writes_whose_answers_were_lost_are_recognised_as_this_runs_own() {
    let stack = TestStack::new("lost");
    let url = state_bucket(&stack, "lost");
    let proxy = FaultProxy::start(ENDPOINT);
    let writes = std::sync::atomic::AtomicUsize::new(0);
    // The first attempt of every write (PUT, DELETE) is carried out and its answer lost.
    proxy.choose(move |call| {
        let write = call.service == "s3" && matches!(call.method.as_str(), "PUT" | "DELETE");
        (write && writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst).is_multiple_of(2))
            .then_some(Fault::LostAnswer)
    });
    let remote = S3State::new(StateUrl::parse(&url).unwrap(), target_at(&proxy.url));
    let (run, mut state) = StateStore::open(&remote, &stack.name, "up").await.expect("the lock is this run's");
    for program in ["first", "second"] {
        state.program = Some(program.into());
        run.save(&state).await.expect("the write is this run's");
    }
    drop(run);
    assert!(proxy.counts().0 >= 4, "the lock, both writes and the release each lost an answer");
    let direct = S3State::new(StateUrl::parse(&url).unwrap(), target_at(ENDPOINT));
    assert!(direct.read_lock(&stack.name).await.unwrap().is_none(), "the lock is released");
    let (_reader, kept) = StateStore::open_read_only(&direct, &stack.name).await.unwrap();
    assert_eq!(kept.program.as_deref(), Some("second"), "the last write is the state");
}

/// Two remote states that name the same stack are two stacks: neither adopts the other's.
#[tokio::test]
async fn two_states_naming_the_same_stack_refuse_each_others_resources() {
    let mut stack = TestStack::new("twin");
    let url = state_bucket(&stack, "twin");
    stack.state_url = Some(format!("{url}/one"));
    stack.up();
    let mut twin = teammate(&stack, "twib");
    twin.state_url = Some(format!("{url}/two"));
    let refused = twin.provision(&["up", "--yes", "--skip-build"]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the twin state adopts nothing");
    assert!(message.contains("Nothing was changed") && message.contains("--adopt"), "{message}");
    assert!(no_changes(&stack.plan()), "the first state's stack is untouched");
    twin.forget();
    stack.down();
}

#[tokio::test]
async fn migrating_local_to_s3_and_back_keeps_every_resource_with_no_change() {
    let mut stack = TestStack::new("move");
    stack.up();
    let url = state_bucket(&stack, "move");
    let moved = stack.ok(&["state", "migrate", "--to", &url]);
    assert!(moved.contains("the old copy is kept"), "{moved}");
    let pointer = stack.state();
    assert_eq!(pointer["resources"], json!({}), "only a pointer is left in the local folder: {pointer}");
    assert!(pointer["moved"]["to"].as_str().unwrap().starts_with(&url), "{pointer}");
    stack.state_url = Some(url.clone());
    assert!(no_changes(&stack.plan()), "after the move to S3 nothing changes");
    let again = stack.provision(&["state", "migrate", "--to", &url]);
    assert!(!again.status.success(), "moving to where it is is refused");
    let back = stack.ok(&["state", "migrate", "--to", "local"]);
    assert!(back.contains("the old copy is kept"), "{back}");
    stack.state_url = None;
    assert!(no_changes(&stack.plan()), "back in the local folder nothing changes");
    stack.down();
}

/// What `provision <args>` printed on stderr, asserting it failed.
fn refused(stack: &TestStack, args: &[&str]) -> String {
    let out = stack.provision(args);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} must be refused:\n{said}");
    said
}

#[tokio::test]
async fn a_run_where_the_state_was_before_a_migration_is_refused_and_adopts_nothing() {
    // Regression: after `state migrate --to s3://...`, a run without --state-url found no local
    // state, adopted every resource by its mark, and two states managed one stack from then on.
    let mut stack = TestStack::new("fork");
    stack.up();
    let url = state_bucket(&stack, "fork");
    stack.ok(&["state", "migrate", "--to", &url]);
    for args in [&["plan", "--skip-build"][..], &["up", "--yes", "--skip-build"], &["down", "--yes"], &["outputs"]] {
        let said = refused(&stack, args);
        assert!(said.contains("moved it to") && said.contains(&format!("--state-url {url}")), "{args:?}: {said}");
    }
    assert!(stack.state()["moved"].is_object(), "the pointer is still all there is locally");

    // Without even the pointer, nothing is adopted: the moved state re-marked its resources.
    std::fs::remove_file(stack.state_file()).unwrap();
    let said = refused(&stack, &["up", "--yes", "--skip-build"]);
    assert!(said.contains("held by another state of this stack"), "{said}");
    assert!(!stack.state_file().exists(), "no second state was started");

    let mut remote = teammate(&stack, "forr");
    remote.state_url = Some(url.clone());
    remote.checkout = None;
    assert!(no_changes(&remote.plan()), "the moved state still owns everything, unchanged");

    // Back to the local folder: a leftover --state-url is refused the same way.
    remote.ok(&["state", "migrate", "--to", "local"]);
    let said = refused(&remote, &["plan", "--skip-build"]);
    assert!(said.contains("moved it to") && said.contains("the local state folder"), "{said}");
    stack.state_dir = remote.state_dir.clone();
    assert!(no_changes(&stack.plan()), "the local state owns everything again");
    remote.forget();
    stack.down();
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new());
}
