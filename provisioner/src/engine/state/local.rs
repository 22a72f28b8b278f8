//! The local state folder (`state/` by default): `<stack>.json`, written atomically (temporary
//! file, fsync, rename) with mode 0600, the previous version kept as `<stack>.json.bak`.
//!
//! **Locking:** an OS file lock (`flock`) on `<stack>.lock`, taken for the whole run and released
//! by the kernel when the process ends, however it ends: there is no stale lock to take over and
//! no window between checking and taking. The lock file names its holder (command and PID) so a
//! refused run can say who holds it; the file itself is never removed. Reading takes the lock
//! shared and writes nothing.

use super::{now_unix, parse, State, StateBackend, StateLease, StateReader};
use crate::engine::driver::BoxFut;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A folder holding one state file and one lock file per stack.
#[derive(Debug, Clone)]
pub struct LocalFolder {
    dir: PathBuf,
}

impl LocalFolder {
    /// The state folder `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of `stack`.
    pub fn state_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("{stack}.json"))
    }

    fn lock_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("{stack}.lock"))
    }

    /// Takes the stack's lock and loads its state, synchronously.
    pub fn lock_now(&self, stack: &str, command: &str) -> Result<(LocalLease, State)> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating the state folder {}", self.dir.display()))?;
        let lock = take_lock(&self.lock_path(stack), stack, command)?;
        let path = self.state_path(stack);
        let existed = path.exists();
        let state = load(&path, stack)?;
        Ok((LocalLease { path, existed, _lock: lock }, state))
    }

    /// Loads the state under a shared lock, creating nothing, synchronously.
    pub fn read_now(&self, stack: &str) -> Result<(StateReader, State)> {
        let lock_path = self.lock_path(stack);
        let lock = match fs::File::open(&lock_path) {
            Ok(file) => {
                if !try_flock(&file, libc::LOCK_SH)? {
                    bail!("{}", held_message(stack, &lock_path));
                }
                Some(Box::new(file) as Box<dyn Send + Sync>)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("opening the lock {}", lock_path.display())),
        };
        Ok((StateReader::holding(lock), load(&self.state_path(stack), stack)?))
    }
}

impl StateBackend for LocalFolder {
    fn location(&self, stack: &str) -> String {
        self.state_path(stack).display().to_string()
    }
    fn lock<'a>(&'a self, stack: &'a str, command: &'a str) -> BoxFut<'a, Result<(Box<dyn StateLease>, State)>> {
        Box::pin(async move {
            let (lease, state) = self.lock_now(stack, command)?;
            Ok((Box::new(lease) as Box<dyn StateLease>, state))
        })
    }
    fn read<'a>(&'a self, stack: &'a str) -> BoxFut<'a, Result<(StateReader, State)>> {
        Box::pin(async move { self.read_now(stack) })
    }
}

/// The state file of one stack, held under its exclusive lock for as long as this value lives.
pub struct LocalLease {
    path: PathBuf,
    /// Whether the state file was there when the lock was taken.
    existed: bool,
    /// The locked file: the kernel releases the lock when it is closed or the process ends.
    _lock: fs::File,
}

impl LocalLease {
    /// Writes the state atomically with mode 0600, keeping the previous version as `.bak`.
    pub fn save_now(&self, state: &State) -> Result<()> {
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

    /// Removes the state file and its backup.
    pub fn remove_now(&self) -> Result<()> {
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

    /// Where the state file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl StateLease for LocalLease {
    fn save<'a>(&'a self, state: &'a State) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { self.save_now(state) })
    }
    fn remove<'a>(&'a self) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { self.remove_now() })
    }
    fn retire<'a>(&'a self, pointer: &'a State) -> BoxFut<'a, Result<String>> {
        Box::pin(async move {
            let backup = self.path.with_extension(format!("json.migrated-{}", now_unix()));
            fs::copy(&self.path, &backup)
                .with_context(|| format!("keeping {} as {}", self.path.display(), backup.display()))?;
            fs::set_permissions(&backup, fs::Permissions::from_mode(0o600))?;
            self.save_now(pointer)?;
            Ok(backup.display().to_string())
        })
    }
    fn existed(&self) -> bool {
        self.existed
    }
    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// Reads and checks a state file; a missing file is an empty state.
