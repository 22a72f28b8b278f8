//! The split build of the functions, for an emulator on this machine: each function is a host
//! executable (`bootstrap`: the Lambda runtime, the SDK clients, I/O) and its logic as a small
//! shared library beside it, with the Rust standard library they share (function-host's `split`
//! module is the other half and explains the contract).
//!
//! A hot-swap of a logic edit then compiles and links only the logic library, straight with rustc
//! and the arguments cargo would use ([`super::recipe`]), and the zip reuses the host's compressed
//! bytes ([`super::package`]). Anything else (a shared crate, a manifest, a new file) goes through
//! cargo first, and the host is relinked only when what it is built from changed. Outputs live in
//! `target/lambda/split/<profile>/<function>/{host,logic}/`, each with a stamp of its inputs, so
//! `up` after `watch` rebuilds nothing and deploys the same bytes.

use super::recipe::{Recipe, Recipes};
use super::BuildConfig;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

/// The logic library's name in the zip: what function-host's `split::LOGIC_LIBRARY` loads.
pub const LOGIC_LIBRARY: &str = "liblogic.so";

/// The two builds of one function's binary crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The executable, with `provision_split="host"`.
    Host,
    /// The shared library, with `provision_split="logic"`.
    Logic,
}

impl Part {
    fn folder(self) -> &'static str {
        match self {
            Part::Host => "host",
            Part::Logic => "logic",
        }
    }
}

fn root(config: &BuildConfig) -> PathBuf {
    config.target_dir().join("lambda").join("split").join(config.profile_dir())
}

fn crate_name(function: &str) -> String {
    function.replace('-', "_")
}

/// The host executable of `function`'s split build.
pub fn host_binary(config: &BuildConfig, function: &str) -> PathBuf {
    root(config).join(function).join("host").join(crate_name(function))
}

/// The logic library of `function`'s split build.
pub fn logic_library(config: &BuildConfig, function: &str) -> PathBuf {
    root(config).join(function).join("logic").join(format!("lib{}.so", crate_name(function)))
}

/// The Rust standard library the split layout ships beside the host (see [`ship_std`]).
pub fn std_library(config: &BuildConfig) -> Result<PathBuf> {
    find_std(&root(config).join("std")).context("the split build has not run yet: run `provision up`")
}

/// Puts the standard library the host and the logic link against where [`std_library`] finds
/// it: the toolchain's copy without its symbol tables and debug sections (`strip --strip-all`:
/// 5.4 MB -> 1.2 MB, a megabyte less to upload and four less to unzip on every swap), or the copy
/// as it is where `strip` cannot be run.
fn ship_std(config: &BuildConfig, libdir: &Path) -> Result<()> {
    let source = find_std(libdir)?;
    let folder = root(config).join("std");
    let shipped = folder.join(source.file_name().expect("a file"));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if shipped.exists() && modified(&shipped) >= modified(&source) {
        return Ok(());
    }
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    for stale in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(stale.path());
    }
    let tmp = folder.join(".libstd.tmp");
    let stripped = Command::new("strip").arg("--strip-all").arg("-o").arg(&tmp).arg(&source).status();
    if !stripped.is_ok_and(|s| s.success()) {
        std::fs::copy(&source, &tmp).with_context(|| format!("copying {}", source.display()))?;
    }
    std::fs::rename(&tmp, &shipped).with_context(|| format!("writing {}", shipped.display()))
}

fn find_std(libdir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(libdir).with_context(|| format!("reading {}", libdir.display()))?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libstd-") && n.to_string_lossy().ends_with(".so"))
        })
        .with_context(|| format!("{} has no libstd-*.so: is this a rustup toolchain?", libdir.display()))
}

fn recipes_path(config: &BuildConfig) -> PathBuf {
    root(config).join("recipes.json")
}

