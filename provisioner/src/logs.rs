//! `provision logs`: the CloudWatch Logs (`/aws/lambda/<function>`) of the functions the stack's
//! program declares, merged in time order, each line prefixed by the function's short name
//! (coloured on a terminal), or as JSON lines. `--follow` keeps polling; `watch` uses the same follower to show errors.
//!
//! Lambda's own START/END/REPORT lines are left out unless asked for: each function logs one
//! line per invocation (records in, written, rejected or sent to the dead-letter queue, with the
//! reason), and those tell the story of a record.

use crate::aws::errors;
use crate::cloud::Cloud;
use crate::commands::{self, Context};
use crate::programs::DeclaredFunction;
use anyhow::{bail, Result};
use serde_json::json;
use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::Duration;

/// What to show.
#[derive(Debug, Clone)]
pub struct LogsOptions {
    /// Short names (`upstream`...); empty: all the program's.
    pub functions: Vec<String>,
    pub follow: bool,
    /// How far back to start.
    pub since: Duration,
    /// Only lines containing this text.
    pub filter: Option<String>,
    /// Also Lambda's START/END/REPORT lines.
    pub platform: bool,
}

/// One log line of one function.
#[derive(Debug, Clone)]
pub struct Line {
    pub function: String,
    pub timestamp_ms: i64,
    pub message: String,
    id: String,
}

impl Line {
    /// True for warnings and errors (what `watch` shows between swaps).
    pub fn is_problem(&self) -> bool {
        let level = self.message.trim_start();
        level.starts_with("WARN") || level.starts_with("ERROR") || self.message.contains("Task timed out")
    }
}

/// Reads the functions' logs from a point in time on, without repeating a line.
pub struct Follower {
    groups: Vec<(String, String)>,
    since_ms: i64,
    seen: HashSet<String>,
    filter: Option<String>,
    platform: bool,
}

impl Follower {
    /// Follows `functions` from `since` ago; lines are labelled with their short names.
    pub fn new(functions: &[DeclaredFunction], since: Duration, filter: Option<String>, platform: bool) -> Self {
        let groups = functions.iter().map(|f| (f.binary.clone(), format!("/aws/lambda/{}", f.name))).collect();
        Self { groups, since_ms: now_ms() - since.as_millis() as i64, seen: HashSet::new(), filter, platform }
    }

    /// The lines logged since the last call, in time order.
    pub async fn next_lines(&mut self, cloud: &Cloud) -> Result<Vec<Line>> {
        let reads = self.groups.iter().map(|(function, group)| read_group(cloud, function, group, self.since_ms));
        let mut lines: Vec<Line> = Vec::new();
        for read in futures::future::join_all(reads).await {
            lines.extend(read?);
        }
        lines.retain(|l| self.seen.insert(l.id.clone()));
        lines.retain(|l| self.platform || !is_platform(&l.message));
        if let Some(filter) = &self.filter {
            lines.retain(|l| l.message.contains(filter.as_str()));
        }
        lines.sort_by_key(|l| l.timestamp_ms);
        if let Some(last) = lines.last() {
            // Overlap by a second: late-arriving lines with earlier stamps are caught; `seen` drops repeats.
            self.since_ms = self.since_ms.max(last.timestamp_ms - 1000);
        }
        Ok(lines)
    }
}

