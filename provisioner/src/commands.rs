//! What each CLI command does, as library functions the binary dispatches to: `plan`, `up`,
//! `down`, `outputs`. Plans and outputs go to stdout (text or JSON); progress goes to stderr.
//! Every command works for every program: the program declares the stack, and the functions it
//! deploys are read from that declaration.

use crate::artifact::{self, Artifact, BuildConfig};
use crate::aws::{self, Kind, Recorded};
use crate::cloud::{Cloud, Target};
use crate::engine::apply;
use crate::engine::declare::StackDef;
use crate::engine::document::{Declaration, Document};
use crate::engine::mark::{self, Mark};
use crate::engine::ownership::{self, Foreign};
use crate::engine::plan::{self, Plan};
use crate::engine::state::{State, StateBackend, StateStore};
use crate::programs::external::Project;
use crate::programs::{self, DeclaredFunction, Declaring, Functions, Program};
use crate::settings::Settings;
use anyhow::{bail, Context as _, Result};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Everything a command needs, validated from the CLI.
#[derive(Clone)]
pub struct Context {
    pub stack: String,
    /// The program the stack is an instance of.
    pub program: &'static dyn Program,
    pub target: Target,
    /// Where the stacks' states are kept: the local folder or a remote store.
    pub state: Arc<dyn StateBackend>,
    /// The remote store, when the states are kept in one (the same as `state`).
    pub remote_state: Option<Arc<crate::remote_state::S3State>>,
    /// The local state folder (`--state-dir`), used when there is no remote store.
    pub state_dir: PathBuf,
    pub settings: Settings,
    /// The settings file the settings came from (or would: `stack.json` may not exist yet).
    pub settings_path: Option<PathBuf>,
    pub build: BuildConfig,
    pub json: bool,
}

/// Options of `up` and `plan`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Apply without asking.
    pub yes: bool,
    /// Use the zips already built instead of running cargo.
    pub skip_build: bool,
    /// Ids of resources to take over although they lack the stack's mark.
    pub adopt: Vec<String>,
}

/// `provision programs`: the programs a stack can be an instance of, one line each.
pub fn programs(project: &Project, json: bool) -> Result<()> {
    let programs = project.programs();
    if json {
        let list: Vec<serde_json::Value> =
            programs.iter().map(|(name, about)| json!({ "name": name, "about": about })).collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    for (name, about) in &programs {
        println!("{name:<12} {about}");
    }
    println!(
        "\nPick one with --program NAME (or PROVISION_PROGRAM); the default is `{}`, or the one a stack's state \
         records.",
        programs[0].0
    );
    Ok(())
}

/// Builds (unless skipped) and packages `binaries`.
pub fn artifacts(build: &BuildConfig, binaries: &[&str], skip_build: bool) -> Result<BTreeMap<String, Artifact>> {
    if binaries.is_empty() {
        return Ok(BTreeMap::new()); // a stack without functions builds nothing
    }
    if !skip_build {
        if let Some(took) = artifact::build_if_changed(build, binaries)? {
            let kind = if build.portable_arch.is_some() { "portable" } else { "native" };
            eprintln!("built functions ({kind}, {} profile) in {:.1} s", build.profile, took.as_secs_f64());
        }
    }
    Ok(artifact::package_all(build, binaries)?.into_iter().map(|a| (a.function.clone(), a)).collect())
}

/// The origin part of the ownership mark: as recorded in the state, else this checkout's.
pub fn origin(ctx: &Context, state: &State) -> String {
    state.origin.clone().unwrap_or_else(|| Mark::origin_of(&ctx.build.workspace))
}

/// Refuses to manage a stack with another program than the one it is an instance of. A state
/// written before programs existed records none: it is a pipeline.
pub fn ensure_program(ctx: &Context, state: &State) -> Result<()> {
    let recorded = match &state.program {
        Some(program) => program.as_str(),
        None if state.is_empty() => return Ok(()),
        None => "pipeline",
    };
    if recorded != ctx.program.name() {
        bail!(
            "stack `{}` is an instance of program `{recorded}` (its state says so), not `{}`. Nothing was changed. Run \
             it without --program (or PROVISION_PROGRAM): its state names its program; or use another stack name \
             (--stack) for a `{}`",
            ctx.stack,
            ctx.program.name(),
            ctx.program.name()
        );
    }
    Ok(())
}

/// Where and how the stack is declared: the parts of [`Declaring`] that do not change between
/// a declaration read for its names and one with the built functions.
pub struct Declarer<'a> {
    ctx: &'a Context,
    origin: String,
    place: Placement,
    hot_reload: bool,
}

impl<'a> Declarer<'a> {
    /// For `ctx`'s stack, with the origin its state records, on `cloud`. Asks STS for the account
    /// only when the program needs it.
    pub async fn new(ctx: &'a Context, cloud: &Cloud, state: &State, hot_reload: bool) -> Result<Self> {
        Ok(Self { ctx, origin: origin(ctx, state), place: placement(ctx, cloud).await?, hot_reload })
    }

