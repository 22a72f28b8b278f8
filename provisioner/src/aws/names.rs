//! AWS's naming rules for the names the stack gives its resources, checked before anything is
//! planned, so a stack name AWS would refuse half-way through an `up` is refused up front.
//! Each driver's `check` applies the rule of its kind; each rule says what it wants.

/// What a name may be: its length and its characters, plus rules some kinds add.
struct Rule {
    what: &'static str,
    min: usize,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_text: &'static str,
}

fn check(rule: &Rule, name: &str) -> Result<(), String> {
    let length = name.chars().count();
    if length < rule.min || length > rule.max {
        return Err(format!(
            "{} `{name}` is {length} characters long; AWS allows {} to {}",
            rule.what, rule.min, rule.max
        ));
    }
    if let Some(bad) = name.chars().find(|c| !(rule.allowed)(*c)) {
        return Err(format!("{} `{name}` contains `{bad}`; AWS allows only {}", rule.what, rule.allowed_text));
    }
    Ok(())
}

fn alnum_dash_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn alnum_dash_underscore_dot(c: char) -> bool {
    alnum_dash_underscore(c) || c == '.'
}

/// IAM role names: 1-64 of letters, digits and `+=,.@_-`.
pub fn iam_role(name: &str) -> Result<(), String> {
    check(
        &Rule {
            what: "IAM role name",
            min: 1,
            max: 64,
            allowed: |c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c),
            allowed_text: "letters, digits and +=,.@_-",
        },
        name,
    )
}

/// Lambda function names: 1-64 of letters, digits, `-` and `_`.
pub fn lambda_function(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "Lambda function name",
        min: 1,
        max: 64,
        allowed: alnum_dash_underscore,
        allowed_text: "letters, digits, - and _",
    };
    check(&rule, name)
}

/// Kinesis stream names: 1-128 of letters, digits, `_`, `.` and `-`.
pub fn kinesis_stream(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "Kinesis stream name",
        min: 1,
        max: 128,
        allowed: alnum_dash_underscore_dot,
        allowed_text: "letters, digits, _, . and -",
    };
    check(&rule, name)
}

/// SQS queue names: 1-80 of letters, digits, `-` and `_`.
pub fn sqs_queue(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "SQS queue name",
        min: 1,
        max: 80,
        allowed: alnum_dash_underscore,
        allowed_text: "letters, digits, - and _",
    };
    check(&rule, name)
}

/// DynamoDB table names: 3-255 of letters, digits, `_`, `.` and `-`.
pub fn dynamodb_table(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "DynamoDB table name",
        min: 3,
        max: 255,
        allowed: alnum_dash_underscore_dot,
        allowed_text: "letters, digits, _, . and -",
    };
    check(&rule, name)
}

/// DB subnet group names: 1-255 of letters, digits, spaces, `.`, `_` and `-`; not `default`.
pub fn db_subnet_group(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "DB subnet group name",
        min: 1,
        max: 255,
        allowed: |c| alnum_dash_underscore_dot(c) || c == ' ',
        allowed_text: "letters, digits, spaces, ., _ and -",
    };
    check(&rule, name)?;
    if name.eq_ignore_ascii_case("default") {
        return Err("a DB subnet group may not be named `default`".into());
    }
    Ok(())
}

/// RDS instance identifiers: 1-63 letters, digits and hyphens, starting with a letter, with no
/// two hyphens in a row and no hyphen at the end.
pub fn rds_instance(identifier: &str) -> Result<(), String> {
    let rule = Rule {
        what: "RDS instance identifier",
        min: 1,
        max: 63,
        allowed: |c| c.is_ascii_alphanumeric() || c == '-',
        allowed_text: "letters, digits and -",
    };
    check(&rule, identifier)?;
    if !identifier.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("RDS instance identifier `{identifier}` must start with a letter"));
    }
    if identifier.contains("--") || identifier.ends_with('-') {
        return Err(format!("RDS instance identifier `{identifier}` may not contain `--` or end with `-`"));
    }
    Ok(())
}

/// S3 bucket names: 3-63 of lowercase letters, digits, `.` and `-`, starting and ending with a
/// letter or digit, with no `..`.
pub fn s3_bucket(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "S3 bucket name",
        min: 3,
        max: 63,
        allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-',
        allowed_text: "lowercase letters, digits, . and -",
    };
    check(&rule, name)?;
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if !name.starts_with(alnum) || !name.ends_with(alnum) || name.contains("..") {
        return Err(format!("S3 bucket name `{name}` must start and end with a letter or digit and have no `..`"));
    }
    Ok(())
}

/// Firehose delivery stream names: 1-64 of letters, digits, `_`, `.` and `-`.
pub fn firehose_delivery_stream(name: &str) -> Result<(), String> {
    let rule = Rule {
        what: "Firehose delivery stream name",
        min: 1,
        max: 64,
        allowed: alnum_dash_underscore_dot,
        allowed_text: "letters, digits, _, . and -",
    };
    check(&rule, name)
}

/// SNS topic names: 1-256 of letters, digits, `-` and `_`.
pub fn sns_topic(name: &str) -> Result<(), String> {
    check(
        &Rule {
            what: "SNS topic name",
            min: 1,
            max: 256,
            allowed: alnum_dash_underscore,
            allowed_text: "letters, digits, '-' and '_'",
        },
        name,
    )
}

/// CloudWatch alarm names: 1-255 printable ASCII characters.
pub fn cloudwatch_alarm(name: &str) -> Result<(), String> {
    check(
        &Rule {
            what: "CloudWatch alarm name",
            min: 1,
            max: 255,
            allowed: |c| c.is_ascii_graphic() || c == ' ',
            allowed_text: "printable ASCII characters",
        },
        name,
    )
}

/// Kinesis stream consumer names: 1-128 of letters, digits, `_`, `.` and `-`.
pub fn kinesis_consumer(name: &str) -> Result<(), String> {
    check(
        &Rule {
            what: "Kinesis consumer name",
            min: 1,
            max: 128,
            allowed: alnum_dash_underscore_dot,
            allowed_text: "letters, digits, '_', '.' and '-'",
        },
        name,
    )
}

/// PostgreSQL identifiers (database names): at most 63 bytes.
pub fn postgres_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("PostgreSQL name `{name}` is {} bytes long; PostgreSQL allows 1 to 63", name.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rds_identifier_must_start_with_a_letter_and_have_single_hyphens() {
        assert!(rds_instance("demo-db").is_ok());
        assert!(rds_instance("9-bad-db").unwrap_err().contains("start with a letter"));
        assert!(rds_instance("bad--name-db").unwrap_err().contains("--"));
        assert!(rds_instance(&format!("a{}", "b".repeat(63))).unwrap_err().contains("1 to 63"));
    }

    #[test]
    fn each_rule_names_what_it_allows() {
        assert!(lambda_function("demo-upstream").is_ok());
        assert!(lambda_function("demo.upstream").unwrap_err().contains("letters, digits, - and _"));
        assert!(iam_role(&"r".repeat(65)).unwrap_err().contains("1 to 64"));
        assert!(dynamodb_table("ab").is_err());
        assert!(sqs_queue("demo-dead-letters").is_ok());
        assert!(db_subnet_group("default").is_err());
        assert!(postgres_identifier(&"p".repeat(64)).is_err());
    }
}