/// Builds `functions` in the split layout. `changed` is what was saved since the last build
/// when the caller knows it (`watch`; else empty): if every file in it is a source of the
/// functions' logic, cargo is skipped. Prints the compiler's messages; an error says the
/// deployed code is unchanged.
pub fn build(config: &BuildConfig, functions: &[&str], changed: &[PathBuf]) -> Result<()> {
    let _lock = BuildLock::take(&root(config))?;
    let path = recipes_path(config);
    let mut recipes = Recipes::load(&path, &Recipes::key(&config.workspace, &config.profile));
    let have_recipes = functions.iter().all(|f| recipes.usable(f).is_some()) && recipes.target_libdir.is_some();
    let logic_only = have_recipes && only_logic_sources(config, functions, changed);
    if !have_recipes {
        // The first build (a new project, a new function): compile every dependency quietly
        // first, so the recipes' very verbose run that follows shows only the functions' own.
        super::cargo_build(config, functions, false)?;
    }
    if !logic_only {
        take_recipes(config, functions, &mut recipes)?;
        recipes.save(&path)?;
    }
    let libdir = recipes.target_libdir.clone().expect("taken above");
    ship_std(config, &libdir)?;
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let (recipes, libdir) = (&recipes, &libdir);
        let handles: Vec<_> = functions
            .iter()
            .map(|function| {
                scope.spawn(move || {
                    let recipe = recipes.usable(function).expect("taken above");
                    build_part(config, function, recipe, Part::Host, libdir)?;
                    build_part(config, function, recipe, Part::Logic, libdir)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("build thread panicked")).collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
}

/// Runs cargo (so every dependency is compiled and current) and takes the recipes it prints. A
/// binary cargo found up to date prints none: its crate root is touched and cargo asked again.
fn take_recipes(config: &BuildConfig, functions: &[&str], recipes: &mut Recipes) -> Result<()> {
    for taken in super::cargo_build(config, functions, true)? {
        recipes.functions.insert(taken.0, taken.1);
    }
    let missing: Vec<&str> = functions.iter().copied().filter(|f| recipes.usable(f).is_none()).collect();
    if !missing.is_empty() {
        for function in &missing {
            touch_crate_root(config, function)?;
        }
        for taken in super::cargo_build(config, &missing, true)? {
            recipes.functions.insert(taken.0, taken.1);
        }
    }
    if let Some(function) = functions.iter().find(|f| recipes.usable(f).is_none()) {
        bail!("cargo did not show how it compiles {function}: run `cargo build --bin {function} -vv` to see why");
    }
    if recipes.target_libdir.is_none() {
        let recipe = recipes.usable(functions[0]).expect("checked above");
        let output = Command::new(&recipe.program)
            .args(["--print", "target-libdir"])
            .output()
            .with_context(|| format!("running {}", recipe.program.display()))?;
        recipes.target_libdir = Some(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    }
    Ok(())
}

fn touch_crate_root(config: &BuildConfig, function: &str) -> Result<()> {
    let root = crate_root_of(config, function)?;
    let file =
        std::fs::File::options().write(true).open(&root).with_context(|| format!("opening {}", root.display()))?;
    file.set_modified(std::time::SystemTime::now()).with_context(|| format!("touching {}", root.display()))
}

/// `functions/<function>/src/main.rs` or, for a crate in a group folder, wherever the binary's
/// package puts it: found by its name under `functions/`.
fn crate_root_of(config: &BuildConfig, function: &str) -> Result<PathBuf> {
    let mut visit = vec![config.workspace.join("functions")];
    while let Some(dir) = visit.pop() {
        let candidate = dir.join(function).join("src").join("main.rs");
        if candidate.exists() {
            return Ok(candidate);
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() && entry.file_name() != "src" && entry.file_name() != "target" {
                visit.push(entry.path());
            }
        }
    }
    bail!("no functions/**/{function}/src/main.rs: where is the binary `{function}`?")
}

/// Builds one part unless its stamp says its inputs are as they were.
fn build_part(config: &BuildConfig, function: &str, recipe: &Recipe, part: Part, libdir: &Path) -> Result<()> {
    let out_dir = root(config).join(function).join(part.folder());
    let stamp_path = out_dir.join("stamp");
    let stamp = inputs_stamp(config, function, recipe, part);
    let output = match part {
        Part::Host => host_binary(config, function),
        Part::Logic => logic_library(config, function),
    };
    if output.exists() && std::fs::read_to_string(&stamp_path).is_ok_and(|seen| seen == stamp) {
        return Ok(());
    }
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let _ = std::fs::remove_file(&stamp_path);
    let rustc = Rustc { recipe, libdir, workspace: &config.workspace };
    let built = match part {
        Part::Host => rustc.run(&arguments(recipe, part, &out_dir))?,
        Part::Logic => build_logic(&rustc, &out_dir)?,
    };
    if !built {
        bail!(
            "building the {} of {function} failed (compiler output above); the deployed code is unchanged",
            part.folder()
        );
    }
    std::fs::write(&stamp_path, stamp).with_context(|| format!("writing {}", stamp_path.display()))
}

/// The logic, linked against only the crates it uses. Given every dependency of the binary
/// crate, rustc links them all (160-odd crates of runtime and SDK for `upstream`) and the link
/// of a 300 kB library takes a quarter of a second; given only what the logic uses it takes a
/// few hundredths. Which crates those are, a build with every dependency says (rustc's
/// `unused_crate_dependencies` lint), and it is kept in `logic/uses`: later builds pass only those
/// and fall back to every dependency (learning again) when that fails, for instance because an
/// edit started using another crate.
fn build_logic(rustc: &Rustc, out_dir: &Path) -> Result<bool> {
    let uses_path = out_dir.join("uses");
    let every = arguments(rustc.recipe, Part::Logic, out_dir);
    if let Ok(uses) = std::fs::read_to_string(&uses_path) {
        let used: BTreeSet<&str> = uses.lines().collect();
        if rustc.run_quiet_on_failure(&only_externs(&every, &used))? {
            return Ok(true);
        }
    }
    let _ = std::fs::remove_file(&uses_path);
    let mut learning = every.clone();
    learning.extend(
        ["-W", "unused-crate-dependencies", "--error-format=json", "--json=diagnostic-rendered-ansi"].map(String::from),
    );
    let Some(unused) = rustc.run_finding_unused(&learning)? else { return Ok(false) };
    let used: Vec<&str> = externs(&every).filter(|name| !unused.contains(*name)).collect();
    std::fs::write(&uses_path, used.join("\n")).with_context(|| format!("writing {}", uses_path.display()))?;
    Ok(true)
}

/// The crate names of `args`' `--extern name=path` pairs.
fn externs(args: &[String]) -> impl Iterator<Item = &str> {
    args.windows(2).filter(|w| w[0] == "--extern").filter_map(|w| w[1].split_once('=').map(|(name, _)| name))
}

/// `args` without the `--extern` pairs of crates not in `used`.
fn only_externs(args: &[String], used: &BTreeSet<&str>) -> Vec<String> {
    let mut kept = Vec::with_capacity(args.len());
    let mut given = args.iter();
    while let Some(arg) = given.next() {
        if arg == "--extern" {
            let Some(pair) = given.next() else { break };
            if pair.split_once('=').is_some_and(|(name, _)| used.contains(name)) {
                kept.extend([arg.clone(), pair.clone()]);
            }
        } else {
            kept.push(arg.clone());
        }
    }
    kept
}

/// rustc as cargo runs it for one binary crate.
struct Rustc<'a> {
    recipe: &'a Recipe,
    /// Where the standard library is (rustc itself links against it).
    libdir: &'a Path,
    workspace: &'a Path,
}

impl Rustc<'_> {
    fn command(&self, args: &[String]) -> Command {
        let mut command = Command::new(&self.recipe.program);
        command
            .args(args)
            .envs(self.recipe.env.iter().map(|(k, v)| (k, v)))
            .env("LD_LIBRARY_PATH", self.libdir)
            .current_dir(self.workspace)
            .stdout(std::io::stderr());
        command
    }

    /// Runs rustc with its messages shown; true when it succeeded.
    fn run(&self, args: &[String]) -> Result<bool> {
        let status =
            self.command(args).status().with_context(|| format!("running {}", self.recipe.program.display()))?;
        Ok(status.success())
    }

    /// Runs rustc, showing its messages only when it succeeded (a failure is tried again).
    fn run_quiet_on_failure(&self, args: &[String]) -> Result<bool> {
        let output =
            self.command(args).output().with_context(|| format!("running {}", self.recipe.program.display()))?;
        if output.status.success() {
            std::io::Write::write_all(&mut std::io::stderr(), &output.stderr).ok();
        }
        Ok(output.status.success())
    }

    /// Runs rustc with JSON messages, showing each as rustc renders it except the
    /// `unused_crate_dependencies` warnings, whose crates it returns, and the count of warnings
    /// that would include them; `None` when it failed.
    fn run_finding_unused(&self, args: &[String]) -> Result<Option<BTreeSet<String>>> {
        let output =
            self.command(args).output().with_context(|| format!("running {}", self.recipe.program.display()))?;
        let mut unused = BTreeSet::new();
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                eprintln!("{line}");
                continue;
            };
            let text = message["message"].as_str().unwrap_or_default();
            if message["code"]["code"] == "unused_crate_dependencies" {
                if let Some(name) = text.split('`').nth(1) {
                    unused.insert(name.to_string());
                }
            } else if text.ends_with(" warnings emitted") || text.ends_with(" warning emitted") {
                // rustc's count includes the warnings taken above: each one shown stands alone.
            } else if let Some(rendered) = message["rendered"].as_str() {
                eprint!("{rendered}");
            }
        }
        Ok(output.status.success().then_some(unused))
    }
}

