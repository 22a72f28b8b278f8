//! A stack's state in S3, shared by a team and CI (`--state-url s3://BUCKET/PREFIX`): the state
//! of each stack is the object `PREFIX/<stack>.json`, its lock the object `PREFIX/<stack>.lock`.
//!
//! - **The lock** is written with `If-None-Match: *`, which S3 makes atomic: of two runs, one
//!   writes it and the other is refused, told who holds it (user@host, command, PID, since) and
//!   the exact `provision unlock LOCK_ID` that would release it. A PUT retried after a lost answer
//!   that meets its own lock knows it by the lock id. Release deletes it only while it is still
//!   this run's: a conditional delete (`If-Match` its ETag), or, where the endpoint lacks
//!   conditional deletes (LocalStack answers 501), a read-compare-delete, whose window is
//!   stated. Ctrl-C or SIGTERM while the lock is held releases it and ends the run; a lock left
//!   by a killed run stays until `provision unlock LOCK_ID`.
//! - **Writes are fenced:** each write of the state is conditional on the ETag this run last read
//!   or wrote (`If-Match`; `If-None-Match: *` for a new state), so a run whose lock was broken
//!   cannot overwrite what another run has written since: it stops, writes nothing, and says so.
//! - **Identity:** a new remote state gets a lineage id as its mark's origin, so every checkout
//!   and CI job using it owns the same resources, and two states naming the same stack do not.

use crate::aws::errors;
use crate::cloud::{Cloud, Target};
use crate::engine::driver::BoxFut;
use crate::engine::mark::Mark;
use crate::engine::state::{now_unix, parse, State, StateBackend, StateLease, StateReader};
use anyhow::{bail, Context, Result};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// `s3://BUCKET/PREFIX`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl StateUrl {
    /// Reads `s3://BUCKET[/PREFIX]`.
    pub fn parse(url: &str) -> Result<Self> {
        let Some(rest) = url.strip_prefix("s3://") else {
            bail!("state URL `{url}` must be s3://BUCKET/PREFIX (or `local` where a move takes one)");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || crate::aws::names::s3_bucket(bucket).is_err() {
            bail!("state URL `{url}`: `{bucket}` is not a valid S3 bucket name");
        }
        Ok(Self { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() })
    }

    fn key(&self, stack: &str, suffix: &str) -> String {
        if self.prefix.is_empty() {
            format!("{stack}.{suffix}")
        } else {
            format!("{}/{stack}.{suffix}", self.prefix)
        }
    }

    /// The state object's key of `stack`.
    pub fn state_key(&self, stack: &str) -> String {
        self.key(stack, "json")
    }

    /// The lock object's key of `stack`.
    pub fn lock_key(&self, stack: &str) -> String {
        self.key(stack, "lock")
    }
}

impl std::fmt::Display for StateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Who holds a stack's lock, as the lock object says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub lock_id: String,
    /// `user@host`.
    pub who: String,
    pub command: String,
    pub pid: u32,
    pub since_unix: u64,
}

impl LockInfo {
    fn for_this_run(command: &str) -> Self {
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "someone".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
        Self {
            lock_id: format!("{:016x}", fastrand::u64(..)),
            who: format!("{user}@{}", if host.is_empty() { "unknown-host" } else { &host }),
            command: command.to_string(),
            pid: std::process::id(),
            since_unix: now_unix(),
        }
    }

    /// The refusal a run gets while this lock is held.
    fn refusal(&self, stack: &str, url: &StateUrl) -> String {
        format!(
            "stack `{stack}` is locked by `provision {}` of {} (PID {}, since {} s ago; lock {}). Nothing was changed. \
             Wait for it to finish; if that run is gone (killed, or its machine lost), release the lock with:\n  \
             provision --state-url {url} --stack {stack} unlock {}",
            self.command,
            self.who,
            self.pid,
            now_unix().saturating_sub(self.since_unix),
            self.lock_id,
            self.lock_id
        )
    }
}

/// The state of every stack under one S3 URL.
pub struct S3State {
    url: StateUrl,
    target: Target,
    client: OnceCell<aws_sdk_s3::Client>,
}

impl S3State {
    /// The states under `url`, reached with `target`'s credentials and endpoint.
    pub fn new(url: StateUrl, target: Target) -> Self {
        Self { url, target, client: OnceCell::new() }
    }

