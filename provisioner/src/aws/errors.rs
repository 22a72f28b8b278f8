//! One place that classifies AWS errors, so drivers never compare error strings themselves.
//!
//! The SDK types most errors per operation; the classes the engine needs cut across services
//! (not found, already exists, still propagating), so they are matched here by error code.

pub use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Codes that mean "the resource does not exist", across the services we use.
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFoundException",
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBSubnetGroupNotFoundFault",
    "DBSubnetGroupNotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchBucket",
    "NotFound",
];

/// Codes that mean "a resource with this name already exists", and nothing else.
///
/// `ResourceConflictException` (Lambda) and `ResourceInUseException` (Kinesis, DynamoDB) are not
/// here: they also mean "busy" (an update in progress, a stream still being deleted). Creates
/// that get one read the resource to tell which it is (`is_in_use_or_conflict`).
const ALREADY_EXISTS: &[&str] = &[
    "EntityAlreadyExists",
    "ConflictException",
    "DBInstanceAlreadyExists",
    "DBInstanceAlreadyExistsFault",
    "DBSubnetGroupAlreadyExists",
    "DBSubnetGroupAlreadyExistsFault",
    "QueueAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "ResourceAlreadyExistsException",
];

/// Codes S3 answers when a bucket has no configuration of the kind asked for (no tags, no public
/// access block, no default encryption, no lifecycle): a setting that is off, not an error.
const UNSET: &[&str] = &[
    "NoSuchTagSet",
    "NoSuchTagSetError",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchLifecycleConfiguration",
];

/// Codes that mean "the resource is busy or the call was throttled": they clear by waiting.
const BUSY: &[&str] = &[
    "ResourceConflictException",
    "ResourceInUseException",
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",
];

/// Codes that mean "the name is taken, or the resource is busy": ambiguous by design of the
/// service; the caller reads the resource to decide.
const IN_USE_OR_CONFLICT: &[&str] = &["ResourceConflictException", "ResourceInUseException"];

/// Codes SQS answers when a queue of this name was deleted less than 60 seconds ago.
const QUEUE_DELETED_RECENTLY: &[&str] = &["AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"];

/// The error code of a service error, if the service sent one.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// True when the error says the resource is gone. Reads treat this as drift, deletes as done.
pub fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| NOT_FOUND.contains(&c))
}

/// True when the error says the resource already exists; creates then adopt it.
pub fn is_already_exists<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| ALREADY_EXISTS.contains(&c))
}

/// True while a just-created IAM role cannot yet be assumed by Lambda, or a mapping cannot yet
/// read its source: IAM is eventually consistent and these clear within seconds.
pub fn is_propagation<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    let Some(service) = err.as_service_error() else {
        return false;
    };
    service.code() == Some("InvalidParameterValueException")
        && service.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("cannot be assumed") || m.contains("role") || m.contains("permission") || m.contains("access")
        })
}

/// True when another update of the same resource is still in progress, or the call was
/// throttled: both clear by waiting. Used only on calls to a resource that exists (updates,
/// deletes); a create reads the resource instead (see `is_in_use_or_conflict`).
pub fn is_busy<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| BUSY.contains(&c))
}

/// True for the codes a create gets both when its name is taken and when the resource is busy
/// (being deleted, being updated): the create reads the resource to know which.
pub fn is_in_use_or_conflict<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| IN_USE_OR_CONFLICT.contains(&c))
}

/// True for an answer that may clear by itself: no answer at all (a timeout, a reset
/// connection), a server error (HTTP 5xx), or throttling.
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let throttled =
        code(err).is_some_and(|c| c.contains("Throttl") || c == "TooManyRequestsException" || c == "SlowDown");
    match err.raw_response() {
        Some(response) => throttled || response.status().as_u16() >= 500 || response.status().as_u16() == 429,
        None => matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)),
    }
}

/// True when SQS refuses a queue name for 60 s after a queue of that name was deleted.
pub fn is_queue_deleted_recently<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| QUEUE_DELETED_RECENTLY.contains(&c))
}

/// True when the bucket has no configuration of the kind asked for (see [`UNSET`]).
pub fn is_unset<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err).is_some_and(|c| UNSET.contains(&c))
}

