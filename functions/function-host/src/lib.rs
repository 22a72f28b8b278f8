//! What every function's host does at cold start, before it serves invocations: one-line logs
//! without timestamps or colours (CloudWatch Logs adds the time), filtered by `RUST_LOG` (a
//! level, or `target=level` directives separated by commas; default `info`); the multi-threaded
//! async runtime the Lambda runtime and the SDK run on; and the AWS configuration its SDK clients
//! are made from ([`aws_config`]).

#[cfg(unix)]
pub mod split;

use aws_credential_types::Credentials;
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, SdkConfig, SharedCredentialsProvider, TimeoutConfig};
use std::future::Future;
use std::time::Duration;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The error a function's run ends with.
pub use lambda_runtime::Error;

/// The AWS configuration a function's SDK clients are made from, read from what Lambda puts in
/// every function's environment: `AWS_REGION`, the execution role's credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and, on an emulator,
/// `AWS_ENDPOINT_URL`; with the SDK's standard retries, a 3.1 s connect timeout (as `aws-config`
/// sets) and the HTTPS client of [`aws_https`].
///
/// Not `aws-config`'s whole chain (profiles, SSO, the instance metadata service, STS): a function
/// never needs it, and building it (with its STS client) cost a new project's first build about
/// 15 s. What is missing (no region, no credentials) fails the first request with the SDK's error.
pub fn aws_config() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).map(Region::new))
        .http_client(aws_https::client())
        .retry_config(RetryConfig::standard())
        .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_millis(3100)).build())
        .time_source(SystemTimeSource::new());
    if let Some(sleep) = default_async_sleep() {
        config = config.sleep_impl(sleep);
    }
    if let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "function environment");
        config = config.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(endpoint) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    config.build()
}

/// Sets up logging, then runs `serve` (the function's cold start and invocation loop) to its end.
pub fn run(serve: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO));
    tracing_subscriber::fmt().with_ansi(false).without_time().finish().with(filter).init();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve)
}
