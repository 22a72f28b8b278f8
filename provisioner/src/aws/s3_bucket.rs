//! S3 bucket: the archive a Firehose delivery stream writes records to. Public access is blocked
//! (all four settings), objects are encrypted by default (SSE-S3), and an optional lifecycle rule
//! expires them; all three are read back, so turning one off outside provision is drift that `up`
//! repairs. Bucket names are global across every AWS account: [`bucket_name`] derives a unique one
//! from the stack, account and region. `delete` empties the bucket (every object version and
//! delete marker) before deleting it.

use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, DataCount, Driver, Kind, Observed, Outputs, Recorded,
    Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// The kind as the state records it.
pub use declaration::kinds::s3_bucket::*;

pub const KIND: Kind = Kind::new(<S3BucketSpec as declaration::Spec>::KIND);

/// The id of the one lifecycle rule this driver writes and reads.
const EXPIRY_RULE_ID: &str = "provision-expiry";
/// The most keys one DeleteObjects call takes.
const DELETE_BATCH: usize = 1000;
/// The region where CreateBucket takes no LocationConstraint (S3 refuses `us-east-1` as one).
const DEFAULT_REGION: &str = "us-east-1";
/// How many times `delete` empties the bucket again when objects arrived meanwhile.
const DELETE_ATTEMPTS: u32 = 5;
/// At most this many listings count a bucket's objects before `down`: beyond, "at least".
const COUNT_PAGES: usize = 10;

/// The driver of [`KIND`].
pub struct S3Bucket;

impl Driver<Cloud> for S3Bucket {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name"]
    }
    crate::declared_as!(S3BucketSpec);
    fn label(&self) -> &'static str {
        "S3 bucket"
    }
    fn holds_data(&self) -> bool {
        true
    }
    fn service(&self) -> &'static str {
        "s3"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::s3_bucket)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    /// In us-east-1 CreateBucket answers 200 for a bucket this account already owns: the name is
    /// looked up first.
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: S3BucketSpec = typed(props, KIND)?;
            check(&spec)?;
            create_bucket(cx, &spec, props).await
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
            let spec: S3BucketSpec = typed(props, KIND)?;
            check(&spec)?;
            apply(cx, &spec, props, changed).await
        })
    }
    /// The objects, counted by at most [`COUNT_PAGES`] listings of 1,000.
    fn count_data<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<DataCount>>> {
        Box::pin(async move {
            let spec: S3BucketSpec = typed(&recorded.props, KIND)?;
            let mut counted = 0u64;
            let mut token = None;
            for _ in 0..COUNT_PAGES {
                let page = cx
                    .cloud
                    .s3
                    .list_objects_v2()
                    .bucket(&spec.name)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| errors::context(format!("counting the objects of bucket {}", spec.name), e))?;
                counted += page.contents().len() as u64;
                token = page.next_continuation_token().map(str::to_string);
                if token.is_none() {
                    return Ok(Some(DataCount::Exactly(counted, "objects")));
                }
            }
            Ok(Some(DataCount::AtLeast(counted, "objects")))
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { delete_bucket(cx, name_prop(&recorded.props, "name", KIND)?).await })
    }
}

/// Empties bucket `name`: deletes every object version and delete marker (ListObjectVersions),
/// then any object still listed (ListObjectsV2, for endpoints that list unversioned objects only
/// there), in DeleteObjects batches of up to 1000. Returns how many were removed; a bucket that
/// does not exist is empty.
pub async fn empty_bucket(cx: &Cx<'_>, name: &str) -> Result<usize> {
    let removed = delete_versions(cx, name).await? + delete_current(cx, name).await?;
    cx.progress(format!("emptied bucket {name}: {removed} objects removed"));
    Ok(removed)
}

fn check(spec: &S3BucketSpec) -> Result<()> {
    if !spec.public_access_blocked || !spec.encrypted {
        anyhow::bail!(
            "S3 bucket {}: this driver keeps every bucket private and encrypted: declare public_access_blocked \
             and encrypted true (S3BucketSpec::new does)",
            spec.name
        );
    }
    if spec.expire_after_days.is_some_and(|days| days < 1) {
        anyhow::bail!("S3 bucket {}: expire_after_days must be at least 1, or None to keep objects", spec.name);
    }
    Ok(())
}

