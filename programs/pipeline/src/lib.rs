//! The pipeline, declared in Rust: every resource, its settings, and the references between
//! them. Reading this file top to bottom is reading the architecture.
//!
//! API Gateway `POST /` -> upstream -> Kinesis -> midstream -> DynamoDB (stream) -> downstream
//! -> Postgres rows + CloudWatch metric. Records that can never succeed go to a dead-letter queue.

pub mod settings;
mod stream;

use declaration::helpers::{function_role, protected_api, sized_function as function, Declaring};
use declaration::kinds::dynamodb_table::DynamodbTableSpec;
use declaration::kinds::event_source_mapping::EventSourceMappingSpec;
use declaration::kinds::firehose_delivery_stream::FirehoseDeliveryStreamSpec;
use declaration::kinds::iam_role::{IamRoleSpec, Statement};
use declaration::kinds::kinesis_stream::KinesisStreamSpec;
use declaration::kinds::lambda_function::{LambdaFunctionSpec, VpcSpec};
use declaration::kinds::lambda_permission::LambdaPermissionSpec;
use declaration::kinds::postgres_schema::PostgresSchemaSpec;
use declaration::kinds::rds_instance::RdsInstanceSpec;
use declaration::kinds::rds_subnet_group::RdsSubnetGroupSpec;
use declaration::kinds::rest_api::Route;
use declaration::kinds::s3_bucket::{self, S3BucketSpec};
use declaration::kinds::sqs_queue::SqsQueueSpec;
use declaration::{Handle, Input, Request, StackDef};
use settings::{MappingSettings, PipelineSettings};

/// The master user, on RDS and on the local PostgreSQL alike.
pub const DB_USER: &str = "pipeline";
/// The stage the API is deployed to.
pub const STAGE: &str = "prod";
/// Where the local cloud's PostgreSQL listens unless told otherwise.
pub const LOCAL_DB_PORT: i32 = 15432;

/// The pipeline's declaration for `request`, or what is wrong with its settings.
pub fn declare_stack(request: &Request) -> Result<StackDef, String> {
    let settings = PipelineSettings::of(request).map_err(|e| format!("{e:#}"))?;
    if !request.local && settings.network.is_none() && settings.database.is_none() {
        return Err("on AWS the database is private, so downstream must run in its VPC: add a \"network\" section to \
                    the settings (subnet_ids, function_security_group_ids, db_security_group_ids; see README, \
                    Deploying to an AWS account)"
            .into());
    }
    let mut stack = declare(&Declaring::of(request)?, &settings)?;
    if settings.database.is_none() {
        stack.advise("rds", bring_your_database());
    }
    Ok(stack)
}

/// What to tell a user whose endpoint has no RDS: the database can be brought instead.
fn bring_your_database() -> String {
    let url =
        std::env::var("PIPELINE_LOCAL_DATABASE_URL").unwrap_or_else(|_| "postgres://USER@HOST:5432/DBNAME".to_string());
    format!(
        "The database can be one you bring instead of an RDS instance. Add this line to the settings file \
         (stack.json, or the file given with --settings):\n  \"database\": {{ \"url\": \"{url}\" }}\n(on the \
         local cloud, `provision local env` prints that URL as PIPELINE_LOCAL_DATABASE_URL; a password goes in \
         PGPASSWORD, never in the file)"
    )
}