    /// The URL.
    pub fn url(&self) -> &StateUrl {
        &self.url
    }

    async fn client(&self) -> Result<&aws_sdk_s3::Client> {
        self.client
            .get_or_try_init(|| async { Ok::<_, anyhow::Error>(Cloud::connect(self.target.clone()).await?.s3.clone()) })
            .await
    }

    /// The state object of `stack` and its ETag (`None` when there is no state yet).
    async fn get_state(&self, stack: &str) -> Result<Option<(State, String)>> {
        let key = self.url.state_key(stack);
        let location = format!("s3://{}/{key}", self.url.bucket);
        let what = format!("reading the state {location}");
        let Some((bytes, etag)) =
            get_object(self.client().await?, &self.url.bucket, &key, &what, |e| self.explain(e, &what)).await?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let restore = "Restore an earlier version of the object (the state bucket is versioned)";
        Ok(Some((parse(&text, stack, &location, restore)?, etag)))
    }

    /// The lock object of `stack` and its ETag, if any.
    pub async fn read_lock(&self, stack: &str) -> Result<Option<(LockInfo, String)>> {
        let key = self.url.lock_key(stack);
        let what = format!("reading the lock s3://{}/{key}", self.url.bucket);
        let Some((bytes, etag)) =
            get_object(self.client().await?, &self.url.bucket, &key, &what, |e| self.explain(e, &what)).await?
        else {
            return Ok(None);
        };
        let info: LockInfo = serde_json::from_slice(&bytes)
            .with_context(|| format!("the lock s3://{}/{key} is not a provision lock", self.url.bucket))?;
        Ok(Some((info, etag)))
    }

    /// `provision unlock LOCK_ID`: deletes the lock of `stack` if its id is `lock_id`.
    pub async fn unlock(&self, stack: &str, lock_id: &str) -> Result<LockInfo> {
        let Some((info, etag)) = self.read_lock(stack).await? else {
            bail!("stack `{stack}` is not locked in {}: nothing to release", self.url);
        };
        if info.lock_id != lock_id {
            bail!(
                "stack `{stack}` is locked by another lock than {lock_id}: {}\nNothing was released",
                info.refusal(stack, &self.url)
            );
        }
        delete_if_unchanged(self.client().await?, &self.url.bucket, &self.url.lock_key(stack), &etag).await?;
        Ok(info)
    }

    fn explain<E>(
        &self,
        e: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
        what: &str,
    ) -> anyhow::Error
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if errors::code(&e) == Some("NoSuchBucket") {
            return anyhow::anyhow!(
                "{what}: the state bucket `{}` does not exist. Create it, versioned and encrypted, with\n  provision state init {}",
                self.url.bucket,
                self.url
            );
        }
        errors::context(what.to_string(), e)
    }
}

impl StateBackend for S3State {
    fn location(&self, stack: &str) -> String {
        format!("s3://{}/{}", self.url.bucket, self.url.state_key(stack))
    }

