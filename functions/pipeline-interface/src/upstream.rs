//! What `upstream`'s logic decides about a request, and the logic as its host calls it.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use record::StampedRecord;

/// What the logic decided about one request.
#[derive(Debug)]
pub enum Decision {
    /// Put `records` on the stream, then answer with `answer`.
    Publish { records: Vec<StampedRecord>, answer: ApiGatewayProxyResponse },
    /// Answer at once with `answer`, publishing nothing; `reason` is logged.
    Refuse { answer: ApiGatewayProxyResponse, reason: String },
}

/// The function's logic, as the host calls it.
#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// Decides what to do with a request received at the given time (milliseconds since the epoch).
    pub decide: fn(&ApiGatewayProxyRequest, i64) -> Decision,
    /// The answer when the records could not be put on the stream.
    pub publish_failed: fn() -> ApiGatewayProxyResponse,
}
