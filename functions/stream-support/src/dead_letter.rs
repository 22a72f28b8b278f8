//! The dead-letter queue: where records that can never be processed go, so that the batch can
//! count them as done without losing them. A message is a JSON object naming the function, the
//! record's batch item identifier, the reason and what the record held. Without `DLQ_URL` the
//! message is logged at error level instead.

use aws_sdk_sqs::error::DisplayErrorContext;

/// Sends dead letters to the queue at `DLQ_URL`, or logs them when there is none.
#[derive(Debug)]
pub struct DeadLetters {
    queue: Option<(aws_sdk_sqs::Client, String)>,
}

impl DeadLetters {
    /// Dead letters for the queue at `url` (`None`: log only). The client is built only when
    /// there is a queue.
    pub fn new(config: &aws_types::SdkConfig, url: Option<String>) -> Self {
        Self { queue: url.map(|url| (aws_sdk_sqs::Client::new(config), url)) }
    }

    /// Sends one message built by [`message`]; `Err` says why it could not be sent.
    pub async fn send(&self, body: String) -> Result<(), String> {
        let Some((client, url)) = &self.queue else {
            tracing::error!(dead_letter = %body, "record dropped: no DLQ_URL configured");
            return Ok(());
        };
        client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("sending to dead-letter queue {url}: {}", DisplayErrorContext(&e)))
    }
}

pub use pipeline_interface::dead_letter_message as message;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    #[test]
    fn message_names_source_identifier_reason_and_detail() {
        let mut detail = Map::new();
        detail.insert("data".into(), json!("x"));
        let body: Value = serde_json::from_str(&message("midstream", "49590", "invalid JSON: eof", detail)).unwrap();
        assert_eq!(
            body,
            json!({"source": "midstream", "item_identifier": "49590",
                   "reason": "invalid JSON: eof", "data": "x"})
        );
    }
}
