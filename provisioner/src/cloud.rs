//! The connection to one AWS endpoint: one `SdkConfig` and every service client, built once.
//!
//! The endpoint is real AWS (standard credential, region and profile chain) unless an endpoint
//! URL is given (`--endpoint-url` or `AWS_ENDPOINT_URL`), in which case it is a local emulator.

use crate::api_calls::{CallLog, RetryNotices};
use crate::aws::endpoint::Endpoint;
use anyhow::{Context, Result};
use aws_config::retry::{RetryConfig, RetryMode};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How many times each AWS call is tried (the first attempt and its retries) unless the user's
/// configuration says otherwise. Terraform's AWS provider makes up to 25 attempts: with the
/// SDK's exponential backoff capped at 20 s (full jitter), 25 attempts ride out about three and a
/// half minutes of throttling on average and seven at most, longer than AWS's control-plane
/// throttles last (Lambda's GetFunctionConfiguration shares a 15 requests/s quota per account).
pub const MAX_ATTEMPTS: u32 = 25;
/// The longest pause between two attempts (the SDK's own cap).
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Which AWS errors are retried, how often, and how long between attempts.
///
/// The SDK's standard retry classifies what is transient: throttling codes
/// (`ThrottlingException`, `TooManyRequestsException`, `SlowDown`, ...), HTTP 500/502/503/504,
/// timeouts and connection failures (a reset, a refused connection). Each is retried with
/// exponential backoff and full jitter (from 50 ms for server errors, from 1 s for throttling,
/// up to 20 s), [`MAX_ATTEMPTS`] attempts in all. The SDK's retry quota (a token bucket that
/// stops retrying once 100 retries fail within a burst) is off: one `up` makes a few hundred
/// calls, and a quota spent on a throttling burst would fail the calls that follow it, which is
/// the failure the retries are there to prevent. On AWS, Lambda's client retries in adaptive
/// mode: after a throttle it also slows its own sending rate, so the readiness polls of several
/// functions stop competing for the control plane's quota. `AWS_MAX_ATTEMPTS`/`AWS_RETRY_MODE`
/// (or the profile's `max_attempts`/`retry_mode`) set by the user are used as given.
struct RetryPolicy {
    standard: RetryConfig,
    lambda: RetryConfig,
}

impl RetryPolicy {
    fn for_target(target: &Target, configured: Option<&RetryConfig>) -> Self {
        let sdk_default = RetryConfig::standard();
        if let Some(configured) =
            configured.filter(|c| c.max_attempts() != sdk_default.max_attempts() || c.mode() != sdk_default.mode())
        {
            return Self { standard: configured.clone(), lambda: configured.clone() };
        }
        let standard = RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_max_backoff(MAX_BACKOFF);
        let lambda =
            if target.is_local() { standard.clone() } else { standard.clone().with_retry_mode(RetryMode::Adaptive) };
        Self { standard, lambda }
    }

    /// A retry partition of the client's own, with no retry quota.
    fn partition(client: &'static str) -> RetryPartition {
        RetryPartition::custom(client).token_bucket(TokenBucket::unlimited()).build()
    }
}

/// Where the stack is deployed and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// A custom endpoint (a local emulator such as MiniStack or LocalStack), or `None` for AWS.
    pub endpoint_url: Option<String>,
    /// Region override; `None` uses the standard chain (env, profile).
    pub region: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
}

impl Target {
    /// True when talking to a local emulator rather than AWS.
    pub fn is_local(&self) -> bool {
        self.endpoint_url.is_some()
    }
}

