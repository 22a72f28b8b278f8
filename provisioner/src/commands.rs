//! What each CLI command does, as library functions the binary dispatches to: `plan`, `up`,
//! `down`, `outputs`. Plans and outputs go to stdout (text or JSON); progress goes to stderr.

use crate::artifact::{self, Artifact, BuildConfig};
use crate::cloud::{Cloud, Target};
use crate::engine::apply;
use crate::engine::declare::StackDef;
use crate::engine::plan::{self, Plan};
use crate::engine::state::{State, StateStore};
use crate::settings::StackSettings;
use crate::stack;
use anyhow::{bail, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Everything a command needs, validated from the CLI.
pub struct Context {
    pub stack: String,
    pub target: Target,
    pub state_dir: PathBuf,
    pub settings: StackSettings,
    pub build: BuildConfig,
    pub json: bool,
}

/// Options of `up` and `plan`.
#[derive(Debug, Clone, Copy)]
pub struct UpOptions {
    /// Apply without asking.
    pub yes: bool,
    /// Use the zips already built instead of running cargo.
    pub skip_build: bool,
}

/// Builds (unless skipped) and packages every function.
pub fn artifacts(build: &BuildConfig, skip_build: bool) -> Result<BTreeMap<String, Artifact>> {
    if !skip_build {
        let took = artifact::build(build, &artifact::FUNCTIONS)?;
        let kind = if build.portable_arch.is_some() { "portable" } else { "native" };
        eprintln!("built functions ({kind}, {} profile) in {:.1} s", build.profile, took.as_secs_f64());
    }
    Ok(artifact::package_all(build, &artifact::FUNCTIONS)?.into_iter().map(|a| (a.function.clone(), a)).collect())
}

/// The declared stack for this context. On AWS the database is private, so the stack must be
/// given the network it lives in.
pub fn declare(ctx: &Context, artifacts: &BTreeMap<String, Artifact>, hot_reload: bool) -> Result<StackDef> {
    if !ctx.target.is_local() && ctx.settings.network.is_none() {
        bail!(
            "on AWS the database is private, so downstream must run in its VPC: add a \"network\" section to the settings \
             (subnet_ids, function_security_group_ids, db_security_group_ids; see README, Deploying to an AWS account)"
        );
    }
    Ok(stack::declare(&stack::Inputs {
        stack: &ctx.stack,
        settings: &ctx.settings,
        artifacts,
        local: ctx.target.is_local(),
        hot_reload,
    }))
}

async fn refreshed_plan(cloud: &Arc<Cloud>, stack: &StackDef, state: &State) -> Result<Plan> {
    let observed = plan::refresh(cloud, state).await?;
    Ok(plan::diff(stack, state, &observed))
}

/// Refuses to deploy a native build to AWS when it needs a newer glibc than Lambda has.
fn check_runs_on_lambda(build: &BuildConfig) -> Result<()> {
    for function in artifact::FUNCTIONS {
        let path = build.binary_path(function);
        let binary = std::fs::read(&path)?;
        if let Some(needed) = artifact::newest_glibc_needed(&binary).filter(|v| *v > artifact::LAMBDA_GLIBC) {
            bail!(
                "{} needs glibc {}.{} but Lambda's provided.al2023 has {}.{}: build with --lambda-build portable (the default on AWS)",
                path.display(),
                needed.0,
                needed.1,
                artifact::LAMBDA_GLIBC.0,
                artifact::LAMBDA_GLIBC.1
            );
        }
    }
    Ok(())
}

/// Whether functions run from the endpoint's hot-reload bucket: asked for (`hot_deploy`) and
/// supported. Stages the binaries into their folders when so; says why not otherwise.
pub async fn hot_reload(ctx: &Context) -> Result<bool> {
    if !ctx.settings.hot_deploy {
        return Ok(false);
    }
    let Some(endpoint) = &ctx.target.endpoint_url else {
        eprintln!("note: hot_deploy is a LocalStack feature; on AWS the functions are uploaded as zips");
        return Ok(false);
    };
    let probe = crate::http::HttpClient::new()
        .post(&format!("{}/_ministack/health", endpoint.trim_end_matches('/')), None, "")
        .await;
    if probe.is_ok_and(|r| r.status < 400) {
        eprintln!(
            "note: this endpoint (MiniStack) has no `hot-reload` code bucket: the functions are uploaded as zips, \
             and `provision watch` uploads each rebuilt function (hot_deploy needs LocalStack with Lambda hot reloading)"
        );
        return Ok(false);
    }
    for function in artifact::FUNCTIONS {
        artifact::stage_hot_reload(&ctx.build, function)?;
    }
    Ok(true)
}

/// `provision plan`: prints what `up` would do, changing nothing.
pub async fn plan(ctx: &Context, skip_build: bool) -> Result<Plan> {
    let artifacts = artifacts(&ctx.build, skip_build)?;
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let (_store, state) = StateStore::open(&ctx.state_dir, &ctx.stack, "plan")?;
    let plan = refreshed_plan(&cloud, &declare(ctx, &artifacts, hot_reload(ctx).await?)?, &state).await?;
    print_plan(ctx, &plan, &cloud);
    Ok(plan)
}

/// `provision up`: refresh, plan, confirm, apply, print the outputs.
pub async fn up(ctx: &Context, options: UpOptions) -> Result<Plan> {
    let started = Instant::now();
    let artifacts = artifacts(&ctx.build, options.skip_build)?;
    if !ctx.target.is_local() && ctx.build.portable_arch.is_none() {
        check_runs_on_lambda(&ctx.build)?;
    }
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let (store, mut state) = StateStore::open(&ctx.state_dir, &ctx.stack, "up")?;
    let stack = declare(ctx, &artifacts, hot_reload(ctx).await?)?;
    let plan = refreshed_plan(&cloud, &stack, &state).await?;
    if !ctx.json {
        println!("Stack `{}` on {}:", ctx.stack, cloud.describe());
        print!("{plan}");
    }
    if !plan.is_empty() {
        confirm(options.yes, "apply these changes")?;
    }
    let report = apply::apply(&cloud, &stack, &plan, &mut state, &store).await?;
    state.pending.clear();
    store.save(&state)?;
    let applied = report.done.len();
    report.into_result()?;
    print_outputs(ctx, &state, Some(&plan), &cloud, applied, started);
    Ok(plan)
}

/// `provision down`: deletes everything the state records, dependents first.
pub async fn down(ctx: &Context, yes: bool) -> Result<()> {
    let started = Instant::now();
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let (store, mut state) = StateStore::open(&ctx.state_dir, &ctx.stack, "down")?;
    if state.resources.is_empty() {
        store.remove()?;
        println!("Stack `{}` has nothing recorded in {}: nothing to delete.", ctx.stack, store.path().display());
        return Ok(());
    }
    let plan = plan::destroy_all(&ctx.stack, &state);
    if !ctx.json {
        println!("Stack `{}` on {}:", ctx.stack, cloud.describe());
        print!("{plan}");
    }
    confirm(yes, "delete these resources")?;
    let empty_stack = StackDef::new(&ctx.stack);
    let report = apply::apply(&cloud, &empty_stack, &plan, &mut state, &store).await?;
    state.pending.clear();
    let deleted = report.done.len();
    report.into_result()?;
    store.remove()?;
    let mutating = cloud.calls.mutating().len();
    if ctx.json {
        println!(
            "{}",
            json!({ "stack": ctx.stack, "deleted": deleted, "mutating_calls": mutating, "seconds": started.elapsed().as_secs_f64() })
        );
    } else {
        println!("Deleted {deleted} resources of stack `{}` in {:.1} s.", ctx.stack, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// `provision outputs`: prints the recorded outputs without calling AWS.
pub fn outputs(ctx: &Context) -> Result<()> {
    let (_store, state) = StateStore::open(&ctx.state_dir, &ctx.stack, "outputs")?;
    if state.resources.is_empty() {
        bail!("stack `{}` has not been created: run `provision up` first", ctx.stack);
    }
    let pairs = stack::outputs(&ctx.stack, &state);
    if ctx.json {
        let map: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (label, value) in pairs {
            println!("{label:<18} {value}");
        }
    }
    Ok(())
}

fn print_plan(ctx: &Context, plan: &Plan, cloud: &Cloud) {
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&plan_json(plan, cloud)).expect("plans serialize"));
    } else {
        println!("Stack `{}` on {}:", ctx.stack, cloud.describe());
        print!("{plan}");
    }
}

fn plan_json(plan: &Plan, cloud: &Cloud) -> serde_json::Value {
    json!({
        "stack": plan.stack,
        "changes": plan.actionable().collect::<Vec<_>>(),
        "drift": plan.drifted().collect::<Vec<_>>(),
        "unchanged": plan.count(plan::Action::Same),
        "interrupted": plan.interrupted,
        "api_calls": cloud.calls.all().len(),
        "mutating_calls": cloud.calls.mutating(),
    })
}

fn print_outputs(ctx: &Context, state: &State, plan: Option<&Plan>, cloud: &Cloud, applied: usize, started: Instant) {
    let pairs = stack::outputs(&ctx.stack, state);
    let mutating = cloud.calls.mutating();
    if ctx.json {
        let outputs: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let mut report = plan.map(|p| plan_json(p, cloud)).unwrap_or_else(|| json!({}));
        report["outputs"] = serde_json::Value::Object(outputs);
        report["applied"] = json!(applied);
        report["seconds"] = json!(started.elapsed().as_secs_f64());
        println!("{}", serde_json::to_string_pretty(&report).expect("reports serialize"));
        return;
    }
    println!(
        "\n{applied} changes applied in {:.1} s ({} API calls, {} mutating).\nOutputs:",
        started.elapsed().as_secs_f64(),
        cloud.calls.all().len(),
        mutating.len()
    );
    for (label, value) in pairs {
        println!("  {label:<18} {value}");
    }
}

/// Asks on the terminal unless `yes`; without a terminal, refuses rather than guess.
fn confirm(yes: bool, what: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to {what} without confirmation: there is no terminal to ask on. Pass --yes to apply non-interactively");
    }
    print!("Do you want to {what}? Only 'yes' is accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("cancelled: nothing was changed");
    }
    Ok(())
}
