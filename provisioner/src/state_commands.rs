//! The commands about where a stack's state is kept: `provision state init s3://...` (a state
//! bucket, versioned, encrypted, private, marked), `provision state migrate --to URL|local`, and
//! `provision unlock LOCK_ID` (release a remote lock a killed run left).

use crate::aws::{s3_bucket, Cx};
use crate::cloud::Cloud;
use crate::commands::Context;
use crate::engine::state::local::LocalFolder;
use crate::engine::state::{StateBackend, StateStore};
use crate::remote_state::{S3State, StateUrl};
use anyhow::{bail, Context as _, Result};
use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
use std::path::Path;
use std::sync::Arc;

/// The tag a state bucket `state init` made carries.
const STATE_BUCKET_TAG: (&str, &str) = ("provision:purpose", "state");

/// `provision state init s3://BUCKET/PREFIX`: makes the bucket (versioned, so a bad write can be
/// undone; encrypted; public access blocked; tagged), or says it is ready if `state init` made it.
/// Refuses a bucket it did not make.
pub async fn init(ctx: &Context, url: &str) -> Result<()> {
    let url = StateUrl::parse(url)?;
    let cloud = Cloud::connect(ctx.target.clone()).await?;
    let s3 = &cloud.s3;
    let bucket = &url.bucket;
    // CreateBucket on one's own bucket succeeds in us-east-1: look first.
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        let tags = s3.get_bucket_tagging().bucket(bucket).send().await.ok();
        let ours = tags.is_some_and(|t| t.tag_set().iter().any(|tag| (tag.key(), tag.value()) == STATE_BUCKET_TAG));
        if !ours {
            bail!(
                "bucket `{bucket}` exists and was not made by `provision state init`: it was left untouched. Pick \
                 another name, or use it as it is with --state-url {url} (it should be versioned and encrypted)"
            );
        }
        println!("state bucket {bucket} is already set up: use --state-url {url}");
        return Ok(());
    }
    // Encrypted and private as the stack's own buckets are, versioned, and tagged as made here.
    s3.create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(s3_bucket::bucket_configuration(&cloud.region, &serde_json::json!({}))?)
        .send()
        .await
        .map_err(|e| crate::aws::errors::context(format!("creating the state bucket {bucket}"), e))?;
    let versioning = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(versioning)
        .send()
        .await
        .map_err(|e| crate::aws::errors::context(format!("turning versioning on for {bucket}"), e))?;
    let cx = Cx { cloud: &cloud, id: "state bucket", may_adopt: false };
    s3_bucket::encrypt(&cx, bucket).await?;
    s3_bucket::block_public_access(&cx, bucket).await?;
    let tag = Tag::builder().key(STATE_BUCKET_TAG.0).value(STATE_BUCKET_TAG.1).build()?;
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(Tagging::builder().tag_set(tag).build()?)
        .send()
        .await
        .map_err(|e| crate::aws::errors::context(format!("tagging {bucket}"), e))?;
    println!("state bucket {bucket} is ready (versioned, encrypted, private): use --state-url {url}");
    Ok(())
}

/// `provision unlock LOCK_ID`: releases the remote lock a killed run left, if its id is `LOCK_ID`.
pub async fn unlock(ctx: &Context, lock_id: &str) -> Result<()> {
    let Some(remote) = remote_of(ctx) else {
        bail!(
            "stack `{}` keeps its state in the local folder {}, whose lock the kernel releases the instant its run \
             ends: there is nothing to unlock",
            ctx.stack,
            ctx.state.location(&ctx.stack)
        );
    };
    let released = remote.unlock(&ctx.stack, lock_id).await?;
    println!(
        "released lock {lock_id} of stack `{}` (held by `provision {}` of {}). If that run still goes on, its next \
         write of the state is refused",
        ctx.stack, released.command, released.who
    );
    Ok(())
}

/// `provision state migrate --to URL|local`: moves the stack's state. Refused while the journal
/// holds interrupted operations (finish them first with `up` or `down`) and when the destination
/// already has a state of this stack; the old copy is kept beside where it was.
pub async fn migrate(ctx: &Context, to: &str, local_dir: &Path) -> Result<()> {
    let destination: Arc<dyn StateBackend> = if to == "local" {
        Arc::new(LocalFolder::new(local_dir))
    } else {
        Arc::new(S3State::new(StateUrl::parse(to)?, ctx.target.clone()))
    };
    let stack = &ctx.stack;
    let (from_lock, state) = StateStore::open(ctx.state.as_ref(), stack, "state migrate").await?;
    if state.resources.is_empty() && state.pending.is_empty() {
        bail!("stack `{stack}` has no state in {}: nothing to move", ctx.state.location(stack));
    }
    if !state.pending.is_empty() {
        bail!(
            "stack `{stack}` has {} interrupted operation(s) in its journal: run `provision up` (or `down`) to finish \
             them, then move the state",
            state.pending.len()
        );
    }
    if ctx.state.location(stack) == destination.location(stack) {
        bail!("the state of stack `{stack}` is already at {}", destination.location(stack));
    }
    let (to_lock, _) = StateStore::open(destination.as_ref(), stack, "state migrate").await?;
    if to_lock.existed() {
        bail!(
            "{} already holds a state of stack `{stack}`: it is never overwritten. Nothing was moved",
            destination.location(stack)
        );
    }
    // The resources carry the origin this state records, or this checkout's if it predates them.
    let state = crate::engine::state::State { origin: Some(crate::commands::origin(ctx, &state)), ..state };
    to_lock.save(&state).await.with_context(|| format!("writing the state to {}", destination.location(stack)))?;
    let backup = from_lock.retire().await?;
    drop(from_lock);
    drop(to_lock);
    println!(
        "moved the state of stack `{stack}` to {} ({} resources); the old copy is kept as {backup}. From now on use {}",
        destination.location(stack),
        state.resources.len(),
        if to == "local" { "the local folder (no --state-url)".to_string() } else { format!("--state-url {to}") }
    );
    Ok(())
}

/// The remote store the context uses, if it uses one.
fn remote_of(ctx: &Context) -> Option<&S3State> {
    ctx.remote_state.as_deref()
}
