//! How a refused `POST /arrays` is answered.

use adder::Rejection;
use serde_json::{json, Value};

/// What a refused request is told besides what is wrong.
const USAGE: &str = "POST /arrays with a JSON array of integers, e.g. [1, -2, 3]; each at most 2^31 in magnitude";

/// The body of the answer to a refused request.
pub fn refused(rejection: &Rejection) -> Value {
    json!({ "message": rejection.reason, "usage": USAGE })
}
