//! Runs that die at any instant leak nothing: `up` and `down` killed with SIGKILL at instants
//! spread over their run (from halfway through the preparation before the first operation to the
//! end), each followed once by `down` (the cloud then holds nothing of the stack) and once by `up`
//! (exactly one of everything). Two runs started together: exactly
//! one runs, the other names it.

mod support;

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

/// How many instants are spread across one `up`.
const UP_INSTANTS: u32 = 20;
/// How many instants are spread across one `down`.
const DOWN_INSTANTS: u32 = 5;

/// Starts `provision <args>` for the stack, kills it with SIGKILL after `after`, and returns
/// whether an operation was journaled as pending at that instant (the kill landed mid-operation).
fn kill_after(stack: &TestStack, args: &[&str], after: Duration) -> bool {
    let mut child = stack.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
    pending_now(stack)
}

/// Whether the stack's state journals an operation now.
fn pending_now(stack: &TestStack) -> bool {
    std::fs::read_to_string(stack.state_file())
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|state| state["pending"].as_object().is_some_and(|p| !p.is_empty()))
}

/// Runs `provision <args>` to the end, watching the state file: how long it takes, and when the
/// first operation was journaled (the start of the part a kill can leave half-done).
fn timed(stack: &TestStack, args: &[&str]) -> (Duration, Duration) {
    let started = Instant::now();
    let mut child = stack.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut first_pending = None;
    while child.try_wait().unwrap().is_none() {
        if first_pending.is_none() && pending_now(stack) {
            first_pending = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = started.elapsed();
    (total, first_pending.unwrap_or_default())
}

/// `n` instants spread from halfway to the first journaled operation to the end of the run.
fn instants(total: Duration, first_pending: Duration, n: u32) -> Vec<Duration> {
    let from = first_pending / 2;
    (0..n).map(|i| from + (total - from).mul_f64((f64::from(i) + 0.5) / f64::from(n))).collect()
}

/// Nothing of the stack is left: no resource with its prefix, no database, no state file.
async fn assert_nothing_left(stack: &TestStack, after: &str) {
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "{after}: resources left");
    let databases = connect("postgres")
        .await
        .unwrap()
        .query("SELECT datname FROM pg_database WHERE datname = $1", &[&stack.database()])
        .await
        .unwrap();
    assert!(databases.is_empty(), "{after}: the stack's database was left");
    assert!(!stack.state_file().exists(), "{after}: the state file was left although nothing exists");
}

#[tokio::test]
async fn up_and_down_killed_at_any_instant_leave_nothing_behind_or_exactly_one_of_everything() {
    let mut stack = TestStack::new("kill");
    stack.ok(&["plan"]); // build once, so every killed run spends its time on the cloud
    let up_args = ["up", "--yes", "--skip-build"];
    let down_args = ["down", "--yes"];
    let (up_takes, up_first) = timed(&stack, &up_args);
    let (down_takes, down_first) = timed(&stack, &down_args);
    assert_nothing_left(&stack, "a plain down").await;
    eprintln!(
        "an uninterrupted up takes {up_takes:?} (first operation at {up_first:?}), a down {down_takes:?} (at {down_first:?})"
    );

    let mut kills = 0;
    let mut mid_operation = 0;
    for at in instants(up_takes, up_first, UP_INSTANTS) {
        // Killed up, then down: nothing is left.
        mid_operation += usize::from(kill_after(&stack, &up_args, at));
        stack.ok(&down_args);
        assert_nothing_left(&stack, &format!("up killed at {at:?}, then down")).await;
        // Killed up, then up: exactly one of everything, and nothing more to do.
        mid_operation += usize::from(kill_after(&stack, &up_args, at));
        stack.ok(&up_args);
        assert_exactly_one_of_everything(&stack).await;
        assert_eq!(stack.up()["changes"], json!([]), "up killed at {at:?}, then up: converged");
        stack.ok(&down_args);
        kills += 2;
    }
    for at in instants(down_takes, down_first, DOWN_INSTANTS) {
        stack.ok(&up_args);
        mid_operation += usize::from(kill_after(&stack, &down_args, at));
        stack.ok(&down_args);
        assert_nothing_left(&stack, &format!("down killed at {at:?}, then down")).await;
        stack.ok(&up_args);
        mid_operation += usize::from(kill_after(&stack, &down_args, at));
        stack.ok(&up_args);
        assert_exactly_one_of_everything(&stack).await;
        assert_eq!(stack.up()["changes"], json!([]), "down killed at {at:?}, then up: converged");
        stack.ok(&down_args);
        kills += 2;
    }
    eprintln!("{mid_operation} of {kills} kills landed while an operation was pending");
    assert!(
        mid_operation * 2 >= kills,
        "only {mid_operation} of {kills} kills landed mid-operation: the instants do not test the journal"
    );
    stack.down();
}

#[tokio::test]
async fn of_two_runs_started_together_exactly_one_runs_and_the_other_names_it() {
    let mut stack = TestStack::new("twice");
    stack.ok(&["plan"]); // build first, so both runs race for the lock, not for cargo
    let spawn = || {
        stack.command(&["up", "--yes", "--skip-build"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let pids = [first.id(), second.id()];
    let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    let succeeded: Vec<usize> = (0..2).filter(|i| outputs[*i].status.success()).collect();
    assert_eq!(succeeded.len(), 1, "exactly one run may go ahead: {outputs:#?}");
    let (winner, loser) = (succeeded[0], 1 - succeeded[0]);
    let refusal = String::from_utf8_lossy(&outputs[loser].stderr);
    assert!(
        refusal.contains("is locked by `provision up`") && refusal.contains(&format!("PID {}", pids[winner])),
        "the refused run names the one that holds the lock: {refusal}"
    );
    assert_exactly_one_of_everything(&stack).await;
    stack.down();
}
