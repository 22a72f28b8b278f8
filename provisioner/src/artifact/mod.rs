//! Function artifacts: builds the function binaries and packages each as a deterministic zip
//! (fixed timestamps and permissions), so the same build always gives the same SHA-256 and an
//! unchanged function uploads nothing.
//!
//! Three kinds of build:
//! - `native` with the `dev` profile on Linux, for an emulator running on this machine: the
//!   **split** layout ([`split`]): a host executable, the function's logic as a small library, and
//!   the Rust standard library they share, so that a hot-swap of a logic edit compiles, links,
//!   zips and uploads only what changed;
//! - `native` otherwise: one static binary per function, built by cargo with the host toolchain;
//! - `portable` (`cargo zigbuild` for `<arch>-unknown-linux-gnu.2.34`): one binary linked against
//!   glibc 2.34, the version of Lambda's `provided.al2023` runtime, whatever the host has.

mod package;
mod recipe;
pub mod split;

pub use package::{package, package_all, zip_bootstrap};

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A packaged function.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub function: String,
    pub zip_path: PathBuf,
    /// Base64 SHA-256 of the zip: what Lambda reports as `CodeSha256`.
    pub sha256: String,
    pub zip_bytes: usize,
    /// The folder a hot-reloading emulator would run the binary from.
    pub hot_reload_dir: PathBuf,
}

/// Where and how function binaries are built.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// The workspace root (holds `Cargo.toml` and `functions/`).
    pub workspace: PathBuf,
    /// Cargo profile: `dev` (fast rebuilds, for emulators) or `release` (for AWS).
    pub profile: String,
    /// `None`: native build. `Some(arch)`: portable build for Lambda's glibc on `x86_64` or `arm64`.
    pub portable_arch: Option<String>,
    /// The functions run on a local emulator (an endpoint on this machine), not on AWS.
    pub for_local_endpoint: bool,
}

/// The newest glibc that Lambda's `provided.al2023` runtime has.
pub const LAMBDA_GLIBC: (u32, u32) = (2, 34);

impl BuildConfig {
    /// The cargo target directory (honours `CARGO_TARGET_DIR`).
    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| self.workspace.join("target"))
    }

    fn profile_dir(&self) -> &str {
        if self.profile == "dev" {
            "debug"
        } else {
            &self.profile
        }
    }

    /// The rust target triple of a portable build (`x86_64-unknown-linux-gnu`).
    pub fn portable_triple(&self) -> Option<&'static str> {
        match self.portable_arch.as_deref()? {
            "arm64" => Some("aarch64-unknown-linux-gnu"),
            _ => Some("x86_64-unknown-linux-gnu"),
        }
    }

    fn output_dir(&self) -> PathBuf {
        match self.portable_triple() {
            Some(triple) => self.target_dir().join(triple).join(self.profile_dir()),
            None => self.target_dir().join(self.profile_dir()),
        }
    }

    /// True when functions are built in the split layout ([`split`]): a native `dev` build on
    /// Linux for a local emulator, what an emulator on this machine runs and hot-swap is for.
    /// AWS always gets one static binary per function.
    pub fn split_layout(&self) -> bool {
        cfg!(target_os = "linux") && self.for_local_endpoint && self.portable_arch.is_none() && self.profile == "dev"
    }

    /// The built binary of `function` (the single-binary layouts).
    pub fn binary_path(&self, function: &str) -> PathBuf {
        self.output_dir().join(function)
    }

    /// Where the zip of `function` is written.
    pub fn zip_path(&self, function: &str) -> PathBuf {
        let kind = self.portable_triple().unwrap_or("native");
        self.target_dir().join("lambda").join(kind).join(self.profile_dir()).join(function).join("bootstrap.zip")
    }
}

/// Builds the given functions; `changed` is what was saved since the last build when the caller
/// knows it (`watch`; empty otherwise): in the split layout an edit of nothing but the
/// functions' logic skips cargo. On failure, the compiler's output has already been shown on
/// stderr and the error says so. Returns how long it took.
pub fn build(config: &BuildConfig, functions: &[&str], changed: &[PathBuf]) -> Result<Duration> {
    let started = Instant::now();
    if config.split_layout() {
        split::build(config, functions, changed)?;
    } else {
        cargo_build(config, functions, false)?;
    }
    Ok(started.elapsed())
}