/// Cargo's arguments for the binary crate, made into the host's or the logic's: outputs and
/// incremental state in the part's own folder, the part's cfg, the standard library linked
/// dynamically and found beside the executable. Everything else (optimization, debug
/// assertions, overflow checks) stays as cargo's profile has it, so the logic behaves as it does
/// in the single binary.
fn arguments(recipe: &Recipe, part: Part, out_dir: &Path) -> Vec<String> {
    let mut args = Vec::with_capacity(recipe.args.len() + 12);
    let mut given = recipe.args.iter();
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--out-dir" => {
                given.next();
                args.extend(["--out-dir".to_string(), out_dir.display().to_string()]);
            }
            "--crate-type" => {
                given.next();
                let kind = if part == Part::Host { "bin" } else { "cdylib" };
                args.extend(["--crate-type".to_string(), kind.to_string()]);
            }
            "-C" => match given.next() {
                Some(value) if value.starts_with("incremental=") => {
                    args.extend(["-C".to_string(), format!("incremental={}", out_dir.join("incremental").display())]);
                }
                Some(value) if value.starts_with("extra-filename=") => {}
                Some(value) => args.extend(["-C".to_string(), value.clone()]),
                None => args.push(arg.clone()),
            },
            a if a.starts_with("--error-format") || a.starts_with("--json") => {}
            _ => args.push(arg.clone()),
        }
    }
    let cfg = match part {
        Part::Host => "provision_split=\"host\"",
        Part::Logic => "provision_split=\"logic\"",
    };
    args.extend(["--cfg", cfg, "-C", "prefer-dynamic", "-C", "link-arg=-Wl,-rpath,$ORIGIN"].map(String::from));
    if part == Part::Host {
        // The host build compiles the logic modules too but uses none of them.
        args.extend(["--cap-lints", "allow"].map(String::from));
    }
    args
}