    fn lock<'a>(&'a self, stack: &'a str, command: &'a str) -> BoxFut<'a, Result<(Box<dyn StateLease>, State)>> {
        Box::pin(async move {
            let client = self.client().await?.clone();
            let info = LockInfo::for_this_run(command);
            let lock_key = self.url.lock_key(stack);
            let body = serde_json::to_vec(&info)?;
            let answer = client
                .put_object()
                .bucket(&self.url.bucket)
                .key(&lock_key)
                .if_none_match("*")
                .body(ByteStream::from(body))
                .content_type("application/json")
                .send()
                .await;
            let lock_etag = match answer {
                Ok(written) => written.e_tag().unwrap_or_default().to_string(),
                Err(e) if is_precondition_failed(&e) => match self.read_lock(stack).await? {
                    // A retried PUT that met the lock its first attempt wrote.
                    Some((held, etag)) if held.lock_id == info.lock_id => etag,
                    Some((held, _)) => bail!("{}", held.refusal(stack, &self.url)),
                    None => bail!(
                        "stack `{stack}`'s lock was released while this run tried to take it: run the command again"
                    ),
                },
                Err(e) => return Err(self.explain(e, &format!("taking the lock s3://{}/{lock_key}", self.url.bucket))),
            };
            let on_interrupt = ReleaseOnInterrupt::arm(
                HeldLock {
                    client: client.clone(),
                    bucket: self.url.bucket.clone(),
                    key: lock_key.clone(),
                    etag: lock_etag.clone(),
                },
                format!("provision --state-url {} --stack {stack} unlock {}", self.url, info.lock_id),
            );
            let lease = S3Lease {
                client,
                bucket: self.url.bucket.clone(),
                state_key: self.url.state_key(stack),
                lock_key,
                lock_id: info.lock_id.clone(),
                lock_etag,
                etag: Mutex::new(None),
                existed: false,
                _on_interrupt: on_interrupt,
            };
            let mut lease = lease;
            let state = match self.get_state(stack).await {
                Ok(Some((state, etag))) => {
                    *lease.etag.lock().expect("etag") = Some(etag);
                    lease.existed = true;
                    state
                }
                Ok(None) => State { origin: Some(Mark::new_lineage()), ..State::empty(stack) },
                Err(e) => return Err(e),
            };
            Ok((Box::new(lease) as Box<dyn StateLease>, state))
        })
    }

    fn read<'a>(&'a self, stack: &'a str) -> BoxFut<'a, Result<(StateReader, State)>> {
        Box::pin(async move {
            let state = self.get_state(stack).await?.map(|(state, _)| state).unwrap_or_else(|| State::empty(stack));
            Ok((StateReader::holding(None), state))
        })
    }
}

/// A stack's remote state under this run's lock.
struct S3Lease {
    client: aws_sdk_s3::Client,
    bucket: String,
    state_key: String,
    lock_key: String,
    lock_id: String,
    lock_etag: String,
    /// The ETag of the state as this run last read or wrote it (`None`: no state yet).
    etag: Mutex<Option<String>>,
    /// Whether a state object was there when the lock was taken.
    existed: bool,
    _on_interrupt: ReleaseOnInterrupt,
}

/// A lock object this run wrote, as needed to delete it while it is still this run's.
struct HeldLock {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    etag: String,
}

/// While a lock is held, Ctrl-C (SIGINT), SIGTERM (what CI sends on a cancel or a timeout) or
/// SIGHUP (a closed terminal) releases it and ends the run, with 130, 143 or 129. What was in flight is in the journal, which the
/// next command finishes or undoes, as after a kill; without this the lock alone would be left
/// for `provision unlock`. Writes the run makes between the release and the exit are fenced like
/// any other. Every lock the run holds (`state migrate` holds two) is released before the exit.
/// Disarmed when dropped with the lease.
struct ReleaseOnInterrupt {
    task: tokio::task::JoinHandle<()>,
    armed: Arc<AtomicBool>,
}

/// How many locks this process holds that an interrupt must release before it exits.
static ARMED: AtomicUsize = AtomicUsize::new(0);

impl ReleaseOnInterrupt {
    /// How long an interrupted run tries to release its lock before it leaves it.
    const RELEASE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

    fn arm(lock: HeldLock, unlock_line: String) -> Self {
        // Listening from now on, before the task first runs, so no signal finds the default action.
        let signals = Signals::listen();
        let armed = Arc::new(AtomicBool::new(true));
        ARMED.fetch_add(1, Ordering::SeqCst);
        let mine = armed.clone();
        let task = tokio::spawn(async move {
            let code = signals.received().await;
            eprintln!(
                "\ninterrupted: stopping. What was in flight is in the journal; the next `provision up` or `down` \
                 finishes or undoes it. Releasing the lock s3://{}/{}...",
                lock.bucket, lock.key
            );
            let release = delete_if_unchanged(&lock.client, &lock.bucket, &lock.key, &lock.etag);
            match tokio::time::timeout(Self::RELEASE_WITHIN, release).await {
                Ok(Ok(())) => eprintln!("lock released"),
                Ok(Err(err)) => eprintln!("warning: the lock was not released: {err:#}\nRelease it with:\n  {unlock_line}"),
                Err(_) => eprintln!(
                    "warning: S3 did not answer within {} s: the lock was not released. Release it with:\n  {unlock_line}",
                    Self::RELEASE_WITHIN.as_secs()
                ),
            }
            if Self::disarm(&mine) == 0 {
                std::process::exit(code);
            }
        });
        Self { task, armed }
    }