    /// The stack with the code of `functions`: the program's declaration, as the document every
    /// program hands the engine, checked whole before anything is read or changed.
    pub fn declare(&self, functions: &Functions) -> Result<StackDef> {
        self.document(functions)?.into_stack(&self.ctx.stack, &self.origin, aws::registry())
    }

    /// The program's declaration, with the code of its functions.
    fn document(&self, functions: &Functions) -> Result<Declaration> {
        let mut document = self.ctx.program.declaration(&Declaring {
            stack: &self.ctx.stack,
            origin: &self.origin,
            account_id: &self.place.account_id,
            region: &self.place.region,
            settings: &self.ctx.settings,
            functions,
            local: self.ctx.target.is_local(),
            hot_reload: self.hot_reload,
        })?;
        programs::fill_function_code(&mut document, functions, self.hot_reload);
        if self.ctx.settings.protect {
            protect(&mut document)?;
        }
        Ok(document)
    }

    /// The stack declared for its names: nothing is built or read.
    pub fn names(&self) -> Result<StackDef> {
        self.declare(&Functions::placeholders(&self.ctx.build))
    }

    /// The stack with its functions built (unless `skip_build`) and packaged: declared once for
    /// the functions it names, which are then built, then declared with their code.
    pub fn built(&self, skip_build: bool) -> Result<StackDef> {
        let functions = programs::functions_of(&self.names()?);
        let binaries: Vec<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
        let artifacts = artifacts(&self.ctx.build, &binaries, skip_build)?;
        if !self.ctx.target.is_local() && self.ctx.build.portable_arch.is_none() {
            check_runs_on_lambda(&self.ctx.build, &functions)?;
        }
        self.declare(&Functions::built(&self.ctx.build, artifacts))
    }
}

/// Checks, with cheap reads, that the endpoint offers every service the run may create
/// something in (the kinds the state does not record yet), and stops before any change when one
/// is missing, naming it and what to do. A stack that is up needs no check.
async fn check_endpoint_offers(ctx: &Context, cloud: &Cloud, stack: &StackDef, state: &State) -> Result<()> {
    let registry = aws::registry();
    let mut needed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for resource in stack.resources.iter().filter(|r| !state.resources.contains_key(&r.id)) {
        let service = registry.driver(resource.kind)?.service();
        if !service.is_empty() {
            needed.entry(service).or_default().push(resource.id.as_str());
        }
    }
    require_offered(ctx, cloud, needed, &stack.advice).await
}

/// Checks that the endpoint can make the in-place updates `plan` holds (a stream's switch of
/// capacity mode needs `UpdateStreamMode`), and stops before any change when it cannot.
async fn check_endpoint_updates(ctx: &Context, cloud: &Cloud, plan: &Plan) -> Result<()> {
    let registry = aws::registry();
    let mut needed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for change in plan.actionable().filter(|c| c.action == plan::Action::Update) {
        let feature = registry.driver(change.kind)?.service_for_update(&change.fields);
        if !feature.is_empty() {
            needed.entry(feature).or_default().push(change.id.as_str());
        }
    }
    require_offered(ctx, cloud, needed, &BTreeMap::new()).await
}

/// Stops, naming each and what to do, when the endpoint lacks a service (or `service:feature`)
/// of `needed`, each with the resources that need it and the program's `advice` for it.
async fn require_offered(
    ctx: &Context,
    cloud: &Cloud,
    needed: BTreeMap<&str, Vec<&str>>,
    advice: &BTreeMap<String, String>,
) -> Result<()> {
    if needed.is_empty() {
        return Ok(());
    }
    let endpoint = cloud.endpoint().await;
    let services: BTreeSet<&str> = needed.keys().copied().collect();
    let offers = aws::services::offers(cloud, endpoint, &services).await;
    for (service, answer) in &offers.unconfirmed {
        eprintln!(
            "note: could not confirm that {} offers {service} (its answers were transient: {answer}); going on",
            endpoint.describe()
        );
    }
    let missing = offers.missing;
    if missing.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "the endpoint {} ({}) does not offer what stack `{}` needs. Nothing was changed.",
        cloud.describe(),
        endpoint.describe(),
        ctx.stack
    );
    for (service, reason) in &missing {
        message.push_str(&format!("\n  - {service}, for {}: {reason}", needed[service.as_str()].join(", ")));
    }
    let mut unadvised = false;
    // A missing feature (`kinesis:update-stream-mode`) comes with its own advice in its reason.
    for service in missing.keys().filter(|s| !s.contains(':')) {
        match advice.get(service.as_str()) {
            Some(advice) => message.push_str(&format!("\n{advice}")),
            None => unadvised = true,
        }
    }
    if unadvised {
        message.push_str(
            "\nUse an endpoint that offers them: MiniStack runs the whole pipeline here; LocalStack needs Docker for \
             Lambda and a Pro license for RDS; AWS offers all of them.",
        );
    }
    Err(anyhow::anyhow!(message))
}

