//! Declaring a `provision` stack in Rust, in a program crate of your own.
//!
//! A program is a small binary: it reads the engine's [`Request`] (which stack, where, its
//! settings), declares the stack's resources with typed properties and references, and prints
//! the declaration document the engine plans and applies (`docs/declaration.md`). This crate is
//! everything such a program needs, and depends on serde alone: a program crate builds in
//! seconds and never compiles the AWS SDK.
//!
//! ```no_run
//! use declaration::kinds::sqs_queue::SqsQueueSpec;
//! use declaration::{Request, StackDef};
//!
//! fn declare(request: &Request) -> Result<StackDef, String> {
//!     let mut stack = StackDef::new(&request.stack);
//!     let jobs = stack.add("jobs", SqsQueueSpec::new(stack.physical_name("jobs"), 345_600));
//!     stack.export("jobs_url", [jobs.url()]);
//!     Ok(stack)
//! }
//!
//! fn main() {
//!     declaration::run(declare)
//! }
//! ```
//!
//! Every kind the engine knows has its module under [`kinds`]: its spec (the properties), and
//! the typed outputs of its handle (`queue.arn()`), so a reference can only name a real output.
//! [`helpers`] declares what most programs share: a function with its role and log group, and a
//! REST API protected as the settings say.

pub mod capacity;
pub mod document;
pub mod helpers;
pub mod input;
pub mod kinds;
pub mod program;
pub mod settings;
pub mod stack;

pub use document::{Declaration, VERSION};
pub use input::Input;
pub use program::{run, Request};
pub use stack::{Handle, Spec, StackDef};
