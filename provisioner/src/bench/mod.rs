//! `provision bench`: load-tests the deployed pipeline the way the classic sample's k6 test does
//! (10 virtual users for 60 s, each posting `{"id", "message", "timestamp"}`), then waits for the
//! records to reach Postgres and reports what the client and the rows saw.
//!
//! The parts: [`load`] runs the virtual users and checks every answer; [`drain`] watches rows
//! arrive (progress on stderr) and reads them back; [`report`] computes the percentiles and
//! rates and prints them (text or JSON); [`metric`] reads the CloudWatch metric back and
//! compares; [`plot`] draws the SVG. This file reads the stack's state and runs them in order.
//!
//! A run's records carry ids `<run id>-<n>`, with a run id unique per run, so runs never mix and
//! the rows of one run are found by prefix.

pub mod archive;
pub mod arrays;
pub mod drain;
pub mod load;
pub mod metric;
pub mod plot;
pub mod report;

use crate::cloud::Cloud;
use crate::commands::Context;
use crate::engine::state::StateStore;
use crate::http::HttpClient;
use anyhow::{bail, Context as _, Result};
use drain::Database;
use load::{Counters, Outcome, Plan, Stop};
use record::now_ms;
use report::{Records, Report, Requests, Summary, Workload};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `provision bench` (see `provision bench --help`).
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Concurrent virtual users.
    pub users: usize,
    /// How long to send for (ignored when `count` is set).
    pub duration: Duration,
    /// Send exactly this many requests instead.
    pub count: Option<u64>,
    /// Offered requests per second across all users; `None`: back to back.
    pub rate: Option<f64>,
    /// Records per request.
    pub batch: usize,
    /// Longest wait for the accepted records to reach Postgres after the load.
    pub drain_timeout: Duration,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
    /// Where to write the SVG plot.
    pub plot: Option<PathBuf>,
    /// Longest wait for the CloudWatch metric to show every row.
    pub metric_wait: Duration,
}

/// Parses `60`, `60s`, `1.5s`, `500ms` or `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let units = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86_400.0)];
    let Some((number, scale)) = units.iter().find_map(|(unit, scale)| Some((text.strip_suffix(unit)?, *scale))) else {
        return Err(match text.parse::<f64>() {
            // A bare number is ambiguous (`--since 10`: seconds? minutes?): it is refused.
            Ok(_) => format!("`{text}` has no unit: write {text}s, {text}m, {text}h or {text}d"),
            Err(_) => format!("`{text}` is not a duration: use e.g. 60s, 500ms, 2m, 1h or 2d"),
        });
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 && (n * scale).is_finite() => Ok(Duration::from_secs_f64(n * scale)),
        _ => Err(format!("`{text}` is not a duration: use e.g. 60s, 500ms, 2m, 1h or 2d")),
    }
}

/// Where the deployed stack is, from its state.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub url: String,
    pub db: Database,
    /// The Kinesis stream's name.
    pub stream: String,
    /// The archive, when the stack has one.
    pub archive: Option<archive::Archive>,
    /// Where `downstream` puts its latency metric (its `METRIC_NAMESPACE`).
    pub metric_namespace: String,
}

