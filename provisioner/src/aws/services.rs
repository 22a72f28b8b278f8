//! Whether the endpoint offers the services a run is about to create something in, asked before
//! anything is changed.
//!
//! A service the endpoint's health list leaves out is not offered (RDS on LocalStack Community).
//! A listed one may still not work (LocalStack's DynamoDB here needs a Java download), so each
//! gets one cheap read. Only a definite answer counts as "not offered": the endpoint does not
//! implement the operation, the service is not in its license, or it failed inside its own
//! implementation of it (`errors::is_not_offered`), or it did not answer at all within
//! [`PROBE_TIMEOUT`]. A throttle or a server error, retried [`PROBE_ATTEMPTS`] times, says
//! nothing either way: the run goes on, and says so. Real AWS is taken to offer every service.
//!
//! A kind may need a feature of a service (`kinesis:enhanced-fan-out`): the service is checked as
//! above, and the feature against what is known of each emulator ([`feature_gap`]), since no read
//! shows it: MiniStack registers stream consumers, but its mappings never read from them.

use crate::aws::endpoint::{Endpoint, Flavor};
use crate::aws::errors;
use crate::cloud::Cloud;
use aws_smithy_types::retry::RetryConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long one cheap read (with its retries) may take before the service is taken as not
/// answering. LocalStack's first call to a service installs it (14 s seen for Kinesis).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of one probe: enough that random faults do not decide it (at 40 % faults, all four
/// fail one probe in 40), few enough that a service failing for good is not retried for minutes.
const PROBE_ATTEMPTS: u32 = 4;

/// What the endpoint said about the services a run needs.
#[derive(Debug, Default)]
pub struct Offers {
    /// Services it said, for good, that it does not offer, with its answer.
    pub missing: BTreeMap<String, String>,
    /// Services whose probe got only transient answers: taken as offered, with the last answer.
    pub unconfirmed: BTreeMap<String, String>,
}

/// How one probe ended.
enum Probed {
    Offered,
    NotOffered(String),
    Unconfirmed(String),
}

type Probe<'a> = Pin<Box<dyn Future<Output = Probed> + Send + 'a>>;

/// The probe's answer, classified.
fn probed<T, E>(answer: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, errors::HttpResponse>>) -> Probed
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match answer {
        Ok(_) => Probed::Offered,
        Err(e) if errors::is_not_offered(&e) => Probed::NotOffered(errors::describe(&e)),
        Err(e) => Probed::Unconfirmed(errors::describe(&e)),
    }
}

/// One cheap read of `service` (names as in the health endpoint), with [`PROBE_ATTEMPTS`]
/// attempts; `None` for a service this provisioner does not know how to probe.
fn probe<'a>(cloud: &'a Cloud, service: &str) -> Option<Probe<'a>> {
    let retries = || RetryConfig::standard().with_max_attempts(PROBE_ATTEMPTS);
    macro_rules! probe {
        ($sdk:ident, $call:expr) => {
            Box::pin(async move {
                probed(
                    $call
                        .customize()
                        .config_override($sdk::config::Builder::default().retry_config(retries()))
                        .send()
                        .await,
                )
            })
        };
    }
    let probe: Probe<'a> = match service {
        "iam" => probe!(aws_sdk_iam, cloud.iam.list_roles().max_items(1)),
        "sqs" => probe!(aws_sdk_sqs, cloud.sqs.list_queues().max_results(1)),
        "kinesis" => probe!(aws_sdk_kinesis, cloud.kinesis.list_streams().limit(1)),
        "dynamodb" => probe!(aws_sdk_dynamodb, cloud.dynamodb.list_tables().limit(1)),
        "lambda" => probe!(aws_sdk_lambda, cloud.lambda.list_functions().max_items(1)),
        "apigateway" => probe!(aws_sdk_apigateway, cloud.apigateway.get_rest_apis().limit(1)),
        "rds" => probe!(aws_sdk_rds, cloud.rds.describe_db_instances().max_records(20)),
        "s3" => probe!(aws_sdk_s3, cloud.s3.list_buckets().max_buckets(1)),
        "firehose" => probe!(aws_sdk_firehose, cloud.firehose.list_delivery_streams().limit(1)),
        "sns" => probe!(aws_sdk_sns, cloud.sns.list_topics()),
        "cloudwatch" => probe!(aws_sdk_cloudwatch, cloud.cloudwatch.describe_alarms().max_records(1)),
        "logs" => probe!(aws_sdk_cloudwatchlogs, cloud.logs.describe_log_groups().limit(1)),
        _ => return None,
    };
    Some(probe)
}

/// Whether the endpoint's health list names `service`: LocalStack lists CloudWatch as
/// `cloudwatch`, MiniStack by its signing name, `monitoring`.
fn is_listed(listed: &BTreeSet<String>, service: &str) -> bool {
    let aliases: &[&str] = match service {
        "cloudwatch" => &["monitoring"],
        _ => &[],
    };
    listed.contains(service) || aliases.iter().any(|alias| listed.contains(*alias))
}

/// Why an emulator lacks a feature of a service no read can show, as read in its source.
fn feature_gap(flavor: &Flavor, feature: &str) -> Option<&'static str> {
    match (flavor, feature) {
        (Flavor::MiniStack, "enhanced-fan-out") => Some(
            "MiniStack registers stream consumers, but its Kinesis mappings read only from streams, never from a \
             consumer (enhanced fan-out); set \"kinesis_mapping\": {\"enhanced_fan_out\": false} there",
        ),
        (Flavor::MiniStack, "update-stream-mode") => Some(
            "MiniStack has no UpdateStreamMode (it answers `Unknown action`): an existing stream cannot switch \
             between provisioned and on demand there. Keep the stream's mode in the settings (\"stream\": \
             {\"mode\": ...}) as deployed, or try the switch on LocalStack or AWS; a new stack is created in \
             either mode",
        ),
        _ => None,
    }
}

/// What the endpoint offers of `needed` (services, or `service:feature`). Changes nothing.
pub async fn offers(cloud: &Cloud, endpoint: &Endpoint, needed: &BTreeSet<&str>) -> Offers {
    let mut offers = Offers::default();
    if endpoint.flavor == Flavor::Aws {
        return offers;
    }
    for needed in needed.iter().copied() {
        let (service, feature) = needed.split_once(':').unwrap_or((needed, ""));
        if endpoint.listed.as_ref().is_some_and(|listed| !is_listed(listed, service)) {
            let reason = format!("{} does not list {service} among its services", endpoint.describe());
            offers.missing.insert(needed.to_string(), reason);
        } else if let Some(gap) = feature_gap(&endpoint.flavor, feature) {
            offers.missing.insert(needed.to_string(), gap.to_string());
        }
    }
    let services: BTreeSet<&str> = needed.iter().map(|n| n.split(':').next().unwrap_or(n)).collect();
    let probes = services.into_iter().filter(|s| !offers.missing.contains_key(*s)).filter_map(|service| {
        let probe = probe(cloud, service)?;
        Some(async move {
            let probed = tokio::time::timeout(PROBE_TIMEOUT, probe).await.unwrap_or_else(|_| {
                Probed::NotOffered(format!("a simple read did not answer within {} s", PROBE_TIMEOUT.as_secs()))
            });
            (service.to_string(), probed)
        })
    });
    for (service, probed) in futures::future::join_all(probes).await {
        match probed {
            Probed::Offered => {}
            Probed::NotOffered(reason) => {
                offers.missing.insert(service, reason);
            }
            Probed::Unconfirmed(reason) => {
                offers.unconfirmed.insert(service, reason);
            }
        }
    }
    offers
}