/// Declares the whole pipeline (an error when a file the settings name cannot be used).
fn declare(inputs: &Declaring, settings: &PipelineSettings) -> Result<StackDef, String> {
    let mut stack = StackDef::new(&inputs.request.stack);

    let dead_letters =
        stack.add("dead-letters", SqsQueueSpec::new(stack.physical_name("dead-letters"), 14 * 24 * 3600));
    let events = stream::declare_stream(&mut stack, settings);
    let consumer = stream::midstream_consumer(&mut stack, settings, &events);
    let table = stack.add(
        "records",
        DynamodbTableSpec {
            stream_view_type: Some("NEW_AND_OLD_IMAGES".into()),
            ..DynamodbTableSpec::new(stack.physical_name("records"), "id", None)
        },
    );
    let network = settings.network.as_ref().map(|n| {
        let sorted = |ids: &Vec<String>| {
            let mut ids = ids.clone();
            ids.sort();
            ids
        };
        (sorted(&n.subnet_ids), sorted(&n.function_security_group_ids), sorted(&n.db_security_group_ids))
    });
    let db = declare_database(&mut stack, inputs, settings, network.as_ref())?;
    // provision creates the table itself wherever it can reach the database: on an emulator, and
    // for a database brought without a private network. Otherwise (RDS or a brought database in a
    // VPC provision is not in) downstream creates it at its cold start (the DDL is idempotent).
    if inputs.request.local || (settings.database.is_some() && network.is_none()) {
        stack.add(
            "schema",
            PostgresSchemaSpec {
                host: db.host.clone(),
                port: db.port.clone(),
                database: db.name.clone(),
                user: db.user.clone(),
                table: record::TABLE.into(),
                ddl: record::SCHEMA_SQL.into(),
                columns: record::COLUMNS.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect(),
                create_database: db.create_database,
                owner_comment: format!(
                    "created by provision for stack {} (provision:origin={})",
                    inputs.request.stack, inputs.request.origin
                ),
                ca_pem: db.ca_pem.clone(),
            },
        );
    }

    let upstream_role = function_role(
        &mut stack,
        inputs,
        "upstream",
        vec![Statement::allow(&["kinesis:PutRecord", "kinesis:PutRecords"], vec![events.arn()])],
    );
    let midstream_role = function_role(
        &mut stack,
        inputs,
        "midstream",
        vec![
            Statement::allow(
                &[
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                    "kinesis:ListStreams",
                ],
                vec![events.arn()],
            ),
            Statement::allow(&["dynamodb:BatchWriteItem", "dynamodb:PutItem"], vec![table.arn()]),
            Statement::allow(&["sqs:SendMessage"], vec![dead_letters.arn()]),
        ]
        .into_iter()
        // Enhanced fan-out: the mapping reads through midstream's own consumer.
        .chain(consumer.as_ref().map(|consumer| {
            Statement::allow(&["kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"], vec![consumer.arn()])
        }))
        .collect(),
    );
    let downstream_role = function_role(
        &mut stack,
        inputs,
        "downstream",
        vec![
            Statement::allow(
                &[
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:DescribeStream",
                    "dynamodb:ListStreams",
                ],
                vec![table.stream_arn()],
            ),
            Statement::allow(&["cloudwatch:PutMetricData"], vec!["*".into()]),
            Statement::allow(&["sqs:SendMessage"], vec![dead_letters.arn()]),
        ]
        .into_iter()
        // The password is in Secrets Manager: RDS's managed secret on AWS, or the brought one.
        .chain(db.secret_arn.clone().map(|secret| Statement::allow(&["secretsmanager:GetSecretValue"], vec![secret])))
        // A function in a VPC manages its network interfaces.
        .chain(network.is_some().then(|| {
            Statement::allow(
                &[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                vec!["*".into()],
            )
        }))
        .collect(),
    );

    // AWS checkpoints at the first failed item of a batch; emulators that ignore
    // batchItemFailures would drop those items, so there a failure fails the whole batch, which
    // is retried (every write is idempotent).
    let report_item_failures = if inputs.request.local { "false" } else { "true" };
    let upstream = stack.add(
        "upstream",
        function(&stack, inputs, "upstream", &upstream_role, &settings.upstream, vec![("STREAM_NAME", events.name())]),
    );
    let midstream_spec = function(
        &stack,
        inputs,
        "midstream",
        &midstream_role,
        &settings.midstream,
        vec![
            ("TABLE_NAME", table.name()),
            ("DLQ_URL", dead_letters.url()),
            ("REPORT_BATCH_ITEM_FAILURES", report_item_failures.into()),
        ],
    );
    let midstream = stack.add("midstream", midstream_spec);
    let mut downstream_environment = db.tls_environment(inputs.request.local);
    downstream_environment.extend([
        ("DB_HOST", db.host.clone()),
        ("DB_PORT", db.port.clone()),
        ("DB_NAME", db.name.as_str().into()),
        ("DB_USER", db.user.as_str().into()),
        ("DB_SECRET_ARN", db.secret_arn.clone().unwrap_or_else(|| "".into())),
        ("METRIC_NAMESPACE", settings.metric_namespace.as_str().into()),
        ("DLQ_URL", dead_letters.url()),
        ("REPORT_BATCH_ITEM_FAILURES", report_item_failures.into()),
    ]);
    let mut downstream_spec =
        function(&stack, inputs, "downstream", &downstream_role, &settings.downstream, downstream_environment);
    // Only downstream reaches the database, so only downstream joins its network.
    downstream_spec.vpc = network.as_ref().map(|(subnets, function_groups, _)| VpcSpec {
        subnet_ids: subnets.clone(),
        security_group_ids: function_groups.clone(),
    });
    let downstream = stack.add("downstream", downstream_spec);

    let midstream_source = consumer.as_ref().map_or_else(|| events.arn(), |consumer| consumer.arn());
    stack.add("events-to-midstream", mapping(&midstream, midstream_source, &settings.kinesis_mapping, &dead_letters));
    stack
        .add("records-to-downstream", mapping(&downstream, table.stream_arn(), &settings.table_mapping, &dead_letters));

    let api = protected_api(&mut stack, inputs, STAGE, vec![Route::new("POST", "/", upstream.arn())]);
    stack.add(
        "api-invokes-upstream",
        LambdaPermissionSpec {
            function_name: upstream.name(),
            statement_id: "api-gateway-invoke".into(),
            principal: "apigateway.amazonaws.com".into(),
            source_arn: api.invoke_source_arn(),
        },
    );
    let archive = settings.archive.enabled.then(|| declare_archive(&mut stack, inputs, settings, &events));
    stream::declare_scaler(&mut stack, inputs, settings, &events);

    stack.export("api_url", [api.url()]);
    stack.export("stream", [events.name()]);
    stack.export("table", [table.name()]);
    stack.export("dead_letter_queue", [dead_letters.url()]);
    let functions = [&upstream, &midstream, &downstream].map(|f| f.name());
    stack.export(
        "functions",
        [functions[0].clone(), ", ".into(), functions[1].clone(), ", ".into(), functions[2].clone()],
    );
    stack.export("database", db.url);
    match archive {
        Some(bucket) => {
            stack.export("archive", ["s3://".into(), bucket, format!("/{}", archive_prefix(settings)).into()])
        }
        None => stack.export("archive", ["(off: \"archive\": {\"enabled\": false})".into()]),
    }
    Ok(stack)
}

/// The archive: a private, encrypted bucket of the stack's own, a role Firehose assumes with
/// exactly the Kinesis reads and S3 writes it needs, and the delivery stream from the Kinesis
/// stream to the bucket (JSON lines under date partitions).
fn declare_archive(
    stack: &mut StackDef,
    inputs: &Declaring,
    settings: &PipelineSettings,
    events: &Handle<KinesisStreamSpec>,
) -> Input<String> {
    let archive = &settings.archive;
    let bucket_name = s3_bucket::bucket_name(&inputs.request.stack, &inputs.request.account_id, &inputs.request.region);
    let bucket_arn = format!("arn:aws:s3:::{bucket_name}");
    let bucket = stack.add("archive", S3BucketSpec::new(bucket_name, archive.expire_after_days));
    let role = stack.add(
        "archive-role",
        IamRoleSpec {
            name: stack.physical_name("archive-role"),
            service: "firehose.amazonaws.com".into(),
            statements: vec![
                Statement::allow(
                    &["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"],
                    vec![events.arn()],
                ),
                Statement::allow(
                    &[
                        "s3:AbortMultipartUpload",
                        "s3:GetBucketLocation",
                        "s3:GetObject",
                        "s3:ListBucket",
                        "s3:ListBucketMultipartUploads",
                        "s3:PutObject",
                    ],
                    vec![bucket_arn.as_str().into(), format!("{bucket_arn}/*").into()],
                ),
            ],
            other_inline_policies: vec![],
            managed_policy_arns: vec![],
        },
    );
    let bucket_name = bucket.name();
    stack.add(
        "archive-delivery",
        FirehoseDeliveryStreamSpec {
            name: stack.physical_name("archive"),
            source_stream_arn: events.arn(),
            source_role_arn: role.arn(),
            bucket_arn: bucket.arn(),
            role_arn: role.arn(),
            prefix: archive.prefix.clone(),
            error_prefix: ARCHIVE_ERROR_PREFIX.into(),
            buffer_size_mb: archive.buffer_size_mb,
            buffer_interval_s: archive.buffer_interval_s,
            compression: archive.compression.clone(),
        },
    );
    bucket_name
}

/// The fixed part of the archive's key prefix: up to the last `/` before the first expression.
fn archive_prefix(settings: &PipelineSettings) -> String {
    let fixed = settings.archive.prefix.split("!{").next().unwrap_or_default();
    fixed[..fixed.rfind('/').map_or(0, |i| i + 1)].to_string()
}

/// Where Firehose puts records it could not deliver, apart from the archive's own prefix.
pub const ARCHIVE_ERROR_PREFIX: &str =
    "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/";

/// Where the schema and `downstream` find the database.
struct Database {
    host: Input<String>,
    port: Input<String>,
    name: String,
    user: String,
    /// The Secrets Manager secret holding the password, where there is one.
    secret_arn: Option<Input<String>>,
    /// The schema creates the database when it is missing (the local cloud's PostgreSQL stands in
    /// for the stack's RDS instance); a brought database must exist.
    create_database: bool,
    /// `postgres://USER@HOST:PORT/DBNAME`, as parts to export.
    url: Vec<Input<String>>,
    /// The certificates of the CA the settings name (`database.ca_file`), the only CA
    /// downstream and the engine then trust; none: Amazon RDS's CAs and the system's roots.
    ca_pem: Option<String>,
}

impl Database {
    /// What downstream's environment says of TLS (crate `postgres_tls`): verified against the CA
    /// named, when one is; on the local cloud without one, libpq's `prefer` (its PostgreSQL's
    /// certificate is self-signed); else verified against RDS's CAs and the system's roots
    /// (downstream's default).
    fn tls_environment(&self, local: bool) -> Vec<(&'static str, Input<String>)> {
        match (&self.ca_pem, local) {
            (Some(pem), _) => vec![("DB_CA_PEM", pem.as_str().into())],
            (None, true) => vec![("DB_TLS", "prefer".into())],
            (None, false) => vec![],
        }
    }
}

/// The most PEM text `database.ca_file` may hold: it travels in downstream's environment, and a
/// function's environment holds 4 KB in all.
const MAX_CA_PEM_BYTES: usize = 3000;

/// The certificates in the file `database.ca_file` names (read through the stack, so that an
/// edit of the file runs the program again), without what surrounds them.
fn read_ca_file(stack: &mut StackDef, path: &str) -> Result<String, String> {
    let text = stack.read_file(path).map_err(|e| {
        format!("database.ca_file: reading `{path}` (relative to the project's root, where provision.json is): {e}")
    })?;
    let mut pem = String::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        inside |= line == "-----BEGIN CERTIFICATE-----";
        if inside {
            pem.push_str(line);
            pem.push('\n');
        }
        inside &= line != "-----END CERTIFICATE-----";
    }
    if pem.is_empty() {
        return Err(format!(
            "database.ca_file `{path}` holds no certificate: it must be the PEM file (-----BEGIN CERTIFICATE-----) \
             of the CA that signed the database's certificate"
        ));
    }
    if pem.len() > MAX_CA_PEM_BYTES {
        return Err(format!(
            "database.ca_file `{path}` holds {} bytes of certificates, more than the {MAX_CA_PEM_BYTES} that fit in a \
             function's environment (4 KB in all): name only the CA that signed the database's certificate",
            pem.len()
        ));
    }
    Ok(pem)
}

