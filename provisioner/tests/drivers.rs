//! Each driver on its own, against both emulators, in the shape of Terraform's acceptance
//! tests: create (with the mark), read equals the declaration, found by name, update in place,
//! drift made out of band is seen and repaired, delete, delete again. MiniStack runs every kind;
//! LocalStack Community runs the kinds it serves here, and the test names the ones it cannot
//! (Lambda needs Docker, DynamoDB a Java download, RDS a Pro license). LocalStack must be running
//! (`scripts/local-cloud localstack start`; `scripts/test` does it).
//!
//! Also against LocalStack: `up` without a `database` setting changes nothing and names the
//! setting to add.

mod support;

use provisioner::aws::{self, Cx, Kind, Recorded};
use provisioner::cloud::Cloud;
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use support::*;

/// What LocalStack Community cannot serve on these machines, named in the test output.
const LOCALSTACK_CANNOT: &str = "Lambda functions, mappings and permissions (Lambda needs Docker), DynamoDB tables \
    (DynamoDB Local is a Java download), Firehose delivery streams with a Kinesis source (its Kinesis reader is a Java \
    download), RDS instances and DB subnet groups (a Pro feature)";

/// The mark a stack `owner` writes.
fn mark(owner: &str) -> Value {
    json!({ "provision:stack": owner, "provision:origin": "driver-test" })
}

type Drift<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One kind's test: its declared properties, one updatable field with a new value, and a change
/// made out of band with the field it shows up in.
struct Case {
    kind: Kind,
    props: Value,
    update: (&'static str, Value),
    drift: for<'a> fn(&'a Cloud, &'a Value) -> Drift<'a>,
    drift_field: &'static str,
}

/// The declared fields whose observed value differs (numbers compared by value). A declared
/// field the read does not report at all counts as differing: a driver that forgets to read a
/// field must not pass "read after create", "updated in place" and "repaired" by default.
fn differences(declared: &Value, observed: &Value) -> Vec<String> {
    let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    declared
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, value)| observed.get(key.as_str()).is_none_or(|seen| !same(seen, value)))
        .map(|(key, _)| key.clone())
        .collect()
}

async fn lifecycle(cloud: &Cloud, where_: &str, case: Case) {
    let driver = aws::registry().driver(case.kind).unwrap();
    let label = format!("{} on {where_}", driver.label());
    let cx = Cx { cloud, id: "under-test", may_adopt: false };
    let outputs = driver.create(&cx, &case.props).await.unwrap_or_else(|e| panic!("{label}: create: {e:#}"));
    let mut recorded = Recorded { props: case.props.clone(), outputs };

    let observed = driver.read(&cx, &recorded).await.unwrap().unwrap_or_else(|| panic!("{label}: created, not read"));
    assert_eq!(differences(&case.props, &observed.props), Vec::<String>::new(), "{label}: read after create");
    assert_eq!(observed.props["tags"], case.props["tags"], "{label}: the mark is written");
    let found = driver.lookup(&cx, &case.props).await.unwrap();
    assert!(found.is_some_and(|f| f.props["tags"] == case.props["tags"]), "{label}: found by name with its mark");

    let (field, value) = case.update;
    let mut updated = case.props.clone();
    updated[field] = value;
    recorded.outputs = driver.update(&cx, &updated, &recorded, &[field.to_string()]).await.unwrap();
    recorded.props = updated.clone();
    let observed = driver.read(&cx, &recorded).await.unwrap().unwrap();
    assert_eq!(differences(&updated, &observed.props), Vec::<String>::new(), "{label}: `{field}` updated in place");

    (case.drift)(cloud, &Value::Object(recorded.outputs.clone())).await;
    let observed = driver.read(&cx, &recorded).await.unwrap().unwrap();
    assert!(differences(&updated, &observed.props).contains(&case.drift_field.to_string()), "{label}: drift is seen");
    recorded.outputs = driver.update(&cx, &updated, &recorded, &differences(&updated, &observed.props)).await.unwrap();
    let observed = driver.read(&cx, &recorded).await.unwrap().unwrap();
    assert_eq!(differences(&updated, &observed.props), Vec::<String>::new(), "{label}: drift repaired");

    driver.delete(&cx, &recorded).await.unwrap_or_else(|e| panic!("{label}: delete: {e:#}"));
    assert!(driver.read(&cx, &recorded).await.unwrap().is_none(), "{label}: gone after delete");
    driver.delete(&cx, &recorded).await.unwrap_or_else(|e| panic!("{label}: a second delete must succeed: {e:#}"));
}

