//! One hot-swap: build the affected functions, package them, upload those whose zip changed,
//! wait until each is live, and record the new code hash in the state so a later `up` plans no
//! change. Prints one line per function with its phases.

use crate::artifact::{self, Artifact};
use crate::aws::{lambda_function, Cx};
use crate::cloud::Cloud;
use crate::commands::Context;
use crate::engine::state::{self, StateStore};
use crate::programs::DeclaredFunction;
use anyhow::{bail, Context as _, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What is deployed now, per function binary: its resource, physical name, architecture and
/// code hash.
pub struct LiveFunctions {
    functions: BTreeMap<String, LiveFunction>,
}

struct LiveFunction {
    /// The resource's id in the stack (what the state records it under).
    id: String,
    name: String,
    architecture: String,
    code_sha256: String,
    /// Set when the emulator runs the function from a hot-reload folder: swaps copy, not upload.
    hot_reload: bool,
}

impl LiveFunctions {
    /// Reads the deployed `functions` from the stack's state; the stack must be up.
    pub async fn load(ctx: &Context, declared: &[DeclaredFunction]) -> Result<Self> {
        let (_reader, state) = StateStore::open_read_only(ctx.state.as_ref(), &ctx.stack).await?;
        let mut functions = BTreeMap::new();
        for function in declared {
            let Some(resource) = state.resources.get(&function.id) else {
                bail!(
                    "stack `{}` has no function `{}` yet: run `provision up` first, then watch",
                    ctx.stack,
                    function.id
                );
            };
            let text = |key: &str| resource.props.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            functions.insert(
                function.binary.clone(),
                LiveFunction {
                    id: function.id.clone(),
                    name: text("name"),
                    architecture: text("architecture"),
                    code_sha256: text("code_sha256"),
                    hot_reload: resource.props.get("hot_reload_dir").is_some_and(|d| d.is_string()),
                },
            );
        }
        Ok(Self { functions })
    }
}

/// Rebuilds and hot-swaps `functions` after the files `changed` were saved; returns the ones
/// whose new code went live. A build failure is returned after the compiler's output has been
/// shown; nothing was uploaded.
pub async fn swap(
    ctx: &Context,
    cloud: &Cloud,
    live: &mut LiveFunctions,
    functions: &[&str],
    changed: &[PathBuf],
) -> Result<Vec<String>> {
    println!("change detected: rebuilding {}", functions.join(", "));
    let started = Instant::now();
    let built = artifact::build(&ctx.build, functions, changed)?;
    let packaging = Instant::now();
    let artifacts = artifact::package_all(&ctx.build, functions)?;
    let packaged = packaging.elapsed();

    let deployed_now = &live.functions;
    let uploads = artifacts.iter().map(|artifact| async move {
        let deployed = &deployed_now[&artifact.function];
        if deployed.hot_reload {
            let started = Instant::now();
            artifact::stage_hot_reload(&ctx.build, &artifact.function)?;
            return Ok((artifact, Some((started.elapsed(), Duration::ZERO))));
        }
        if deployed.code_sha256 == artifact.sha256 {
            return Ok((artifact, None));
        }
        let zip =
            std::fs::read(&artifact.zip_path).with_context(|| format!("reading {}", artifact.zip_path.display()))?;
        let cx = Cx { cloud, id: &deployed.id, may_adopt: false };
        let code = lambda_function::Code::Zip(zip);
        let phases = lambda_function::upload_code(&cx, &deployed.name, &deployed.architecture, code).await?;
        anyhow::Ok((artifact, Some(phases)))
    });
    let results = futures::future::join_all(uploads).await;
    let mut swapped: Vec<&Artifact> = Vec::new();
    let mut failure = None;
    for result in results {
        match result {
            Ok((artifact, None)) => println!("{} unchanged: same binary, nothing uploaded", artifact.function),
            Ok((artifact, Some((upload, ready)))) => {
                println!(
                    "{} live in {:.2} s (build {:.2} s, package {:.2} s, upload {:.2} s, ready {:.2} s)",
                    artifact.function,
                    started.elapsed().as_secs_f64(),
                    built.as_secs_f64(),
                    packaged.as_secs_f64(),
                    upload.as_secs_f64(),
                    ready.as_secs_f64()
                );
                swapped.push(artifact);
            }
            Err(err) => failure = Some(err),
        }
    }
    swapped.retain(|a| !live.functions[&a.function].hot_reload);
    for artifact in &swapped {
        live.functions.get_mut(&artifact.function).expect("known function").code_sha256 = artifact.sha256.clone();
    }
    record_hashes(ctx, live, &swapped).await;
    match failure {
        Some(err) => Err(err),
        None => Ok(swapped.iter().map(|a| a.function.clone()).collect()),
    }
}

/// Records the new code hashes in the state, so a later `up` plans no change. If another run
/// holds the lock for long, says so: that run's own refresh sees the new code anyway.
async fn record_hashes(ctx: &Context, live: &LiveFunctions, swapped: &[&Artifact]) {
    if swapped.is_empty() {
        return;
    }
    let updates: Vec<(String, serde_json::Map<String, serde_json::Value>)> = swapped
        .iter()
        .map(|artifact| {
            let props = json!({ "code_sha256": artifact.sha256, "zip_path": artifact.zip_path.display().to_string() });
            (live.functions[&artifact.function].id.clone(), props.as_object().expect("an object").clone())
        })
        .collect();
    if let Err(err) =
        state::record_applied(ctx.state.as_ref(), &ctx.stack, "watch", &updates, Duration::from_secs(5)).await
    {
        println!("warning: could not record the new code hash: {err:#}");
    }
}
