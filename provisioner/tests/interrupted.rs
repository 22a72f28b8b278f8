//! Runs that die at any instant leak nothing: `up` and `down` killed with SIGKILL at instants
//! spread over their run (from halfway through the preparation before the first operation to the
//! end) and in operations the state journals as pending, each followed once by `down` (the cloud then holds nothing of the stack) and once by `up`
//! (exactly one of everything). Two runs started together: exactly
//! one runs, the other names it.

mod support;

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

/// How many instants are spread in time across one `up`.
const UP_INSTANTS: u32 = 10;
/// How many of an `up`'s journaled operations a run is killed in.
const UP_OPERATIONS: usize = 10;
/// How many instants are spread in time across one `down`.
const DOWN_INSTANTS: u32 = 3;
/// How many of a `down`'s journaled operations a run is killed in.
const DOWN_OPERATIONS: usize = 3;

/// When a run is killed.
#[derive(Debug, Clone)]
enum Kill {
    /// This long after it starts.
    After(Duration),
    /// As soon as the state journals an operation on this resource as pending.
    InOperationOn(String),
}

/// Starts `provision <args>` for the stack, kills it with SIGKILL at `kill`, and returns whether an
/// operation was journaled as pending at that instant (the kill landed mid-operation).
fn kill_at(stack: &TestStack, args: &[&str], kill: &Kill) -> bool {
    let mut child = stack.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    match kill {
        Kill::After(after) => std::thread::sleep(*after),
        Kill::InOperationOn(id) => {
            // A run that ends without that operation (its order can vary) is not killed.
            while child.try_wait().unwrap().is_none() && !pending_ids(stack).contains(id) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    !pending_ids(stack).is_empty()
}

/// The resources the stack's state journals an operation on now.
fn pending_ids(stack: &TestStack) -> Vec<String> {
    std::fs::read_to_string(stack.state_file())
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|state| state["pending"].as_object().map(|pending| pending.keys().cloned().collect()))
        .unwrap_or_default()
}

/// One uninterrupted run, watched through the state file.
struct Timed {
    /// How long it takes.
    total: Duration,
    /// When the first operation was journaled (the start of the part a kill can leave half-done).
    first_pending: Duration,
    /// The resources it journaled operations on, in the order they started.
    operations: Vec<String>,
}

/// Runs `provision <args>` to the end, watching the state file.
fn timed(stack: &TestStack, args: &[&str]) -> Timed {
    let started = Instant::now();
    let mut child = stack.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut first_pending = None;
    let mut operations: Vec<String> = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for id in pending_ids(stack) {
            first_pending.get_or_insert(started.elapsed());
            if !operations.contains(&id) {
                operations.push(id);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Timed { total: started.elapsed(), first_pending: first_pending.unwrap_or_default(), operations }
}

/// The kills for a run like `run`: `times` instants spread from halfway to its first journaled
/// operation to its end, and kills in `operations` of its journaled operations spread over them.
fn kills(run: &Timed, times: u32, operations: usize) -> Vec<Kill> {
    let from = run.first_pending / 2;
    let spread =
        (0..times).map(|i| Kill::After(from + (run.total - from).mul_f64((f64::from(i) + 0.5) / f64::from(times))));
    let seen = run.operations.len();
    let picked =
        (0..operations.min(seen)).map(|i| Kill::InOperationOn(run.operations[i * seen / operations.min(seen)].clone()));
    spread.chain(picked).collect()
}

/// Counts kills, and those aimed at an operation that landed in one.
#[derive(Default)]
struct Tally {
    kills: usize,
    aimed: usize,
    aimed_landed: usize,
    timed_landed: usize,
}

impl Tally {
    fn count(&mut self, kill: &Kill, landed: bool) {
        self.kills += 1;
        match kill {
            Kill::After(_) => self.timed_landed += usize::from(landed),
            Kill::InOperationOn(_) => {
                self.aimed += 1;
                self.aimed_landed += usize::from(landed);
            }
        }
    }
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
    let up = timed(&stack, &up_args);
    let down = timed(&stack, &down_args);
    assert_nothing_left(&stack, "a plain down").await;
    eprintln!(
        "an uninterrupted up takes {:?} ({} operations, the first at {:?}), a down {:?} ({} operations, the first at {:?})",
        up.total,
        up.operations.len(),
        up.first_pending,
        down.total,
        down.operations.len(),
        down.first_pending
    );
    assert!(!up.operations.is_empty() && !down.operations.is_empty(), "up and down journal their operations");

    let mut tally = Tally::default();
    for kill in kills(&up, UP_INSTANTS, UP_OPERATIONS) {
        // Killed up, then down: nothing is left.
        tally.count(&kill, kill_at(&stack, &up_args, &kill));
        stack.ok(&down_args);
        assert_nothing_left(&stack, &format!("up killed at {kill:?}, then down")).await;
        // Killed up, then up: exactly one of everything, and nothing more to do.
        tally.count(&kill, kill_at(&stack, &up_args, &kill));
        stack.ok(&up_args);
        assert_exactly_one_of_everything(&stack).await;
        assert_eq!(stack.up()["changes"], json!([]), "up killed at {kill:?}, then up: converged");
        stack.ok(&down_args);
    }
    for kill in kills(&down, DOWN_INSTANTS, DOWN_OPERATIONS) {
        stack.ok(&up_args);
        tally.count(&kill, kill_at(&stack, &down_args, &kill));
        stack.ok(&down_args);
        assert_nothing_left(&stack, &format!("down killed at {kill:?}, then down")).await;
        stack.ok(&up_args);
        tally.count(&kill, kill_at(&stack, &down_args, &kill));
        stack.ok(&up_args);
        assert_exactly_one_of_everything(&stack).await;
        assert_eq!(stack.up()["changes"], json!([]), "down killed at {kill:?}, then up: converged");
        stack.ok(&down_args);
    }
    eprintln!(
        "{} kills: {} of {} aimed at an operation landed in one; {} of the {} spread in time did",
        tally.kills,
        tally.aimed_landed,
        tally.aimed,
        tally.timed_landed,
        tally.kills - tally.aimed
    );
    assert!(
        tally.aimed_landed * 2 >= tally.aimed,
        "only {} of {} kills aimed at an operation landed in one: the kills do not test the journal",
        tally.aimed_landed,
        tally.aimed
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
