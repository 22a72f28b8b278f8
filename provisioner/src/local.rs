//! `provision local start|stop|status|env`: the local cloud (MiniStack for the AWS APIs,
//! PostgreSQL for the database; LocalStack Community on request) on this machine, so a project
//! needs nothing from this repository. It runs the repository's `scripts/local-cloud`, built into
//! `provision`, with its files under one folder: `.local-cloud/` of this repository when run
//! inside a checkout of it, else `$XDG_DATA_HOME/provision` (`~/.local/share/provision`), or
//! `PROVISION_LOCAL_HOME`.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The script, as this `provision` was built with it.
const SCRIPT: &str = include_str!("../../scripts/local-cloud");

/// Runs `action` (`start`, `stop`, `status`, `env`, or `localstack <action>`) and returns the
/// script's exit code (`status` answers 3 when something is stopped).
pub fn run(action: &[&str]) -> Result<i32> {
    let home = home()?;
    let status = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("provision local")
        .args(action)
        .env("PROVISION_LOCAL_HOME", &home)
        .env("PROVISION_LOCAL_NAME", "provision local")
        .status()
        .context("running bash for `provision local`: is bash installed?")?;
    Ok(status.code().unwrap_or(1))
}

/// Where the local cloud's files go (the script adds `.local-cloud/`).
fn home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("PROVISION_LOCAL_HOME") {
        return Ok(PathBuf::from(home));
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if let Some(checkout) = cwd.ancestors().find(|d| is_this_repository(d)) {
        return Ok(checkout.to_path_buf());
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
        .context("neither XDG_DATA_HOME nor HOME is set: set PROVISION_LOCAL_HOME to a folder for the local cloud")?;
    Ok(data.join("provision"))
}

/// A checkout of this repository (its tests and demo use its `.local-cloud/`).
fn is_this_repository(dir: &Path) -> bool {
    dir.join("scripts/local-cloud").is_file() && dir.join("provisioner/Cargo.toml").is_file()
}
