//! The program example in the README, compiled and declared: the code between the markers below
//! is the README's `rust` block under "Programs" (the test compares them), and its declaration
//! passes every check the engine makes before a plan.

use anyhow::Result;
use provisioner::artifact::BuildConfig;
use provisioner::aws::{self, lambda_permission::LambdaPermissionSpec, rest_api::Route};
use provisioner::engine::declare::StackDef;
use provisioner::engine::document::Document;
use provisioner::programs::{function_role, protected_api, Declaring, Function, Functions, Program};
use provisioner::settings::Settings;
use std::path::Path;

struct Hello;

// README begin
impl Program for Hello {
    fn name(&self) -> &'static str {
        "hello"
    }
    fn about(&self) -> &'static str {
        "GET /hello -> a function"
    }
    fn check_settings(&self, _settings: &Settings) -> Result<()> {
        Ok(())
    }
    fn declare(&self, on: &Declaring) -> Result<StackDef> {
        let mut stack = StackDef::new(on.stack, on.origin);
        let role = function_role(&mut stack, on, "hello", vec![]);
        let function = Function { binary: "hello", role: &role, memory_mb: 128, timeout_s: 10, environment: vec![] };
        let hello = stack.add("hello", on.function(&stack, function));
        let api = protected_api(&mut stack, on, "prod", vec![Route::new("GET", "/hello", hello.arn())]);
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
    let settings = Settings::default();
    let functions = Functions::placeholders(&build);
    let on = Declaring {
        stack: "hello",
        origin: "readme",
        account_id: "",
        region: "us-east-1",
        settings: &settings,
        functions: &functions,
        local: true,
        hot_reload: false,
    };
    let document = Hello.declaration(&on).unwrap();
    let stack = document.into_stack("hello", "readme", aws::registry()).unwrap();
    let ids: Vec<&str> = stack.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["hello-logs", "hello-role", "hello", "api", "api-invokes-hello"]);
    assert!(stack.problems(aws::registry()).is_empty(), "names and settings AWS would accept");
}
