//! The one path every kind's create follows: create, or adopt what is the stack's, and never take
//! what is not. Drivers supply the calls ([`Driver::send_create`], [`Driver::lookup`],
//! [`Driver::wait_deleted`], [`Driver::ready`], [`Driver::update`]); this module decides, the
//! same way for every kind:
//!
//! 1. A kind whose create call cannot be trusted to refuse a taken name
//!    ([`Driver::look_before_create`]) is looked up by name first.
//! 2. Otherwise the create is sent. An answer that the name is taken (or the resource busy) is
//!    read to know which: a resource found is one to adopt; none found means one of that name is
//!    still being deleted, which is waited out once before the create is sent again.
//! 3. A resource found under the name is adopted only when it carries the stack's mark, or the
//!    user named it with `--adopt`; otherwise the create fails and nothing is touched. One that
//!    is the stack's but that the cloud reports failed is deleted and made again.
//! 4. Once the resource is ready (read back, retried while a read does not show it yet: AWS's
//!    reads are eventually consistent), whatever differs from the declaration is applied through
//!    the driver's update, the mark included. A new and an adopted resource reach the same end.
//!
//! **Architecture Invariant:** this is the only code that decides whether a create adopts.

use crate::engine::driver::{Cx, Driver, Observed, Outputs, Recorded, Sent};
use crate::engine::mark::carries_mark;
use crate::engine::plan::changed_fields;
use anyhow::{bail, Result};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long a resource just created may stay invisible to reads before that is an error.
const READ_BACK_DEADLINE: Duration = Duration::from_secs(90);
/// The first and the longest pause between reads of a resource not visible yet.
const READ_BACK_PAUSES: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// Creates the resource `props` declares, or adopts the one under its name when it is the stack's
/// (or named with `--adopt`), and brings it to `props`. Returns its outputs.
pub async fn create_or_adopt<C: Sync, D: Driver<C> + ?Sized>(
    driver: &D,
    cx: &Cx<'_, C>,
    props: &Value,
) -> Result<Outputs> {
    let (label, name) = (driver.label(), name_of(props));
    let mut existing = if driver.look_before_create() { driver.lookup(cx, props).await? } else { None };
    let mut waited_for_deletion = false;
    let mut remade_failed = false;
    let known = loop {
        if let Some(found) = existing.take() {
            ensure_adoptable(cx, label, &name, props, &found)?;
            match &found.failed {
                None => break found.outputs,
                Some(why) if remade_failed => bail!("{label} {name} failed in the cloud again: {why}"),
                Some(why) => {
                    cx.progress(format!("{label} {name} failed in the cloud ({why}): deleting it to create it again"));
                    let recorded = Recorded { props: merged(props, &found.props), outputs: found.outputs.clone() };
                    driver.delete(cx, &recorded).await?;
                    remade_failed = true;
                }
            }
        }
        match driver.send_create(cx, props).await? {
            Sent::Created(outputs) => break outputs,
            Sent::Taken(answer) => {
                existing = driver.lookup(cx, props).await?;
                if existing.is_none() {
                    if waited_for_deletion {
                        return Err(answer);
                    }
                    cx.progress(format!("{label} {name} is still being deleted: waiting before creating it again"));
                    driver.wait_deleted(cx, props).await?;
                    waited_for_deletion = true;
                }
            }
        }
    };
    let found = read_back(driver, cx, props, &known).await?;
    converge(driver, cx, props, found).await
}

/// Goes on (to adopt) only when `found` carries the stack's mark declared in `props`, or the user
/// named the resource with `--adopt`; otherwise fails, saying how to take it over on purpose.
pub fn ensure_adoptable<C>(cx: &Cx<'_, C>, label: &str, name: &str, props: &Value, found: &Observed) -> Result<()> {
    if cx.may_adopt || carries_mark(props, &found.props) {
        cx.progress(format!("{label} {name} already exists with this stack's mark: adopting it"));
        return Ok(());
    }
    bail!(
        "{label} {name} already exists and does not carry this stack's mark: it was left untouched. To take it \
         over, run `provision up --adopt {}`",
        cx.id
    )
}

/// Waits until the resource is ready and a read shows it.
async fn read_back<C: Sync, D: Driver<C> + ?Sized>(
    driver: &D,
    cx: &Cx<'_, C>,
    props: &Value,
    known: &Outputs,
) -> Result<Observed> {
    let started = Instant::now();
    let (mut pause, longest) = READ_BACK_PAUSES;
    loop {
        if let Some(found) = driver.ready(cx, props, known).await? {
            return Ok(found);
        }
        if started.elapsed() >= READ_BACK_DEADLINE {
            bail!(
                "{} {} was created, but reads still do not show it after {} s: run `provision up` again to find and \
                 finish it",
                driver.label(),
                name_of(props),
                READ_BACK_DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(longest);
    }
}

/// Applies what differs between `found` and `props` through the driver's update. A difference
/// that only a replacement can make (a property in `replace_on`) is refused: the next plan,
/// which sees the resource, replaces it in the open.
async fn converge<C: Sync, D: Driver<C> + ?Sized>(
    driver: &D,
    cx: &Cx<'_, C>,
    props: &Value,
    found: Observed,
) -> Result<Outputs> {
    let fields = changed_fields(props, &found.props, None, &[], driver.ignore_in_diff());
    let immutable: Vec<&String> = fields.iter().filter(|f| driver.replace_on().contains(&f.as_str())).collect();
    if !immutable.is_empty() {
        bail!(
            "{} {} exists with this stack's mark but a different {}, which cannot change in place: run `provision \
             plan` to see the replacement, then `provision up`",
            driver.label(),
            name_of(props),
            immutable.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    if fields.is_empty() {
        return Ok(found.outputs);
    }
    let recorded = Recorded { props: found.props, outputs: found.outputs };
    driver.update(cx, props, &recorded, &fields).await
}

/// The properties to record for an adopted resource: the declared ones, each overlaid with what
/// the cloud reports for it (so a difference shows as a change to apply). What the cloud reports
/// as null (not set, not deployed) keeps the declared value, so drivers can still read the record.
/// What the cloud reports beyond the declaration (an emulator's default visibility timeout, the
/// default subnet group an instance was put in) is not recorded: the record says what was
/// applied, and a value the stack never asked for must not read as one it no longer declares
/// (that would plan an update, or the replacement of a database, for nothing).
pub(crate) fn merged(declared: &Value, observed: &Value) -> Value {
    let mut props = declared.clone();
    if let (Some(props), Some(observed)) = (props.as_object_mut(), observed.as_object()) {
        for (key, value) in observed.iter().filter(|(_, v)| !v.is_null()) {
            if let Some(slot) = props.get_mut(key) {
                *slot = value.clone();
            }
        }
    }
    props
}

/// The name a resource's properties give it, for messages.
pub(crate) fn name_of(props: &Value) -> String {
    ["name", "identifier", "function_name", "statement_id"]
        .iter()
        .find_map(|key| props.get(*key).and_then(Value::as_str))
        .unwrap_or("(unnamed)")
        .to_string()
}
