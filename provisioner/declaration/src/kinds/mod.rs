//! Every resource kind the engine knows: its spec (the declared properties, as the document
//! names them) and its handle's outputs. The engine's driver of each kind reads the same types.

pub mod api_key;
pub mod cloudwatch_alarm;
pub mod dynamodb_table;
pub mod event_source_mapping;
pub mod firehose_delivery_stream;
pub mod iam_role;
pub mod kinesis_stream;
pub mod kinesis_stream_consumer;
pub mod lambda_function;
pub mod lambda_permission;
pub mod log_group;
pub mod postgres_schema;
pub mod rds_instance;
pub mod rds_subnet_group;
pub mod rest_api;
pub mod s3_bucket;
pub mod sns_subscription;
pub mod sns_topic;
pub mod sqs_event_source_mapping;
pub mod sqs_queue;
pub mod usage_plan;
