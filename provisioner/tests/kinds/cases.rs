//! One case per resource kind: how to declare it (with what it needs), the update steps, and how
//! the test's own clients read it back (`inspect`, in the kind's property shape) and delete it
//! out of band (`destroy`). `inspect` answers `None` only for "not found"; any other error fails.

use crate::IT;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use base64::Engine as _;
use futures::future::BoxFuture;
use provisioner::aws;
use provisioner::cloud::Cloud;
use provisioner::engine::declare::{Declared, StackDef};
use provisioner::engine::driver::{Kind, Outputs};
use provisioner::engine::input;
use serde_json::{json, Map, Value};
use sha2::Digest;
use std::path::PathBuf;

/// Reads the resource as the cloud holds it, in its kind's property shape (`None`: not found).
pub type Inspect = for<'a> fn(&'a Cloud, &'a Value, &'a Outputs) -> BoxFuture<'a, Option<Value>>;
/// Deletes the resource out of band.
pub type Destroy = for<'a> fn(&'a Cloud, &'a Value, &'a Outputs) -> BoxFuture<'a, ()>;

/// One kind's acceptance test.
pub struct Case {
    pub kind: Kind,
    /// Why LocalStack Community does not run this case here (`None`: it does).
    pub not_on_localstack: Option<&'static str>,
    /// Declares the resource as [`IT`], after what it needs.
    pub declare: fn(&mut StackDef, &Env),
    /// The update steps, in order.
    pub updates: fn(&Env) -> Vec<Step>,
    /// Updatable properties no step changes, each with the reason.
    pub not_updated: &'static [(&'static str, &'static str)],
    /// Declared properties no client can read back: `(property, the emulator that does not report
    /// it or "" for none, why)`.
    pub unobservable: &'static [(&'static str, &'static str, &'static str)],
    pub inspect: Inspect,
    pub destroy: Destroy,
}

/// What a stack's declaration may need: its name, a folder for files, the emulator's network.
pub struct Env {
    pub stack: String,
    pub dir: PathBuf,
    /// The default VPC's subnets (at least two) and security groups.
    pub network: (Vec<String>, Vec<String>),
    /// A managed policy the test made in the account, to attach.
    pub policy_arn: String,
}

impl Env {
    /// `<stack>-<suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.stack)
    }

    /// A function zip whose bootstrap prints `variant`, written to the stack's folder: its path
    /// and its base64 SHA-256 (what Lambda reports).
    pub fn zip(&self, variant: &str) -> (String, String) {
        let zip = provisioner::artifact::zip_bootstrap(format!("#!/bin/sh\necho {variant}\n").as_bytes()).unwrap();
        let path = self.dir.join(format!("{variant}.zip"));
        std::fs::create_dir_all(&self.dir).unwrap();
        std::fs::write(&path, &zip).unwrap();
        let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&zip));
        (path.display().to_string(), sha)
    }

    /// An environment for checks that declare without running anything.
    fn placeholder() -> Self {
        Env {
            stack: "placeholder".into(),
            dir: std::env::temp_dir().join("kinds-placeholder"),
            network: (vec!["subnet-a".into(), "subnet-b".into()], vec!["sg-a".into()]),
            policy_arn: "arn:aws:iam::000000000000:policy/placeholder".into(),
        }
    }
}

/// One update: new values for one or more properties of [`IT`] (some only change together).
pub struct Step {
    pub set: Value,
    /// The emulator that cannot apply it, and why (it runs on the others).
    pub not_on: Option<(&'static str, &'static str)>,
}

impl Step {
    fn new(set: Value) -> Self {
        Step { set, not_on: None }
    }

    /// The properties it changes.
    pub fn fields(&self) -> Vec<&str> {
        self.set.as_object().unwrap().keys().map(String::as_str).collect()
    }

    pub fn describe(&self) -> String {
        format!("`{}`", self.fields().join("` and `"))
    }

    /// Whether it runs on `where_`; says so when it does not.
    pub fn runs_on(&self, where_: &str) -> bool {
        match self.not_on {
            Some((emulator, why)) if emulator == where_ => {
                eprintln!("  {} not changed on {where_}: {why}", self.describe());
                false
            }
            _ => true,
        }
    }

    /// Sets the new values on [`IT`] in `def`; returns the properties set.
    pub fn apply_to(&self, def: &mut StackDef) -> Vec<String> {
        let it = def.resources.iter_mut().find(|r| r.id == IT).unwrap();
        for (field, value) in self.set.as_object().unwrap() {
            it.props[field] = value.clone();
        }
        it.deps = input::references(&it.props);
        self.fields().into_iter().map(String::from).collect()
    }
}

/// The update steps of `case`, for checks that run nothing.
pub fn steps_of(case: &Case) -> Vec<Step> {
    (case.updates)(&Env::placeholder())
}

/// Declares resource `id` of `kind` with raw properties (references as `{"$ref": "id.output"}`).
fn add(def: &mut StackDef, id: &str, kind: Kind, props: Value) {
    let deps = input::references(&props);
    def.resources.push(Declared { id: id.into(), kind, props, deps, managed: Vec::new() });
}

/// A reference to output `output` of resource `id`.
fn r(id: &str, output: &str) -> Value {
    json!({ "$ref": format!("{id}.{output}") })
}

/// A role for `service` as `id`.
fn role(def: &mut StackDef, env: &Env, id: &str, service: &str) {
    let props = json!({ "name": env.name(id), "service": service,
        "statements": [{ "actions": ["s3:PutObject", "kinesis:GetRecords"], "resources": ["*"] }],
        "other_inline_policies": [], "managed_policy_arns": [] });
    add(def, id, aws::iam_role::KIND, props);
}

/// A function as `id`, run by a role of its own.
fn function(def: &mut StackDef, env: &Env, id: &str) {
    role(def, env, &format!("{id}-role"), "lambda.amazonaws.com");
    add(def, id, aws::lambda_function::KIND, function_props(env, id, &format!("{id}-role")));
}

fn function_props(env: &Env, id: &str, role: &str) -> Value {
    let (zip_path, code_sha256) = env.zip(id);
    json!({ "name": env.name(id), "binary": id, "role_arn": r(role, "arn"), "runtime": "provided.al2023",
        "handler": "bootstrap", "architecture": "x86_64", "memory_mb": 128, "timeout_s": 3, "environment": {},
        "zip_path": zip_path, "code_sha256": code_sha256, "vpc": null })
}

/// A REST API as `id` whose routes name functions that need not exist.
fn api_props(env: &Env, routes: Value) -> Value {
    json!({ "name": env.name("api"), "stage": "prod", "routes": routes, "serves_last_deployment": true, "throttle": null })
}

fn route(method: &str, path: &str, function: &str) -> Value {
    json!({ "method": method, "path": path,
        "function_arn": format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
        "authorization": "NONE", "api_key_required": false })
}

