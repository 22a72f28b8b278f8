//! `reducer`: the distributed adder's reduce step. Each message asks for a node of an array's
//! reduction tree; once its children are written their sum is written once and handed on, up to
//! the root, whose value is the array's sum. Dead letters mark their array failed.
//!
//! This crate is the function's logic only (how partials combine); the `adder-host` library does
//! the I/O and makes each step happen once.

/// Partial sums combined.
fn combine(partials: &[i64]) -> i64 {
    adder::combine(partials)
}

function_main::main!(adder_host::run_reducer, adder::interface::Reduce, adder::interface::Reduce { combine });
