//! Programs: Rust code that declares a stack with the engine's API: its resources, the references
//! between them, the functions it deploys and the values users need once it is up. The engine, the
//! drivers and every command (`plan`, `up`, `down`, `outputs`, `watch`, `logs`) are the same for
//! every program; `--program NAME` picks one, and a stack is an instance of exactly one (its
//! state records which).
//!
//! Adding a program: a module here implementing [`Program`], one line in [`all`], and its functions
//! as packages under `functions/` (each a package whose binary has the package's name). Nothing
//! under `engine/` changes, and no driver unless the program needs a new kind.

pub mod external;
pub mod mapreduce;
pub mod pipeline;
pub mod program_build;

use crate::artifact::{Artifact, BuildConfig};
use crate::aws::api_key::ApiKeySpec;
use crate::aws::iam_role::{IamRoleSpec, Statement};
use crate::aws::lambda_function::LambdaFunctionSpec;
use crate::aws::log_group::LogGroupSpec;
use crate::aws::rest_api::{RestApiSpec, Route, StageThrottle};
use crate::aws::usage_plan::UsagePlanSpec;
use crate::engine::declare::{Handle, StackDef};
use crate::engine::document::{Declaration, Document};
use crate::engine::input::Input;
use crate::settings::{ApiAuth, Settings};
use anyhow::Result;
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
    /// What to tell a user whose endpoint does not offer `service`, beyond naming it (the
    /// pipeline's database can be brought instead of an RDS instance).
    fn advice_when_missing(&self, _service: &str, _settings: &Settings) -> Option<String> {
        None
    }
    /// Declares the stack.
    fn declare(&self, on: &Declaring) -> Result<StackDef>;
    /// The stack's declaration as the document every program hands the engine
    /// (`docs/declaration.md`): for a program compiled into `provision`, its [`Program::declare`]
    /// written out; a program of the user's prints it ([`external`]).
    fn declaration(&self, on: &Declaring) -> Result<Declaration> {
        Ok(Declaration::of(&self.declare(on)?))
    }
}

/// Every program, one line each.
pub fn all() -> &'static [&'static dyn Program] {
    &[&pipeline::Pipeline, &mapreduce::MapReduce]
}

/// The program called `name`, or an error listing the programs there are.
pub fn find(name: &str) -> Result<&'static dyn Program> {
    all().iter().copied().find(|p| p.name() == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|p| p.name()).collect();
        anyhow::anyhow!(
            "there is no program `{name}`: the programs are {} (`provision programs` lists them)",
            names.join(", ")
        )
    })
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

/// One function a program deploys: the binary of the package of that name under `functions/`.
pub struct Function<'a> {
    /// The binary (and package) name; the physical name is `<stack>-<binary>`.
    pub binary: &'a str,
    pub role: &'a Handle<IamRoleSpec>,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub environment: Vec<(&'a str, Input<String>)>,
}

impl Declaring<'_> {
    /// The spec of a function running `function.binary` on `provided.al2023`.
    pub fn function(&self, stack: &StackDef, function: Function) -> LambdaFunctionSpec {
        let artifact = self.functions.artifact(function.binary);
        LambdaFunctionSpec {
            name: stack.physical_name(function.binary),
            binary: function.binary.to_string(),
            role_arn: function.role.arn(),
            runtime: "provided.al2023".into(),
            handler: "bootstrap".into(),
            architecture: self.settings.architecture.clone(),
            memory_mb: function.memory_mb,
            timeout_s: function.timeout_s,
            environment: function.environment.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            zip_path: artifact.zip_path.display().to_string(),
            code_sha256: if self.hot_reload { "hot-reload".into() } else { artifact.sha256.clone() },
            hot_reload_dir: self.hot_reload.then(|| artifact.hot_reload_dir.display().to_string()),
            vpc: None,
        }
    }
}

/// Declares the log group of function `binary` (`/aws/lambda/<stack>-<binary>`, its events kept
/// `log_retention_days`) and the function's execution role: Lambda may assume it, with
/// `statements` and the right to write to that one log group. The role refers to the group, so
/// the group is made before the function and deleted after it (Lambda would make it again).
pub fn function_role(
    stack: &mut StackDef,
    on: &Declaring,
    binary: &str,
    mut statements: Vec<Statement>,
) -> Handle<IamRoleSpec> {
    let group = LogGroupSpec::of_function(&stack.physical_name(binary), on.settings.log_retention_days);
    let logs = stack.add(&format!("{binary}-logs"), group);
    statements.push(Statement::allow(&["logs:CreateLogStream", "logs:PutLogEvents"], vec![logs.streams_arn()]));
    let role = IamRoleSpec {
        name: stack.physical_name(&format!("{binary}-role")),
        service: "lambda.amazonaws.com".into(),
        statements,
        other_inline_policies: vec![],
        managed_policy_arns: vec![],
    };
    stack.add(&format!("{binary}-role"), role)
}

/// Declares a program's REST API (`api`, deployed to `stage`) answering `routes`, protected as
/// the settings' `api` section says: the stage's throttle always; with `"auth": "api_key"` every
/// route requires a key, and the stack declares one (`api-key`, its id exported as `api_key_id`;
/// `provision api-key` prints its value) and a usage plan of the stage holding it (`api-plan`,
/// with the same throttle per key and the daily quota); with `"auth": "iam"` every route
/// requires SigV4 from a principal allowed to invoke it.
pub fn protected_api(stack: &mut StackDef, on: &Declaring, stage: &str, routes: Vec<Route>) -> Handle<RestApiSpec> {
    let api_settings = &on.settings.api;
    let routes = routes
        .into_iter()
        .map(|route| Route {
            authorization: if api_settings.auth == ApiAuth::Iam { "AWS_IAM".into() } else { "NONE".into() },
            api_key_required: api_settings.auth == ApiAuth::ApiKey,
            ..route
        })
        .collect();
    let throttle = StageThrottle { rate_per_s: api_settings.throttle.rate_per_s, burst: api_settings.throttle.burst };
    let spec = RestApiSpec { throttle: Some(throttle), ..RestApiSpec::new(stack.physical_name("api"), stage, routes) };
    let api = stack.add("api", spec);
    if api_settings.auth == ApiAuth::ApiKey {
        let key = stack.add("api-key", ApiKeySpec { name: stack.physical_name("api-key") });
        let plan = UsagePlanSpec {
            name: stack.physical_name("api-plan"),
            api_id: api.output("id"),
            stage: stage.to_string(),
            rate_per_s: throttle.rate_per_s,
            burst: throttle.burst,
            quota_per_day: api_settings.quota_per_day,
            api_key_ids: vec![key.key_id()],
        };
        stack.add("api-plan", plan);
        stack.export("api_key_id", [key.key_id()]);
    }
    api
}

/// The binaries every program deploys, declared with default settings (sorted, no repeats): what
/// a build of all the functions builds.
pub fn every_function_binary(config: &BuildConfig) -> Result<Vec<String>> {
    let settings = Settings::default();
    let functions = Functions::placeholders(config);
    let mut binaries = Vec::new();
    for program in all() {
        let on = Declaring {
            stack: "all",
            origin: "",
            account_id: "",
            region: "",
            settings: &settings,
            functions: &functions,
            local: true,
            hot_reload: false,
        };
        binaries.extend(functions_of(&program.declare(&on)?).into_iter().map(|f| f.binary));
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
