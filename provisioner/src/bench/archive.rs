//! The archive side of a benchmark: how long after the API received a record it was visible in
//! the archive bucket (the object's LastModified minus the record's `received_at_ms`), next to
//! the Postgres latency. Waits for the run's records up to the delivery stream's buffering
//! interval plus a margin, since Firehose holds records that long before writing.

use crate::bench::report::{ArchiveCheck, Summary};
use crate::cloud::Cloud;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Where the stack archives, from its state.
#[derive(Debug, Clone)]
pub struct Archive {
    pub bucket: String,
    /// The delivery stream's buffering interval: the longest a record waits before being written.
    pub buffer_interval: Duration,
}

/// Waits until every id of `accepted` is in the bucket or `wait` passes, then measures; counts
/// which of `lost` (accepted, never in Postgres) the archive has: records that reached the stream
/// but never went through the functions.
pub async fn check(
    cloud: &Cloud,
    archive: &Archive,
    run_id: &str,
    accepted: &[String],
    lost: &HashSet<String>,
    wait: Duration,
) -> Result<ArchiveCheck> {
    let wanted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut seen = read_run(cloud, &archive.bucket, run_id).await?;
    while started.elapsed() < wait && !wanted.iter().all(|id| seen.contains_key(*id)) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        seen = read_run(cloud, &archive.bucket, run_id).await?;
    }
    let lags: Vec<f64> = seen.values().flatten().map(|lag| *lag as f64).collect();
    let duplicates = seen.values().map(|lags| lags.len().saturating_sub(1) as u64).sum();
    Ok(ArchiveCheck {
        bucket: archive.bucket.clone(),
        archived: wanted.iter().filter(|id| seen.contains_key(**id)).count() as u64,
        missing: wanted.iter().filter(|id| !seen.contains_key(**id)).count() as u64,
        duplicates,
        archived_not_in_table: lost.iter().filter(|id| seen.contains_key(id.as_str())).count() as u64,
        buffer_interval_s: archive.buffer_interval.as_secs(),
        lag_ms: Summary::of(&lags),
    })
}

/// The run's records in the bucket: per id, the lag of each copy (ms from receipt to object).
async fn read_run(cloud: &Cloud, bucket: &str, run_id: &str) -> Result<BTreeMap<String, Vec<i64>>> {
    let mut found: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut token = None;
    loop {
        let page = cloud
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix("records/")
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| crate::aws::errors::context(format!("listing the archive bucket {bucket}"), e))?;
        for object in page.contents() {
            let (Some(key), Some(modified)) = (object.key(), object.last_modified()) else { continue };
            let written_ms = modified.to_millis().unwrap_or_default();
            let body = cloud.s3.get_object().bucket(bucket).key(key).send().await;
            let body = body.map_err(|e| crate::aws::errors::context(format!("reading {key}"), e))?;
            let bytes = body.body.collect().await.context("reading an archived object")?.into_bytes();
            for line in String::from_utf8_lossy(&bytes).lines() {
                let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                let (Some(id), Some(received)) = (record["id"].as_str(), record["received_at_ms"].as_i64()) else {
                    continue;
                };
                if id.starts_with(run_id) {
                    found.entry(id.to_string()).or_default().push(written_ms - received);
                }
            }
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(found),
        }
    }
}
