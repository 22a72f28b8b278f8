//! No secret leaks: the database password given to `provision` (PGPASSWORD, which it uses only
//! to create the schema) appears nowhere after an `up`: not in the state file, not in any
//! function's environment, not in provision's output, not in the emulator's log. The functions
//! get the ARN of the RDS-managed secret, never a password.

mod support;

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
        if function == "downstream" {
            assert!(variables.contains_key("DB_SECRET_ARN"), "downstream is told where the secret is, not what it is");
        }
    }

    let log =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local-cloud/ministack.log"))
            .unwrap_or_default();
    assert!(!log.contains(SENTINEL), "the emulator's log holds the password");
    stack.down();
}
