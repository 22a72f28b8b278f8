//! What `POST /arrays` accepts: a JSON array of integers, each at most 2^31 in magnitude, as many
//! as fit in one synchronous Lambda invocation. Anything else is refused with what is wrong.

use serde_json::Value;

/// The most elements one array may have: a synchronous Lambda invocation takes at most 6 MB,
/// about 500,000 integers of up to eleven characters with their separators.
pub const MAX_ELEMENTS: usize = 500_000;
/// The largest magnitude of an element: |x| <= 2^31.
pub const MAX_MAGNITUDE: i64 = 1 << 31;
/// The largest body a synchronous Lambda invocation takes.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A refused request: the HTTP status and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
}

impl Rejection {
    fn bad(reason: impl Into<String>) -> Self {
        Self { status: 400, reason: reason.into() }
    }

    fn too_large(reason: impl Into<String>) -> Self {
        Self { status: 413, reason: reason.into() }
    }
}

/// The array in `body`, or why it is refused.
pub fn parse_array(body: &str) -> Result<Vec<i64>, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::too_large(format!(
            "the body is {} bytes: a synchronous Lambda invocation takes at most {MAX_BODY_BYTES} bytes (6 MB), \
             about {MAX_ELEMENTS} elements",
            body.len()
        )));
    }
    let document: Value =
        serde_json::from_str(body).map_err(|e| Rejection::bad(format!("the body is not JSON ({e})")))?;
    let Value::Array(items) = document else {
        return Err(Rejection::bad(format!("the body must be a JSON array of integers, not {}", kind_of(&document))));
    };
    if items.len() > MAX_ELEMENTS {
        return Err(Rejection::too_large(format!(
            "the array has {} elements: at most {MAX_ELEMENTS} fit in one request (a synchronous Lambda invocation \
             takes at most 6 MB)",
            items.len()
        )));
    }
    items.iter().enumerate().map(|(at, item)| element(at, item)).collect()
}

fn element(at: usize, item: &Value) -> Result<i64, Rejection> {
    let Some(number) = item.as_number() else {
        return Err(Rejection::bad(format!("element {at} is {}: only integers are added", kind_of(item))));
    };
    match number.as_i64() {
        Some(x) if x.abs() <= MAX_MAGNITUDE => Ok(x),
        Some(x) => Err(Rejection::bad(format!("element {at} is {x}: each element must be at most 2^31 in magnitude"))),
        // Beyond what an i64 holds, JSON integers are read as floats: too large either way.
        None if number.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() > MAX_MAGNITUDE as f64) => {
            Err(Rejection::bad(format!("element {at} is {number}: each element must be at most 2^31 in magnitude")))
        }
        None if number.is_f64() => Err(Rejection::bad(format!("element {at} is {number}: not an integer"))),
        None => {
            Err(Rejection::bad(format!("element {at} is {number}: each element must be at most 2^31 in magnitude")))
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_in_range_are_accepted() {
        assert_eq!(parse_array("[]").unwrap(), Vec::<i64>::new());
        assert_eq!(
            parse_array("[1, -2, 2147483648, -2147483648]").unwrap(),
            vec![1, -2, MAX_MAGNITUDE, -MAX_MAGNITUDE]
        );
    }

    #[test]
    fn everything_else_is_refused_naming_what_is_wrong() {
        let refused = |body: &str| parse_array(body).unwrap_err();
        assert!(refused("{\"a\": 1}").reason.contains("not an object"));
        assert!(refused("[1, 2.5]").reason.contains("element 1 is 2.5: not an integer"));
        assert!(refused("[1, \"2\"]").reason.contains("element 1 is a string"));
        assert!(refused("[2147483649]").reason.contains("2^31"));
        assert!(refused("[-9999999999999999999999]").reason.contains("2^31"));
        assert!(refused("[1,").reason.contains("not JSON"));
        assert!(refused("[null]").reason.contains("null"));
        assert_eq!(refused("[1.0]").status, 400);
    }

    #[test]
    fn too_many_elements_are_refused_with_413_naming_the_limit() {
        let body = format!("[{}]", vec!["1"; MAX_ELEMENTS + 1].join(","));
        let refused = parse_array(&body).unwrap_err();
        assert_eq!(refused.status, 413);
        assert!(refused.reason.contains("500000"), "{}", refused.reason);
        let body = format!("[{}]", vec!["1"; MAX_ELEMENTS].join(","));
        assert_eq!(parse_array(&body).unwrap().len(), MAX_ELEMENTS);
        assert_eq!(parse_array(&" ".repeat(MAX_BODY_BYTES + 1)).unwrap_err().status, 413);
    }
}
