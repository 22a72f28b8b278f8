//! What real AWS does every day, through a fault-injecting proxy in front of the local cloud
//! (`support::fault_proxy`): throttling and 5xx answers are ridden out, an endpoint that does not
//! implement a secondary read strands nothing, and a resource whose reads keep failing is kept
//! by `down` (never deleted unverified) while everything else goes.

mod support;

use serde_json::json;
use support::fault_proxy::{Fault, FaultProxy};
use support::*;

const TRANSIENT: &[Fault] = &[Fault::Unavailable, Fault::Throttled];

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn with_a_fifth_of_calls_faulted_up_converges_and_down_leaves_nothing() {
    let proxy = FaultProxy::start(ENDPOINT);
    let mut stack = TestStack::new("flt");
    stack.endpoint = proxy.url.clone();
    proxy.fault_share(0.2, TRANSIENT);

    let started = std::time::Instant::now();
    let out = stack.provision(&["--json", "up", "--yes"]);
    let took = started.elapsed();
    assert!(out.status.success(), "up under faults failed:\n{}", stderr(&out));
    let (faulted, forwarded) = proxy.counts();
    eprintln!(
        "up with a fifth of calls faulted: {:.1} s, {faulted} of {} calls faulted",
        took.as_secs_f64(),
        faulted + forwarded
    );
    assert!(faulted >= 10, "the proxy faulted {faulted} of {} calls: too few to show anything", faulted + forwarded);
    assert!(stderr(&out).contains("retrying (attempt"), "retries are reported as progress:\n{}", stderr(&out));
    assert_eq!(stack.plan()["changes"], json!([]), "converged: a second plan, under faults too, is empty");
    assert_exactly_one_of_everything(&stack).await;
    assert_pipeline_delivers(&stack, "under-faults").await;

    // Down under faults too; what it left is listed straight from the cloud (the test's own
    // listing calls would meet the proxy's faults).
    stack.ok(&["down", "--yes"]);
    stack.forget();
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "down left something");
    assert!(!stack.state_file().exists(), "the state file goes with the last resource");
}

#[tokio::test]
async fn with_two_fifths_of_calls_faulted_the_endpoint_check_reports_no_missing_service() {
    let proxy = FaultProxy::start(ENDPOINT);
    let mut stack = TestStack::new("flc");
    stack.endpoint = proxy.url.clone();
    proxy.fault_share(0.4, TRANSIENT);
    let out = stack.provision(&["plan"]);
    let said = stderr(&out);
    assert!(!said.contains("does not offer"), "a transient answer was read as a missing service:\n{said}");
    assert!(out.status.success(), "plan under 40 % faults failed:\n{said}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("to create"), "a plan of creates is printed");
}

#[tokio::test]
async fn an_endpoint_that_does_not_implement_a_secondary_read_strands_nothing() {
    // moto answers API Gateway's GetTags with a bare 404; the REST API's own read has its tags.
    let proxy = FaultProxy::start(ENDPOINT);
    let mut stack = TestStack::new("fgt");
    stack.endpoint = proxy.url.clone();
    proxy.choose(|call| {
        (call.service == "apigateway" && call.method == "GET" && call.path.starts_with("/tags/"))
            .then_some(Fault::BareNotFound)
    });
    stack.up();
    assert_eq!(stack.plan()["changes"], json!([]), "converged");
    assert!(proxy.counts().0 > 0, "GetTags was called and answered with a bare 404");
    stack.down();
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "down left something");
}

#[tokio::test]
async fn when_one_kinds_reads_always_fail_down_deletes_the_rest_and_keeps_that_one() {
    let proxy = FaultProxy::start(ENDPOINT);
    let mut stack = TestStack::new("fdn");
    stack.endpoint = proxy.url.clone();
    stack.up();
    let api_name = format!("{}-api", stack.name);

    // Every API Gateway read is refused, as for a user whose policy lacks apigateway:GET.
    proxy.choose(|call| (call.service == "apigateway" && call.method == "GET").then_some(Fault::Denied));
    let out = stack.provision(&["down", "--yes"]);
    let said = stderr(&out);
    assert!(!out.status.success(), "down must fail while it cannot verify a resource:\n{said}");
    assert!(said.contains("`api`") && said.contains("AccessDenied"), "the kept resource and why are named:\n{said}");
    // As the user must run it: with the stack, state folder and program they typed.
    let again = format!(
        "run `provision --stack {} --program pipeline --state-dir {} down` again",
        stack.name,
        stack.state_dir.display()
    );
    assert!(said.contains(&again), "the message says how to finish:\n{said}");
    let left = resources_named(&cloud().await, &stack.name).await;
    assert_eq!(left, vec![format!("api {api_name}")], "everything but the unverified API is deleted");
    let state = stack.state();
    let recorded: Vec<&String> = state["resources"].as_object().unwrap().keys().collect();
    assert_eq!(recorded, ["api"], "the state keeps what was not deleted, and only that");

    proxy.heal();
    stack.down();
    assert_eq!(resources_named(&cloud().await, &stack.name).await, Vec::<String>::new(), "a later down finishes");
    assert!(!stack.state_file().exists());
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_is_named_at_once_with_the_fix() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut stack = TestStack::new("nobody");
    stack.endpoint = format!("http://127.0.0.1:{port}");
    for command in [&["plan"][..], &["up", "--yes"], &["down", "--yes"]] {
        let started = std::time::Instant::now();
        let out = stack.provision(command);
        let said = stderr(&out);
        eprintln!(
            "{command:?} against an endpoint nobody listens on: failed after {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert!(!out.status.success(), "{command:?} must fail");
        assert!(
            said.contains(&format!("nothing answers at http://127.0.0.1:{port}"))
                && said.contains("local cloud running"),
            "{command:?}: the endpoint and the fix are named:\n{said}"
        );
        assert!(
            !said.contains("retrying (attempt") && !said.contains("ConnectorError"),
            "{command:?}: no retries, no dump:\n{said}"
        );
    }
    assert!(!stack.state_file().exists(), "nothing was recorded");
}
