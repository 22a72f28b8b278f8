//! The AWS network settings switched on, on the local cloud: the database goes into a DB subnet
//! group with its security groups, downstream runs in the VPC, and the pipeline still delivers.
//! The emulator's default VPC provides the subnets and security group (read through its EC2
//! query API, which provision itself never calls).

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn with_a_network_the_database_and_downstream_join_it_and_records_still_arrive() {
    let (chosen, groups) = default_network().await;

    let mut stack = TestStack::new("net");
    stack.set_settings(&json!({"network": {
        "subnet_ids": chosen,
        "function_security_group_ids": [groups[0]],
        "db_security_group_ids": [groups[0]],
    }}));
    let up = stack.up();
    assert_eq!(up["applied"], 22, "21 resources (with the archive and the log groups) and the DB subnet group: {up}");

    let cloud = cloud().await;
    let function = function_config(&cloud, &stack, "downstream").await;
    let mut in_subnets = function.vpc_config().map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
    in_subnets.sort();
    assert_eq!(in_subnets, chosen, "downstream runs in the given subnets");
    let upstream = function_config(&cloud, &stack, "upstream").await;
    assert!(upstream.vpc_config().is_none_or(|v| v.subnet_ids().is_empty()), "upstream stays out of the VPC");

    let instance =
        cloud.rds.describe_db_instances().db_instance_identifier(format!("{}-db", stack.name)).send().await.unwrap();
    let instance = &instance.db_instances()[0];
    assert_eq!(
        instance.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some(format!("{}-db-subnets", stack.name).as_str())
    );

    assert_eq!(stack.up()["changes"], json!([]), "a second up changes nothing");

    let url = stack.output("api", "url");
    let answer =
        http().post_json(&url, &json!({"id": "net-1", "message": "through the VPC", "timestamp": 1})).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(eventually(Duration::from_secs(60), || async { row_count(&stack).await == 1 }).await, "the record arrives");

    stack.down();
    assert_eq!(resources_named(&cloud, &stack.name).await, Vec::<String>::new());
    let groups_left = cloud.rds.describe_db_subnet_groups().send().await.unwrap();
    assert!(
        !groups_left
            .db_subnet_groups()
            .iter()
            .any(|g| g.db_subnet_group_name().is_some_and(|n| n.starts_with(&stack.name))),
        "down deletes the DB subnet group"
    );
}
