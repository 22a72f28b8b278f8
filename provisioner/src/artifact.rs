//! Function artifacts: builds the function binaries with cargo and packages each as a
//! deterministic `bootstrap` zip (fixed timestamps and permissions), so the same binary always
//! gives the same SHA-256 and an unchanged function uploads nothing.
//!
//! Two kinds of build: `native` (the host toolchain; fastest rebuilds, for emulators running on
//! this machine) and `portable` (`cargo zigbuild` for `<arch>-unknown-linux-gnu.2.34`: links
//! against glibc 2.34, the version of Lambda's `provided.al2023` runtime, whatever the host has).

use anyhow::{bail, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
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

    /// The built binary of `function`.
    pub fn binary_path(&self, function: &str) -> PathBuf {
        self.output_dir().join(function)
    }

    /// Where the zip of `function` is written.
    pub fn zip_path(&self, function: &str) -> PathBuf {
        let kind = self.portable_triple().unwrap_or("native");
        self.target_dir().join("lambda").join(kind).join(self.profile_dir()).join(function).join("bootstrap.zip")
    }
}

/// Builds the given functions in one cargo invocation. On failure, the compiler's output has
/// already been shown on stderr and the error says so.
pub fn build(config: &BuildConfig, functions: &[&str]) -> Result<Duration> {
    let started = Instant::now();
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(&config.workspace);
    match config.portable_triple() {
        None => {
            command.args(["build", "--quiet", "--profile", &config.profile]);
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
            command.env("PATH", path).args(["zigbuild", "--quiet", "--profile", &config.profile, "--target"]);
            command.arg(format!("{triple}.{}.{}", LAMBDA_GLIBC.0, LAMBDA_GLIBC.1));
        }
    }
    for function in functions {
        command.args(["--bin", function]);
    }
    let status = command.status().context("running cargo: is the Rust toolchain installed and on PATH?")?;
    if !status.success() {
        let hint = match config.portable_triple() {
            Some(triple) => format!(" (for a portable build the `{triple}` standard library must be installed: `rustup target add {triple}`)"),
            None => String::new(),
        };
        bail!("building {} failed (compiler output above); the deployed code is unchanged{hint}", functions.join(", "));
    }
    Ok(started.elapsed())
}

/// Builds the functions unless nothing they are built from changed since the last build: the
/// newest modification time under `functions/`, `Cargo.toml` and `Cargo.lock`, the profile and
/// target, and `RUSTFLAGS` make a fingerprint kept beside the binaries. Cargo's own check of an
/// unchanged workspace takes a few hundred milliseconds; this one takes one directory walk.
/// Returns the build time, or `None` when the build was skipped.
pub fn build_if_changed(config: &BuildConfig, functions: &[&str]) -> Result<Option<Duration>> {
    let fingerprint = source_fingerprint(config);
    let stamp = config.output_dir().join(".provision-build-stamp");
    let built = functions.iter().all(|f| config.binary_path(f).exists());
    if built && std::fs::read_to_string(&stamp).is_ok_and(|seen| seen == fingerprint) {
        return Ok(None);
    }
    let took = build(config, functions)?;
    // Taken before the build: an edit saved during it makes the next check build again.
    std::fs::write(&stamp, fingerprint).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(Some(took))
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

/// Copies the built binary of `function` into its hot-reload folder as `bootstrap` (atomically:
/// the emulator never sees half a file). Returns the folder.
pub fn stage_hot_reload(config: &BuildConfig, function: &str) -> Result<PathBuf> {
    let dir = hot_reload_dir(config, function);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(".bootstrap.tmp");
    std::fs::copy(config.binary_path(function), &tmp)
        .with_context(|| format!("copying {function} into {}", dir.display()))?;
    std::fs::rename(&tmp, dir.join("bootstrap")).with_context(|| format!("replacing {}/bootstrap", dir.display()))?;
    Ok(dir)
}

/// Zips the built binary of `function` as `bootstrap`, writes it beside the target dir, and
/// returns its hash. A binary unchanged since the last packaging (same size and modification
/// time) reuses the zip and hash recorded beside it, so a no-op `up` spends no time compressing.
pub fn package(config: &BuildConfig, function: &str) -> Result<Artifact> {
    let binary_path = config.binary_path(function);
    let metadata = std::fs::metadata(&binary_path).with_context(|| {
        format!("reading {}: build it first (`provision up` builds unless --skip-build)", binary_path.display())
    })?;
    let zip_path = config.zip_path(function);
    let fingerprint = format!("{} {:?}", metadata.len(), metadata.modified().ok());
    let cache_path = zip_path.with_extension("zip.source");
    if let Ok(cached) = std::fs::read_to_string(&cache_path) {
        if let Some((seen, sha256, zip_bytes)) = parse_cache(&cached) {
            if seen == fingerprint && zip_path.exists() {
                return Ok(Artifact {
                    function: function.to_string(),
                    zip_path,
                    sha256,
                    zip_bytes,
                    hot_reload_dir: hot_reload_dir(config, function),
                });
            }
        }
    }
    let binary = std::fs::read(&binary_path).with_context(|| format!("reading {}", binary_path.display()))?;
    let zip = zip_bootstrap(&binary)?;
    write_if_changed(&zip_path, &zip)?;
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
    std::fs::write(&cache_path, format!("{fingerprint}\n{sha256}\n{}\n", zip.len()))
        .with_context(|| format!("writing {}", cache_path.display()))?;
    Ok(Artifact {
        function: function.to_string(),
        sha256,
        zip_bytes: zip.len(),
        zip_path,
        hot_reload_dir: hot_reload_dir(config, function),
    })
}

/// Packages several functions at once, one thread each (compression is CPU-bound).
pub fn package_all(config: &BuildConfig, functions: &[&str]) -> Result<Vec<Artifact>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = functions.iter().map(|f| scope.spawn(move || package(config, f))).collect();
        handles.into_iter().map(|h| h.join().expect("packaging thread panicked")).collect()
    })
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

fn parse_cache(text: &str) -> Option<(String, String, usize)> {
    let mut lines = text.lines();
    Some((lines.next()?.to_string(), lines.next()?.to_string(), lines.next()?.parse().ok()?))
}

/// A zip holding one executable file named `bootstrap`, byte-identical for identical input.
pub fn zip_bootstrap(binary: &[u8]) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .unix_permissions(0o755)
        .last_modified_time(zip::DateTime::default());
    writer.start_file("bootstrap", options).context("starting the zip entry")?;
    writer.write_all(binary).context("compressing the binary")?;
    Ok(writer.finish().context("finishing the zip")?.into_inner())
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("zip paths have a parent"))?;
    // A name of this process's own: two runs packaging at once must not rename each other's file.
    let tmp = path.with_extension(format!("zip.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
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

    #[test]
    fn zips_are_deterministic_and_follow_content() {
        let a = zip_bootstrap(b"binary one").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(a, zip_bootstrap(b"binary one").unwrap(), "same input, same bytes");
        assert_ne!(a, zip_bootstrap(b"binary two").unwrap());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    }
}
