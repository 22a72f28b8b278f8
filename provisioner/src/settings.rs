//! The settings file (`stack.json`, or `--settings FILE`): JSON, read before anything runs. A few
//! keys are every program's (`architecture`, `hot_deploy`); the rest belong to the program the
//! stack is an instance of, which reads them into a type of its own ([`Settings::program`]) with
//! every field defaulted and an unknown field refused, so a typo is an error rather than ignored.

use anyhow::{bail, Context, Result};
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
    /// Every other key: the program's.
    program: Map<String, Value>,
    /// Where they came from, for messages.
    source: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { architecture: "x86_64".into(), hot_deploy: false, program: Map::new(), source: "the defaults".into() }
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
        if !matches!(settings.architecture.as_str(), "x86_64" | "arm64") {
            bail!("{}: architecture must be \"x86_64\" or \"arm64\", not {:?}", settings.source, settings.architecture);
        }
        settings.program = keys;
        Ok(settings)
    }

    /// Settings with these program keys (tests, and programs checking a change).
    pub fn with_program(program: Map<String, Value>) -> Self {
        Self { program, ..Self::default() }
    }

    /// The program's settings, read into its own type (whose every field has a default and
    /// which refuses unknown fields); the error names the file and the key.
    pub fn program<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(Value::Object(self.program.clone()))
            .with_context(|| format!("{} is invalid", self.source))
    }

    /// Where the settings came from (`settings file stack.json`), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("provision-settings-{name}-{}.json", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn common_keys_are_read_and_the_rest_is_the_programs() {
        let path = write("common", r#"{"architecture": "arm64", "shard_count": 2}"#);
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(settings.architecture, "arm64");
        let program: Map<String, Value> = settings.program().unwrap();
        assert_eq!(program.get("shard_count"), Some(&Value::from(2)));
        assert!(!program.contains_key("architecture"));
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let path = write("bad", r#"{"architecture": "sparc"}"#);
        let err = Settings::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("sparc") && err.contains(&path.display().to_string()), "{err}");
        let path = write("list", "[1]");
        assert!(Settings::load(Some(&path)).unwrap_err().to_string().contains("JSON object"));
        assert!(Settings::load(Some(Path::new("/nonexistent/other.json"))).is_err());
        assert_eq!(Settings::load(Some(Path::new("/nonexistent/stack.json"))).unwrap(), Settings::default());
    }
}
