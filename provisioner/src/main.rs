//! `provision`: stand up and iterate on serverless stacks declared in Rust (programs) without
//! CloudFormation. This file parses the command line, dispatches, and prints errors; nothing else.

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use provisioner::artifact::BuildConfig;
use provisioner::cloud::Target;
use provisioner::commands::{self, Context, DownOptions, UpOptions};
use provisioner::engine::state::local::LocalFolder;
use provisioner::engine::state::StateBackend;
use provisioner::programs::external::Project;
use provisioner::programs::Program;
use provisioner::remote_state::{S3State, StateUrl};
use provisioner::settings::Settings;
use provisioner::watch::WatchOptions;
use std::path::PathBuf;
use std::sync::Arc;

/// Stand up, update and tear down serverless stacks declared in Rust by calling the AWS APIs
/// directly: no CloudFormation, no CDK, seconds per change. A stack is an instance of a program:
/// `pipeline` (API -> Kinesis -> DynamoDB -> Postgres, the default) or `mapreduce` (the
/// distributed adder); `provision programs` lists them.
///
/// Works against real AWS (standard credentials, region and profile chain) or any emulator
/// (`--endpoint-url http://127.0.0.1:4566`, or AWS_ENDPOINT_URL). State is kept in
/// state/<stack>.json, or in S3 for a team (`--state-url s3://BUCKET/PREFIX`, locked and
/// fenced); every resource is named `<stack>-...` and tagged with the stack's mark, so a lost
/// state is re-adopted, and nothing without the mark is ever changed or deleted.
///
/// Typical loop:
///   provision local start                  # MiniStack + PostgreSQL on this machine
///   provision --endpoint-url http://127.0.0.1:4566 plan
///   provision --endpoint-url http://127.0.0.1:4566 up --yes
///   provision --endpoint-url http://127.0.0.1:4566 --program mapreduce --stack adder up --yes
///   provision --endpoint-url http://127.0.0.1:4566 down --yes
#[derive(Parser)]
#[command(name = "provision", version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Stack name: prefixes every resource name and names the state file.
    #[arg(long, global = true, env = "PROVISION_STACK", default_value = "demo")]
    stack: String,
    /// The program the stack is an instance of, one of those the project's provision.json names
    /// (`provision programs` lists them). Default: the one the stack's state records, or the
    /// project's first for a new stack. A stack is managed by the program that made it: another
    /// one is refused.
    #[arg(long, global = true, env = "PROVISION_PROGRAM")]
    program: Option<String>,
    /// Send every AWS call to this endpoint (an emulator). Unset: real AWS.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// AWS region (default: from AWS_REGION or the profile; us-east-1 on an emulator).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Named profile from ~/.aws/config.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Folder holding state files and locks (when the state is not remote).
    #[arg(long, global = true, default_value = "state")]
    state_dir: PathBuf,
    /// Keep the stack's state in S3, shared by a team and CI: `s3://BUCKET/PREFIX` (also
    /// "state_url" in the settings file). The lock is an object written only if absent, every
    /// write is conditional on the last one read (see `provision state --help`).
    #[arg(long, global = true, env = "PROVISION_STATE_URL")]
    state_url: Option<String>,
    /// Stack settings (JSON; see provisioner/src/settings.rs). Default: stack.json if present.
    #[arg(long, global = true)]
    settings: Option<PathBuf>,
    /// Cargo profile for the function binaries (default: dev on an emulator, release on AWS).
    #[arg(long, global = true)]
    build_profile: Option<String>,
    /// How to build the function binaries: `portable` links against Lambda's glibc 2.34 with
    /// cargo-zigbuild (scripts/build-tools installs it), `native` uses the host toolchain.
    /// Default: native on an emulator, portable on AWS.
    #[arg(long, global = true, value_parser = ["native", "portable"])]
    lambda_build: Option<String>,
    /// Print plans, outputs and reports as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Show what `up` would change (after refreshing from the cloud); change nothing, in the
    /// cloud or on disk. Fails like `up` would when a same-named resource is not the stack's.
    Plan {
        /// Use the function zips already built instead of running cargo.
        #[arg(long)]
        skip_build: bool,
        /// Plan as if these resources (ids as in the plan) were taken over, as `up --adopt` does.
        #[arg(long, value_name = "ID")]
        adopt: Vec<String>,
    },
    /// Create or update every resource so the cloud matches the declared stack.
    ///
    /// Every resource the stack creates carries its mark: the tags provision:stack=<stack> and
    /// provision:origin=<checkout>. An existing resource under a declared name is adopted only
    /// with that mark; without it, `up` stops before any change and names it. `--adopt ID` takes
    /// such a resource over on purpose (it gets the mark; `up` then converges it and `down`
    /// deletes it).
    Up {
        /// Apply without asking (required when there is no terminal).
        #[arg(long, short = 'y', visible_alias = "auto-approve")]
        yes: bool,
        /// Use the function zips already built instead of running cargo.
        #[arg(long)]
        skip_build: bool,
        /// Take over this existing resource although it lacks the stack's mark (repeatable; ids
        /// as in the plan, e.g. `events`, `dead-letters`).
        #[arg(long, value_name = "ID")]
        adopt: Vec<String>,
    },
    /// Delete what the stack owns, dependents first: what the state records, what an
    /// interrupted run may have made, and what carries the stack's mark under a declared name.
    /// Resources without the mark are left alone and listed. What starts the stack's work (the
    /// API, event source mappings) goes first and the functions' log groups last, so records
    /// still in flight leave nothing behind.
    ///
    /// Examples:
    ///   provision down                # shows what it deletes, then asks
    ///   provision down --keep-data    # keeps the tables, buckets, queues, streams and database
    ///   provision down --yes          # for scripts and CI
    #[command(verbatim_doc_comment)]
    Down {
        /// Delete without asking (required when there is no terminal).
        #[arg(long, short = 'y', visible_alias = "auto-approve")]
        yes: bool,
        /// Delete everything but the resources that hold data (tables, buckets, queues, streams,
        /// the database) and what they need. They stay the stack's: a later `up` carries on
        /// with them and their data, and `down` without this flag deletes them.
        #[arg(long)]
        keep_data: bool,
        /// On AWS, delete the RDS instance without the final snapshot `down` otherwise takes
        /// (named `<stack>-db-final-<UTC date>-<time>`, printed, and kept after the instance).
        #[arg(long)]
        no_final_snapshot: bool,
    },
    /// Show the functions' logs (CloudWatch Logs), merged in time order, each line prefixed by
    /// the function's name. Each function logs one line per invocation: records in, written,
    /// rejected or sent to the dead-letter queue, with the reason.
    ///
    /// Examples:
    ///   provision logs                          # the last 10 minutes of every function of the program
    ///   provision logs midstream --follow       # keep following midstream (Ctrl-C stops)
    ///   provision logs --since 1h --filter ERROR
    ///   provision --json logs                   # JSON lines for scripts
    #[command(verbatim_doc_comment)]
    Logs {
        /// Functions to show, by their short names (the pipeline's: upstream, midstream,
        /// downstream; default: all the program's).
        functions: Vec<String>,
        /// Keep polling for new lines until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How far back to start, with its unit: 30s, 10m, 2h, 2d.
        #[arg(long, default_value = "10m", value_parser = provisioner::bench::parse_duration)]
        since: std::time::Duration,
        /// Only lines containing this text.
        #[arg(long)]
        filter: Option<String>,
        /// Also Lambda's own START, END and REPORT lines.
        #[arg(long)]
        platform: bool,
    },
    /// Print the values the stack's program exports (API URL, queue and table names...) from the
    /// state, without calling AWS.
    Outputs,
    /// List the programs a stack can be an instance of, one line each.
    Programs,
    /// Write a new project: a Cargo workspace with its program (a crate on `declaration`), one
    /// function, `state/`, a README with its commands and a `.gitignore`, in DIR/NAME.
    ///
    /// Examples:
    ///   provision new notes                    # ./notes: POST / -> a function -> a DynamoDB table
    ///   provision new clicks --template stream # Kinesis -> a consumer; Kinesis -> Firehose -> S3
    ///   cd notes && provision --stack dev up --yes
    #[command(verbatim_doc_comment)]
    New {
        /// The project's name: lowercase letters, digits and '-' (it names its crates and function).
        name: String,
        /// What it starts as: `http` (a REST API -> a function -> a DynamoDB table) or `stream`
        /// (a Kinesis stream -> a consumer function, and Firehose archiving it to S3).
        #[arg(long, default_value = "http")]
        template: String,
        /// The folder to write the project in (default: the current one).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The local cloud on this machine: MiniStack (the AWS APIs, functions run as local
    /// processes) and PostgreSQL (the database), installed on first start (python3, and root or
    /// sudo for `apt-get install postgresql` once). Its files go under .local-cloud/ of this
    /// repository's checkout, else ~/.local/share/provision (or PROVISION_LOCAL_HOME).
    ///
    /// Examples:
    ///   provision local start          # install what is missing, start, wait until both answer
    ///   eval "$(provision local env)"  # point this shell (AWS_ENDPOINT_URL...) at it
    ///   provision local status         # what runs, where, the logs (exit 3: something is stopped)
    ///   provision local stop
    ///   provision local localstack start   # LocalStack Community too (host mode, port 4567)
    #[command(verbatim_doc_comment)]
    Local {
        #[command(subcommand)]
        action: LocalAction,
    },
    /// Print the stack's declaration: the JSON document the engine plans from (resources with
    /// their kinds and properties, references as {"$ref": "<id>.<output>"}, exports; described
    /// in docs/declaration.md). Builds nothing, calls no cloud, changes nothing.
    ///
    /// Examples:
    ///   provision synth > stack.json
    ///   provision --program mapreduce synth | jq '.resources[].id'
    #[command(verbatim_doc_comment)]
    Synth,
    /// Release a remote state's lock left by a run that was killed or lost its machine:
    /// `provision unlock LOCK_ID`, with the id a refused run printed. Only that lock is
    /// released; if its run still goes on, its next write of the state is refused.
    Unlock {
        /// The id of the lock to release.
        lock_id: String,
    },
    /// Where the stack's state is kept: `state init s3://BUCKET/PREFIX` makes a state bucket
    /// (versioned, encrypted, private); `state migrate --to s3://...` or `--to local` moves it.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Print the value of the stack's API key (with `"api": {"auth": "api_key"}` in the
    /// settings), asked of API Gateway: it is never stored in the state or shown by `outputs`.
    /// For scripts: `curl -H "x-api-key: $(provision api-key)" ...`.
    ApiKey,
    /// Hot-swap function code on save: watches functions/ (the shared crates too), rebuilds
    /// only the functions a change affects, uploads only changed zips, and waits until the new
    /// code answers. The stack must be up. Ctrl-C stops.
    Watch {
        /// Milliseconds of quiet that end a burst of saves.
        #[arg(long, default_value_t = 25)]
        debounce_ms: u64,
    },
    /// Load-test the deployed stack as the classic sample's k6 test does (10 users posting
    /// {"id","message","timestamp"} back to back for 60 s), wait until every accepted record has
    /// reached Postgres (progress on stderr), and report requests sent/accepted/rejected, HTTP
    /// and end-to-end latency percentiles, sustained completions per second, records lost, and
    /// whether the CloudWatch latency metric agrees with the rows. The stack must be up.
    ///
    /// Examples:
    ///   provision --stack bench bench                          # the classic test
    ///   provision --stack bench bench --rate 50 --duration 30s # a fixed offered rate
    ///   provision --stack bench bench --batch 100 --count 600  # JSON arrays of 100 records
    ///   provision --stack bench --json bench --plot bench.svg  # JSON report and an SVG plot
    ///
    /// For a `mapreduce` stack it measures the distributed adder instead: one array of 1, of
    /// 10,000 and of 100,000 elements (--count times each, default 3), then 200 arrays of 1 to
    /// 2,000 elements posted --users at a time; every sum checked, time to result (min, p50, p99,
    /// max) and elements/s printed.
    ///   provision --program mapreduce --stack adder bench
    #[command(verbatim_doc_comment)]
    Bench {
        /// Concurrent virtual users (each keeps one request in flight).
        #[arg(long, short = 'u', visible_alias = "vus", default_value_t = 10)]
        users: usize,
        /// How long to send for: 60s, 500ms, 2m (requests in flight at the end are awaited).
        #[arg(long, short = 'd', default_value = "60s", value_parser = provisioner::bench::parse_duration)]
        duration: std::time::Duration,
        /// Send exactly this many requests instead of sending for --duration.
        #[arg(long, short = 'n', conflicts_with = "duration")]
        count: Option<u64>,
        /// Offer a fixed rate, in requests per second across all users (open model); the users
        /// bound the requests in flight. Unset: each user sends again as soon as it is answered.
        #[arg(long)]
        rate: Option<f64>,
        /// Records per request: 1 posts the classic single object; more post a JSON array (<= 500).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// After the last answer, give up waiting for accepted records to reach Postgres after this long.
        #[arg(long, default_value = "120s", value_parser = provisioner::bench::parse_duration)]
        drain_timeout: std::time::Duration,
        /// Count a request as rejected when it has no answer after this long.
        #[arg(long, default_value = "30s", value_parser = provisioner::bench::parse_duration)]
        request_timeout: std::time::Duration,
        /// Write an SVG: end-to-end latency by commit time, throughput per second, histogram.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Longest wait for the CloudWatch metric to show every row (it lags on AWS); 0: read once.
        #[arg(long, default_value = "30s", value_parser = provisioner::bench::parse_duration)]
        metric_wait: std::time::Duration,
    },
}

