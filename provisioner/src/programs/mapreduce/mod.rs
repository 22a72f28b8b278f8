//! The distributed adder (work in progress).

use crate::engine::declare::StackDef;
use crate::programs::{Declaring, Program};
use crate::settings::Settings;
use anyhow::{bail, Result};

/// The distributed adder.
pub struct MapReduce;

impl Program for MapReduce {
    fn name(&self) -> &'static str {
        "mapreduce"
    }
    fn about(&self) -> &'static str {
        "the distributed adder"
    }
    fn check_settings(&self, _settings: &Settings) -> Result<()> {
        Ok(())
    }
    fn declare(&self, _on: &Declaring) -> Result<StackDef> {
        bail!("not yet")
    }
}
