//! Ownership on the local cloud: resources named as the stack would name them but made outside
//! provision are refused by `up`, left untouched (data included) by `up`, `plan` and `down`, and
//! taken over only on request (`--adopt`); a removed mark is drift, and `down` leaves a recorded
//! resource whose mark was removed.

mod support;

use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, ScalarAttributeType};
use provisioner::cloud::Cloud;
use serde_json::{json, Value};
use support::*;

/// The ids of the stack's taggable resources, and their names with the stack's prefix.
const TAGGABLE: [(&str, &str); 11] = [
    ("events", "events"),
    ("dead-letters", "dead-letters"),
    ("records", "records"),
    ("upstream-role", "upstream-role"),
    ("upstream", "upstream"),
    ("api", "api"),
    ("database", "db"),
    ("db-subnets", "db-subnets"),
    ("archive", "archive-000000000000-us-east-1"),
    ("archive-role", "archive-role"),
    ("archive-delivery", "archive"),
];

/// Makes one resource of each taggable kind under the stack's names, outside provision, with
/// data where the kind holds data. Returns the subnet ids the subnet group uses.
async fn make_foreign_resources(cloud: &Cloud, stack: &str) {
    let name = |suffix: &str| format!("{stack}-{suffix}");
    cloud.kinesis.create_stream().stream_name(name("events")).shard_count(1).send().await.unwrap();
    assert!(
        eventually(std::time::Duration::from_secs(30), || async {
            let summary = cloud.kinesis.describe_stream_summary().stream_name(name("events")).send().await.unwrap();
            summary.stream_description_summary().unwrap().stream_status().as_str() == "ACTIVE"
        })
        .await
    );
    put_on_stream(cloud, &name("events"), "k", b"someone else's record").await;

    let queue = cloud.sqs.create_queue().queue_name(name("dead-letters")).send().await.unwrap();
    cloud
        .sqs
        .send_message()
        .queue_url(queue.queue_url().unwrap())
        .message_body("someone else's message")
        .send()
        .await
        .unwrap();

    cloud
        .dynamodb
        .create_table()
        .table_name(name("records"))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .unwrap();
    cloud
        .dynamodb
        .put_item()
        .table_name(name("records"))
        .item("id", AttributeValue::S("someone else's item".into()))
        .send()
        .await
        .unwrap();

    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = cloud
        .iam
        .create_role()
        .role_name(name("upstream-role"))
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let zip = provisioner::artifact::zip_bootstrap(b"#!/bin/sh\necho someone else's function\n").unwrap();
    cloud
        .lambda
        .create_function()
        .function_name(name("upstream"))
        .role(role.role().unwrap().arn())
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder().zip_file(aws_sdk_lambda::primitives::Blob::new(zip)).build(),
        )
        .send()
        .await
        .unwrap();
    cloud.apigateway.create_rest_api().name(name("api")).send().await.unwrap();
    cloud
        .rds
        .create_db_instance()
        .db_instance_identifier(name("db"))
        .engine("postgres")
        .db_instance_class("db.t4g.micro")
        .allocated_storage(20)
        .master_username("someone")
        .master_user_password("someone-else-secret")
        .port(PG_PORT as i32)
        .send()
        .await
        .unwrap();
    let bucket = name("archive-000000000000-us-east-1");
    cloud.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    cloud
        .s3
        .put_object()
        .bucket(&bucket)
        .key("theirs.json")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
        .send()
        .await
        .unwrap();
    let firehose_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let archive_role = cloud
        .iam
        .create_role()
        .role_name(name("archive-role"))
        .assume_role_policy_document(firehose_trust.to_string())
        .send()
        .await
        .unwrap();
    let stream_arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{}", name("events"));
    cloud
        .firehose
        .create_delivery_stream()
        .delivery_stream_name(name("archive"))
        .delivery_stream_type(aws_sdk_firehose::types::DeliveryStreamType::KinesisStreamAsSource)
        .kinesis_stream_source_configuration(
            aws_sdk_firehose::types::KinesisStreamSourceConfiguration::builder()
                .kinesis_stream_arn(stream_arn)
                .role_arn(archive_role.role().unwrap().arn())
                .build()
                .unwrap(),
        )
        .extended_s3_destination_configuration(
            aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                .role_arn(archive_role.role().unwrap().arn())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (subnets, _) = default_network().await;
    cloud
        .rds
        .create_db_subnet_group()
        .db_subnet_group_name(name("db-subnets"))
        .db_subnet_group_description("someone else's")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .unwrap();
}

/// The data the foreign resources hold: stream records, queue messages visible, table items.
async fn foreign_data(cloud: &Cloud, stack: &str) -> (usize, String, i32) {
    let name = |suffix: &str| format!("{stack}-{suffix}");
    let records = stream_records(cloud, &name("events")).await.len();
    let url = cloud.sqs.get_queue_url().queue_name(name("dead-letters")).send().await.unwrap();
    let attributes = cloud
        .sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().unwrap())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let messages = attributes.attributes().unwrap().values().next().cloned().unwrap_or_default();
    let items = cloud.dynamodb.scan().table_name(name("records")).send().await.unwrap().count();
    (records, messages, items)
}

