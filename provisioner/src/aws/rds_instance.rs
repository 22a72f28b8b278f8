//! RDS PostgreSQL instance. The master password is managed by RDS in Secrets Manager
//! (`ManageMasterUserPassword`), so no secret passes through provision or its state.
//! Creation takes minutes on AWS: progress is printed while waiting, and an interrupted wait
//! resumes on the next `up` (create adopts the instance by identifier).

use crate::aws::retry::poll_until;
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, DataCount, Driver, Kind, Observed, Outputs, Recorded,
    Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_rds::types::Tag;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The kind as the state records it.
pub use declaration::kinds::rds_instance::*;

pub const KIND: Kind = Kind::new(<RdsInstanceSpec as declaration::Spec>::KIND);

/// How long an instance may take to become available (AWS: typically 5-15 minutes).
const WAIT: Duration = Duration::from_secs(40 * 60);

pub struct RdsInstance;

impl Driver<Cloud> for RdsInstance {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "address", "port", "secret_arn"]
    }
    crate::declared_as!(RdsInstanceSpec);
    fn label(&self) -> &'static str {
        "RDS instance"
    }
    fn holds_data(&self) -> bool {
        true
    }
    fn service(&self) -> &'static str {
        "rds"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["identifier", "db_name", "master_username", "subnet_group"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("identifier").and_then(Value::as_str).map_or(Ok(()), super::names::rds_instance)
    }
    /// A new port is an output the functions' environment and the schema refer to.
    fn outputs_may_change(&self, changed: &[String]) -> bool {
        changed.iter().any(|f| f == "port")
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "identifier", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: RdsInstanceSpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .rds
                .create_db_instance()
                .db_instance_identifier(&spec.identifier)
                .engine("postgres")
                .db_instance_class(&spec.instance_class)
                .allocated_storage(spec.allocated_storage_gb)
                .db_name(&spec.db_name)
                .master_username(&spec.master_username)
                .manage_master_user_password(true)
                .port(spec.port)
                .publicly_accessible(spec.publicly_accessible)
                .storage_encrypted(true)
                .deletion_protection(spec.deletion_protection)
                .set_db_subnet_group_name(spec.subnet_group.as_ref().map(|g| g.get().clone()))
                .set_vpc_security_group_ids(
                    (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
                )
                .set_tags(Some(rds_tags(props)))
                .send()
                .await;
            let what = format!("creating DB instance {}", spec.identifier);
            errors::sent(answer, errors::is_already_exists, what, |_| Outputs::new())
        })
    }
    /// Waits (minutes on AWS, with progress) until the instance is available, then reads it.
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value, _: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let identifier = name_prop(props, "identifier", KIND)?;
            wait_available(cx, identifier).await?;
            find(cx, identifier).await
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: RdsInstanceSpec = typed(props, KIND)?;
            // An instance adopted mid-create (a run interrupted during the wait) accepts changes
            // only once it is available.
            wait_available(cx, &spec.identifier).await?;
            if changed.iter().any(|f| f == "tags") {
                let found = find(cx, &spec.identifier).await?.context("the DB instance vanished during its update")?;
                tag_resource(cx, &found, props).await?;
                if changed.len() == 1 {
                    return Ok(found.outputs);
                }
            }
            cx.cloud
                .rds
                .modify_db_instance()
                .db_instance_identifier(&spec.identifier)
                .db_instance_class(&spec.instance_class)
                .allocated_storage(spec.allocated_storage_gb)
                .db_port_number(spec.port)
                .publicly_accessible(spec.publicly_accessible)
                .deletion_protection(spec.deletion_protection)
                .set_vpc_security_group_ids(
                    (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
                )
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| errors::context(format!("modifying DB instance {}", spec.identifier), e))?;
            wait_available(cx, &spec.identifier).await
        })
    }
    /// The instance's databases; the rows of the stack's table are counted with its schema.
    fn count_data<'a>(&'a self, _cx: &'a Cx<'a>, _recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async { Ok(Some(DataCount::Uncounted("every database it serves"))) })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let spec: RdsInstanceSpec = typed(&recorded.props, KIND)?;
            delete_instance(cx, &spec.identifier).await
        })
    }
}

/// What a delete does with an instance in a given state.
#[derive(Debug, PartialEq, Eq)]
enum OnDelete {
    /// Gone, or being deleted: wait until it is gone.
    WaitGone,
    /// DeleteDBInstance is accepted in this state.
    Delete,
    /// Busy (creating, modifying, backing up, starting, stopping...): wait for a state that
    /// accepts the delete.
    WaitSettled,
}

