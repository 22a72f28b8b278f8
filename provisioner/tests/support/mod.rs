//! What the end-to-end tests share: a stack of their own on the local cloud (unique name and
//! state folder), the `provision` binary, the API, the database, and listings of what exists.
//!
//! The local cloud must be running (`scripts/local-cloud start`; `scripts/test` does it).

#![allow(dead_code)]

pub mod fault_proxy;

use provisioner::cloud::{Cloud, Target};
use provisioner::http::HttpClient;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const ENDPOINT: &str = "http://127.0.0.1:4566";
pub const PG_PORT: u16 = 15432;

/// A stack owned by one test; `down` runs on drop if the test left it up.
pub struct TestStack {
    pub name: String,
    pub state_dir: PathBuf,
    pub settings: Option<PathBuf>,
    /// The endpoint `provision` is pointed at: the local cloud, or a proxy in front of it.
    pub endpoint: String,
    /// The program the stack is an instance of (`--program`; empty: none given, the state's).
    pub program: &'static str,
    /// `--state-url`, when the state is remote.
    pub state_url: Option<String>,
    /// The checkout `provision` runs in (the workspace unless set: a second checkout).
    pub checkout: Option<PathBuf>,
    torn_down: bool,
}

/// A second checkout of the workspace at another path (its own folder of links to this one's
/// sources and manifests), sharing this one's build output: what a teammate's clone is to
/// `provision`, without building everything again.
pub fn second_checkout(label: &str) -> PathBuf {
    let dir = workspace().join("target").join("test-checkouts").join(format!("{label}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in ["Cargo.toml", "Cargo.lock", "provision.json", "functions", "programs", "provisioner", "state"] {
        let _ = std::os::unix::fs::symlink(workspace().join(entry), dir.join(entry));
    }
    let _ = std::fs::remove_file(dir.join("state"));
    dir
}

/// A fresh folder of the test's own outside the repository (under the system's temporary
/// folder), removed with everything in it, a project's build output included, when the test
/// ends; kept when the test failed, to look into.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<temp>/provision-<label>-<process id>`, emptied if a run before left it.
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("provision-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Panics with the fix when the local cloud is not running.
pub fn require_local_cloud() {
    let healthy = std::net::TcpStream::connect_timeout(&"127.0.0.1:4566".parse().unwrap(), Duration::from_secs(1))
        .is_ok()
        && std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{PG_PORT}").parse().unwrap(),
            Duration::from_secs(1),
        )
        .is_ok();
    assert!(
        healthy,
        "the local cloud is not running: start it with `scripts/local-cloud start` (scripts/test does this)"
    );
}

impl TestStack {
    /// A fresh stack named `t<label><pid>` with its own state folder.
    pub fn new(label: &str) -> Self {
        require_local_cloud();
        let name = format!("t{label}{}", std::process::id());
        let state_dir = workspace().join("target").join("test-state").join(&name);
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(&state_dir).unwrap();
        Self {
            name,
            state_dir,
            settings: None,
            endpoint: ENDPOINT.to_string(),
            program: "pipeline",
            state_url: None,
            checkout: None,
            torn_down: false,
        }
    }

    /// A fresh stack of `program`.
    pub fn of_program(label: &str, program: &'static str) -> Self {
        let mut stack = Self::new(label);
        stack.program = program;
        stack
    }

    /// Writes a settings file for this stack and uses it from now on.
    pub fn set_settings(&mut self, settings: &Value) {
        let path = self.state_dir.join("settings.json");
        std::fs::write(&path, settings.to_string()).unwrap();
        self.settings = Some(path);
    }

    /// Runs `provision <args>` against this stack and returns its output.
    pub fn provision(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running provision")
    }

    /// The `provision <args>` command for this stack (endpoint, credentials, state folder and
    /// settings set), for tests that spawn it themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_provision"));
        command
            .current_dir(self.checkout.clone().unwrap_or_else(workspace))
            .env("CARGO_TARGET_DIR", workspace().join("target"))
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .args(["--stack", &self.name, "--state-dir"])
            .arg(&self.state_dir);
        if !self.program.is_empty() {
            command.args(["--program", self.program]);
        }
        command.args(args);
        if let Some(settings) = &self.settings {
            command.arg("--settings").arg(settings);
        }
        if let Some(url) = &self.state_url {
            command.args(["--state-url", url]);
        }
        command
    }

    /// Runs `provision <args>`, asserts success, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.provision(args);
        assert!(
            out.status.success(),
            "provision {args:?} failed:\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `up --yes --json`, parsed.
    pub fn up(&self) -> Value {
        serde_json::from_str(&self.ok(&["--json", "up", "--yes"])).expect("up --json prints JSON")
    }

    /// `plan --json`, parsed.
    pub fn plan(&self) -> Value {
        serde_json::from_str(&self.ok(&["--json", "plan", "--skip-build"])).expect("plan --json prints JSON")
    }

    /// `down --yes`, then a listing of every kind the engine knows: nothing of the stack is left.
    pub fn down(&mut self) {
        self.ok(&["down", "--yes"]);
        self.torn_down = true;
        let left = self.leftovers();
        assert!(left.is_empty(), "`down` of stack `{}` left: {left:?}", self.name);
    }

    /// What exists of the stack on its endpoint (`resources_named`), listed on a thread of its
    /// own so that sync code inside a test's runtime can ask.
    pub fn leftovers(&self) -> Vec<String> {
        let (endpoint, name) = (self.endpoint.clone(), self.name.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async { resources_named(&cloud_at(&endpoint).await, &name).await })
        })
        .join()
        .expect("listing what the stack left")
    }

    /// The stack was taken down by another checkout: no `down` when this value is dropped.
    pub fn forget(&mut self) {
        self.torn_down = true;
    }

    /// The state file's path.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join(format!("{}.json", self.name))
    }

    /// The recorded state.
    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state_file()).expect("state file exists")).unwrap()
    }

    /// An output recorded in the state; panics when the state records none (a test comparing
    /// with a missing output must not pass on an empty string).
    pub fn output(&self, resource: &str, output: &str) -> String {
        let state = self.state();
        let value = state["resources"][resource]["outputs"][output].as_str();
        value.unwrap_or_else(|| panic!("the state records no output `{output}` of `{resource}`")).to_string()
    }

    /// The stack's database name.
    pub fn database(&self) -> String {
        pipeline_program::database_name(&self.name)
    }

    /// A connection to the stack's database.
    pub async fn db(&self) -> tokio_postgres::Client {
        connect(&self.database()).await.expect("connecting to the stack's database")
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        if !self.torn_down {
            let _ = self.provision(&["down", "--yes"]);
        }
    }
}

