//! The HTTP side of `upstream`, without I/O: from an API Gateway proxy request to the stamped
//! records to publish or the reason to refuse it ([`route`], [`decide`]), and every response the
//! function gives ([`accepted`], [`error`]). Every response is JSON with
//! `Content-Type: application/json`.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::CONTENT_TYPE;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use pipeline_interface::upstream::Decision;
use record::{parse_request, Payload, StampedRecord};
use serde_json::{json, Value};

/// What the host does with a request: publish its records and answer that they were accepted,
/// or refuse it.
pub fn decide(request: &ApiGatewayProxyRequest, received_at_ms: i64) -> Decision {
    match route(request, received_at_ms) {
        Ok(valid) => {
            let answer = accepted(&valid);
            Decision::Publish { records: valid.records, answer }
        }
        Err(refusal) => Decision::Refuse { answer: refusal.response(), reason: refusal.message },
    }
}

/// The answer when the stream did not take the records: 502, worth retrying.
pub fn publish_failed() -> ApiGatewayProxyResponse {
    error(502, "could not write the records to the stream; retry later")
}

/// A valid request: its records, stamped, and whether the client sent one object (which is
/// answered exactly as the classic sample answers) or an array.
#[derive(Debug, PartialEq)]
pub struct Accepted {
    /// The records in request order, each stamped with the same receive time.
    pub records: Vec<StampedRecord>,
    /// The body was a single JSON object rather than an array.
    pub single: bool,
}

/// Why a request is refused: the HTTP status and the message for `{"error": ...}`.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    /// 400, 413 or 415.
    pub status: u16,
    /// What is wrong with the request.
    pub message: String,
}

impl Refusal {
    /// The response that says so.
    pub fn response(&self) -> ApiGatewayProxyResponse {
        error(self.status, &self.message)
    }
}

/// Checks the content type, decodes and validates the body and stamps the records with
/// `received_at_ms`.
pub fn route(request: &ApiGatewayProxyRequest, received_at_ms: i64) -> Result<Accepted, Refusal> {
    if let Some(content_type) = unsupported_content_type(request) {
        return Err(Refusal {
            status: 415,
            message: format!("unsupported content type {content_type:?}: expected application/json"),
        });
    }
    let body = body_bytes(request).map_err(|message| Refusal { status: 400, message })?;
    let payload = parse_request(&body).map_err(|e| Refusal { status: e.status_code(), message: e.to_string() })?;
    let single = matches!(payload, Payload::Single(_));
    let records = payload.into_records().into_iter().map(|record| record.stamp(received_at_ms)).collect();
    Ok(Accepted { records, single })
}

/// The content type the request declares, if it declares one that is not JSON. No header is
/// fine (the classic sample's clients do not always send one); parameters such as
/// `; charset=utf-8` are ignored.
fn unsupported_content_type(request: &ApiGatewayProxyRequest) -> Option<String> {
    // `HeaderMap` lookups ignore case; REST APIs may send the header in either map.
    let value = request.headers.get(CONTENT_TYPE).or_else(|| request.multi_value_headers.get(CONTENT_TYPE))?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let media_type = text.split(';').next().unwrap_or_default().trim();
    (!media_type.eq_ignore_ascii_case("application/json")).then(|| text.into_owned())
}