/// The `provision:` tags among `tags`, as the mark's JSON object.
fn marks<K: AsRef<str>, V: AsRef<str>>(tags: impl IntoIterator<Item = (K, V)>) -> Value {
    Value::Object(
        tags.into_iter()
            .filter(|(k, _)| k.as_ref().starts_with("provision:"))
            .map(|(k, v)| (k.as_ref().to_string(), json!(v.as_ref())))
            .collect::<Map<String, Value>>(),
    )
}

/// `Some` of an answer, `None` when the service says the resource is not there (one of
/// `codes`); any other failure fails the test.
fn found<T, E, R>(answer: Result<T, SdkError<E, R>>, codes: &[&str]) -> Option<T>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match answer {
        Ok(value) => Some(value),
        Err(err) => match err.as_service_error().and_then(ProvideErrorMetadata::code) {
            Some(code) if codes.contains(&code) => None,
            _ => panic!("our own client failed: {err:?}"),
        },
    }
}

/// A string property of `props`.
fn s<'a>(props: &'a Value, key: &str) -> &'a str {
    props[key].as_str().unwrap_or_else(|| panic!("`{key}` is a string in {props}"))
}

/// An output of `outputs`.
fn o<'a>(outputs: &'a Outputs, key: &str) -> &'a str {
    outputs.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("output `{key}` in {outputs:?}"))
}

/// A JSON document as IAM returns it (URL-encoded on AWS, plain on some emulators).
fn policy_document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::from_str(&percent_decode(text)).unwrap())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A value that may be one string or a list of them, as a list.
fn list(value: &Value) -> Value {
    match value {
        Value::String(_) => json!([value]),
        other => other.clone(),
    }
}

/// Every case, one per kind.
pub fn all() -> Vec<Case> {
    vec![
        sqs_queue(),
        kinesis_stream(),
        kinesis_stream_consumer(),
        iam_role(),
        s3_bucket(),
        log_group(),
        api_key(),
        sns_topic(),
        rest_api(),
        usage_plan(),
        cloudwatch_alarm(),
        dynamodb_table(),
        lambda_function(),
        lambda_permission(),
        sns_subscription(),
        event_source_mapping(),
        sqs_event_source_mapping(),
        firehose_delivery_stream(),
        rds_subnet_group(),
        rds_instance(),
        postgres_schema(),
    ]
}

const NEEDS_LAMBDA: Option<&str> = Some("it needs a Lambda function, and LocalStack's Lambda needs Docker");

fn sqs_queue() -> Case {
    Case {
        kind: aws::sqs_queue::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            add(def, "dlq", aws::sqs_queue::KIND, json!({ "name": env.name("dlq"), "retention_seconds": 1209600 }));
            add(
                def,
                IT,
                aws::sqs_queue::KIND,
                json!({ "name": env.name("queue"), "retention_seconds": 345600, "visibility_timeout_s": 30 }),
            );
        },
        updates: |_| {
            vec![
                Step::new(json!({ "retention_seconds": 3600 })),
                Step::new(json!({ "visibility_timeout_s": 60 })),
                Step::new(json!({ "redrive": { "dead_letter_arn": r("dlq", "arn"), "max_receive_count": 5 } })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, _, outputs| {
            Box::pin(async move {
                let url = o(outputs, "url");
                let answer = cloud
                    .sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await;
                let attributes = found(answer, &["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"])?;
                let attributes = attributes.attributes().cloned().unwrap_or_default();
                let number = |name: &str| {
                    let key = aws_sdk_sqs::types::QueueAttributeName::from(name);
                    attributes.get(&key).map(|v| json!(v.parse::<u64>().unwrap()))
                };
                let redrive = attributes
                    .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
                    .map(|text| serde_json::from_str::<Value>(text).unwrap())
                    .map(|policy| {
                        let count = &policy["maxReceiveCount"];
                        json!({ "dead_letter_arn": policy["deadLetterTargetArn"],
                            "max_receive_count": count.as_u64().or_else(|| count.as_str()?.parse().ok()) })
                    });
                let tags = cloud.sqs.list_queue_tags().queue_url(url).send().await.unwrap();
                Some(json!({
                    "name": url.rsplit('/').next(),
                    "retention_seconds": number("MessageRetentionPeriod"),
                    "visibility_timeout_s": number("VisibilityTimeout"),
                    "redrive": redrive,
                    "tags": marks(tags.tags().cloned().unwrap_or_default()),
                }))
            })
        },
        destroy: |cloud, _, outputs| {
            Box::pin(async move {
                cloud.sqs.delete_queue().queue_url(o(outputs, "url")).send().await.unwrap();
            })
        },
    }
}

fn kinesis_stream() -> Case {
    Case {
        kind: aws::kinesis_stream::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            let props = json!({ "name": env.name("stream"), "mode": "PROVISIONED", "shard_count": 1 });
            add(def, IT, aws::kinesis_stream::KIND, props);
        },
        updates: |_| {
            vec![
                Step::new(json!({ "shard_count": 2 })),
                Step {
                    set: json!({ "mode": "ON_DEMAND", "shard_count": null }),
                    not_on: Some(("MiniStack", "MiniStack does not implement UpdateStreamMode")),
                },
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let answer = cloud.kinesis.describe_stream_summary().stream_name(name).send().await;
                let summary = found(answer, &["ResourceNotFoundException"])?.stream_description_summary?;
                if summary.stream_status().as_str() == "DELETING" {
                    return None;
                }
                let mode = summary.stream_mode_details().map_or("PROVISIONED", |m| m.stream_mode().as_str());
                let shards = (mode == "PROVISIONED").then(|| summary.open_shard_count());
                let tags = cloud.kinesis.list_tags_for_stream().stream_name(name).send().await.unwrap();
                Some(json!({
                    "name": summary.stream_name(),
                    "mode": mode,
                    "shard_count": shards,
                    "tags": marks(tags.tags().iter().map(|t| (t.key(), t.value().unwrap_or_default()))),
                }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                cloud.kinesis.delete_stream().stream_name(name).enforce_consumer_deletion(true).send().await.unwrap();
            })
        },
    }
}

fn kinesis_stream_consumer() -> Case {
    Case {
        kind: aws::kinesis_stream_consumer::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            add(def, "source", aws::kinesis_stream::KIND, json!({ "name": env.name("source"), "shard_count": 1 }));
            add(
                def,
                IT,
                aws::kinesis_stream_consumer::KIND,
                json!({ "name": "reader", "stream_arn": r("source", "arn") }),
            );
        },
        updates: |_| vec![],
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let (name, stream) = (s(props, "name"), s(props, "stream_arn"));
                let answer =
                    cloud.kinesis.describe_stream_consumer().stream_arn(stream).consumer_name(name).send().await;
                let consumer = found(answer, &["ResourceNotFoundException"])?.consumer_description?;
                (consumer.consumer_status().as_str() != "DELETING")
                    .then(|| json!({ "name": consumer.consumer_name(), "stream_arn": consumer.stream_arn() }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                let (name, stream) = (s(props, "name"), s(props, "stream_arn"));
                cloud.kinesis.deregister_stream_consumer().stream_arn(stream).consumer_name(name).send().await.unwrap();
            })
        },
    }
}

