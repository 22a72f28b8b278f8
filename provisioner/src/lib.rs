//! The `provision` library: declares the streaming pipeline in Rust and reconciles it against
//! any AWS endpoint (real AWS, or an emulator through `--endpoint-url`).
//!
//! Map: [`stack`] declares the resources; [`engine`] plans and applies; [`aws`] has one driver
//! per resource kind; [`artifact`] builds and zips the functions; [`commands`] is what the CLI
//! runs. See ARCHITECTURE.md.

pub mod api_calls;
pub mod artifact;
pub mod aws;
pub mod bench;
pub mod cloud;
pub mod commands;
pub mod engine;
pub mod http;
pub mod logs;
pub mod settings;
pub mod stack;
pub mod watch;