/// `provision state ...`.
#[derive(Subcommand)]
enum LocalAction {
    /// Install what is missing, start MiniStack and PostgreSQL, wait until they answer.
    Start,
    /// Stop what `local start` started (by recorded PID), LocalStack too.
    Stop,
    /// Say what runs, where, and where the logs are; exit 3 when something is stopped.
    Status,
    /// Print the environment a shell needs to talk to it: eval "$(provision local env)".
    Env,
    /// LocalStack Community beside MiniStack: start, stop, status or env.
    Localstack {
        /// start, stop, status or env
        action: String,
    },
}

#[derive(Subcommand)]
enum StateAction {
    /// Make an S3 bucket for team state: versioned (a bad write can be undone), encrypted,
    /// public access blocked, tagged. Then pass `--state-url s3://BUCKET/PREFIX`.
    Init {
        /// `s3://BUCKET/PREFIX`.
        url: String,
    },
    /// Move the stack's state to another place: `--to s3://BUCKET/PREFIX` or `--to local`.
    /// Refused while operations are interrupted; never overwrites a state already there; the old
    /// copy is kept beside where it was.
    Migrate {
        /// Where the state goes: `s3://BUCKET/PREFIX` (a bucket made with `provision state init`)
        /// or `local` (the --state-dir folder of this checkout).
        #[arg(long, value_name = "s3://BUCKET/PREFIX|local")]
        to: String,
    },
}

