//! SNS subscription: a topic delivering to a function (protocol `lambda`). Subscribe is
//! idempotent and a subscription has no name, so one from the same topic to the same function is
//! looked for first; it takes no tags and is owned through its topic and function, which must both
//! be the stack's. The function must also allow SNS to invoke it (a `lambda_permission`).

use crate::aws::{
    errors, outputs, recorded_output, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent, Teardown,
};
use crate::cloud::Cloud;
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// The kind as the state records it.
pub use declaration::kinds::sns_subscription::*;

pub const KIND: Kind = Kind::new(<SnsSubscriptionSpec as declaration::Spec>::KIND);

/// The driver of [`KIND`].
pub struct SnsSubscription;

impl Driver<Cloud> for SnsSubscription {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn"]
    }
    crate::declared_as!(SnsSubscriptionSpec);
    fn label(&self) -> &'static str {
        "SNS subscription"
    }
    /// When `down` deletes it: it may invoke the stack's functions: it goes first.
    fn teardown(&self) -> Teardown {
        Teardown::Source
    }
    fn service(&self) -> &'static str {
        "sns"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["topic_arn", "function_arn"]
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: SnsSubscriptionSpec = typed(props, KIND)?;
            let (Some(topic), Some(function)) = (spec.topic_arn.value(), spec.function_arn.value()) else {
                return Ok(None); // its topic or function does not exist yet
            };
            find(cx, topic, function).await
        })
    }
    fn read<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let spec: SnsSubscriptionSpec = typed(&recorded.props, KIND)?;
            find(cx, spec.topic_arn.get(), spec.function_arn.get()).await
        })
    }
    fn look_before_create(&self) -> bool {
        true
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: SnsSubscriptionSpec = typed(props, KIND)?;
            let answer = cx
                .cloud
                .sns
                .subscribe()
                .topic_arn(spec.topic_arn.get())
                .protocol("lambda")
                .endpoint(spec.function_arn.get())
                .return_subscription_arn(true)
                .send()
                .await;
            let what = format!("subscribing {} to {}", spec.function_arn.get(), spec.topic_arn.get());
            errors::sent(answer, |_| false, what, |out| outputs([("arn", json!(out.subscription_arn))]))
        })
    }
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value, _: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        self.lookup(cx, props)
    }
    /// Nothing of a subscription changes in place (its topic and function replace it).
    fn update<'a>(
        &'a self,
        _: &'a Cx<'a>,
        _: &'a Value,
        recorded: &'a Recorded,
        _: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move { Ok(recorded.outputs.clone()) })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let arn = recorded_output(recorded, "arn")?;
            errors::deleted(
                cx.cloud.sns.unsubscribe().subscription_arn(arn).send().await,
                format!("unsubscribing {arn}"),
            )
        })
    }
}

/// The `lambda` subscription of `topic` delivering to `function`, if there is one.
async fn find(cx: &Cx<'_>, topic: &str, function: &str) -> Result<Option<Observed>> {
    let mut token = None;
    loop {
        let answer = cx.cloud.sns.list_subscriptions_by_topic().topic_arn(topic).set_next_token(token).send().await;
        let Some(page) = errors::found(answer, format!("listing the subscriptions of {topic}"))? else {
            return Ok(None);
        };
        let found =
            page.subscriptions().iter().find(|s| s.protocol() == Some("lambda") && s.endpoint() == Some(function));
        if let Some(subscription) = found {
            let arn = subscription.subscription_arn().context("a subscription without an ARN")?;
            // A subscription still being confirmed has no ARN yet.
            if arn.starts_with("arn:") {
                return Ok(Some(Observed::new(
                    json!({ "topic_arn": topic, "function_arn": function }),
                    outputs([("arn", json!(arn))]),
                )));
            }
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok(None),
        }
    }
}