/// A route in the REST API's declared shape, answered by the function `driver-test-<function>`.
fn route(method: &str, path: &str, function: &str) -> Value {
    json!({
        "method": method,
        "path": path,
        "function_arn": format!("arn:aws:lambda:us-east-1:000000000000:function:driver-test-{function}"),
        "authorization": "NONE",
        "api_key_required": false,
    })
}

/// The cases for every kind LocalStack serves, with names unique to `owner`.
fn cases(owner: &str) -> Vec<Case> {
    let name = |suffix: &str| format!("{owner}-{suffix}");
    vec![
        Case {
            kind: aws::sqs_queue::KIND,
            props: json!({ "name": name("queue"), "retention_seconds": 1209600, "tags": mark(owner) }),
            update: ("retention_seconds", json!(3600)),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let url = outputs["url"].as_str().unwrap();
                    cloud.sqs.untag_queue().queue_url(url).tag_keys("provision:stack").send().await.unwrap();
                })
            },
            drift_field: "tags",
        },
        Case {
            kind: aws::kinesis_stream::KIND,
            props: json!({ "name": name("stream"), "shard_count": 1, "tags": mark(owner) }),
            update: ("shard_count", json!(2)),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let stream = outputs["name"].as_str().unwrap();
                    cloud
                        .kinesis
                        .remove_tags_from_stream()
                        .stream_name(stream)
                        .tag_keys("provision:origin")
                        .send()
                        .await
                        .unwrap();
                })
            },
            drift_field: "tags",
        },
        Case {
            kind: aws::iam_role::KIND,
            props: json!({
                "name": name("role"),
                "service": "lambda.amazonaws.com",
                "statements": [{ "actions": ["sqs:SendMessage"], "resources": ["*"] }],
                "other_inline_policies": [],
                "managed_policy_arns": [],
                "tags": mark(owner),
            }),
            update: ("statements", json!([{ "actions": ["sqs:SendMessage", "sqs:GetQueueUrl"], "resources": ["*"] }])),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let role = outputs["name"].as_str().unwrap();
                    let everything = json!({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
                    cloud
                        .iam
                        .put_role_policy()
                        .role_name(role)
                        .policy_name("extra")
                        .policy_document(everything.to_string())
                        .send()
                        .await
                        .unwrap();
                })
            },
            drift_field: "other_inline_policies",
        },
        Case {
            kind: aws::rest_api::KIND,
            props: json!({
                "name": name("api"),
                "stage": "prod",
                "routes": [route("POST", "/", "a")],
                "serves_last_deployment": true,
                "tags": mark(owner),
            }),
            // A second route on a path with a parameter: resources created, a method kept.
            update: ("routes", json!([route("POST", "/", "b"), route("GET", "/items/{id}", "a")])),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let id = outputs["id"].as_str().unwrap();
                    cloud.apigateway.create_deployment().rest_api_id(id).stage_name("prod").send().await.unwrap();
                })
            },
            drift_field: "serves_last_deployment",
        },
        Case {
            kind: aws::s3_bucket::KIND,
            props: json!({
                "name": name("bucket"),
                "expire_after_days": null,
                "public_access_blocked": true,
                "encrypted": true,
                "tags": mark(owner),
            }),
            update: ("expire_after_days", json!(7)),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let bucket = outputs["name"].as_str().unwrap();
                    cloud.s3.delete_public_access_block().bucket(bucket).send().await.unwrap();
                })
            },
            drift_field: "public_access_blocked",
        },
        Case {
            kind: aws::log_group::KIND,
            props: json!({ "name": format!("/aws/lambda/{owner}-fn"), "retention_days": 14, "marked": true,
                "tags": mark(owner) }),
            update: ("retention_days", json!(30)),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let arn = outputs["arn"].as_str().unwrap();
                    cloud.logs.untag_resource().resource_arn(arn).tag_keys("provision:stack").send().await.unwrap();
                })
            },
            drift_field: "tags",
        },
        Case {
            kind: aws::api_key::KIND,
            props: json!({ "name": name("key"), "tags": mark(owner) }),
            update: ("tags", json!({ "provision:stack": owner, "provision:origin": "driver-test-moved" })),
            drift: |cloud, outputs| {
                Box::pin(async move {
                    let id = outputs["id"].as_str().unwrap();
                    let arn = format!("arn:aws:apigateway:us-east-1::/apikeys/{id}");
                    cloud
                        .apigateway
                        .tag_resource()
                        .resource_arn(arn)
                        .tags("provision:stack", "someone-else")
                        .send()
                        .await
                        .unwrap();
                })
            },
            drift_field: "tags",
        },
    ]
}

