//! The queues: map tasks (sent by the API, in batches), reduce tasks (sent after each write) and
//! the dead-letter queue (tasks that can never be processed). SQS delivers at least once; the
//! steps the messages start are written to be repeated (`store`).

use adder::Task;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

/// SQS's limits on one SendMessageBatch call.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
/// How often entries a batch call did not take are sent again.
const BATCH_RETRIES: usize = 5;

/// One queue.
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: String) -> Self {
        Self { client, url }
    }

    /// Sends one task.
    pub async fn send(&self, task: &Task) -> Result<(), String> {
        let body = serde_json::to_string(task).map_err(|e| e.to_string())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("sending to {}: {}", self.url, DisplayErrorContext(&e)))
    }

    /// Sends every task, in batches within SQS's limits, sending again what a batch did not take.
    pub async fn send_all(&self, tasks: &[Task]) -> Result<(), String> {
        let bodies: Vec<String> =
            tasks.iter().map(serde_json::to_string).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        for batch in batches(&bodies) {
            let mut left: Vec<usize> = batch;
            for attempt in 0..=BATCH_RETRIES {
                let entries = left
                    .iter()
                    .map(|i| {
                        SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(&bodies[*i]).build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let sent =
                    self.client.send_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await;
                let failed: Vec<usize> = match sent {
                    Ok(out) => out.failed().iter().filter_map(|f| f.id().parse().ok()).collect(),
                    Err(e) if attempt == BATCH_RETRIES => {
                        return Err(format!("sending to {}: {}", self.url, DisplayErrorContext(&e)))
                    }
                    Err(_) => left.clone(),
                };
                if failed.is_empty() {
                    break;
                }
                if attempt == BATCH_RETRIES {
                    return Err(format!("sending to {}: {} messages refused", self.url, failed.len()));
                }
                left = failed;
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }
}

/// The bodies' indexes grouped into batches of at most 10 entries and 256 KiB.
fn batches(bodies: &[String]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let full = batches.last().is_none_or(|b| b.len() == BATCH_ENTRIES || bytes + body.len() > BATCH_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        batches.last_mut().expect("a batch").push(i);
        bytes += body.len();
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_to_ten_entries_and_256_kib() {
        let small = vec!["x".to_string(); 25];
        assert_eq!(batches(&small).iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        let large = vec!["x".repeat(100 * 1024); 5];
        assert_eq!(batches(&large).iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