/// What a part is built from, as one string: the arguments, the compiled dependencies (size
/// and modification time: cargo rewrites them whenever anything they are built from changes),
/// and the part's own sources (the crate root for the host; every source the last logic build
/// read, from its dep-info, for the logic).
fn inputs_stamp(config: &BuildConfig, function: &str, recipe: &Recipe, part: Part) -> String {
    let mut stamp = recipe.args.join(" ");
    for dependency in recipe.dependencies() {
        stamp.push('\n');
        stamp.push_str(&file_stamp(dependency));
    }
    let sources = match part {
        Part::Host => recipe.crate_root().map(|r| config.workspace.join(r)).into_iter().collect(),
        Part::Logic => logic_sources(config, function),
    };
    if sources.is_empty() {
        stamp.push_str("\nno sources known");
    }
    for source in sources {
        stamp.push('\n');
        stamp.push_str(&file_stamp(&source));
    }
    stamp
}

fn file_stamp(path: &Path) -> String {
    let metadata = std::fs::metadata(path).ok();
    let size = metadata.as_ref().map_or(0, |m| m.len());
    let modified = metadata
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {size} {modified}", path.display())
}

/// The source files the last logic build of `function` read (its dep-info), absolute.
fn logic_sources(config: &BuildConfig, function: &str) -> Vec<PathBuf> {
    let dep_info = root(config).join(function).join("logic").join(format!("{}.d", crate_name(function)));
    let Ok(text) = std::fs::read_to_string(dep_info) else { return Vec::new() };
    dependencies_in_dep_info(&text).into_iter().map(|p| config.workspace.join(p)).collect()
}