/// The Firehose delivery stream's case: it reads a stream and writes a bucket with a role, which
/// are made first (through their own drivers) and removed after.
async fn firehose_lifecycle(cloud: &Cloud, where_: &str, owner: &str) {
    let cx = Cx { cloud, id: "firehose-deps", may_adopt: false };
    let registry = aws::registry();
    let stream = json!({ "name": format!("{owner}-source"), "shard_count": 1, "tags": mark(owner) });
    let bucket = json!({ "name": format!("{owner}-sink"), "expire_after_days": null, "public_access_blocked": true,
        "encrypted": true, "tags": mark(owner) });
    let role = json!({ "name": format!("{owner}-firehose"), "service": "firehose.amazonaws.com",
        "statements": [{ "actions": ["kinesis:GetRecords", "s3:PutObject"], "resources": ["*"] }],
        "other_inline_policies": [], "managed_policy_arns": [], "tags": mark(owner) });
    let mut made = Vec::new();
    for (kind, props) in
        [(aws::kinesis_stream::KIND, &stream), (aws::s3_bucket::KIND, &bucket), (aws::iam_role::KIND, &role)]
    {
        let outputs = registry.driver(kind).unwrap().create(&cx, props).await.unwrap();
        made.push((kind, Recorded { props: props.clone(), outputs }));
    }
    let arn = |i: usize| made[i].1.outputs["arn"].clone();
    let case = Case {
        kind: aws::firehose_delivery_stream::KIND,
        props: json!({
            "name": format!("{owner}-delivery"),
            "source_stream_arn": arn(0),
            "source_role_arn": arn(2),
            "bucket_arn": arn(1),
            "role_arn": arn(2),
            "prefix": "records/year=!{timestamp:yyyy}/",
            "error_prefix": "errors/!{firehose:error-output-type}/",
            "buffer_size_mb": 5,
            "buffer_interval_s": 60,
            "compression": "UNCOMPRESSED",
            "tags": mark(owner),
        }),
        update: ("buffer_interval_s", json!(120)),
        drift: |cloud, outputs| {
            Box::pin(async move {
                let name = outputs["name"].as_str().unwrap();
                let stream = cloud.firehose.describe_delivery_stream().delivery_stream_name(name).send().await.unwrap();
                let stream = stream.delivery_stream_description.unwrap();
                cloud
                    .firehose
                    .update_destination()
                    .delivery_stream_name(name)
                    .current_delivery_stream_version_id(stream.version_id())
                    .destination_id(stream.destinations()[0].destination_id())
                    .extended_s3_destination_update(
                        aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder().prefix("elsewhere/").build(),
                    )
                    .send()
                    .await
                    .unwrap();
            })
        },
        drift_field: "prefix",
    };
    lifecycle(cloud, where_, case).await;
    for (kind, recorded) in made.iter().rev() {
        registry.driver(*kind).unwrap().delete(&cx, recorded).await.unwrap();
    }
}

#[tokio::test]
async fn every_driver_localstack_serves_works_on_localstack_and_on_ministack() {
    require_local_cloud();
    require_localstack();
    eprintln!("LocalStack Community cannot serve here: {LOCALSTACK_CANNOT}; those drivers are tested on MiniStack");
    for (where_, url) in [("LocalStack", LOCALSTACK), ("MiniStack", ENDPOINT)] {
        let cloud = cloud_at(url).await;
        let owner = format!("drv{}{}", where_.to_lowercase().chars().next().unwrap(), std::process::id());
        for case in cases(&owner) {
            lifecycle(&cloud, where_, case).await;
        }
        if where_ == "MiniStack" {
            firehose_lifecycle(&cloud, where_, &owner).await;
        }
    }
}

