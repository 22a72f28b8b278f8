//! `provision new NAME`: a project of the user's own, outside this repository: a Cargo workspace
//! with its program crate (on the `declaration` crate), one function (split into host and logic
//! for hot-swap, the logic's type in a crate of its own), `state/`, a README with its commands and a `.gitignore`. Its dependencies on
//! this tool's crates point at the source `provision` was built from; the versions and features
//! of the rest are this workspace's, and its `Cargo.lock` starts as this one's, so the project
//! builds offline from what this machine already has.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// This workspace's manifest and lock file, as `provision` was built with them.
const TOOL_MANIFEST: &str = include_str!("../../Cargo.toml");
const TOOL_LOCK: &str = include_str!("../../Cargo.lock");

/// The dependencies a template's function uses, declared as this workspace declares them.
const FUNCTION_DEPENDENCIES: &[&str] =
    &["lambda_runtime", "aws_lambda_events", "aws-sdk-dynamodb", "serde_json", "tracing"];

/// The profile sections copied from this workspace (those naming only crates a project has).
const PROFILES: &[&str] =
    &["[profile.dev]", "[profile.dev.package.\"*\"]", "[profile.dev.package.aws-smithy-json]", "[profile.release]"];

/// The templates there are, each with what it stands up and the file of its function's logic.
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    ("http", "a REST API (POST /) -> a function -> a DynamoDB table", "functions/<name>-api/src/logic.rs"),
    (
        "stream",
        "a Kinesis stream -> a consumer function; the stream -> Firehose -> an S3 bucket",
        "functions/<name>-consumer/src/logic.rs",
    ),
];

/// One file of the `http` template: where it goes, and its text.
const HTTP: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/http/Cargo.toml.tmpl")),
    ("provision.json", include_str!("../templates/http/provision.json.tmpl")),
    (".gitignore", include_str!("../templates/http/gitignore.tmpl")),
    ("README.md", include_str!("../templates/http/README.md.tmpl")),
    ("program/Cargo.toml", include_str!("../templates/http/program-Cargo.toml.tmpl")),
    ("program/src/main.rs", include_str!("../templates/http/program-main.rs.tmpl")),
    ("functions/__NAME__-api/Cargo.toml", include_str!("../templates/http/function-Cargo.toml.tmpl")),
    ("functions/__NAME__-api/src/lib.rs", include_str!("../templates/http/function-lib.rs.tmpl")),
    ("functions/__NAME__-api/src/main.rs", include_str!("../templates/http/function-main.rs.tmpl")),
    ("functions/__NAME__-api/src/logic.rs", include_str!("../templates/http/function-logic.rs.tmpl")),
    ("functions/__NAME__-api-types/Cargo.toml", include_str!("../templates/http/types-Cargo.toml.tmpl")),
    ("functions/__NAME__-api-types/src/lib.rs", include_str!("../templates/http/types-lib.rs.tmpl")),
    ("state/.gitkeep", ""),
];

/// One file of the `stream` template.
const STREAM: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/stream/Cargo.toml.tmpl")),
    ("provision.json", include_str!("../templates/stream/provision.json.tmpl")),
    (".gitignore", include_str!("../templates/stream/gitignore.tmpl")),
    ("README.md", include_str!("../templates/stream/README.md.tmpl")),
    ("program/Cargo.toml", include_str!("../templates/stream/program-Cargo.toml.tmpl")),
    ("program/src/main.rs", include_str!("../templates/stream/program-main.rs.tmpl")),
    ("functions/__NAME__-consumer/Cargo.toml", include_str!("../templates/stream/function-Cargo.toml.tmpl")),
    ("functions/__NAME__-consumer/src/lib.rs", include_str!("../templates/stream/function-lib.rs.tmpl")),
    ("functions/__NAME__-consumer/src/main.rs", include_str!("../templates/stream/function-main.rs.tmpl")),
    ("functions/__NAME__-consumer/src/logic.rs", include_str!("../templates/stream/function-logic.rs.tmpl")),
    ("functions/__NAME__-consumer-types/Cargo.toml", include_str!("../templates/stream/types-Cargo.toml.tmpl")),
    ("functions/__NAME__-consumer-types/src/lib.rs", include_str!("../templates/stream/types-lib.rs.tmpl")),
    ("state/.gitkeep", ""),
];