/// Sends CreateBucket. A name this account already owns (a concurrent create) is
/// [`Sent::Taken`]; a name another account owns is an error that says so.
async fn create_bucket(cx: &Cx<'_>, spec: &S3BucketSpec, props: &Value) -> Result<Sent> {
    let answer = cx
        .cloud
        .s3
        .create_bucket()
        .bucket(&spec.name)
        .set_create_bucket_configuration(bucket_configuration(&cx.cloud.region, props)?)
        .send()
        .await;
    if answer.as_ref().is_err_and(errors::is_taken_by_another_account) {
        anyhow::bail!(
            "creating S3 bucket {}: the name is taken by another AWS account (bucket names are global across all \
             accounts): choose another name",
            spec.name
        );
    }
    errors::sent(answer, errors::is_already_exists, format!("creating S3 bucket {}", spec.name), |_| Outputs::new())
}

/// CreateBucket's configuration: the mark as tags and, outside us-east-1, the region; `None`
/// when there is nothing to send.
pub(crate) fn bucket_configuration(region: &str, props: &Value) -> Result<Option<CreateBucketConfiguration>> {
    let tags = s3_tags(&declared_tags(props))?;
    let constraint = (region != DEFAULT_REGION).then(|| BucketLocationConstraint::from(region));
    if tags.is_empty() && constraint.is_none() {
        return Ok(None);
    }
    Ok(Some(
        CreateBucketConfiguration::builder()
            .set_location_constraint(constraint)
            .set_tags((!tags.is_empty()).then_some(tags))
            .build(),
    ))
}

/// Applies the settings named in `fields` (the changed ones, or all of them on create) and
/// returns the bucket's outputs.
async fn apply(cx: &Cx<'_>, spec: &S3BucketSpec, props: &Value, fields: &[String]) -> Result<Outputs> {
    let wants = |field: &str| fields.iter().any(|f| f == field);
    if wants("tags") {
        tag(cx, &spec.name, props).await?;
    }
    if wants("public_access_blocked") {
        block_public_access(cx, &spec.name).await?;
    }
    if wants("encrypted") {
        encrypt(cx, &spec.name).await?;
    }
    if wants("expire_after_days") {
        set_expiry(cx, &spec.name, spec.expire_after_days).await?;
    }
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the bucket vanished during its update")
}

/// Adds the stack's mark to the bucket's tags. PutBucketTagging replaces the whole set, so the
/// tags already there (users' own) are kept.
async fn tag(cx: &Cx<'_>, name: &str, props: &Value) -> Result<()> {
    let mut tags = bucket_tags(cx, name).await?.with_context(|| format!("S3 bucket {name} vanished before tagging"))?;
    tags.extend(declared_tags(props));
    if tags.is_empty() {
        return Ok(());
    }
    let tagging = Tagging::builder().set_tag_set(Some(s3_tags(&tags)?)).build()?;
    cx.cloud
        .s3
        .put_bucket_tagging()
        .bucket(name)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging S3 bucket {name}"), e))?;
    Ok(())
}

fn s3_tags(tags: &HashMap<String, String>) -> Result<Vec<Tag>> {
    tags.iter().map(|(k, v)| Ok(Tag::builder().key(k).value(v).build()?)).collect()
}

/// Turns on all four Block Public Access settings.
pub(crate) async fn block_public_access(cx: &Cx<'_>, name: &str) -> Result<()> {
    let config = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    cx.cloud
        .s3
        .put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(config)
        .send()
        .await
        .map_err(|e| errors::context(format!("blocking public access to S3 bucket {name}"), e))?;
    Ok(())
}

/// Sets SSE-S3 (AES256) as the bucket's default encryption.
pub(crate) async fn encrypt(cx: &Cx<'_>, name: &str) -> Result<()> {
    let by_default = ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build()?;
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
    let config = ServerSideEncryptionConfiguration::builder().rules(rule).build()?;
    cx.cloud
        .s3
        .put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| errors::context(format!("setting the default encryption of S3 bucket {name}"), e))?;
    Ok(())
}

