//! `midstream`: Kinesis batch -> DynamoDB items.
//!
//! This crate is the function's logic only: [`decode`] sorts a batch into the records to write
//! and the records to reject. The `midstream` library hosts it (Lambda runtime, DynamoDB, the
//! dead-letter queue, logging), so that an edit here rebuilds in a fraction of a second during
//! `provision watch`.

mod decode;

function_main::main!(
    midstream::run,
    pipeline_interface::midstream::Logic,
    pipeline_interface::midstream::Logic { decode: decode::decode }
);