/// Reads the API URL and the database from the stack's state (under a shared lock, so a
/// concurrent `up` or `down` is reported rather than raced; nothing is written).
pub async fn deployed(ctx: &Context) -> Result<Deployed> {
    let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    let not_up = || format!("stack `{}` is not up: run `provision up` first", ctx.stack);
    if state.resources.is_empty() {
        bail!("{} (nothing recorded in {})", not_up(), ctx.state.location(&ctx.stack));
    }
    let output = |resource: &str, name: &str| {
        state
            .resources
            .get(resource)
            .and_then(|r| r.outputs.get(name))
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .with_context(|| format!("{}: the state has no `{name}` of `{resource}`", not_up()))
    };
    let url = output("api", "url")?;
    let stream = output("events", "name")?;
    let mut host = output("database", "address")?;
    if host == "localhost" {
        host = "127.0.0.1".into(); // the local cluster listens on IPv4 only
    }
    let port = output("database", "port")?;
    let port = port.parse().with_context(|| format!("the recorded database port {port:?} is not a port"))?;
    // The database and user as the stack declared them (its RDS instance's).
    let declared = |resource: &str, property: &str| {
        let value = state.resources.get(resource).and_then(|r| r.props.get(property)?.as_str().map(str::to_owned));
        value.with_context(|| format!("{}: the state has no `{property}` of `{resource}`", not_up()))
    };
    let downstream_environment = |name: &str| {
        let environment = state.resources.get("downstream")?.props.get("environment")?;
        environment.get(name)?.as_str().map(str::to_owned)
    };
    let db = Database {
        host,
        port,
        name: declared("database", "db_name")?,
        user: declared("database", "master_username")?,
        ca_pem: downstream_environment("DB_CA_PEM"),
        local: ctx.target.is_local(),
    };
    let metric_namespace = downstream_environment("METRIC_NAMESPACE")
        .with_context(|| format!("{}: the state has no METRIC_NAMESPACE of `downstream`", not_up()))?;
    let archive = state.resources.get("archive").and_then(|bucket| {
        let interval = state.resources.get("archive-delivery")?.props.get("buffer_interval_s")?.as_u64()?;
        Some(archive::Archive {
            bucket: bucket.outputs.get("name")?.as_str()?.to_string(),
            buffer_interval: Duration::from_secs(interval),
        })
    });
    Ok(Deployed { url, db, stream, archive, metric_namespace })
}

fn validate(options: &BenchOptions) -> Result<()> {
    if options.users == 0 || options.users > 10_000 {
        bail!("--users must be 1..=10000, not {}", options.users);
    }
    if options.batch == 0 || options.batch > record::MAX_RECORDS_PER_REQUEST {
        bail!(
            "--batch must be 1..={} (the API's limit per request), not {}",
            record::MAX_RECORDS_PER_REQUEST,
            options.batch
        );
    }
    if let Some(rate) = options.rate {
        if !(rate > 0.0 && rate.is_finite()) {
            bail!("--rate must be a positive number of requests per second, not {rate}");
        }
    }
    match options.count {
        Some(0) => bail!("--count must be at least 1"),
        None if options.duration.is_zero() => bail!("--duration must be more than 0 s"),
        _ => Ok(()),
    }
}

/// A rejection's kind without the record ids in it, so that rejections count by kind.
pub fn rejection_kind(message: &str, run_id: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(run_id) {
        out.push_str(&rest[..at]);
        out.push_str("<id>");
        rest = rest[at + run_id.len()..].trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    }
    out.push_str(rest);
    out.chars().take(160).collect()
}

