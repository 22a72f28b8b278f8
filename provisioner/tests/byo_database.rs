//! A database you bring, on the local cloud: with `"database": {"url": ...}` the stack makes no
//! RDS instance, creates its table (marked) in that database, records arrive there, and `down`
//! drops the table but leaves the database. A database that does not exist is refused clearly,
//! and a stack name AWS would refuse is refused before anything is made.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

/// The rows of `records` in `database` (0 when the table cannot be read).
async fn rows_in(database: &str) -> i64 {
    match connect(database).await {
        Ok(client) => match client.query_one("SELECT count(*) FROM records", &[]).await {
            Ok(row) => row.get(0),
            Err(_) => 0,
        },
        Err(_) => 0,
    }
}

#[tokio::test]
async fn records_arrive_in_the_database_you_bring_and_down_leaves_it() {
    let mut stack = TestStack::new("byo");
    let database = format!("byo_{}", stack.name);
    let admin = connect("postgres").await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
    stack
        .set_settings(&json!({ "database": { "url": format!("postgres://pipeline@127.0.0.1:{PG_PORT}/{database}") } }));

    // The database must exist: a clear refusal from `plan` and `up`, before anything is made.
    for args in [&["plan"][..], &["up", "--yes"]] {
        let out = stack.provision(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(&format!("database `{database}` does not exist")), "{stderr}");
        assert!(stderr.contains("Nothing was changed"), "{stderr}");
    }
    let made = resources_named(&cloud().await, &stack.name).await;
    assert_eq!(made, Vec::<String>::new(), "nothing is made for a database that is not there");
    admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();

    let up = stack.up();
    assert_eq!(up["outputs"]["database"], json!(format!("postgres://pipeline@127.0.0.1:{PG_PORT}/{database}")));
    let cloud = cloud().await;
    let made = resources_named(&cloud, &stack.name).await;
    assert!(!made.iter().any(|r| r.starts_with("db ")), "no RDS instance is made: {made:?}");
    let mark: String = connect(&database)
        .await
        .unwrap()
        .query_one("SELECT obj_description('records'::regclass, 'pg_class')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(mark.contains(&format!("\"provision:stack\":\"{}\"", stack.name)), "the table carries the mark: {mark}");
    assert_eq!(stack.up()["changes"], json!([]), "a second up changes nothing");

    let url = stack.output("api", "url");
    for i in 0..5 {
        let answer =
            http().post_json(&url, &json!({"id": format!("byo-{i}"), "message": "m", "timestamp": 1})).await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert!(eventually(Duration::from_secs(60), || async { rows_in(&database).await == 5 }).await, "records arrive");

    stack.down();
    assert_eq!(resources_named(&cloud, &stack.name).await, Vec::<String>::new());
    let still_there =
        admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database]).await.unwrap().is_some();
    assert!(still_there, "the database brought by the user is left");
    let table =
        connect(&database).await.unwrap().query_one("SELECT to_regclass('records') IS NULL", &[]).await.unwrap();
    assert!(table.get::<_, bool>(0), "the stack's table is dropped");
    admin.batch_execute(&format!("DROP DATABASE {database}")).await.unwrap();
}

#[tokio::test]
async fn a_table_the_stack_did_not_make_is_refused_and_kept() {
    let mut stack = TestStack::new("byoforeign");
    let database = format!("byo_{}", stack.name);
    let admin = connect("postgres").await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let theirs = connect(&database).await.unwrap();
    theirs
        .batch_execute("CREATE TABLE records (id TEXT PRIMARY KEY); INSERT INTO records VALUES ('theirs')")
        .await
        .unwrap();
    stack
        .set_settings(&json!({ "database": { "url": format!("postgres://pipeline@127.0.0.1:{PG_PORT}/{database}") } }));

    let out = stack.provision(&["up", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`schema`") && stderr.contains("--adopt schema"), "{stderr}");
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "nothing was made");
    stack.down();
    assert_eq!(rows_in(&database).await, 1, "their table and row are untouched");
    admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
}

#[tokio::test]
async fn a_stack_name_aws_would_refuse_is_refused_before_anything_is_made() {
    let mut stack = TestStack::new("names");
    let out = stack.command(&["up", "--yes", "--skip-build"]).args(["--stack", "9-Bad--name"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("RDS instance identifier `9-Bad--name-db` must start with a letter"), "{stderr}");
    assert!(stderr.contains("Nothing was changed"), "{stderr}");
    assert_eq!(resources_named(&cloud().await, "9-Bad--name").await, Vec::<String>::new());
    stack.down();
}
