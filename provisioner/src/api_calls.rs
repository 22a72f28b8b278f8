//! Counts the AWS API calls a run makes, split into reads and mutations, through an SDK
//! interceptor on every client. This is how "a no-op `up` makes no mutating call" is shown,
//! and `--json` reports the figures.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
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

#[cfg(test)]
mod tests {
    #[test]
    fn reads_are_told_from_mutations_by_operation_name() {
        assert!(!super::is_mutating("Lambda.GetFunctionConfiguration"));
        assert!(!super::is_mutating("Kinesis.DescribeStreamSummary"));
        assert!(super::is_mutating("Lambda.UpdateFunctionCode"));
        assert!(super::is_mutating("IAM.PutRolePolicy"));
    }
}