/// Connects to a database of the local PostgreSQL.
pub async fn connect(database: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(PG_PORT)
        .user("pipeline")
        .dbname(database)
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Clients for the local cloud.
pub async fn cloud() -> Cloud {
    cloud_at(ENDPOINT).await
}

/// The second local cloud, LocalStack Community (`scripts/local-cloud localstack start`).
pub const LOCALSTACK: &str = "http://127.0.0.1:4567";

/// The target of a local endpoint, in `us-east-1`.
pub fn target_at(endpoint: &str) -> Target {
    Target { endpoint_url: Some(endpoint.into()), region: Some("us-east-1".into()), profile: None }
}

/// Clients for a local endpoint.
pub async fn cloud_at(endpoint: &str) -> Cloud {
    Cloud::connect(target_at(endpoint)).await.unwrap()
}

/// Fails the test unless LocalStack is running.
pub fn require_localstack() {
    let up = std::net::TcpStream::connect_timeout(&"127.0.0.1:4567".parse().unwrap(), Duration::from_secs(1));
    assert!(
        up.is_ok(),
        "LocalStack is not running: start it with `scripts/local-cloud localstack start` (scripts/test does this)"
    );
}

/// An HTTP client.
pub fn http() -> HttpClient {
    HttpClient::new()
}

/// Polls `check` every 250 ms until it returns true or `timeout` passes; returns whether it did.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// How many rows the stack's table holds (0 when it cannot be read).
pub async fn row_count(stack: &TestStack) -> i64 {
    match stack.db().await.query_one("SELECT count(*) FROM records", &[]).await {
        Ok(row) => row.get(0),
        Err(_) => 0,
    }
}

/// What exists of `stack` on `cloud`, for each kind the engine knows (the registry's), by name
/// prefix: `"<kind> <name>"` lines, sorted. A kind the registry has and this has no listing for
/// fails here, so a kind added later is checked for leftovers as soon as it exists.
pub async fn resources_named(cloud: &Cloud, stack: &str) -> Vec<String> {
    resources_named_of(cloud, stack, provisioner::aws::registry().kinds()).await
}

/// What exists of `stack` on `cloud` among these kinds (an endpoint that serves only some).
pub async fn resources_named_of(
    cloud: &Cloud,
    stack: &str,
    kinds: impl IntoIterator<Item = provisioner::aws::Kind>,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for kind in kinds {
        let listing = listing_of(kind.name());
        if listed.insert(listing) {
            found.extend(list(cloud, stack, listing).await);
        }
    }
    found.sort();
    found
}

/// The listing that finds resources of `kind` (mappings of both kinds share one).
fn listing_of(kind: &str) -> &'static str {
    match kind {
        "kinesis_stream" => "stream",
        "dynamodb_table" => "table",
        "lambda_function" => "function",
        "event_source_mapping" | "sqs_event_source_mapping" => "mapping",
        "lambda_permission" => "permission",
        "rest_api" => "api",
        "iam_role" => "role",
        "sqs_queue" => "queue",
        "rds_instance" => "db",
        "rds_subnet_group" => "subnetgroup",
        "postgres_schema" => "database",
        "s3_bucket" => "bucket",
        "firehose_delivery_stream" => "firehose",
        "log_group" => "loggroup",
        "api_key" => "apikey",
        "usage_plan" => "plan",
        "sns_topic" => "topic",
        "sns_subscription" => "subscription",
        "cloudwatch_alarm" => "alarm",
        "kinesis_stream_consumer" => "consumer",
        other => {
            panic!("tests/support: no leftover listing for the kind `{other}`: add one to `listing_of` and `list`")
        }
    }
}

