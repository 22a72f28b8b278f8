//! PostgreSQL stops for 20 s while records keep coming: once it is back, every record arrives
//! exactly once. A test binary of its own, so that no other test of this run sees the outage.

mod support;

use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// Records posted, spread over the outage.
const RECORDS: usize = 100;
/// Pause between two posts: the posting lasts longer than the outage.
const SPACING: Duration = Duration::from_millis(300);
/// Posts made before PostgreSQL is stopped.
const BEFORE_OUTAGE: usize = 15;
/// How long PostgreSQL stays down.
const OUTAGE: Duration = Duration::from_secs(20);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `pg_ctl` of the installed PostgreSQL (the newest, as `scripts/local-cloud` picks any).
fn pg_ctl() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin").join("pg_ctl")))
        .filter(|path| path.exists())
        .collect();
    found.sort();
    found.pop().expect("a pg_ctl under /usr/lib/postgresql/*/bin")
}

/// Stops the local cloud's PostgreSQL (fast: sessions are ended, nothing is lost).
fn stop_postgres() {
    let data = workspace().join(".local-cloud/postgres/data");
    let mut command = if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(pg_ctl());
        command
    } else {
        Command::new(pg_ctl())
    };
    let status = command.arg("-D").arg(&data).args(["-m", "fast", "stop"]).status().expect("running pg_ctl stop");
    assert!(status.success(), "pg_ctl stop failed ({status}) for {}", data.display());
}

/// `scripts/local-cloud start`; its output goes to `log` (not a pipe: the MiniStack it may start
/// would hold a pipe open).
fn start_local_cloud(log: &Path) -> bool {
    let log = std::fs::File::create(log).expect("creating the start log");
    Command::new(workspace().join("scripts/local-cloud"))
        .arg("start")
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .is_ok_and(|status| status.success())
}

/// Restarts PostgreSQL when dropped, even when the test panics.
struct RestartPostgres {
    log: PathBuf,
}

impl Drop for RestartPostgres {
    fn drop(&mut self) {
        if !start_local_cloud(&self.log) {
            eprintln!("could not restart the local cloud: see {}", self.log.display());
        }
    }
}

// Multi-threaded: stopping and starting PostgreSQL blocks a thread, and the posting goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_while_postgres_is_down_arrive_exactly_once_when_it_is_back() {
    let mut stack = TestStack::new("pgdown");
    stack.up();
    let url = stack.output("api", "url");

    // A first record, so that downstream holds a Postgres connection that the outage breaks.
    let http = http();
    let answer = http.post_json(&url, &json!({"id": "warm-up", "message": "m", "timestamp": 1})).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let warm = BTreeSet::from(["warm-up".to_string()]);
    assert_eq!(wait_for_rows(&stack, &warm, Duration::from_secs(120)).await, warm);

    // Post RECORDS records one by one, SPACING apart; say when BEFORE_OUTAGE have been posted.
    let ids: Vec<String> = (0..RECORDS).map(|i| format!("load-{i:03}")).collect();
    let (posted_some, started) = tokio::sync::oneshot::channel();
    let poster = tokio::spawn({
        let (url, ids) = (url.clone(), ids.clone());
        async move {
            let http = support::http();
            let mut posted_some = Some(posted_some);
            let mut posted_at = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let answer = http.post_json(&url, &json!({"id": id, "message": "load", "timestamp": 1})).await.unwrap();
                assert_eq!(answer.status, 200, "posting {id}: {}", answer.body);
                posted_at.push(record::now_ms());
                if i + 1 == BEFORE_OUTAGE {
                    posted_some.take().unwrap().send(()).unwrap();
                }
                tokio::time::sleep(SPACING).await;
            }
            posted_at
        }
    });

    started.await.unwrap();
    let restart = RestartPostgres { log: stack.state_dir.join("local-cloud-start.log") };
    stop_postgres();
    let stopped_at = record::now_ms();
    assert!(connect(&stack.database()).await.is_err(), "PostgreSQL is down");
    tokio::time::sleep(OUTAGE).await;
    let restarting_at = record::now_ms();
    drop(restart);
    assert!(connect(&stack.database()).await.is_ok(), "PostgreSQL is back: see {}", stack.state_dir.display());

    let posted_at = poster.await.expect("every record is accepted by the API");
    let during: Vec<&String> = ids
        .iter()
        .zip(&posted_at)
        .filter(|(_, &at)| (stopped_at..restarting_at).contains(&at))
        .map(|(id, _)| id)
        .collect();
    assert!(during.len() >= 10, "records were posted while PostgreSQL was down: {during:?}");

    let mut expected: BTreeSet<String> = ids.iter().cloned().collect();
    expected.extend(warm);
    let arrived = wait_for_rows(&stack, &expected, Duration::from_secs(300)).await;
    let missing: Vec<&String> = expected.difference(&arrived).collect();
    assert!(missing.is_empty(), "{} records never arrived: {missing:?}", missing.len());
    assert_eq!(arrived, expected, "no other row");
    let db = stack.db().await;
    let count: i64 = db.query_one("SELECT count(*) FROM records", &[]).await.unwrap().get(0);
    assert_eq!(count as usize, expected.len(), "exactly one row per record");

    // The records posted during the outage were committed only once PostgreSQL was back.
    for id in during {
        let committed: i64 =
            db.query_one("SELECT committed_at_ms FROM records WHERE id = $1", &[id]).await.unwrap().get(0);
        assert!(committed >= restarting_at, "{id} committed at {committed}, before the restart at {restarting_at}");
    }
    // Nothing was given up on: the dead-letter queue is empty.
    let letters = drain_queue(&cloud().await, &stack.output("dead-letters", "url")).await;
    assert!(letters.is_empty(), "nothing is dead-lettered: {letters:#?}");
    drop(db);
    stack.down();
}