/// Runs cargo for the given binaries (one invocation). With `take_recipes`, cargo runs with
/// `-vv` and the rustc command lines of the binary crates it compiles are returned (its other
/// progress lines are not shown); otherwise it runs quietly.
fn cargo_build(config: &BuildConfig, functions: &[&str], take_recipes: bool) -> Result<Vec<(String, recipe::Recipe)>> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(&config.workspace);
    let verbosity = if take_recipes { "-vv" } else { "--quiet" };
    match config.portable_triple() {
        None => {
            command.args(["build", verbosity, "--profile", &config.profile]);
        }
        Some(triple) => {
            let tools = config.workspace.join(".tools/venv/bin");
            if !tools.join("cargo-zigbuild").exists() && which("cargo-zigbuild").is_none() {
                bail!(
                    "a portable build (for Lambda's glibc {}.{}) needs cargo-zigbuild and zig: run `scripts/build-tools` \
                     (installs them from PyPI into .tools/), or pass --lambda-build native",
                    LAMBDA_GLIBC.0,
                    LAMBDA_GLIBC.1
                );
            }
            let path = std::env::join_paths(
                std::iter::once(tools).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
            )?;
            command.env("PATH", path).args(["zigbuild", verbosity, "--profile", &config.profile, "--target"]);
            command.arg(format!("{triple}.{}.{}", LAMBDA_GLIBC.0, LAMBDA_GLIBC.1));
        }
    }
    for function in functions {
        command.args(["--bin", function]);
    }
    let (status, recipes) = if take_recipes {
        run_taking_recipes(command, functions)?
    } else {
        let status = command.stdout(std::io::stderr()).status();
        (status.context("running cargo: is the Rust toolchain installed and on PATH?")?, Vec::new())
    };
    if !status.success() {
        let hint = match config.portable_triple() {
            Some(triple) => format!(" (for a portable build the `{triple}` standard library must be installed: `rustup target add {triple}`)"),
            None => String::new(),
        };
        bail!("building {} failed (compiler output above); the deployed code is unchanged{hint}", functions.join(", "));
    }
    Ok(recipes)
}

/// Runs a `-vv` cargo, showing its messages but not its progress lines (on stderr: stdout may
/// be a `--json` answer), and picks out the rustc command lines of the `functions`' binary crates.
fn run_taking_recipes(
    mut command: Command,
    functions: &[&str],
) -> Result<(std::process::ExitStatus, Vec<(String, recipe::Recipe)>)> {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running cargo: is the Rust toolchain installed and on PATH?")?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // Build scripts' output arrives on cargo's stdout at -vv: shown like the rest, filtered.
    let forward = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if !is_progress(line.trim_start()) {
                eprintln!("{line}");
            }
        }
    });
    let mut recipes = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.context("reading cargo's output")?;
        let trimmed = line.trim_start();
        if trimmed.starts_with("Running `") {
            let crate_names = functions.iter().map(|f| (f, f.replace('-', "_")));
            for (function, crate_name) in crate_names {
                if let Some(recipe) = recipe::Recipe::from_cargo_line(&line, &crate_name) {
                    recipes.push((function.to_string(), recipe));
                }
            }
        } else if !is_progress(trimmed) {
            eprintln!("{line}");
        }
    }
    forward.join().ok();
    Ok((child.wait().context("waiting for cargo")?, recipes))
}

/// Cargo's progress lines at `-vv`, and the notes of dependencies' build scripts (what
/// `--quiet` would not print).
fn is_progress(line: &str) -> bool {
    const PREFIXES: [&str; 6] = ["Fresh ", "Compiling ", "Dirty ", "Finished ", "Blocking ", "Running "];
    let build_script_note = line.starts_with("warning: ") && line.split(' ').nth(1).is_some_and(|w| w.contains('@'));
    PREFIXES.iter().any(|p| line.starts_with(p)) || (line.starts_with('[') && line.contains("] ")) || build_script_note
}

/// Builds the functions unless nothing they are built from changed since the last build: the
/// newest modification time under `functions/`, `Cargo.toml` and `Cargo.lock`, the profile and
/// target, and `RUSTFLAGS` make a fingerprint kept beside the binaries. Cargo's own check of an
/// unchanged workspace takes a few hundred milliseconds; this one takes one directory walk.
/// Returns the build time, or `None` when the build was skipped.
pub fn build_if_changed(config: &BuildConfig, functions: &[&str]) -> Result<Option<Duration>> {
    let fingerprint = source_fingerprint(config);
    let stamp = config.output_dir().join(".provision-build-stamp");
    let built = functions.iter().all(|f| built_files(config, f).iter().all(|p| p.exists()))
        && (!config.split_layout() || split::std_library(config).is_ok());
    if built && std::fs::read_to_string(&stamp).is_ok_and(|seen| seen == fingerprint) {
        return Ok(None);
    }
    let took = build(config, functions, &[])?;
    // Taken before the build: an edit saved during it makes the next check build again.
    std::fs::write(&stamp, fingerprint).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(Some(took))
}