/// `provision bench`.
pub async fn run(ctx: &Context, options: BenchOptions) -> Result<()> {
    match ctx.program.name() {
        "pipeline" => {}
        "mapreduce" => return arrays::run(ctx, options.count.unwrap_or(3) as usize, options.users).await,
        other => bail!("program `{other}` has no benchmark"),
    }
    validate(&options)?;
    let deployed = deployed(ctx).await?;
    let client = Arc::new(drain::connect(&deployed.db).await?);
    let run_id = format!("bench-{}-{}", now_ms(), std::process::id());
    let stop = match options.count {
        Some(count) => Stop::Count(count),
        None => Stop::After(options.duration),
    };
    let plan = Arc::new(Plan {
        url: deployed.url.clone(),
        run_id: run_id.clone(),
        users: options.users,
        stop,
        rate: options.rate,
        records_per_request: options.batch,
        request_timeout: options.request_timeout,
    });
    eprintln!(
        "bench: {} users, {}{}, {} record(s) per request -> {}\n       run {run_id}; rows from {}",
        options.users,
        match stop {
            Stop::After(d) => format!("{:.1} s", d.as_secs_f64()),
            Stop::Count(n) => format!("{n} requests"),
        },
        options.rate.map(|r| format!(" at {r}/s")).unwrap_or_default(),
        options.batch,
        deployed.url,
        deployed.db
    );

    let http = HttpClient::new()
        .with_auth(crate::commands::caller_auth(ctx, &Cloud::connect(ctx.target.clone()).await?).await?);
    let counters = Arc::new(Counters::default());
    let monitor = tokio::spawn(drain::progress(client.clone(), run_id.clone(), counters.clone()));
    let started_at_ms = now_ms();
    let started = Instant::now();
    let mut outcomes = load::run(plan.clone(), http, counters.clone()).await;
    let load_s = started.elapsed().as_secs_f64();
    monitor.abort();
    outcomes.sort_by_key(|o| o.index);

    let accepted_ids: Vec<String> = outcomes
        .iter()
        .filter(|o| o.result.is_ok())
        .flat_map(|o| load::request_ids(&run_id, o.index, options.batch))
        .collect();
    let drained = if accepted_ids.is_empty() {
        drain::Drained { complete: true, waited: Duration::ZERO }
    } else {
        eprintln!(
            "bench: load done in {load_s:.1} s; waiting up to {:.0} s for {} accepted records to reach Postgres",
            options.drain_timeout.as_secs_f64(),
            accepted_ids.len()
        );
        drain::wait(&client, &run_id, &accepted_ids, options.drain_timeout).await?
    };
    let rows = drain::rows(&client, &run_id).await?;

    let mut report = build_report(
        ctx,
        &options,
        &deployed,
        &run_id,
        started_at_ms,
        load_s,
        &outcomes,
        &accepted_ids,
        &rows,
        drained,
    );
    report.capacity = capacity(ctx, &deployed, report.records.accepted, &run_id, load_s).await;
    if !rows.is_empty() {
        match check_metric(ctx, &options, &deployed.metric_namespace, &rows).await {
            Ok(check) => report.metric = Some(check),
            Err(e) => report.metric_error = Some(format!("{e:#}")),
        }
    }
    if let (Some(archived), false) = (&deployed.archive, accepted_ids.is_empty()) {
        let wait = archived.buffer_interval + Duration::from_secs(30);
        eprintln!("bench: waiting up to {:.0} s for the records in the archive", wait.as_secs_f64());
        let cloud = crate::cloud::Cloud::connect(ctx.target.clone()).await?;
        let arrived: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        let lost: HashSet<String> = drain::missing(&accepted_ids, &arrived).into_iter().collect();
        match archive::check(&cloud, archived, &run_id, &accepted_ids, &lost, wait).await {
            Ok(check) => report.archive = Some(check),
            Err(e) => report.archive_error = Some(format!("{e:#}")),
        }
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report).context("serializing the report")?);
    } else {
        print!("{}", report.text());
    }
    if let Some(path) = &options.plot {
        write_plot(path, &report, &outcomes, &rows, options.batch)?;
        eprintln!("bench: wrote {}", path.display());
    }

    if report.requests.accepted == 0 {
        bail!(
            "no request was accepted ({} sent): is stack `{}` up and answering? Try `provision plan`",
            report.requests.sent,
            ctx.stack,
        );
    }
    if report.records.lost > 0 {
        let archived = report.archive.as_ref().map_or(0, |a| a.archived_not_in_table);
        let archived = match archived {
            0 => String::new(),
            n => format!(
                " {n} of them are in the archive: they reached the stream but never the table, so they were lost \
                 between the Kinesis mapping and midstream."
            ),
        };
        bail!(
            "{} accepted records did not reach Postgres within --drain-timeout {:.0} s.{archived} Raise the timeout if \
             rows were still arriving, else look for them in the dead-letter queue (`provision outputs`) and the \
             functions' logs",
            report.records.lost,
            options.drain_timeout.as_secs_f64()
        );
    }
    Ok(())
}

