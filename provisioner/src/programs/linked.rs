//! This repository's programs (`programs/pipeline`, `programs/mapreduce`), linked into the engine
//! as libraries for now: each answers the same request a project's program gets and hands over
//! its declaration as the same document, so they are planned, checked and deployed exactly as a
//! user's program is.

use super::{Declaring, Program};
use crate::engine::document::Declaration;
use crate::settings::Settings;
use anyhow::Result;
use declaration::Request;

/// A program crate's entry points.
pub struct Linked {
    name: &'static str,
    about: &'static str,
    declare: fn(&Request) -> std::result::Result<declaration::StackDef, String>,
    needs_account_id: fn(&Request) -> bool,
}

/// The streaming pipeline, the default program.
pub static PIPELINE: Linked = Linked {
    name: pipeline_program::NAME,
    about: pipeline_program::ABOUT,
    declare: pipeline_program::declare_stack,
    needs_account_id: pipeline_program::needs_account_id,
};

/// The distributed adder.
pub static MAPREDUCE: Linked = Linked {
    name: mapreduce_program::NAME,
    about: mapreduce_program::ABOUT,
    declare: mapreduce_program::declare_stack,
    needs_account_id: |_| false,
};

/// The request a program gets for stack `stack` with `settings`, where the rest does not matter
/// (checking the settings, asking what the program needs).
fn settings_request(settings: &Settings) -> Request {
    Request::local("settings", settings.raw().clone())
}

impl Program for Linked {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
    fn check_settings(&self, settings: &Settings) -> Result<()> {
        (self.declare)(&settings_request(settings))
            .map(|_| ())
            .map_err(|problem| anyhow::anyhow!("{}: {problem}", settings.source()))
    }
    fn needs_account_id(&self, settings: &Settings) -> bool {
        (self.needs_account_id)(&settings_request(settings))
    }
    fn declaration(&self, on: &Declaring) -> Result<Declaration> {
        let request = Request {
            version: declaration::VERSION,
            stack: on.stack.to_string(),
            origin: on.origin.to_string(),
            region: on.region.to_string(),
            account_id: on.account_id.to_string(),
            local: on.local,
            settings: on.settings.raw().clone(),
        };
        let stack =
            (self.declare)(&request).map_err(|problem| anyhow::anyhow!("{}: {problem}", on.settings.source()))?;
        Ok(stack.into_document())
    }
}