/// Writes the expiry rule (the bucket's only lifecycle rule), or removes the lifecycle
/// configuration when `days` is `None`.
async fn set_expiry(cx: &Cx<'_>, name: &str, days: Option<i32>) -> Result<()> {
    let s3 = &cx.cloud.s3;
    let Some(days) = days else {
        return match s3.delete_bucket_lifecycle().bucket(name).send().await {
            Err(e) if !errors::is_unset(&e) => {
                Err(errors::context(format!("removing the lifecycle configuration of S3 bucket {name}"), e))
            }
            _ => Ok(()),
        };
    };
    s3.put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(expiry_configuration(days)?)
        .send()
        .await
        .map_err(|e| errors::context(format!("setting the expiry of S3 bucket {name} to {days} days"), e))?;
    Ok(())
}

fn expiry_configuration(days: i32) -> Result<BucketLifecycleConfiguration> {
    let rule = LifecycleRule::builder()
        .id(EXPIRY_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .expiration(LifecycleExpiration::builder().days(days).build())
        .build()?;
    Ok(BucketLifecycleConfiguration::builder().rules(rule).build()?)
}

/// Empties the bucket and deletes it; objects written meanwhile (a delivery stream still
/// flushing) are removed on the next attempt. A bucket already gone is deleted.
async fn delete_bucket(cx: &Cx<'_>, name: &str) -> Result<()> {
    for attempt in 1..=DELETE_ATTEMPTS {
        empty_bucket(cx, name).await?;
        match cx.cloud.s3.delete_bucket().bucket(name).send().await {
            Ok(_) => return Ok(()),
            Err(e) if errors::is_not_found(&e) => return Ok(()),
            Err(e) if errors::is_not_empty(&e) && attempt < DELETE_ATTEMPTS => {
                cx.progress(format!("bucket {name} got new objects while being emptied: emptying it again"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(errors::context(format!("deleting S3 bucket {name}"), e)),
        }
    }
    Ok(())
}

/// Deletes every object version and delete marker, page by page.
async fn delete_versions(cx: &Cx<'_>, name: &str) -> Result<usize> {
    let (mut removed, mut key_marker, mut version_marker) = (0, None, None);
    loop {
        let listed = cx
            .cloud
            .s3
            .list_object_versions()
            .bucket(name)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await;
        let page = match listed {
            Ok(page) => page,
            Err(e) if errors::is_not_found(&e) => return Ok(removed),
            Err(e) => return Err(errors::context(format!("listing the object versions of S3 bucket {name}"), e)),
        };
        let versions = page.versions().iter().map(|v| (&v.key, &v.version_id));
        let markers = page.delete_markers().iter().map(|m| (&m.key, &m.version_id));
        let objects = versions
            .chain(markers)
            .filter_map(|(key, version)| Some(identifier(key.as_ref()?, version.clone())))
            .collect::<Result<Vec<_>>>()?;
        removed += delete_objects(cx, name, objects).await?;
        if page.is_truncated != Some(true) || page.next_key_marker.is_none() {
            return Ok(removed);
        }
        (key_marker, version_marker) = (page.next_key_marker, page.next_version_id_marker);
    }
}

/// Deletes every object ListObjectsV2 still lists, page by page.
async fn delete_current(cx: &Cx<'_>, name: &str) -> Result<usize> {
    let (mut removed, mut token) = (0, None);
    loop {
        let page = match cx.cloud.s3.list_objects_v2().bucket(name).set_continuation_token(token).send().await {
            Ok(page) => page,
            Err(e) if errors::is_not_found(&e) => return Ok(removed),
            Err(e) => return Err(errors::context(format!("listing the objects of S3 bucket {name}"), e)),
        };
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| Some(identifier(o.key.as_ref()?, None)))
            .collect::<Result<Vec<_>>>()?;
        removed += delete_objects(cx, name, objects).await?;
        let truncated = page.is_truncated == Some(true);
        match page.next_continuation_token {
            Some(next) if truncated => token = Some(next),
            _ => return Ok(removed),
        }
    }
}

fn identifier(key: &str, version_id: Option<String>) -> Result<ObjectIdentifier> {
    Ok(ObjectIdentifier::builder().key(key).set_version_id(version_id).build()?)
}

/// Deletes `objects` in batches of DeleteObjects' limit; returns how many were deleted.
async fn delete_objects(cx: &Cx<'_>, name: &str, objects: Vec<ObjectIdentifier>) -> Result<usize> {
    for batch in objects.chunks(DELETE_BATCH) {
        let delete = Delete::builder().set_objects(Some(batch.to_vec())).quiet(true).build()?;
        let out = cx
            .cloud
            .s3
            .delete_objects()
            .bucket(name)
            .delete(delete)
            .send()
            .await
            .map_err(|e| errors::context(format!("deleting objects of S3 bucket {name}"), e))?;
        if let Some(failed) = out.errors().first() {
            anyhow::bail!(
                "deleting objects of S3 bucket {name}: {} could not be deleted, the first `{}`: {} {}",
                out.errors().len(),
                failed.key.as_deref().unwrap_or("?"),
                failed.code.as_deref().unwrap_or(""),
                failed.message.as_deref().unwrap_or("")
            );
        }
    }
    Ok(objects.len())
}

/// The bucket's tags (all of them, users' too); `None` when the bucket is gone.
async fn bucket_tags(cx: &Cx<'_>, name: &str) -> Result<Option<HashMap<String, String>>> {
    match cx.cloud.s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(Some(out.tag_set.into_iter().map(|t| (t.key, t.value)).collect())),
        Err(e) if errors::is_unset(&e) => Ok(Some(HashMap::new())),
        Err(e) if errors::is_not_found(&e) => Ok(None),
        Err(e) => Err(errors::context(format!("reading the tags of S3 bucket {name}"), e)),
    }
}

/// Whether all four Block Public Access settings are on; `None` when the bucket is gone.
async fn is_public_access_blocked(cx: &Cx<'_>, name: &str) -> Result<Option<bool>> {
    match cx.cloud.s3.get_public_access_block().bucket(name).send().await {
        Ok(out) => Ok(Some(out.public_access_block_configuration.as_ref().is_some_and(all_blocked))),
        Err(e) if errors::is_unset(&e) => Ok(Some(false)),
        Err(e) if errors::is_not_found(&e) => Ok(None),
        Err(e) => Err(errors::context(format!("reading the public access block of S3 bucket {name}"), e)),
    }
}

fn all_blocked(config: &PublicAccessBlockConfiguration) -> bool {
    [config.block_public_acls, config.ignore_public_acls, config.block_public_policy, config.restrict_public_buckets]
        .iter()
        .all(|flag| *flag == Some(true))
}

/// Whether the bucket has a default encryption rule; `None` when the bucket is gone.
async fn is_encrypted(cx: &Cx<'_>, name: &str) -> Result<Option<bool>> {
    match cx.cloud.s3.get_bucket_encryption().bucket(name).send().await {
        Ok(out) => Ok(Some(
            out.server_side_encryption_configuration
                .is_some_and(|c| c.rules.iter().any(|rule| rule.apply_server_side_encryption_by_default.is_some())),
        )),
        Err(e) if errors::is_unset(&e) => Ok(Some(false)),
        Err(e) if errors::is_not_found(&e) => Ok(None),
        Err(e) => Err(errors::context(format!("reading the encryption of S3 bucket {name}"), e)),
    }
}

/// The days of the expiry rule (`None`: no such rule); the outer `None` when the bucket is gone.
async fn expiry_days(cx: &Cx<'_>, name: &str) -> Result<Option<Option<i32>>> {
    match cx.cloud.s3.get_bucket_lifecycle_configuration().bucket(name).send().await {
        Ok(out) => Ok(Some(expiry_of(out.rules()))),
        Err(e) if errors::is_unset(&e) => Ok(Some(None)),
        Err(e) if errors::is_not_found(&e) => Ok(None),
        Err(e) => Err(errors::context(format!("reading the lifecycle configuration of S3 bucket {name}"), e)),
    }
}

/// The days after which this driver's expiry rule deletes objects, if the rule is there and on.
fn expiry_of(rules: &[LifecycleRule]) -> Option<i32> {
    rules
        .iter()
        .filter(|rule| rule.id() == Some(EXPIRY_RULE_ID) && rule.status == ExpirationStatus::Enabled)
        .find_map(|rule| rule.expiration.as_ref()?.days)
}

/// When the bucket was created, from ListBuckets (best effort: `None` when it cannot say).
async fn creation_time(cx: &Cx<'_>, name: &str) -> Option<u64> {
    let out = cx.cloud.s3.list_buckets().prefix(name).send().await.ok()?;
    let bucket = out.buckets().iter().find(|b| b.name.as_deref() == Some(name))?;
    u64::try_from(bucket.creation_date.as_ref()?.secs()).ok()
}

fn bucket_arn(name: &str) -> String {
    format!("arn:aws:s3:::{name}")
}

/// The observed properties, named as in [`S3BucketSpec`].
fn observed_props(
    name: &str,
    blocked: bool,
    encrypted: bool,
    expiry: Option<i32>,
    tags: &HashMap<String, String>,
) -> Value {
    json!({
        "name": name,
        "public_access_blocked": blocked,
        "encrypted": encrypted,
        "expire_after_days": expiry,
        "tags": marked_tags(tags),
    })
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    match cx.cloud.s3.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e) if errors::is_not_found(&e) => return Ok(None),
        Err(e) if errors::is_forbidden(&e) => anyhow::bail!(
            "S3 bucket {name} exists but this account may not read it: bucket names are global across all AWS \
             accounts and this one is most likely another account's: choose another name"
        ),
        Err(e) => return Err(errors::context(format!("reading S3 bucket {name}"), e)),
    }
    let (Some(tags), Some(blocked), Some(encrypted), Some(expiry)) = (
        bucket_tags(cx, name).await?,
        is_public_access_blocked(cx, name).await?,
        is_encrypted(cx, name).await?,
        expiry_days(cx, name).await?,
    ) else {
        return Ok(None); // deleted while being read
    };
    Ok(Some(Observed {
        props: observed_props(name, blocked, encrypted, expiry, &tags),
        outputs: outputs([("arn", json!(bucket_arn(name))), ("name", json!(name))]),
        created_unix: creation_time(cx, name).await,
        failed: None,
    }))
}