/// Writes project `name` from `template` into `parent/name` and returns its path. Refuses a
/// name that cannot prefix resources, an unknown template, and a folder that is not empty;
/// writes nothing then.
pub fn create(name: &str, template: &str, parent: &Path) -> Result<PathBuf> {
    check_name(name)?;
    let files = match template {
        "http" => HTTP,
        "stream" => STREAM,
        other => {
            let known: Vec<String> = TEMPLATES.iter().map(|(name, about, _)| format!("`{name}` ({about})")).collect();
            bail!("there is no template `{other}`: the templates are {}", known.join(", "))
        }
    };
    let tool = tool_source()?;
    let root = parent.join(name);
    if root.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{} exists and is not empty: nothing was written; pick another name or folder", root.display());
    }
    let functions = tool.parent().expect("provisioner/ is in the tool's workspace").join("functions");
    let (dependencies, profiles) = (dependency_lines()?, profile_sections());
    let (tool, functions) = (tool.display().to_string(), functions.display().to_string());
    let fill = |text: &str| {
        text.replace("__DEPENDENCIES__", &dependencies)
            .replace("__PROFILES__", &profiles)
            .replace("__TOOL__", &tool)
            .replace("__FUNCTIONS__", &functions)
            .replace("__NAME_SNAKE__", &name.replace('-', "_"))
            .replace("__NAME__", name)
    };
    for (path, text) in files {
        let path = root.join(fill(path));
        std::fs::create_dir_all(path.parent().expect("a file's folder"))
            .with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, fill(text)).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(root.join("Cargo.lock"), TOOL_LOCK).context("writing Cargo.lock")?;
    Ok(root)
}

/// A project's name prefixes its function's name and crates: lowercase letters, digits and '-',
/// starting with a letter, at most 24 characters.
fn check_name(name: &str) -> Result<()> {
    let valid = name.len() <= 24
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "project name `{name}` must be 1-24 lowercase letters, digits or '-', starting with a letter (it names \
             the project's crates and its function); nothing was written"
        );
    }
    Ok(())
}

/// The source `provision` was built from (its `provisioner/` folder): a project's crates depend
/// on its `declaration` crate and its functions' host crates.
fn tool_source() -> Result<PathBuf> {
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let needed = [tool.join("declaration/Cargo.toml"), tool.join("../functions/function-host/Cargo.toml")];
    if let Some(missing) = needed.iter().find(|path| !path.is_file()) {
        bail!(
            "provision new needs the source provision was built from, and {} is gone: install provision again from \
             its source (`cargo install --path provisioner`) and keep that folder; nothing was written",
            missing.display()
        );
    }
    Ok(tool.canonicalize()?)
}

/// This workspace's `[workspace.dependencies]` lines for the template's function.
fn dependency_lines() -> Result<String> {
    FUNCTION_DEPENDENCIES
        .iter()
        .map(|name| {
            TOOL_MANIFEST
                .lines()
                .find(|line| line.starts_with(&format!("{name} = ")))
                .map(str::to_string)
                .with_context(|| format!("this provision's manifest declares no `{name}`"))
        })
        .collect::<Result<Vec<_>>>()
        .map(|lines| lines.join("\n"))
}

/// This workspace's profile sections a project shares (the dev profile's settings, so that
/// builds of a project reuse what builds here compiled where the target folder is shared).
fn profile_sections() -> String {
    let mut sections = Vec::new();
    let mut lines = TOOL_MANIFEST.lines().peekable();
    while let Some(line) = lines.next() {
        if !PROFILES.contains(&line.trim()) {
            continue;
        }
        let mut section = vec![line.to_string()];
        while let Some(next) = lines.peek() {
            if next.starts_with('[') {
                break;
            }
            if !next.trim_start().starts_with('#') && !next.trim().is_empty() {
                section.push(next.to_string());
            }
            lines.next();
        }
        sections.push(section.join("\n"));
    }
    sections.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_dependencies_and_profiles_are_this_workspaces() {
        let lines = dependency_lines().unwrap();
        assert!(lines.contains("aws-sdk-dynamodb = {") && lines.contains("lambda_runtime = {"), "{lines}");
        let profiles = profile_sections();
        for section in PROFILES {
            assert!(profiles.contains(section), "{section} copied:\n{profiles}");
        }
        assert!(profiles.contains("opt-level = 1") && !profiles.contains("upstream"), "{profiles}");
    }

    #[test]
    fn a_name_that_cannot_name_crates_and_functions_is_refused() {
        for bad in ["", "Notes", "1notes", "notes_app", "notes-", &"n".repeat(25)] {
            assert!(check_name(bad).is_err(), "`{bad}` is refused");
        }
        assert!(check_name("notes-2").is_ok());
    }
}