/// True when CreateBucket says another account owns the name (bucket names are global).
pub fn is_taken_by_another_account<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err) == Some("BucketAlreadyExists")
}

/// True when DeleteBucket finds objects left (written after the bucket was emptied).
pub fn is_not_empty<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err) == Some("BucketNotEmpty")
}

/// True for an HTTP 403: HeadBucket's answer (no body, so no code) for another account's bucket.
pub fn is_forbidden<E>(err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>) -> bool {
    err.raw_response().is_some_and(|response| response.status().as_u16() == 403)
}

/// True while Firehose cannot yet use a new IAM role (to assume it, or to read or write with it):
/// it answers InvalidArgumentException naming the role until the role propagates.
pub fn is_role_not_ready<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    let Some(service) = err.as_service_error() else {
        return false;
    };
    service.code() == Some("InvalidArgumentException")
        && service.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("role") || m.contains("assume") || m.contains("not authorized") || m.contains("access denied")
        })
}

/// True when an update's version id is stale (another update went first): re-read and resend.
pub fn is_stale_version<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err) == Some("ConcurrentModificationException")
}

/// What a Firehose destination update retries: a stale version, a busy stream, a role not ready.
pub fn is_update_retryable<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    is_stale_version(err) || is_busy(err) || is_role_not_ready(err)
}

/// Codes that say the endpoint does not implement an operation (emulators), or that the call is
/// not allowed at all: answers that will not change by retrying.
const UNIMPLEMENTED: &[&str] =
    &["NotImplemented", "NotImplementedException", "UnknownOperationException", "InvalidAction"];

/// True when the endpoint answered that it does not implement the operation: a code saying so,
/// HTTP 501, or an HTTP 404 with no error code at all (moto's answer to API Gateway's GetTags).
/// Only for a call on a resource a primary read has just found: then a bare 404 cannot mean
/// "no such resource".
pub fn is_unimplemented<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let status = err.raw_response().map(|r| r.status().as_u16());
    code(err).is_some_and(|c| UNIMPLEMENTED.contains(&c))
        || status == Some(501)
        || (status == Some(404) && code(err).is_none())
}

/// True when the endpoint said, for good, that it does not offer a service: it does not
/// implement the operation, it is not in the license (LocalStack Pro features), or the emulator
/// failed inside its own implementation (LocalStack's `InternalError: exception while calling
/// ...` when a service's engine could not be installed). Throttling, 5xx answers without such a
/// message and timeouts are not definite: a probe that gets one does not count the service as
/// missing.
pub fn is_not_offered<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let message = err.as_service_error().and_then(|e| e.message()).unwrap_or_default().to_ascii_lowercase();
    is_unimplemented(err)
        || message.contains("not included in your current license")
        || message.contains("not yet been emulated")
        || message.contains("not yet implemented")
        || (code(err) == Some("InternalError") && message.contains("exception while calling"))
}

/// A read's answer, by the one rule every driver reads by: "not found" is `Ok(None)` (the
/// resource is gone: drift), any other error says `what` failed.
pub fn found<T, E>(
    answer: Result<T, SdkError<E, HttpResponse>>,
    what: impl std::fmt::Display,
) -> anyhow::Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(context(what, e)),
    }
}

/// A delete's answer, by the one rule every driver deletes by: "not found" is done.
pub fn deleted<T, E>(answer: Result<T, SdkError<E, HttpResponse>>, what: impl std::fmt::Display) -> anyhow::Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    found(answer, what).map(|_| ())
}

/// A create's answer: [`Sent::Created`] with the outputs `created` takes from what it returned;
/// [`Sent::Taken`] when `is_taken` says the name is taken or the resource busy (the shared create
/// path then reads the resource to know which); any other error says `what` failed.
pub fn sent<T, E>(
    answer: Result<T, SdkError<E, HttpResponse>>,
    is_taken: impl Fn(&SdkError<E, HttpResponse>) -> bool,
    what: impl std::fmt::Display,
    created: impl FnOnce(T) -> crate::aws::Outputs,
) -> anyhow::Result<crate::aws::Sent>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(value) => Ok(crate::aws::Sent::Created(created(value))),
        Err(e) if is_taken(&e) => Ok(crate::aws::Sent::Taken(context(what, e))),
        Err(e) => Err(context(what, e)),
    }
}