/// How long an endpoint has to accept a connection before `provision` says nothing answers.
const LISTENER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Fails at once, naming the fix, when nothing accepts connections at the endpoint `url`: the
/// SDK would otherwise retry every call for minutes and end in a dump of its connector's error.
async fn require_listener(url: &str) -> Result<()> {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or_default();
    let address = match authority.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => authority.to_string(),
        _ if url.starts_with("https://") => format!("{authority}:443"),
        _ => format!("{authority}:80"),
    };
    let connected = tokio::time::timeout(LISTENER_WAIT, tokio::net::TcpStream::connect(&address)).await;
    match connected {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => anyhow::bail!(
            "nothing answers at {url} ({err}): is the local cloud running? provision local start (then eval \
             \"$(provision local env)\"), or point --endpoint-url or AWS_ENDPOINT_URL at your emulator"
        ),
        Err(_) => anyhow::bail!(
            "nothing answered at {url} within {} s: is the local cloud running, and is the address right? \
             provision local start, or point --endpoint-url or AWS_ENDPOINT_URL at your emulator",
            LISTENER_WAIT.as_secs()
        ),
    }
}

/// Refuses a `--profile` that neither shared file defines, naming the files and the profiles they
/// have: the SDK would instead fall through to the instance metadata service and fail there with
/// pages of connector debug output that never name the profile.
fn check_profile(profile: &str) -> Result<()> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let file = |variable: &str, default: &str| {
        std::env::var_os(variable).map(std::path::PathBuf::from).unwrap_or_else(|| home.join(".aws").join(default))
    };
    let (config, credentials) = (file("AWS_CONFIG_FILE", "config"), file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    let mut known = profiles_in(&config, true);
    known.extend(profiles_in(&credentials, false));
    if known.iter().any(|p| p == profile) {
        return Ok(());
    }
    known.sort();
    known.dedup();
    let choices = match known.is_empty() {
        true => "neither file defines any profile".to_string(),
        false => format!("they define {}: pass one of them with --profile", known.join(", ")),
    };
    anyhow::bail!(
        "there is no AWS profile `{profile}` in {} or {} ({choices}); to make it: `aws configure --profile {profile}`",
        config.display(),
        credentials.display(),
    )
}

/// The profiles a shared config file (`[profile NAME]`, `[default]`) or credentials file
/// (`[NAME]`) defines; none when it cannot be read.
fn profiles_in(path: &std::path::Path, config_file: bool) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix('[')?.strip_suffix(']').map(str::trim))
        .filter_map(|section| match (config_file, section.strip_prefix("profile ")) {
            (true, Some(name)) => Some(name.trim().to_string()),
            (true, None) => (section == "default").then(|| section.to_string()),
            (false, _) => Some(section.to_string()),
        })
        .collect()
}