    /// Counts this lock as no longer held (once); how many the process still holds.
    fn disarm(armed: &AtomicBool) -> usize {
        if armed.swap(false, Ordering::SeqCst) {
            ARMED.fetch_sub(1, Ordering::SeqCst) - 1
        } else {
            ARMED.load(Ordering::SeqCst)
        }
    }
}

impl Drop for ReleaseOnInterrupt {
    fn drop(&mut self) {
        self.task.abort();
        Self::disarm(&self.armed);
    }
}

/// SIGINT, SIGTERM and SIGHUP (the terminal was closed), caught instead of ending the process.
struct Signals(Vec<(tokio::signal::unix::Signal, i32)>);

impl Signals {
    fn listen() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [(SignalKind::interrupt(), 130), (SignalKind::terminate(), 143), (SignalKind::hangup(), 129)];
        Self(kinds.into_iter().filter_map(|(kind, code)| Some((signal(kind).ok()?, code))).collect())
    }

    /// Waits for any; the exit code that reports it (128 + the signal's number).
    async fn received(mut self) -> i32 {
        if self.0.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.0.iter_mut().map(|(signal, code)| {
            let code = *code;
            Box::pin(async move {
                signal.recv().await;
                code
            })
        });
        futures::future::select_all(waits).await.0
    }
}

impl S3Lease {
    /// The ETag of the state object if it holds exactly `text` and the lock is still this run's:
    /// what this run's own earlier attempt wrote, when a retry meets a failed precondition.
    async fn written_by_a_lost_attempt(&self, text: &str) -> Result<Option<String>> {
        if !self.still_holds_the_lock().await? {
            return Ok(None);
        }
        let what = format!("reading back the state s3://{}/{}", self.bucket, self.state_key);
        let read =
            get_object(&self.client, &self.bucket, &self.state_key, &what, |e| errors::context(&what, e)).await?;
        Ok(read.filter(|(bytes, _)| bytes == text.as_bytes()).map(|(_, etag)| etag))
    }

    async fn still_holds_the_lock(&self) -> Result<bool> {
        let etag = etag_of(&self.client, &self.bucket, &self.lock_key).await?;
        Ok(etag.as_deref() == Some(unquoted(&self.lock_etag)))
    }
}

impl StateLease for S3Lease {
    fn save<'a>(&'a self, state: &'a State) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let text = serde_json::to_string_pretty(state).context("serializing the state")?;
            let expected = self.etag.lock().expect("etag").clone();
            let request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.state_key)
                .body(ByteStream::from(text.clone().into_bytes()))
                .content_type("application/json");
            let request = match &expected {
                Some(etag) => request.if_match(etag),
                None => request.if_none_match("*"),
            };
            match request.send().await {
                Ok(written) => {
                    *self.etag.lock().expect("etag") = written.e_tag().map(str::to_string);
                    Ok(())
                }
                Err(e) if is_precondition_failed(&e) => match self.written_by_a_lost_attempt(&text).await? {
                    // A retried PUT whose first attempt was written but whose answer was lost.
                    Some(etag) => {
                        *self.etag.lock().expect("etag") = Some(etag);
                        Ok(())
                    }
                    None => bail!(
                        "the state s3://{}/{} was written by another run since this one read it (this run's lock {} \
                         was released with `provision unlock` and someone else went on): this run stops here and \
                         writes nothing. The other run's state is kept; run `provision plan` to see where the stack \
                         stands",
                        self.bucket,
                        self.state_key,
                        self.lock_id
                    ),
                },
                Err(e) => Err(errors::context(format!("writing the state s3://{}/{}", self.bucket, self.state_key), e)),
            }
        })
    }

    fn remove<'a>(&'a self) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let Some(etag) = self.etag.lock().expect("etag").clone() else { return Ok(()) };
            delete_if_unchanged(&self.client, &self.bucket, &self.state_key, &etag).await
        })
    }

    fn retire<'a>(&'a self, pointer: &'a State) -> BoxFut<'a, Result<String>> {
        Box::pin(async move {
            let etag = self.etag.lock().expect("etag").clone().context("there is no state to move aside")?;
            let backup = format!("{}.migrated-{}", self.state_key, now_unix());
            let what = format!("keeping s3://{}/{} as {backup}", self.bucket, self.state_key);
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .copy_source(format!("{}/{}", self.bucket, self.state_key))
                .copy_source_if_match(&etag)
                .key(&backup)
                .send()
                .await
                .map_err(|e| match is_precondition_failed(&e) {
                    true => anyhow::anyhow!("{what}: the state was written by another run since this one read it"),
                    false => errors::context(what, e),
                })?;
            // Fenced on the same ETag: a state someone wrote since is not replaced.
            self.save(pointer).await?;
            Ok(format!("s3://{}/{backup}", self.bucket))
        })
    }

    fn existed(&self) -> bool {
        self.existed
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.state_key)
    }
}

