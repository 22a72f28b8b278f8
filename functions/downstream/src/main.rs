//! `downstream`: DynamoDB stream batch -> Postgres rows and the CloudWatch latency metric.
//!
//! This crate is the function's logic only: [`image`] reads each stream record's new image as a
//! record, or rejects it. The `downstream` library hosts it (Lambda runtime, Postgres, the
//! metric, the dead-letter queue, logging), so that an edit here rebuilds in a fraction of a
//! second during `provision watch`.

mod image;

function_main::main!(
    downstream::run,
    pipeline_interface::downstream::Logic,
    pipeline_interface::downstream::Logic { parse: image::parse }
);
