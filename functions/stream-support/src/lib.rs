//! What `midstream` and `downstream` share about answering a stream batch: the batch response
//! ([`batch`]: `batchItemFailures`, or a failed invocation where partial responses are ignored)
//! and the dead-letter queue ([`dead_letter`]: where records that can never be processed go).
//!
//! Unlike `record`, this crate does I/O: [`dead_letter::DeadLetters`] sends to SQS.

pub mod batch;
pub mod dead_letter;