/// The operation an SDK error type belongs to, from its type name:
/// `aws_sdk_apigateway::operation::get_tags::GetTagsError` -> `GetTags`.
fn operation_name<E>() -> String {
    let type_name = std::any::type_name::<E>();
    let module = type_name.split("::operation::").nth(1).and_then(|rest| rest.split("::").next());
    match module {
        Some(snake) => snake
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect(),
        None => type_name.rsplit("::").next().unwrap_or(type_name).trim_end_matches("Error").to_string(),
    }
}

/// A one-line description that says what the endpoint answered: `Code: message (Operation, HTTP
/// status)` for a service error; `Operation answered HTTP 404 with no error code` when the body
/// says nothing; the cause chain for a call that got no answer.
pub fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let operation = operation_name::<E>();
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (err.as_service_error(), status) {
        (Some(service), status) if service.code().is_some() => {
            let code = service.code().unwrap_or_default();
            let at = status.map_or(operation.clone(), |s| format!("{operation}, HTTP {s}"));
            match service.message().filter(|m| !m.is_empty()) {
                Some(message) => format!("{code}: {message} ({at})"),
                None => format!("{code} ({at})"),
            }
        }
        (_, Some(status)) => {
            let body = err
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).trim().chars().take(200).collect::<String>())
                .filter(|b| !b.is_empty() && !b.contains('\u{fffd}'));
            match body {
                Some(body) => format!("{operation} answered HTTP {status} with no error code: {body}"),
                None => format!("{operation} answered HTTP {status} with no error code"),
            }
        }
        (_, None) => {
            let text = DisplayErrorContext(err).to_string();
            if text.contains("dispatch failure") || text.contains("Connection refused") || text.contains("connection") {
                format!("{operation}: {text} — is the endpoint running? (local cloud: provision local start)")
            } else {
                format!("{operation}: {text}")
            }
        }
    }
}

/// Wraps an SDK error with what was being done, for which resource: `creating Kinesis stream
/// demo-events: ResourceInUseException: ... (CreateStream, HTTP 400)`.
pub fn context<E>(what: impl std::fmt::Display, err: SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    anyhow::anyhow!("{what}: {}", describe(&err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_a_create_acts_on_are_disjoint() {
        for code in ALREADY_EXISTS {
            assert!(!NOT_FOUND.contains(code) && !BUSY.contains(code), "{code} is in two classes");
        }
        for code in NOT_FOUND {
            assert!(!BUSY.contains(code), "{code} is in two classes");
        }
        for code in IN_USE_OR_CONFLICT {
            assert!(!ALREADY_EXISTS.contains(code), "{code} must be read before it is taken for 'exists'");
        }
    }

    #[test]
    fn operations_are_named_from_their_error_types() {
        assert_eq!(operation_name::<aws_sdk_apigateway::operation::get_tags::GetTagsError>(), "GetTags");
        assert_eq!(
            operation_name::<aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationError>(),
            "GetFunctionConfiguration"
        );
    }

    fn answer(
        status: u16,
        body: &str,
    ) -> SdkError<aws_sdk_apigateway::operation::get_tags::GetTagsError, HttpResponse> {
        use aws_smithy_types::body::SdkBody;
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
        let err = aws_sdk_apigateway::operation::get_tags::GetTagsError::generic(
            aws_smithy_types::error::ErrorMetadata::builder().build(),
        );
        SdkError::service_error(err, response)
    }

    #[test]
    fn an_answer_with_no_error_code_names_the_operation_and_status() {
        assert_eq!(describe(&answer(404, "")), "GetTags answered HTTP 404 with no error code");
        assert_eq!(describe(&answer(503, "busy")), "GetTags answered HTTP 503 with no error code: busy");
        assert!(is_unimplemented(&answer(404, "")), "moto's bare 404 for GetTags");
        assert!(is_unimplemented(&answer(501, "")));
        assert!(!is_unimplemented(&answer(503, "")));
        assert!(!is_not_offered(&answer(503, "")), "a 5xx is no definite answer");
    }
}
