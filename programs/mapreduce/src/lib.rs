//! The distributed adder, declared in Rust: every element of an array doubled (map) and summed
//! (reduce) by Lambda functions over SQS, with a DynamoDB scratchpad of partial sums, exact under
//! at-least-once delivery. Reading this file top to bottom is reading the architecture.
//!
//! `POST /arrays` -> `arrays` (records the array, one map task per chunk) -> map queue ->
//! `mapper` (a chunk's partial sum, written once with the array's progress) -> reduce queue ->
//! `reducer` (a node's children combined once all are written, up a tree of `fan_in` to the root:
//! the sum) -> the results table, which `GET /arrays/{arrayId}` reads. A message received
//! `max_receive_count` times goes to the dead-letter queue (the queues' redrive policy), and the
//! reducer marks its array failed. The exactness argument is in `functions/mapreduce/adder`.

pub mod settings;

use declaration::helpers::{function_role, protected_api, sized_function as function, Declaring};
use declaration::kinds::dynamodb_table::DynamodbTableSpec;
use declaration::kinds::iam_role::Statement;
use declaration::kinds::lambda_permission::LambdaPermissionSpec;
use declaration::kinds::rest_api::Route;
use declaration::kinds::sqs_event_source_mapping::SqsEventSourceMappingSpec;
use declaration::kinds::sqs_queue::{Redrive, SqsQueueSpec};
use declaration::{Handle, Input, Request, StackDef};
use settings::{FunctionSettings, MapReduceSettings};

/// The stage the API is deployed to.
pub const STAGE: &str = "prod";
/// How long a dead letter is kept.
const DEAD_LETTER_RETENTION_S: u32 = 14 * 24 * 3600;
/// How long a task waits in its queue at most.
const TASK_RETENTION_S: u32 = 24 * 3600;

/// The adder's declaration for `request`, or what is wrong with its settings.
pub fn declare_stack(request: &Request) -> Result<StackDef, String> {
    let settings = MapReduceSettings::of(request).map_err(|e| format!("{e:#}"))?;
    Ok(declare(&Declaring::of(request)?, &settings))
}

