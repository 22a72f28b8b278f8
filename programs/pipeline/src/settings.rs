//! The pipeline's settings: the knobs of the declared pipeline (shards, memory, batching), read
//! from the settings file (the request's `settings`) so they can change between runs without touching
//! code; every field has a default, and an unknown field is an error rather than silently ignored.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Settings of one event source mapping.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MappingSettings {
    pub batch_size: i32,
    pub batching_window_s: i32,
    pub bisect_on_error: bool,
    pub maximum_retry_attempts: i32,
    pub maximum_record_age_s: i32,
    /// Kinesis only: read through a stream consumer of its own (enhanced fan-out: 2 MiB/s per
    /// shard for this consumer alone, pushed over HTTP/2) instead of sharing the shards' reads.
    pub enhanced_fan_out: bool,
}

impl Default for MappingSettings {
    fn default() -> Self {
        // 1000 measured best on the local cloud (docs/perf.md): the emulator invokes one batch per
        // shard per pass, so records per invocation is the lever; AWS allows up to 10000.
        Self {
            batch_size: 1000,
            batching_window_s: 0,
            bisect_on_error: true,
            maximum_retry_attempts: 10,
            maximum_record_age_s: 3600,
            enhanced_fan_out: false,
        }
    }
}

pub use declaration::settings::FunctionSettings;

/// An existing network to place the database in, given by the user (see ARCHITECTURE.md:
/// provision does not create VPCs). Only `downstream` joins it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Private subnets, in at least two availability zones on AWS (sorted when used).
    pub subnet_ids: Vec<String>,
    /// Security groups of the downstream function (must be allowed out to the database port).
    pub function_security_group_ids: Vec<String>,
    /// Security groups of the database (must allow the function's groups in on its port).
    pub db_security_group_ids: Vec<String>,
}

/// A PostgreSQL the user brings instead of an RDS instance per stack (any endpoint, AWS too).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://USER@HOST:PORT/DBNAME`. No password here: `provision` takes it from
    /// `PGPASSWORD` when it creates the table, and `downstream` from `secret_arn`.
    pub url: String,
    /// A Secrets Manager secret (`{"username": ..., "password": ...}`) `downstream` reads the
    /// password from; none on a database that trusts the functions' network (the local cloud).
    #[serde(default)]
    pub secret_arn: Option<String>,
    /// A PEM file of the CA that signed the database's certificate (relative to the project's
    /// root, or absolute): `downstream` then trusts that CA alone. Without it, it trusts Amazon
    /// RDS's CAs and the system's roots. The certificate must name the host of `url` either way.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// Where a brought database is, parsed from [`DatabaseSettings::url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl DatabaseSettings {
    /// Parses and checks the URL; a password in it is refused, so it never reaches the state.
    pub fn parsed(&self) -> Result<DatabaseUrl> {
        let shape = "database.url must look like postgres://USER@HOST:PORT/DBNAME";
        let rest = self
            .url
            .strip_prefix("postgres://")
            .or_else(|| self.url.strip_prefix("postgresql://"))
            .with_context(|| format!("{shape}, not `{}`", self.url))?;
        let (authority, database) =
            rest.split_once('/').with_context(|| format!("{shape}: the database name is missing"))?;
        let database = database.split('?').next().unwrap_or_default().to_string();
        let (user, host_port) = authority.rsplit_once('@').with_context(|| format!("{shape}: the user is missing"))?;
        if user.contains(':') {
            bail!(
                "database.url holds a password: take it out (a settings file is no place for a secret). provision \
                 reads it from PGPASSWORD; downstream from the Secrets Manager secret named by database.secret_arn"
            );
        }
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => {
                (host.to_string(), port.parse().with_context(|| format!("{shape}: `{port}` is not a port number"))?)
            }
            None => (host_port.to_string(), 5432),
        };
        if user.is_empty() || host.is_empty() || database.is_empty() {
            bail!("{shape}: the user, host and database name must each be given, not `{}`", self.url);
        }
        Ok(DatabaseUrl { user: user.to_string(), host, port, database })
    }
}

/// The archive: every record also lands in the stack's S3 bucket as JSON lines, through a
/// Firehose delivery stream reading the Kinesis stream. On by default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveSettings {
    /// `false` removes the archive (bucket emptied and deleted) on the next `up`.
    pub enabled: bool,
    /// Firehose delivers when this many MB are buffered (1-128)...
    pub buffer_size_mb: i32,
    /// ...or this many seconds have passed (0-900), whichever comes first.
    pub buffer_interval_s: i32,
    /// `UNCOMPRESSED` or `GZIP`.
    pub compression: String,
    /// Where objects go in the bucket; Firehose expands the `!{timestamp:...}` parts.
    pub prefix: String,
    /// Days after which archived objects are deleted; none: kept.
    pub expire_after_days: Option<i32>,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            buffer_size_mb: 5,
            buffer_interval_s: 60,
            compression: "UNCOMPRESSED".into(),
            prefix: "records/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/".into(),
            expire_after_days: None,
        }
    }
}

