//! A program `provision` did not compile: a command named in the project's `provision.json`,
//! run once per command, that answers a request with its declaration (docs/program.md).
//!
//! The request is one JSON object on the program's stdin: the stack, the checkout's origin, the
//! region, the account id, whether the endpoint is an emulator, and the project's settings file
//! as written. The answer is the declaration on stdout (docs/declaration.md). What the program
//! prints on stderr is shown when it fails.

use super::{Declaring, Program};
use crate::engine::document::{Declaration, Document, VERSION};
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The file in a project's root that names its program.
pub const PROJECT_FILE: &str = "provision.json";

/// A project's `provision.json`: its program, or several (the first is the default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    program: Option<ProgramEntry>,
    #[serde(default)]
    programs: Vec<ProgramEntry>,
}

/// A program of a project: its name (the state records it), what it stands up, and how to run
/// it: a package of the project's Cargo workspace (built by cargo when it changed), or any
/// command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramEntry {
    name: String,
    /// One line: what it stands up (`provision programs` shows it).
    #[serde(default)]
    about: Option<String>,
    /// The package whose binary is the program (it depends on the `declaration` crate).
    #[serde(default)]
    package: Option<String>,
    /// The command and its arguments, run in the project's root.
    #[serde(default)]
    command: Vec<String>,
}

/// How a project's program is run.
enum Runs {
    /// The binary of this package of the project's workspace, built first.
    Package(String),
    /// This command and its arguments.
    Command(Vec<String>),
}

/// A project: a folder whose `provision.json` names its program(s).
pub struct Project {
    root: PathBuf,
    path: PathBuf,
    entries: Vec<ProgramEntry>,
}

impl Project {
    /// The project at `root` (`None` when it has no `provision.json`), its file checked.
    pub fn read(root: &Path) -> Result<Option<Self>> {
        let path = root.join(PROJECT_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
        let file: ProjectFile = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
            .map_err(|err| {
                anyhow::anyhow!(
                    "{} is not a project file provision can read: at `{}`: {}. It holds {{\"program\": {{\"name\": \
                     \"my-stack\", \"package\": \"my-program\"}}}} (docs/program.md)",
                    path.display(),
                    err.path(),
                    err.inner()
                )
            })?;
        let entries = match (file.program, file.programs.is_empty()) {
            (Some(one), true) => vec![one],
            (None, false) => file.programs,
            (Some(_), false) => bail!("{}: name `program` or `programs`, not both", path.display()),
            (None, true) => bail!(
                "{}: no `program`: name the package of your workspace whose binary prints the declaration \
                 ({{\"program\": {{\"name\": \"my-stack\", \"package\": \"my-program\"}}}}), or a command that does",
                path.display()
            ),
        };
        for entry in &entries {
            check_entry(entry, &path)?;
        }
        let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            bail!("{}: program `{}` is named twice", path.display(), twice[0]);
        }
        Ok(Some(Self { root: root.to_path_buf(), path, entries }))
    }

    /// Each program's name and what it stands up, in the file's order (the first is the default).
    pub fn programs(&self) -> Vec<(&str, &str)> {
        self.entries.iter().map(|e| (e.name.as_str(), e.about.as_deref().unwrap_or(""))).collect()
    }

    /// The program called `name`, or the project's first when `name` is `None`; an unknown name
    /// is refused with the names there are.
    pub fn program(&self, name: Option<&str>) -> Result<External> {
        let entry = match name {
            None => &self.entries[0],
            Some(name) => self.entries.iter().find(|e| e.name == name).ok_or_else(|| {
                let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
                anyhow::anyhow!(
                    "there is no program `{name}` in {}: its programs are {}",
                    self.path.display(),
                    names.join(", ")
                )
            })?,
        };
        let runs = match (&entry.package, entry.command.is_empty()) {
            (Some(package), _) => Runs::Package(package.clone()),
            (None, _) => Runs::Command(entry.command.clone()),
        };
        Ok(External {
            name: Box::leak(entry.name.clone().into_boxed_str()),
            about: Box::leak(entry.about.clone().unwrap_or_default().into_boxed_str()),
            runs,
            root: self.root.clone(),
        })
    }
}

