//! The settings file (`stack.json`, or `--settings FILE`): JSON, read before anything runs. A few
//! keys are every program's (`architecture`, `hot_deploy`); the rest belong to the program the
//! stack is an instance of, which reads them into a type of its own ([`Settings::program`]) with
//! every field defaulted and an unknown field refused, so a typo is an error rather than ignored.

use anyhow::{bail, Context, Result};
use declaration::settings::explain;
pub use declaration::settings::{ApiAuth, ApiSettings, Throttle, COMMON_KEYS};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::Path;

/// The settings of one stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `x86_64` or `arm64`: the architecture every function is built and deployed for.
    pub architecture: String,
    /// LocalStack only: run the functions from LocalStack's `hot-reload` code bucket pointing at
    /// `target/lambda/hot-reload/<function>/`, so rebuilt binaries are picked up with no upload.
    /// On an endpoint without that bucket (MiniStack, AWS) the zips are uploaded instead.
    pub hot_deploy: bool,
    /// How many days the functions' log groups keep their events: one of CloudWatch Logs'
    /// periods (1, 3, 5, 7, 14, 30, 60, 90, ... 3653). Default 14.
    pub log_retention_days: i32,
    /// The REST API's protection: throttle and authentication (see [`ApiSettings`]).
    pub api: ApiSettings,
    /// A protected stack: `down` refuses, naming the data it would delete, and `up` turns on the
    /// cloud's own deletion protection where AWS offers it (DynamoDB tables, RDS instances).
    pub protect: bool,
    /// Where the stack's state is kept when not in the local folder: `s3://BUCKET/PREFIX`
    /// (`--state-url` and `PROVISION_STATE_URL` take precedence).
    pub state_url: Option<String>,
    /// Every other key: the program's.
    program: Map<String, Value>,
    /// The file as written (an empty object without one): what a program's request carries.
    raw: Value,
    /// Where they came from, for messages.
    source: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            architecture: "x86_64".into(),
            hot_deploy: false,
            log_retention_days: 14,
            api: ApiSettings::default(),
            protect: false,
            state_url: None,
            program: Map::new(),
            raw: Value::Object(Map::new()),
            source: "the defaults".into(),
        }
    }
}