/// The `"<listing> <name>"` lines of one listing for `stack`.
async fn list(cloud: &Cloud, stack: &str, listing: &str) -> Vec<String> {
    let prefix = format!("{stack}-");
    let ours = |name: &str| name.starts_with(&prefix);
    let line = |name: &str| format!("{listing} {name}");
    match listing {
        "stream" => {
            let streams = cloud.kinesis.list_streams().send().await.unwrap();
            streams.stream_names().iter().filter(|n| ours(n)).map(|n| line(n)).collect()
        }
        "consumer" => {
            let mut consumers = Vec::new();
            let streams = cloud.kinesis.list_streams().send().await.unwrap();
            for stream in streams.stream_names().iter().filter(|n| ours(n)) {
                let Ok(summary) = cloud.kinesis.describe_stream_summary().stream_name(stream).send().await else {
                    continue;
                };
                let Some(arn) = summary.stream_description_summary.map(|s| s.stream_arn) else { continue };
                let listed = cloud.kinesis.list_stream_consumers().stream_arn(arn).send().await.unwrap();
                consumers.extend(listed.consumers().iter().map(|c| line(&format!("{stream}/{}", c.consumer_name()))));
            }
            consumers
        }
        "table" => {
            let tables = cloud.dynamodb.list_tables().send().await.unwrap();
            tables.table_names().iter().filter(|n| ours(n)).map(|n| line(n)).collect()
        }
        "function" => stack_functions(cloud, &prefix).await.iter().map(|n| line(n)).collect(),
        "permission" => {
            let mut statements = Vec::new();
            for function in stack_functions(cloud, &prefix).await {
                let Ok(policy) = cloud.lambda.get_policy().function_name(&function).send().await else { continue };
                let policy: Value = serde_json::from_str(policy.policy().unwrap_or("{}")).unwrap_or_default();
                for statement in policy["Statement"].as_array().into_iter().flatten() {
                    statements.push(line(&format!("{function}/{}", statement["Sid"].as_str().unwrap_or("?"))));
                }
            }
            statements
        }
        "mapping" => {
            let mappings = cloud.lambda.list_event_source_mappings().send().await.unwrap();
            mappings
                .event_source_mappings()
                .iter()
                .filter(|m| m.function_arn().is_some_and(|a| a.contains(&format!(":function:{prefix}"))))
                .map(|m| line(m.uuid().unwrap_or_default()))
                .collect()
        }
        "api" => {
            let apis = cloud.apigateway.get_rest_apis().send().await.unwrap();
            apis.items().iter().filter_map(|a| a.name()).filter(|n| ours(n)).map(line).collect()
        }
        "role" => {
            let roles = cloud.iam.list_roles().send().await.unwrap();
            roles.roles().iter().map(|r| r.role_name()).filter(|n| ours(n)).map(line).collect()
        }
        "queue" => {
            let queues = cloud.sqs.list_queues().queue_name_prefix(&prefix).send().await.unwrap();
            queues.queue_urls().iter().map(|u| line(u)).collect()
        }
        "db" => {
            let instances = cloud.rds.describe_db_instances().send().await.unwrap();
            instances
                .db_instances()
                .iter()
                .filter_map(|i| i.db_instance_identifier())
                .filter(|n| ours(n))
                .map(line)
                .collect()
        }
        "subnetgroup" => {
            let groups = cloud.rds.describe_db_subnet_groups().send().await.unwrap();
            groups
                .db_subnet_groups()
                .iter()
                .filter_map(|g| g.db_subnet_group_name())
                .filter(|n| ours(n))
                .map(line)
                .collect()
        }
        "database" => {
            // The database the stack's schema made on the local PostgreSQL (a database the user
            // brings is theirs, and stays).
            let name = pipeline_program::database_name(stack);
            let Ok(admin) = connect("postgres").await else { return Vec::new() };
            let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
            exists.map(|_| line(&name)).into_iter().collect()
        }
        "bucket" => {
            let buckets = cloud.s3.list_buckets().send().await.unwrap();
            buckets.buckets().iter().filter_map(|b| b.name()).filter(|n| ours(n)).map(line).collect()
        }
        "firehose" => {
            let deliveries = cloud.firehose.list_delivery_streams().send().await.unwrap();
            deliveries.delivery_stream_names().iter().filter(|n| ours(n)).map(|n| line(n)).collect()
        }
        "loggroup" => {
            let groups = cloud
                .logs
                .describe_log_groups()
                .log_group_name_prefix(format!("/aws/lambda/{prefix}"))
                .send()
                .await
                .unwrap();
            groups.log_groups().iter().filter_map(|g| g.log_group_name()).map(line).collect()
        }
        "apikey" => {
            let keys = cloud.apigateway.get_api_keys().name_query(&prefix).send().await.unwrap();
            keys.items().iter().filter_map(|k| k.name()).map(line).collect()
        }
        "plan" => {
            let plans = cloud.apigateway.get_usage_plans().send().await.unwrap();
            plans.items().iter().filter_map(|p| p.name()).filter(|n| ours(n)).map(line).collect()
        }
        "topic" => {
            let topics = cloud.sns.list_topics().send().await.unwrap();
            topics
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .filter(|arn| arn.rsplit(':').next().is_some_and(&ours))
                .map(line)
                .collect()
        }
        "subscription" => {
            let subscriptions = cloud.sns.list_subscriptions().send().await.unwrap();
            subscriptions
                .subscriptions()
                .iter()
                .filter(|s| {
                    let topic = s.topic_arn().and_then(|arn| arn.rsplit(':').next()).unwrap_or_default();
                    ours(topic) || s.endpoint().is_some_and(|e| e.contains(&format!(":function:{prefix}")))
                })
                .filter_map(|s| s.subscription_arn())
                .map(line)
                .collect()
        }
        "alarm" => {
            let alarms = cloud.cloudwatch.describe_alarms().alarm_name_prefix(&prefix).send().await.unwrap();
            alarms.metric_alarms().iter().filter_map(|a| a.alarm_name()).map(line).collect()
        }
        other => unreachable!("a listing `{other}` without its calls"),
    }
}