async fn context(global: Global) -> Result<Context> {
    let workspace = workspace_root()?;
    let state_dir = if global.state_dir.is_absolute() { global.state_dir } else { workspace.join(global.state_dir) };
    let settings_path = global.settings.clone().or_else(|| Some(workspace.join("stack.json")));
    let endpoint_url = global.endpoint_url.filter(|u| !u.is_empty());
    let profile =
        global.build_profile.unwrap_or_else(|| if endpoint_url.is_some() { "dev".into() } else { "release".into() });
    if !global.stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || global.stack.is_empty()
        || global.stack.len() > 32
    {
        anyhow::bail!(
            "stack name `{}` must be 1-32 letters, digits or '-' (it prefixes AWS resource names)",
            global.stack
        );
    }
    // The project's programs (provision.json): `--program` picks one, else the one the stack's
    // state records, else the first.
    let project = Project::read(&workspace)?.with_context(|| {
        format!(
            "{} has no provision.json naming a program: run provision inside a project (`docs/program.md`)",
            workspace.display()
        )
    })?;
    // The keys every stack has (`protect`, `state_url`...) are the engine's; the rest the program's.
    let settings = Settings::load(settings_path.as_deref())?;
    let portable = global.lambda_build.map_or(endpoint_url.is_none(), |b| b == "portable");
    let portable_arch = portable.then(|| settings.architecture.clone());
    let target = Target { endpoint_url, region: global.region, profile: global.profile };
    let for_local_endpoint = target.is_local();
    let state_url = global.state_url.filter(|u| !u.is_empty()).or_else(|| settings.state_url.clone());
    let remote_state = match state_url {
        Some(url) => Some(Arc::new(S3State::new(StateUrl::parse(&url)?, target.clone()))),
        None => None,
    };
    let state: Arc<dyn StateBackend> = match &remote_state {
        Some(remote) => remote.clone(),
        None => Arc::new(LocalFolder::new(&state_dir)),
    };
    let wanted = match &global.program {
        Some(name) => Some(name.clone()),
        None => recorded_program(state.as_ref(), &global.stack).await,
    };
    let program: &'static dyn Program = Box::leak(Box::new(project.program(wanted.as_deref())?));
    program.check_settings(&settings)?;
    Ok(Context {
        stack: global.stack,
        program,
        target,
        state,
        remote_state,
        state_dir,
        settings,
        settings_path,
        build: BuildConfig { workspace, profile, portable_arch, for_local_endpoint },
        json: global.json,
    })
}

