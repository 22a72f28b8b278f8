//! Building a project's program crate and keeping its answer: cargo builds the package when its
//! sources changed (its own errors shown as it prints them), and the declaration the binary
//! printed is kept next to it, keyed by the binary and the request, so a command that changed
//! neither does not run the program again.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds package `package` of the workspace at `root` (the program `program`) and returns its
/// binary. What cargo says while building (progress, warnings, errors) goes to stderr as it
/// comes, but for its `Finished` line.
pub fn build(root: &Path, program: &str, package: &str) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    if let Some(binary) = fresh_binary(root, &target, package) {
        return Ok(binary);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["build", "--package", package, "--message-format=json-render-diagnostics"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{cargo} build` for program `{program}`: is Rust's cargo installed?"))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
            if !line.trim_start().starts_with("Finished ") {
                eprintln!("{line}");
            }
        }
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut binary = None;
    for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
        if let Some(path) = executable_of(&line, package) {
            binary = Some(path);
        }
    }
    let status = child.wait().with_context(|| format!("waiting for cargo to build program `{program}`"))?;
    let _ = relay.join();
    if !status.success() {
        bail!(
            "program `{program}` (package `{package}` in {}) does not build: cargo's errors are above. Fix them and \
             run the command again; nothing was changed",
            root.display()
        );
    }
    binary.ok_or_else(|| {
        anyhow::anyhow!(
            "package `{package}` in {} built no binary: a program is a package with a `src/main.rs` that calls \
             `declaration::run` (docs/program.md)",
            root.display()
        )
    })
}

/// The package's binary, when nothing it was built from changed since: every source file
/// cargo's dep-info lists for it (its own and its path dependencies'), their manifests, and the
/// workspace's manifest and lock file are older than the binary. That spares every command the
/// cargo run (a fifth of a second) that would find nothing to do; anything unsure (no binary, a
/// file missing or newer) leaves it to cargo.
fn fresh_binary(root: &Path, target: &Path, package: &str) -> Option<PathBuf> {
    let binary = target.join("debug").join(package);
    let built = std::fs::metadata(&binary).ok()?.modified().ok()?;
    let dep_info = std::fs::read_to_string(target.join("debug").join(format!("{package}.d"))).ok()?;
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    let sources: Vec<PathBuf> = sources.split_whitespace().map(PathBuf::from).collect();
    let manifests = sources.iter().filter_map(|source| {
        let text = source.to_str()?;
        let crate_root = &text[..text.rfind("/src/")?];
        Some(PathBuf::from(format!("{crate_root}/Cargo.toml")))
    });
    let workspace = [root.join("Cargo.toml"), root.join("Cargo.lock")];
    let inputs: Vec<PathBuf> = sources.iter().cloned().chain(manifests).chain(workspace).collect();
    let unchanged = |input: &PathBuf| std::fs::metadata(input).and_then(|m| m.modified()).is_ok_and(|m| m <= built);
    inputs.iter().all(unchanged).then_some(binary)
}

/// The binary of `package` in one line of cargo's JSON messages, when that line announces it.
fn executable_of(line: &str, package: &str) -> Option<PathBuf> {
    let message: Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = message.get("target")?;
    let is_bin = target.get("kind")?.as_array()?.iter().any(|k| k == "bin");
    if !is_bin || target.get("name")?.as_str()? != package {
        return None;
    }
    message.get("executable")?.as_str().map(PathBuf::from)
}

/// A program's last answer, kept next to its binary with the key it answered: the binary (its
/// size and time) and the request, and the files the program says it read (the document's
/// `reads`, each with a digest of its content), so that an edited file runs the program again.
pub struct AnswerCache {
    path: PathBuf,
    key: String,
    /// Where the program runs: its `reads` are relative to this folder.
    root: PathBuf,
}

impl AnswerCache {
    /// The cache of `binary`'s answer to `request`, run in `root` (`None` when the binary cannot
    /// be read).
    pub fn of(binary: &Path, request: &Value, root: &Path) -> Option<Self> {
        let built = std::fs::metadata(binary).ok()?;
        let modified = built.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        let digest = Sha256::digest(format!("{modified}:{}:{request}", built.len()).as_bytes());
        let key = hex(&digest);
        let mut path = binary.as_os_str().to_owned();
        path.push(".declaration.json");
        Some(Self { path: PathBuf::from(path), key, root: root.to_path_buf() })
    }

    /// The kept answer, when it was given by this binary to this request and every file it read
    /// is as it was.
    pub fn read(&self) -> Option<String> {
        let kept: Value = serde_json::from_str(&std::fs::read_to_string(&self.path).ok()?).ok()?;
        if kept.get("key")?.as_str()? != self.key {
            return None;
        }
        let unchanged = kept.get("reads").and_then(Value::as_object).is_none_or(|reads| {
            reads.iter().all(|(file, seen)| seen.as_str() == Some(self.fingerprint(file).as_str()))
        });
        unchanged.then(|| kept.get("answer")?.as_str().map(str::to_string))?
    }

    /// Keeps `answer` (a failure to write only means the program runs again next time).
    pub fn write(&self, answer: &str) {
        let files: Vec<String> = serde_json::from_str::<Value>(answer)
            .ok()
            .and_then(|document| {
                let reads = document.get("reads")?.as_array()?.clone();
                Some(reads.iter().filter_map(|file| file.as_str().map(str::to_string)).collect())
            })
            .unwrap_or_default();
        let reads: serde_json::Map<String, Value> =
            files.into_iter().map(|file| (file.clone(), Value::String(self.fingerprint(&file)))).collect();
        let kept = serde_json::json!({ "key": self.key, "answer": answer, "reads": reads });
        let _ = std::fs::write(&self.path, kept.to_string());
    }

    /// A digest of a file's content, or `missing` (content, not times: a checkout or a copy may
    /// keep or reset a time whatever the content).
    fn fingerprint(&self, file: &str) -> String {
        match std::fs::read(self.root.join(file)) {
            Ok(content) => hex(&Sha256::digest(&content)),
            Err(_) => "missing".into(),
        }
    }
}

/// A digest in lowercase hex.
fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_of_the_named_package_is_read_from_cargo_messages() {
        let bin = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"my-program"},"executable":"/t/debug/my-program"}"#;
        let lib = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"declaration"},"executable":null}"#;
        let other =
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"other"},"executable":"/t/debug/other"}"#;
        assert_eq!(executable_of(bin, "my-program"), Some(PathBuf::from("/t/debug/my-program")));
        assert_eq!(executable_of(lib, "my-program"), None);
        assert_eq!(executable_of(other, "my-program"), None);
        assert_eq!(executable_of("Compiling", "my-program"), None);
    }

    #[test]
    fn a_binary_is_fresh_only_while_every_file_it_was_built_from_is_older() {
        let root = std::env::temp_dir().join(format!("fresh-binary-{}", std::process::id()));
        let debug = root.join("target/debug");
        std::fs::create_dir_all(root.join("program/src")).unwrap();
        std::fs::create_dir_all(&debug).unwrap();
        let source = root.join("program/src/main.rs");
        for file in [root.join("Cargo.toml"), root.join("Cargo.lock"), root.join("program/Cargo.toml"), source.clone()]
        {
            std::fs::write(file, "x").unwrap();
        }
        let pause = || std::thread::sleep(std::time::Duration::from_millis(20));
        pause();
        std::fs::write(debug.join("p"), "binary").unwrap();
        std::fs::write(debug.join("p.d"), format!("{}: {}\n", debug.join("p").display(), source.display())).unwrap();
        let target = root.join("target");
        assert_eq!(fresh_binary(&root, &target, "p"), Some(debug.join("p")), "nothing changed since the build");
        pause();
        std::fs::write(&source, "edited").unwrap();
        assert_eq!(fresh_binary(&root, &target, "p"), None, "an edited source: cargo decides");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_answer_is_kept_only_for_the_same_binary_and_request() {
        let dir = std::env::temp_dir().join(format!("answer-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("program");
        std::fs::write(&binary, "v1").unwrap();
        let request = serde_json::json!({"stack": "a"});
        AnswerCache::of(&binary, &request, &dir).unwrap().write("{\"answer\": 1}");
        assert_eq!(AnswerCache::of(&binary, &request, &dir).unwrap().read().as_deref(), Some("{\"answer\": 1}"));
        let other_request = serde_json::json!({"stack": "b"});
        assert_eq!(AnswerCache::of(&binary, &other_request, &dir).unwrap().read(), None);
        std::fs::write(&binary, "version two").unwrap();
        assert_eq!(AnswerCache::of(&binary, &request, &dir).unwrap().read(), None, "a rebuilt binary runs again");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_answer_is_kept_only_while_the_files_the_program_read_are_unchanged() {
        let dir = std::env::temp_dir().join(format!("answer-cache-reads-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        let binary = dir.join("program");
        std::fs::write(&binary, "v1").unwrap();
        std::fs::write(dir.join("certs/ca.pem"), "one").unwrap();
        let request = serde_json::json!({"stack": "a"});
        let answer = r#"{"version": 1, "reads": ["certs/ca.pem"]}"#;
        AnswerCache::of(&binary, &request, &dir).unwrap().write(answer);
        assert_eq!(AnswerCache::of(&binary, &request, &dir).unwrap().read().as_deref(), Some(answer));
        std::fs::write(dir.join("certs/ca.pem"), "the other").unwrap();
        assert_eq!(AnswerCache::of(&binary, &request, &dir).unwrap().read(), None, "an edited file runs it again");
        AnswerCache::of(&binary, &request, &dir).unwrap().write(answer);
        std::fs::remove_file(dir.join("certs/ca.pem")).unwrap();
        assert_eq!(AnswerCache::of(&binary, &request, &dir).unwrap().read(), None, "so does a removed one");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