/// The stack's Lambda functions, by name.
async fn stack_functions(cloud: &Cloud, prefix: &str) -> Vec<String> {
    let functions = cloud.lambda.list_functions().send().await.unwrap();
    functions
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

// Helpers for the tests of the functions' behaviour (tests/functions.rs, tests/postgres_outage.rs).

/// Every id in the stack's table (empty when it cannot be read).
pub async fn row_ids(stack: &TestStack) -> std::collections::BTreeSet<String> {
    match stack.db().await.query("SELECT id FROM records", &[]).await {
        Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
        Err(_) => Default::default(),
    }
}

/// Waits until every id of `ids` is a row of the stack's table, or `timeout` passes; returns
/// the ids the table holds then.
pub async fn wait_for_rows(
    stack: &TestStack,
    ids: &std::collections::BTreeSet<String>,
    timeout: Duration,
) -> std::collections::BTreeSet<String> {
    eventually(timeout, || async { row_ids(stack).await.is_superset(ids) }).await;
    row_ids(stack).await
}

/// Puts `data` on the Kinesis stream with `partition_key`, as a producer other than `upstream`
/// would.
pub async fn put_on_stream(cloud: &Cloud, stream: &str, partition_key: &str, data: &[u8]) {
    cloud
        .kinesis
        .put_record()
        .stream_name(stream)
        .partition_key(partition_key)
        .data(aws_sdk_kinesis::primitives::Blob::new(data))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("putting a record on {stream}: {}", aws_sdk_kinesis::error::DisplayErrorContext(&e))
        });
}

