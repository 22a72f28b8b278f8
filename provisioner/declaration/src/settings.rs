//! The settings file as a program reads it from its request: the keys every stack has
//! ([`COMMON_KEYS`], also read by the engine: [`Common`] holds those a program uses) and the
//! program's own, read into a type of its own ([`Request::program_settings`]) whose every field
//! has a default and which refuses an unknown key, naming every key allowed there and the
//! nearest, so a typo is an error rather than ignored.

use crate::Request;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// The keys of the settings every program shares, as the engine read them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Common {
    /// `x86_64` or `arm64`: what every function is built and deployed for.
    pub architecture: String,
    /// How many days the functions' log groups keep their events.
    pub log_retention_days: i32,
    /// The REST API's protection.
    pub api: ApiSettings,
}

impl Default for Common {
    fn default() -> Self {
        Self { architecture: "x86_64".into(), log_retention_days: 14, api: ApiSettings::default() }
    }
}

/// A function's memory and timeout, as a program's settings give them (`{"memory_mb": 512}`);
/// each defaults (256 MB, 30 s) and an unknown key is an error.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionSettings {
    pub memory_mb: i32,
    pub timeout_s: i32,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        Self { memory_mb: 256, timeout_s: 30 }
    }
}

impl Request {
    /// The common keys of the settings ([`Common`]); the engine checked them before it asked.
    pub fn common(&self) -> Result<Common, String> {
        let mut common = serde_json::Map::new();
        for key in ["architecture", "log_retention_days", "api"] {
            if let Some(value) = self.settings.get(key) {
                common.insert(key.to_string(), value.clone());
            }
        }
        serde_json::from_value(Value::Object(common)).map_err(|err| format!("the settings' common keys: {err}"))
    }

    /// The program's own settings (every key but [`COMMON_KEYS`]) read into `T`; an error names
    /// the key's path (`stream.shards`) and, for an unknown key, every key allowed there and the
    /// nearest one.
    pub fn program_settings<T: DeserializeOwned>(&self) -> Result<T, String> {
        let mut own = self.settings.as_object().cloned().unwrap_or_default();
        own.retain(|key, _| !COMMON_KEYS.contains(&key.as_str()));
        serde_path_to_error::deserialize(Value::Object(own))
            .map_err(|err| explain(&err.inner().to_string(), &err.path().to_string()))
    }
}

/// The keys every program's settings have, read before the program's own.
pub const COMMON_KEYS: [&str; 6] = ["api", "architecture", "hot_deploy", "log_retention_days", "protect", "state_url"];

/// serde's message about a key at `path`, made whole: an unknown key's list of allowed keys
/// (at the top, every program's keys too) and the nearest of them.
pub fn explain(message: &str, path: &str) -> String {
    let at_path = || format!("`{path}`: {message}");
    let Some(rest) = message.strip_prefix("unknown field `") else { return at_path() };
    let Some((unknown, allowed)) = rest.split_once('`') else { return at_path() };
    let mut keys: Vec<&str> = allowed.split('`').skip(1).step_by(2).collect();
    if !path.contains('.') {
        keys.extend(COMMON_KEYS);
    }
    keys.sort_unstable();
    keys.dedup();
    let nearest = keys
        .iter()
        .copied()
        .min_by_key(|key| edit_distance(unknown, key))
        .filter(|key| edit_distance(unknown, key) <= 2.max(unknown.len() / 4));
    let listed = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let (key, here) = match path.rsplit_once('.') {
        Some((parent, _)) => (format!("{parent}.{unknown}"), format!("in `{parent}`")),
        None => (unknown.to_string(), "here".to_string()),
    };
    match nearest {
        Some(nearest) => format!("unknown key `{key}`: did you mean `{nearest}`? The keys {here} are {listed}"),
        None => format!("unknown key `{key}`: the keys {here} are {listed}"),
    }
}

/// Levenshtein distance, for suggesting the key a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// How the REST API is protected (`"api": {...}` in the settings), for every program's API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The stage's limit on requests, on by default so a public endpoint is never unbounded.
    pub throttle: Throttle,
    /// Who may call: anyone (`none`), callers with the stack's API key (`api_key`), or callers
    /// signing with SigV4 as an IAM principal allowed to invoke it (`iam`).
    pub auth: ApiAuth,
    /// With `api_key`: requests a day the key may make (the usage plan's quota); none by default.
    pub quota_per_day: Option<i32>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self { throttle: Throttle::default(), auth: ApiAuth::None, quota_per_day: None }
    }
}

impl ApiSettings {
    /// What API Gateway would refuse, or what makes no sense, said in the settings' terms.
    pub fn check(&self) -> std::result::Result<(), String> {
        let Throttle { rate_per_s, burst } = self.throttle;
        if !(rate_per_s > 0.0 && rate_per_s <= 10_000.0) {
            return Err(format!(
                "throttle.rate_per_s is {rate_per_s}: it must be above 0 and at most 10000 (AWS's default account limit)"
            ));
        }
        if !(1..=5_000).contains(&burst) {
            return Err(format!("throttle.burst is {burst}: it must be 1-5000 (AWS's default account burst)"));
        }
        match (self.quota_per_day, self.auth) {
            (Some(quota), ApiAuth::ApiKey) if quota < 1 => {
                Err(format!("quota_per_day is {quota}: it must be at least 1"))
            }
            (Some(_), auth) if auth != ApiAuth::ApiKey => {
                Err("quota_per_day needs \"auth\": \"api_key\" (a quota counts a key's requests)".into())
            }
            _ => Ok(()),
        }
    }
}

/// A token bucket: `rate_per_s` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub rate_per_s: f64,
    pub burst: i32,
}

impl Default for Throttle {
    /// 1,000 requests a second, 2,000 at once: several times what the classic load reaches here
    /// (about 120 a second) and far below AWS's account-wide 10,000.
    fn default() -> Self {
        Self { rate_per_s: 1000.0, burst: 2000 }
    }
}

/// Who may call the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiAuth {
    None,
    ApiKey,
    Iam,
}
