//! `provision local`: the local cloud from the installed tool, run from a folder outside this
//! repository (pointed at this checkout's local cloud, which `scripts/test` started, so nothing
//! is installed twice).

mod support;

use std::process::{Command, Output};
use support::*;

fn local(args: &[&str]) -> Output {
    let outside = std::env::temp_dir();
    Command::new(env!("CARGO_BIN_EXE_provision"))
        .current_dir(&outside)
        .env("PROVISION_LOCAL_HOME", workspace())
        .arg("local")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn local_start_status_and_env_work_from_outside_the_repository() {
    require_local_cloud();
    let start = local(&["start"]);
    assert!(start.status.success(), "start on a running local cloud is a no-op: {}", text(&start));
    let status = local(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    let said = text(&status);
    assert!(said.contains("MiniStack: running") && said.contains("PostgreSQL: running"), "{said}");
    let env = local(&["env"]);
    assert!(text(&env).contains("export AWS_ENDPOINT_URL=http://127.0.0.1:4566"), "{}", text(&env));
    let wrong = local(&["localstack", "restart"]);
    assert!(!wrong.status.success() && text(&wrong).contains("usage: provision local localstack"), "{}", text(&wrong));
}
