//! A stack's state: what `provision` made, with the properties it applied and the outputs it got
//! back, and the operations in flight. Only the engine reads and writes it, through a
//! [`StateBackend`]: the local folder ([`local::LocalFolder`], `state/<stack>.json`, the default)
//! or a remote store shared by a team (S3, outside the engine: `crate::remote_state`).
//!
//! Every backend keeps the same promises:
//! - **one writer:** a run that changes the state holds the stack's lock for its whole length; a
//!   second run is refused, naming the holder; `plan` reads without the lock and writes nothing;
//! - **nothing lost:** the state is written after every completed operation, and operations in
//!   flight are journaled in `pending` before their API call, each with the resolved properties
//!   it was sent with, so the next command, whichever it is and wherever it runs, can find the
//!   resource by name and ownership mark however the run died (`engine::ownership` acts on it);
//! - **no stale writer:** a write that would overwrite a state someone else wrote since this run
//!   read it is refused (the remote store fences every write; the local folder's kernel lock
//!   cannot be broken).

pub mod local;

use crate::engine::driver::{BoxFut, Kind, Outputs, Recorded};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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
    /// Origins the stack's resources may still carry from before `state migrate` gave the state
    /// a new one: a resource recorded here that carries one of them is the stack's, and the next
    /// `up` re-marks it. Emptied once every resource carries the new origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_origins: Vec<String>,
    /// Set when this is no longer the stack's state but the pointer `state migrate` left behind:
    /// where the state went. A run against it is refused, naming the new place, so a forgotten
    /// `--state-url` (or a leftover one) never starts a second state of the same stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<Moved>,
    /// The resources `down --keep-data` left (those holding data, and what they need): still
    /// the stack's, taken up again by the next `up`, deleted by a plain `down`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

/// Where a migrated state went (the pointer `state migrate` leaves at the old place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// The new place, as its backend names it (`s3://bucket/team/demo.json`, or a local file on
    /// a named host).
    pub to: String,
    /// How to run against the new place (`--state-url s3://bucket/team`).
    pub use_with: String,
    /// When it moved (Unix seconds).
    pub at_unix: u64,
}

impl Moved {
    /// The refusal of a run against the old place `location`.
    pub fn refusal(&self, stack: &str, location: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "the state of stack `{stack}` is no longer at {location}: `state migrate` moved it to {} ({} \
             minutes ago), and only this pointer is left here. Nothing was changed. Use {}",
            self.to,
            now_unix().saturating_sub(self.at_unix) / 60,
            self.use_with
        )
    }
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
    /// Nothing recorded yet for `stack`.
    pub fn empty(stack: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            stack: stack.to_string(),
            resources: BTreeMap::new(),
            pending: BTreeMap::new(),
            origin: None,
            program: None,
            former_origins: Vec::new(),
            moved: None,
            kept: Vec::new(),
        }
    }

    /// The pointer left where a state was, once `state migrate` moved it.
    pub fn pointer(stack: &str, moved: Moved) -> Self {
        Self { moved: Some(moved), ..Self::empty(stack) }
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

/// Where a stack's state is kept and how its lock is taken.
pub trait StateBackend: Send + Sync {
    /// Where the state of `stack` is, for messages (`state/demo.json`, `s3://bucket/team/demo.json`).
    fn location(&self, stack: &str) -> String;
    /// Takes the stack's lock for `command` and loads its state (empty when there is none yet).
    /// Fails, changing nothing, when another run holds the lock or the state cannot be read.
    fn lock<'a>(&'a self, stack: &'a str, command: &'a str) -> BoxFut<'a, Result<(Box<dyn StateLease>, State)>>;
    /// Loads the state without taking the lock or writing anything (`plan`, `outputs`); what is
    /// returned beside it is held while the caller reads.
    fn read<'a>(&'a self, stack: &'a str) -> BoxFut<'a, Result<(StateReader, State)>>;
}

/// A stack's state held under its lock: every write goes through it, and the lock is released
/// when it is dropped.
pub trait StateLease: Send + Sync {
    /// Writes the state, replacing what this run last read or wrote.
    fn save<'a>(&'a self, state: &'a State) -> BoxFut<'a, Result<()>>;
    /// Removes the state (the stack is gone).
    fn remove<'a>(&'a self) -> BoxFut<'a, Result<()>>;
    /// Keeps a copy of the state, unchanged since this run read or wrote it, beside it
    /// (`<state>.migrated-<unix time>`), and writes `pointer` in its place, so the stack no
    /// longer has a state here, only the word where it went; returns where the copy is.
    /// (`state migrate` moves a state away with it.)
    fn retire<'a>(&'a self, pointer: &'a State) -> BoxFut<'a, Result<String>>;
    /// Whether a state was here when the lock was taken (even one that records nothing).
    fn existed(&self) -> bool;
    /// Where the state is, for messages.
    fn location(&self) -> String;
}

