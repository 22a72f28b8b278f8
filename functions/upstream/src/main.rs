//! `upstream`: API Gateway `POST` -> validated, stamped records -> Kinesis.
//!
//! The handler is thin: [`api::route`] turns the request into stamped records (or the error
//! response), [`publish::Publisher`] puts them on the stream, and [`api`] shapes the answer.
//!
//! Environment: `STREAM_NAME` (required), plus what `aws-config` reads (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, credentials).

mod api;
mod publish;

use aws_config::BehaviorVersion;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use publish::Publisher;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();

    let stream_name = std::env::var("STREAM_NAME").map_err(|_| "environment variable STREAM_NAME is not set")?;
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let publisher = Publisher::new(aws_sdk_kinesis::Client::new(&config), stream_name);
    let publisher = &publisher;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
        Ok::<_, Error>(handle(publisher, &event.payload).await)
    }))
    .await
}

/// One request: route, publish, answer. Never fails as a Lambda invocation: every outcome is
/// an HTTP response.
async fn handle(publisher: &Publisher, request: &ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
    let accepted = match api::route(request, record::now_ms()) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            tracing::warn!(status = refusal.status, reason = %refusal.message, "request rejected");
            return refusal.response();
        }
    };
    match publisher.publish(&accepted.records).await {
        Ok(()) => {
            let ids: Vec<&str> = accepted.records.iter().take(3).map(|r| r.id.as_str()).collect();
            tracing::info!(records = accepted.records.len(), first_ids = ?ids, "request accepted");
            api::accepted(&accepted)
        }
        Err(error) => {
            tracing::error!(records = accepted.records.len(), %error, "publishing failed");
            api::error(502, "could not write the records to the stream; retry later")
        }
    }
}