impl Settings {
    /// Loads `path` if it exists (defaults otherwise) and checks the common keys. `stack.json` may
    /// be missing; a file named with `--settings` must exist.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut settings = Self::default();
        let text = match path {
            Some(path) if path.exists() => {
                std::fs::read_to_string(path).with_context(|| format!("reading settings {}", path.display()))?
            }
            Some(path) if path.file_name() != Some("stack.json".as_ref()) => {
                bail!("settings file {} does not exist", path.display())
            }
            _ => return Ok(settings),
        };
        let path = path.expect("a file was read");
        settings.source = format!("settings file {}", path.display());
        let document: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", settings.source))?;
        settings.raw = document.clone();
        let Value::Object(mut keys) = document else {
            bail!("{} must hold a JSON object ({{ \"key\": value, ... }})", settings.source);
        };
        if let Some(architecture) = keys.remove("architecture") {
            settings.architecture = serde_json::from_value(architecture)
                .with_context(|| format!("{}: architecture must be a string", settings.source))?;
        }
        if let Some(hot_deploy) = keys.remove("hot_deploy") {
            settings.hot_deploy = serde_json::from_value(hot_deploy)
                .with_context(|| format!("{}: hot_deploy must be true or false", settings.source))?;
        }
        if let Some(days) = keys.remove("log_retention_days") {
            settings.log_retention_days = serde_json::from_value(days)
                .with_context(|| format!("{}: log_retention_days must be a whole number of days", settings.source))?;
        }
        if let Err(e) = crate::aws::log_group::check_retention(settings.log_retention_days.into()) {
            bail!("{}: log_retention_days {e}", settings.source);
        }
        if let Some(protect) = keys.remove("protect") {
            settings.protect = serde_json::from_value(protect)
                .with_context(|| format!("{}: protect must be true or false", settings.source))?;
        }
        if let Some(url) = keys.remove("state_url") {
            settings.state_url =
                Some(serde_json::from_value(url).with_context(|| {
                    format!("{}: state_url must be a string (s3://BUCKET/PREFIX)", settings.source)
                })?);
        }
        if let Some(api) = keys.remove("api") {
            settings.api = serde_json::from_value(api)
                .with_context(|| format!("{}: the api section is invalid", settings.source))?;
            settings.api.check().map_err(|problem| anyhow::anyhow!("{}: api: {problem}", settings.source))?;
        }
        if !matches!(settings.architecture.as_str(), "x86_64" | "arm64") {
            bail!("{}: architecture must be \"x86_64\" or \"arm64\", not {:?}", settings.source, settings.architecture);
        }
        settings.program = keys;
        Ok(settings)
    }

    /// Settings with these program keys (tests, and programs checking a change).
    pub fn with_program(program: Map<String, Value>) -> Self {
        Self { raw: Value::Object(program.clone()), program, ..Self::default() }
    }

    /// The program's settings, read into its own type (whose every field has a default and
    /// which refuses unknown fields); the error names the file, the key's path
    /// (`stream.shards`), and for an unknown key every key allowed there, with the nearest one.
    pub fn program<T: DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(Value::Object(self.program.clone())).map_err(|err| {
            let path = err.path().to_string();
            let explained = explain(&err.inner().to_string(), &path);
            anyhow::anyhow!("{}: {explained}", self.source)
        })
    }

    /// The settings file as written (an empty object without one).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Where the settings came from (`settings file stack.json`), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A settings file of the test's own, removed when the test ends.
    struct TempFile(std::path::PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("provision-settings-{name}-{}.json", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    #[test]
    fn common_keys_are_read_and_the_rest_is_the_programs() {
        let path = write("common", r#"{"architecture": "arm64", "shard_count": 2}"#);
        let settings = Settings::load(Some(&*path)).unwrap();
        assert_eq!(settings.architecture, "arm64");
        let program: Map<String, Value> = settings.program().unwrap();
        assert_eq!(program.get("shard_count"), Some(&Value::from(2)));
        assert!(!program.contains_key("architecture"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    #[allow(dead_code)]
    struct Program {
        stream: Stream,
        batch_size: i32,
    }
    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    #[allow(dead_code)]
    struct Stream {
        shards: i32,
    }
    impl Default for Program {
        fn default() -> Self {
            Self { stream: Stream::default(), batch_size: 10 }
        }
    }

    #[test]
    fn an_unknown_key_is_refused_with_every_allowed_key_and_the_nearest() {
        let path = write("typo", r#"{"log_retention_day": 7}"#);
        let err = Settings::load(Some(&*path)).unwrap().program::<Program>().unwrap_err().to_string();
        assert!(err.contains("unknown key `log_retention_day`: did you mean `log_retention_days`?"), "{err}");
        assert!(err.contains("`api`") && err.contains("`batch_size`") && err.contains("`state_url`"), "{err}");
        let path = write("nested", r#"{"stream": {"shard": 2}}"#);
        let err = Settings::load(Some(&*path)).unwrap().program::<Program>().unwrap_err().to_string();
        assert!(err.contains("unknown key `stream.shard`: did you mean `shards`?"), "{err}");
        assert!(err.contains("The keys in `stream` are") && !err.contains("`api`"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_path() {
        let path = write("type", r#"{"stream": {"shards": "two"}}"#);
        let err = Settings::load(Some(&*path)).unwrap().program::<Program>().unwrap_err().to_string();
        assert!(err.contains("`stream.shards`: invalid type: string \"two\", expected i32"), "{err}");
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let path = write("bad", r#"{"architecture": "sparc"}"#);
        let err = Settings::load(Some(&*path)).unwrap_err().to_string();
        assert!(err.contains("sparc") && err.contains(&path.display().to_string()), "{err}");
        let path = write("list", "[1]");
        assert!(Settings::load(Some(&*path)).unwrap_err().to_string().contains("JSON object"));
        assert!(Settings::load(Some(Path::new("/nonexistent/other.json"))).is_err());
        assert_eq!(Settings::load(Some(Path::new("/nonexistent/stack.json"))).unwrap(), Settings::default());
    }
}
