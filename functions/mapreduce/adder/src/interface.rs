//! The adder's logic as the functions' host (`adder-host`) calls it: plain function pointers,
//! apart from the host so that a logic library links against nothing of the runtime or the SDK.

use crate::Rejection;
use serde_json::Value;

/// The API's logic.
#[derive(Debug, Clone, Copy)]
pub struct Api {
    /// The array a `POST /arrays` body holds, or why it is refused.
    pub parse: fn(&str) -> Result<Vec<i64>, Rejection>,
    /// The body of the answer to a refused request.
    pub refused: fn(&Rejection) -> Value,
}

/// The map step's logic: a chunk's partial sum.
#[derive(Debug, Clone, Copy)]
pub struct Map {
    pub map: fn(&[i64]) -> i64,
}

/// The reduce step's logic: partial sums combined.
#[derive(Debug, Clone, Copy)]
pub struct Reduce {
    pub combine: fn(&[i64]) -> i64,
}