/// A stack's state opened for reading only: whatever the backend holds while it is read (the
/// local folder's shared lock, so a running `up` is not read half-way).
pub struct StateReader {
    _guard: Option<Box<dyn Send + Sync>>,
}

impl StateReader {
    /// A reader holding `guard` while it lives.
    pub fn holding(guard: Option<Box<dyn Send + Sync>>) -> Self {
        Self { _guard: guard }
    }
}

/// The state of one stack, held under its lock for as long as this value lives.
pub struct StateStore {
    lease: Box<dyn StateLease>,
}

impl StateStore {
    /// Takes the stack's lock in `backend` and loads its state. Refused where the state moved
    /// away (a pointer left by `state migrate`), naming where it is now.
    pub async fn open(backend: &dyn StateBackend, stack: &str, command: &str) -> Result<(Self, State)> {
        let (store, state) = Self::open_even_moved(backend, stack, command).await?;
        match &state.moved {
            Some(moved) => Err(moved.refusal(stack, &backend.location(stack))),
            None => Ok((store, state)),
        }
    }

    /// Takes the stack's lock in `backend` and loads what is there, a moved state's pointer
    /// too (for `state migrate`, which may move a state back to where it came from).
    pub async fn open_even_moved(backend: &dyn StateBackend, stack: &str, command: &str) -> Result<(Self, State)> {
        let (lease, state) = backend.lock(stack, command).await?;
        Ok((Self { lease }, state))
    }

    /// Loads the state without taking the lock or writing anything. Refused where the state
    /// moved away, naming where it is now.
    pub async fn open_read_only(backend: &dyn StateBackend, stack: &str) -> Result<(StateReader, State)> {
        let (reader, state) = backend.read(stack).await?;
        match &state.moved {
            Some(moved) => Err(moved.refusal(stack, &backend.location(stack))),
            None => Ok((reader, state)),
        }
    }

    /// Writes the state.
    pub async fn save(&self, state: &State) -> Result<()> {
        self.lease.save(state).await
    }

    /// Removes the state. Refused while it still records something that may exist: the record
    /// is the only way to find it again.
    pub async fn remove(&self, state: &State) -> Result<()> {
        if !state.is_empty() {
            bail!(
                "the state of stack `{}` still records {} resource(s) and {} interrupted operation(s): it is kept",
                state.stack,
                state.resources.len(),
                state.pending.len()
            );
        }
        self.lease.remove().await
    }

    /// Keeps a copy of the state beside it and leaves `pointer` in its place; returns where the
    /// copy is.
    pub async fn retire(&self, pointer: &State) -> Result<String> {
        self.lease.retire(pointer).await
    }

    /// Whether a state was here when the lock was taken.
    pub fn existed(&self) -> bool {
        self.lease.existed()
    }

    /// Where the state is.
    pub fn location(&self) -> String {
        self.lease.location()
    }
}

/// Records properties applied outside a plan (a hot-swap's new code hash) on recorded
/// resources, under the stack's lock, so the next plan sees them as applied. Waits up to `wait`
/// for another run to release the lock. Resources not recorded are skipped.
pub async fn record_applied(
    backend: &dyn StateBackend,
    stack: &str,
    command: &str,
    updates: &[(String, serde_json::Map<String, Value>)],
    wait: std::time::Duration,
) -> Result<()> {
    let started = std::time::Instant::now();
    let (store, mut state) = loop {
        match StateStore::open(backend, stack, command).await {
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
    store.save(&state).await
}

/// Reads and checks a state document found at `location`: valid JSON, this format version, this
/// stack. `restore` says how to get a good copy back (a `.bak` file, an earlier object version).
pub fn parse(text: &str, stack: &str, location: &str, restore: &str) -> Result<State> {
    let raw: Value = serde_json::from_str(text).map_err(|err| {
        anyhow::anyhow!(
            "the state {location} is not valid JSON ({err}). Nothing was changed. {restore}, or move it away and \
             run `provision up`: it adopts the resources that carry this stack's mark"
        )
    })?;
    let version = raw.get("format_version").and_then(Value::as_u64);
    if version != Some(FORMAT_VERSION as u64) {
        bail!(
            "the state {location} has format version {}, this provision reads version {FORMAT_VERSION}. Nothing was \
             changed. Use the provision release that wrote it, or move it away and run `provision up`: it adopts the \
             resources that carry this stack's mark",
            version.map_or("(none)".to_string(), |v| v.to_string())
        );
    }
    let state: State = serde_json::from_value(raw).map_err(|err| {
        anyhow::anyhow!(
            "the state {location} does not have the expected shape ({err}). Nothing was changed. {restore}, or move \
             it away and run `provision up`: it adopts the resources that carry this stack's mark"
        )
    })?;
    if state.stack != stack {
        bail!("the state {location} belongs to stack `{}`, not `{stack}`. Nothing was changed", state.stack);
    }
    Ok(state)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
