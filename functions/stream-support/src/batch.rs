//! The answer to a stream batch. With `ReportBatchItemFailures` on the event source mapping,
//! `{"batchItemFailures":[{"itemIdentifier":"<sequence number>"}]}` makes AWS retry from the
//! lowest failed record; `[]` means all done. Endpoints that ignore partial batch responses
//! (MiniStack's Kinesis and DynamoDB stream mappings) would drop those records, so with
//! `REPORT_BATCH_ITEM_FAILURES=false` any failure fails the whole invocation instead: the batch
//! is retried, which is safe because every write is idempotent.

use serde_json::{json, Value};

/// Whether to answer failures as `batchItemFailures` (the default) rather than an error, from
/// the value of `REPORT_BATCH_ITEM_FAILURES`: `false`, `0`, `no` or `off` turn it off.
pub fn report_item_failures(setting: Option<&str>) -> bool {
    !matches!(setting.map(|s| s.trim().to_ascii_lowercase()).as_deref(), Some("false" | "0" | "no" | "off"))
}

/// The invocation's result for a batch whose records with these identifiers failed.
pub fn finish(failed: &[String], report_item_failures: bool) -> Result<Value, String> {
    if failed.is_empty() || report_item_failures {
        let failures: Vec<Value> = failed.iter().map(|id| json!({ "itemIdentifier": id })).collect();
        Ok(json!({ "batchItemFailures": failures }))
    } else {
        Err(format!(
            "{} records failed (first: {}); failing the whole batch so that it is retried",
            failed.len(),
            failed[0]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_an_empty_failure_list() {
        assert_eq!(finish(&[], true).unwrap().to_string(), r#"{"batchItemFailures":[]}"#);
        assert_eq!(finish(&[], false).unwrap(), json!({"batchItemFailures": []}));
    }

    #[test]
    fn failures_are_reported_by_identifier() {
        let failed = ["1".to_owned(), "5".to_owned()];
        assert_eq!(
            finish(&failed, true).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "5"}]})
        );
    }

    #[test]
    fn failures_fail_the_invocation_when_reporting_is_off() {
        let error = finish(&["9".to_owned()], false).unwrap_err();
        assert!(error.starts_with("1 records failed (first: 9)"), "{error}");
    }

    #[test]
    fn reporting_is_on_unless_turned_off() {
        assert!(report_item_failures(None));
        assert!(report_item_failures(Some("true")));
        assert!(report_item_failures(Some("")));
        for off in ["false", "FALSE", "0", "no", " off "] {
            assert!(!report_item_failures(Some(off)), "{off}");
        }
    }
}
