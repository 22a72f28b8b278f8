//! Drift that matters, on the local cloud: each change made out of band that would open access
//! or stop records is reported by `plan` (which calls nothing that mutates), repaired by one
//! `up`, and the pipeline delivers afterwards. Also: an update that changes outputs (the table's
//! stream turned off and on gets a new ARN) converges in one `up`, and a shard change 1 -> 4 -> 1
//! goes through the steps AWS allows.

mod support;

use aws_sdk_dynamodb::types::StreamSpecification;
use serde_json::{json, Value};
use support::*;

/// The change planned for `id`, if any.
fn change<'a>(plan: &'a Value, id: &str) -> Option<&'a Value> {
    plan["changes"].as_array().unwrap().iter().find(|c| c["id"] == id)
}

/// Asserts the plan changes `id` and names `field` among what differs.
fn assert_reports(plan: &Value, id: &str, field: &str) {
    let change = change(plan, id).unwrap_or_else(|| panic!("`{id}` is not in the plan: {plan:#}"));
    assert!(change["fields"].as_array().unwrap().contains(&json!(field)), "`{id}` should name `{field}`: {change:#}");
}

/// The number of calls of `operation` in a JSON report's mutating calls.
fn calls_of(report: &Value, operation: &str) -> usize {
    report["mutating_calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.as_str().is_some_and(|c| c.ends_with(operation)))
        .count()
}

#[tokio::test]
async fn drift_that_opens_access_or_stops_records_is_reported_and_repaired() {
    let mut stack = TestStack::new("drift");
    stack.up();
    let cloud = cloud().await;
    let name = |suffix: &str| format!("{}-{suffix}", stack.name);
    let lambda = &cloud.lambda;
    let iam = &cloud.iam;

    // Any API Gateway may now invoke upstream: the permission re-added without its SourceArn.
    lambda.remove_permission().function_name(name("upstream")).statement_id("api-gateway-invoke").send().await.unwrap();
    lambda
        .add_permission()
        .function_name(name("upstream"))
        .statement_id("api-gateway-invoke")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .send()
        .await
        .unwrap();
    // Records stop: the Kinesis mapping disabled.
    let mapping = stack.output("events-to-midstream", "uuid");
    lambda.update_event_source_mapping().uuid(&mapping).enabled(false).send().await.unwrap();
    // Access opened: an extra inline policy granting s3:* on *.
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name(name("upstream-role"))
        .policy_name("extra")
        .policy_document(everything.to_string())
        .send()
        .await
        .unwrap();
    // The stack's own policy given a condition, and a managed policy attached.
    let conditional = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["dynamodb:BatchWriteItem"], "Resource": ["*"],
        "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]});
    iam.put_role_policy()
        .role_name(name("midstream-role"))
        .policy_name("pipeline-least-privilege")
        .policy_document(conditional.to_string())
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name(name("midstream-role"))
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    // A second statement in downstream's trust policy: another account may assume the role.
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy()
        .role_name(name("downstream-role"))
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    // The stage serves a deployment provision did not make.
    let api = stack.output("api", "id");
    cloud.apigateway.create_deployment().rest_api_id(&api).stage_name("prod").send().await.unwrap();
    // upstream moved into a VPC.
    let (subnets, groups) = default_network().await;
    lambda
        .update_function_configuration()
        .function_name(name("upstream"))
        .vpc_config(
            aws_sdk_lambda::types::VpcConfig::builder()
                .set_subnet_ids(Some(subnets))
                .set_security_group_ids(Some(vec![groups[0].clone()]))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A column of the table dropped.
    stack.db().await.batch_execute("ALTER TABLE records DROP COLUMN latency_ms").await.unwrap();

    let plan = stack.plan();
    assert_eq!(plan["mutating_calls"], json!([]), "plan made a mutating call: {plan:#}");
    assert_reports(&plan, "api-invokes-upstream", "source_arn");
    assert_reports(&plan, "events-to-midstream", "enabled");
    assert_reports(&plan, "upstream-role", "other_inline_policies");
    assert_reports(&plan, "midstream-role", "statements");
    assert_reports(&plan, "midstream-role", "managed_policy_arns");
    assert_reports(&plan, "downstream-role", "service");
    assert_reports(&plan, "api", "serves_last_deployment");
    assert_reports(&plan, "upstream", "vpc");
    assert_reports(&plan, "schema", "columns");
    for drifted in plan["drift"].as_array().unwrap() {
        assert!(drifted["drift"].as_str().unwrap().contains("changed outside provision"), "{drifted:#}");
    }

    stack.up();
    assert_eq!(stack.up()["changes"], json!([]), "one up repaired everything");
    let policies = iam.list_role_policies().role_name(name("upstream-role")).send().await.unwrap();
    assert_eq!(policies.policy_names(), ["pipeline-least-privilege"], "the extra policy is gone");
    let attached = iam.list_attached_role_policies().role_name(name("midstream-role")).send().await.unwrap();
    assert!(attached.attached_policies().is_empty(), "the managed policy is detached");
    let mapping_state = lambda.get_event_source_mapping().uuid(&mapping).send().await.unwrap();
    assert_eq!(mapping_state.state(), Some("Enabled"), "the mapping is enabled again");
    assert_pipeline_delivers(&stack, "after-drift").await;
    stack.down();
}

#[tokio::test]
async fn an_update_that_gives_the_table_stream_a_new_arn_converges_in_one_up() {
    let mut stack = TestStack::new("newarn");
    stack.up();
    let cloud = cloud().await;
    let table = format!("{}-records", stack.name);
    let old_arn = stack.output("records", "stream_arn");
    cloud
        .dynamodb
        .update_table()
        .table_name(&table)
        .stream_specification(StreamSpecification::builder().stream_enabled(false).build().unwrap())
        .send()
        .await
        .unwrap();

    let plan = stack.plan();
    assert_reports(&plan, "records", "stream_view_type");
    for dependent in ["records-to-downstream", "downstream-role"] {
        assert!(change(&plan, dependent).is_some(), "`{dependent}` is planned as known after apply: {plan:#}");
    }
    stack.up();
    let new_arn = stack.output("records", "stream_arn");
    assert_ne!(new_arn, old_arn, "the stream was turned on again with a new ARN");
    let mapping =
        cloud.lambda.get_event_source_mapping().uuid(stack.output("records-to-downstream", "uuid")).send().await;
    assert_eq!(mapping.unwrap().event_source_arn(), Some(new_arn.as_str()), "the mapping follows in the same run");
    assert_eq!(stack.up()["changes"], json!([]), "converged in one up");
    assert_pipeline_delivers(&stack, "after-new-arn").await;
    stack.down();
}

#[tokio::test]
async fn a_shard_change_goes_through_the_steps_aws_allows() {
    let mut stack = TestStack::new("shards");
    stack.up();
    let cloud = cloud().await;
    let stream = format!("{}-events", stack.name);
    let open_shards = || async {
        let summary = cloud.kinesis.describe_stream_summary().stream_name(&stream).send().await.unwrap();
        summary.stream_description_summary().unwrap().open_shard_count()
    };
    for (shards, steps) in [(4, 2), (1, 2)] {
        stack.set_settings(&json!({ "shard_count": shards }));
        let report = stack.up();
        assert_eq!(calls_of(&report, "UpdateShardCount"), steps, "{shards} shards in {steps} steps: {report:#}");
        assert_eq!(open_shards().await, shards);
        assert_eq!(stack.up()["changes"], json!([]));
    }
    assert_pipeline_delivers(&stack, "after-resharding").await;
    stack.down();
}