/// Declares the stack's RDS instance (with its subnet group when a network is given), or, with
/// a `database` setting, nothing: the brought database is used as it is.
fn declare_database(
    stack: &mut StackDef,
    inputs: &Declaring,
    settings: &PipelineSettings,
    network: Option<&(Vec<String>, Vec<String>, Vec<String>)>,
) -> Result<Database, String> {
    if let Some(brought) = &settings.database {
        let url = brought.parsed().expect("settings are validated when loaded");
        let ca_pem = brought.ca_file.as_deref().map(|path| read_ca_file(stack, path)).transpose()?;
        return Ok(Database {
            url: vec![format!("postgres://{}@{}:{}/{}", url.user, url.host, url.port, url.database).into()],
            host: url.host.as_str().into(),
            port: url.port.to_string().into(),
            name: url.database,
            user: url.user,
            secret_arn: brought.secret_arn.as_deref().map(Input::from),
            create_database: false,
            ca_pem,
        });
    }
    let subnet_group = network.map(|(subnets, _, _)| {
        stack.add(
            "db-subnets",
            RdsSubnetGroupSpec { name: stack.physical_name("db-subnets"), subnet_ids: subnets.clone() },
        )
    });
    let name = database_name(&inputs.request.stack);
    let port = settings.db_port.unwrap_or(if inputs.request.local { LOCAL_DB_PORT } else { 5432 });
    let instance = stack.add(
        "database",
        RdsInstanceSpec {
            identifier: stack.physical_name("db"),
            instance_class: settings.db_instance_class.clone(),
            allocated_storage_gb: 20,
            db_name: name.clone(),
            master_username: DB_USER.into(),
            port,
            publicly_accessible: false,
            subnet_group: subnet_group.as_ref().map(|g| g.name()),
            security_group_ids: network.map(|(_, _, db)| db.clone()).unwrap_or_default(),
            // A protected stack turns it on (the engine's `protect`).
            deletion_protection: false,
        },
    );
    Ok(Database {
        url: vec![
            format!("postgres://{DB_USER}@").into(),
            instance.address(),
            ":".into(),
            instance.port(),
            format!("/{name}").into(),
        ],
        host: instance.address(),
        port: instance.port(),
        name,
        user: DB_USER.into(),
        // RDS keeps the master password in Secrets Manager on AWS; emulators make no secret.
        secret_arn: (!inputs.request.local).then(|| instance.secret_arn()),
        create_database: true,
        ca_pem: None,
    })
}

