//! IAM role: one execution role per function, with one inline policy naming the actions and
//! resources that function needs. create / read / update / delete first; helpers at the bottom.

use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_iam::types::Tag;
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::iam_role::*;

pub const KIND: Kind = Kind::new(<IamRoleSpec as declaration::Spec>::KIND);

/// The name of the single inline policy each role carries.
const POLICY_NAME: &str = "pipeline-least-privilege";

pub struct IamRole;

impl Driver<Cloud> for IamRole {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name"]
    }
    crate::declared_as!(IamRoleSpec);
    fn label(&self) -> &'static str {
        "IAM role"
    }
    fn service(&self) -> &'static str {
        "iam"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::iam_role)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: IamRoleSpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .iam
                .create_role()
                .role_name(&spec.name)
                .assume_role_policy_document(trust_policy(&spec.service).to_string())
                .description("Execution role managed by provision")
                .set_tags(Some(tags(props)?))
                .send()
                .await;
            errors::sent(answer, errors::is_already_exists, format!("creating role {}", spec.name), |_| Outputs::new())
        })
    }
    /// Writes what differs: the mark, the trust policy, the inline policy, and removes policies
    /// added out of band. A new role gets its inline policy here.
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: IamRoleSpec = typed(props, KIND)?;
            let wants = |field: &str| changed.iter().any(|f| f == field);
            if wants("tags") {
                tag(cx, &spec.name, props).await?;
            }
            if wants("service") {
                let answer = cx
                    .cloud
                    .iam
                    .update_assume_role_policy()
                    .role_name(&spec.name)
                    .policy_document(trust_policy(&spec.service).to_string())
                    .send()
                    .await;
                answer.map_err(|e| errors::context(format!("updating the trust policy of role {}", spec.name), e))?;
            }
            if wants("statements") {
                put_policy(cx, &spec).await?;
            }
            if wants("other_inline_policies") || wants("managed_policy_arns") {
                let keep_inline: Vec<String> =
                    spec.other_inline_policies.iter().cloned().chain([POLICY_NAME.to_string()]).collect();
                remove_policies_except(cx, &spec.name, &keep_inline, &spec.managed_policy_arns).await?;
                attach_managed(cx, &spec).await?;
            }
            find(cx, &spec.name).await?.map(|o| o.outputs).context("the role vanished during its update")
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let name = name_prop(&recorded.props, "name", KIND)?;
            // IAM deletes a role only once no policy is left on it.
            remove_policies_except(cx, name, &[], &[]).await?;
            errors::deleted(cx.cloud.iam.delete_role().role_name(name).send().await, format!("deleting role {name}"))
        })
    }
}

fn tags(props: &Value) -> Result<Vec<Tag>> {
    declared_tags(props).into_iter().map(|(k, v)| Ok(Tag::builder().key(k).value(v).build()?)).collect()
}

async fn tag(cx: &Cx<'_>, name: &str, props: &Value) -> Result<()> {
    cx.cloud
        .iam
        .tag_role()
        .role_name(name)
        .set_tags(Some(tags(props)?))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging role {name}"), e))?;
    Ok(())
}

/// Deletes every inline policy not named in `keep_inline` and detaches every managed policy
/// not in `keep_managed`. Does nothing for a role that is gone.
async fn remove_policies_except(
    cx: &Cx<'_>,
    name: &str,
    keep_inline: &[String],
    keep_managed: &[String],
) -> Result<()> {
    let iam = &cx.cloud.iam;
    let Some((inline, managed)) = attached_policies(cx, name).await? else {
        return Ok(());
    };
    for policy in inline.iter().filter(|p| !keep_inline.contains(p)) {
        let answer = iam.delete_role_policy().role_name(name).policy_name(policy).send().await;
        errors::deleted(answer, format!("deleting inline policy {policy} of role {name}"))?;
    }
    for arn in managed.iter().filter(|a| !keep_managed.contains(a)) {
        let answer = iam.detach_role_policy().role_name(name).policy_arn(arn).send().await;
        errors::deleted(answer, format!("detaching policy {arn} from role {name}"))?;
    }
    Ok(())
}

/// Attaches each declared managed policy the role lacks.
async fn attach_managed(cx: &Cx<'_>, spec: &IamRoleSpec) -> Result<()> {
    let Some((_, attached)) = attached_policies(cx, &spec.name).await? else { return Ok(()) };
    for arn in spec.managed_policy_arns.iter().filter(|arn| !attached.contains(arn)) {
        let answer = cx.cloud.iam.attach_role_policy().role_name(&spec.name).policy_arn(arn).send().await;
        answer.map_err(|e| {
            errors::context(
                format!("attaching policy {arn} to role {}: check that the policy exists in the account", spec.name),
                e,
            )
        })?;
    }
    Ok(())
}

/// The role's inline policy names and attached managed policy ARNs, each sorted; `None` when the
/// role is gone.
async fn attached_policies(cx: &Cx<'_>, name: &str) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let iam = &cx.cloud.iam;
    let inline = iam.list_role_policies().role_name(name).send().await;
    let Some(inline) = errors::found(inline, format!("listing the inline policies of role {name}"))? else {
        return Ok(None);
    };
    let mut inline: Vec<String> = inline.policy_names().to_vec();
    inline.sort();
    let managed = iam.list_attached_role_policies().role_name(name).send().await;
    let Some(managed) = errors::found(managed, format!("listing the managed policies of role {name}"))? else {
        return Ok(None);
    };
    let mut managed: Vec<String> =
        managed.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect();
    managed.sort();
    Ok(Some((inline, managed)))
}

