//! Which saved files matter, and which functions they affect. Pure: no watching, no building.
//!
//! A path matters when it is a Rust source or a manifest inside a crate under `functions/`, and
//! not an editor's scratch file, build output or git's own. A change to a crate affects every
//! function whose crate depends on it, directly or through other path crates (a change to the
//! shared `record` crate affects all three functions).

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's path crates: where each lives and which path crates it depends on.
#[derive(Debug, Clone, Default)]
pub struct CrateGraph {
    /// Crate name -> its folder.
    dirs: BTreeMap<String, PathBuf>,
    /// Crate name -> names of the path crates it depends on.
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl CrateGraph {
    /// Reads the graph from `cargo metadata --no-deps` (fast: no registry resolution).
    pub fn load(workspace: &Path) -> Result<Self> {
        let output = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace)
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
            .output()
            .context("running cargo metadata")?;
        anyhow::ensure!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
        Self::from_metadata(&serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?)
    }

    /// Builds the graph from `cargo metadata` JSON.
    pub fn from_metadata(metadata: &Value) -> Result<Self> {
        let mut graph = Self::default();
        for package in metadata["packages"].as_array().context("cargo metadata has no packages")? {
            let name = package["name"].as_str().context("package without a name")?.to_string();
            let manifest = PathBuf::from(package["manifest_path"].as_str().context("package without a manifest")?);
            let deps = package["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d.get("path").is_some_and(|p| p.is_string()))
                .filter_map(|d| d["name"].as_str().map(String::from))
                .collect();
            graph.dirs.insert(name.clone(), manifest.parent().unwrap_or(Path::new("")).to_path_buf());
            graph.deps.insert(name, deps);
        }
        Ok(graph)
    }

    /// The crate whose folder holds `path` (the deepest, for nested crates).
    pub fn crate_of(&self, path: &Path) -> Option<&str> {
        self.dirs
            .iter()
            .filter(|(_, dir)| path.starts_with(dir))
            .max_by_key(|(_, dir)| dir.as_os_str().len())
            .map(|(n, _)| n.as_str())
    }

    /// The folder of crate `name`, when it is one of the workspace's.
    pub fn dir(&self, name: &str) -> Option<&Path> {
        self.dirs.get(name).map(PathBuf::as_path)
    }

    /// True when a change to these paths touches crate `package` or a path crate it depends on
    /// (a program's sources, or the declaration crate it is built on).
    pub fn touches(&self, package: &str, paths: &[PathBuf]) -> bool {
        paths.iter().filter(|p| is_relevant(p)).filter_map(|p| self.crate_of(p)).any(|c| self.depends_on(package, c))
    }

    /// True when `function` is `changed` or depends on it through path crates.
    pub fn depends_on(&self, function: &str, changed: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![function.to_string()];
        while let Some(name) = stack.pop() {
            if name == changed {
                return true;
            }
            if seen.insert(name.clone()) {
                stack.extend(self.deps.get(&name).into_iter().flatten().cloned());
            }
        }
        false
    }

    /// The functions (of `functions`) that a change to these paths affects.
    pub fn affected<'a>(&self, functions: &[&'a str], paths: &[PathBuf]) -> BTreeSet<&'a str> {
        let changed: BTreeSet<&str> =
            paths.iter().filter(|p| is_relevant(p)).filter_map(|p| self.crate_of(p)).collect();
        functions.iter().copied().filter(|f| changed.iter().any(|c| self.depends_on(f, c))).collect()
    }
}

/// True for a path whose change can change a build: `.rs` sources and `Cargo.toml` manifests,
/// outside `target/` and `.git/`, and not an editor's swap, backup or temporary file.
pub fn is_relevant(path: &Path) -> bool {
    if path.components().any(|c| matches!(c.as_os_str().to_str(), Some("target" | ".git"))) {
        return false;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let scratch = name.starts_with(".#") || name.starts_with('~') || name.ends_with('~') || name.starts_with(".");
    !scratch && (name.ends_with(".rs") || name == "Cargo.toml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph() -> CrateGraph {
        CrateGraph::from_metadata(&json!({"packages": [
            {"name": "record", "manifest_path": "/w/functions/record/Cargo.toml", "dependencies": [{"name": "serde"}]},
            {"name": "support", "manifest_path": "/w/functions/support/Cargo.toml", "dependencies": [{"name": "record", "path": "/w/functions/record"}]},
            {"name": "upstream", "manifest_path": "/w/functions/upstream/Cargo.toml", "dependencies": [{"name": "record", "path": "/w/functions/record"}]},
            {"name": "midstream", "manifest_path": "/w/functions/midstream/Cargo.toml", "dependencies": [{"name": "support", "path": "/w/functions/support"}]},
        ]}))
        .unwrap()
    }

    #[test]
    fn a_function_change_affects_only_that_function() {
        let affected =
            graph().affected(&["upstream", "midstream"], &[PathBuf::from("/w/functions/upstream/src/api.rs")]);
        assert_eq!(affected, BTreeSet::from(["upstream"]));
    }

    #[test]
    fn a_shared_crate_change_affects_its_transitive_dependents() {
        let affected = graph().affected(&["upstream", "midstream"], &[PathBuf::from("/w/functions/record/src/lib.rs")]);
        assert_eq!(affected, BTreeSet::from(["upstream", "midstream"]));
    }

    #[test]
    fn editor_scratch_files_and_build_output_are_ignored() {
        for path in [
            "/w/functions/upstream/src/.api.rs.swp",
            "/w/functions/upstream/src/api.rs~",
            "/w/functions/upstream/src/.#api.rs",
            "/w/functions/upstream/src/4913",
            "/w/functions/upstream/target/debug/build.rs",
            "/w/functions/upstream/.git/index",
            "/w/functions/upstream/README.md",
        ] {
            assert!(!is_relevant(Path::new(path)), "{path}");
        }
        assert!(is_relevant(Path::new("/w/functions/upstream/src/api.rs")));
        assert!(is_relevant(Path::new("/w/functions/upstream/Cargo.toml")));
    }
}
