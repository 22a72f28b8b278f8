//! The declaration document (docs/declaration.md): the schema in docs/ is the engine's own,
//! `provision synth` prints for each program a document that schema accepts (checked by an
//! independent JSON Schema validator, Python's `jsonschema`), and the schema refuses what the
//! engine refuses.

mod support;

use provisioner::aws;
use provisioner::engine::document;
use serde_json::{json, Value};
use std::process::Command;
use support::*;

/// The schema as docs/ holds it.
fn schema_in_docs() -> Value {
    let path = workspace().join("docs/declaration.schema.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// What an independent validator says of `document` against the schema in docs/: `None` when it
/// is valid, else its message. Python's `jsonschema` comes with LocalStack's environment.
fn validator_says(document: &Value) -> Option<String> {
    let python = workspace().join(".local-cloud/localstack/bin/python3");
    assert!(
        python.exists(),
        "LocalStack's Python environment (with jsonschema) is missing: scripts/local-cloud localstack start"
    );
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(sys.stdin)))\n\
        print('\\n'.join(f'{list(e.absolute_path)}: {e.message}' for e in errors))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(workspace().join("docs/declaration.schema.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(document.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the validator ran: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!said.is_empty()).then_some(said)
}

/// `provision synth` for `program`, as stack `name`: the document it prints.
fn synth(program: &str, name: &str) -> Value {
    let scratch = Scratch::new(&format!("synth-{name}"));
    let state = scratch.join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_provision"))
        .current_dir(workspace())
        .env("AWS_ENDPOINT_URL", ENDPOINT)
        .args(["--stack", name, "--program", program, "--state-dir"])
        .arg(&state)
        .arg("synth")
        .output()
        .unwrap();
    assert!(out.status.success(), "synth {program}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!state.exists(), "synth writes no state");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_schema_in_docs_is_the_one_the_engine_holds_declarations_to() {
    let engine = document::schema(aws::registry());
    if std::env::var_os("WRITE_DECLARATION_SCHEMA").is_some() {
        let text = serde_json::to_string_pretty(&engine).unwrap() + "\n";
        std::fs::write(workspace().join("docs/declaration.schema.json"), text).unwrap();
    }
    assert!(
        schema_in_docs() == engine,
        "docs/declaration.schema.json is out of date: WRITE_DECLARATION_SCHEMA=1 cargo test -p provisioner --test declaration"
    );
}

#[test]
fn synth_prints_for_each_program_a_declaration_the_schema_accepts() {
    for program in ["pipeline", "mapreduce"] {
        let document = synth(program, &format!("syn{}", &program[..3]));
        assert_eq!(document["version"], json!(document::VERSION));
        assert!(document["resources"].as_array().unwrap().len() > 5, "{program}: {document}");
        assert!(
            document["resources"].as_array().unwrap().iter().all(|r| r["properties"].get("tags").is_none()),
            "{program}: the mark is the engine's, not the program's"
        );
        assert_eq!(validator_says(&document), None, "{program}: the schema accepts synth's output");
    }
}

#[test]
fn the_schema_refuses_what_the_engine_refuses() {
    let good = synth("mapreduce", "synbad");
    let bad = |change: &dyn Fn(&mut Value)| {
        let mut document = good.clone();
        change(&mut document);
        validator_says(&document)
    };
    let said = bad(&|d| d["resources"][0]["properties"]["retention"] = json!(60)).expect("an unknown property");
    assert!(said.contains("retention"), "{said}");
    assert!(bad(&|d| d["resources"][0]["kind"] = json!("ftp_server")).is_some(), "an unknown kind");
    assert!(bad(&|d| d["version"] = json!(2)).is_some(), "another version");
    assert!(bad(&|d| d["resources"][0]["properties"]["tags"] = json!({})).is_some(), "the mark");
    assert!(bad(&|d| d["resources"][0]["color"] = json!("red")).is_some(), "an unknown field");
}
