//! The program example in the README, compiled and declared: the code between the markers below
//! is the README's `rust` block under "Programs" (the test compares them), written against the
//! `declaration` crate as any program is, and its declaration passes every check the engine
//! makes before a plan.

use declaration::helpers::{function_role, protected_api, Declaring, Function};
use declaration::kinds::lambda_permission::LambdaPermissionSpec;
use declaration::kinds::rest_api::Route;
use declaration::{Request, StackDef};
use provisioner::artifact::BuildConfig;
use provisioner::aws;
use provisioner::engine::document::Document;
use provisioner::programs::{fill_function_code, Functions};
use std::path::Path;

// README begin
/// GET /hello -> the project's function `hello`.
fn declare(request: &Request) -> Result<StackDef, String> {
    let on = Declaring::of(request)?;
    let mut stack = StackDef::new(&request.stack);
    let role = function_role(&mut stack, &on, "hello", vec![]);
    let function = Function { binary: "hello", role: &role, memory_mb: 128, timeout_s: 10, environment: vec![] };
    let hello = stack.add("hello", on.function(&stack, function));
    let api = protected_api(&mut stack, &on, "prod", vec![Route::new("GET", "/hello", hello.arn())]);
    stack.add(
        "api-invokes-hello",
        LambdaPermissionSpec {
            function_name: hello.name(),
            statement_id: "api-gateway-invoke".into(),
            principal: "apigateway.amazonaws.com".into(),
            source_arn: api.invoke_source_arn(),
        },
    );
    stack.export("hello_url", [api.url(), "hello".into()]);
    Ok(stack)
}
// README end

#[test]
fn the_readme_program_is_this_one_and_its_declaration_passes_every_check() {
    let this = include_str!("readme_program.rs");
    let example = this.split("// README begin\n").nth(1).unwrap().split("// README end").next().unwrap();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "the README's program example is this test's, verbatim"
    );

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = BuildConfig { workspace, profile: "dev".into(), portable_arch: None, for_local_endpoint: true };
    let mut document = declare(&Request::local("hello", serde_json::json!({}))).unwrap().into_document();
    fill_function_code(&mut document, &Functions::placeholders(&build), false);
    let stack = document.into_stack("hello", "readme", aws::registry()).unwrap();
    let ids: Vec<&str> = stack.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["hello-logs", "hello-role", "hello", "api", "api-invokes-hello"]);
    assert!(stack.problems(aws::registry()).is_empty(), "names and settings AWS would accept");
}
