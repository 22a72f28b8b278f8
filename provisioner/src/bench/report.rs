//! The benchmark's figures: percentiles and summaries ([`percentile`], [`Summary`]), sustained
//! throughput ([`completions_per_s`], [`per_second`]), and the [`Report`] printed at the end, as
//! text ([`Report::text`]) or JSON (it serializes). Everything here is pure and unit-tested.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The `p`-th percentile (0..=100) of ascending `sorted` values, by linear interpolation between
/// the two nearest ranks (numpy's and pandas' default, so figures compare with the classic
/// sample's `describe()`). `None` for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let (first, last) = (sorted.first()?, sorted.last()?);
    let p = p.clamp(0.0, 100.0);
    if p == 0.0 {
        return Some(*first);
    }
    if p == 100.0 {
        return Some(*last);
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let fraction = rank - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * fraction)
}

/// Count, mean and the percentiles the report shows, of one set of values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// The summary of `values` (any order); `None` when there are none. NaNs are ignored.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let p = |q| percentile(&sorted, q);
        Some(Summary {
            count: sorted.len(),
            min: p(0.0)?,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: p(50.0)?,
            p90: p(90.0)?,
            p95: p(95.0)?,
            p99: p(99.0)?,
            max: p(100.0)?,
        })
    }

    fn line(&self, unit: &str) -> String {
        let f = |v: f64| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") };
        format!(
            "p50 {} / p90 {} / p95 {} / p99 {} / max {} {unit} (mean {}, n = {})",
            f(self.p50),
            f(self.p90),
            f(self.p95),
            f(self.p99),
            f(self.max),
            f(self.mean),
            self.count
        )
    }
}

/// Rows committed per second over the commit window: the number of rows divided by the time
/// from the first commit to the last. `None` for fewer than two distinct commit times.
pub fn completions_per_s(committed_at_ms: &[i64]) -> Option<f64> {
    let first = committed_at_ms.iter().min()?;
    let last = committed_at_ms.iter().max()?;
    let window_ms = last - first;
    (window_ms > 0).then(|| committed_at_ms.len() as f64 * 1000.0 / window_ms as f64)
}

/// How many of `times_ms` fall in each whole second from `origin_ms` (times before it count in
/// second 0); the vector ends at the last second that has one.
pub fn per_second(times_ms: &[i64], origin_ms: i64) -> Vec<u64> {
    let mut buckets: Vec<u64> = Vec::new();
    for &t in times_ms {
        let second = usize::try_from((t - origin_ms).max(0) / 1000).unwrap_or(0);
        if buckets.len() <= second {
            buckets.resize(second + 1, 0);
        }
        buckets[second] += 1;
    }
    buckets
}

/// What was asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub users: usize,
    /// Seconds of sending, when not a fixed count.
    pub duration_s: Option<f64>,
    /// Requests to send, when not a duration.
    pub count: Option<u64>,
    /// Offered requests per second, when fixed.
    pub rate_per_s: Option<f64>,
    /// Records per request (1: the classic single object; more: a JSON array).
    pub records_per_request: usize,
}

/// The requests, as the client saw them.
#[derive(Debug, Clone, Serialize)]
pub struct Requests {
    pub sent: u64,
    /// Answered 200 with the expected body.
    pub accepted: u64,
    /// Anything else: another status, another body, a connection error or a timeout.
    pub rejected: u64,
    /// Rejections by kind, with how often each occurred.
    pub rejections: BTreeMap<String, u64>,
    /// Seconds from the first request sent to the last answer.
    pub load_s: f64,
    /// Requests sent per second over `load_s`.
    pub sent_per_s: f64,
    /// HTTP round trip of every request, milliseconds.
    pub http_latency_ms: Option<Summary>,
}

