//! The state file `state/<stack>.json`: what `provision` made, with the properties it applied and
//! the outputs it got back. Only the engine reads and writes it.
//!
//! Written atomically (temporary file, fsync, rename) with mode 0600 after every completed
//! operation. Operations in flight are journaled in `pending` before the API call and cleared
//! after it; each entry carries the resolved properties the operation was sent with, so the next
//! command, whichever it is, can find the resource by name and ownership mark however the run
//! died (`engine::ownership` acts on the journal).
//!
//! **Locking:** an OS file lock (`flock`) on `<stack>.lock`, taken for the whole run and released
//! by the kernel when the process ends, however it ends: there is no stale lock to take over and
//! no window between checking and taking. The lock file names its holder (command and PID) so a
//! refused run can say who holds it; the file itself is never removed. `plan` takes the lock
//! shared and writes nothing.

use crate::engine::driver::{Kind, Outputs, Recorded};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The state format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Everything recorded for one stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub format_version: u32,
    pub stack: String,
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    /// Operations started and not yet finished, by resource id.
    #[serde(default)]
    pub pending: BTreeMap<String, PendingOperation>,
    /// The origin part of the stack's ownership mark, fixed when the stack is first written, so a
    /// moved checkout keeps owning what it made (see `engine::ownership`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The program the stack is an instance of, fixed when the stack is first written: a stack
    /// is managed by that program only. (A state written before programs existed has none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// One managed resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceState {
    pub kind: Kind,
    /// The resolved properties last applied.
    pub props: Value,
    pub outputs: Outputs,
    /// Ids of the resources this one referred to, so deletion can run in reverse order.
    #[serde(default)]
    pub deps: Vec<String>,
}

impl ResourceState {
    /// The view a driver gets.
    pub fn recorded(&self) -> Recorded {
        Recorded { props: self.props.clone(), outputs: self.outputs.clone() }
    }
}

/// An operation journaled before its API call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingOperation {
    pub kind: Kind,
    pub operation: String,
    pub started_unix: u64,
    /// The resolved properties the operation was sent with: enough to find the resource by name.
    #[serde(default)]
    pub props: Value,
    /// The resources it refers to, so an adopted one is deleted in the right order.
    #[serde(default)]
    pub deps: Vec<String>,
}

impl State {
    fn empty(stack: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            stack: stack.to_string(),
            resources: BTreeMap::new(),
            pending: BTreeMap::new(),
            origin: None,
            program: None,
        }
    }

    /// True when nothing is recorded and nothing may exist: only then may the file go.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.pending.is_empty()
    }

    /// All recorded outputs, for resolving references.
    pub fn known_outputs(&self) -> crate::engine::input::KnownOutputs {
        self.resources.iter().map(|(id, r)| (id.clone(), r.outputs.clone())).collect()
    }
}

/// The state file of one stack, held under its exclusive lock for as long as this value lives.
pub struct StateStore {
    path: PathBuf,
    /// The locked file: the kernel releases the lock when it is closed or the process ends.
    _lock: fs::File,
}

/// A stack's state opened for reading only (`plan`): a shared lock when the stack has a lock
/// file, so a running `up` is not read half-way, and no write of any kind.
pub struct StateReader {
    _lock: Option<fs::File>,
}

impl StateStore {
    /// Takes the stack's lock and loads its state (empty when there is no file yet).
    /// Fails, changing nothing, when another run holds the lock, the file is not valid JSON, or
    /// it was written in another format version.
    pub fn open(dir: &Path, stack: &str, command: &str) -> Result<(Self, State)> {
        fs::create_dir_all(dir).with_context(|| format!("creating the state folder {}", dir.display()))?;
        let lock = take_lock(&lock_path(dir, stack), stack, command)?;
        let path = state_path(dir, stack);
        let state = load(&path, stack)?;
        Ok((Self { path, _lock: lock }, state))
    }

    /// Loads the state without writing anything: no folder, lock file or state file is created.
    /// Refused while another run holds the stack's lock.
    pub fn open_read_only(dir: &Path, stack: &str) -> Result<(StateReader, State)> {
        let lock_path = lock_path(dir, stack);
        let lock = match fs::File::open(&lock_path) {
            Ok(file) => {
                if !try_flock(&file, libc::LOCK_SH)? {
                    bail!("{}", held_message(stack, &lock_path));
                }
                Some(file)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("opening the lock {}", lock_path.display())),
        };
        Ok((StateReader { _lock: lock }, load(&state_path(dir, stack), stack)?))
    }

