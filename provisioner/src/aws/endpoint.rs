//! What the endpoint is and what it offers, found by asking it, before anything is changed.
//!
//! - **Which emulator**: LocalStack answers `GET /_localstack/info` with its version and edition;
//!   MiniStack answers it 404 but has `/_ministack/health`. (MiniStack also imitates LocalStack's
//!   health endpoint, so that one cannot tell them apart.)
//! - **Which services**: both list theirs in `GET /_localstack/health`; a service missing there is
//!   not offered (RDS on LocalStack Community). Whether a listed service works is asked of the
//!   service itself (`aws::services`).

use crate::http::HttpClient;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// The kind of endpoint provision talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// Real AWS (no endpoint URL).
    Aws,
    /// LocalStack, with its version and whether a Pro license is active.
    LocalStack { version: String, pro: bool },
    /// MiniStack.
    MiniStack,
    /// Another emulator.
    Other,
}

/// What the endpoint said about itself.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub flavor: Flavor,
    /// The services its health endpoint lists as usable, where it has one.
    pub listed: Option<BTreeSet<String>>,
}

impl Endpoint {
    /// A short description for messages: `LocalStack 2026.3.0 (Community)`.
    pub fn describe(&self) -> String {
        match &self.flavor {
            Flavor::Aws => "AWS".into(),
            Flavor::LocalStack { version, pro } => {
                format!("LocalStack {version} ({})", if *pro { "Pro" } else { "Community" })
            }
            Flavor::MiniStack => "MiniStack".into(),
            Flavor::Other => "an emulator".into(),
        }
    }

    /// True for LocalStack, whose `hot-reload` code bucket runs functions from a local folder.
    pub fn has_hot_reload(&self) -> bool {
        matches!(self.flavor, Flavor::LocalStack { .. }) && self.listed.as_ref().is_none_or(|s| s.contains("lambda"))
    }
}

/// Asks the endpoint at `url` what it is (`None`: real AWS).
pub async fn detect(url: Option<&str>) -> Endpoint {
    let Some(url) = url.map(|u| u.trim_end_matches('/')) else {
        return Endpoint { flavor: Flavor::Aws, listed: None };
    };
    let http = HttpClient::new();
    let get_json = |path: &'static str| {
        let http = http.clone();
        let address = format!("{url}{path}");
        async move {
            // Two tries: one lost answer must not turn LocalStack into "an emulator".
            for _ in 0..2 {
                let answer = tokio::time::timeout(Duration::from_secs(3), http.get(&address)).await;
                match answer {
                    Ok(Ok(answer)) if answer.status == 200 => return serde_json::from_str::<Value>(&answer.body).ok(),
                    Ok(Ok(answer)) if answer.status < 500 => return None,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            None
        }
    };
    let (info, health, ministack) =
        tokio::join!(get_json("/_localstack/info"), get_json("/_localstack/health"), get_json("/_ministack/health"));
    let listed = health.as_ref().and_then(|h| h.get("services")).and_then(Value::as_object).map(|services| {
        services
            .iter()
            .filter(|(_, state)| state.as_str().is_some_and(|s| matches!(s, "available" | "running" | "initialized")))
            .map(|(name, _)| name.clone())
            .collect()
    });
    let flavor = match info.as_ref().and_then(|i| i.get("version")).and_then(Value::as_str) {
        Some(version) => Flavor::LocalStack {
            version: version.to_string(),
            pro: info.as_ref().and_then(|i| i.get("is_license_activated")).and_then(Value::as_bool).unwrap_or(false),
        },
        None if ministack.is_some() => Flavor::MiniStack,
        None => Flavor::Other,
    };
    Endpoint { flavor, listed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_reload_is_a_localstack_feature() {
        let localstack =
            Endpoint { flavor: Flavor::LocalStack { version: "2026.3.0".into(), pro: false }, listed: None };
        assert!(localstack.has_hot_reload());
        assert!(!Endpoint { flavor: Flavor::MiniStack, listed: None }.has_hot_reload());
        assert_eq!(localstack.describe(), "LocalStack 2026.3.0 (Community)");
    }
}
