//! A program's entry point: read the engine's request on stdin, declare, print the document on
//! stdout (`docs/program.md`).

use crate::StackDef;
use serde::Deserialize;
use serde_json::Value;
use std::io::{Read, Write};

/// What the engine asks a program for: one JSON object on its stdin.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// The version of the document the engine reads.
    pub version: u32,
    /// The stack's name: every physical name starts with it ([`StackDef::physical_name`]).
    pub stack: String,
    /// The checkout's part of the ownership mark (for what cannot be tagged).
    #[serde(default)]
    pub origin: String,
    pub region: String,
    /// The account the stack is deployed in.
    #[serde(default)]
    pub account_id: String,
    /// True on an emulator (MiniStack, LocalStack), false on AWS.
    pub local: bool,
    /// The project's settings file as written (`{}` without one): the program's to read.
    #[serde(default)]
    pub settings: Value,
}

impl Request {
    /// A request for stack `stack` on an emulator (us-east-1, account 000000000000) with these
    /// settings: for a program's tests, and tools that declare without the engine.
    pub fn local(stack: &str, settings: Value) -> Self {
        Self {
            version: crate::VERSION,
            stack: stack.to_string(),
            origin: String::new(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            local: true,
            settings,
        }
    }

    /// The setting `key` of the settings file, read as `T`; `default` when it is absent. An
    /// error names the key and what was wrong, for the program to return.
    pub fn setting<T: serde::de::DeserializeOwned>(&self, key: &str, default: T) -> Result<T, String> {
        match self.settings.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|err| format!("the setting `{key}` is not what this program reads: {err}")),
        }
    }
}

/// Runs a program: reads the request on stdin, calls `declare`, prints the document on stdout.
/// An error from `declare` (bad settings, say) is printed on stderr and the process exits with
/// status 2, which the engine shows; nothing is deployed.
pub fn run(declare: impl FnOnce(&Request) -> Result<StackDef, String>) {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        fail(&format!("reading the request on stdin: {err}"));
    }
    let request: Request = match serde_json::from_str(&input) {
        Ok(request) => request,
        Err(err) => fail(&format!(
            "this program answers provision's request (JSON on stdin), and what it read is not one ({err}); \
             run it through `provision synth`"
        )),
    };
    match declare(&request) {
        Ok(stack) => {
            let text = serde_json::to_string(stack.document()).expect("a declaration serializes");
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{text}").and_then(|()| stdout.flush()).is_err() {
                fail("writing the declaration to stdout failed");
            }
        }
        Err(problem) => fail(&problem),
    }
}

fn fail(problem: &str) -> ! {
    eprintln!("{problem}");
    std::process::exit(2)
}
