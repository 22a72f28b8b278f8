//! Deterministic zips of the functions: fixed timestamps and permissions, so the same build gives
//! the same bytes and hash, and an unchanged function uploads nothing. A zip whose inputs did not
//! change since it was written (same sizes and modification times) is reused with its hash.
//!
//! In the split layout the host and the standard library are compressed once, into a zip of
//! their own kept beside the build, and each function zip copies their compressed bytes as they
//! are: only the logic library is compressed again after a logic edit.

use super::split::{self, LOGIC_LIBRARY};
use super::{hot_reload_dir, Artifact, BuildConfig};
use anyhow::{Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Zips what `function` runs from (its binary as `bootstrap`; in the split layout, the host,
/// the standard library and the logic library), writes it beside the target dir, and returns
/// its hash. A binary unchanged since the last packaging (same size and modification
/// time) reuses the zip and hash recorded beside it, so a no-op `up` spends no time compressing.
pub fn package(config: &BuildConfig, function: &str) -> Result<Artifact> {
    if config.split_layout() {
        return package_split(config, function);
    }
    let binary_path = config.binary_path(function);
    let source = fingerprint(&binary_path)?;
    if let Some(artifact) = cached(config, function, &source) {
        return Ok(artifact);
    }
    let binary = std::fs::read(&binary_path).with_context(|| format!("reading {}", binary_path.display()))?;
    store(config, function, zip_bootstrap(&binary)?, &source)
}

/// Packages several functions at once, one thread each (compression is CPU-bound).
pub fn package_all(config: &BuildConfig, functions: &[&str]) -> Result<Vec<Artifact>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = functions.iter().map(|f| scope.spawn(move || package(config, f))).collect();
        handles.into_iter().map(|h| h.join().expect("packaging thread panicked")).collect()
    })
}

/// The zip of `function` written earlier from the same inputs (`source`), with its hash.
fn cached(config: &BuildConfig, function: &str, source: &str) -> Option<Artifact> {
    let zip_path = config.zip_path(function);
    let text = std::fs::read_to_string(zip_path.with_extension("zip.source")).ok()?;
    let mut lines = text.lines();
    let (seen, sha256, zip_bytes) = (lines.next()?, lines.next()?, lines.next()?.parse().ok()?);
    (seen == digest_hex(source) && zip_path.exists()).then(|| Artifact {
        function: function.to_string(),
        zip_path,
        sha256: sha256.to_string(),
        zip_bytes,
        hot_reload_dir: hot_reload_dir(config, function),
    })
}

/// Writes the zip of `function` made from `source`, and what it was made from beside it.
fn store(config: &BuildConfig, function: &str, zip: Vec<u8>, source: &str) -> Result<Artifact> {
    let zip_path = config.zip_path(function);
    write_if_changed(&zip_path, &zip)?;
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
    let cache_path = zip_path.with_extension("zip.source");
    std::fs::write(&cache_path, format!("{}\n{sha256}\n{}\n", digest_hex(source), zip.len()))
        .with_context(|| format!("writing {}", cache_path.display()))?;
    Ok(Artifact {
        function: function.to_string(),
        sha256,
        zip_bytes: zip.len(),
        zip_path,
        hot_reload_dir: hot_reload_dir(config, function),
    })
}

fn digest_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// A zip holding one executable file named `bootstrap`, byte-identical for identical input.
pub fn zip_bootstrap(binary: &[u8]) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file("bootstrap", entry_options(FAST_LEVEL)).context("starting the zip entry")?;
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

/// Deflate's fastest level: a 15 MB binary in a tenth of a second, for what is zipped anew after
/// every build.
const FAST_LEVEL: i64 = 1;
/// Deflate's smallest: what is compressed once per host build and uploaded with every swap
/// (a sixth smaller than the fastest level, so each upload is shorter).
const HOST_LEVEL: i64 = 9;

/// Every entry: deflated at `level`, executable, with a fixed time.
fn entry_options(level: i64) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(level))
        .unix_permissions(0o755)
        .last_modified_time(zip::DateTime::default())
}

/// The split layout's zip: the host's zip (made once per host build) copied entry by entry
/// without recompressing, then the logic library.
fn package_split(config: &BuildConfig, function: &str) -> Result<Artifact> {
    let host = split::host_binary(config, function);
    let std_library = split::std_library(config)?;
    let logic = split::logic_library(config, function);
    let host_zip_path = host.with_file_name("host.zip");
    let host_fingerprint = format!("{}\n{}", fingerprint(&host)?, fingerprint(&std_library)?);
    let whole_fingerprint = format!("{host_fingerprint}\n{}", fingerprint(&logic)?);
    if let Some(artifact) = cached(config, function, &whole_fingerprint) {
        return Ok(artifact);
    }
    let host_zip = match std::fs::read_to_string(host_zip_path.with_extension("zip.source")) {
        Ok(seen) if seen == host_fingerprint && host_zip_path.exists() => {
            std::fs::read(&host_zip_path).with_context(|| format!("reading {}", host_zip_path.display()))?
        }
        _ => {
            let std_name = std_library.file_name().expect("a file").to_string_lossy().into_owned();
            let zip = zip_files(&[("bootstrap", &host), (&std_name, &std_library)], None, HOST_LEVEL)?;
            write_if_changed(&host_zip_path, &zip)?;
            std::fs::write(host_zip_path.with_extension("zip.source"), &host_fingerprint)
                .with_context(|| format!("writing beside {}", host_zip_path.display()))?;
            zip
        }
    };
    let zip = zip_files(&[(LOGIC_LIBRARY, &logic)], Some(&host_zip), FAST_LEVEL)?;
    store(config, function, zip, &whole_fingerprint)
}

/// Size and modification time of `path`, which must exist.
fn fingerprint(path: &Path) -> Result<String> {
    let metadata = std::fs::metadata(path).with_context(|| {
        format!("reading {}: build it first (`provision up` builds unless --skip-build)", path.display())
    })?;
    let modified = metadata.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok(format!("{} {} {modified}", path.display(), metadata.len()))
}

/// A zip of `files` (name in the zip, path on disk), executable, after the entries of `base`
/// copied as they are.
fn zip_files(files: &[(&str, &Path)], base: Option<&[u8]>, level: i64) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    if let Some(base) = base {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(base)).context("reading the host's zip")?;
        for index in 0..archive.len() {
            let entry = archive.by_index_raw(index).context("reading the host's zip")?;
            writer.raw_copy_file(entry).context("copying the host's zip")?;
        }
    }
    for (name, path) in files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        writer.start_file(*name, entry_options(level)).context("starting a zip entry")?;
        writer.write_all(&bytes).with_context(|| format!("compressing {}", path.display()))?;
    }
    Ok(writer.finish().context("finishing the zip")?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_are_deterministic_and_follow_content() {
        let a = zip_bootstrap(b"binary one").unwrap();
        assert_eq!(a, zip_bootstrap(b"binary one").unwrap(), "same input, same bytes");
        assert_ne!(a, zip_bootstrap(b"binary two").unwrap());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        // A fixed time, not the clock's: zips made at different times are the same bytes.
        assert_eq!(entry.last_modified(), Some(zip::DateTime::default()));
    }
}
