//! `upstream`: API Gateway `POST` -> validated, stamped records -> Kinesis.
//!
//! This crate is the function's logic only: [`api`] turns a request into the records to publish
//! and shapes every answer. The `upstream` library hosts it (Lambda runtime, Kinesis, logging),
//! so that an edit here rebuilds in a fraction of a second during `provision watch`.

mod api;

function_main::main!(
    upstream::run,
    pipeline_interface::upstream::Api,
    pipeline_interface::upstream::Api { decide: api::decide, publish_failed: api::publish_failed }
);