/// The refusal when same-named resources exist that the stack does not own.
fn refuse_foreign(ctx: &Context, foreign: &[Foreign]) -> anyhow::Error {
    let mut message = format!(
        "stack `{}` would take over {} resource(s) it did not make. Nothing was changed.",
        ctx.stack,
        foreign.len()
    );
    for f in foreign {
        message.push_str(&format!("\n  - {}", f.describe()));
    }
    let held_elsewhere =
        foreign.iter().any(|f| matches!(&f.owner, mark::Owner::OtherOrigin(origin) if mark::is_lineage(origin)));
    if held_elsewhere {
        message.push_str(&format!(
            "\nStack `{}` has a state elsewhere (a remote one, or one `state migrate` moved) that holds these: run \
             against it with its --state-url. Taking them over here would make two states manage one stack; do it \
             only if that state is truly lost.",
            ctx.stack
        ));
    }
    let adopt: Vec<String> = foreign.iter().map(|f| format!("--adopt {}", f.id)).collect();
    message.push_str(&format!(
        "\nUse another stack name (--stack), remove or rename those resources, or take them over explicitly: \
         `provision up {}`. What is taken over gets this stack's mark: `up` then changes it to match the \
         declaration and `down` deletes it.",
        adopt.join(" ")
    ));
    anyhow::anyhow!(message)
}

/// Checks that every `--adopt` id names a declared resource.
fn adopt_set(stack: &StackDef, adopt: &[String]) -> Result<BTreeSet<String>> {
    for id in adopt {
        if stack.get(id).is_none() {
            let ids: Vec<&str> = stack.resources.iter().map(|r| r.id.as_str()).collect();
            bail!("--adopt {id}: the stack declares no resource `{id}`. Its resources are: {}", ids.join(", "));
        }
    }
    Ok(adopt.iter().cloned().collect())
}