/// The records, as Postgres saw them.
#[derive(Debug, Clone, Serialize)]
pub struct Records {
    /// Records in accepted requests: each must arrive.
    pub accepted: u64,
    /// Rows of this run found in Postgres.
    pub arrived: u64,
    /// Accepted records with no row when the wait ended.
    pub lost: u64,
    /// Up to 10 of the lost ids.
    pub lost_examples: Vec<String>,
    /// Rows whose request was not accepted (e.g. answered after the client's timeout).
    pub arrived_though_rejected: u64,
    /// Seconds waited after the last answer until every accepted record had arrived (or the wait gave up).
    pub drain_s: f64,
    /// False when the wait ended at `--drain-timeout` with records still missing.
    pub drained: bool,
    /// `latency_ms` of the rows: from the API receiving the request to the row's commit.
    pub end_to_end_latency_ms: Option<Summary>,
    /// Rows committed per second between the first and the last commit.
    pub completions_per_s: Option<f64>,
    /// Seconds between the first and the last commit.
    pub commit_window_s: f64,
    /// The best whole second of commits.
    pub peak_completions_per_s: u64,
}

/// What the archive bucket held of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveCheck {
    pub bucket: String,
    /// Accepted records found in the bucket.
    pub archived: u64,
    /// Accepted records not there when the wait ended.
    pub missing: u64,
    /// Extra copies (Firehose delivers at least once).
    pub duplicates: u64,
    /// Records lost on the way to Postgres that the archive has: they reached the stream, so
    /// they were lost between the stream and the functions (the Kinesis mapping, midstream).
    pub archived_not_in_table: u64,
    /// The delivery stream's buffering interval (records wait up to this long before a write).
    pub buffer_interval_s: u64,
    /// From the API receiving a record to its object being written.
    pub lag_ms: Option<Summary>,
}

/// What the CloudWatch metric said, compared with the rows.
#[derive(Debug, Clone, Serialize)]
pub struct MetricCheck {
    pub namespace: String,
    pub metric: String,
    /// The window read, Unix milliseconds (whole minutes, the metric's period).
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub sample_count: f64,
    pub average_ms: Option<f64>,
    pub maximum_ms: Option<f64>,
    /// True when count and average match the rows within the tolerance.
    pub agrees: bool,
    /// Why it does not agree, or why the check could not be made.
    pub notes: Vec<String>,
}

/// Everything `provision bench` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub stack: String,
    pub run_id: String,
    pub url: String,
    pub started_at_ms: i64,
    pub workload: Workload,
    pub requests: Requests,
    pub records: Records,
    /// `None` when the readback was skipped.
    pub metric: Option<MetricCheck>,
    /// `Err` text of a readback that failed.
    pub metric_error: Option<String>,
    /// The archive's side, when the stack has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveCheck>,
    /// `Err` text of an archive read that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_error: Option<String>,
    /// The run's load against the stream's capacity, when the stream could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

/// What the run wrote to the stream, against what the stream takes.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    pub records_per_s: f64,
    pub bytes_per_s: f64,
    /// `PROVISIONED` or `ON_DEMAND`.
    pub mode: String,
    /// Open shards (provisioned).
    pub shards: Option<i32>,
    /// The share of the shards' write capacity the run took (provisioned).
    pub utilization: Option<f64>,
}

impl Capacity {
    /// `62 % of 2 shards (1240 records/s, 121 KiB/s written)`.
    pub fn line(&self) -> String {
        let load = format!("{:.0} records/s, {:.0} KiB/s written", self.records_per_s, self.bytes_per_s / 1024.0);
        match (self.shards, self.utilization) {
            (Some(shards), Some(share)) => format!(
                "{:.0} % of {shards} shard{} ({load}; a shard takes 1000 records/s and 1 MiB/s){}",
                share * 100.0,
                if shards == 1 { "" } else { "s" },
                if share >= 0.75 { ": at or above the 75 % to scale at" } else { "" }
            ),
            _ => format!("on demand ({load}; AWS scales the stream)"),
        }
    }
}

