//! How cargo compiles a function's binary crate, taken from cargo itself: the exact `rustc`
//! command line and environment (`cargo build -vv` prints them as it runs rustc), kept in
//! `target/lambda/split/<profile>/recipes.json`. The split build ([`super::split`]) runs rustc with
//! these arguments (plus its own) without asking cargo again, which saves cargo's check of
//! ~400 crates on every logic edit.
//!
//! A recipe holds for as long as the manifests, the lock file, `RUSTFLAGS` and the compiled
//! dependencies it names stay as they were; otherwise it is taken again.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One rustc invocation as cargo made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recipe {
    /// The rustc executable.
    pub program: PathBuf,
    /// Its arguments, in order.
    pub args: Vec<String>,
    /// The variables cargo set for it (`CARGO_PKG_*` and the like).
    pub env: Vec<(String, String)>,
}

impl Recipe {
    /// Reads a cargo `-vv` progress line; `Some` when it runs rustc on the binary crate `crate_name`.
    pub fn from_cargo_line(line: &str, crate_name: &str) -> Option<Recipe> {
        let command = line.trim_start().strip_prefix("Running `")?.strip_suffix('`')?;
        let words = shlex::split(command)?;
        let mut words = words.into_iter().peekable();
        let mut env = Vec::new();
        while let Some(word) = words.next_if(|w| is_assignment(w)) {
            let (name, value) = word.split_once('=').expect("an assignment has '='");
            env.push((name.to_string(), value.to_string()));
        }
        let program = PathBuf::from(words.next()?);
        let args: Vec<String> = words.collect();
        let is_rustc = program.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rustc"));
        let names_crate = args.windows(2).any(|w| w[0] == "--crate-name" && w[1] == crate_name);
        let is_bin = args.windows(2).any(|w| w[0] == "--crate-type" && w[1] == "bin");
        (is_rustc && names_crate && is_bin).then_some(Recipe { program, args, env })
    }

    /// The crate's root source file (`functions/upstream/src/main.rs`), relative to the workspace.
    pub fn crate_root(&self) -> Option<&str> {
        self.args.iter().find(|a| a.ends_with(".rs") && !a.starts_with('-')).map(String::as_str)
    }

    /// The compiled dependencies the crate is built against (the files after `--extern name=`).
    pub fn dependencies(&self) -> impl Iterator<Item = &Path> {
        self.args
            .windows(2)
            .filter(|w| w[0] == "--extern")
            .filter_map(|w| w[1].split_once('=').map(|(_, path)| Path::new(path)))
    }

    /// Whether every dependency it names is still there (a toolchain update or a feature change
    /// gives them new names).
    pub fn still_applies(&self) -> bool {
        self.program.exists() && self.dependencies().all(Path::exists)
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// The recipes of a workspace's functions, valid for one state of its manifests.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Recipes {
    /// What the recipes were taken under: see [`Recipes::key`].
    key: String,
    /// Where rustc's own libraries are (`rustc --print target-libdir`), for the standard library
    /// the split build ships.
    pub target_libdir: Option<PathBuf>,
    /// Per function binary.
    pub functions: BTreeMap<String, Recipe>,
}

impl Recipes {
    /// Loads the recipes at `path` if they were taken under `key`; empty recipes otherwise.
    pub fn load(path: &Path, key: &str) -> Recipes {
        let loaded: Option<Recipes> = std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match loaded {
            Some(recipes) if recipes.key == key => recipes,
            _ => Recipes { key: key.to_string(), ..Recipes::default() },
        }
    }

    /// Writes the recipes to `path` (atomically: a reader sees the old or the new file).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::create_dir_all(path.parent().expect("recipes live in a folder"))?;
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// The recipe of `function`, if it still applies.
    pub fn usable(&self, function: &str) -> Option<&Recipe> {
        self.functions.get(function).filter(|r| r.still_applies())
    }

    /// What a recipe depends on besides its dependencies' files: every manifest of the workspace,
    /// the lock file, the profile and `RUSTFLAGS`.
    pub fn key(workspace: &Path, profile: &str) -> String {
        let mut hash = Sha256::new();
        for manifest in manifests(workspace) {
            hash.update(manifest.to_string_lossy().as_bytes());
            hash.update(std::fs::read(&manifest).unwrap_or_default());
        }
        hash.update(std::fs::read(workspace.join("Cargo.lock")).unwrap_or_default());
        hash.update(profile.as_bytes());
        hash.update(std::env::var("RUSTFLAGS").unwrap_or_default().as_bytes());
        hash.update(std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default().as_bytes());
        format!("{:x}", hash.finalize())
    }
}

/// The workspace's `Cargo.toml` and those of its function crates.
fn manifests(workspace: &Path) -> Vec<PathBuf> {
    let mut found = vec![workspace.join("Cargo.toml")];
    let mut visit = vec![workspace.join("functions")];
    while let Some(dir) = visit.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() && path.file_name().is_some_and(|n| n != "src" && n != "target") {
                visit.push(path);
            } else if path.file_name().is_some_and(|n| n == "Cargo.toml") {
                found.push(path);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "     Running `CARGO=/x/cargo CARGO_PKG_DESCRIPTION='API Gateway POST -> Kinesis.' \
        CARGO_PKG_NAME=upstream /x/bin/rustc --crate-name upstream --edition=2021 functions/upstream/src/main.rs \
        --error-format=json --crate-type bin --check-cfg 'cfg(feature, values())' \
        --extern serde_json=/t/deps/libserde_json-1.rlib -L dependency=/t/deps`";

    #[test]
    fn a_cargo_line_gives_the_program_its_environment_and_arguments() {
        let recipe = Recipe::from_cargo_line(LINE, "upstream").expect("a rustc run of the bin crate");
        assert_eq!(recipe.program, PathBuf::from("/x/bin/rustc"));
        assert_eq!(recipe.env[1], ("CARGO_PKG_DESCRIPTION".into(), "API Gateway POST -> Kinesis.".into()));
        assert_eq!(recipe.env.len(), 3);
        assert_eq!(recipe.crate_root(), Some("functions/upstream/src/main.rs"));
        assert!(recipe.args.contains(&"cfg(feature, values())".to_string()), "quoted words stay one argument");
        let dependencies: Vec<&Path> = recipe.dependencies().collect();
        assert_eq!(dependencies, vec![Path::new("/t/deps/libserde_json-1.rlib")]);
    }

    #[test]
    fn other_crates_and_other_lines_are_not_recipes() {
        assert!(Recipe::from_cargo_line(LINE, "midstream").is_none());
        assert!(Recipe::from_cargo_line(&LINE.replace("--crate-type bin", "--crate-type lib"), "upstream").is_none());
        assert!(Recipe::from_cargo_line("   Compiling upstream v0.1.0", "upstream").is_none());
        assert!(Recipe::from_cargo_line("     Running `/t/build/x/build-script-build`", "upstream").is_none());
    }
}
