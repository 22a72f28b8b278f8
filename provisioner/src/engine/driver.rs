//! What the engine knows of resource kinds: the [`Driver`] trait each kind implements, the
//! [`Kind`] name the state records, and the [`Registry`] that maps one to the other.
//!
//! The engine is generic over the provider `C` a driver talks to (the AWS clients in `aws/`, an
//! in-memory fake in the engine's own tests); it never names a kind or a service.
//!
//! **Architecture Invariant:** nothing under `engine/` imports `aws/` or `cloud`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};

/// A boxed future, so drivers can sit behind one object-safe trait.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a resource exposes to others once it exists (ARNs, names, URLs).
pub type Outputs = Map<String, Value>;

/// A resource kind, by the name the state file records (`kinesis_stream`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(&'static str);

impl Kind {
    /// The kind named `name`.
    pub const fn new(name: &'static str) -> Self {
        Kind(name)
    }

    /// The name the state records.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The name users read in plans and errors (`Kinesis stream`), as its driver gives it.
    pub fn label(self) -> &'static str {
        labels().lock().expect("kind labels").get(self.0).copied().unwrap_or(self.0)
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Kind(intern(&name)))
    }
}

/// Kind names read from state files, kept once each for the process (a handful of kinds).
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<BTreeMap<String, &'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().expect("kind names");
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(name.to_string(), leaked);
    leaked
}

fn labels() -> &'static Mutex<BTreeMap<&'static str, &'static str>> {
    static LABELS: OnceLock<Mutex<BTreeMap<&'static str, &'static str>>> = OnceLock::new();
    LABELS.get_or_init(Default::default)
}

/// What a refresh found in the cloud: the declared properties as they are now (only those the
/// API reports, with `tags` for kinds that take tags), and the current outputs.
#[derive(Debug, Clone)]
pub struct Observed {
    pub props: Value,
    pub outputs: Outputs,
    /// When the resource was created (Unix seconds), where the API says: tells a resource an
    /// interrupted create made from one that was there before it.
    pub created_unix: Option<u64>,
    /// Set when the resource exists but the cloud reports it failed (a delivery stream in
    /// `CREATING_FAILED`), with the reason: no update can mend it, so the plan replaces it.
    pub failed: Option<String>,
}

impl Observed {
    /// Properties and outputs, with no creation time.
    pub fn new(props: Value, outputs: Outputs) -> Self {
        Self { props, outputs, created_unix: None, failed: None }
    }
}

/// What the state recorded for a resource after its last successful operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub props: Value,
    pub outputs: Outputs,
}

/// When resources of a kind are deleted, relative to the others; always after the resources
/// that depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// Before everything else, with what depends on them: what starts the stack's work (an
    /// event source mapping, an API), so that nothing new starts while the rest goes.
    Source,
    /// In dependency order only.
    InOrder,
    /// After everything else, with what they depend on: where the stack's functions write (their
    /// log groups), so that an invocation still in flight writes to a group that is deleted after
    /// it, not to one it would make again.
    Sink,
}

/// The context a driver call runs in: the provider's clients, and the resource's id.
pub struct Cx<'a, C> {
    pub cloud: &'a C,
    pub id: &'a str,
    /// The user asked to take over a same-named resource without this stack's mark (`--adopt`).
    pub may_adopt: bool,
}

impl<C> Cx<'_, C> {
    /// Reports progress on a long wait, on stderr, prefixed with the resource id.
    pub fn progress(&self, message: impl fmt::Display) {
        eprintln!("    {} … {message}", self.id);
    }
}