/// The inline policy the role driver writes the declared statements to.
const ROLE_POLICY: &str = "pipeline-least-privilege";

fn iam_role() -> Case {
    Case {
        kind: aws::iam_role::KIND,
        not_on_localstack: None,
        declare: |def, env| role(def, env, IT, "lambda.amazonaws.com"),
        updates: |env| {
            vec![
                Step::new(json!({ "service": "firehose.amazonaws.com" })),
                Step::new(json!({ "statements": [
                    { "actions": ["sqs:SendMessage", "sqs:GetQueueUrl"], "resources": ["*"] },
                    { "actions": ["kinesis:PutRecord"], "resources": ["arn:aws:kinesis:us-east-1:000000000000:stream/x"] },
                ] })),
                Step::new(json!({ "managed_policy_arns": [env.policy_arn] })),
            ]
        },
        not_updated: &[(
            "other_inline_policies",
            "it names policies added out of band that the role keeps; a stack of its own has none to keep \
             (tests/drivers.rs removes one as drift)",
        )],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let role = found(cloud.iam.get_role().role_name(name).send().await, &["NoSuchEntity"])?.role?;
                let trust = policy_document(role.assume_role_policy_document().unwrap());
                let policy = cloud.iam.get_role_policy().role_name(name).policy_name(ROLE_POLICY).send().await.unwrap();
                let statements: Vec<Value> = policy_document(policy.policy_document())["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|st| json!({ "actions": list(&st["Action"]), "resources": list(&st["Resource"]) }))
                    .collect();
                let inline = cloud.iam.list_role_policies().role_name(name).send().await.unwrap();
                let others: Vec<&String> = inline.policy_names().iter().filter(|p| *p != ROLE_POLICY).collect();
                let attached = cloud.iam.list_attached_role_policies().role_name(name).send().await.unwrap();
                let managed: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
                let tags = cloud.iam.list_role_tags().role_name(name).send().await.unwrap();
                Some(json!({
                    "name": role.role_name(),
                    "service": trust["Statement"][0]["Principal"]["Service"],
                    "statements": statements,
                    "other_inline_policies": others,
                    "managed_policy_arns": managed,
                    "tags": marks(tags.tags().iter().map(|t| (t.key(), t.value()))),
                }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let inline = cloud.iam.list_role_policies().role_name(name).send().await.unwrap();
                for policy in inline.policy_names() {
                    cloud.iam.delete_role_policy().role_name(name).policy_name(policy).send().await.unwrap();
                }
                let attached = cloud.iam.list_attached_role_policies().role_name(name).send().await.unwrap();
                for policy in attached.attached_policies().iter().filter_map(|p| p.policy_arn()) {
                    cloud.iam.detach_role_policy().role_name(name).policy_arn(policy).send().await.unwrap();
                }
                cloud.iam.delete_role().role_name(name).send().await.unwrap();
            })
        },
    }
}