    /// Writes the state atomically with mode 0600, keeping the previous version as `.bak`.
    pub fn save(&self, state: &State) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(state).context("serializing the state")?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        if self.path.exists() {
            let _ = fs::copy(&self.path, self.path.with_extension("json.bak"));
            let _ = fs::set_permissions(self.path.with_extension("json.bak"), fs::Permissions::from_mode(0o600));
        }
        fs::rename(&tmp, &self.path).with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }

    /// Removes the state file (and its backup). Refused while the state still records something
    /// that may exist: the record is the only way to find it again.
    pub fn remove(&self, state: &State) -> Result<()> {
        if !state.is_empty() {
            bail!(
                "the state of stack `{}` still records {} resource(s) and {} interrupted operation(s): it is kept",
                state.stack,
                state.resources.len(),
                state.pending.len()
            );
        }
        for path in [self.path.clone(), self.path.with_extension("json.bak")] {
            match fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("removing {}", path.display()))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Where the state file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Records properties applied outside a plan (a hot-swap's new code hash) on recorded
/// resources, under the stack's lock, so the next plan sees them as applied. Waits up to `wait`
/// for another run to release the lock. Resources not recorded are skipped.
pub async fn record_applied(
    dir: &Path,
    stack: &str,
    command: &str,
    updates: &[(String, serde_json::Map<String, Value>)],
    wait: std::time::Duration,
) -> Result<()> {
    let started = std::time::Instant::now();
    let (store, mut state) = loop {
        match StateStore::open(dir, stack, command) {
            Ok(opened) => break opened,
            Err(err) if started.elapsed() >= wait => return Err(err),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    };
    for (id, props) in updates {
        if let Some(resource) = state.resources.get_mut(id) {
            for (key, value) in props {
                resource.props[key] = value.clone();
            }
        }
    }
    store.save(&state)
}

fn state_path(dir: &Path, stack: &str) -> PathBuf {
    dir.join(format!("{stack}.json"))
}

fn lock_path(dir: &Path, stack: &str) -> PathBuf {
    dir.join(format!("{stack}.lock"))
}

/// Reads and checks a state file; a missing file is an empty state.
fn load(path: &Path, stack: &str) -> Result<State> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::empty(stack)),
        Err(err) => return Err(err).with_context(|| format!("reading the state file {}", path.display())),
    };
    let raw: Value = serde_json::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "the state file {} is not valid JSON ({err}). Nothing was changed. Restore it from {}.bak, \
             or move it away and run `provision up`: it adopts the resources that carry this stack's mark",
            path.display(),
            path.display()
        )
    })?;
    let version = raw.get("format_version").and_then(Value::as_u64);
    if version != Some(FORMAT_VERSION as u64) {
        bail!(
            "the state file {} has format version {}, this provision reads version {FORMAT_VERSION}. Nothing was changed. \
             Use the provision release that wrote it, or move the file away and run `provision up`: it adopts the \
             resources that carry this stack's mark",
            path.display(),
            version.map_or("(none)".to_string(), |v| v.to_string())
        );
    }
    let state: State = serde_json::from_value(raw).map_err(|err| {
        anyhow::anyhow!(
            "the state file {} does not have the expected shape ({err}). Nothing was changed. Restore it from {}.bak, \
             or move it away and run `provision up`: it adopts the resources that carry this stack's mark",
            path.display(),
            path.display()
        )
    })?;
    if state.stack != stack {
        bail!(
            "the state file {} belongs to stack `{}`, not `{stack}`. Nothing was changed",
            path.display(),
            state.stack
        );
    }
    Ok(state)
}

/// Who holds a lock, as its holder wrote it into the lock file.
#[derive(Serialize, Deserialize)]
struct LockHolder {
    pid: u32,
    command: String,
    started_unix: u64,
}