/// The prerequisites a make-style dep-info file lists (`a: b c` lines, then one `b:` rule per
/// prerequisite).
fn dependencies_in_dep_info(text: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_suffix(':'))
        .map(|path| PathBuf::from(path.replace("\\ ", " ")))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// True when every path is a source the logic of one of `functions` was last built from.
fn only_logic_sources(config: &BuildConfig, functions: &[&str], paths: &[PathBuf]) -> bool {
    let sources: Vec<PathBuf> =
        functions.iter().flat_map(|f| logic_sources(config, f)).filter_map(|p| p.canonicalize().ok()).collect();
    !paths.is_empty() && paths.iter().all(|p| p.canonicalize().is_ok_and(|p| sources.contains(&p)))
}

/// An exclusive lock on the split build's folder for the whole build: two `provision` runs
/// (two stacks' `up`, or `up` beside `watch`) must not run rustc into the same folders at once.
struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    fn take(folder: &Path) -> Result<BuildLock> {
        std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
        let path = folder.join(".lock");
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor this process owns; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            eprintln!("waiting for another provision run building the functions ({})", path.display());
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                bail!("locking {}: {}", path.display(), std::io::Error::last_os_error());
            }
        }
        Ok(BuildLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_gives_every_source_once() {
        let text = "/t/liblogic.so: functions/upstream/src/main.rs functions/upstream/src/api.rs\n\n\
                    /t/upstream.d: functions/upstream/src/main.rs functions/upstream/src/api.rs\n\n\
                    functions/upstream/src/main.rs:\nfunctions/upstream/src/api.rs:\n\n# env-dep:CARGO_PKG_NAME=upstream\n";
        assert_eq!(
            dependencies_in_dep_info(text),
            vec![PathBuf::from("functions/upstream/src/api.rs"), PathBuf::from("functions/upstream/src/main.rs")]
        );
    }

    #[test]
    fn only_the_crates_the_logic_uses_are_passed() {
        let args: Vec<String> =
            "--crate-name up --extern serde_json=/d/a.rlib -L x --extern tokio=/d/b.rlib --extern record=/d/c.rlib"
                .split(' ')
                .map(String::from)
                .collect();
        assert_eq!(externs(&args).collect::<Vec<_>>(), ["serde_json", "tokio", "record"]);
        let used = BTreeSet::from(["serde_json", "record"]);
        assert_eq!(
            only_externs(&args, &used).join(" "),
            "--crate-name up --extern serde_json=/d/a.rlib -L x --extern record=/d/c.rlib"
        );
    }

    #[test]
    fn the_parts_get_their_own_outputs_cfg_and_linking() {
        let recipe = Recipe {
            program: "/x/rustc".into(),
            args: "--crate-name upstream src/main.rs --error-format=json --json=artifacts --crate-type bin \
                   -C metadata=abc -C extra-filename=-abc --out-dir /t/deps -C incremental=/t/inc -C strip=symbols"
                .split(' ')
                .map(String::from)
                .collect(),
            env: vec![],
        };
        let logic = arguments(&recipe, Part::Logic, Path::new("/o/logic")).join(" ");
        assert_eq!(
            logic,
            "--crate-name upstream src/main.rs --crate-type cdylib -C metadata=abc --out-dir /o/logic \
             -C incremental=/o/logic/incremental -C strip=symbols --cfg provision_split=\"logic\" -C prefer-dynamic \
             -C link-arg=-Wl,-rpath,$ORIGIN"
        );
        let host = arguments(&recipe, Part::Host, Path::new("/o/host")).join(" ");
        assert!(
            host.contains("--crate-type bin")
                && host.contains("provision_split=\"host\"")
                && host.ends_with("--cap-lints allow")
        );
    }
}