/// What a build of `function` leaves, in the layout `config` builds.
fn built_files(config: &BuildConfig, function: &str) -> Vec<PathBuf> {
    if config.split_layout() {
        vec![split::host_binary(config, function), split::logic_library(config, function)]
    } else {
        vec![config.binary_path(function)]
    }
}

fn source_fingerprint(config: &BuildConfig) -> String {
    let root = &config.workspace;
    let mut newest = std::time::UNIX_EPOCH;
    let mut files = 0usize;
    let mut visit = vec![root.join("functions")];
    for file in [root.join("Cargo.toml"), root.join("Cargo.lock")] {
        if let Ok(modified) = std::fs::metadata(&file).and_then(|m| m.modified()) {
            newest = newest.max(modified);
        }
    }
    while let Some(dir) = visit.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if path.file_name().is_some_and(|n| n != "target" && !n.to_string_lossy().starts_with('.')) {
                    visit.push(path);
                }
            } else if let Ok(modified) = meta.modified() {
                newest = newest.max(modified);
                files += 1;
            }
        }
    }
    let newest = newest.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    format!("{newest} {files} {} {:?} {rustflags}", config.profile, config.portable_triple())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// An artifact that names where the zip of `function` would be, without building or reading
/// anything: enough to declare a stack when only names matter (`down` finding resources by name,
/// `watch` and `logs` finding the functions).
pub fn placeholder(config: &BuildConfig, function: &str) -> Artifact {
    Artifact {
        function: function.to_string(),
        zip_path: config.zip_path(function),
        sha256: String::new(),
        zip_bytes: 0,
        hot_reload_dir: hot_reload_dir(config, function),
    }
}

/// The newest `GLIBC_x.y` symbol version a binary asks for, by scanning it for version strings
/// (they sit in the dynamic string table). `None` for a binary that needs no glibc (static).
pub fn newest_glibc_needed(binary: &[u8]) -> Option<(u32, u32)> {
    const MARK: &[u8] = b"GLIBC_";
    let mut newest = None;
    for (i, window) in binary.windows(MARK.len()).enumerate() {
        if window != MARK {
            continue;
        }
        let rest = &binary[i + MARK.len()..];
        let text: String =
            rest.iter().take(12).take_while(|b| b.is_ascii_digit() || **b == b'.').map(|b| *b as char).collect();
        let mut parts = text.split('.').map(|p| p.parse::<u32>());
        if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
            newest = newest.max(Some((major, minor)));
        }
    }
    newest
}

/// The folder a hot-reloading emulator runs `function` from (it holds `bootstrap`).
pub fn hot_reload_dir(config: &BuildConfig, function: &str) -> PathBuf {
    config.target_dir().join("lambda").join("hot-reload").join(function)
}

/// The files `function` runs from, by their names in its zip: `bootstrap` (the binary, or the
/// split layout's host) first, then the split layout's libraries.
pub fn deployed_files(config: &BuildConfig, function: &str) -> Result<Vec<(String, PathBuf)>> {
    if !config.split_layout() {
        return Ok(vec![("bootstrap".into(), config.binary_path(function))]);
    }
    let std_library = split::std_library(config)?;
    Ok(vec![
        ("bootstrap".into(), split::host_binary(config, function)),
        (std_library.file_name().expect("a file").to_string_lossy().into_owned(), std_library.clone()),
        (split::LOGIC_LIBRARY.into(), split::logic_library(config, function)),
    ])
}

/// Copies what `function` runs from into its hot-reload folder (each file atomically, the
/// libraries before `bootstrap`: the emulator never sees half a file). Returns the folder.
pub fn stage_hot_reload(config: &BuildConfig, function: &str) -> Result<PathBuf> {
    let dir = hot_reload_dir(config, function);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, path) in deployed_files(config, function)?.into_iter().rev() {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::copy(&path, &tmp).with_context(|| format!("copying {} into {}", path.display(), dir.display()))?;
        std::fs::rename(&tmp, dir.join(&name)).with_context(|| format!("replacing {}/{name}", dir.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_glibc_version_is_found_among_the_strings() {
        let binary = b"\0memcpy\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0";
        assert_eq!(newest_glibc_needed(binary), Some((2, 34)));
        assert_eq!(newest_glibc_needed(b"static binary"), None);
    }
}