/// The stack's settings with the emulator's default network, so the DB subnet group is declared.
async fn network_settings() -> Value {
    let (subnets, groups) = default_network().await;
    json!({ "network": {
        "subnet_ids": subnets,
        "function_security_group_ids": [groups[0]],
        "db_security_group_ids": [groups[0]],
    }})
}

#[tokio::test]
async fn foreign_resources_are_refused_left_untouched_and_taken_over_only_on_request() {
    let mut stack = TestStack::new("own");
    let settings = network_settings().await;
    stack.set_settings(&settings);
    let cloud = cloud().await;
    make_foreign_resources(&cloud, &stack.name).await;
    let before = resources_named(&cloud, &stack.name).await;
    let data = foreign_data(&cloud, &stack.name).await;
    assert_eq!(data, (1, "1".to_string(), 1), "the foreign resources hold their data");

    // `up` and `plan` refuse before any change, naming each resource and the way to take it over.
    for command in [&["up", "--yes"][..], &["plan"][..]] {
        let out = stack.provision(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?} must refuse foreign resources: {stderr}");
        assert!(stderr.contains("Nothing was changed"), "{stderr}");
        for (id, suffix) in TAGGABLE {
            assert!(stderr.contains(&format!("`{id}`")), "{command:?} does not name `{id}`: {stderr}");
            assert!(stderr.contains(&format!("{}-{suffix}", stack.name)), "{stderr}");
            assert!(stderr.contains(&format!("--adopt {id}")), "{stderr}");
        }
    }
    assert_eq!(resources_named(&cloud, &stack.name).await, before, "nothing was created or deleted");
    assert!(!stack.state_file().exists(), "a refused up records nothing");

    // `down` deletes nothing it does not own, and says what it left.
    let out = stack.provision(&["down", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Left untouched (11)"), "{stderr}");
    assert_eq!(resources_named(&cloud, &stack.name).await, before, "down deleted nothing");
    assert_eq!(foreign_data(&cloud, &stack.name).await, data, "the data is untouched");

    // Taken over on request: they get the mark, converge, and a second up has nothing to do.
    let mut adopt = vec!["--json", "up", "--yes"];
    for (id, _) in TAGGABLE {
        adopt.extend(["--adopt", id]);
    }
    let applied: Value = serde_json::from_str(&stack.ok(&adopt)).unwrap();
    let notes = applied["notes"].to_string();
    for (id, _) in TAGGABLE {
        assert!(notes.contains(&format!("`{id}`")) && notes.contains("--adopt"), "{notes}");
    }
    assert_exactly_one_of_everything(&stack).await;
    assert_eq!(foreign_data(&cloud, &stack.name).await.0, 1, "the adopted stream kept its record");
    let tags = cloud.kinesis.list_tags_for_stream().stream_name(format!("{}-events", stack.name)).send().await.unwrap();
    assert!(
        tags.tags().iter().any(|t| t.key() == "provision:stack" && t.value() == Some(stack.name.as_str())),
        "the adopted stream carries the mark: {tags:?}"
    );
    assert_eq!(stack.up()["changes"], json!([]));

    // A removed mark is drift: reported by plan (which changes nothing), repaired by up.
    cloud
        .kinesis
        .remove_tags_from_stream()
        .stream_name(format!("{}-events", stack.name))
        .tag_keys("provision:stack")
        .tag_keys("provision:origin")
        .send()
        .await
        .unwrap();
    let plan = stack.plan();
    assert_eq!(actions(&plan).get("events").map(String::as_str), Some("update"), "{plan:#}");
    assert!(plan["drift"].to_string().contains("tags"), "the removed mark is drift: {plan:#}");
    assert_eq!(plan["mutating_calls"], json!([]), "plan made a mutating call: {plan:#}");
    stack.up();
    assert_eq!(stack.up()["changes"], json!([]), "the mark was written again");

    // A recorded resource now marked by another checkout is theirs: refused, and taken back only
    // on request.
    cloud
        .kinesis
        .add_tags_to_stream()
        .stream_name(format!("{}-events", stack.name))
        .tags("provision:origin", "another-checkout")
        .send()
        .await
        .unwrap();
    let out = stack.provision(&["up", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("`events`") && stderr.contains("another checkout"), "{stderr}");
    stack.ok(&["up", "--yes", "--adopt", "events"]);
    assert_eq!(stack.up()["changes"], json!([]), "taken back with --adopt");

    // `down` leaves a recorded resource whose mark was removed, and says so.
    let queue_url = stack.output("dead-letters", "url");
    cloud.sqs.untag_queue().queue_url(&queue_url).tag_keys("provision:stack").send().await.unwrap();
    let out = stack.provision(&["down", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("`dead-letters`") && stderr.contains("mark was removed"), "{stderr}");
    let left = resources_named(&cloud, &stack.name).await;
    assert_eq!(left, vec![format!("queue {queue_url}")], "only the unmarked queue is left");
    cloud.sqs.delete_queue().queue_url(&queue_url).send().await.unwrap();
    stack.down();
}