/// RDS accepts DeleteDBInstance only in some states; every other state is waited out.
fn on_delete(status: &str) -> OnDelete {
    match status {
        "deleting" => OnDelete::WaitGone,
        "available"
        | "stopped"
        | "failed"
        | "storage-full"
        | "incompatible-parameters"
        | "incompatible-network"
        | "incompatible-restore"
        | "incompatible-option-group"
        | "inaccessible-encryption-credentials"
        | "restore-error"
        | "insufficient-capacity" => OnDelete::Delete,
        _ => OnDelete::WaitSettled,
    }
}

/// The final snapshot a delete takes on AWS (`<identifier>-final-<UTC date>-<time>`), unless
/// told not to (`down --no-final-snapshot`); none on an emulator, whose RDS holds no data.
fn final_snapshot(cx: &Cx<'_>, identifier: &str) -> Option<String> {
    if cx.cloud.target.is_local() || cx.cloud.skip_final_snapshot {
        return None;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Some(final_snapshot_name(identifier, now.as_secs()))
}

/// `<identifier>-final-YYYYMMDD-HHMMSS` (UTC) for a delete at `unix` seconds: letters, digits
/// and single hyphens, as RDS requires of a snapshot identifier.
fn final_snapshot_name(identifier: &str, unix: u64) -> String {
    let (days, seconds) = (unix / 86_400, unix % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    format!("{identifier}-final-{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}")
}

/// Deletes the instance whatever state it is in: waits out busy states (with progress), deletes
/// when RDS accepts it, and waits until it is gone.
async fn delete_instance(cx: &Cx<'_>, identifier: &str) -> Result<()> {
    let reporter = StatusReporter::new();
    poll_until(&format!("DB instance {identifier} to be deleted"), Duration::from_secs(5), WAIT, || async {
        let Some(current) = status(cx, identifier).await? else {
            return Ok(Some(())); // gone
        };
        reporter.report(cx, &current);
        if on_delete(&current) != OnDelete::Delete {
            return Ok(None);
        }
        let snapshot = final_snapshot(cx, identifier);
        if let Some(name) = &snapshot {
            cx.progress(format_args!("final snapshot {name} (kept after the instance is gone)"));
        }
        let deleted = cx
            .cloud
            .rds
            .delete_db_instance()
            .db_instance_identifier(identifier)
            .skip_final_snapshot(snapshot.is_none())
            .set_final_db_snapshot_identifier(snapshot)
            .delete_automated_backups(true)
            .send()
            .await;
        match deleted {
            // Emulators delete at once: look again before the poll's pause.
            Ok(_) => Ok(status(cx, identifier).await?.is_none().then_some(())),
            Err(e) if errors::is_not_found(&e) => Ok(Some(())),
            // Its state moved on between the read and the call: read again.
            Err(e) if errors::code(&e) == Some("InvalidDBInstanceState") => Ok(None),
            Err(e) => Err(errors::context(format!("deleting DB instance {identifier}"), e)),
        }
    })
    .await
}

/// The stack's mark as RDS tags.
pub fn rds_tags(props: &Value) -> Vec<Tag> {
    declared_tags(props).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Writes the stack's mark on an RDS resource (instance or subnet group) whose outputs hold its ARN.
pub async fn tag_resource(cx: &Cx<'_>, found: &Observed, props: &Value) -> Result<()> {
    let arn = found.outputs.get("arn").and_then(Value::as_str).context("the RDS resource has no ARN")?;
    cx.cloud
        .rds
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(rds_tags(props)))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging {arn}"), e))?;
    Ok(())
}

/// Waits until the instance is `available`, printing its status every 30 s, then reads it.
async fn wait_available(cx: &Cx<'_>, identifier: &str) -> Result<Outputs> {
    let reporter = StatusReporter::new();
    poll_until(&format!("DB instance {identifier} to become available"), Duration::from_secs(5), WAIT, || async {
        let status = status(cx, identifier).await?.with_context(|| format!("DB instance {identifier} disappeared while being created"))?;
        if status == "available" {
            return Ok(Some(()));
        }
        if matches!(status.as_str(), "failed" | "incompatible-parameters" | "incompatible-network" | "storage-full") {
            anyhow::bail!("DB instance {identifier} is in state `{status}`: see the RDS console, fix the cause, then run `provision down` and `up`");
        }
        reporter.report(cx, &status);
        Ok(None)
    })
    .await?;
    reporter.done(cx, "available");
    find(cx, identifier).await?.map(|o| o.outputs).context("the DB instance vanished after becoming available")
}

/// Says what a long wait is waiting for: on every status change and every 30 s otherwise.
struct StatusReporter {
    started: Instant,
    last: std::sync::Mutex<(String, Instant)>,
}

impl StatusReporter {
    fn new() -> Self {
        Self { started: Instant::now(), last: std::sync::Mutex::new((String::new(), Instant::now())) }
    }

    fn report(&self, cx: &Cx<'_>, status: &str) {
        let mut last = self.last.lock().expect("reporter lock");
        if last.0 != status || last.1.elapsed() >= Duration::from_secs(30) {
            cx.progress(format!(
                "status `{status}` after {} s (RDS takes minutes; Ctrl-C is safe: the next `up` resumes waiting)",
                self.started.elapsed().as_secs()
            ));
            *last = (status.to_string(), Instant::now());
        }
    }

    fn done(&self, cx: &Cx<'_>, status: &str) {
        if self.started.elapsed() > Duration::from_secs(10) {
            cx.progress(format!("{status} after {} s", self.started.elapsed().as_secs()));
        }
    }
}

async fn status(cx: &Cx<'_>, identifier: &str) -> Result<Option<String>> {
    let answer = cx.cloud.rds.describe_db_instances().db_instance_identifier(identifier).send().await;
    let found = errors::found(answer, format!("reading DB instance {identifier}"))?;
    Ok(found.and_then(|out| out.db_instances().first().and_then(|i| i.db_instance_status.clone())))
}

async fn find(cx: &Cx<'_>, identifier: &str) -> Result<Option<Observed>> {
    let answer = cx.cloud.rds.describe_db_instances().db_instance_identifier(identifier).send().await;
    let Some(out) = errors::found(answer, format!("reading DB instance {identifier}"))? else { return Ok(None) };
    let Some(instance) = out.db_instances().first() else {
        return Ok(None);
    };
    if instance.db_instance_status.as_deref() == Some("deleting") {
        return Ok(None);
    }
    let endpoint = instance.endpoint.as_ref();
    let port = endpoint.and_then(|e| e.port).or(instance.db_instance_port.filter(|p| *p != 0));
    let secret = instance.master_user_secret.as_ref().and_then(|s| s.secret_arn.clone()).unwrap_or_default();
    let mut security_group_ids: Vec<String> =
        instance.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id.clone()).collect();
    security_group_ids.sort();
    let subnet_group = instance.db_subnet_group.as_ref().and_then(|g| g.db_subnet_group_name.clone());
    Ok(Some(Observed {
        props: json!({
            "subnet_group": subnet_group,
            "security_group_ids": security_group_ids,
            "identifier": identifier,
            "instance_class": instance.db_instance_class,
            "allocated_storage_gb": instance.allocated_storage,
            "db_name": instance.db_name,
            "master_username": instance.master_username,
            "port": port,
            "publicly_accessible": instance.publicly_accessible,
            "deletion_protection": instance.deletion_protection.unwrap_or(false),
            "tags": marked_tags(instance.tag_list().iter().filter_map(|t| Some((t.key.as_ref()?, t.value.as_ref()?)))),
        }),
        outputs: outputs([
            ("arn", json!(instance.db_instance_arn)),
            ("address", json!(endpoint.and_then(|e| e.address.clone()).unwrap_or_default())),
            ("port", json!(port.map(|p| p.to_string()).unwrap_or_default())),
            ("secret_arn", json!(secret)),
        ]),
        created_unix: None,
        failed: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_snapshot_is_named_after_the_instance_and_the_utc_time() {
        assert_eq!(final_snapshot_name("demo-db", 0), "demo-db-final-19700101-000000");
        // 2026-12-06 12:34:56 UTC, and the last second of a leap day.
        assert_eq!(final_snapshot_name("demo-db", 1_796_560_496), "demo-db-final-20261206-123456");
        assert_eq!(final_snapshot_name("x-db", 1_709_251_199), "x-db-final-20240229-235959");
    }

    #[test]
    fn each_instance_state_has_a_delete_action() {
        assert_eq!(on_delete("deleting"), OnDelete::WaitGone);
        assert_eq!(on_delete("available"), OnDelete::Delete);
        assert_eq!(on_delete("stopped"), OnDelete::Delete);
        for busy in ["creating", "modifying", "backing-up", "starting", "stopping", "rebooting", "upgrading"] {
            assert_eq!(on_delete(busy), OnDelete::WaitSettled, "{busy}");
        }
    }
}