/// The stack's database name: `pipeline_<stack>` (PostgreSQL identifiers take no '-').
pub fn database_name(stack: &str) -> String {
    format!("pipeline_{}", stack.replace('-', "_"))
}

fn mapping(
    function: &Handle<LambdaFunctionSpec>,
    source_arn: Input<String>,
    settings: &MappingSettings,
    dead_letters: &Handle<SqsQueueSpec>,
) -> EventSourceMappingSpec {
    EventSourceMappingSpec {
        function_name: function.name(),
        event_source_arn: source_arn,
        starting_position: "TRIM_HORIZON".into(),
        batch_size: settings.batch_size,
        batching_window_s: settings.batching_window_s,
        bisect_on_error: settings.bisect_on_error,
        maximum_retry_attempts: settings.maximum_retry_attempts,
        maximum_record_age_s: settings.maximum_record_age_s,
        report_batch_item_failures: true,
        on_failure_arn: Some(dead_letters.arn()),
        enabled: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of the test's own holding `text`, removed when the test ends.
    struct TempFile(String);

    impl std::ops::Deref for TempFile {
        type Target = str;
        fn deref(&self) -> &str {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn file_with(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("pipeline-ca-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path.display().to_string())
    }

    #[test]
    fn the_ca_file_is_read_through_the_stack_without_what_surrounds_its_certificates() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let path = file_with("ca.pem", &format!("the team's CA, made 2026\n{pem}trailing words\n"));
        let mut stack = StackDef::new("s");
        assert_eq!(read_ca_file(&mut stack, &path).unwrap(), pem);
        assert_eq!(stack.document().reads, vec![path.to_string()], "the file is in the document's reads");
    }

    #[test]
    fn a_ca_file_that_is_missing_empty_or_too_big_is_refused_clearly() {
        let mut stack = StackDef::new("s");
        let missing = read_ca_file(&mut stack, "no/such/ca.pem").unwrap_err();
        assert!(missing.contains("database.ca_file: reading `no/such/ca.pem`"), "{missing}");
        let none = read_ca_file(&mut stack, &file_with("key.pem", "-----BEGIN PRIVATE KEY-----\n")).unwrap_err();
        assert!(none.contains("holds no certificate"), "{none}");
        let block = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", "A".repeat(64));
        let big = read_ca_file(&mut stack, &file_with("bundle.pem", &block.repeat(40))).unwrap_err();
        assert!(big.contains("name only the CA that signed"), "{big}");
    }
}
