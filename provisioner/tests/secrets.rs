//! No secret leaks: the database password given to `provision` (PGPASSWORD, which it uses only
//! to create the schema) appears nowhere after an `up`: not in the state file, not in any
//! function's environment, not in provision's output, not in the emulator's log.
//!
//! The database path as on AWS: a role of the local PostgreSQL that must log in with its
//! password, the password only in a Secrets Manager secret on MiniStack, downstream given the
//! secret's ARN and reading it (`secret::fetch`); records arrive; a wrong secret is a clear error
//! in downstream's log and loses nothing: once the secret is right again, every record arrives.

mod support;

use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const SENTINEL: &str = "sentinel-password-3f9a1c";

#[tokio::test]
async fn the_database_password_appears_nowhere_after_up() {
    let mut stack = TestStack::new("secret");
    let output = stack.command(&["up", "--yes"]).env("PGPASSWORD", SENTINEL).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!printed.contains(SENTINEL), "provision printed the password");

    let state = std::fs::read_to_string(stack.state_file()).unwrap();
    assert!(!state.contains(SENTINEL), "the state file holds the password");
    assert!(!state.to_ascii_lowercase().contains("password\""), "the state file has a password field");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(stack.state_file()).unwrap().permissions().mode() & 0o777, 0o600);

    let cloud = cloud().await;
    for function in ["upstream", "midstream", "downstream"] {
        let config = function_config(&cloud, &stack, function).await;
        let variables = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        for (key, value) in &variables {
            assert!(!value.contains(SENTINEL), "{function}: {key} holds the password");
            assert!(!key.contains("PASSWORD"), "{function} gets a password variable {key}");
        }
    }

    let log =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local-cloud/ministack.log"))
            .unwrap_or_default();
    assert!(!log.contains(SENTINEL), "the emulator's log holds the password");
    stack.down();
}

/// The tests' own Secrets Manager client on the local cloud.
async fn secrets() -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_https::client())
        .endpoint_url(ENDPOINT)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

/// Posts records `<label>-0..count` through the API; their ids.
async fn post(url: &str, label: &str, count: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for i in 0..count {
        let id = format!("{label}-{i}");
        let answer = http().post_json(url, &json!({"id": id, "message": "m", "timestamp": 1})).await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        ids.insert(id);
    }
    ids
}

/// The ids in `database`'s table (empty when it cannot be read).
async fn ids_in(database: &str) -> BTreeSet<String> {
    let Ok(client) = connect(database).await else { return BTreeSet::new() };
    match client.query("SELECT id FROM records", &[]).await {
        Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
        Err(_) => BTreeSet::new(),
    }
}

#[tokio::test]
async fn downstream_reads_the_database_password_from_its_secret_and_a_wrong_one_loses_nothing() {
    let mut stack = TestStack::new("secarn");
    let (role, database, password) =
        (format!("secret_{}", stack.name), format!("secret_db_{}", stack.name), format!("pw-{}", std::process::id()));
    let admin = connect("postgres").await.unwrap();
    for statement in [
        format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE password_login"),
        format!("CREATE DATABASE {database} OWNER {role}"),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    let mut wrong_password = tokio_postgres::Config::new();
    wrong_password.host("127.0.0.1").port(PG_PORT).user(&role).dbname(&database).password("not-it");
    let refused = wrong_password.connect(tokio_postgres::NoTls).await.err().map(|e| format!("{e:?}"));
    assert!(refused.is_some_and(|e| e.contains("28P01")), "the role must log in with its own password");

    let secrets = secrets().await;
    let secret = secrets
        .create_secret()
        .name(format!("{}-db-credentials", stack.name))
        .secret_string(json!({ "username": role, "password": password }).to_string())
        .send()
        .await
        .unwrap();
    let arn = secret.arn().unwrap().to_string();
    stack.set_settings(&json!({ "database": {
        "url": format!("postgres://{role}@127.0.0.1:{PG_PORT}/{database}"),
        "secret_arn": arn,
    }}));
    // The password reaches provision only as PGPASSWORD, for the schema.
    let out = stack.command(&["up", "--yes"]).env("PGPASSWORD", &password).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // downstream is told where the secret is, and it is a real secret's ARN.
    let cloud = cloud().await;
    let config = function_config(&cloud, &stack, "downstream").await;
    let variables = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    assert_eq!(variables.get("DB_SECRET_ARN"), Some(&arn), "downstream gets the secret's ARN");
    secrets.describe_secret().secret_id(&arn).send().await.expect("DB_SECRET_ARN names a real secret");
    assert!(!variables.values().any(|v| v.contains(&password)), "no password in the environment");
    let state = std::fs::read_to_string(stack.state_file()).unwrap();
    assert!(!state.contains(&password), "the state holds the password");

    let url = stack.output("api", "url");
    let first = post(&url, "right", 5).await;
    assert!(
        eventually(Duration::from_secs(60), || async { ids_in(&database).await.is_superset(&first) }).await,
        "records arrive through the credentials read from the secret"
    );

    // The secret goes wrong: the role's password is changed (rotated) but the secret is not, and
    // the server ends downstream's session. The next batch cannot log in, even after downstream
    // reads the secret again.
    let rotated = format!("{password}-rotated");
    admin.batch_execute(&format!("ALTER ROLE {role} PASSWORD '{rotated}'")).await.unwrap();
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", &[&role]).await.unwrap();
    let second = post(&url, "wrong", 5).await;
    let mut logged = String::new();
    let said = eventually(Duration::from_secs(60), || {
        logged = stack.ok(&["logs", "downstream", "--since", "5m"]);
        let found = logged.contains("password authentication failed");
        async move { found }
    })
    .await;
    assert!(said, "downstream's log says the database refused the password:\n{logged}");
    assert!(!logged.contains(&password), "the log holds the password");
    assert!(logged.contains("reading the secret again"), "downstream tried the secret again:\n{logged}");
    assert!(ids_in(&database).await.is_disjoint(&second), "nothing was written with the wrong secret");

    // The secret corrected: the batches retried all along now go through; nothing was lost.
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(json!({ "username": role, "password": rotated }).to_string())
        .send()
        .await
        .unwrap();
    let arrived = eventually(Duration::from_secs(90), || async { ids_in(&database).await.is_superset(&second) }).await;
    assert!(arrived, "every record posted while the secret was wrong arrives once it is right");

    // `down` drops the stack's table from the database you bring: it needs the password too.
    let out = stack.command(&["down", "--yes"]).env("PGPASSWORD", &rotated).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stack.forget();
    assert_eq!(stack.leftovers(), Vec::<String>::new(), "down left something");
    secrets.delete_secret().secret_id(&arn).force_delete_without_recovery(true).send().await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await.unwrap();
    admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}")).await.unwrap();
}