/// Every record on the Kinesis stream, read from TRIM_HORIZON on every shard, as
/// `(partition key, data)`.
pub async fn stream_records(cloud: &Cloud, stream: &str) -> Vec<(String, Vec<u8>)> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let shards = cloud.kinesis.list_shards().stream_name(stream).send().await.expect("listing the stream's shards");
    let mut records = Vec::new();
    for shard in shards.shards() {
        let mut iterator = cloud
            .kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("getting a TRIM_HORIZON shard iterator")
            .shard_iterator()
            .map(str::to_owned);
        // Read until a call returns nothing and says the reader is at the tip of the shard (or
        // a few calls in a row return nothing).
        let mut empty_pages = 0;
        while let Some(current) = iterator.take() {
            let page = cloud
                .kinesis
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
                .expect("reading the shard");
            for record in page.records() {
                records.push((record.partition_key().unwrap_or_default().to_owned(), record.data().as_ref().to_vec()));
            }
            empty_pages = if page.records().is_empty() { empty_pages + 1 } else { 0 };
            if empty_pages >= 3 || (empty_pages > 0 && page.millis_behind_latest().unwrap_or(0) == 0) {
                break;
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    records
}

/// Receives every message the queue has visible now, deletes them, and returns their bodies
/// parsed as JSON (a body that is not JSON becomes a JSON string).
pub async fn drain_queue(cloud: &Cloud, url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let received = cloud
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receiving from the dead-letter queue");
        if received.messages().is_empty() {
            return bodies;
        }
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            bodies.push(serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned())));
            if let Some(handle) = message.receipt_handle() {
                cloud
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("deleting a message");
            }
        }
    }
}

/// The configuration of one of the stack's functions (`upstream`, `midstream`, `downstream`).
pub async fn function_config(
    cloud: &Cloud,
    stack: &TestStack,
    function: &str,
) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
    cloud.lambda.get_function_configuration().function_name(format!("{}-{function}", stack.name)).send().await.unwrap()
}

// Helpers for the engine's tests (tests/reconcile.rs, tests/ownership.rs, tests/interrupted.rs).

/// Resource kinds and how many of each one stack makes.
pub const EXPECTED: [(&str, usize); 11] = [
    ("stream", 1),
    ("table", 1),
    ("function", 3),
    ("mapping", 2),
    ("api", 1),
    ("role", 4),
    ("queue", 1),
    ("db", 1),
    ("bucket", 1),
    ("firehose", 1),
    ("loggroup", 3),
];

/// Asserts the cloud holds exactly one stack's worth of resources with this stack's prefix.
pub async fn assert_exactly_one_of_everything(stack: &TestStack) {
    let found = resources_named(&cloud().await, &stack.name).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for resource in &found {
        *counts.entry(resource.split(' ').next().unwrap()).or_default() += 1;
    }
    for (kind, expected) in EXPECTED {
        assert_eq!(counts.get(kind).copied().unwrap_or(0), expected, "{kind}: found {found:#?}");
    }
}

/// The ids and actions of a plan's changes.
pub fn actions(plan: &Value) -> BTreeMap<String, String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect()
}

// The emulator's default VPC, read through its EC2 query API (which provision itself never calls).

