//! What the endpoint is and what it offers, found by asking it, before anything is changed.
//!
//! - **Which emulator**: LocalStack answers `GET /_localstack/info` with its version and edition;
//!   MiniStack answers it 404 but has `/_ministack/health`. (MiniStack also imitates LocalStack's
//!   health endpoint, so that one cannot tell them apart.)
//! - **Which services**: both list theirs in `GET /_localstack/health`; a service missing there is
//!   not offered (RDS on LocalStack Community). A listed service may still not work (LocalStack's
//!   DynamoDB here needs a Java download), so each service the run is about to create something
//!   in also gets one cheap read, with a time limit. Real AWS is taken to offer every service.

use crate::cloud::Cloud;
use crate::http::HttpClient;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long one cheap read may take before the service is taken as not working.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

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
            let answer = tokio::time::timeout(Duration::from_secs(3), http.get(&address)).await.ok()?.ok()?;
            (answer.status == 200).then(|| serde_json::from_str::<Value>(&answer.body).ok()).flatten()
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

type Probe<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One cheap read of `service` (names as in the health endpoint), or `None` for a service this
/// provisioner does not know how to probe.
fn probe<'a>(cloud: &'a Cloud, service: &str) -> Option<Probe<'a>> {
    use crate::aws::errors::describe;
    let probe: Probe<'a> =
        match service {
            "iam" => Box::pin(async move {
                cloud.iam.list_roles().max_items(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "sqs" => Box::pin(async move {
                cloud.sqs.list_queues().max_results(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "kinesis" => Box::pin(async move {
                cloud.kinesis.list_streams().limit(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "dynamodb" => Box::pin(async move {
                cloud.dynamodb.list_tables().limit(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "lambda" => Box::pin(async move {
                cloud.lambda.list_functions().max_items(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "apigateway" => Box::pin(async move {
                cloud.apigateway.get_rest_apis().limit(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "rds" => Box::pin(async move {
                cloud.rds.describe_db_instances().max_records(20).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "s3" => Box::pin(async move {
                cloud.s3.list_buckets().max_buckets(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            "firehose" => Box::pin(async move {
                cloud.firehose.list_delivery_streams().limit(1).send().await.map(|_| ()).map_err(|e| describe(&e))
            }),
            _ => return None,
        };
    Some(probe)
}

/// The services among `needed` the endpoint does not offer, each with the reason. Changes nothing.
pub async fn missing_services(cloud: &Cloud, endpoint: &Endpoint, needed: &BTreeSet<&str>) -> BTreeMap<String, String> {
    let mut missing = BTreeMap::new();
    if endpoint.flavor == Flavor::Aws {
        return missing;
    }
    if let Some(listed) = &endpoint.listed {
        for service in needed.iter().filter(|s| !listed.contains(**s)) {
            missing.insert(service.to_string(), format!("{} does not list it among its services", endpoint.describe()));
        }
    }
    let probes = needed.iter().filter(|s| !missing.contains_key(**s)).filter_map(|service| {
        let probe = probe(cloud, service)?;
        Some(async move {
            let answer = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("a simple read did not answer within {} s", PROBE_TIMEOUT.as_secs())),
            };
            (service.to_string(), answer)
        })
    });
    for (service, answer) in futures::future::join_all(probes).await {
        if let Err(reason) = answer {
            missing.insert(service, reason);
        }
    }
    missing
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
