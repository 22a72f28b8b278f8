//! The distributed adder's settings, read from the settings file (the request's `settings`); every field
//! has a default and an unknown field is an error.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use declaration::settings::FunctionSettings;

/// Fault injection for tests of exactness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosSettings {
    /// Each map or reduce invocation fails with this probability (0 <= R < 1) at a random point
    /// of its work, before or after its writes, as a crash would. 0: off.
    pub crash_rate: f64,
}

impl ChaosSettings {
    /// The functions' environment for it: nothing when off.
    pub fn environment(&self) -> Vec<(&'static str, declaration::Input<String>)> {
        if self.crash_rate > 0.0 {
            vec![("CHAOS_CRASH_RATE", self.crash_rate.to_string().into())]
        } else {
            vec![]
        }
    }
}

/// Every setting of the adder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MapReduceSettings {
    /// Elements per map task (one SQS message: at most 256 KiB, so at most 20,000).
    pub chunk_size: u32,
    /// Partial sums one reduce step combines (2 to 100).
    pub fan_in: u32,
    pub arrays: FunctionSettings,
    pub mapper: FunctionSettings,
    pub reducer: FunctionSettings,
    /// The task queues' visibility timeout. Default: six times the consuming function's timeout,
    /// AWS's advice; AWS refuses less than the function's timeout.
    pub visibility_timeout_s: Option<u32>,
    /// Receives of a task before it is dead-lettered (and its array fails).
    pub max_receive_count: u32,
    /// Messages per invocation (1 to 10,000; more than 10 needs a batching window).
    pub batch_size: i32,
    pub batching_window_s: i32,
    /// Batches in flight per queue (2 to 1000); none: no limit of the mapping's own.
    pub maximum_concurrency: Option<i32>,
    pub chaos: ChaosSettings,
}

impl Default for MapReduceSettings {
    fn default() -> Self {
        Self {
            chunk_size: 2000,
            fan_in: 16,
            arrays: FunctionSettings { memory_mb: 512, timeout_s: 29 },
            mapper: FunctionSettings::default(),
            reducer: FunctionSettings::default(),
            visibility_timeout_s: None,
            max_receive_count: 10,
            batch_size: 10,
            batching_window_s: 0,
            maximum_concurrency: None,
            chaos: ChaosSettings::default(),
        }
    }
}

impl MapReduceSettings {
    /// Reads the adder's settings and checks their values.
    pub fn of(request: &declaration::Request) -> Result<Self> {
        let adder: Self = request.program_settings().map_err(|e| anyhow::anyhow!("the settings: {e}"))?;
        adder.validate().context("the settings are invalid")?;
        Ok(adder)
    }

    /// The visibility timeout of a queue `consumer` reads.
    pub fn visibility_timeout_for(&self, consumer: &FunctionSettings) -> u32 {
        self.visibility_timeout_s.unwrap_or(6 * consumer.timeout_s.max(1) as u32)
    }

    fn validate(&self) -> Result<()> {
        if !(1..=20_000).contains(&self.chunk_size) {
            bail!("chunk_size must be 1 to 20000 elements (one SQS message holds at most 256 KiB)");
        }
        if !(2..=100).contains(&self.fan_in) {
            bail!("fan_in must be 2 to 100");
        }
        for (name, f) in [("arrays", &self.arrays), ("mapper", &self.mapper), ("reducer", &self.reducer)] {
            if !(128..=10240).contains(&f.memory_mb) || !(1..=900).contains(&f.timeout_s) {
                bail!("{name}: memory_mb must be 128..=10240 and timeout_s 1..=900");
            }
        }
        if self.arrays.timeout_s > 29 {
            bail!("arrays: timeout_s must be at most 29 (API Gateway waits 29 s for an answer)");
        }
        if let Some(visibility) = self.visibility_timeout_s {
            let longest = self.mapper.timeout_s.max(self.reducer.timeout_s) as u32;
            if visibility < longest {
                bail!(
                    "visibility_timeout_s ({visibility}) must be at least the workers' timeout ({longest} s): AWS refuses \
                     an SQS mapping otherwise (it advises six times the timeout)"
                );
            }
        }
        if !(1..=1000).contains(&self.max_receive_count) {
            bail!("max_receive_count must be 1 to 1000");
        }
        if !(0.0..1.0).contains(&self.chaos.crash_rate) {
            bail!("chaos.crash_rate must be at least 0 and below 1, not {}", self.chaos.crash_rate);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: serde_json::Value) -> Result<MapReduceSettings> {
        MapReduceSettings::of(&declaration::Request::local("s", value))
    }

    #[test]
    fn queues_default_to_six_times_their_consumers_timeout() {
        let adder = settings(json!({ "mapper": { "timeout_s": 5 } })).unwrap();
        assert_eq!(adder.visibility_timeout_for(&adder.mapper), 30);
        assert_eq!(adder.visibility_timeout_for(&adder.reducer), 180);
    }

    #[test]
    fn what_aws_would_refuse_is_refused_up_front() {
        assert!(format!("{:#}", settings(json!({ "visibility_timeout_s": 10 })).unwrap_err()).contains("at least"));
        assert!(settings(json!({ "chaos": { "crash_rate": 1.0 } })).is_err());
        assert!(settings(json!({ "chunk_size": 50_000 })).is_err());
        assert!(settings(json!({ "arrays": { "timeout_s": 60 } })).is_err());
        let unknown = settings(json!({ "chunk_sizes": 10 })).unwrap_err().to_string();
        assert!(unknown.contains("unknown key `chunk_sizes`: did you mean `chunk_size`?"), "{unknown}");
        assert!(settings(json!({ "chaos": { "crash_rate": 0.3 }, "visibility_timeout_s": 30 })).is_ok());
    }
}
