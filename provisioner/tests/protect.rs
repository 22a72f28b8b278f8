//! A protected stack (`"protect": true`): `down` deletes nothing and names the data it would
//! delete; the cloud's own deletion protection is on (the table, the database) and turning it off
//! out of band is drift that `plan` reports and `up` repairs; lifting protection is a plan like
//! any other, after which `down` deletes everything.

mod support;

use serde_json::{json, Value};
use support::*;

/// The change planned for `id`, if any.
fn change<'a>(plan: &'a Value, id: &str) -> Option<&'a Value> {
    plan["changes"].as_array().unwrap().iter().find(|c| c["id"] == id)
}

/// Whether the table and the DB instance of `stack` have the cloud's deletion protection on.
async fn protection_of(stack: &TestStack) -> (bool, bool) {
    let cloud = cloud().await;
    let table = cloud.dynamodb.describe_table().table_name(format!("{}-records", stack.name)).send().await.unwrap();
    let db = cloud.rds.describe_db_instances().db_instance_identifier(format!("{}-db", stack.name)).send().await;
    let db = db.unwrap();
    (
        table.table().unwrap().deletion_protection_enabled() == Some(true),
        db.db_instances()[0].deletion_protection() == Some(true),
    )
}

#[tokio::test]
async fn a_protected_stack_keeps_its_data_until_protection_is_lifted() {
    let mut stack = TestStack::new("prot");
    stack.set_settings(&json!({ "protect": true }));
    stack.up();
    assert_pipeline_delivers(&stack, "protected").await;
    let rows = row_count(&stack).await;
    assert_eq!(protection_of(&stack).await, (true, true), "the table and the database are protected in the cloud");

    let refused = stack.provision(&["down", "--yes"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a protected stack's down fails");
    for words in [
        "is protected",
        "`down` deletes nothing",
        "records (DynamoDB table)",
        "database (RDS instance)",
        "\"protect\": false",
    ] {
        assert!(said.contains(words), "says `{words}`:\n{said}");
    }
    assert_exactly_one_of_everything(&stack).await;
    assert_eq!(row_count(&stack).await, rows, "every row is still there");

    // Turned off out of band: drift, repaired by up.
    let cloud = cloud().await;
    let table = format!("{}-records", stack.name);
    cloud.dynamodb.update_table().table_name(&table).deletion_protection_enabled(false).send().await.unwrap();
    let plan = stack.plan();
    let records = change(&plan, "records").unwrap_or_else(|| panic!("the table's protection is drift: {plan:#}"));
    assert_eq!(records["action"], "update", "{records:#}");
    assert!(records["fields"].as_array().unwrap().contains(&json!("deletion_protection")), "{records:#}");
    stack.up();
    assert_eq!(protection_of(&stack).await, (true, true), "up turned it back on");

    // Lifted: a plan like any other, then down deletes everything (TestStack::down checks).
    stack.set_settings(&json!({}));
    let plan = stack.plan();
    for id in ["records", "database"] {
        let lifted = change(&plan, id).unwrap_or_else(|| panic!("lifting protection updates `{id}`: {plan:#}"));
        assert_eq!(lifted["action"], "update", "{lifted:#}");
    }
    stack.up();
    assert_eq!(protection_of(&stack).await, (false, false));
    stack.down();
}