/// Every client the provisioner uses, sharing one configuration.
pub struct Cloud {
    pub target: Target,
    pub region: String,
    pub iam: aws_sdk_iam::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub rds: aws_sdk_rds::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sns: aws_sdk_sns::Client,
    /// Every API call made through these clients.
    pub calls: CallLog,
    /// On AWS a deleted RDS instance leaves a final snapshot unless this is set
    /// (`down --no-final-snapshot`).
    pub skip_final_snapshot: bool,
    account_id: OnceCell<String>,
    endpoint: OnceCell<Endpoint>,
    /// Where the credentials come from (for signing requests to the deployed API).
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Cloud {
    /// Loads the configuration from the standard chain, applying the target's overrides.
    pub async fn connect(target: Target) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(aws_https::client());
        if let Some(url) = &target.endpoint_url {
            require_listener(url).await?;
            loader = loader.endpoint_url(url);
            // Emulators accept any credentials; supply dummies only when none are configured.
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && target.profile.is_none() {
                loader = loader.credentials_provider(aws_sdk_sts::config::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "local-emulator",
                ));
            }
        }
        if let Some(region) = &target.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        } else if target.is_local()
            && std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(profile) = &target.profile {
            check_profile(profile)?;
            loader = loader.profile_name(profile);
        }
        let config: SdkConfig = loader.load().await;
        let region = config.region().map(|r| r.to_string()).context(
            "no AWS region configured: pass --region, set AWS_REGION, or set a region in your profile \
             (for the local cloud, point at it first: eval \"$(provision local env)\")",
        )?;
        let retries = RetryPolicy::for_target(&target, config.retry_config());
        let calls = CallLog::default();
        // Every client: counted calls, a line on stderr for each retry, the retry policy, and a
        // retry partition of its own without the SDK's retry quota (see `RetryPolicy`).
        macro_rules! client {
            ($sdk:ident, $retry:expr) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&config)
                        .interceptor(calls.clone())
                        .interceptor(RetryNotices)
                        .retry_config($retry)
                        .retry_partition(RetryPolicy::partition(stringify!($sdk)))
                        .build(),
                )
            };
        }
        Ok(Self {
            region,
            iam: client!(aws_sdk_iam, retries.standard.clone()),
            kinesis: client!(aws_sdk_kinesis, retries.standard.clone()),
            dynamodb: client!(aws_sdk_dynamodb, retries.standard.clone()),
            lambda: client!(aws_sdk_lambda, retries.lambda.clone()),
            apigateway: client!(aws_sdk_apigateway, retries.standard.clone()),
            rds: client!(aws_sdk_rds, retries.standard.clone()),
            sqs: client!(aws_sdk_sqs, retries.standard.clone()),
            cloudwatch: client!(aws_sdk_cloudwatch, retries.standard.clone()),
            sts: client!(aws_sdk_sts, retries.standard.clone()),
            // Path-style addressing: emulators serve buckets under their own host, not as
            // <bucket>.<host> names that would need DNS.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(target.is_local())
                    .interceptor(calls.clone())
                    .interceptor(RetryNotices)
                    .retry_config(retries.standard.clone())
                    .retry_partition(RetryPolicy::partition("aws_sdk_s3"))
                    .build(),
            ),
            firehose: client!(aws_sdk_firehose, retries.standard.clone()),
            logs: client!(aws_sdk_cloudwatchlogs, retries.standard.clone()),
            sns: client!(aws_sdk_sns, retries.standard.clone()),
            calls,
            skip_final_snapshot: false,
            account_id: OnceCell::new(),
            endpoint: OnceCell::new(),
            credentials: config.credentials_provider(),
            target,
        })
    }

    /// The credentials the clients sign with, resolved now (to sign requests to the deployed API
    /// as the same principal).
    pub async fn credentials(&self) -> Result<aws_credential_types::Credentials> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .credentials
            .as_ref()
            .context("no AWS credentials configured: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")?;
        provider.provide_credentials().await.context("resolving the AWS credentials")
    }

    /// The account the credentials belong to (asked of STS once).
    pub async fn account_id(&self) -> Result<String> {
        self.account_id
            .get_or_try_init(|| async {
                let identity = self.sts.get_caller_identity().send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "asking STS who the credentials belong to: {}. Check your credentials (aws configure, AWS_PROFILE) or the endpoint URL",
                        crate::aws::errors::describe(&e)
                    )
                })?;
                identity.account.context("STS returned no account id")
            })
            .await
            .cloned()
    }

    /// What the endpoint is and which services it lists, asked once (see `aws::endpoint`).
    pub async fn endpoint(&self) -> &Endpoint {
        self.endpoint.get_or_init(|| crate::aws::endpoint::detect(self.target.endpoint_url.as_deref())).await
    }

    /// A short human description of the endpoint for messages.
    pub fn describe(&self) -> String {
        match &self.target.endpoint_url {
            Some(url) => format!("{url} ({})", self.region),
            None => format!("AWS {}", self.region),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profiles_of_the_shared_files_are_read_as_the_sdk_names_them() {
        let dir = std::env::temp_dir().join(format!("provision-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config");
        std::fs::write(&config, "[default]\nregion = eu-west-1\n[profile team]\n[sso-session corp]\n").unwrap();
        let credentials = dir.join("credentials");
        std::fs::write(&credentials, "[ci]\naws_access_key_id = x\n").unwrap();
        assert_eq!(profiles_in(&config, true), ["default", "team"]);
        assert_eq!(profiles_in(&credentials, false), ["ci"]);
        assert!(profiles_in(&dir.join("missing"), true).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
