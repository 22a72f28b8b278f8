//! The commands about where a stack's state is kept: `provision state init s3://...` (a state
//! bucket, versioned, encrypted, private, marked), `provision state migrate --to URL|local`, and
//! `provision unlock LOCK_ID` (release a remote lock a killed run left).

use crate::aws::{s3_bucket, Cx};
use crate::cloud::Cloud;
use crate::commands::Context;
use crate::engine::mark::Mark;
use crate::engine::ownership;
use crate::engine::state::local::LocalFolder;
use crate::engine::state::{now_unix, Moved, State, StateBackend, StateStore};
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
/// already has a state of this stack. The old place keeps a copy beside where it was and, in its
/// place, a pointer naming the new one, so a run there is refused instead of starting a second
/// state. The moved state gets an origin of its own (a new lineage, or this checkout's for the
/// local folder) and every resource is re-marked with it, so that even without the pointer a run
/// elsewhere cannot adopt them.
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
    let here = place(ctx.state.as_ref(), stack, ctx.remote_state.is_none(), local_dir);
    let (to_lock, there) = StateStore::open_even_moved(destination.as_ref(), stack, "state migrate").await?;
    let moving_back = there.moved.as_ref().is_some_and(|m| m.to == here);
    if to_lock.existed() && !moving_back {
        bail!(
            "{} already holds a state of stack `{stack}`{}: it is never overwritten. Nothing was moved",
            destination.location(stack),
            there.moved.as_ref().map(|m| format!(" (a pointer to {})", m.to)).unwrap_or_default()
        );
    }
    let former = crate::commands::origin(ctx, &state);
    let origin = if to == "local" { Mark::origin_of(&ctx.build.workspace) } else { Mark::new_lineage() };
    let mut moved = State {
        origin: Some(origin.clone()),
        former_origins: if former == origin { Vec::new() } else { vec![former] },
        ..state
    };
    to_lock.save(&moved).await.with_context(|| format!("writing the state to {}", destination.location(stack)))?;
    let use_with = if to == "local" {
        format!(
            "the local state folder: run in {} without --state-url, PROVISION_STATE_URL or \"state_url\"",
            here_dir(local_dir)
        )
    } else {
        format!("--state-url {to} (or PROVISION_STATE_URL, or \"state_url\" in the settings)")
    };
    let there_place = place(destination.as_ref(), stack, to == "local", local_dir);
    let pointer = State::pointer(stack, Moved { to: there_place, use_with: use_with.clone(), at_unix: now_unix() });
    let backup = from_lock.retire(&pointer).await?;
    drop(from_lock);
    let remarked = remark(ctx, &mut moved).await;
    to_lock.save(&moved).await.with_context(|| format!("writing the state to {}", destination.location(stack)))?;
    drop(to_lock);
    println!(
        "moved the state of stack `{stack}` to {} ({} resources); the old copy is kept as {backup}, and {} now only \
         says where the state went. From now on use {use_with}",
        destination.location(stack),
        moved.resources.len(),
        ctx.state.location(stack),
    );
    remarked
}

/// Gives the moved state's resources its new origin, and forgets the former one once all carry
/// it. A failure is said with what finishes it: the state has moved, and the next `up` there
/// re-marks what is left.
async fn remark(ctx: &Context, moved: &mut State) -> Result<()> {
    let origin = moved.origin.clone().unwrap_or_default();
    let Some(former) = moved.former_origins.first().cloned() else { return Ok(()) };
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let failed = ownership::remark(&cloud, crate::aws::registry(), moved, &former, &origin).await?;
    if failed.is_empty() {
        moved.former_origins.clear();
        return Ok(());
    }
    let lines: Vec<String> = failed.iter().map(|(id, why)| format!("  - `{id}`: {why}")).collect();
    bail!(
        "the state moved, but {} resource(s) still carry the old mark (the new state still owns them):\n{}\nRun \
         `provision up` against the new state to finish re-marking them",
        failed.len(),
        lines.join("\n")
    )
}

/// A state's place as a pointer names it: the object's URL, or the file's absolute path and
/// this host (a local folder is only meaningful on its machine).
fn place(backend: &dyn StateBackend, stack: &str, local: bool, local_dir: &Path) -> String {
    if !local {
        return backend.location(stack);
    }
    format!("{}/{stack}.json on host {}", here_dir(local_dir), crate::engine::mark::host_name())
}

/// The local state folder, as an absolute path where it can be made one.
fn here_dir(local_dir: &Path) -> String {
    std::path::absolute(local_dir).unwrap_or_else(|_| local_dir.to_path_buf()).display().to_string()
}

/// The remote store the context uses, if it uses one.
fn remote_of(ctx: &Context) -> Option<&S3State> {
    ctx.remote_state.as_deref()
}