impl Drop for S3Lease {
    /// Releases the lock, if it is still this run's.
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let release = delete_if_unchanged(&self.client, &self.bucket, &self.lock_key, &self.lock_etag);
        if let Err(err) = tokio::task::block_in_place(|| handle.block_on(release)) {
            eprintln!("warning: releasing the lock s3://{}/{}: {err:#}", self.bucket, self.lock_key);
        }
    }
}

/// Deletes `key` if its ETag is still `etag` (a conditional delete). An endpoint without
/// conditional deletes (501) gets a read-compare-delete instead: the object's ETag is read and it
/// is deleted only if it is still `etag`, with a window of a few milliseconds in which someone
/// else's write could be deleted.
async fn delete_if_unchanged(client: &aws_sdk_s3::Client, bucket: &str, key: &str, etag: &str) -> Result<()> {
    let what = format!("deleting s3://{bucket}/{key}");
    let changed =
        || anyhow::anyhow!("{what}: it changed since this run wrote it (someone else holds it now): left as it is");
    match client.delete_object().bucket(bucket).key(key).if_match(etag).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_no_such_key(&e) => Ok(()),
        // A retried delete whose first attempt took effect meets no object.
        Err(e) if is_precondition_failed(&e) => match etag_of(client, bucket, key).await? {
            None => Ok(()),
            Some(_) => Err(changed()),
        },
        Err(e) if errors::is_unimplemented(&e) => {
            match etag_of(client, bucket, key).await? {
                None => return Ok(()),
                Some(current) if current != unquoted(etag) => return Err(changed()),
                Some(_) => {}
            }
            client.delete_object().bucket(bucket).key(key).send().await.map_err(|e| errors::context(what, e))?;
            Ok(())
        }
        Err(e) => Err(errors::context(what, e)),
    }
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// The bytes of an object and its ETag (`None`: there is no such object); `failed` turns a
/// failed GetObject into the error to return.
async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    what: &str,
    failed: impl FnOnce(SdkError<GetObjectError, HttpResponse>) -> anyhow::Error,
) -> Result<Option<(Vec<u8>, String)>> {
    let object = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => object,
        Err(e) if is_no_such_key(&e) => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let etag = object.e_tag().unwrap_or_default().to_string();
    let bytes = object.body.collect().await.with_context(|| what.to_string())?.to_vec();
    Ok(Some((bytes, etag)))
}

/// The ETag of an object, without its quotes (`None`: there is no such object).
async fn etag_of(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<String>> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(object) => Ok(Some(unquoted(object.e_tag().unwrap_or_default()).to_string())),
        Err(e) if is_no_such_key(&e) => Ok(None),
        Err(e) => Err(errors::context(format!("reading s3://{bucket}/{key}"), e)),
    }
}

fn is_precondition_failed<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool {
    errors::code(e) == Some("PreconditionFailed") || e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
}

fn is_no_such_key<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool {
    matches!(errors::code(e), Some("NoSuchKey" | "NotFound"))
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 404 && errors::code(e) != Some("NoSuchBucket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let url = StateUrl::parse("s3://team-state/stacks/").unwrap();
        assert_eq!(url, StateUrl { bucket: "team-state".into(), prefix: "stacks".into() });
        assert_eq!(url.state_key("demo"), "stacks/demo.json");
        assert_eq!(url.lock_key("demo"), "stacks/demo.lock");
        assert_eq!(StateUrl::parse("s3://team-state").unwrap().state_key("demo"), "demo.json");
        assert!(StateUrl::parse("https://x").is_err());
        assert!(StateUrl::parse("s3://Bad_Bucket/x").is_err());
    }
}
