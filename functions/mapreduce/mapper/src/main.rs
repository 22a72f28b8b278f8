//! `mapper`: the distributed adder's map step. Each message is a chunk of an array; its partial
//! sum (every element doubled, summed) is written once with the array's progress, then handed on.
//!
//! This crate is the function's logic only (the map itself); the `adder-host` library does the
//! I/O and makes each step happen once.

/// A chunk's partial sum: every element doubled, summed.
fn map(chunk: &[i64]) -> i64 {
    adder::double_and_sum(chunk)
}

function_main::main!(adder_host::run_mapper, adder::interface::Map, adder::interface::Map { map });