// Bucket names.

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::changed_fields;

    const ACCOUNT: &str = "123456789012";

    fn valid(name: &str) -> bool {
        (3..=MAX_NAME_LEN).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !name.contains("--")
    }

    #[test]
    fn bucket_names_s3_refuses_are_refused_up_front() {
        assert!(crate::aws::names::s3_bucket("demo-archive-123456789012-us-east-1").is_ok());
        assert!(crate::aws::names::s3_bucket("Demo").unwrap_err().contains("contains `D`"));
        assert!(crate::aws::names::s3_bucket("ab").unwrap_err().contains("3 to 63"));
        assert!(crate::aws::names::s3_bucket("-demo").is_err());
        assert!(crate::aws::names::s3_bucket("a..b").is_err());
        assert!(crate::aws::names::s3_bucket(&bucket_name(&"x".repeat(80), ACCOUNT, "eu-west-1")).is_ok());
    }

    #[test]
    fn short_names_are_stack_archive_account_region() {
        assert_eq!(bucket_name("demo", ACCOUNT, "eu-west-1"), "demo-archive-123456789012-eu-west-1");
        assert_eq!(bucket_name("My_Stack", ACCOUNT, "us-east-1"), "my-stack-archive-123456789012-us-east-1");
    }

    #[test]
    fn names_are_valid_whatever_the_stack() {
        let long = "Stack-".repeat(20);
        for stack in ["Demo_Stack", "-x-", "x--y", "ünïcode stack", "", "---", long.as_str()] {
            let name = bucket_name(stack, ACCOUNT, "ap-southeast-2");
            assert!(valid(&name), "{name:?} (from {stack:?}) is not a valid bucket name");
        }
    }

    #[test]
    fn long_names_are_cut_stable_and_unique() {
        let (a, b) = ("a".repeat(60) + "1", "a".repeat(60) + "2");
        let name = bucket_name(&a, ACCOUNT, "ap-southeast-2");
        assert!(name.len() <= MAX_NAME_LEN && valid(&name), "{name}");
        assert!(name.ends_with("-archive-123456789012-ap-southeast-2"), "{name}");
        assert_eq!(name, bucket_name(&a, ACCOUNT, "ap-southeast-2"), "the same inputs give the same name");
        assert_ne!(name, bucket_name(&b, ACCOUNT, "ap-southeast-2"), "stacks differing past the cut differ");
    }

    #[test]
    fn accounts_and_regions_give_different_names() {
        for stack in ["demo".to_string(), "s".repeat(70)] {
            let name = bucket_name(&stack, ACCOUNT, "us-east-1");
            assert_ne!(name, bucket_name(&stack, "210987654321", "us-east-1"));
            assert_ne!(name, bucket_name(&stack, ACCOUNT, "us-west-2"));
        }
    }

    #[test]
    fn public_access_is_blocked_only_with_all_four_settings() {
        let all = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        assert!(all_blocked(&all));
        let three = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .build();
        assert!(!all_blocked(&three));
    }

    #[test]
    fn expiry_is_read_from_this_drivers_enabled_rule_only() {
        let rule = |id: &str, status: ExpirationStatus, days: i32| {
            LifecycleRule::builder()
                .id(id)
                .status(status)
                .expiration(LifecycleExpiration::builder().days(days).build())
                .build()
                .unwrap()
        };
        assert_eq!(expiry_of(&[rule("other", ExpirationStatus::Enabled, 7)]), None);
        assert_eq!(expiry_of(&[rule(EXPIRY_RULE_ID, ExpirationStatus::Disabled, 7)]), None);
        let rules = [rule("other", ExpirationStatus::Enabled, 7), rule(EXPIRY_RULE_ID, ExpirationStatus::Enabled, 30)];
        assert_eq!(expiry_of(&rules), Some(30));
        assert_eq!(expiry_of(&expiry_configuration(30).unwrap().rules), Some(30), "what set_expiry writes reads back");
    }

    #[test]
    fn a_bucket_as_declared_shows_no_change() {
        let mark = [("provision:stack", "demo"), ("provision:origin", "abc")];
        let mut declared = serde_json::to_value(S3BucketSpec::new("b", Some(30))).unwrap();
        declared["tags"] = json!(HashMap::from(mark));
        let mut tags: HashMap<String, String> = mark.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        tags.insert("team".to_string(), "theirs".to_string());
        let observed = observed_props("b", true, true, Some(30), &tags);
        assert!(changed_fields(&declared, &observed, None, &[], &[]).is_empty(), "users' tags are not drift");
        let kept = serde_json::to_value(S3BucketSpec::new("b", None)).unwrap();
        assert_eq!(kept["expire_after_days"], Value::Null, "None is declared as null, so removing it is a change");
        assert_eq!(changed_fields(&kept, &observed, None, &[], &[]), vec!["expire_after_days"]);
        let opened = observed_props("b", false, true, Some(30), &tags);
        assert_eq!(changed_fields(&declared, &opened, None, &[], &[]), vec!["public_access_blocked"]);
    }

    #[test]
    fn create_bucket_names_a_region_only_outside_us_east_1() {
        let props = json!({"name": "b", "tags": {"provision:stack": "demo"}});
        let east = bucket_configuration("us-east-1", &props).unwrap().unwrap();
        assert!(east.location_constraint.is_none());
        assert_eq!(east.tags().len(), 1);
        let west = bucket_configuration("eu-west-1", &props).unwrap().unwrap();
        assert_eq!(west.location_constraint, Some(BucketLocationConstraint::from("eu-west-1")));
        assert!(bucket_configuration("us-east-1", &json!({"name": "b"})).unwrap().is_none());
    }
}
