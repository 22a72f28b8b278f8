//! The stack's ownership mark: the tags `provision:stack=<stack>` and `provision:origin=<origin>`
//! every resource of a kind that takes tags carries, and how a found resource's owner is read
//! from them. Declaring (`declare`) writes the mark into the declared `tags`; adopting
//! (`ownership`, `lifecycle`) reads it back.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The tag naming the stack that owns a resource.
pub const STACK_TAG: &str = "provision:stack";
/// The tag naming the checkout (origin) that owns a resource.
pub const ORIGIN_TAG: &str = "provision:origin";
/// The property that carries the mark in declared and observed properties.
pub const TAGS_PROPERTY: &str = "tags";
/// Only tags with this prefix are the engine's business: users' own tags are never drift.
pub const TAG_PREFIX: &str = "provision:";

/// The owner's mark of one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub stack: String,
    pub origin: String,
}

impl Mark {
    /// The mark as tags.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(STACK_TAG.to_string(), self.stack.clone()), (ORIGIN_TAG.to_string(), self.origin.clone())])
    }

    /// The origin of a checkout: a short hash of this host's name and the workspace's path, so
    /// the same checkout finds its resources again after losing its state, and another checkout
    /// of the same stack name does not take them.
    pub fn origin_of(workspace: &Path) -> String {
        let host = host_name();
        let path = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
        let digest = Sha256::digest(format!("{host}:{}", path.display()).as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// A new lineage id: the origin of the mark of a stack whose state was made remote, or moved
    /// by `state migrate`. Unlike a checkout's origin it cannot be computed again, so a run
    /// without that state never takes the resources for its own.
    pub fn new_lineage() -> String {
        format!("{LINEAGE_PREFIX}{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
    }
}

/// What a lineage origin starts with (a checkout's origin is a bare hash).
const LINEAGE_PREFIX: &str = "lineage-";

/// True for an origin that is a state's lineage, not a checkout's: resources carrying it belong
/// to a state kept somewhere (remote, or moved), never to a run that has no state.
pub fn is_lineage(origin: &str) -> bool {
    origin.starts_with(LINEAGE_PREFIX)
}

/// This machine's host name (empty when it has none).
pub fn host_name() -> String {
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let named = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    if !named {
        return String::new();
    }
    String::from_utf8_lossy(&host[..host.iter().position(|b| *b == 0).unwrap_or(host.len())]).into_owned()
}

/// Who a found resource belongs to, by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// It carries this stack's mark.
    ThisStack,
    /// It carries this stack's name from another checkout.
    OtherOrigin(String),
    /// It carries another stack's mark.
    OtherStack(String),
    /// It carries no mark.
    Unmarked,
}

/// The owner of a resource whose observed properties carry `tags` (only `provision:` keys).
pub fn owner(mark: &Mark, observed: &Value) -> Owner {
    let tags = observed.get(TAGS_PROPERTY).and_then(Value::as_object);
    let tag = |key: &str| tags.and_then(|t| t.get(key)).and_then(Value::as_str).map(str::to_string);
    match (tag(STACK_TAG), tag(ORIGIN_TAG)) {
        (Some(stack), Some(origin)) if stack == mark.stack && origin == mark.origin => Owner::ThisStack,
        (Some(stack), origin) if stack == mark.stack => Owner::OtherOrigin(origin.unwrap_or_default()),
        (Some(stack), _) => Owner::OtherStack(stack),
        (None, _) => Owner::Unmarked,
    }
}

/// The owner of a resource the state records: as [`owner`], but an origin the state had before
/// `state migrate` gave it a new one (`former`) is still this stack's (the next `up` re-marks it).
pub fn recorded_owner(mark: &Mark, former: &[String], observed: &Value) -> Owner {
    match owner(mark, observed) {
        Owner::OtherOrigin(origin) if former.contains(&origin) => Owner::ThisStack,
        other => other,
    }
}

/// True when `observed` (properties with `tags`) carries every tag of `desired`'s mark. Used by
/// drivers whose create finds the name taken: they adopt only what this is true of.
pub fn carries_mark(desired: &Value, observed: &Value) -> bool {
    let Some(wanted) = desired.get(TAGS_PROPERTY).and_then(Value::as_object) else {
        return true; // a kind without tags is owned through its parent
    };
    let seen = observed.get(TAGS_PROPERTY).and_then(Value::as_object);
    wanted.iter().all(|(k, v)| seen.and_then(|s| s.get(k)) == Some(v))
}

/// Keeps only the engine's own tags of a tag map, as JSON for observed properties.
pub fn marked_tags<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Object(
        tags.into_iter()
            .filter(|(k, _)| k.starts_with(TAG_PREFIX))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mark() -> Mark {
        Mark { stack: "demo".into(), origin: "abc".into() }
    }

    #[test]
    fn owner_reads_the_mark() {
        let tags = |t: Value| json!({ "name": "x", "tags": t });
        assert_eq!(
            owner(&mark(), &tags(json!({"provision:stack": "demo", "provision:origin": "abc"}))),
            Owner::ThisStack
        );
        assert_eq!(
            owner(&mark(), &tags(json!({"provision:stack": "demo", "provision:origin": "zzz"}))),
            Owner::OtherOrigin("zzz".into())
        );
        assert_eq!(owner(&mark(), &tags(json!({"provision:stack": "other"}))), Owner::OtherStack("other".into()));
        assert_eq!(owner(&mark(), &tags(json!({}))), Owner::Unmarked);
        assert_eq!(owner(&mark(), &json!({ "name": "x" })), Owner::Unmarked);
    }

    #[test]
    fn a_recorded_resource_keeps_its_owner_through_a_former_origin() {
        let moved = json!({ "tags": {"provision:stack": "demo", "provision:origin": "old"} });
        assert_eq!(recorded_owner(&mark(), &["old".into()], &moved), Owner::ThisStack);
        assert_eq!(recorded_owner(&mark(), &[], &moved), Owner::OtherOrigin("old".into()));
        let other = json!({ "tags": {"provision:stack": "other", "provision:origin": "old"} });
        assert_eq!(recorded_owner(&mark(), &["old".into()], &other), Owner::OtherStack("other".into()));
    }

    #[test]
    fn only_the_engines_tags_are_observed() {
        let tags = BTreeMap::from([
            ("provision:stack".to_string(), "demo".to_string()),
            ("team".to_string(), "payments".to_string()),
        ]);
        assert_eq!(marked_tags(&tags), json!({"provision:stack": "demo"}));
    }

    #[test]
    fn carries_mark_needs_every_tag() {
        let desired = json!({ "tags": mark().tags() });
        assert!(carries_mark(
            &desired,
            &json!({ "tags": {"provision:stack": "demo", "provision:origin": "abc", "x": "y"} })
        ));
        assert!(!carries_mark(&desired, &json!({ "tags": {"provision:stack": "demo"} })));
        assert!(carries_mark(&json!({ "name": "mapping" }), &json!({})), "kinds without tags are owned via parents");
    }

    #[test]
    fn the_origin_is_stable_and_tells_checkouts_apart() {
        let here = Mark::origin_of(Path::new("/"));
        assert_eq!(here, Mark::origin_of(Path::new("/")));
        assert_ne!(here, Mark::origin_of(Path::new("/tmp")));
        assert_eq!(here.len(), 12);
    }
}