/// The run's writes against the stream's capacity: records accepted over the load's seconds, each
/// as the JSON line `upstream` puts on the stream. `None` when the stream cannot be read.
async fn capacity(
    ctx: &Context,
    deployed: &Deployed,
    records: u64,
    run_id: &str,
    load_s: f64,
) -> Option<report::Capacity> {
    let cloud = Cloud::connect(ctx.target.clone()).await.ok()?;
    let summary = cloud.kinesis.describe_stream_summary().stream_name(&deployed.stream).send().await.ok()?;
    let summary = summary.stream_description_summary?;
    let mode = summary.stream_mode_details.as_ref().map_or("PROVISIONED", |m| m.stream_mode.as_str()).to_string();
    let sample = record::StampedRecord {
        id: load::record_id(run_id, 0, 0, 1),
        message: "bench".into(),
        timestamp: now_ms() / 1000,
        received_at_ms: now_ms(),
    };
    let record_bytes = serde_json::to_vec(&sample).ok()?.len() as f64 + 1.0;
    let records_per_s = records as f64 / load_s.max(1e-9);
    let bytes_per_s = records_per_s * record_bytes;
    let shards = (mode == "PROVISIONED").then_some(summary.open_shard_count);
    let utilization = shards.map(|s| declaration::capacity::utilization(records_per_s, bytes_per_s, s));
    Some(report::Capacity { records_per_s, bytes_per_s, mode, shards, utilization })
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    ctx: &Context,
    options: &BenchOptions,
    deployed: &Deployed,
    run_id: &str,
    started_at_ms: i64,
    load_s: f64,
    outcomes: &[Outcome],
    accepted_ids: &[String],
    rows: &[drain::Row],
    drained: drain::Drained,
) -> Report {
    let accepted = outcomes.iter().filter(|o| o.result.is_ok()).count() as u64;
    let mut rejections: BTreeMap<String, u64> = BTreeMap::new();
    for outcome in outcomes {
        if let Err(message) = &outcome.result {
            *rejections.entry(rejection_kind(message, run_id)).or_default() += 1;
        }
    }
    let http: Vec<f64> = outcomes.iter().map(|o| o.http_ms).collect();
    let arrived: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    let lost = drain::missing(accepted_ids, &arrived);
    let accepted_set: HashSet<&String> = accepted_ids.iter().collect();
    let committed: Vec<i64> = rows.iter().map(|r| r.committed_at_ms).collect();
    let latencies: Vec<f64> = rows.iter().map(|r| r.latency_ms as f64).collect();
    let window_ms = match (committed.iter().min(), committed.iter().max()) {
        (Some(first), Some(last)) => last - first,
        _ => 0,
    };
    Report {
        stack: ctx.stack.clone(),
        run_id: run_id.to_string(),
        url: deployed.url.clone(),
        started_at_ms,
        workload: Workload {
            users: options.users,
            duration_s: options.count.is_none().then_some(options.duration.as_secs_f64()),
            count: options.count,
            rate_per_s: options.rate,
            records_per_request: options.batch,
        },
        requests: Requests {
            sent: outcomes.len() as u64,
            accepted,
            rejected: outcomes.len() as u64 - accepted,
            rejections,
            load_s,
            sent_per_s: outcomes.len() as f64 / load_s.max(1e-9),
            http_latency_ms: Summary::of(&http),
        },
        records: Records {
            accepted: accepted_ids.len() as u64,
            arrived: rows.len() as u64,
            lost: lost.len() as u64,
            lost_examples: lost.into_iter().take(10).collect(),
            arrived_though_rejected: rows.iter().filter(|r| !accepted_set.contains(&r.id)).count() as u64,
            drain_s: drained.waited.as_secs_f64(),
            drained: drained.complete,
            end_to_end_latency_ms: Summary::of(&latencies),
            completions_per_s: report::completions_per_s(&committed),
            commit_window_s: window_ms as f64 / 1000.0,
            peak_completions_per_s: report::per_second(&committed, started_at_ms).into_iter().max().unwrap_or(0),
        },
        metric: None,
        metric_error: None,
        archive: None,
        capacity: None,
        archive_error: None,
    }
}

