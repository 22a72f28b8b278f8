//! The connection to one AWS endpoint: one `SdkConfig` and every service client, built once.
//!
//! The endpoint is real AWS (standard credential, region and profile chain) unless an endpoint
//! URL is given (`--endpoint-url` or `AWS_ENDPOINT_URL`), in which case it is a local emulator.

use crate::api_calls::CallLog;
use crate::aws::endpoint::Endpoint;
use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

/// Where the stack is deployed and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// A custom endpoint (a local emulator such as MiniStack or LocalStack), or `None` for AWS.
    pub endpoint_url: Option<String>,
    /// Region override; `None` uses the standard chain (env, profile).
    pub region: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
}

impl Target {
    /// True when talking to a local emulator rather than AWS.
    pub fn is_local(&self) -> bool {
        self.endpoint_url.is_some()
    }
}

/// Every client the provisioner uses, sharing one configuration.
pub struct Cloud {
    pub target: Target,
    pub region: String,
    pub iam: aws_sdk_iam::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub rds: aws_sdk_rds::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// Every API call made through these clients.
    pub calls: CallLog,
    account_id: OnceCell<String>,
    endpoint: OnceCell<Endpoint>,
}

impl Cloud {
    /// Loads the configuration from the standard chain, applying the target's overrides.
    pub async fn connect(target: Target) -> Result<Self> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
            // Emulators accept any credentials; supply dummies only when none are configured.
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && target.profile.is_none() {
                loader = loader.credentials_provider(aws_sdk_sts::config::Credentials::new(
                    "test",
                    "test",
                    None,
                    None,
                    "local-emulator",
                ));
            }
        }
        if let Some(region) = &target.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        } else if target.is_local()
            && std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(profile) = &target.profile {
            loader = loader.profile_name(profile);
        }
        let config: SdkConfig = loader.load().await;
        let region = config.region().map(|r| r.to_string()).context(
            "no AWS region configured: pass --region, set AWS_REGION, or set a region in your profile \
             (for the local cloud, point at it first: eval \"$(scripts/local-cloud env)\")",
        )?;
        let calls = CallLog::default();
        Ok(Self {
            region,
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            kinesis: aws_sdk_kinesis::Client::from_conf(
                aws_sdk_kinesis::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            apigateway: aws_sdk_apigateway::Client::from_conf(
                aws_sdk_apigateway::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            // Path-style addressing: emulators serve buckets under their own host, not as
            // <bucket>.<host> names that would need DNS.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(target.is_local())
                    .interceptor(calls.clone())
                    .build(),
            ),
            firehose: aws_sdk_firehose::Client::from_conf(
                aws_sdk_firehose::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            calls,
            account_id: OnceCell::new(),
            endpoint: OnceCell::new(),
            target,
        })
    }

    /// The account the credentials belong to (asked of STS once).
    pub async fn account_id(&self) -> Result<String> {
        self.account_id
            .get_or_try_init(|| async {
                let identity = self.sts.get_caller_identity().send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "asking STS who the credentials belong to: {}. Check your credentials (aws configure, AWS_PROFILE) or the endpoint URL",
                        crate::aws::errors::describe(&e)
                    )
                })?;
                identity.account.context("STS returned no account id")
            })
            .await
            .cloned()
    }

    /// What the endpoint is and which services it lists, asked once (see `aws::endpoint`).
    pub async fn endpoint(&self) -> &Endpoint {
        self.endpoint.get_or_init(|| crate::aws::endpoint::detect(self.target.endpoint_url.as_deref())).await
    }

    /// A short human description of the endpoint for messages.
    pub fn describe(&self) -> String {
        match &self.target.endpoint_url {
            Some(url) => format!("{url} ({})", self.region),
            None => format!("AWS {}", self.region),
        }
    }
}