fn s3_bucket() -> Case {
    Case {
        kind: aws::s3_bucket::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            let props = json!({ "name": env.name("bucket"), "expire_after_days": null, "public_access_blocked": true,
                "encrypted": true });
            add(def, IT, aws::s3_bucket::KIND, props);
        },
        updates: |_| vec![Step::new(json!({ "expire_after_days": 7 }))],
        not_updated: &[
            ("public_access_blocked", "every bucket is kept private: false is refused before any change"),
            ("encrypted", "every bucket is kept encrypted: false is refused before any change"),
        ],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                found(cloud.s3.head_bucket().bucket(name).send().await, &["NotFound", "NoSuchBucket"])?;
                let lifecycle = cloud.s3.get_bucket_lifecycle_configuration().bucket(name).send().await;
                let expire = found(lifecycle, &["NoSuchLifecycleConfiguration"])
                    .and_then(|config| config.rules().iter().find_map(|rule| rule.expiration().and_then(|e| e.days())));
                let block = cloud.s3.get_public_access_block().bucket(name).send().await;
                let blocked = found(block, &["NoSuchPublicAccessBlockConfiguration"])
                    .and_then(|b| b.public_access_block_configuration)
                    .is_some_and(|c| {
                        [
                            c.block_public_acls(),
                            c.ignore_public_acls(),
                            c.block_public_policy(),
                            c.restrict_public_buckets(),
                        ]
                        .iter()
                        .all(|v| *v == Some(true))
                    });
                let encryption = cloud.s3.get_bucket_encryption().bucket(name).send().await;
                let encrypted = found(encryption, &["ServerSideEncryptionConfigurationNotFoundError"]).is_some();
                let tagging = found(cloud.s3.get_bucket_tagging().bucket(name).send().await, &["NoSuchTagSet"]);
                let tags =
                    tagging.map(|t| marks(t.tag_set().iter().map(|t| (t.key(), t.value())))).unwrap_or(json!({}));
                Some(json!({ "name": name, "expire_after_days": expire, "public_access_blocked": blocked,
                    "encrypted": encrypted, "tags": tags }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.s3.delete_bucket().bucket(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

fn log_group() -> Case {
    Case {
        kind: aws::log_group::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            let props =
                json!({ "name": format!("/aws/lambda/{}", env.name("fn")), "retention_days": 14, "marked": true });
            add(def, IT, aws::log_group::KIND, props);
        },
        updates: |_| vec![Step::new(json!({ "retention_days": 30 }))],
        not_updated: &[(
            "marked",
            "it says whether the group carries the mark; programs declare it true (false is how a group Lambda \
             made reads before `up` marks it: tests/functions.rs)",
        )],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let groups = cloud.logs.describe_log_groups().log_group_name_prefix(name).send().await.unwrap();
                let group = groups.log_groups().iter().find(|g| g.log_group_name() == Some(name))?;
                let arn = group.arn().unwrap().trim_end_matches(":*");
                let tags = cloud.logs.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
                let tags = marks(tags.tags().cloned().unwrap_or_default());
                Some(json!({ "name": name, "retention_days": group.retention_in_days(),
                    "marked": tags.get("provision:stack").is_some(), "tags": tags }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.logs.delete_log_group().log_group_name(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

/// The tags of an API Gateway resource (`/apikeys/<id>`, `/restapis/<id>`...): those its own
/// read reports (`created`), and those GetTags reports (the emulators keep the two apart).
async fn apigateway_tags(
    cloud: &Cloud,
    path: &str,
    created: Option<&std::collections::HashMap<String, String>>,
) -> Value {
    let arn = format!("arn:aws:apigateway:{}::{path}", cloud.region);
    let written = cloud.apigateway.get_tags().resource_arn(arn).send().await.unwrap();
    let mut tags = created.cloned().unwrap_or_default();
    tags.extend(written.tags().cloned().unwrap_or_default());
    marks(tags)
}

fn api_key() -> Case {
    Case {
        kind: aws::api_key::KIND,
        not_on_localstack: None,
        declare: |def, env| add(def, IT, aws::api_key::KIND, json!({ "name": env.name("key") })),
        updates: |_| vec![],
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, _, outputs| {
            Box::pin(async move {
                let id = o(outputs, "id");
                let key = found(cloud.apigateway.get_api_key().api_key(id).send().await, &["NotFoundException"])?;
                Some(
                    json!({ "name": key.name(), "tags": apigateway_tags(cloud, &format!("/apikeys/{id}"), key.tags()).await }),
                )
            })
        },
        destroy: |cloud, _, outputs| {
            Box::pin(async move {
                cloud.apigateway.delete_api_key().api_key(o(outputs, "id")).send().await.unwrap();
            })
        },
    }
}

/// The ARN of the topic named `name`, if there is one.
async fn topic_arn(cloud: &Cloud, name: &str) -> Option<String> {
    let mut token = None;
    loop {
        let page = cloud.sns.list_topics().set_next_token(token).send().await.unwrap();
        let suffix = format!(":{name}");
        if let Some(arn) = page.topics().iter().filter_map(|t| t.topic_arn()).find(|arn| arn.ends_with(&suffix)) {
            return Some(arn.to_string());
        }
        token = Some(page.next_token?.to_string());
    }
}

fn sns_topic() -> Case {
    Case {
        kind: aws::sns_topic::KIND,
        not_on_localstack: None,
        declare: |def, env| add(def, IT, aws::sns_topic::KIND, json!({ "name": env.name("topic") })),
        updates: |_| vec![],
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let arn = topic_arn(cloud, name).await?;
                let tags = cloud.sns.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
                Some(json!({ "name": name, "tags": marks(tags.tags().iter().map(|t| (t.key(), t.value()))) }))
            })
        },
        destroy: |cloud, _, outputs| {
            Box::pin(async move {
                cloud.sns.delete_topic().topic_arn(o(outputs, "arn")).send().await.unwrap();
            })
        },
    }
}

fn rest_api() -> Case {
    Case {
        kind: aws::rest_api::KIND,
        not_on_localstack: None,
        declare: |def, env| add(def, IT, aws::rest_api::KIND, api_props(env, json!([route("POST", "/", "a")]))),
        updates: |_| {
            vec![
                Step::new(json!({ "routes": [route("POST", "/", "b"), route("GET", "/items/{id}", "a")] })),
                Step::new(json!({ "stage": "live" })),
                Step::new(json!({ "throttle": { "rate_per_s": 10.0, "burst": 5 } })),
            ]
        },
        not_updated: &[(
            "serves_last_deployment",
            "programs declare it true; false is how a stage serving another deployment reads (drift, \
             tests/drivers.rs)",
        )],
        unobservable: &[],
        inspect: |cloud, props, outputs| {
            Box::pin(async move {
                let id = o(outputs, "id");
                let api = found(cloud.apigateway.get_rest_api().rest_api_id(id).send().await, &["NotFoundException"])?;
                let stage_name = s(props, "stage");
                let stage = cloud.apigateway.get_stage().rest_api_id(id).stage_name(stage_name).send().await;
                let stage = found(stage, &["NotFoundException"]);
                let throttle = stage
                    .as_ref()
                    .and_then(|st| st.method_settings()?.get("*/*"))
                    .map(|m| json!({ "rate_per_s": m.throttling_rate_limit(), "burst": m.throttling_burst_limit() }));
                let serves_last = stage.as_ref().and_then(|st| st.deployment_id())
                    == outputs.get("deployment_id").and_then(Value::as_str);
                Some(json!({
                    "name": api.name(),
                    "stage": stage.as_ref().and_then(|st| st.stage_name()),
                    "routes": api_routes(cloud, id).await,
                    "serves_last_deployment": serves_last,
                    "throttle": throttle,
                    "tags": apigateway_tags(cloud, &format!("/restapis/{id}"), api.tags()).await,
                }))
            })
        },
        destroy: |cloud, _, outputs| {
            Box::pin(async move {
                cloud.apigateway.delete_rest_api().rest_api_id(o(outputs, "id")).send().await.unwrap();
            })
        },
    }
}

/// The routes of REST API `id`, sorted by path then method, in the kind's route shape.
async fn api_routes(cloud: &Cloud, id: &str) -> Value {
    let resources = cloud.apigateway.get_resources().rest_api_id(id).limit(500).send().await.unwrap();
    let mut routes = Vec::new();
    for resource in resources.items() {
        let mut methods: Vec<&String> = resource.resource_methods().map(|m| m.keys().collect()).unwrap_or_default();
        methods.sort();
        for method in methods {
            let path = resource.path().unwrap();
            let found = cloud
                .apigateway
                .get_method()
                .rest_api_id(id)
                .resource_id(resource.id().unwrap())
                .http_method(method)
                .send()
                .await
                .unwrap();
            let uri = found.method_integration().and_then(|i| i.uri()).unwrap_or_default();
            let function = uri.split("/functions/").nth(1).map(|rest| rest.trim_end_matches("/invocations"));
            routes.push((
                path.to_string(),
                method.clone(),
                json!({ "method": method, "path": path,
                "function_arn": function, "authorization": found.authorization_type(),
                "api_key_required": found.api_key_required().unwrap_or(false) }),
            ));
        }
    }
    routes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Value::Array(routes.into_iter().map(|(_, _, route)| route).collect())
}

fn usage_plan() -> Case {
    Case {
        kind: aws::usage_plan::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            add(def, "api", aws::rest_api::KIND, api_props(env, json!([route("POST", "/", "a")])));
            add(def, "key", aws::api_key::KIND, json!({ "name": env.name("key") }));
            let props = json!({ "name": env.name("plan"), "api_id": r("api", "id"), "stage": "prod", "rate_per_s": 10.0,
                "burst": 5, "quota_per_day": null, "api_key_ids": [] });
            add(def, IT, aws::usage_plan::KIND, props);
        },
        updates: |_| vec![Step::new(json!({ "api_key_ids": [r("key", "id")] }))],
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, _, outputs| {
            Box::pin(async move {
                let id = o(outputs, "id");
                let plan =
                    found(cloud.apigateway.get_usage_plan().usage_plan_id(id).send().await, &["NotFoundException"])?;
                let stage = plan.api_stages().first();
                let quota = plan.quota().filter(|q| q.period().map(|p| p.as_str()) == Some("DAY")).map(|q| q.limit());
                let keys = cloud.apigateway.get_usage_plan_keys().usage_plan_id(id).send().await.unwrap();
                let key_ids: Vec<&str> = keys.items().iter().filter_map(|k| k.id()).collect();
                Some(json!({
                    "name": plan.name(),
                    "api_id": stage.and_then(|st| st.api_id()),
                    "stage": stage.and_then(|st| st.stage()),
                    "rate_per_s": plan.throttle().map(|t| t.rate_limit()),
                    "burst": plan.throttle().map(|t| t.burst_limit()),
                    "quota_per_day": quota,
                    "api_key_ids": key_ids,
                    "tags": apigateway_tags(cloud, &format!("/usageplans/{id}"), plan.tags()).await,
                }))
            })
        },
        destroy: |cloud, _, outputs| {
            Box::pin(async move {
                cloud.apigateway.delete_usage_plan().usage_plan_id(o(outputs, "id")).send().await.unwrap();
            })
        },
    }
}

const NO_METRIC_MATH: &str = "MiniStack's PutMetricAlarm keeps no `Metrics` (metric math): DescribeAlarms reports none";

fn cloudwatch_alarm() -> Case {
    Case {
        kind: aws::cloudwatch_alarm::KIND,
        not_on_localstack: None,
        declare: |def, env| {
            add(def, "topic", aws::sns_topic::KIND, json!({ "name": env.name("alarms") }));
            let metric = json!({ "namespace": "Test", "name": "Lag", "dimensions": { "Stream": env.name("s") },
                "stat": "Maximum", "period_s": 60 });
            let props = json!({ "name": env.name("alarm"), "description": "lag is high",
                "metrics": [{ "id": "lag", "metric": metric, "return_data": true }], "threshold": 10.0,
                "comparison": "GreaterThanThreshold", "evaluation_periods": 1, "datapoints_to_alarm": 1,
                "treat_missing_data": "notBreaching", "alarm_actions": [] });
            add(def, IT, aws::cloudwatch_alarm::KIND, props);
        },
        updates: |env| {
            let metric = json!({ "namespace": "Test", "name": "Lag", "dimensions": { "Stream": env.name("s") },
                "stat": "Sum", "period_s": 60 });
            vec![
                Step::new(json!({ "description": "lag is higher" })),
                Step {
                    set: json!({ "metrics": [{ "id": "lag", "metric": metric, "return_data": false },
                        { "id": "doubled", "expression": "lag * 2", "return_data": true }] }),
                    not_on: Some(("MiniStack", NO_METRIC_MATH)),
                },
                Step::new(json!({ "threshold": 20.0 })),
                Step::new(json!({ "comparison": "LessThanThreshold" })),
                Step::new(json!({ "evaluation_periods": 3, "datapoints_to_alarm": 2 })),
                Step::new(json!({ "treat_missing_data": "breaching" })),
                Step::new(json!({ "alarm_actions": [r("topic", "arn")] })),
            ]
        },
        not_updated: &[],
        unobservable: &[("metrics", "MiniStack", NO_METRIC_MATH)],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let alarms = cloud.cloudwatch.describe_alarms().alarm_names(name).send().await.unwrap();
                let alarm = alarms.metric_alarms().iter().find(|a| a.alarm_name() == Some(name))?;
                let metrics: Vec<Value> = alarm
                    .metrics()
                    .iter()
                    .map(|q| {
                        let mut metric = json!({ "id": q.id(), "return_data": q.return_data().unwrap_or(true) });
                        if let Some(expression) = q.expression() {
                            metric["expression"] = json!(expression);
                        }
                        if let Some(stat) = q.metric_stat() {
                            let m = stat.metric().unwrap();
                            let dimensions: Map<String, Value> =
                                m.dimensions().iter().map(|d| (d.name().unwrap().into(), json!(d.value()))).collect();
                            metric["metric"] = json!({ "namespace": m.namespace(), "name": m.metric_name(),
                                "dimensions": dimensions, "stat": stat.stat(), "period_s": stat.period() });
                        }
                        metric
                    })
                    .collect();
                let tags =
                    cloud.cloudwatch.list_tags_for_resource().resource_arn(alarm.alarm_arn().unwrap()).send().await;
                let tags = tags.unwrap();
                Some(json!({
                    "name": name,
                    "description": alarm.alarm_description(),
                    "metrics": metrics,
                    "threshold": alarm.threshold(),
                    "comparison": alarm.comparison_operator().map(|c| c.as_str()),
                    "evaluation_periods": alarm.evaluation_periods(),
                    "datapoints_to_alarm": alarm.datapoints_to_alarm(),
                    "treat_missing_data": alarm.treat_missing_data(),
                    "alarm_actions": alarm.alarm_actions(),
                    "tags": marks(tags.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
                }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.cloudwatch.delete_alarms().alarm_names(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

fn dynamodb_table() -> Case {
    Case {
        kind: aws::dynamodb_table::KIND,
        not_on_localstack: Some("LocalStack's DynamoDB (DynamoDB Local) is a Java download"),
        declare: |def, env| {
            let props =
                json!({ "name": env.name("table"), "hash_key": "id", "sort_key": null, "stream_view_type": null });
            add(def, IT, aws::dynamodb_table::KIND, props);
        },
        updates: |_| {
            vec![
                Step::new(json!({ "stream_view_type": "NEW_IMAGE" })),
                Step::new(json!({ "deletion_protection": true })),
                // Off again, so the engine's delete at the end is allowed.
                Step::new(json!({ "deletion_protection": false })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let answer = cloud.dynamodb.describe_table().table_name(name).send().await;
                let table = found(answer, &["ResourceNotFoundException"])?.table?;
                if table.table_status().map(|st| st.as_str()) == Some("DELETING") {
                    return None;
                }
                let key = |kind: &str| {
                    table
                        .key_schema()
                        .iter()
                        .find(|k| k.key_type().as_str() == kind)
                        .map(|k| k.attribute_name().to_string())
                };
                let stream = table
                    .stream_specification()
                    .filter(|spec| spec.stream_enabled())
                    .and_then(|spec| spec.stream_view_type())
                    .map(|view| view.as_str().to_string());
                let tags = cloud.dynamodb.list_tags_of_resource().resource_arn(table.table_arn().unwrap()).send().await;
                let tags = tags.unwrap();
                Some(json!({ "name": table.table_name(), "hash_key": key("HASH"), "sort_key": key("RANGE"),
                    "stream_view_type": stream, "deletion_protection": table.deletion_protection_enabled(),
                    "tags": marks(tags.tags().iter().map(|t| (t.key(), t.value()))) }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.dynamodb.delete_table().table_name(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

/// The function's configuration and tags in the kind's property shape (`None`: no function).
async fn function_state(cloud: &Cloud, name: &str) -> Option<Value> {
    let answer = cloud.lambda.get_function().function_name(name).send().await;
    let function = found(answer, &["ResourceNotFoundException"])?;
    let config = function.configuration().unwrap();
    let vpc = config.vpc_config().filter(|v| !v.subnet_ids().is_empty()).map(|v| {
        let mut subnets = v.subnet_ids().to_vec();
        subnets.sort();
        json!({ "subnet_ids": subnets, "security_group_ids": v.security_group_ids() })
    });
    let environment = config.environment().and_then(|e| e.variables().cloned()).unwrap_or_default();
    Some(json!({
        "name": config.function_name(),
        "role_arn": config.role(),
        "runtime": config.runtime().map(|r| r.as_str()),
        "handler": config.handler(),
        "architecture": config.architectures().first().map(|a| a.as_str()),
        "memory_mb": config.memory_size(),
        "timeout_s": config.timeout(),
        "environment": environment,
        "code_sha256": config.code_sha256(),
        "vpc": vpc,
        "tags": marks(function.tags().cloned().unwrap_or_default()),
    }))
}

fn lambda_function() -> Case {
    Case {
        kind: aws::lambda_function::KIND,
        not_on_localstack: Some("LocalStack's Lambda needs Docker"),
        declare: |def, env| {
            role(def, env, "role", "lambda.amazonaws.com");
            role(def, env, "other-role", "lambda.amazonaws.com");
            add(def, IT, aws::lambda_function::KIND, function_props(env, "fn", "role"));
        },
        updates: |env| {
            let (zip_path, code_sha256) = env.zip("fn-changed");
            vec![
                Step::new(json!({ "role_arn": r("other-role", "arn") })),
                Step::new(json!({ "runtime": "provided.al2" })),
                Step::new(json!({ "handler": "main" })),
                Step::new(json!({ "architecture": "arm64" })),
                Step::new(json!({ "memory_mb": 256 })),
                Step::new(json!({ "timeout_s": 10 })),
                Step::new(json!({ "environment": { "GREETING": "hello" } })),
                Step::new(json!({ "zip_path": zip_path, "code_sha256": code_sha256 })),
                Step::new(
                    json!({ "vpc": { "subnet_ids": env.network.0[..2], "security_group_ids": [env.network.1[0]] } }),
                ),
            ]
        },
        not_updated: &[(
            "hot_reload_dir",
            "LocalStack's hot-reload mount (`hot_deploy`), which needs LocalStack's Lambda, and that needs Docker",
        )],
        unobservable: &[],
        inspect: |cloud, props, _| Box::pin(function_state(cloud, s(props, "name"))),
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.lambda.delete_function().function_name(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

fn lambda_permission() -> Case {
    Case {
        kind: aws::lambda_permission::KIND,
        not_on_localstack: NEEDS_LAMBDA,
        declare: |def, env| {
            function(def, env, "fn");
            function(def, env, "other-fn");
            add(def, "topic", aws::sns_topic::KIND, json!({ "name": env.name("topic") }));
            add(def, "other-topic", aws::sns_topic::KIND, json!({ "name": env.name("other-topic") }));
            let props = json!({ "function_name": r("fn", "name"), "statement_id": "invoke",
                "principal": "sns.amazonaws.com", "source_arn": r("topic", "arn") });
            add(def, IT, aws::lambda_permission::KIND, props);
        },
        updates: |_| {
            vec![
                Step::new(json!({ "statement_id": "invoke-again" })),
                Step::new(json!({ "principal": "events.amazonaws.com" })),
                Step::new(json!({ "source_arn": r("other-topic", "arn") })),
                Step::new(json!({ "function_name": r("other-fn", "name") })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let (function, sid) = (s(props, "function_name"), s(props, "statement_id"));
                let policy = cloud.lambda.get_policy().function_name(function).send().await;
                let policy = found(policy, &["ResourceNotFoundException"])?;
                let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
                let statement = policy["Statement"].as_array()?.iter().find(|st| st["Sid"] == json!(sid))?;
                let principal = &statement["Principal"];
                Some(json!({
                    "function_name": function,
                    "statement_id": sid,
                    "principal": principal.get("Service").unwrap_or(principal),
                    "source_arn": statement["Condition"]["ArnLike"]["AWS:SourceArn"],
                }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                let (function, sid) = (s(props, "function_name"), s(props, "statement_id"));
                cloud.lambda.remove_permission().function_name(function).statement_id(sid).send().await.unwrap();
            })
        },
    }
}

fn sns_subscription() -> Case {
    Case {
        kind: aws::sns_subscription::KIND,
        not_on_localstack: NEEDS_LAMBDA,
        declare: |def, env| {
            function(def, env, "fn");
            add(def, "topic", aws::sns_topic::KIND, json!({ "name": env.name("topic") }));
            add(
                def,
                IT,
                aws::sns_subscription::KIND,
                json!({ "topic_arn": r("topic", "arn"), "function_arn": r("fn", "arn") }),
            );
        },
        updates: |_| vec![],
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let (topic, function) = (s(props, "topic_arn"), s(props, "function_arn"));
                let listed = cloud.sns.list_subscriptions_by_topic().topic_arn(topic).send().await;
                let listed = found(listed, &["NotFound"])?;
                let subscription = listed
                    .subscriptions()
                    .iter()
                    .find(|sub| sub.protocol() == Some("lambda") && sub.endpoint() == Some(function))?;
                Some(json!({ "topic_arn": subscription.topic_arn(), "function_arn": subscription.endpoint() }))
            })
        },
        destroy: |cloud, _, outputs| {
            Box::pin(async move {
                cloud.sns.unsubscribe().subscription_arn(o(outputs, "arn")).send().await.unwrap();
            })
        },
    }
}

/// The function name in a function ARN.
fn function_name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap()
}

/// The event source mapping the outputs name (`None`: not found, or being deleted).
async fn mapping_of(
    cloud: &Cloud,
    outputs: &Outputs,
) -> Option<aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput> {
    let answer = cloud.lambda.get_event_source_mapping().uuid(o(outputs, "uuid")).send().await;
    found(answer, &["ResourceNotFoundException"]).filter(|mapping| mapping.state() != Some("Deleting"))
}

/// Deletes the event source mapping the outputs name.
async fn delete_mapping(cloud: &Cloud, outputs: &Outputs) {
    cloud.lambda.delete_event_source_mapping().uuid(o(outputs, "uuid")).send().await.unwrap();
}

fn event_source_mapping() -> Case {
    Case {
        kind: aws::event_source_mapping::KIND,
        not_on_localstack: NEEDS_LAMBDA,
        declare: |def, env| {
            function(def, env, "fn");
            add(def, "source", aws::kinesis_stream::KIND, json!({ "name": env.name("source"), "shard_count": 1 }));
            add(
                def,
                "failures",
                aws::sqs_queue::KIND,
                json!({ "name": env.name("failures"), "retention_seconds": 1209600 }),
            );
            let props = json!({ "function_name": r("fn", "name"), "event_source_arn": r("source", "arn"),
                "starting_position": "TRIM_HORIZON", "batch_size": 100, "batching_window_s": 0, "bisect_on_error": false,
                "maximum_retry_attempts": -1, "maximum_record_age_s": -1, "report_batch_item_failures": false,
                "on_failure_arn": null, "enabled": true });
            add(def, IT, aws::event_source_mapping::KIND, props);
        },
        updates: |_| {
            vec![
                Step::new(json!({ "batch_size": 50 })),
                Step::new(json!({ "batching_window_s": 2 })),
                Step::new(json!({ "bisect_on_error": true })),
                Step::new(json!({ "maximum_retry_attempts": 3 })),
                Step::new(json!({ "maximum_record_age_s": 3600 })),
                Step::new(json!({ "report_batch_item_failures": true })),
                Step::new(json!({ "on_failure_arn": r("failures", "arn") })),
                Step::new(json!({ "enabled": false })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, _, outputs| {
            Box::pin(async move {
                let mapping = mapping_of(cloud, outputs).await?;
                let failures = mapping.destination_config().and_then(|d| d.on_failure()).and_then(|f| f.destination());
                Some(json!({
                    "function_name": function_name_of(mapping.function_arn().unwrap()),
                    "event_source_arn": mapping.event_source_arn(),
                    "starting_position": mapping.starting_position().map(|p| p.as_str()),
                    "batch_size": mapping.batch_size(),
                    "batching_window_s": mapping.maximum_batching_window_in_seconds().unwrap_or(0),
                    "bisect_on_error": mapping.bisect_batch_on_function_error().unwrap_or(false),
                    "maximum_retry_attempts": mapping.maximum_retry_attempts().unwrap_or(-1),
                    "maximum_record_age_s": mapping.maximum_record_age_in_seconds().unwrap_or(-1),
                    "report_batch_item_failures": !mapping.function_response_types().is_empty(),
                    "on_failure_arn": failures.filter(|d| !d.is_empty()),
                    "enabled": !matches!(mapping.state(), Some("Disabled" | "Disabling")),
                }))
            })
        },
        destroy: |cloud, _, outputs| Box::pin(delete_mapping(cloud, outputs)),
    }
}

fn sqs_event_source_mapping() -> Case {
    Case {
        kind: aws::sqs_event_source_mapping::KIND,
        not_on_localstack: NEEDS_LAMBDA,
        declare: |def, env| {
            function(def, env, "fn");
            add(
                def,
                "source",
                aws::sqs_queue::KIND,
                json!({ "name": env.name("source"), "retention_seconds": 345600 }),
            );
            let props = json!({ "function_name": r("fn", "name"), "queue_arn": r("source", "arn"), "batch_size": 10,
                "batching_window_s": 0, "report_batch_item_failures": false, "maximum_concurrency": null,
                "enabled": true });
            add(def, IT, aws::sqs_event_source_mapping::KIND, props);
        },
        updates: |_| {
            vec![
                Step::new(json!({ "batch_size": 5 })),
                Step::new(json!({ "batching_window_s": 1 })),
                Step::new(json!({ "report_batch_item_failures": true })),
                Step::new(json!({ "maximum_concurrency": 5 })),
                Step::new(json!({ "enabled": false })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, _, outputs| {
            Box::pin(async move {
                let mapping = mapping_of(cloud, outputs).await?;
                Some(json!({
                    "function_name": function_name_of(mapping.function_arn().unwrap()),
                    "queue_arn": mapping.event_source_arn(),
                    "batch_size": mapping.batch_size(),
                    "batching_window_s": mapping.maximum_batching_window_in_seconds().unwrap_or(0),
                    "report_batch_item_failures": !mapping.function_response_types().is_empty(),
                    "maximum_concurrency": mapping.scaling_config().and_then(|c| c.maximum_concurrency()),
                    "enabled": !matches!(mapping.state(), Some("Disabled" | "Disabling")),
                }))
            })
        },
        destroy: |cloud, _, outputs| Box::pin(delete_mapping(cloud, outputs)),
    }
}

fn firehose_delivery_stream() -> Case {
    Case {
        kind: aws::firehose_delivery_stream::KIND,
        not_on_localstack: Some("LocalStack's Firehose reads Kinesis through a Java download"),
        declare: |def, env| {
            add(def, "source", aws::kinesis_stream::KIND, json!({ "name": env.name("source"), "shard_count": 1 }));
            for bucket in ["sink", "other-sink"] {
                let props = json!({ "name": env.name(bucket), "expire_after_days": null, "public_access_blocked": true,
                    "encrypted": true });
                add(def, bucket, aws::s3_bucket::KIND, props);
            }
            role(def, env, "delivery-role", "firehose.amazonaws.com");
            role(def, env, "other-delivery-role", "firehose.amazonaws.com");
            let props = json!({ "name": env.name("delivery"), "source_stream_arn": r("source", "arn"),
                "source_role_arn": r("delivery-role", "arn"), "bucket_arn": r("sink", "arn"),
                "role_arn": r("delivery-role", "arn"), "prefix": "records/", "error_prefix": "errors/",
                "buffer_size_mb": 5, "buffer_interval_s": 60, "compression": "UNCOMPRESSED" });
            add(def, IT, aws::firehose_delivery_stream::KIND, props);
        },
        updates: |_| {
            vec![
                Step::new(json!({ "bucket_arn": r("other-sink", "arn") })),
                Step::new(json!({ "role_arn": r("other-delivery-role", "arn") })),
                Step::new(json!({ "prefix": "year=!{timestamp:yyyy}/" })),
                Step::new(json!({ "error_prefix": "failed/!{firehose:error-output-type}/" })),
                Step::new(json!({ "buffer_size_mb": 10 })),
                Step::new(json!({ "buffer_interval_s": 120 })),
                Step::new(json!({ "compression": "GZIP" })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let answer = cloud.firehose.describe_delivery_stream().delivery_stream_name(name).send().await;
                let stream = found(answer, &["ResourceNotFoundException"])?.delivery_stream_description?;
                if stream.delivery_stream_status().as_str() == "DELETING" {
                    return None;
                }
                let source = stream.source().and_then(|s| s.kinesis_stream_source_description());
                let s3 = stream.destinations().first().and_then(|d| d.extended_s3_destination_description()).unwrap();
                let hints = s3.buffering_hints();
                let tags =
                    cloud.firehose.list_tags_for_delivery_stream().delivery_stream_name(name).send().await.unwrap();
                Some(json!({
                    "name": stream.delivery_stream_name(),
                    "source_stream_arn": source.and_then(|s| s.kinesis_stream_arn()),
                    "source_role_arn": source.and_then(|s| s.role_arn()),
                    "bucket_arn": s3.bucket_arn(),
                    "role_arn": s3.role_arn(),
                    "prefix": s3.prefix(),
                    "error_prefix": s3.error_output_prefix(),
                    "buffer_size_mb": hints.and_then(|h| h.size_in_mbs()),
                    "buffer_interval_s": hints.and_then(|h| h.interval_in_seconds()),
                    "compression": s3.compression_format().as_str(),
                    "tags": marks(tags.tags().iter().map(|t| (t.key(), t.value().unwrap_or_default()))),
                }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.firehose.delete_delivery_stream().delivery_stream_name(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

const NEEDS_RDS: Option<&str> = Some("RDS is a LocalStack Pro feature");

/// The tags of an RDS resource.
async fn rds_tags(cloud: &Cloud, arn: &str) -> Value {
    let tags = cloud.rds.list_tags_for_resource().resource_name(arn).send().await.unwrap();
    marks(tags.tag_list().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

fn rds_subnet_group() -> Case {
    Case {
        kind: aws::rds_subnet_group::KIND,
        not_on_localstack: NEEDS_RDS,
        declare: |def, env| {
            let props = json!({ "name": env.name("subnets"), "subnet_ids": env.network.0[..2] });
            add(def, IT, aws::rds_subnet_group::KIND, props);
        },
        updates: |env| vec![Step::new(json!({ "subnet_ids": env.network.0[1..].to_vec() }))],
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let name = s(props, "name");
                let answer = cloud.rds.describe_db_subnet_groups().db_subnet_group_name(name).send().await;
                let groups = found(answer, &["DBSubnetGroupNotFoundFault"])?;
                let group = groups.db_subnet_groups().first()?;
                let mut subnets: Vec<&str> = group.subnets().iter().filter_map(|s| s.subnet_identifier()).collect();
                subnets.sort();
                Some(json!({ "name": group.db_subnet_group_name(), "subnet_ids": subnets,
                    "tags": rds_tags(cloud, group.db_subnet_group_arn().unwrap()).await }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                cloud.rds.delete_db_subnet_group().db_subnet_group_name(s(props, "name")).send().await.unwrap();
            })
        },
    }
}

fn rds_instance() -> Case {
    Case {
        kind: aws::rds_instance::KIND,
        not_on_localstack: NEEDS_RDS,
        declare: |def, env| {
            let props = json!({ "identifier": env.name("db"), "instance_class": "db.t3.micro", "allocated_storage_gb": 20,
                "db_name": "records", "master_username": "pipeline", "port": 5432, "publicly_accessible": false });
            add(def, IT, aws::rds_instance::KIND, props);
        },
        updates: |env| {
            vec![
                Step::new(json!({ "instance_class": "db.t3.small" })),
                Step::new(json!({ "allocated_storage_gb": 30 })),
                Step {
                    set: json!({ "port": 5433 }),
                    not_on: Some(("MiniStack", "MiniStack's ModifyDBInstance ignores DBPortNumber")),
                },
                Step::new(json!({ "publicly_accessible": true })),
                Step::new(json!({ "security_group_ids": [env.network.1[0]] })),
                Step::new(json!({ "deletion_protection": true })),
                // Off again, so the engine's delete at the end is allowed.
                Step::new(json!({ "deletion_protection": false })),
            ]
        },
        not_updated: &[],
        unobservable: &[],
        inspect: |cloud, props, _| {
            Box::pin(async move {
                let id = s(props, "identifier");
                let answer = cloud.rds.describe_db_instances().db_instance_identifier(id).send().await;
                let instances = found(answer, &["DBInstanceNotFound", "DBInstanceNotFoundFault"])?;
                let db = instances.db_instances().first()?;
                if db.db_instance_status() == Some("deleting") {
                    return None;
                }
                let groups: Vec<&str> =
                    db.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id()).collect();
                Some(json!({
                    "identifier": db.db_instance_identifier(),
                    "instance_class": db.db_instance_class(),
                    "allocated_storage_gb": db.allocated_storage(),
                    "db_name": db.db_name(),
                    "master_username": db.master_username(),
                    "port": db.endpoint().and_then(|e| e.port()).or(db.db_instance_port()),
                    "publicly_accessible": db.publicly_accessible(),
                    "subnet_group": db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
                    "security_group_ids": groups,
                    "deletion_protection": db.deletion_protection(),
                    "tags": rds_tags(cloud, db.db_instance_arn().unwrap()).await,
                }))
            })
        },
        destroy: |cloud, props, _| {
            Box::pin(async move {
                let id = s(props, "identifier");
                cloud
                    .rds
                    .delete_db_instance()
                    .db_instance_identifier(id)
                    .skip_final_snapshot(true)
                    .send()
                    .await
                    .unwrap();
            })
        },
    }
}

fn postgres_schema() -> Case {
    Case {
        kind: aws::postgres_schema::KIND,
        not_on_localstack: Some(
            "it is not an AWS resource: the local PostgreSQL serves it, proven on the MiniStack run",
        ),
        declare: |def, env| {
            let comment =
                format!("created by provision for stack {} (provision:origin={})", def.mark.stack, def.mark.origin);
            let props = json!({ "host": "127.0.0.1", "port": crate::support::PG_PORT.to_string(),
                "database": format!("{}_db", env.stack), "user": "pipeline", "table": "items",
                "ddl": "CREATE TABLE IF NOT EXISTS items (id text PRIMARY KEY)", "columns": { "id": "text" },
                "create_database": true, "owner_comment": comment });
            add(def, IT, aws::postgres_schema::KIND, props);
        },
        updates: |env| {
            vec![
                Step::new(json!({ "ddl": "CREATE TABLE IF NOT EXISTS items (id text PRIMARY KEY, note text)",
                    "columns": { "id": "text", "note": "text" } })),
                Step::new(
                    json!({ "owner_comment": format!("created by provision for stack {} (provision:origin=moved)", env.stack) }),
                ),
                Step::new(json!({ "host": "localhost" })),
            ]
        },
        not_updated: &[
            ("port", "the local PostgreSQL listens on one port; an instance's port change is `rds_instance`'s step"),
            ("user", "the local PostgreSQL has one role that may create databases"),
            ("create_database", "false means the user brings the database: tests/byo_database.rs"),
        ],
        unobservable: &[("ddl", "", "what it makes is read back as `columns`")],
        inspect: |_, props, _| Box::pin(schema_state(props.clone())),
        destroy: |_, props, _| {
            Box::pin(async move {
                let client = crate::support::connect("postgres").await.unwrap();
                let drop = format!("DROP DATABASE \"{}\" WITH (FORCE)", s(props, "database"));
                client.batch_execute(&drop).await.unwrap();
            })
        },
    }
}

/// The database and table as PostgreSQL shows them, connected where the properties say.
async fn schema_state(props: Value) -> Option<Value> {
    let (host, port, user, database) = (s(&props, "host"), s(&props, "port"), s(&props, "user"), s(&props, "database"));
    let connected = tokio_postgres::Config::new()
        .host(host)
        .port(port.parse().unwrap())
        .user(user)
        .dbname(database)
        .connect(tokio_postgres::NoTls)
        .await;
    let client = match connected {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => return None,
        Err(err) => panic!("our own client failed: {err}"),
    };
    let table = s(&props, "table");
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .await
        .unwrap();
    if rows.is_empty() {
        return None;
    }
    let columns: Map<String, Value> =
        rows.iter().map(|row| (row.get::<_, String>(0), json!(row.get::<_, String>(1)))).collect();
    let row = client
        .query_one(
            "SELECT obj_description(to_regclass($1), 'pg_class'), shobj_description(d.oid, 'pg_database'), current_user::text \
             FROM pg_database d WHERE d.datname = current_database()",
            &[&table],
        )
        .await
        .unwrap();
    let table_comment: Option<String> = row.get(0);
    let database_comment: Option<String> = row.get(1);
    let tags: Value = table_comment.map(|c| serde_json::from_str(&c).unwrap()).unwrap_or(json!({}));
    Some(json!({
        "host": host,
        "port": port,
        "database": database,
        "user": row.get::<_, String>(2),
        "table": table,
        "columns": columns,
        "create_database": database_comment.is_some(),
        "owner_comment": database_comment,
        "tags": tags,
    }))
}