#[tokio::test]
async fn a_bucket_whose_encryption_is_removed_is_drift_on_localstack() {
    // MiniStack always answers GetBucketEncryption with SSE-S3, so only LocalStack shows this.
    require_localstack();
    let cloud = cloud_at(LOCALSTACK).await;
    let owner = format!("drvenc{}", std::process::id());
    let props = json!({ "name": format!("{owner}-bucket"), "expire_after_days": null, "public_access_blocked": true,
        "encrypted": true, "tags": mark(&owner) });
    let driver = aws::registry().driver(aws::s3_bucket::KIND).unwrap();
    let cx = Cx { cloud: &cloud, id: "encryption", may_adopt: false };
    let recorded = Recorded { props: props.clone(), outputs: driver.create(&cx, &props).await.unwrap() };
    cloud.s3.delete_bucket_encryption().bucket(format!("{owner}-bucket")).send().await.unwrap();
    let observed = driver.read(&cx, &recorded).await.unwrap().unwrap();
    assert_eq!(observed.props["encrypted"], json!(false), "the removed encryption is seen");
    driver.update(&cx, &props, &recorded, &["encrypted".to_string()]).await.unwrap();
    let repaired = driver.read(&cx, &recorded).await.unwrap().unwrap();
    assert_eq!(repaired.props["encrypted"], json!(true), "encryption repaired");
    driver.delete(&cx, &recorded).await.unwrap();
}

#[tokio::test]
async fn on_localstack_without_a_database_setting_up_changes_nothing_and_names_the_setting() {
    require_localstack();
    let mut stack = TestStack::new("lsdb");
    let out = stack.command(&["up", "--yes"]).env("AWS_ENDPOINT_URL", LOCALSTACK).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("LocalStack") && stderr.contains("rds, for database"), "{stderr}");
    assert!(stderr.contains("\"database\": { \"url\":") && stderr.contains("Nothing was changed"), "{stderr}");

    let localstack = cloud_at(LOCALSTACK).await;
    let prefix = format!("{}-", stack.name);
    let queues = localstack.sqs.list_queues().queue_name_prefix(&prefix).send().await.unwrap();
    let roles = localstack.iam.list_roles().send().await.unwrap();
    let streams = localstack.kinesis.list_streams().send().await.unwrap();
    let apis = localstack.apigateway.get_rest_apis().send().await.unwrap();
    assert!(queues.queue_urls().is_empty(), "no queue made");
    assert!(!roles.roles().iter().any(|r| r.role_name().starts_with(&prefix)), "no role made");
    assert!(!streams.stream_names().iter().any(|s| s.starts_with(&prefix)), "no stream made");
    assert!(!apis.items().iter().any(|a| a.name().is_some_and(|n| n.starts_with(&prefix))), "no API made");
    stack.down();
}

#[tokio::test]
async fn a_third_mode_switch_within_a_day_is_refused_on_localstack() {
    // MiniStack does not implement UpdateStreamMode; LocalStack's Kinesis (kinesis-mock) does.
    require_localstack();
    let cloud = cloud_at(LOCALSTACK).await;
    let owner = format!("drvmode{}", std::process::id());
    let name = format!("{owner}-events");
    let driver = aws::registry().driver(aws::kinesis_stream::KIND).unwrap();
    let cx = Cx { cloud: &cloud, id: "events", may_adopt: false };
    let spec = |mode: &str, shards: Option<i32>| json!({ "name": name, "mode": mode, "shard_count": shards, "tags": mark(&owner) });
    let on_demand = spec("ON_DEMAND", None);
    let mut recorded = Recorded { props: on_demand.clone(), outputs: driver.create(&cx, &on_demand).await.unwrap() };
    let observed = driver.read(&cx, &recorded).await.unwrap().unwrap();
    assert_eq!((&observed.props["mode"], &observed.props["shard_count"]), (&json!("ON_DEMAND"), &Value::Null));

    let fields = ["mode".to_string(), "shard_count".to_string()];
    for (mode, shards) in [("PROVISIONED", Some(1)), ("ON_DEMAND", None)] {
        let props = spec(mode, shards);
        recorded.outputs = driver.update(&cx, &props, &recorded, &fields).await.unwrap();
        recorded.props = props;
        let observed = driver.read(&cx, &recorded).await.unwrap().unwrap();
        assert_eq!(observed.props["mode"], json!(mode), "switched to {mode}");
    }
    let third = driver.update(&cx, &spec("PROVISIONED", Some(1)), &recorded, &fields).await.unwrap_err();
    let said = format!("{third:#}");
    assert!(said.contains("AWS allows 2") && said.contains("next switch is possible at"), "{said}");
    assert_eq!(driver.read(&cx, &recorded).await.unwrap().unwrap().props["mode"], json!("ON_DEMAND"), "unchanged");
    driver.delete(&cx, &recorded).await.unwrap();
}
