//! One place that classifies AWS errors, so drivers never compare error strings themselves.
//!
//! The SDK types most errors per operation; the classes the engine needs cut across services
//! (not found, already exists, still propagating), so they are matched here by error code.

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

/// A one-line description: `Code: message` for service errors, the full cause chain otherwise.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => {
            format!("{}: {}", service.code().unwrap_or("ServiceError"), service.message().unwrap_or("(no message)"))
        }
        None => {
            let text = DisplayErrorContext(err).to_string();
            if text.contains("dispatch failure") || text.contains("Connection refused") || text.contains("connection") {
                format!("{text} — is the endpoint running? (local cloud: scripts/local-cloud start)")
            } else {
                text
            }
        }
    }
}

/// Wraps an SDK error with what was being done, for which resource: `creating Kinesis stream
/// demo-events: ResourceInUseException: ...`.
pub fn context<E, R>(what: impl std::fmt::Display, err: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
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
}
