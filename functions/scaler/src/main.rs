//! `scaler`: changes the stream's shard count when one of its usage alarms goes into ALARM, within
//! AWS's rules and the stack's bounds, in the shape of AWS's own sample.
//!
//! This crate is the function's logic only: [`decide::decide`] turns an alarm, the stream as it is and the
//! changes of the last day into what to do. The `scaler` library hosts it (Lambda runtime, Kinesis,
//! CloudWatch, DynamoDB), so an edit here rebuilds in a fraction of a second.

mod decide;

function_main::main!(scaler::run, pipeline_interface::scaler::Decide, decide::decide);