/// `provision logs`.
pub async fn run(ctx: &Context, options: LogsOptions) -> Result<()> {
    let json_lines = ctx.json;
    let cloud = Cloud::connect(ctx.target.clone()).await?;
    let functions = chosen(commands::declared_functions(ctx, &cloud).await?, &options.functions)?;
    let mut follower = Follower::new(&functions, options.since, options.filter.clone(), options.platform);
    let colour = !json_lines && std::io::stdout().is_terminal();
    loop {
        for line in follower.next_lines(&cloud).await? {
            print_line(&line, json_lines, colour);
        }
        if !options.follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// The functions asked for (by short name), checked; all of them when none are named.
fn chosen(declared: Vec<DeclaredFunction>, asked: &[String]) -> Result<Vec<DeclaredFunction>> {
    if asked.is_empty() {
        return Ok(declared);
    }
    let names: Vec<&str> = declared.iter().map(|f| f.binary.as_str()).collect();
    for function in asked {
        if !names.contains(&function.as_str()) {
            bail!("there is no function `{function}`: the stack's functions are {}", names.join(", "));
        }
    }
    Ok(declared.into_iter().filter(|f| asked.contains(&f.binary)).collect())
}

/// Prints one line: `12:00:01.234 midstream  INFO batch done records=3 ...`, or a JSON object.
pub fn print_line(line: &Line, json_lines: bool, colour: bool) {
    if json_lines {
        println!(
            "{}",
            json!({ "function": line.function, "timestamp_ms": line.timestamp_ms, "message": line.message })
        );
        return;
    }
    let name = format!("{:<10}", line.function);
    let name = if colour { format!("\x1b[{}m{name}\x1b[0m", colour_of(&line.function)) } else { name };
    println!("{} {name} {}", clock(line.timestamp_ms), line.message);
}

fn colour_of(function: &str) -> u8 {
    match function {
        "upstream" => 36,
        "midstream" => 35,
        _ => 33,
    }
}

async fn read_group(cloud: &Cloud, function: &str, group: &str, since_ms: i64) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    let mut previous: Option<String> = None;
    loop {
        let page = cloud
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(since_ms)
            .set_next_token(token.take())
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            // A function never invoked has no log group yet.
            Err(e) if errors::is_not_found(&e) => return Ok(lines),
            Err(e) => return Err(errors::context(format!("reading the logs of {function} ({group})"), e)),
        };
        for event in page.events() {
            lines.push(Line {
                function: function.to_string(),
                timestamp_ms: event.timestamp().unwrap_or_default(),
                message: concise(event.message().unwrap_or_default()),
                id: event.event_id().map(str::to_string).unwrap_or_else(|| {
                    format!("{}:{}", event.timestamp().unwrap_or_default(), event.message().unwrap_or_default())
                }),
            });
        }
        // A page may be empty and still have a next one: follow the token until it stops or repeats.
        match page.next_token() {
            Some(next) if Some(next) != previous.as_deref() => {
                previous = Some(next.to_string());
                token = Some(next.to_string());
            }
            _ => return Ok(lines),
        }
    }
}

/// The line without the runtime's span prefix: ` INFO Lambda runtime invoke{requestId="…"}: midstream: batch done …`
/// becomes `INFO batch done …`.
fn concise(message: &str) -> String {
    let message = message.trim_end();
    let level = message.split_whitespace().next().unwrap_or_default();
    if !matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") {
        return message.trim_start().to_string();
    }
    let rest = message.split_once("}: ").map_or(message, |(_, rest)| rest);
    let rest = rest.split_once(": ").filter(|(target, _)| !target.contains(' ')).map_or(rest, |(_, rest)| rest);
    format!("{level} {rest}")
}

fn is_platform(message: &str) -> bool {
    ["START RequestId", "END RequestId", "REPORT RequestId", "INIT_START"].iter().any(|p| message.starts_with(p))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in milliseconds.
fn clock(ms: i64) -> String {
    let day_ms = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (day_ms / 3_600_000, day_ms / 60_000 % 60, day_ms / 1000 % 60, day_ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_lines_are_made_concise() {
        let raw = " INFO Lambda runtime invoke{requestId=\"00ede1ee\"}: midstream: batch done records=1 written=1\n";
        assert_eq!(concise(raw), "INFO batch done records=1 written=1");
        assert_eq!(concise("plain text"), "plain text");
        assert!(is_platform("REPORT RequestId: x\tDuration: 2 ms"));
        assert_eq!(clock(3_723_004), "01:02:03.004");
    }

    #[test]
    fn warnings_and_errors_are_problems() {
        let line =
            |message: &str| Line { function: "f".into(), timestamp_ms: 0, message: message.into(), id: "1".into() };
        assert!(line("WARN dead letter sent").is_problem());
        assert!(line("ERROR publishing failed").is_problem());
        assert!(!line("INFO batch done").is_problem());
    }

    #[test]
    fn unknown_functions_are_refused_with_the_list() {
        let declared: Vec<DeclaredFunction> = ["upstream", "midstream", "downstream"]
            .iter()
            .map(|f| DeclaredFunction { id: f.to_string(), binary: f.to_string(), name: format!("s-{f}") })
            .collect();
        let err = chosen(declared.clone(), &["sidestream".into()]).unwrap_err().to_string();
        assert!(err.contains("upstream, midstream, downstream"), "{err}");
        assert_eq!(chosen(declared.clone(), &[]).unwrap().len(), 3);
        assert_eq!(chosen(declared, &["midstream".into()]).unwrap()[0].name, "s-midstream");
    }
}