/// Every `<tag>value</tag>` in an EC2 query answer.
pub fn values_of(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    xml.split(&open).skip(1).filter_map(|rest| rest.split(&format!("</{tag}>")).next()).map(String::from).collect()
}

pub async fn ec2(action: &str) -> String {
    let authorization =
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0";
    let response = http()
        .post_with_headers(
            &format!("{ENDPOINT}/"),
            &[("content-type", "application/x-www-form-urlencoded"), ("authorization", authorization)],
            format!("Action={action}&Version=2016-11-15"),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{action}: {}", response.body);
    response.body
}

/// Two subnets (sorted) and the security groups of the emulator's default VPC.
pub async fn default_network() -> (Vec<String>, Vec<String>) {
    let subnets = values_of(&ec2("DescribeSubnets").await, "subnetId");
    let groups = values_of(&ec2("DescribeSecurityGroups").await, "groupId");
    assert!(subnets.len() >= 2 && !groups.is_empty(), "the emulator's default VPC: {subnets:?} {groups:?}");
    let mut chosen: Vec<String> = subnets[..2].to_vec();
    chosen.sort();
    (chosen, groups)
}

/// Posts records and waits until they are all in the stack's table.
pub async fn assert_pipeline_delivers(stack: &TestStack, label: &str) {
    let url = stack.output("api", "url");
    let http = http();
    for i in 0..3 {
        let answer =
            http.post_json(&url, &json!({"id": format!("{label}-{i}"), "message": "m", "timestamp": 1})).await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let pattern = format!("{label}-%");
    let arrived = eventually(Duration::from_secs(60), || async {
        match stack.db().await.query_one("SELECT count(*) FROM records WHERE id LIKE $1", &[&pattern]).await {
            Ok(row) => row.get::<_, i64>(0) == 3,
            Err(_) => false,
        }
    })
    .await;
    assert!(arrived, "records posted after `{label}` did not all arrive");
}

/// A second MiniStack, started for one test with `AUTH=true`: it verifies SigV4 signatures and
/// evaluates IAM policies (the shared one checks only that a signature is there). Stopped, with
/// the function processes it started, when dropped.
pub struct VerifyingCloud {
    pub endpoint: String,
    process: std::process::Child,
}

impl VerifyingCloud {
    /// Starts it on `port` and waits for its health check.
    pub fn start(port: u16) -> Self {
        use std::os::unix::process::CommandExt;
        let workspace = workspace();
        let binary = workspace.join(".local-cloud/venv/bin/ministack");
        assert!(
            binary.exists(),
            "MiniStack is not installed: run `scripts/local-cloud start` (scripts/test does this)"
        );
        let tmp = workspace.join("target").join(format!("verifying-cloud-{port}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(tmp.join("ministack.log")).unwrap();
        let process = Command::new(binary)
            .current_dir(&tmp)
            .env("AUTH", "true")
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("TMPDIR", &tmp)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("LOG_LEVEL", "WARNING")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting MiniStack");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "MiniStack with AUTH=true did not start on {port}");
            std::thread::sleep(Duration::from_millis(200));
        }
        Self { endpoint, process }
    }

    /// Clients for it, signing as its root user.
    pub async fn cloud(&self) -> Cloud {
        Cloud::connect(Target {
            endpoint_url: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            profile: None,
        })
        .await
        .unwrap()
    }
}

impl Drop for VerifyingCloud {
    fn drop(&mut self) {
        // SAFETY: a signal to the process group this value started.
        unsafe { libc::kill(-(self.process.id() as i32), libc::SIGKILL) };
        let _ = self.process.wait();
    }
}

/// `provision --stack <stack> <args>` to run in `dir`, a project of its own outside this
/// repository (its `provision.json` names its program), against the local cloud, with cargo
/// offline and the project's own target directory.
pub fn project_command(dir: &Path, stack: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provision"));
    command
        .current_dir(dir)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_TARGET_DIR")
        .env("AWS_ENDPOINT_URL", ENDPOINT)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .args(["--stack", stack])
        .args(args);
    command
}

/// Reads a child's stdout lines into a shared list, as they come.
pub fn collect_lines(stdout: std::process::ChildStdout) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l))
    });
    lines
}