impl Report {
    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let w = &self.workload;
        let shape = match (w.duration_s, w.count) {
            (_, Some(count)) => format!("{count} requests"),
            (Some(s), None) => format!("{s:.0} s"),
            (None, None) => "?".into(),
        };
        let rate = w.rate_per_s.map(|r| format!(" at {r}/s offered")).unwrap_or_default();
        let batch = if w.records_per_request > 1 {
            format!(", {} records per request (JSON arrays)", w.records_per_request)
        } else {
            String::new()
        };
        let _ = writeln!(out, "Benchmark of stack `{}`, run {} -> {}", self.stack, self.run_id, self.url);
        let _ = writeln!(out, "  workload        {} users, {shape}{rate}{batch}", w.users);
        let r = &self.requests;
        let _ = writeln!(
            out,
            "  requests        {} sent in {:.1} s ({:.1}/s): {} accepted, {} rejected",
            r.sent, r.load_s, r.sent_per_s, r.accepted, r.rejected
        );
        for (kind, n) in &r.rejections {
            let _ = writeln!(out, "                    {n} x {kind}");
        }
        if let Some(http) = &r.http_latency_ms {
            let _ = writeln!(out, "  HTTP latency    {}", http.line("ms"));
        }
        let d = &self.records;
        let _ = writeln!(
            out,
            "  records         {} accepted, {} arrived in Postgres, {} lost{}",
            d.accepted,
            d.arrived,
            d.lost,
            if d.drained {
                format!(" (all in {:.1} s after the last answer)", d.drain_s)
            } else {
                format!(" (gave up waiting after {:.1} s)", d.drain_s)
            }
        );
        if !d.lost_examples.is_empty() {
            let _ = writeln!(out, "                    lost, e.g.: {}", d.lost_examples.join(", "));
        }
        if d.arrived_though_rejected > 0 {
            let _ = writeln!(
                out,
                "                    {} rows arrived whose request was rejected",
                d.arrived_though_rejected
            );
        }
        if let Some(e2e) = &d.end_to_end_latency_ms {
            let _ = writeln!(out, "  end-to-end      {}", e2e.line("ms"));
        }
        match (&self.archive, &self.archive_error) {
            (Some(a), _) => {
                let lag = a.lag_ms.as_ref().map_or("-".to_string(), |l| l.line("ms"));
                let _ = writeln!(
                    out,
                    "  archive lag     {lag} (post to object in s3://{}; buffering {} s)",
                    a.bucket, a.buffer_interval_s
                );
                let _ = writeln!(
                    out,
                    "                    {} archived, {} missing, {} duplicates",
                    a.archived, a.missing, a.duplicates
                );
                if a.archived_not_in_table > 0 {
                    let _ = writeln!(
                        out,
                        "                    {} of the records lost are in the archive: they reached the stream but \
                         never the table (lost between the Kinesis mapping and midstream)",
                        a.archived_not_in_table
                    );
                }
            }
            (None, Some(error)) => {
                let _ = writeln!(out, "  archive         could not be read: {error}");
            }
            (None, None) => {}
        }
        if let Some(capacity) = &self.capacity {
            let _ = writeln!(out, "  stream          {}", capacity.line());
        }
        match d.completions_per_s {
            Some(rate) => {
                let _ = writeln!(
                    out,
                    "  completions     {rate:.1}/s sustained ({} rows over {:.1} s of commits; best second {})",
                    d.arrived, d.commit_window_s, d.peak_completions_per_s
                );
            }
            None => {
                let _ = writeln!(out, "  completions     (too few commits to measure a rate)");
            }
        }
        match (&self.metric, &self.metric_error) {
            (Some(m), _) => {
                let avg = m.average_ms.map(|a| format!("{a:.1}")).unwrap_or_else(|| "-".into());
                let max = m.maximum_ms.map(|a| format!("{a:.0}")).unwrap_or_else(|| "-".into());
                let verdict = if m.agrees { "agrees with Postgres" } else { "DISAGREES with Postgres" };
                let _ = writeln!(
                    out,
                    "  CloudWatch      {}/{}: {} samples, average {avg} ms, max {max} ms: {verdict}",
                    m.namespace, m.metric, m.sample_count
                );
                for note in &m.notes {
                    let _ = writeln!(out, "                    {note}");
                }
            }
            (None, Some(error)) => {
                let _ = writeln!(out, "  CloudWatch      could not read the metric: {error}");
            }
            (None, None) => {
                let _ = writeln!(out, "  CloudWatch      not read (no rows to compare with)");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks_like_numpy() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 100.0), Some(10.0));
        assert_eq!(percentile(&v, 50.0), Some(5.5));
        // numpy.percentile(range(1, 11), 90) == 9.1, 99 -> 9.91
        assert!((percentile(&v, 90.0).unwrap() - 9.1).abs() < 1e-9);
        assert!((percentile(&v, 99.0).unwrap() - 9.91).abs() < 1e-9);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 3.0], 150.0), Some(3.0));
    }

    #[test]
    fn summary_sorts_and_ignores_nan() {
        let s = Summary::of(&[30.0, 10.0, f64::NAN, 20.0, 40.0]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!((s.min, s.max, s.mean), (10.0, 40.0, 25.0));
        assert_eq!(s.p50, 25.0);
        assert!((s.p99 - 39.7).abs() < 1e-9);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn completions_are_rows_over_the_commit_window() {
        assert_eq!(completions_per_s(&[1_000, 1_500, 3_000, 2_000]), Some(2.0));
        assert_eq!(completions_per_s(&[5_000, 5_000]), None);
        assert_eq!(completions_per_s(&[]), None);
    }

    #[test]
    fn per_second_buckets_from_the_origin() {
        assert_eq!(per_second(&[1_000, 1_999, 2_000, 4_500, 500], 1_000), vec![3, 1, 0, 1]);
        assert!(per_second(&[], 0).is_empty());
    }

    #[test]
    fn text_report_names_every_figure() {
        let summary = Summary::of(&[1.0, 2.0, 3.0]).unwrap();
        let report = Report {
            stack: "bench".into(),
            run_id: "r1".into(),
            url: "http://x/".into(),
            started_at_ms: 0,
            workload: Workload {
                users: 10,
                duration_s: Some(60.0),
                count: None,
                rate_per_s: None,
                records_per_request: 1,
            },
            requests: Requests {
                sent: 10,
                accepted: 9,
                rejected: 1,
                rejections: [("HTTP 502".to_string(), 1)].into(),
                load_s: 1.0,
                sent_per_s: 10.0,
                http_latency_ms: Some(summary.clone()),
            },
            records: Records {
                accepted: 9,
                arrived: 8,
                lost: 1,
                lost_examples: vec!["r1-3".into()],
                arrived_though_rejected: 0,
                drain_s: 120.0,
                drained: false,
                end_to_end_latency_ms: Some(summary),
                completions_per_s: Some(4.0),
                commit_window_s: 2.0,
                peak_completions_per_s: 5,
            },
            metric: None,
            metric_error: Some("boom".into()),
            archive: None,
            archive_error: None,
            capacity: Some(Capacity {
                records_per_s: 1240.0,
                bytes_per_s: 124_000.0,
                mode: "PROVISIONED".into(),
                shards: Some(2),
                utilization: Some(0.62),
            }),
        };
        let text = report.text();
        for needle in [
            "62 % of 2 shards (1240 records/s, 121 KiB/s written",
            "10 users, 60 s",
            "10 sent in 1.0 s (10.0/s): 9 accepted, 1 rejected",
            "1 x HTTP 502",
            "HTTP latency    p50 2.0 / p90",
            "1 lost (gave up waiting after 120.0 s)",
            "lost, e.g.: r1-3",
            "completions     4.0/s sustained",
            "could not read the metric: boom",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in\n{text}");
        }
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["records"]["lost"], 1);
        assert_eq!(json["requests"]["http_latency_ms"]["p50"], 2.0);
    }
}