/// Takes the exclusive lock without waiting and writes this run's name into the file.
fn take_lock(lock_path: &Path, stack: &str, command: &str) -> Result<fs::File> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
        .with_context(|| format!("opening the lock {}", lock_path.display()))?;
    if !try_flock(&file, libc::LOCK_EX)? {
        bail!("{}", held_message(stack, lock_path));
    }
    let holder = LockHolder { pid: std::process::id(), command: command.to_string(), started_unix: now_unix() };
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(serde_json::to_string(&holder)?.as_bytes())?;
    Ok(file)
}

/// `flock` without blocking: `Ok(false)` when another open file holds a conflicting lock.
fn try_flock(file: &fs::File, operation: libc::c_int) -> Result<bool> {
    // SAFETY: flock on a file descriptor this process owns for the call's duration.
    if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(err).context("locking the stack's lock file")
}

/// The refusal when a lock is held, naming the holder as it wrote itself into the file.
fn held_message(stack: &str, lock_path: &Path) -> String {
    let mut text = String::new();
    // The holder writes its name right after locking; give it a moment if we read too early.
    for _ in 0..10 {
        text.clear();
        if let Ok(mut file) = fs::File::open(lock_path) {
            let _ = file.read_to_string(&mut text);
        }
        if !text.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    match serde_json::from_str::<LockHolder>(&text) {
        Ok(holder) => format!(
            "stack `{stack}` is locked by `provision {}` (PID {}, started {} s ago). Nothing was changed: wait for it \
             to finish (the lock is released the instant that process ends, however it ends)",
            holder.command,
            holder.pid,
            now_unix().saturating_sub(holder.started_unix)
        ),
        Err(_) => {
            format!("stack `{stack}` is locked by another provision run. Nothing was changed: wait for it to finish")
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("provision-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock_and_names_it() {
        let dir = temp_dir("lock");
        let (first, _) = StateStore::open(&dir, "s", "up").unwrap();
        let err = StateStore::open(&dir, "s", "down").err().expect("second open must fail").to_string();
        assert!(err.contains("locked by `provision up`"), "{err}");
        assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
        let err = StateStore::open_read_only(&dir, "s").err().expect("a plan must not read mid-run").to_string();
        assert!(err.contains("locked by `provision up`"), "{err}");
        drop(first);
        assert!(StateStore::open(&dir, "s", "up").is_ok(), "closing the file releases the lock");
    }

    #[test]
    fn a_lock_file_left_behind_is_no_lock() {
        // A run killed with SIGKILL leaves its lock file, naming a process that may even be alive
        // again under the same PID: only the kernel's lock counts.
        let dir = temp_dir("stale");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("s.lock"), format!(r#"{{"pid":{},"command":"up","started_unix":0}}"#, std::process::id()))
            .unwrap();
        assert!(StateStore::open(&dir, "s", "up").is_ok());
    }

    #[test]
    fn reading_only_creates_nothing() {
        let dir = temp_dir("readonly");
        let (_reader, state) = StateStore::open_read_only(&dir, "s").unwrap();
        assert!(state.is_empty());
        assert!(!dir.exists(), "a read-only open must not create the state folder");
    }

    #[test]
    fn saved_state_is_private_and_reloads() {
        let dir = temp_dir("save");
        let (store, mut state) = StateStore::open(&dir, "s", "up").unwrap();
        state.pending.insert(
            "x".into(),
            PendingOperation {
                kind: Kind::new("sqs_queue"),
                operation: "create".into(),
                started_unix: 1,
                props: serde_json::json!({"name": "s-x"}),
                deps: vec![],
            },
        );
        store.save(&state).unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store.remove(&state).is_err(), "a state with a pending operation must not be removed");
        drop(store);
        let (_store, loaded) = StateStore::open(&dir, "s", "up").unwrap();
        assert_eq!(loaded.pending["x"].props["name"], "s-x");
    }

    #[test]
    fn corrupt_or_foreign_state_is_refused_and_left_untouched() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("s.json"), "{ not json").unwrap();
        let err = StateStore::open(&dir, "s", "up").err().unwrap().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("s.json")).unwrap(), "{ not json");
        assert!(StateStore::open(&dir, "s", "up").is_err(), "still refused; the refusal released the lock");

        fs::write(dir.join("s.json"), r#"{"format_version": 99, "stack": "s"}"#).unwrap();
        let err = StateStore::open(&dir, "s", "up").err().unwrap().to_string();
        assert!(err.contains("format version 99"), "{err}");
    }
}
