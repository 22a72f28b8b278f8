//! `arrays`: the distributed adder's API. `POST /arrays` with a JSON array of integers answers
//! `202 {"arrayId", "count"}` at once; `GET /arrays/{arrayId}` answers where the array stands.
//!
//! This crate is the function's logic only: what a body means (`adder::parse_array`) and how a
//! refusal is answered ([`answers`]). The `adder-host` library hosts it (Lambda runtime,
//! DynamoDB, SQS), so an edit here rebuilds in a fraction of a second during `provision watch`.

mod answers;

function_main::main!(
    adder_host::run_api,
    adder::interface::Api,
    adder::interface::Api { parse: adder::parse_array, refused: answers::refused }
);
