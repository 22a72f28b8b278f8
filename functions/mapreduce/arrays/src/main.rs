//! `arrays`: the distributed adder's API. `POST /arrays` with a JSON array of integers answers
//! `202 {"arrayId", "count"}` at once; `GET /arrays/{arrayId}` answers where the array stands.
//!
//! This crate is the function's logic only: what a body means and how a refusal is answered. The
//! `adder-host` library hosts it (Lambda runtime, DynamoDB, SQS), so an edit here rebuilds in a
//! fraction of a second during `provision watch`.

use adder::Rejection;
use serde_json::{json, Value};

/// What a refused request is told besides what is wrong.
const USAGE: &str = "POST /arrays with a JSON array of integers, e.g. [1, -2, 3]; each at most 2^31 in magnitude";

fn refused(rejection: &Rejection) -> Value {
    json!({ "message": rejection.reason, "usage": USAGE })
}

fn main() -> Result<(), adder_host::Error> {
    adder_host::run_api(adder_host::Api { parse: adder::parse_array, refused })
}
