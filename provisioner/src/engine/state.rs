//! The state file `state/<stack>.json`: what `provision` made, with the properties it applied and
//! the outputs it got back. Only the engine reads and writes it.
//!
//! Written atomically (temporary file, fsync, rename) with mode 0600 after every completed
//! operation. Operations in flight are journaled in `pending` before the API call and cleared
//! after it, so an interrupted run is visible to the next one. A lock file beside it stops two
//! runs on the same stack; a lock left by a dead process is detected and taken over.

use crate::aws::{Kind, Outputs, Recorded};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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
}

impl State {
    fn empty(stack: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            stack: stack.to_string(),
            resources: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// All recorded outputs, for resolving references.
    pub fn known_outputs(&self) -> crate::engine::input::KnownOutputs {
        self.resources.iter().map(|(id, r)| (id.clone(), r.outputs.clone())).collect()
    }
}

/// The state file of one stack, held under its lock for as long as this value lives.
pub struct StateStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl StateStore {
    /// Takes the stack's lock and loads its state (empty when there is no file yet).
    /// Fails, changing nothing, when the lock is held by a live process, the file is not valid
    /// JSON, or it was written in another format version.
    pub fn open(dir: &Path, stack: &str, command: &str) -> Result<(Self, State)> {
        fs::create_dir_all(dir).with_context(|| format!("creating the state folder {}", dir.display()))?;
        let path = dir.join(format!("{stack}.json"));
        let lock_path = dir.join(format!("{stack}.lock"));
        take_lock(&lock_path, stack, command)?;
        let store = Self { path, lock_path };
        let state = match store.load(stack) {
            Ok(state) => state,
            Err(err) => return Err(err), // store drops here and releases the lock
        };
        Ok((store, state))
    }

    fn load(&self, stack: &str) -> Result<State> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::empty(stack)),
            Err(err) => return Err(err).with_context(|| format!("reading the state file {}", self.path.display())),
        };
        let raw: Value = serde_json::from_str(&text).map_err(|err| {
            anyhow::anyhow!(
                "the state file {} is not valid JSON ({err}). Nothing was changed. Restore it from {}.bak, \
                 or move it away and run `provision up` to adopt the existing resources by name",
                self.path.display(),
                self.path.display()
            )
        })?;
        let version = raw.get("format_version").and_then(Value::as_u64);
        if version != Some(FORMAT_VERSION as u64) {
            bail!(
                "the state file {} has format version {}, this provision reads version {FORMAT_VERSION}. Nothing was changed. \
                 Use the provision release that wrote it, or move the file away and run `provision up` to adopt the resources by name",
                self.path.display(),
                version.map_or("(none)".to_string(), |v| v.to_string())
            );
        }
        let state: State = serde_json::from_value(raw).map_err(|err| {
            anyhow::anyhow!(
                "the state file {} does not have the expected shape ({err}). Nothing was changed. Restore it from {}.bak, \
                 or move it away and run `provision up` to adopt the existing resources by name",
                self.path.display(),
                self.path.display()
            )
        })?;
        if state.stack != stack {
            bail!(
                "the state file {} belongs to stack `{}`, not `{stack}`. Nothing was changed",
                self.path.display(),
                state.stack
            );
        }
        Ok(state)
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

    /// Removes the state file (and its backup) once the stack holds nothing.
    pub fn remove(&self) -> Result<()> {
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

impl Drop for StateStore {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock_path);
    }
}

#[derive(Serialize, Deserialize)]
struct LockOwner {
    pid: u32,
    command: String,
    started_unix: u64,
}

fn take_lock(lock_path: &Path, stack: &str, command: &str) -> Result<()> {
    let owner = LockOwner { pid: std::process::id(), command: command.to_string(), started_unix: now_unix() };
    for _ in 0..2 {
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(lock_path) {
            Ok(mut file) => {
                file.write_all(serde_json::to_string(&owner)?.as_bytes())?;
                return Ok(());
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder =
                    fs::read_to_string(lock_path).ok().and_then(|t| serde_json::from_str::<LockOwner>(&t).ok());
                match holder {
                    Some(holder) if process_alive(holder.pid) => bail!(
                        "stack `{stack}` is locked by `provision {}` (PID {}, started {} s ago). Wait for it to finish; \
                         if that process is not provision, delete {}",
                        holder.command,
                        holder.pid,
                        now_unix().saturating_sub(holder.started_unix),
                        lock_path.display()
                    ),
                    _ => {
                        eprintln!("note: taking over the stale lock {} (its process is gone)", lock_path.display());
                        fs::remove_file(lock_path).with_context(|| format!("removing the stale lock {}", lock_path.display()))?;
                    }
                }
            }
            Err(err) => return Err(err).with_context(|| format!("creating the lock {}", lock_path.display())),
        }
    }
    bail!("could not take the lock {}: another run keeps taking it", lock_path.display())
}

fn process_alive(pid: u32) -> bool {
    // Signal 0 checks for existence without delivering anything.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
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
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = temp_dir("lock");
        let (_first, _) = StateStore::open(&dir, "s", "up").unwrap();
        let err = StateStore::open(&dir, "s", "up").err().expect("second open must fail").to_string();
        assert!(err.contains("locked by `provision up`"), "{err}");
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let dir = temp_dir("stale");
        fs::create_dir_all(&dir).unwrap();
        // PID 0x7ffffffe is far above pid_max on Linux, so it names no live process.
        fs::write(dir.join("s.lock"), r#"{"pid":2147483646,"command":"up","started_unix":0}"#).unwrap();
        assert!(StateStore::open(&dir, "s", "up").is_ok());
    }

    #[test]
    fn saved_state_is_private_and_reloads() {
        let dir = temp_dir("save");
        let (store, mut state) = StateStore::open(&dir, "s", "up").unwrap();
        state
            .pending
            .insert("x".into(), PendingOperation { kind: Kind::SqsQueue, operation: "create".into(), started_unix: 1 });
        store.save(&state).unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(store);
        let (_store, loaded) = StateStore::open(&dir, "s", "up").unwrap();
        assert!(loaded.pending.contains_key("x"));
    }

    #[test]
    fn corrupt_or_foreign_state_is_refused_and_left_untouched() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("s.json"), "{ not json").unwrap();
        let err = StateStore::open(&dir, "s", "up").err().unwrap().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("s.json")).unwrap(), "{ not json");
        assert!(!dir.join("s.lock").exists(), "a refused open must release the lock");

        fs::write(dir.join("s.json"), r#"{"format_version": 99, "stack": "s"}"#).unwrap();
        let err = StateStore::open(&dir, "s", "up").err().unwrap().to_string();
        assert!(err.contains("format version 99"), "{err}");
    }
}