/// How the stream is sized: `{"mode": "provisioned", "shards": N}`, `{"mode": "provisioned",
/// "target": {"records_per_s": R, "record_bytes": B}}` or `{"mode": "on_demand"}`, with
/// `"autoscale": {"min_shards": 1, "max_shards": 16}` on a provisioned stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSettings {
    pub mode: StreamMode,
    /// The shard count of a provisioned stream (the start, when autoscaled).
    pub shards: Option<i32>,
    /// The rate to size a provisioned stream for.
    pub target: Option<Target>,
    /// Let a scaler change the shard count within bounds as the load changes.
    pub autoscale: Option<Autoscale>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    #[default]
    Provisioned,
    OnDemand,
}

/// The rate users expect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub records_per_s: f64,
    pub record_bytes: u32,
}

/// The bounds of the scaler.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min_shards: i32,
    pub max_shards: i32,
}

/// Every setting of the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// The stream's capacity.
    pub stream: StreamSettings,
    /// The old way to give a provisioned stream's shard count: `stream.shards` now.
    pub shard_count: Option<i32>,
    pub upstream: FunctionSettings,
    pub midstream: FunctionSettings,
    pub downstream: FunctionSettings,
    pub kinesis_mapping: MappingSettings,
    pub table_mapping: MappingSettings,
    pub db_instance_class: String,
    /// Port of the database. Default: 5432 on AWS; the local PostgreSQL's port on an emulator.
    pub db_port: Option<i32>,
    pub metric_namespace: String,
    /// The network for the database; `None`: the default VPC, no function in a VPC.
    pub network: Option<NetworkSettings>,
    /// A database you bring: no RDS instance is made; the table is created in it.
    pub database: Option<DatabaseSettings>,
    /// The S3 archive of every record (Kinesis -> Firehose -> S3).
    pub archive: ArchiveSettings,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            stream: StreamSettings::default(),
            shard_count: None,
            upstream: FunctionSettings::default(),
            midstream: FunctionSettings::default(),
            downstream: FunctionSettings::default(),
            kinesis_mapping: MappingSettings::default(),
            table_mapping: MappingSettings::default(),
            db_instance_class: "db.t4g.micro".into(),
            db_port: None,
            metric_namespace: "Pipeline".into(),
            network: None,
            database: None,
            archive: ArchiveSettings::default(),
        }
    }
}

impl PipelineSettings {
    /// Reads the pipeline's settings and checks their values. The old `shard_count` is taken as
    /// `stream.shards`.
    pub fn of(request: &declaration::Request) -> Result<Self> {
        let mut pipeline: Self = request.program_settings().map_err(|e| anyhow::anyhow!("the settings: {e}"))?;
        pipeline.validate().context("the settings are invalid")?;
        if let Some(shards) = pipeline.shard_count.take() {
            pipeline.stream.shards = Some(shards);
        }
        Ok(pipeline)
    }

