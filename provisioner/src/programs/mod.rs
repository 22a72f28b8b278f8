//! Programs: what declares a stack (its resources, the references between them, the functions
//! it deploys and the values users need once it is up) as the document the engine reads
//! (`docs/declaration.md`). The engine, the drivers and every command (`plan`, `up`, `down`,
//! `outputs`, `watch`, `logs`) are the same for every program; a stack is an instance of exactly
//! one (its state records which).
//!
//! A project's programs are named in its `provision.json` ([`external`]): packages of its
//! workspace (crates depending on `declaration`) or any command. This repository is such a
//! project: its `pipeline` and `mapreduce` are crates under `programs/`, run exactly as a user's.

pub mod external;
pub mod program_build;

use crate::artifact::{Artifact, BuildConfig};
use crate::engine::declare::StackDef;
use crate::engine::document::{Declaration, Document};
use crate::settings::Settings;
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// A program: what it is called and how it declares its stack.
pub trait Program: Sync {
    /// The name users pick it by (`--program NAME`) and the state records.
    fn name(&self) -> &'static str;
    /// One line: what it stands up.
    fn about(&self) -> &'static str;
    /// Checks the program's part of the settings file, so bad input is refused before anything
    /// runs (and a watched file that does not parse changes nothing).
    fn check_settings(&self, settings: &Settings) -> Result<()>;
    /// True when the declaration needs the account id (a globally unique bucket name carries it).
    fn needs_account_id(&self, _settings: &Settings) -> bool {
        false
    }
    /// The package of the project's workspace the program is built from, when it is one
    /// (`watch` applies an edit of it as it applies a settings edit).
    fn source_package(&self) -> Option<&str> {
        None
    }
    /// The stack's declaration: the document every program hands the engine
    /// (`docs/declaration.md`), functions named by their binary.
    fn declaration(&self, on: &Declaring) -> Result<Declaration>;
    /// The declared stack, checked as every command checks it, with each function's code
    /// filled in from `on.functions`.
    fn declare(&self, on: &Declaring) -> Result<StackDef> {
        let mut document = self.declaration(on)?;
        fill_function_code(&mut document, on.functions, on.hot_reload);
        document.into_stack(on.stack, on.origin, crate::aws::registry())
    }
}

/// What a declaration is made from besides the program itself.
pub struct Declaring<'a> {
    /// The stack's name: it prefixes every physical name.
    pub stack: &'a str,
    /// The checkout's (or state's) part of the ownership mark.
    pub origin: &'a str,
    /// The account the stack is deployed in (empty unless [`Program::needs_account_id`]).
    pub account_id: &'a str,
    pub region: &'a str,
    pub settings: &'a Settings,
    /// The code of the functions the declaration names.
    pub functions: &'a Functions,
    /// True on an emulator, false on AWS.
    pub local: bool,
    /// Functions run from the endpoint's hot-reload bucket (the endpoint offers it).
    pub hot_reload: bool,
}

/// The code of each function a declaration names, by binary: the built and zipped binaries, or,
/// while a declaration is only read for its names (which functions, which resources), where they
/// would be.
pub struct Functions {
    config: BuildConfig,
    built: Option<BTreeMap<String, Artifact>>,
}

impl Functions {
    /// Where each function's code would be; nothing is built or read.
    pub fn placeholders(config: &BuildConfig) -> Self {
        Self { config: config.clone(), built: None }
    }

    /// The built functions.
    pub fn built(config: &BuildConfig, artifacts: BTreeMap<String, Artifact>) -> Self {
        Self { config: config.clone(), built: Some(artifacts) }
    }

    /// The artifact of `binary` (a placeholder while nothing is built).
    fn artifact(&self, binary: &str) -> Artifact {
        match self.built.as_ref().and_then(|built| built.get(binary)) {
            Some(artifact) => artifact.clone(),
            None => crate::artifact::placeholder(&self.config, binary),
        }
    }
}

/// Gives each function a declaration names by `binary` its code, where the program left it out
/// or empty (a program of the user's names only the binary): the zip built from that package of the
/// project, or the hot-reload folder.
pub fn fill_function_code(document: &mut Declaration, functions: &Functions, hot_reload: bool) {
    for resource in document.resources.iter_mut().filter(|r| r.kind == crate::aws::lambda_function::KIND.name()) {
        let Some(binary) = resource.properties.get("binary").and_then(|b| b.as_str()).map(str::to_string) else {
            continue;
        };
        let artifact = functions.artifact(&binary);
        let props = &mut resource.properties;
        let left_out = |props: &serde_json::Map<String, serde_json::Value>, key: &str| {
            props.get(key).is_none_or(|value| value.is_null() || value.as_str() == Some(""))
        };
        if left_out(props, "zip_path") {
            props.insert("zip_path".into(), artifact.zip_path.display().to_string().into());
        }
        if left_out(props, "code_sha256") {
            let sha = if hot_reload { "hot-reload".to_string() } else { artifact.sha256.clone() };
            props.insert("code_sha256".into(), sha.into());
        }
        if hot_reload && left_out(props, "hot_reload_dir") {
            props.insert("hot_reload_dir".into(), artifact.hot_reload_dir.display().to_string().into());
        }
    }
}

/// The binaries every program of the project deploys, declared with default settings (sorted, no repeats): what
/// a build of all the functions builds.
pub fn every_function_binary(config: &BuildConfig) -> Result<Vec<String>> {
    let settings = Settings::default();
    let functions = Functions::placeholders(config);
    let project = external::Project::read(&config.workspace)?
        .with_context(|| format!("{} has no provision.json naming its programs", config.workspace.display()))?;
    let mut binaries = Vec::new();
    for (name, _) in project.programs() {
        let on = Declaring {
            stack: "all",
            origin: "",
            account_id: "",
            region: "us-east-1",
            settings: &settings,
            functions: &functions,
            local: true,
            hot_reload: false,
        };
        let document = project.program(Some(name))?.declaration(&on)?;
        let functions = document.resources.iter().filter(|r| r.kind == crate::aws::lambda_function::KIND.name());
        binaries.extend(functions.filter_map(|f| Some(f.properties.get("binary")?.as_str()?.to_string())));
    }
    binaries.sort();
    binaries.dedup();
    Ok(binaries)
}

/// A function of a declared stack, as the commands see it: its id, binary and physical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFunction {
    pub id: String,
    pub binary: String,
    pub name: String,
}

/// The functions `stack` deploys, in declaration order.
pub fn functions_of(stack: &StackDef) -> Vec<DeclaredFunction> {
    stack
        .resources
        .iter()
        .filter(|r| r.kind == crate::aws::lambda_function::KIND)
        .filter_map(|r| {
            let text = |key: &str| r.props.get(key).and_then(|v| v.as_str()).map(str::to_string);
            Some(DeclaredFunction { id: r.id.clone(), binary: text("binary")?, name: text("name")? })
        })
        .collect()
}