/// How much data a resource holds, as `down` says before it deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataCount {
    /// Exactly this many (`12 items`).
    Exactly(u64, &'static str),
    /// At least this many: counting on would take too long (`at least 10000 objects`).
    AtLeast(u64, &'static str),
    /// About this many (what a queue reports).
    About(u64, &'static str),
    /// Some, not counted (`the records it retains`).
    Uncounted(&'static str),
}

impl fmt::Display for DataCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Units are plural (`items`): one of them is singular.
        let unit = |n: &u64, what: &'static str| if *n == 1 { what.strip_suffix('s').unwrap_or(what) } else { what };
        match self {
            DataCount::Exactly(n, what) => write!(f, "{n} {}", unit(n, what)),
            DataCount::AtLeast(n, what) => write!(f, "at least {n} {}", unit(n, what)),
            DataCount::About(n, what) => write!(f, "about {n} {}", unit(n, what)),
            DataCount::Uncounted(what) => write!(f, "{what} (not counted)"),
        }
    }
}

/// What a create call answered.
pub enum Sent {
    /// The resource was made. Holds what the call returned of it (an id, an ARN), for
    /// [`Driver::ready`] to find exactly this one.
    Created(Outputs),
    /// The API said the name is taken, or that the resource is busy: on several APIs one answer
    /// means both (Kinesis and DynamoDB `ResourceInUseException`, Lambda
    /// `ResourceConflictException`). The shared create path reads the resource to know which.
    /// Holds the API's answer, reported if reading does not explain it.
    Taken(anyhow::Error),
}

/// Create, read, update and delete for one kind of resource, on provider `C`.
///
/// A driver supplies its calls; the engine decides. Creating goes through one shared path for
/// every kind ([`crate::engine::lifecycle::create_or_adopt`]): the driver sends the create
/// ([`Driver::send_create`]), finds by name ([`Driver::lookup`]), waits out a deletion in
/// progress ([`Driver::wait_deleted`]), waits until the resource is usable ([`Driver::ready`])
/// and applies what differs from the declaration ([`Driver::update`], which also writes the
/// mark); the path decides, the same way for every kind, whether a resource under the name is
/// adopted (only with the stack's mark, or on `--adopt`).
///
/// Contract: `read` and `lookup` finding nothing return `Ok(None)` (drift, not an error);
/// `lookup` finds the resource named in declared properties (`Ok(None)` while its name depends
/// on outputs not yet known), reporting its `provision:` tags; `update` gets the fields that
/// differ; `delete` of something already gone succeeds.
pub trait Driver<C: Sync>: Sync {
    /// The kind this driver manages.
    fn kind(&self) -> Kind;
    /// The name users read (`Kinesis stream`).
    fn label(&self) -> &'static str;
    /// The outputs other resources may refer to (`{"$ref": "<id>.<output>"}`), as its
    /// operations record them.
    fn outputs(&self) -> &'static [&'static str];
    /// The properties a declaration may give a resource of this kind (the mark excluded).
    fn properties(&self) -> &'static [&'static str];
    /// Checks a declared resource's properties (the mark excluded) against the kind's spec:
    /// says which property is unknown (and which there are), missing or of the wrong type.
    fn check_declared(&self, props: &Value) -> std::result::Result<(), String>;
    /// Property names whose change cannot be applied in place: the resource is replaced.
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// Properties left out of the comparison (inputs of the provisioner itself, like a zip path).
    fn ignore_in_diff(&self) -> &'static [&'static str] {
        &[]
    }
    /// The provider service this kind lives in (`kinesis`), so a run can check the endpoint
    /// offers it before changing anything. Empty for kinds outside the provider.
    fn service(&self) -> &'static str {
        ""
    }
    /// The service feature an in-place update of these fields needs beyond [`Driver::service`]
    /// (`kinesis:update-stream-mode`), so a run can refuse it before any change where the
    /// endpoint lacks it. Empty when the update needs nothing more.
    fn service_for_update(&self, _changed: &[String]) -> &'static str {
        ""
    }
    /// True for kinds that hold users' data (tables, buckets, databases, queues, streams): a
    /// plan that deletes or replaces one says that its data goes with it.
    fn holds_data(&self) -> bool {
        false
    }
    /// Properties that say how to reach the resource rather than what it is (the CA a database's
    /// certificate must chain to). Reads, journal lookups and deletes take them from the
    /// declaration, not the state: a corrected value works at once, where the recorded one may
    /// no longer reach the resource at all.
    fn reach_properties(&self) -> &'static [&'static str] {
        &[]
    }
    /// True for kinds that carry the stack's ownership mark as tags (the `tags` property).
    fn takes_tags(&self) -> bool {
        false
    }
    /// When this kind is deleted relative to the others ([`Teardown`]).
    fn teardown(&self) -> Teardown {
        Teardown::InOrder
    }
    /// True when an update of these fields may change the resource's outputs (a new stream ARN,
    /// a new port), so resources that refer to them are planned again once it is done.
    fn outputs_may_change(&self, _changed: &[String]) -> bool {
        false
    }
    /// Checks the declared properties against the provider's rules (its naming rules, the limits
    /// of a setting), so what it would refuse stops the run before anything is changed. Says what
    /// is wrong.
    fn check(&self, _props: &Value) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Finds the resource named in `props`, with its `provision:` tags (`None`: there is none,
    /// or its name depends on outputs not yet known).
    fn lookup<'a>(&'a self, _cx: &'a Cx<'a, C>, _props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async { Ok(None) })
    }
    /// Reads a recorded resource as it is now (`None` when it is gone). By default, looks it up
    /// with the properties last applied to it, which hold its name.
    fn read<'a>(&'a self, cx: &'a Cx<'a, C>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        self.lookup(cx, &recorded.props)
    }
    /// True when the create call cannot be trusted to refuse a taken name: it answers success
    /// for an existing resource (SQS CreateQueue, S3 CreateBucket in us-east-1), or names are
    /// not unique (REST APIs). The shared path then looks the name up before creating.
    fn look_before_create(&self) -> bool {
        false
    }
    /// Sends the call that creates the resource, with the stack's mark where the API takes tags
    /// at creation. Returns [`Sent::Taken`] when the API says the name is taken or the resource
    /// is busy; any other refusal is an error.
    fn send_create<'a>(&'a self, cx: &'a Cx<'a, C>, props: &'a Value) -> BoxFut<'a, Result<Sent>>;
    /// Waits until a resource of this name that is being deleted is gone (a create answered
    /// "taken" while a lookup finds nothing). By default there is nothing to wait for.
    fn wait_deleted<'a>(&'a self, _cx: &'a Cx<'a, C>, _props: &'a Value) -> BoxFut<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Waits until a resource just created or adopted accepts changes, and reads it (`None`
    /// while a read does not show it yet: eventual consistency, retried by the shared path).
    /// `known` holds what the create returned or the lookup found (an id). By default, looks it
    /// up by name.
    fn ready<'a>(
        &'a self,
        cx: &'a Cx<'a, C>,
        props: &'a Value,
        _known: &'a Outputs,
    ) -> BoxFut<'a, Result<Option<Observed>>> {
        self.lookup(cx, props)
    }
    /// Creates the resource, or adopts one under its name that carries the stack's mark (or the
    /// user named with `--adopt`), and brings it to `props`. Every kind goes through the one
    /// shared path; a kind overrides this only when its resource is not created by an API call.
    fn create<'a>(&'a self, cx: &'a Cx<'a, C>, props: &'a Value) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(crate::engine::lifecycle::create_or_adopt(self, cx, props))
    }
    /// Applies the `changed` fields of `props` to an existing resource (also the mark, `tags`)
    /// and returns its outputs.
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a, C>,
        props: &'a Value,
        recorded: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>>;
    /// Deletes the resource; one already gone is deleted.
    fn delete<'a>(&'a self, cx: &'a Cx<'a, C>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>>;

    /// How much data the resource holds (kinds that [`Driver::holds_data`]), for `down` to say
    /// before it deletes: counted where that is quick, bounded where it is not. `None`: the
    /// kind holds no data of its own.
    fn count_data<'a>(&'a self, _cx: &'a Cx<'a, C>, _recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async { Ok(None) })
    }

    /// After `down` deleted `recorded`: whether the stack's own work made it again under the same
    /// name since `since` (an invocation still in flight writing to its deleted log group, where
    /// the provider lets it), and if so deletes it again. Returns what it removed, for the output.
    /// By default nothing comes back.
    fn sweep_remade<'a>(
        &'a self,
        _cx: &'a Cx<'a, C>,
        _recorded: &'a Recorded,
        _since: std::time::SystemTime,
    ) -> BoxFut<'a, Result<Option<String>>> {
        Box::pin(async { Ok(None) })
    }
}