/// The program the stack's state records, if it can be read (a stack made with `--program
/// mapreduce` needs no `--program` afterwards). Whatever keeps it from being read is said by the
/// command itself.
async fn recorded_program(state: &dyn StateBackend, stack: &str) -> Option<String> {
    let (_reader, state) = state.read(stack).await.ok()?;
    state.program
}

/// The global options the user typed on the command line, as they typed them: repeated in every
/// command an error suggests, so `provision up --adopt events` comes out as the user must run it
/// (with their `--state-dir`, `--settings`, `--state-url`...).
fn typed_options(matches: &clap::ArgMatches) -> String {
    let mut typed = Vec::new();
    for id in ["stack", "program", "endpoint_url", "region", "profile", "state_dir", "state_url", "settings"] {
        if matches.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        for value in matches.get_raw(id).into_iter().flatten() {
            let value = value.to_string_lossy();
            let quoted = shlex::try_quote(&value).map_or_else(|_| value.to_string(), |q| q.into_owned());
            typed.push(format!("--{} {quoted}", id.replace('_', "-")));
        }
    }
    typed.join(" ")
}

/// `message` with the user's `options` in every `provision ...` command it suggests (not in the
/// one it says holds a lock: that is someone else's).
fn with_options(message: &str, options: &str) -> String {
    if options.is_empty() {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split("`provision ");
    out.push_str(parts.next().unwrap_or_default());
    for part in parts {
        if out.ends_with("locked by ") {
            out.push_str("`provision ");
        } else {
            out.push_str(&format!("`provision {options} "));
        }
        out.push_str(part);
    }
    out
}

/// The workspace whose functions are deployed: the current directory or one above it that has
/// `functions/`, else the one this binary was built from.
fn workspace_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if let Some(project) = cwd.ancestors().find(|d| d.join(provisioner::programs::external::PROJECT_FILE).is_file()) {
        return Ok(project.to_path_buf());
    }
    if let Some(found) = cwd.ancestors().find(|d| d.join("functions").is_dir() && d.join("Cargo.toml").is_file()) {
        return Ok(found.to_path_buf());
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if built_from.join("functions").is_dir() {
        return Ok(built_from.canonicalize()?);
    }
    anyhow::bail!("cannot find the workspace (a folder with Cargo.toml and functions/): run provision from inside it")
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::New { name, template, dir } = &cli.command {
        let parent = match dir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        let root = provisioner::new::create(name, template, &parent)?;
        let (_, about, logic) = provisioner::new::TEMPLATES.iter().find(|(t, _, _)| t == template).expect("created");
        println!(
            "Created project `{name}` in {} ({about}). Next:\n  cd {}\n  provision local start && eval \
             \"$(provision local env)\"   # the local cloud, if it is not running\n  provision --stack dev up --yes\n  \
             provision --stack dev watch   # then edit {}",
            root.display(),
            root.display(),
            logic.replace("<name>", name)
        );
        return Ok(());
    }
    if let Command::Programs = cli.command {
        let workspace = workspace_root()?;
        let project = Project::read(&workspace)?
            .with_context(|| format!("{} has no provision.json naming a program", workspace.display()))?;
        return commands::programs(&project, cli.global.json);
    }
    if let Command::Local { action } = &cli.command {
        let code = match action {
            LocalAction::Start => provisioner::local::run(&["start"])?,
            LocalAction::Stop => provisioner::local::run(&["stop"])?,
            LocalAction::Status => provisioner::local::run(&["status"])?,
            LocalAction::Env => provisioner::local::run(&["env"])?,
            LocalAction::Localstack { action } => provisioner::local::run(&["localstack", action])?,
        };
        std::process::exit(code);
    }
    let ctx = context(cli.global).await?;
    match cli.command {
        Command::Programs | Command::Local { .. } | Command::New { .. } => unreachable!("answered above"),
        Command::Synth => commands::synth(&ctx),
        Command::Plan { skip_build, adopt } => {
            commands::plan(&ctx, &UpOptions { yes: false, skip_build, adopt }).await.map(|_| ())
        }
        Command::Up { yes, skip_build, adopt } => {
            commands::up(&ctx, UpOptions { yes, skip_build, adopt }).await.map(|_| ())
        }
        Command::Down { yes, keep_data, no_final_snapshot } => {
            commands::down(&ctx, DownOptions { yes, keep_data, no_final_snapshot }).await
        }
        Command::Outputs => commands::outputs(&ctx).await,
        Command::ApiKey => commands::api_key(&ctx).await,
        Command::Unlock { lock_id } => provisioner::state_commands::unlock(&ctx, &lock_id).await,
        Command::State { action: StateAction::Init { url } } => provisioner::state_commands::init(&ctx, &url).await,
        Command::State { action: StateAction::Migrate { to } } => {
            provisioner::state_commands::migrate(&ctx, &to, &ctx.state_dir).await
        }
        Command::Logs { functions, follow, since, filter, platform } => {
            let options = provisioner::logs::LogsOptions { functions, follow, since, filter, platform };
            provisioner::logs::run(&ctx, options).await
        }
        Command::Watch { debounce_ms } => {
            provisioner::watch::run(&ctx, WatchOptions { debounce: std::time::Duration::from_millis(debounce_ms) })
                .await
        }
        Command::Bench { users, duration, count, rate, batch, drain_timeout, request_timeout, plot, metric_wait } => {
            let options = provisioner::bench::BenchOptions {
                users,
                duration,
                count,
                rate,
                batch,
                drain_timeout,
                request_timeout,
                plot,
                metric_wait,
            };
            provisioner::bench::run(&ctx, options).await
        }
    }
}

#[tokio::main]
async fn main() {
    let matches = Cli::command().get_matches();
    let options = typed_options(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let Err(err) = run(cli).await {
        eprintln!("error: {}", with_options(&format!("{err:#}"), &options));
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggested_command_repeats_the_options_the_user_typed() {
        let matches = Cli::command()
            .try_get_matches_from(["provision", "--stack", "shop", "--state-dir", "my state", "--json", "up"])
            .unwrap();
        let options = typed_options(&matches);
        assert_eq!(options, "--stack shop --state-dir 'my state'");
        assert_eq!(
            with_options("take them over: `provision up --adopt events`", &options),
            "take them over: `provision --stack shop --state-dir 'my state' up --adopt events`"
        );
        let locked = "stack `shop` is locked by `provision up` (PID 7): see `provision plan`";
        assert_eq!(
            with_options(locked, "--stack shop"),
            "stack `shop` is locked by `provision up` (PID 7): see `provision --stack shop plan`",
            "the lock's holder is named as it ran"
        );
        let bare = Cli::command().try_get_matches_from(["provision", "up"]).unwrap();
        assert_eq!(with_options("run `provision up`", &typed_options(&bare)), "run `provision up`");
    }
}
