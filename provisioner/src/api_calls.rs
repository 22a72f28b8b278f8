//! What every AWS call goes through, as SDK interceptors on every client: [`CallLog`] counts the
//! calls a run makes, split into reads and mutations (this is how "a no-op `up` makes no mutating
//! call" is shown, and `--json` reports the figures); [`RetryNotices`] says on stderr when a call
//! is retried and why, so a run riding out throttling shows it instead of seeming stuck.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::retry::RetryConfig;
use std::sync::{Arc, Mutex};

/// Operation name prefixes that only read.
const READ_PREFIXES: &[&str] = &["Get", "List", "Describe", "Head"];

/// The calls made so far, in order, as `Service.Operation`.
#[derive(Debug, Default, Clone)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    /// Every call so far.
    pub fn all(&self) -> Vec<String> {
        self.calls.lock().expect("call log lock").clone()
    }

    /// The calls that may change something.
    pub fn mutating(&self) -> Vec<String> {
        self.all().into_iter().filter(|c| is_mutating(c)).collect()
    }
}

/// True unless the operation's name says it only reads.
pub fn is_mutating(call: &str) -> bool {
    let operation = call.rsplit('.').next().unwrap_or(call);
    !READ_PREFIXES.iter().any(|p| operation.starts_with(p))
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            self.calls.lock().expect("call log lock").push(format!("{}.{}", metadata.service(), metadata.name()));
        }
        Ok(())
    }
}

/// Prints a line on stderr before each retry of an AWS call: what the last attempt got and which
/// attempt this is (`    … throttled by lambda (GetFunctionConfiguration), retrying (attempt 4 of 25)`).
#[derive(Debug, Clone, Copy)]
pub struct RetryNotices;

/// Why the last attempt of a call failed, kept between its attempts.
#[derive(Debug, Clone)]
struct LastFailure(Option<String>);

impl Storable for LastFailure {
    type Storer = StoreReplace<Self>;
}

/// Error codes of throttling answers, as the SDK's retry classifier knows them.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
    "BandwidthLimitExceeded",
];

/// What a failed attempt's answer was, in a few words (`None` when nothing worth saying: the
/// call succeeded, or failed in a way the SDK does not retry).
fn failure_of(response: &HttpResponse) -> Option<String> {
    let status = response.status().as_u16();
    let error_type = response.headers().get("x-amzn-errortype").unwrap_or_default();
    let body = response.body().bytes().map(|b| String::from_utf8_lossy(&b[..b.len().min(512)]).into_owned());
    let throttled = status == 429
        || THROTTLING.iter().any(|code| {
            error_type.starts_with(code)
                || body.as_deref().is_some_and(|b| b.contains(&format!("{code}<")) || b.contains(&format!("{code}\"")))
        });
    if throttled {
        Some("throttled".to_string())
    } else if status >= 500 {
        Some(format!("answered HTTP {status}"))
    } else {
        None
    }
}

impl Intercept for RetryNotices {
    fn name(&self) -> &'static str {
        "RetryNotices"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let failure = match (context.response(), context.output_or_error()) {
            (_, Some(Ok(_))) => None,
            (Some(response), _) => failure_of(response),
            (None, Some(Err(err))) if err.is_timeout_error() => Some("timed out".to_string()),
            (None, Some(Err(_))) => Some("got no answer".to_string()),
            (None, None) => None,
        };
        cfg.interceptor_state().store_put(LastFailure(failure));
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt < 2 {
            return Ok(());
        }
        let Some(failure) = cfg.load::<LastFailure>().and_then(|f| f.0.clone()) else { return Ok(()) };
        let (service, operation) = cfg.load::<Metadata>().map_or(("aws", "a call"), |m| (m.service(), m.name()));
        let of = cfg.load::<RetryConfig>().map(|c| format!(" of {}", c.max_attempts())).unwrap_or_default();
        let service = service.to_ascii_lowercase();
        let what =
            if failure == "throttled" { format!("throttled by {service}") } else { format!("{service} {failure}") };
        eprintln!("    … {what} ({operation}), retrying (attempt {attempt}{of})");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, error_type: Option<&str>, body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
        if let Some(error_type) = error_type {
            response.headers_mut().insert("x-amzn-errortype", error_type.to_string());
        }
        response
    }

    #[test]
    fn throttles_and_server_errors_are_told_apart() {
        assert_eq!(failure_of(&response(429, None, "")).as_deref(), Some("throttled"));
        let json = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        assert_eq!(failure_of(&response(400, None, json)).as_deref(), Some("throttled"));
        let xml = "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
        assert_eq!(failure_of(&response(400, None, xml)).as_deref(), Some("throttled"));
        assert_eq!(failure_of(&response(400, Some("TooManyRequestsException:"), "{}")).as_deref(), Some("throttled"));
        assert_eq!(failure_of(&response(503, None, "")).as_deref(), Some("answered HTTP 503"));
        assert_eq!(failure_of(&response(400, None, r#"{"__type":"ValidationException"}"#)), None);
    }

    #[test]
    fn reads_are_told_from_mutations_by_operation_name() {
        assert!(!is_mutating("Lambda.GetFunctionConfiguration"));
        assert!(!is_mutating("Kinesis.DescribeStreamSummary"));
        assert!(is_mutating("Lambda.UpdateFunctionCode"));
        assert!(is_mutating("IAM.PutRolePolicy"));
    }
}
