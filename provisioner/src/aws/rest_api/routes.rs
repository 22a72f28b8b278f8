//! The routes of a REST API: an HTTP method on a path, answered by a function through a Lambda
//! proxy integration, with the method's authorization (`NONE` or `AWS_IAM`) and whether it needs
//! an API key. API Gateway keeps paths as a tree of resources (`/arrays/{arrayId}` is the resource
//! `{arrayId}` under `arrays` under the root): routes are read from that tree, and written by
//! creating the resources a path lacks, putting each method and its integration, and deleting
//! the methods no longer declared. A method whose authorization must change is deleted and put
//! again rather than patched: MiniStack stores a patched `apiKeyRequired` as a string, which no
//! SDK can read back; the stage keeps serving its deployment until the caller deploys again.

use crate::aws::{errors, Cx};
use anyhow::{Context, Result};
use aws_sdk_apigateway::types::IntegrationType;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The methods a route may answer.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];

pub use declaration::kinds::rest_api::{sorted, Route};

/// Checks routes against API Gateway's rules: says what is wrong.
pub fn check(routes: &[Route]) -> std::result::Result<(), String> {
    if routes.is_empty() {
        return Err("a REST API needs at least one route".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for route in routes {
        if !METHODS.contains(&route.method.as_str()) {
            return Err(format!("route method `{}` is not one of {}", route.method, METHODS.join(", ")));
        }
        let valid_segment = |s: &str| {
            !s.is_empty()
                && (s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    || (s.starts_with('{') && s.ends_with('}') && s.len() > 2))
        };
        if !route.path.starts_with('/') || (route.path != "/" && !route.path[1..].split('/').all(valid_segment)) {
            return Err(format!(
                "route path `{}` must be `/` or `/segment/...` of letters, digits, '-', '_', '.' or `{{parameter}}`",
                route.path
            ));
        }
        if !matches!(route.authorization.as_str(), "NONE" | "AWS_IAM") {
            return Err(format!("route {} {}: authorization is NONE or AWS_IAM", route.method, route.path));
        }
        if !seen.insert((&route.path, &route.method)) {
            return Err(format!("route {} {} is declared twice", route.method, route.path));
        }
    }
    Ok(())
}

/// The API's resources: path -> (resource id, the methods it has).
type Tree = BTreeMap<String, (String, Vec<String>)>;

async fn tree(cx: &Cx<'_>, api: &str) -> Result<Tree> {
    let mut tree = Tree::new();
    let mut position = None;
    loop {
        let page = cx
            .cloud
            .apigateway
            .get_resources()
            .rest_api_id(api)
            .limit(500)
            .embed("methods")
            .set_position(position)
            .send()
            .await
            .map_err(|e| errors::context(format!("listing the resources of REST API {api}"), e))?;
        for resource in page.items() {
            let (Some(path), Some(id)) = (resource.path(), resource.id()) else { continue };
            let mut methods: Vec<String> =
                resource.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            methods.sort();
            tree.insert(path.to_string(), (id.to_string(), methods));
        }
        match page.position() {
            Some(next) if !page.items().is_empty() => position = Some(next.to_string()),
            _ => return Ok(tree),
        }
    }
}

/// The routes the API answers, sorted by path then method, in [`Route`]'s JSON shape. A method
/// whose integration is not a function (or is missing) is reported with a null `function_arn`,
/// so it differs from any declared route.
pub async fn read(cx: &Cx<'_>, api: &str) -> Result<Value> {
    let mut routes = Vec::new();
    for (path, (resource, methods)) in tree(cx, api).await? {
        for method in methods {
            let answer = cx
                .cloud
                .apigateway
                .get_method()
                .rest_api_id(api)
                .resource_id(&resource)
                .http_method(&method)
                .send()
                .await;
            let Some(found) = errors::found(answer, format!("reading {method} {path} of REST API {api}"))? else {
                continue;
            };
            let function_arn = found
                .method_integration()
                .filter(|i| i.r#type() == Some(&IntegrationType::AwsProxy))
                .and_then(|i| i.uri())
                .and_then(function_arn_from_uri);
            routes.push(json!({
                "method": method,
                "path": path,
                "function_arn": function_arn,
                "authorization": found.authorization_type().unwrap_or("NONE"),
                "api_key_required": found.api_key_required().unwrap_or(false),
            }));
        }
    }
    Ok(Value::Array(routes))
}

/// Makes the API answer exactly `routes`: creates the resources their paths lack, puts or patches
/// each method, puts its integration, and deletes every other method. Deploying is the caller's.
pub async fn write(cx: &Cx<'_>, api: &str, routes: &[Route]) -> Result<()> {
    let mut tree = tree(cx, api).await?;
    for route in routes {
        let resource = ensure_path(cx, api, &mut tree, &route.path).await?;
        let exists = tree.get(&route.path).is_some_and(|(_, methods)| methods.contains(&route.method));
        if !exists || !method_matches(cx, api, &resource, route).await? {
            put_method(cx, api, &resource, route, exists).await?;
        }
        let uri = integration_uri(&cx.cloud.region, route.function_arn.get());
        cx.cloud
            .apigateway
            .put_integration()
            .rest_api_id(api)
            .resource_id(&resource)
            .http_method(&route.method)
            .r#type(IntegrationType::AwsProxy)
            .integration_http_method("POST")
            .uri(uri)
            .send()
            .await
            .map_err(|e| {
                let what = format!(
                    "integrating {} {} of REST API {api} with {}",
                    route.method,
                    route.path,
                    route.function_arn.get()
                );
                errors::context(what, e)
            })?;
    }
    for (path, (resource, methods)) in &tree {
        for method in methods.iter().filter(|m| !routes.iter().any(|r| &r.path == path && &r.method == *m)) {
            let answer = cx
                .cloud
                .apigateway
                .delete_method()
                .rest_api_id(api)
                .resource_id(resource)
                .http_method(method)
                .send()
                .await;
            errors::deleted(answer, format!("deleting {method} {path} of REST API {api}"))?;
        }
    }
    Ok(())
}

/// The id of the resource at `path`, creating it (and the parents it lacks) when missing.
async fn ensure_path(cx: &Cx<'_>, api: &str, tree: &mut Tree, path: &str) -> Result<String> {
    if let Some((id, _)) = tree.get(path) {
        return Ok(id.clone());
    }
    let root =
        tree.get("/").map(|(id, _)| id.clone()).with_context(|| format!("REST API {api} has no root resource"))?;
    let mut parent = root;
    let mut at = String::new();
    for segment in path.trim_start_matches('/').split('/') {
        at.push('/');
        at.push_str(segment);
        if let Some((id, _)) = tree.get(&at) {
            parent = id.clone();
            continue;
        }
        let created = cx
            .cloud
            .apigateway
            .create_resource()
            .rest_api_id(api)
            .parent_id(&parent)
            .path_part(segment)
            .send()
            .await
            .map_err(|e| errors::context(format!("creating the resource {at} of REST API {api}"), e))?;
        let id = created.id.context("CreateResource returned no id")?;
        tree.insert(at.clone(), (id.clone(), Vec::new()));
        parent = id;
    }
    Ok(parent)
}

/// Whether the existing method has the route's authorization and API key requirement.
async fn method_matches(cx: &Cx<'_>, api: &str, resource: &str, route: &Route) -> Result<bool> {
    let answer =
        cx.cloud.apigateway.get_method().rest_api_id(api).resource_id(resource).http_method(&route.method).send().await;
    let found = errors::found(answer, format!("reading {} {} of REST API {api}", route.method, route.path))?;
    Ok(found.is_some_and(|m| {
        m.authorization_type().unwrap_or("NONE") == route.authorization
            && m.api_key_required().unwrap_or(false) == route.api_key_required
    }))
}

/// Puts the method with its authorization; an existing one (with other settings) is deleted first.
async fn put_method(cx: &Cx<'_>, api: &str, resource: &str, route: &Route, exists: bool) -> Result<()> {
    let what = || format!("setting {} {} of REST API {api}", route.method, route.path);
    let apigateway = &cx.cloud.apigateway;
    if exists {
        let answer =
            apigateway.delete_method().rest_api_id(api).resource_id(resource).http_method(&route.method).send().await;
        errors::deleted(answer, what())?;
    }
    apigateway
        .put_method()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method(&route.method)
        .authorization_type(&route.authorization)
        .api_key_required(route.api_key_required)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| errors::context(what(), e))
}

fn integration_uri(region: &str, function_arn: &str) -> String {
    format!("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

fn function_arn_from_uri(uri: &str) -> Option<String> {
    let rest = uri.split_once("/functions/")?.1;
    Some(rest.strip_suffix("/invocations").unwrap_or(rest).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_uri_round_trips_the_function_arn() {
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:demo-upstream";
        assert_eq!(function_arn_from_uri(&integration_uri("us-east-1", arn)).as_deref(), Some(arn));
    }

    #[test]
    fn routes_api_gateway_refuses_are_refused_before_any_call() {
        let route = |method: &str, path: &str| Route::new(method, path, "arn:f".into());
        assert!(check(&[route("POST", "/"), route("GET", "/arrays/{arrayId}")]).is_ok());
        assert!(check(&[]).is_err());
        assert!(check(&[route("FETCH", "/")]).unwrap_err().contains("FETCH"));
        assert!(check(&[route("GET", "arrays")]).is_err());
        assert!(check(&[route("GET", "/arrays//x")]).is_err());
        assert!(check(&[route("GET", "/a b")]).is_err());
        assert!(check(&[route("GET", "/x"), route("GET", "/x")]).unwrap_err().contains("twice"));
    }

    #[test]
    fn routes_are_compared_in_the_order_a_read_reports_them() {
        let routes = sorted(vec![
            Route::new("POST", "/arrays", "f".into()),
            Route::new("GET", "/arrays/{arrayId}", "f".into()),
            Route::new("GET", "/arrays", "f".into()),
        ]);
        let order: Vec<(&str, &str)> = routes.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
        assert_eq!(order, [("GET", "/arrays"), ("POST", "/arrays"), ("GET", "/arrays/{arrayId}")]);
    }
}
