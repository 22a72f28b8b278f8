//! What every function's host does at cold start, before it serves invocations: one-line logs
//! without timestamps or colours (CloudWatch Logs adds the time), filtered by `RUST_LOG`
//! (default `info`), and the multi-threaded async runtime the Lambda runtime and the SDK run on;
//! and the AWS configuration its SDK clients are made from ([`aws_config`]).

#[cfg(unix)]
pub mod split;

use std::future::Future;

/// The error a function's run ends with.
pub use lambda_runtime::Error;

/// The AWS configuration from the function's environment (region, endpoint, credentials), with
/// the HTTPS client every SDK client here uses ([`aws_https::client`]): make the function's SDK
/// clients from this, not from `aws_config::load_defaults`, which would have no HTTP client.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_https::client()).load().await
}

/// Sets up logging, then runs `serve` (the function's cold start and invocation loop) to its end.
pub fn run(serve: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve)
}