async fn check_metric(
    ctx: &Context,
    options: &BenchOptions,
    namespace: &str,
    rows: &[drain::Row],
) -> Result<report::MetricCheck> {
    let first = rows.iter().map(|r| r.received_at_ms).min().unwrap_or_default();
    let last = rows.iter().map(|r| r.committed_at_ms).max().unwrap_or_default();
    let average = rows.iter().map(|r| r.latency_ms as f64).sum::<f64>() / rows.len().max(1) as f64;
    let cloud = Cloud::connect(ctx.target.clone()).await.context("connecting to CloudWatch")?;
    metric::check(&cloud, namespace, (first, last), rows.len() as u64, Some(average), options.metric_wait).await
}

fn write_plot(path: &PathBuf, report: &Report, outcomes: &[Outcome], rows: &[drain::Row], batch: usize) -> Result<()> {
    let points: Vec<(i64, i64)> = rows.iter().map(|r| (r.committed_at_ms, r.latency_ms)).collect();
    let sent: Vec<i64> = outcomes.iter().flat_map(|o| std::iter::repeat_n(o.sent_at_ms, batch)).collect();
    let e2e = report.records.end_to_end_latency_ms.as_ref();
    let title = format!("provision bench: stack `{}`, run {}", report.stack, report.run_id);
    let subtitle = format!(
        "{} users, {} record(s) per request: {} records sent, {} arrived, {} lost; end-to-end p50 {} ms, p99 {} ms; \
         {:.1} completions/s",
        report.workload.users,
        report.workload.records_per_request,
        sent.len(),
        report.records.arrived,
        report.records.lost,
        e2e.map_or("-".into(), |s| format!("{:.0}", s.p50)),
        e2e.map_or("-".into(), |s| format!("{:.0}", s.p99)),
        report.records.completions_per_s.unwrap_or(0.0)
    );
    let svg = plot::render(&plot::PlotInput {
        title,
        subtitle,
        origin_ms: report.started_at_ms,
        rows: &points,
        sent_ms: &sent,
    });
    std::fs::write(path, svg).with_context(|| format!("writing the plot {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert!(parse_duration("10").unwrap_err().contains("has no unit: write 10s, 10m"), "a bare number is refused");
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 1.5s "), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn rejections_count_by_kind_not_by_record() {
        let run = "bench-1700000000000-42";
        assert_eq!(
            rejection_kind(&format!("HTTP 500: putting record \"{run}-17\" on Kinesis stream s"), run),
            "HTTP 500: putting record \"<id>\" on Kinesis stream s"
        );
        assert_eq!(rejection_kind(&format!("{run}-1-2 and {run}-3"), run), "<id> and <id>");
        assert_eq!(rejection_kind("HTTP 502: bad gateway", run), "HTTP 502: bad gateway");
    }

    #[test]
    fn options_are_checked() {
        let ok = BenchOptions {
            users: 10,
            duration: Duration::from_secs(60),
            count: None,
            rate: None,
            batch: 1,
            drain_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            plot: None,
            metric_wait: Duration::from_secs(30),
        };
        assert!(validate(&ok).is_ok());
        assert!(validate(&BenchOptions { users: 0, ..ok.clone() }).is_err());
        assert!(validate(&BenchOptions { batch: 501, ..ok.clone() }).unwrap_err().to_string().contains("1..=500"));
        assert!(validate(&BenchOptions { rate: Some(0.0), ..ok.clone() }).is_err());
        assert!(validate(&BenchOptions { count: Some(0), ..ok.clone() }).is_err());
        assert!(validate(&BenchOptions { duration: Duration::ZERO, ..ok.clone() }).is_err());
        assert!(validate(&BenchOptions { duration: Duration::ZERO, count: Some(5), ..ok }).is_ok());
    }
}