/// The kinds a provider offers, each with its driver.
pub struct Registry<C: Sync + 'static> {
    drivers: BTreeMap<Kind, &'static dyn Driver<C>>,
}

impl<C: Sync + 'static> Registry<C> {
    /// A registry of these drivers. Their labels become what [`Kind::label`] answers.
    pub fn new(drivers: &[&'static dyn Driver<C>]) -> Self {
        let mut labels = labels().lock().expect("kind labels");
        let drivers = drivers
            .iter()
            .map(|driver| {
                labels.insert(driver.kind().name(), driver.label());
                (driver.kind(), *driver)
            })
            .collect();
        Self { drivers }
    }

    /// The driver of `kind`, or an error for a kind this build does not know (a state file
    /// written by another release).
    pub fn driver(&self, kind: Kind) -> Result<&'static dyn Driver<C>> {
        self.drivers.get(&kind).copied().with_context(|| {
            format!(
                "the state names a resource kind `{}` this provision does not know: use the release that wrote it",
                kind.name()
            )
        })
    }

    /// Every kind the registry knows, in name order.
    pub fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.drivers.keys().copied()
    }

    /// When resources of `kind` are deleted relative to the others (an unknown kind: in order).
    pub fn teardown(&self, kind: Kind) -> Teardown {
        self.drivers.get(&kind).map_or(Teardown::InOrder, |d| d.teardown())
    }

    /// Whether resources of `kind` carry the ownership mark as tags.
    pub fn takes_tags(&self, kind: Kind) -> bool {
        self.drivers.get(&kind).is_some_and(|d| d.takes_tags())
    }
}
