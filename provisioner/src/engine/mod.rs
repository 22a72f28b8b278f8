//! The reconcile engine: declared stack + recorded state + refreshed cloud -> plan -> apply.
//!
//! **Architecture Invariant:** the engine knows resource kinds only through the
//! [`crate::aws::Driver`] trait; it knows nothing about Kinesis or Lambda.
//! **Architecture Invariant:** only the engine touches the state file.

pub mod apply;
pub mod declare;
pub mod input;
pub mod ownership;
pub mod plan;
pub mod retry;
pub mod state;