/// Checks one program of `path`: a valid name, and a package or a command (not both).
fn check_entry(entry: &ProgramEntry, path: &Path) -> Result<()> {
    match (&entry.package, entry.command.is_empty()) {
        (Some(_), false) => bail!(
            "{}: program `{}` names both a `package` and a `command`: name one (the package of your workspace \
             whose binary prints the declaration, or a command that does)",
            path.display(),
            entry.name
        ),
        (None, true) => bail!(
            "{}: program `{}` names no `package` and no `command`: name the package of your workspace whose \
             binary prints the declaration (\"package\": \"my-program\"), or a command that does",
            path.display(),
            entry.name
        ),
        _ => {}
    }
    let name = &entry.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("{}: program name `{name}` must be letters, digits, '-' or '_' (the state records it)", path.display());
    }
    Ok(())
}

/// A program a project's `provision.json` names.
pub struct External {
    name: &'static str,
    about: &'static str,
    runs: Runs,
    root: PathBuf,
}

impl External {
    /// The program's answer to `request`: what it printed on stdout. A package's binary is built
    /// first (cargo rebuilds only what changed), and its answer is kept next to it while the
    /// binary, the request and the files the program read stay the same.
    fn answer(&self, request: &Value) -> Result<String> {
        match &self.runs {
            Runs::Command(command) => self.run(command, request),
            Runs::Package(package) => {
                let binary = super::program_build::build(&self.root, self.name, package)?;
                let cache = super::program_build::AnswerCache::of(&binary, request, &self.root);
                if let Some(answer) = cache.as_ref().and_then(|cache| cache.read()) {
                    return Ok(answer);
                }
                let answer = self.run(&[binary.display().to_string()], request)?;
                if let Some(cache) = cache {
                    cache.write(&answer);
                }
                Ok(answer)
            }
        }
    }

    /// Runs `command` with `request` and returns what it printed on stdout.
    fn run(&self, command: &[String], request: &Value) -> Result<String> {
        let shown = command.join(" ");
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "running program `{}` (`{shown}` in {}): check provision.json's `program`",
                    self.name,
                    self.root.display()
                )
            })?;
        // A program that does not read its request is not an error: it may need none.
        let _ = child.stdin.take().expect("piped stdin").write_all(request.to_string().as_bytes());
        let pid = child.id();
        let (sender, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(child.wait_with_output()));
        let wait = answer_wait();
        let out = match answer.recv_timeout(wait) {
            Ok(out) => out.with_context(|| format!("waiting for program `{}`", self.name))?,
            Err(_) => {
                // SAFETY: kill(2) on the child this process started and has not yet reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                bail!(
                    "program `{}` (`{shown}`) did not answer within {} s; it was stopped and nothing was changed. \
                     A program prints its declaration and exits (PROVISION_PROGRAM_TIMEOUT sets the wait in seconds)",
                    self.name,
                    wait.as_secs()
                );
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let how = match out.status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".into(),
            };
            bail!(
                "program `{}` (`{shown}`) {how}; nothing was changed. What it said:\n{}",
                self.name,
                indent(stderr.trim_end())
            );
        }
        String::from_utf8(out.stdout)
            .with_context(|| format!("program `{}` printed something that is not UTF-8", self.name))
    }
}

/// How long a program has to answer: `PROVISION_PROGRAM_TIMEOUT` seconds, else 120 (a program
/// crate's first build may be part of its run).
fn answer_wait() -> std::time::Duration {
    let seconds = std::env::var("PROVISION_PROGRAM_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    std::time::Duration::from_secs(seconds)
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "  (nothing on stderr)".into();
    }
    text.lines().map(|line| format!("  | {line}")).collect::<Vec<_>>().join("\n")
}

impl Program for External {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
    fn source_package(&self) -> Option<&str> {
        match &self.runs {
            Runs::Package(package) => Some(package),
            Runs::Command(_) => None,
        }
    }
    /// The program reads its own settings when it runs, and says what is wrong with them.
    fn check_settings(&self, _settings: &Settings) -> Result<()> {
        Ok(())
    }
    /// The request always carries the account id (one STS call, answered once per run).
    fn needs_account_id(&self, _settings: &Settings) -> bool {
        true
    }
    fn declaration(&self, on: &Declaring) -> Result<Declaration> {
        let request = json!({
            "version": VERSION,
            "stack": on.stack,
            "origin": on.origin,
            "region": on.region,
            "account_id": on.account_id,
            "local": on.local,
            "settings": on.settings.raw(),
        });
        let from = format!("program `{}`", self.name);
        let answer = self.answer(&request)?;
        Declaration::parse(&answer, &from)
    }
}
