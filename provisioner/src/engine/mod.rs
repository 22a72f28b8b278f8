//! The reconcile engine: declared stack + recorded state + refreshed cloud -> plan -> apply.
//!
//! **Architecture Invariant:** the engine knows resource kinds only through its own
//! [`driver::Driver`] trait and the [`driver::Registry`] a provider hands it; it knows nothing about
//! Kinesis or Lambda, and nothing under `engine/` imports `aws/` or `cloud`.
//! **Architecture Invariant:** only the engine touches the state file.

pub mod apply;
pub mod declare;
pub mod document;
pub mod driver;
pub mod input;
pub mod lifecycle;
pub mod mark;
pub mod ownership;
pub mod plan;
pub mod state;

#[cfg(test)]
mod tests;