/// The raw body, base64-decoded when API Gateway says it is encoded. A missing body is empty
/// (and then fails validation as invalid JSON).
fn body_bytes(request: &ApiGatewayProxyRequest) -> Result<Vec<u8>, String> {
    let body = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| format!("invalid base64 body: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// 200 for published records: exactly `{"message":"success"}` for a single object (as the
/// classic sample answers), `{"message":"success","accepted":N}` for an array.
pub fn accepted(accepted: &Accepted) -> ApiGatewayProxyResponse {
    if accepted.single {
        json_response(200, &json!({"message": "success"}))
    } else {
        json_response(200, &json!({"message": "success", "accepted": accepted.records.len()}))
    }
}

/// An error response: `{"error": "<message>"}` with the given status.
pub fn error(status: u16, message: &str) -> ApiGatewayProxyResponse {
    json_response(status, &json!({ "error": message }))
}

fn json_response(status: u16, body: &Value) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // `ApiGatewayProxyResponse` is `#[non_exhaustive]`: start from the default.
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: Option<&str>, body: &str) -> ApiGatewayProxyRequest {
        let mut request = ApiGatewayProxyRequest::default();
        if let Some(value) = content_type {
            request.headers.insert(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        }
        request.body = Some(body.to_owned());
        request
    }

    fn body_json(response: &ApiGatewayProxyResponse) -> Value {
        match &response.body {
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
            other => panic!("expected a text body, got {other:?}"),
        }
    }

    fn rejected(request: &ApiGatewayProxyRequest) -> (i64, String) {
        let response = route(request, 5).unwrap_err().response();
        assert_eq!(response.headers[CONTENT_TYPE], "application/json");
        let error = body_json(&response)["error"].as_str().unwrap().to_owned();
        (response.status_code, error)
    }

    const ONE: &str = r#"{"id":"1","message":"Hello World","timestamp":1700000000}"#;

    #[test]
    fn single_record_is_stamped_and_answered_like_the_classic_sample() {
        let accepted_request = route(&request(Some("application/json"), ONE), 1234).unwrap();
        assert!(accepted_request.single);
        assert_eq!(accepted_request.records.len(), 1);
        assert_eq!(accepted_request.records[0].id, "1");
        assert_eq!(accepted_request.records[0].timestamp, 1_700_000_000);
        assert_eq!(accepted_request.records[0].received_at_ms, 1234);
        let response = accepted(&accepted_request);
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, Some(Body::Text(r#"{"message":"success"}"#.into())));
        assert_eq!(response.headers[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn array_is_answered_with_the_count() {
        let body = format!("[{ONE},{}]", ONE.replace("\"1\"", "\"2\""));
        let accepted_request = route(&request(None, &body), 1).unwrap();
        assert!(!accepted_request.single);
        let response = accepted(&accepted_request);
        assert_eq!(body_json(&response), json!({"message": "success", "accepted": 2}));
    }

    #[test]
    fn content_type_is_checked_case_insensitively_with_parameters() {
        for ok in ["application/json", "Application/JSON", "application/json; charset=utf-8"] {
            assert!(route(&request(Some(ok), ONE), 1).is_ok(), "{ok}");
        }
        let (status, error) = rejected(&request(Some("text/plain"), ONE));
        assert_eq!(status, 415);
        assert!(error.contains("text/plain"), "{error}");
    }

    #[test]
    fn header_names_from_api_gateway_json_are_case_insensitive() {
        let event = json!({
            "httpMethod": "POST",
            "headers": {"CONTENT-TYPE": "text/csv"},
            "multiValueHeaders": {"CONTENT-TYPE": ["text/csv"]},
            "requestContext": {"httpMethod": "POST"},
            "body": ONE,
            "isBase64Encoded": false
        });
        let request: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
        assert_eq!(rejected(&request).0, 415);
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let mut encoded = request(Some("application/json"), &base64::engine::general_purpose::STANDARD.encode(ONE));
        encoded.is_base64_encoded = true;
        assert_eq!(route(&encoded, 1).unwrap().records[0].id, "1");
        encoded.body = Some("!!not base64".into());
        let (status, error) = rejected(&encoded);
        assert_eq!(status, 400);
        assert!(error.starts_with("invalid base64 body"), "{error}");
    }

    #[test]
    fn validation_errors_keep_their_status_and_message() {
        let (status, error) = rejected(&request(None, r#"{"id":"1","timestamp":1}"#));
        assert_eq!((status, error.as_str()), (400, r#"missing field "message""#));
        let (status, error) = rejected(&request(None, r#"{"id":"1","message":"m","timestamp":"1"}"#));
        assert_eq!((status, error.as_str()), (400, r#"field "timestamp" must be an integer"#));
        let big = format!(r#"{{"id":"1","message":"{}","timestamp":1}}"#, "m".repeat(1 << 20));
        assert_eq!(rejected(&request(None, &big)).0, 413);
        let mut empty = request(None, "");
        empty.body = None;
        let (status, error) = rejected(&empty);
        assert_eq!(status, 400);
        assert!(error.starts_with("invalid JSON"), "{error}");
    }

    #[test]
    fn the_host_publishes_valid_records_and_answers_refusals_at_once() {
        match decide(&request(None, ONE), 7) {
            Decision::Publish { records, answer } => {
                assert_eq!(records.len(), 1);
                assert_eq!(records[0].received_at_ms, 7);
                assert_eq!(answer.body, Some(Body::Text(r#"{"message":"success"}"#.into())));
            }
            other => panic!("a valid request is published: {other:?}"),
        }
        match decide(&request(Some("text/plain"), ONE), 7) {
            Decision::Refuse { answer, reason } => {
                assert_eq!(answer.status_code, 415);
                assert!(reason.contains("text/plain"), "{reason}");
            }
            other => panic!("a wrong content type is refused: {other:?}"),
        }
        assert_eq!(publish_failed().status_code, 502);
    }

    #[test]
    fn errors_are_json_objects_with_an_error_field() {
        let response = error(502, "could not write to the stream");
        assert_eq!(response.status_code, 502);
        assert_eq!(body_json(&response), json!({"error": "could not write to the stream"}));
    }
}