async fn put_policy(cx: &Cx<'_>, spec: &IamRoleSpec) -> Result<()> {
    cx.cloud
        .iam
        .put_role_policy()
        .role_name(&spec.name)
        .policy_name(POLICY_NAME)
        .policy_document(policy_document(&spec.statements).to_string())
        .send()
        .await
        .map_err(|e| errors::context(format!("putting the inline policy of role {}", spec.name), e))?;
    Ok(())
}

/// Reads the role and its inline policy, in the shape of [`IamRoleSpec`].
async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let iam = &cx.cloud.iam;
    let Some(role) = errors::found(iam.get_role().role_name(name).send().await, format!("reading role {name}"))? else {
        return Ok(None);
    };
    let role = role.role.context("GetRole returned no role")?;
    let policy = iam.get_role_policy().role_name(name).policy_name(POLICY_NAME).send().await;
    let statements = match errors::found(policy, format!("reading the policy of role {name}"))? {
        Some(out) => statements_from_document(&decode_policy(&out.policy_document)),
        None => Value::Array(vec![]),
    };
    let service =
        role.assume_role_policy_document.as_deref().map(decode_policy).map_or(Value::Null, |doc| trusted_service(&doc));
    let Some((inline, managed)) = attached_policies(cx, name).await? else {
        return Ok(None);
    };
    let other_inline: Vec<String> = inline.into_iter().filter(|p| p != POLICY_NAME).collect();
    let listed = iam.list_role_tags().role_name(name).send().await;
    let Some(listed) = errors::found(listed, format!("reading the tags of role {name}"))? else { return Ok(None) };
    let tags: Vec<(String, String)> = listed.tags.into_iter().map(|t| (t.key, t.value)).collect();
    Ok(Some(Observed::new(
        json!({
            "name": role.role_name,
            "service": service,
            "statements": statements,
            "other_inline_policies": other_inline,
            "managed_policy_arns": managed,
            "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))),
        }),
        outputs([("arn", json!(role.arn)), ("name", json!(role.role_name))]),
    )))
}

/// The service of a trust policy that is exactly what provision writes (one statement letting one
/// service assume the role, unconditionally); any other trust policy is returned whole, so it
/// differs from the declared service and an update writes the declared one back.
fn trusted_service(document: &Value) -> Value {
    let statements = match document.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => vec![],
    };
    let as_list = |v: Option<&Value>| match v {
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => vec![],
    };
    if let [only] = statements.as_slice() {
        let service = only.pointer("/Principal/Service").filter(|s| s.is_string());
        let principal_keys = only.get("Principal").and_then(Value::as_object).map_or(0, |p| p.len());
        if only.get("Effect") == Some(&json!("Allow"))
            && as_list(only.get("Action")) == vec![json!("sts:AssumeRole")]
            && only.get("Condition").is_none()
            && principal_keys == 1
        {
            if let Some(service) = service {
                return service.clone();
            }
        }
    }
    document.clone()
}

fn trust_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }]
    })
}

fn policy_document(statements: &[Statement]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": statements.iter().map(|s| json!({
            "Effect": "Allow",
            "Action": s.actions,
            "Resource": s.resources.iter().map(|r| r.get().clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    })
}

/// The statements of a policy document in [`Statement`]'s JSON shape, for comparison.
fn statements_from_document(document: &Value) -> Value {
    let as_list = |v: Option<&Value>| match v {
        Some(Value::Array(items)) => Value::Array(items.clone()),
        Some(single @ Value::String(_)) => Value::Array(vec![single.clone()]),
        _ => Value::Array(vec![]),
    };
    let statements = match document.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => vec![],
    };
    Value::Array(
        statements
            .iter()
            .map(|s| {
                let mut statement =
                    json!({ "actions": as_list(s.get("Action")), "resources": as_list(s.get("Resource")) });
                // Only Allow without conditions is declared: anything else shows as a difference.
                if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
                    statement["effect"] = s.get("Effect").cloned().unwrap_or(Value::Null);
                }
                for (key, name) in
                    [("Condition", "condition"), ("NotAction", "not_actions"), ("NotResource", "not_resources")]
                {
                    if let Some(value) = s.get(key) {
                        statement[name] = value.clone();
                    }
                }
                statement
            })
            .collect(),
    )
}

/// IAM returns policy documents URL-encoded; emulators often return them plain.
fn decode_policy(text: &str) -> Value {
    serde_json::from_str(text).or_else(|_| serde_json::from_str(&percent_decode(text))).unwrap_or(Value::Null)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex))
                if std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).is_some() =>
            {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap());
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::input::Input;

    #[test]
    fn url_encoded_policies_decode_to_the_declared_shape() {
        let spec = vec![Statement::allow(&["kinesis:PutRecord"], vec![Input::Value("arn:aws:kinesis:x".into())])];
        let document = policy_document(&spec).to_string();
        let encoded: String = document.bytes().map(|b| format!("%{b:02X}")).collect();
        let observed = statements_from_document(&decode_policy(&encoded));
        assert_eq!(observed, serde_json::to_value(&spec).unwrap());
    }
}
