//! Retry with backoff and a deadline, for failures that clear by themselves (IAM propagation,
//! concurrent updates, throttling). Named by condition at the call site:
//! `retry_when("creating function", deadline, errors::is_propagation, || ...)`.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long eventual-consistency errors are retried before they are reported.
pub const PROPAGATION_DEADLINE: Duration = Duration::from_secs(90);

/// Runs `op` until it succeeds, fails with an error `is_retryable` rejects, or `deadline` passes
/// (then the last error is returned). Backoff doubles from 250 ms up to 5 s.
pub async fn retry_when<T, E, F, Fut>(deadline: Duration, is_retryable: impl Fn(&E) -> bool, mut op: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if is_retryable(&err) && started.elapsed() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(err) => return Err(err),
        }
    }
}

/// Polls `check` every `every` until it yields `Some`, or fails after `deadline` with `what`.
/// For the few states no SDK waiter covers (mapping enabled, DB answering).
pub async fn poll_until<T, F, Fut>(what: &str, every: Duration, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            anyhow::bail!("timed out after {} s waiting for {what}", deadline.as_secs());
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn retries_only_retryable_errors_until_success() {
        let calls = Cell::new(0);
        let result: Result<u32, &str> = retry_when(
            Duration::from_secs(5),
            |e| *e == "busy",
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));

        calls.set(0);
        let result: Result<u32, &str> = retry_when(
            Duration::from_secs(5),
            |e| *e == "busy",
            || {
                calls.set(calls.get() + 1);
                async { Err("fatal") }
            },
        )
        .await;
        assert_eq!(result, Err("fatal"));
        assert_eq!(calls.get(), 1);
    }
}
