//! The `provision` library: stacks declared in Rust (programs) reconciled against any AWS
//! endpoint (real AWS, or an emulator through `--endpoint-url`).
//!
//! Map: [`programs`] declare stacks (the pipeline, the distributed adder); [`engine`] plans and
//! applies; [`aws`] has one driver per resource kind; [`artifact`] builds and zips the functions;
//! [`commands`] is what the CLI runs. See ARCHITECTURE.md.

pub mod api_calls;
pub mod artifact;
pub mod aws;
pub mod bench;
pub mod cloud;
pub mod commands;
pub mod engine;
pub mod http;
pub mod local;
pub mod logs;
pub mod new;
pub mod programs;
pub mod remote_state;
pub mod settings;
pub mod state_commands;
pub mod watch;