/// Refuses to deploy a native build to AWS when it needs a newer glibc than Lambda has.
fn check_runs_on_lambda(build: &BuildConfig, functions: &[DeclaredFunction]) -> Result<()> {
    let files = functions.iter().map(|f| artifact::deployed_files(build, &f.binary));
    for (_, path) in files.collect::<Result<Vec<_>>>()?.into_iter().flatten() {
        let binary = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
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
/// offered, as the endpoint itself says (LocalStack). Says why not otherwise. Changes nothing
/// (`up` stages the binaries itself).
pub async fn hot_reload(ctx: &Context, cloud: &Cloud) -> Result<bool> {
    if !ctx.settings.hot_deploy {
        return Ok(false);
    }
    let endpoint = cloud.endpoint().await;
    if !endpoint.has_hot_reload() {
        eprintln!(
            "note: {} has no `hot-reload` code bucket (a LocalStack feature): the functions are uploaded as zips, \
             and `provision watch` uploads each rebuilt function",
            endpoint.describe()
        );
        return Ok(false);
    }
    Ok(true)
}

/// Copies the built binaries into the folders the endpoint runs hot-reloaded functions from.
fn stage_hot_reload(ctx: &Context, stack: &StackDef) -> Result<()> {
    for function in programs::functions_of(stack) {
        artifact::stage_hot_reload(&ctx.build, &function.binary)?;
    }
    Ok(())
}

/// `provision plan`: prints what `up` would do. Changes nothing in the cloud or in the state
/// folder: the state is read under a shared lock and what the ownership check adopts stays in
/// memory.
pub async fn plan(ctx: &Context, options: &UpOptions) -> Result<Plan> {
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let (_reader, mut state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    ensure_program(ctx, &state)?;
    let stack = Declarer::new(ctx, &cloud, &state, hot_reload(ctx, &cloud).await?).await?.built(options.skip_build)?;
    let adopt = adopt_set(&stack, &options.adopt)?;
    check_endpoint_offers(ctx, &cloud, &stack, &state).await?;
    let (plan, foreign) = plan::prepare(&cloud, aws::registry(), &stack, &mut state, &adopt).await?;
    if !foreign.is_empty() {
        return Err(refuse_foreign(ctx, &foreign));
    }
    check_endpoint_updates(ctx, &cloud, &plan).await?;
    print_plan(ctx, &plan, &cloud);
    Ok(plan)
}

/// `provision up`: refresh, plan, confirm, apply, print the outputs.
pub async fn up(ctx: &Context, options: UpOptions) -> Result<Plan> {
    let started = Instant::now();
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let (store, mut state) = StateStore::open(ctx.state.as_ref(), &ctx.stack, "up").await?;
    ensure_program(ctx, &state)?;
    let hot_reload = hot_reload(ctx, &cloud).await?;
    let stack = Declarer::new(ctx, &cloud, &state, hot_reload).await?.built(options.skip_build)?;
    let adopt = adopt_set(&stack, &options.adopt)?;
    check_endpoint_offers(ctx, &cloud, &stack, &state).await?;
    let (plan, foreign) = plan::prepare(&cloud, aws::registry(), &stack, &mut state, &adopt).await?;
    if !foreign.is_empty() {
        return Err(refuse_foreign(ctx, &foreign));
    }
    check_endpoint_updates(ctx, &cloud, &plan).await?;
    state.origin = Some(stack.mark.origin.clone());
    state.program = Some(ctx.program.name().to_string());
    if !ctx.json {
        println!("Stack `{}` ({}) on {}:", ctx.stack, ctx.program.name(), cloud.describe());
        print!("{plan}");
    }
    if !plan.is_empty() {
        confirm(options.yes, "apply these changes")?;
    }
    if hot_reload {
        stage_hot_reload(ctx, &stack)?;
    }
    let report = apply::apply(&cloud, aws::registry(), &stack, &plan, &mut state, &store).await?;
    if report.failed.is_empty() && report.skipped.is_empty() {
        // Whatever still carried an origin from before `state migrate` was re-marked by this plan.
        state.former_origins.clear();
        // What `down --keep-data` kept is part of the whole stack again.
        state.kept.clear();
    }
    store.save(&state).await?;
    let applied = report.done.len();
    report.into_result("up")?;
    print_outputs(ctx, &stack, &state, Some(&plan), &cloud, applied, started);
    Ok(plan)
}

/// `provision down`: deletes what the stack owns, dependents first: everything the state records
/// that still carries the stack's mark, what an interrupted run may have made (found through the
/// journal), and what carries the mark under a declared name although the state lost it. What
/// does not carry the mark is left alone, and said so. What cannot be read (a permission
/// missing, an endpoint that does not answer) cannot be proven the stack's: it is kept in the
/// state and listed, everything else is deleted, and `down` fails so that a later `down`
/// finishes. The state file goes only once it records nothing that may still exist.
pub async fn down(ctx: &Context, options: DownOptions) -> Result<()> {
    let DownOptions { yes, keep_data, no_final_snapshot } = options;
    let started = Instant::now();
    let mut cloud = Cloud::connect(ctx.target.clone()).await?;
    cloud.skip_final_snapshot = no_final_snapshot;
    let cloud = Arc::new(cloud);
    let (store, mut state) = StateStore::open(ctx.state.as_ref(), &ctx.stack, "down").await?;
    ensure_program(ctx, &state)?;
    // A protected stack's data is never deleted; `--keep-data` deletes none of it.
    if ctx.settings.protect && !keep_data {
        return Err(refuse_protected(ctx, &state));
    }
    let keep = if keep_data { data_and_what_it_needs(&state) } else { BTreeSet::new() };
    if keep_data && keep.is_empty() {
        bail!(
            "stack `{}` records nothing that holds data (no table, bucket, queue, stream or database), so \
             --keep-data would keep nothing; nothing was deleted. To delete the stack: `provision down`",
            ctx.stack
        );
    }
    let declared = declared_for_teardown(ctx, &cloud, &state).await;
    let findings = ownership::reconcile(&cloud, aws::registry(), &declared, &mut state, &BTreeSet::new()).await?;
    let mut left: Vec<String> = findings.foreign.iter().map(Foreign::describe).collect();
    let verified = verify_marks(&cloud, &declared, &mut state, &findings.recovered_unmarked).await?;
    left.extend(verified.released);
    let mut unverified = findings.unreadable.clone();
    unverified.extend(verified.unreadable);
    if !ctx.json {
        println!("Stack `{}` on {}:", ctx.stack, cloud.describe());
        for note in &findings.notes {
            println!("  ! {note}");
        }
    }
    let kept: BTreeSet<&String> = unverified.iter().map(|(id, _)| id).chain(&keep).collect();
    let mut plan = plan::destroy_all(&ctx.stack, &state);
    plan.changes.retain(|change| !kept.contains(&change.id));
    let mut deleted = 0;
    let mut deleted_again = Vec::new();
    if plan.changes.is_empty() && unverified.is_empty() && keep.is_empty() {
        store.remove(&state).await?;
        print_left(&left);
        println!(
            "Stack `{}` owns nothing on {}: nothing to delete ({}).",
            ctx.stack,
            cloud.describe(),
            api_call_count(&cloud)
        );
        return Ok(());
    }
    if !plan.changes.is_empty() {
        if !ctx.json {
            print!("{plan}");
            print_kept(&state, &keep);
            print_data_deleted(&data_deleted(&cloud, &state, &plan).await);
        }
        confirm(yes, "delete these resources")?;
        let deleting: Vec<(String, Kind, Recorded)> = plan
            .changes
            .iter()
            .filter_map(|change| Some((change.id.clone(), change.kind, state.resources.get(&change.id)?.recorded())))
            .collect();
        let deletes_began = std::time::SystemTime::now();
        let empty_stack = StackDef::new(&ctx.stack, &declared.mark.origin);
        let report = apply::apply(&cloud, aws::registry(), &empty_stack, &plan, &mut state, &store).await?;
        deleted = report.done.len();
        report.into_result("down")?;
        deleted_again = sweep_remade(&cloud, &deleting, deletes_began).await;
        if !ctx.json {
            for removed in &deleted_again {
                println!("  ! {removed}");
            }
        }
    }
    print_left(&left);
    if !unverified.is_empty() {
        store.save(&state).await?;
        return Err(refuse_unverified(ctx, deleted, &unverified));
    }
    if !keep.is_empty() {
        state.kept = keep.iter().filter(|id| state.resources.contains_key(*id)).cloned().collect();
        store.save(&state).await?;
        report_kept(ctx, &cloud, &state, deleted, started);
        return Ok(());
    }
    store.remove(&state).await?;
    let mutating = cloud.calls.mutating().len();
    if ctx.json {
        println!(
            "{}",
            json!({ "stack": ctx.stack, "deleted": deleted, "deleted_again": deleted_again, "left": left, "mutating_calls": mutating, "seconds": started.elapsed().as_secs_f64() })
        );
    } else {
        println!(
            "Deleted {deleted} resources of stack `{}` in {:.1} s ({}).",
            ctx.stack,
            started.elapsed().as_secs_f64(),
            api_call_count(&cloud)
        );
    }
    Ok(())
}

/// How long `down` on an emulator gives an invocation still in flight to write to its deleted
/// log group before it looks for the groups made again. On AWS a function cannot make its log
/// group (its role has no `logs:CreateLogGroup`: the stack makes them), so it looks at once.
const REMADE_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// After `down` deleted `deleted` (from `since` on): what the stack's own work made again under
/// the same names (a log group an invocation still in flight wrote to), deleted again. Says
/// what it removed; what it could not check is a warning on stderr (everything the stack
/// recorded is deleted by then).
async fn sweep_remade(
    cloud: &Arc<Cloud>,
    deleted: &[(String, Kind, Recorded)],
    since: std::time::SystemTime,
) -> Vec<String> {
    let registry = aws::registry();
    // Only where the functions write (a sink: their log groups) can anything be made again.
    let wrote_to = deleted.iter().any(|(_, kind, _)| registry.teardown(*kind) == aws::Teardown::Sink);
    if cloud.target.is_local() && wrote_to {
        tokio::time::sleep(REMADE_SETTLE).await;
    }
    let sweeps = deleted.iter().map(|(id, kind, recorded)| async move {
        let cx = aws::Cx { cloud: &**cloud, id, may_adopt: false };
        registry
            .driver(*kind)?
            .sweep_remade(&cx, recorded, since)
            .await
            .with_context(|| format!("after deleting `{id}`"))
    });
    let mut removed = Vec::new();
    for swept in futures::future::join_all(sweeps).await {
        match swept {
            Ok(Some(what)) => removed.push(what),
            Ok(None) => {}
            Err(err) => eprintln!(
                "warning: {err:#}. Whether an invocation still running made it again is unknown: if the next `up` \
                 finds it without the stack's mark, delete it by hand"
            ),
        }
    }
    removed
}

/// What `provision down` is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownOptions {
    /// Delete without asking.
    pub yes: bool,
    /// Keep the resources that hold data, and what they need (`--keep-data`).
    pub keep_data: bool,
    /// On AWS, no final snapshot of the RDS instance (`--no-final-snapshot`).
    pub no_final_snapshot: bool,
}

/// The error `down` ends with when some resources could not be read: they are kept.
fn refuse_unverified(ctx: &Context, deleted: usize, unverified: &[(String, String)]) -> anyhow::Error {
    let mut message = format!(
        "deleted {deleted} resource(s) of stack `{}`, but {} could not be read, so they could not be proven the \
         stack's and were not deleted (the state keeps them):",
        ctx.stack,
        unverified.len()
    );
    for (id, why) in unverified {
        message.push_str(&format!("\n  - `{id}`: {why}"));
    }
    message.push_str(
        "\nFix the cause (a missing permission, an endpoint that does not answer), then run `provision down` again \
         to finish.",
    );
    anyhow::anyhow!(message)
}

/// The account and region the stack lives in.
pub struct Placement {
    account_id: String,
    region: String,
}

/// Why a protected stack's `down` deletes nothing: the data it would delete, and how to lift the
/// protection.
fn refuse_protected(ctx: &Context, state: &State) -> anyhow::Error {
    let registry = aws::registry();
    let data: Vec<String> = state
        .resources
        .iter()
        .filter(|(_, r)| registry.driver(r.kind).is_ok_and(|d| d.holds_data()))
        .map(|(id, r)| format!("  - {id} ({})", r.kind.label()))
        .collect();
    let listed = match data.is_empty() {
        true => "  (the state records nothing that holds data)".to_string(),
        false => data.join("\n"),
    };
    anyhow::anyhow!(
        "stack `{}` is protected (\"protect\": true in {}): `down` deletes nothing. It would delete the data in:\n{listed}\n\
         To delete it all: set \"protect\": false, run `provision up` (it turns off the tables' and the database's \
         deletion protection), then `provision down`.",
        ctx.stack,
        ctx.settings.source(),
    )
}

/// The recorded resources that hold data (their kind's driver says so), and every resource they
/// depend on, directly or not: what `down --keep-data` keeps, so that each kept resource still
/// has what it refers to (a database its subnet group, a queue its dead-letter queue).
fn data_and_what_it_needs(state: &State) -> BTreeSet<String> {
    let registry = aws::registry();
    let mut keep: BTreeSet<String> = state
        .resources
        .iter()
        .filter(|(_, r)| registry.driver(r.kind).is_ok_and(|d| d.holds_data()))
        .map(|(id, _)| id.clone())
        .collect();
    let mut pending: Vec<String> = keep.iter().cloned().collect();
    while let Some(id) = pending.pop() {
        for dep in state.resources.get(&id).map(|r| r.deps.clone()).unwrap_or_default() {
            if state.resources.contains_key(&dep) && keep.insert(dep.clone()) {
                pending.push(dep);
            }
        }
    }
    keep
}

/// What each resource the plan deletes holds (for the kinds that hold data), counted at once:
/// `(id, label, count)` with what kept a count from being made.
async fn data_deleted(
    cloud: &Cloud,
    state: &State,
    plan: &Plan,
) -> Vec<(String, &'static str, Result<aws::DataCount>)> {
    let registry = aws::registry();
    let counts = plan.changes.iter().filter_map(|change| {
        let driver = registry.driver(change.kind).ok().filter(|driver| driver.holds_data())?;
        let recorded = state.resources.get(&change.id)?.recorded();
        Some(async move {
            let cx = aws::Cx { cloud, id: &change.id, may_adopt: false };
            let counted = driver.count_data(&cx, &recorded).await;
            let counted = counted.and_then(|count| count.context("its kind counts nothing"));
            (change.id.clone(), change.kind.label(), counted)
        })
    });
    futures::future::join_all(counts).await
}

/// Says what data `down` deletes, before it asks.
fn print_data_deleted(counts: &[(String, &'static str, Result<aws::DataCount>)]) {
    if counts.is_empty() {
        return;
    }
    println!("Data deleted with them (`down --keep-data` keeps it):");
    for (id, label, counted) in counts {
        match counted {
            Ok(count) => println!("    - {id} ({label}): {count}"),
            Err(err) => println!("    - {id} ({label}): could not be counted ({err:#})"),
        }
    }
}

/// Lists what `down --keep-data` keeps, before it asks.
fn print_kept(state: &State, keep: &BTreeSet<String>) {
    if keep.is_empty() {
        return;
    }
    println!("Kept (--keep-data), with their data:");
    for id in keep {
        if let Some(resource) = state.resources.get(id) {
            println!("    = {id:<30} {}", resource.kind.label());
        }
    }
}

/// What `down --keep-data` says once done: what it deleted, what it kept and what comes next.
fn report_kept(ctx: &Context, cloud: &Cloud, state: &State, deleted: usize, started: Instant) {
    if ctx.json {
        println!(
            "{}",
            json!({ "stack": ctx.stack, "deleted": deleted, "kept": state.kept, "seconds": started.elapsed().as_secs_f64() })
        );
        return;
    }
    println!(
        "Deleted {deleted} resources of stack `{}` in {:.1} s and kept {} with their data ({}): {}.\n\
         They stay the stack's: `provision up` carries on with them, `provision down` deletes them.",
        ctx.stack,
        started.elapsed().as_secs_f64(),
        state.kept.len(),
        api_call_count(cloud),
        state.kept.join(", ")
    );
}

/// Turns on the cloud's own deletion protection of every resource whose kind offers it (the
/// `deletion_protection` property), for a protected stack.
fn protect(document: &mut Declaration) -> Result<()> {
    let registry = aws::registry();
    for resource in &mut document.resources {
        let Some(kind) = registry.kinds().find(|k| k.name() == resource.kind) else { continue };
        if registry.driver(kind)?.properties().contains(&"deletion_protection") {
            resource.properties.insert("deletion_protection".into(), true.into());
        }
    }
    Ok(())
}

/// `provision synth`: prints the stack's declaration, the document the engine plans from
/// (`docs/declaration.md`), without building, reading the cloud or changing anything. Where the
/// program needs the account id, `000000000000` stands in for it (said on stderr).
pub fn synth(ctx: &Context) -> Result<()> {
    let needs_account = ctx.program.needs_account_id(&ctx.settings);
    if needs_account {
        eprintln!("synth asks no one for the account id: 000000000000 stands in for it");
    }
    let region = ctx
        .target
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into());
    let place = Placement { account_id: if needs_account { "000000000000".into() } else { String::new() }, region };
    let origin = Mark::origin_of(&ctx.build.workspace);
    let declarer = Declarer { ctx, origin, place, hot_reload: false };
    let document = declarer.document(&Functions::placeholders(&ctx.build))?;
    // Checked as every command checks it, so what synth prints is what `up` would accept.
    document.clone().into_stack(&ctx.stack, &declarer.origin, aws::registry())?;
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

/// Asks STS for the account only when the program needs it (a bucket name carrying it).
pub async fn placement(ctx: &Context, cloud: &Cloud) -> Result<Placement> {
    let needs_account = ctx.program.needs_account_id(&ctx.settings);
    let account_id = if needs_account { cloud.account_id().await? } else { String::new() };
    Ok(Placement { account_id, region: cloud.region.clone() })
}

/// The declared stack, for finding by name what a lost state no longer records. Function code is
/// not needed to find or delete anything, so nothing is built. When the stack cannot be declared
/// (on AWS without a network setting, an account that cannot be asked), only the state and the
/// journal are used.
async fn declared_for_teardown(ctx: &Context, cloud: &Cloud, state: &State) -> StackDef {
    let origin = origin(ctx, state);
    let declared = async { Declarer::new(ctx, cloud, state, false).await?.names() };
    declared.await.unwrap_or_else(|_| StackDef::new(&ctx.stack, &origin))
}

/// What [`verify_marks`] found.
struct MarkCheck {
    /// Why each resource dropped from the state was left: its mark is gone.
    released: Vec<String>,
    /// Recorded resources that could not be read, with the error: kept, not deleted.
    unreadable: Vec<(String, String)>,
}

/// Drops from `state` the recorded resources that no longer carry the stack's mark (removed or
/// changed out of band), and says why: `down` leaves them. Resources the journal just recovered
/// from a create killed before its tags were written are the stack's all the same. What a
/// refresh does not find stays: deleting what is gone is a no-op, and a part-made resource (a
/// database whose table is not there yet) is still deleted. What cannot be read is returned.
async fn verify_marks(
    cloud: &Arc<Cloud>,
    declared: &StackDef,
    state: &mut State,
    recovered: &BTreeSet<String>,
) -> Result<MarkCheck> {
    let mut check = MarkCheck { released: Vec::new(), unreadable: Vec::new() };
    for (id, found) in plan::refresh_each(cloud, aws::registry(), state).await? {
        let resource = &state.resources[&id];
        let found = match found {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(err) => {
                check.unreadable.push((id, format!("{err:#}")));
                continue;
            }
        };
        if !aws::registry().takes_tags(resource.kind) || recovered.contains(&id) {
            continue;
        }
        if mark::recorded_owner(&declared.mark, &state.former_origins, &found.props) != mark::Owner::ThisStack {
            check.released.push(format!(
                "`{id}` ({}): recorded by this stack, but its mark was removed or changed out of band, so it is no \
                 longer taken for the stack's. Delete it yourself, or take it back with `provision up --adopt {id}` \
                 and then run `down`",
                resource.kind.label()
            ));
            state.resources.remove(&id);
        }
    }
    Ok(check)
}

fn print_left(left: &[String]) {
    if left.is_empty() {
        return;
    }
    eprintln!("Left untouched ({}), because they do not carry this stack's mark:", left.len());
    for line in left {
        eprintln!("  - {line}");
    }
}

/// What a settings change during `watch` came to.
pub enum HotApply {
    /// The deployed stack already matches.
    NothingToDo,
    /// Applied in place, as `(resource id, changed fields)`.
    Applied(Vec<(String, Vec<String>)>),
    /// It would create, replace or delete something: the plan, for the user to apply with `up`.
    NeedsUp(Plan),
}

/// `watch` on a settings change: applies it with no prompt when it only updates function
/// configuration or mapping settings in place (the functions' code as deployed); anything
/// else is returned as a plan for `up`. Uses the zips already built; changes nothing else.
pub async fn hot_apply(ctx: &Context, cloud: &Arc<Cloud>) -> Result<HotApply> {
    let (store, mut state) = StateStore::open(ctx.state.as_ref(), &ctx.stack, "watch").await?;
    ensure_program(ctx, &state)?;
    let stack = Declarer::new(ctx, cloud, &state, hot_reload(ctx, cloud).await?).await?.built(true)?;
    let (plan, foreign) = plan::prepare(cloud, aws::registry(), &stack, &mut state, &BTreeSet::new()).await?;
    if !foreign.is_empty() {
        return Err(refuse_foreign(ctx, &foreign));
    }
    if plan.is_empty() {
        return Ok(HotApply::NothingToDo);
    }
    let in_place_kinds =
        [aws::lambda_function::KIND, aws::event_source_mapping::KIND, aws::sqs_event_source_mapping::KIND];
    let in_place = plan.actionable().all(|c| {
        c.action == plan::Action::Update
            && in_place_kinds.contains(&c.kind)
            && !c.fields.iter().any(|f| matches!(f.as_str(), "code_sha256" | "architecture"))
    });
    if !in_place {
        return Ok(HotApply::NeedsUp(plan));
    }
    let applied: Vec<(String, Vec<String>)> = plan.actionable().map(|c| (c.id.clone(), c.fields.clone())).collect();
    apply::apply(cloud, aws::registry(), &stack, &plan, &mut state, &store).await?.into_result("up")?;
    store.save(&state).await?;
    Ok(HotApply::Applied(applied))
}

/// `provision outputs`: prints the values the program exports, from the recorded outputs,
/// without calling AWS.
pub async fn outputs(ctx: &Context) -> Result<()> {
    let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    if state.resources.is_empty() {
        bail!("stack `{}` has not been created: run `provision up` first", ctx.stack);
    }
    ensure_program(ctx, &state)?;
    let cloud = Cloud::connect(ctx.target.clone()).await?;
    // The same request as `up` made (the account asked where the program needs it), so a
    // program's kept answer serves and its names are the deployed ones.
    let place = placement(ctx, &cloud).await?;
    let declarer = Declarer { ctx, origin: origin(ctx, &state), place, hot_reload: false };
    let pairs = exported(&declarer.names()?, &state);
    if ctx.json {
        let map: serde_json::Map<String, serde_json::Value> = pairs.into_iter().map(|(k, v)| (k, json!(v))).collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (label, value) in pairs {
            println!("{label:<18} {value}");
        }
    }
    Ok(())
}

/// `provision api-key`: the value of the stack's API key, asked of API Gateway (it is never
/// stored). Only the value goes to stdout, for scripts.
pub async fn api_key(ctx: &Context) -> Result<()> {
    let cloud = Cloud::connect(ctx.target.clone()).await?;
    let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    let Some(id) = api_key_id(&state) else {
        bail!(
            "stack `{}` has no API key: set \"api\": {{\"auth\": \"api_key\"}} in the settings and run `provision up`",
            ctx.stack
        );
    };
    println!("{}", crate::aws::api_key::value(&cloud, id).await?);
    Ok(())
}

/// How requests to the stack's API prove who sends them, as the deployed stack requires (read
/// from its state): its API key, a SigV4 signature with the caller's credentials, or nothing.
pub async fn caller_auth(ctx: &Context, cloud: &Cloud) -> Result<crate::http::CallerAuth> {
    use crate::http::CallerAuth;
    let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    let signed = state.resources.values().filter(|r| r.kind == crate::aws::rest_api::KIND).any(|r| {
        r.props["routes"]
            .as_array()
            .is_some_and(|routes| routes.iter().any(|route| route["authorization"] == "AWS_IAM"))
    });
    Ok(if let Some(id) = api_key_id(&state) {
        CallerAuth::ApiKey(crate::aws::api_key::value(cloud, id).await?)
    } else if signed {
        CallerAuth::SigV4 { credentials: cloud.credentials().await?, region: cloud.region.clone() }
    } else {
        CallerAuth::Anonymous
    })
}

/// The id of the stack's API key, as its state records it.
fn api_key_id(state: &State) -> Option<&str> {
    let key = state.resources.values().find(|r| r.kind == crate::aws::api_key::KIND)?;
    key.outputs.get("id")?.as_str()
}

/// The functions the stack's program declares (the state says which program; nothing is built).
pub async fn declared_functions(ctx: &Context, cloud: &Cloud) -> Result<Vec<DeclaredFunction>> {
    let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
    ensure_program(ctx, &state)?;
    let place = placement(ctx, cloud).await?;
    let declarer = Declarer { ctx, origin: origin(ctx, &state), place, hot_reload: false };
    Ok(programs::functions_of(&declarer.names()?))
}

/// The stack's exports with their values from the state ("(not created)" while unknown).
fn exported(stack: &StackDef, state: &State) -> Vec<(String, String)> {
    let known = state.known_outputs();
    stack
        .resolve_exports(&known)
        .into_iter()
        .map(|(name, value)| (name, value.unwrap_or_else(|| "(not created)".to_string())))
        .collect()
}

fn print_plan(ctx: &Context, plan: &Plan, cloud: &Cloud) {
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&plan_json(plan, cloud)).expect("plans serialize"));
    } else {
        println!("Stack `{}` on {}:", ctx.stack, cloud.describe());
        print!("{plan}");
        println!("{}.", api_call_count(cloud));
    }
}

/// `118 API calls, 0 mutating`: what every run ends with.
fn api_call_count(cloud: &Cloud) -> String {
    format!("{} API calls, {} mutating", cloud.calls.all().len(), cloud.calls.mutating().len())
}

fn plan_json(plan: &Plan, cloud: &Cloud) -> serde_json::Value {
    json!({
        "stack": plan.stack,
        "changes": plan.actionable().collect::<Vec<_>>(),
        "drift": plan.drifted().collect::<Vec<_>>(),
        "unchanged": plan.count(plan::Action::Same),
        "notes": plan.notes,
        "api_calls": cloud.calls.all().len(),
        "mutating_calls": cloud.calls.mutating(),
    })
}

fn print_outputs(
    ctx: &Context,
    stack: &StackDef,
    state: &State,
    plan: Option<&Plan>,
    cloud: &Cloud,
    applied: usize,
    started: Instant,
) {
    let pairs = exported(stack, state);
    if ctx.json {
        let outputs: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k, json!(v))).collect();
        let mut report = plan.map(|p| plan_json(p, cloud)).unwrap_or_else(|| json!({}));
        report["outputs"] = serde_json::Value::Object(outputs);
        report["applied"] = json!(applied);
        report["seconds"] = json!(started.elapsed().as_secs_f64());
        println!("{}", serde_json::to_string_pretty(&report).expect("reports serialize"));
        return;
    }
    println!(
        "\n{applied} changes applied in {:.1} s ({}).\nOutputs:",
        started.elapsed().as_secs_f64(),
        api_call_count(cloud)
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