fn declare(on: &Declaring, settings: &MapReduceSettings) -> StackDef {
    let mut stack = StackDef::new(&on.request.stack);

    let results = stack.add("results", DynamodbTableSpec::new(stack.physical_name("results"), "arrayId", None));
    let scratchpad =
        stack.add("scratchpad", DynamodbTableSpec::new(stack.physical_name("scratchpad"), "arrayId", Some("node")));
    let dead_letters =
        stack.add("dead-letters", SqsQueueSpec::new(stack.physical_name("dead-letters"), DEAD_LETTER_RETENTION_S));
    let task_queue = |name: String, consumer: &FunctionSettings| SqsQueueSpec {
        visibility_timeout_s: Some(settings.visibility_timeout_for(consumer)),
        redrive: Some(Redrive { dead_letter_arn: dead_letters.arn(), max_receive_count: settings.max_receive_count }),
        ..SqsQueueSpec::new(name, TASK_RETENTION_S)
    };
    let map_queue = stack.add("map-queue", task_queue(stack.physical_name("map"), &settings.mapper));
    let reduce_queue = stack.add("reduce-queue", task_queue(stack.physical_name("reduce"), &settings.reducer));

    let consume = |queue: &Handle<SqsQueueSpec>| {
        Statement::allow(
            &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
            vec![queue.arn()],
        )
    };
    let send = |queues: Vec<Input<String>>| Statement::allow(&["sqs:SendMessage"], queues);
    let arrays_role = function_role(
        &mut stack,
        on,
        "arrays",
        vec![
            Statement::allow(&["dynamodb:PutItem", "dynamodb:GetItem"], vec![results.arn()]),
            send(vec![map_queue.arn()]),
        ],
    );
    let mapper_role = function_role(
        &mut stack,
        on,
        "mapper",
        vec![
            consume(&map_queue),
            send(vec![reduce_queue.arn(), dead_letters.arn()]),
            Statement::allow(&["dynamodb:PutItem"], vec![scratchpad.arn()]),
            Statement::allow(&["dynamodb:UpdateItem"], vec![results.arn()]),
        ],
    );
    let reducer_role = function_role(
        &mut stack,
        on,
        "reducer",
        vec![
            consume(&reduce_queue),
            consume(&dead_letters),
            send(vec![reduce_queue.arn(), dead_letters.arn()]),
            Statement::allow(&["dynamodb:Query", "dynamodb:PutItem"], vec![scratchpad.arn()]),
            Statement::allow(&["dynamodb:UpdateItem"], vec![results.arn()]),
        ],
    );

    let chaos = settings.chaos.environment();
    let arrays = stack.add(
        "arrays",
        function(
            &stack,
            on,
            "arrays",
            &arrays_role,
            &settings.arrays,
            vec![
                ("RESULTS_TABLE", results.name()),
                ("MAP_QUEUE_URL", map_queue.url()),
                ("CHUNK_SIZE", settings.chunk_size.to_string().into()),
                ("FAN_IN", settings.fan_in.to_string().into()),
            ],
        ),
    );
    let worker_environment = |extra: Vec<(&'static str, Input<String>)>| {
        let mut environment = vec![
            ("RESULTS_TABLE", results.name()),
            ("SCRATCHPAD_TABLE", scratchpad.name()),
            ("REDUCE_QUEUE_URL", reduce_queue.url()),
            ("DEAD_LETTER_QUEUE_URL", dead_letters.url()),
        ];
        environment.extend(extra);
        environment.extend(chaos.clone());
        environment
    };
    let mapper =
        stack.add("mapper", function(&stack, on, "mapper", &mapper_role, &settings.mapper, worker_environment(vec![])));
    let reducer = stack.add(
        "reducer",
        function(
            &stack,
            on,
            "reducer",
            &reducer_role,
            &settings.reducer,
            worker_environment(vec![("DEAD_LETTER_QUEUE_ARN", dead_letters.arn())]),
        ),
    );

    stack.add("map-queue-to-mapper", mapping(settings, &mapper, &map_queue));
    stack.add("reduce-queue-to-reducer", mapping(settings, &reducer, &reduce_queue));
    stack.add("dead-letters-to-reducer", mapping(settings, &reducer, &dead_letters));

    let routes =
        vec![Route::new("POST", "/arrays", arrays.arn()), Route::new("GET", "/arrays/{arrayId}", arrays.arn())];
    let api = protected_api(&mut stack, on, STAGE, routes);
    stack.add(
        "api-invokes-arrays",
        LambdaPermissionSpec {
            function_name: arrays.name(),
            statement_id: "api-gateway-invoke".into(),
            principal: "apigateway.amazonaws.com".into(),
            source_arn: api.invoke_source_arn(),
        },
    );

    stack.export("arrays_url", [api.url(), "arrays".into()]);
    stack.export("results_table", [results.name()]);
    stack.export("scratchpad_table", [scratchpad.name()]);
    stack.export("map_queue", [map_queue.url()]);
    stack.export("reduce_queue", [reduce_queue.url()]);
    stack.export("dead_letter_queue", [dead_letters.url()]);
    let functions = [&arrays, &mapper, &reducer].map(|f| f.name());
    stack.export(
        "functions",
        [functions[0].clone(), ", ".into(), functions[1].clone(), ", ".into(), functions[2].clone()],
    );
    stack
}

/// `queue` feeding `function`, failed messages reported one by one (`batchItemFailures`).
fn mapping(
    settings: &MapReduceSettings,
    function: &Handle<declaration::kinds::lambda_function::LambdaFunctionSpec>,
    queue: &Handle<SqsQueueSpec>,
) -> SqsEventSourceMappingSpec {
    SqsEventSourceMappingSpec {
        function_name: function.name(),
        queue_arn: queue.arn(),
        batch_size: settings.batch_size,
        batching_window_s: settings.batching_window_s,
        report_batch_item_failures: true,
        maximum_concurrency: settings.maximum_concurrency,
        enabled: true,
    }
}