    fn validate_stream(&self) -> Result<()> {
        let stream = &self.stream;
        if let Some(shards) = self.shard_count {
            if stream != &StreamSettings::default() {
                bail!(
                    "shard_count and stream are both set: shard_count is the old name of stream.shards; write \
                     \"stream\": {{\"mode\": \"provisioned\", \"shards\": {shards}}} instead"
                );
            }
        }
        let shards = stream.shards.or(self.shard_count);
        if let Some(shards) = shards.filter(|n| !(1..=declaration::capacity::MAX_SHARDS).contains(n)) {
            bail!("stream.shards must be 1 to {}, not {shards}", declaration::capacity::MAX_SHARDS);
        }
        match stream.mode {
            StreamMode::OnDemand if shards.is_some() || stream.target.is_some() || stream.autoscale.is_some() => bail!(
                "an on_demand stream takes no shards, target or autoscale: AWS sizes it (4 MiB/s of writes to \
                 start, up to twice its peak); use \"mode\": \"provisioned\" to size it yourself"
            ),
            StreamMode::Provisioned if shards.is_some() && stream.target.is_some() => {
                bail!("stream.shards and stream.target are both set: give one (the target sizes the shards)")
            }
            _ => {}
        }
        if let Some(target) = &stream.target {
            if !(target.records_per_s > 0.0 && target.records_per_s.is_finite()) || target.record_bytes == 0 {
                bail!("stream.target needs records_per_s above 0 and record_bytes above 0");
            }
            if target.record_bytes > 1024 * 1024 {
                bail!("stream.target.record_bytes is at most 1048576: a Kinesis record holds at most 1 MiB");
            }
            let sizing = declaration::capacity::shards_for(
                target.records_per_s,
                target.record_bytes,
                super::stream::shared_readers(self),
            );
            if sizing.shards > declaration::capacity::MAX_SHARDS {
                bail!(
                    "stream.target needs {}, more than the {} shards a stream may have here (AWS's default limit per \
                     region): lower the target, or use \"mode\": \"on_demand\"",
                    sizing.why,
                    declaration::capacity::MAX_SHARDS
                );
            }
        }
        if let Some(bounds) = &stream.autoscale {
            if !(1 <= bounds.min_shards
                && bounds.min_shards <= bounds.max_shards
                && bounds.max_shards <= declaration::capacity::MAX_SHARDS)
            {
                bail!("stream.autoscale needs 1 <= min_shards <= max_shards <= {}", declaration::capacity::MAX_SHARDS);
            }
        }
        if self.table_mapping.enhanced_fan_out {
            bail!("table_mapping.enhanced_fan_out: enhanced fan-out is a Kinesis feature; DynamoDB streams have none");
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        self.validate_stream()?;
        for (name, f) in
            [("upstream", &self.upstream), ("midstream", &self.midstream), ("downstream", &self.downstream)]
        {
            if !(128..=10240).contains(&f.memory_mb) || !(1..=900).contains(&f.timeout_s) {
                bail!(
                    "{name}: memory_mb must be 128..=10240 and timeout_s 1..=900 (got {} and {})",
                    f.memory_mb,
                    f.timeout_s
                );
            }
        }
        for (name, m) in [("kinesis_mapping", &self.kinesis_mapping), ("table_mapping", &self.table_mapping)] {
            if !(1..=10000).contains(&m.batch_size) || !(0..=300).contains(&m.batching_window_s) {
                bail!("{name}: batch_size must be 1..=10000 and batching_window_s 0..=300");
            }
        }
        if let Some(database) = &self.database {
            database.parsed()?;
        }
        let archive = &self.archive;
        if !(1..=128).contains(&archive.buffer_size_mb) || !(0..=900).contains(&archive.buffer_interval_s) {
            bail!("archive: buffer_size_mb must be 1..=128 and buffer_interval_s 0..=900");
        }
        if !matches!(archive.compression.as_str(), "UNCOMPRESSED" | "GZIP") {
            bail!("archive: compression must be \"UNCOMPRESSED\" or \"GZIP\", not {:?}", archive.compression);
        }
        if archive.expire_after_days.is_some_and(|d| d < 1) {
            bail!("archive: expire_after_days must be at least 1 (or left out to keep objects)");
        }
        if let Some(network) = &self.network {
            if network.subnet_ids.is_empty()
                || network.function_security_group_ids.is_empty()
                || network.db_security_group_ids.is_empty()
            {
                bail!("network: subnet_ids, function_security_group_ids and db_security_group_ids must each name at least one id");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(url: &str) -> Result<DatabaseUrl> {
        DatabaseSettings { url: url.into(), secret_arn: None, ca_file: None }.parsed()
    }

    #[test]
    fn a_database_url_is_parsed_and_a_password_refused() {
        let parsed = url("postgres://app@db.example.com:6432/pipeline").unwrap();
        assert_eq!(
            parsed,
            DatabaseUrl { user: "app".into(), host: "db.example.com".into(), port: 6432, database: "pipeline".into() }
        );
        assert_eq!(url("postgresql://app@host/db").unwrap().port, 5432);
        let err = url("postgres://app:hunter2@host/db").unwrap_err().to_string();
        assert!(err.contains("password") && !err.contains("hunter2"), "{err}");
        assert!(url("mysql://app@host/db").is_err());
        assert!(url("postgres://host:5432/db").is_err(), "the user is required");
        assert!(url("postgres://app@host:5432/").is_err(), "the database is required");
    }

    #[test]
    fn a_target_that_needs_more_shards_than_a_stream_may_have_is_refused() {
        let settings = |records_per_s: u32| {
            let keys =
                serde_json::json!({ "stream": { "target": { "records_per_s": records_per_s, "record_bytes": 1024 } } });
            declaration::Request::local("s", keys)
        };
        let err = format!("{:#}", PipelineSettings::of(&settings(3_000_000)).unwrap_err());
        assert!(err.contains("4000 shards") && err.contains("more than the 500 shards"), "{err}");
        assert!(PipelineSettings::of(&settings(3_000)).is_ok());
    }
}
