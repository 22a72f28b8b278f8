//! The host of `upstream`: the Lambda runtime, the Kinesis client, logging. The function's own
//! logic (what a request means, how it is answered) is the binary's `api` module, handed to
//! [`run`] as plain function pointers in an [`Api`].
//!
//! The split is for hot-swap speed. The runtime's and the SDK's generic code is instantiated
//! here, in a library that an edit to the logic does not touch; the binary's crate is small, so
//! a one-line change recompiles only it (and relinks). Nothing here is generic over the logic,
//! which is what keeps those instantiations out of the binary.
//!
//! Environment: `STREAM_NAME` (required), plus what `function_host::aws_config` reads (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, credentials).

pub mod publish;

pub use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
pub use pipeline_interface::upstream::{Api, Decision};
use publish::Publisher;

/// Runs the function until the Lambda runtime stops: sets up logging and the Kinesis client
/// once (the cold start), then serves each invocation with `api`.
pub fn run(api: Api) -> Result<(), Error> {
    function_host::run(serve(api))
}

async fn serve(api: Api) -> Result<(), Error> {
    let stream_name = std::env::var("STREAM_NAME").map_err(|_| "environment variable STREAM_NAME is not set")?;
    let config = function_host::aws_config();
    let publisher = Publisher::new(aws_sdk_kinesis::Client::new(&config), stream_name);
    let publisher = &publisher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
        Ok::<_, Error>(handle(api, publisher, &event.payload).await)
    }))
    .await
}

/// One request: decide, publish, answer. Never fails as a Lambda invocation: every outcome is
/// an HTTP response. Logs one line per request.
async fn handle(api: Api, publisher: &Publisher, request: &ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
    let (records, answer) = match (api.decide)(request, record::now_ms()) {
        Decision::Publish { records, answer } => (records, answer),
        Decision::Refuse { answer, reason } => {
            tracing::warn!(status = answer.status_code, %reason, "request rejected");
            return answer;
        }
    };
    match publisher.publish(&records).await {
        Ok(()) => {
            let ids: Vec<&str> = records.iter().take(3).map(|r| r.id.as_str()).collect();
            tracing::info!(records = records.len(), first_ids = ?ids, "request accepted");
            answer
        }
        Err(error) => {
            tracing::error!(records = records.len(), %error, "publishing failed");
            (api.publish_failed)()
        }
    }
}
