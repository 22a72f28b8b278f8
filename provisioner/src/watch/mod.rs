//! `provision watch`: hot-swaps function code when a source file changes, and function or
//! mapping configuration when the settings file changes; shows what the functions log.
//!
//! One loop: a native file watcher ([`notify`]) feeds changed paths; a burst of saves is
//! debounced into one batch; [`changes::CrateGraph`] says which functions the batch affects;
//! [`swap`] rebuilds them incrementally, zips them deterministically, uploads only what
//! changed, and waits until the new code is live. Saves that arrive during a build or upload
//! queue up and become one follow-up run. A failed build keeps the old code live. A change of
//! the settings file is applied in place when it only touches function configuration or mapping
//! settings (`commands::hot_apply`); anything more is printed as a plan with the hint to run
//! `up`. Beside the loop, a log follower ([`crate::logs::Follower`]) prints every function's
//! warnings and errors as they happen, and a swapped function's first lines after a swap.

pub mod changes;
mod logs;
mod settings;
pub mod swap;

use crate::cloud::Cloud;
use crate::commands::Context;
use anyhow::{Context as _, Result};
use changes::CrateGraph;
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Options of `provision watch`.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Quiet time that ends a burst of saves.
    pub debounce: Duration,
}

/// Watches `functions/` until Ctrl-C, hot-swapping the functions each change affects.
pub async fn run(ctx: &Context, options: WatchOptions) -> Result<()> {
    let cloud = Arc::new(Cloud::connect(ctx.target.clone()).await?);
    let declared = crate::commands::declared_functions(ctx, &cloud).await?;
    let binaries: Vec<&str> = declared.iter().map(|f| f.binary.as_str()).collect();
    let mut live = swap::LiveFunctions::load(ctx, &declared).await?;
    let graph = CrateGraph::load(&ctx.build.workspace)?;
    let watched = ctx.build.workspace.join("functions");

    let (sender, mut changed) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !matches!(event.kind, EventKind::Access(_)) {
                let _ = sender.send(event.paths);
            }
        }
    })
    .context("starting the file watcher")?;
    if watched.is_dir() {
        watcher.watch(&watched, RecursiveMode::Recursive).with_context(|| format!("watching {}", watched.display()))?;
    }
    // The program's own crate, where it is a package of the workspace: an edit is applied like a
    // settings edit.
    let program = ctx.program.source_package().map(str::to_string);
    if let Some(dir) = program.as_deref().and_then(|package| graph.dir(package)) {
        if !dir.starts_with(&watched) {
            watcher.watch(dir, RecursiveMode::Recursive).with_context(|| format!("watching {}", dir.display()))?;
        }
    }
    // Editors replace files on save: watch the settings file's folder and pick the file out.
    let settings_file = ctx.settings_path.clone();
    if let Some(folder) = settings_file.as_ref().and_then(|f| f.parent()) {
        watcher.watch(folder, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", folder.display()))?;
    }
    let mut ctx = ctx.clone();
    let logs = logs::spawn_follower(cloud.clone(), &declared);
    println!(
        "watching {} for stack `{}` ({}: {}) on {} ({} profile). Save a file to hot-swap; Ctrl-C to stop.",
        watched.display(),
        ctx.stack,
        ctx.program.name(),
        binaries.join(", "),
        cloud.describe(),
        ctx.build.profile
    );

    // One listener for the whole run: a Ctrl-C that arrives during a swap is kept, and ends the
    // loop as soon as the swap is done.
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("listening for SIGTERM")?;
    loop {
        let first = tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            paths = changed.recv() => match paths { Some(paths) => paths, None => break },
        };
        let batch = debounce(first, &mut changed, options.debounce).await;
        if settings_file.as_ref().is_some_and(|f| batch.iter().any(|p| p == f)) {
            settings::apply_change(&mut ctx, &cloud).await;
        } else if program.as_deref().is_some_and(|package| graph.touches(package, &batch)) {
            settings::apply_program_change(&ctx, &cloud).await;
        }
        let affected = graph.affected(&binaries, &batch);
        if affected.is_empty() {
            continue;
        }
        let names: Vec<&str> = affected.into_iter().collect();
        let sources: Vec<PathBuf> = batch.into_iter().filter(|p| changes::is_relevant(p)).collect();
        match swap::swap(&ctx, &cloud, &mut live, &names, &sources).await {
            Ok(swapped) => logs.show_next(&swapped),
            Err(err) => println!("hot-swap failed: {err:#}\nthe previous code stays live; still watching"),
        }
    }
    println!("stopped watching");
    Ok(())
}

/// Collects every path that arrives until `quiet` passes with none.
async fn debounce(
    first: Vec<PathBuf>,
    changed: &mut mpsc::UnboundedReceiver<Vec<PathBuf>>,
    quiet: Duration,
) -> Vec<PathBuf> {
    let mut batch = first;
    while let Ok(Some(more)) = tokio::time::timeout(quiet, changed.recv()).await {
        batch.extend(more);
    }
    batch.sort();
    batch.dedup();
    batch
}