fn load(path: &Path, stack: &str) -> Result<State> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::empty(stack)),
        Err(err) => return Err(err).with_context(|| format!("reading the state file {}", path.display())),
    };
    let location = format!("file {}", path.display());
    parse(&text, stack, &location, &format!("Restore it from {}.bak", path.display()))
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

#[cfg(test)]
mod tests {
    use super::super::{Kind, PendingOperation};
    use super::*;

    /// A state folder of the test's own, removed when the test ends.
    struct TempFolder(LocalFolder);

    impl std::ops::Deref for TempFolder {
        type Target = LocalFolder;
        fn deref(&self) -> &LocalFolder {
            &self.0
        }
    }

    impl Drop for TempFolder {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0.dir);
        }
    }

    fn temp_dir(name: &str) -> TempFolder {
        let dir = std::env::temp_dir().join(format!("provision-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempFolder(LocalFolder::new(dir))
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock_and_names_it() {
        let folder = temp_dir("lock");
        let (first, _) = folder.lock_now("s", "up").unwrap();
        let err = folder.lock_now("s", "down").err().expect("second open must fail").to_string();
        assert!(err.contains("locked by `provision up`"), "{err}");
        assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
        let err = folder.read_now("s").err().expect("a plan must not read mid-run").to_string();
        assert!(err.contains("locked by `provision up`"), "{err}");
        drop(first);
        assert!(folder.lock_now("s", "up").is_ok(), "closing the file releases the lock");
    }

    #[test]
    fn a_lock_file_left_behind_is_no_lock() {
        // A run killed with SIGKILL leaves its lock file, naming a process that may even be alive
        // again under the same PID: only the kernel's lock counts.
        let folder = temp_dir("stale");
        fs::create_dir_all(folder.dir()).unwrap();
        fs::write(
            folder.dir().join("s.lock"),
            format!(r#"{{"pid":{},"command":"up","started_unix":0}}"#, std::process::id()),
        )
        .unwrap();
        assert!(folder.lock_now("s", "up").is_ok());
    }

    #[test]
    fn reading_only_creates_nothing() {
        let folder = temp_dir("readonly");
        let (_reader, state) = folder.read_now("s").unwrap();
        assert!(state.is_empty());
        assert!(!folder.dir().exists(), "a read-only open must not create the state folder");
    }

    #[tokio::test]
    async fn saved_state_is_private_and_reloads() {
        let folder = temp_dir("save");
        let (store, mut state) = super::super::StateStore::open(&*folder, "s", "up").await.unwrap();
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
        store.save(&state).await.unwrap();
        let mode = fs::metadata(folder.state_path("s")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store.remove(&state).await.is_err(), "a state with a pending operation must not be removed");
        drop(store);
        let (_lease, loaded) = folder.lock_now("s", "up").unwrap();
        assert_eq!(loaded.pending["x"].props["name"], "s-x");
    }

    #[test]
    fn corrupt_or_foreign_state_is_refused_and_left_untouched() {
        let folder = temp_dir("corrupt");
        fs::create_dir_all(folder.dir()).unwrap();
        fs::write(folder.dir().join("s.json"), "{ not json").unwrap();
        let err = folder.lock_now("s", "up").err().unwrap().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        assert_eq!(fs::read_to_string(folder.dir().join("s.json")).unwrap(), "{ not json");
        assert!(folder.lock_now("s", "up").is_err(), "still refused; the refusal released the lock");

        fs::write(folder.dir().join("s.json"), r#"{"format_version": 99, "stack": "s"}"#).unwrap();
        let err = folder.lock_now("s", "up").err().unwrap().to_string();
        assert!(err.contains("format version 99"), "{err}");
    }
}
