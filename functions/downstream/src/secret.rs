//! The database credentials from the secret RDS manages for the master user (named by
//! `DB_SECRET_ARN`), read once at cold start. The password lives only in this process's memory:
//! never in the environment, the state, or a log line.

use aws_types::SdkConfig;

/// A user name and password.
pub struct Credentials {
    pub username: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Reads RDS's secret JSON: `{"username": "...", "password": "..."}`.
pub fn parse(secret: &str) -> Result<Credentials, String> {
    let value: serde_json::Value =
        serde_json::from_str(secret).map_err(|_| "the database secret is not JSON".to_string())?;
    let password = value["password"].as_str().ok_or("the database secret has no \"password\"")?.to_string();
    Ok(Credentials { username: value["username"].as_str().map(String::from), password })
}

/// Fetches and parses the secret `arn`.
pub async fn fetch(config: &SdkConfig, arn: &str) -> Result<Credentials, String> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let secret = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        format!("reading the database secret {arn}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e))
    })?;
    parse(secret.secret_string().ok_or_else(|| format!("the database secret {arn} has no string value"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rds_secret_shape_and_never_prints_the_password() {
        let credentials = parse(r#"{"username": "pipeline", "password": "p4ss"}"#).unwrap();
        assert_eq!((credentials.username.as_deref(), credentials.password.as_str()), (Some("pipeline"), "p4ss"));
        assert!(!format!("{credentials:?}").contains("p4ss"));
        assert!(parse(r#"{"username": "pipeline"}"#).unwrap_err().contains("no \"password\""));
        assert!(parse("p4ss").unwrap_err().contains("not JSON"), "the error must not echo the secret");
    }
}
