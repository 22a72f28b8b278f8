//! Firehose delivery stream from a Kinesis stream (`KinesisStreamAsSource`) to an S3 bucket
//! (extended S3 destination). The destination (bucket, role, prefixes, buffering, compression) is
//! updated in place with UpdateDestination; a new source replaces the delivery stream, as
//! Firehose cannot change it. Creation retries while a new IAM role propagates.

use crate::aws::retry::{poll_until, retry_when, PROPAGATION_DEADLINE};
use crate::aws::{
    declared_tags, errors, name_prop, outputs, typed, BoxFut, Cx, Driver, Kind, Observed, Outputs, Recorded, Sent,
};
use crate::cloud::Cloud;
use crate::engine::mark::marked_tags;
use anyhow::{Context, Result};
use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamDescription, DeliveryStreamStatus, DeliveryStreamType,
    ExtendedS3DestinationConfiguration, ExtendedS3DestinationUpdate, KinesisStreamSourceConfiguration, Tag,
};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The kind as the state records it.
pub use declaration::kinds::firehose_delivery_stream::*;

pub const KIND: Kind = Kind::new(<FirehoseDeliveryStreamSpec as declaration::Spec>::KIND);

/// How often a wait reads the delivery stream's status.
const POLL: Duration = Duration::from_secs(1);
/// How long a delivery stream may take to become active or to go.
const WAIT: Duration = Duration::from_secs(600);
/// The properties UpdateDestination changes in place.
const DESTINATION_FIELDS: &[&str] =
    &["bucket_arn", "role_arn", "prefix", "error_prefix", "buffer_size_mb", "buffer_interval_s", "compression"];

/// The driver of [`KIND`].
pub struct FirehoseDeliveryStream;

impl Driver<Cloud> for FirehoseDeliveryStream {
    fn kind(&self) -> Kind {
        KIND
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["arn", "name", "version_id", "destination_id"]
    }
    crate::declared_as!(FirehoseDeliveryStreamSpec);
    fn label(&self) -> &'static str {
        "Firehose delivery stream"
    }
    fn service(&self) -> &'static str {
        "firehose"
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["name", "source_stream_arn", "source_role_arn"]
    }
    fn takes_tags(&self) -> bool {
        true
    }
    fn check(&self, props: &Value) -> std::result::Result<(), String> {
        props.get("name").and_then(Value::as_str).map_or(Ok(()), super::names::firehose_delivery_stream)
    }
    fn lookup<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move { find(cx, name_prop(props, "name", KIND)?).await })
    }
    fn send_create<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<Sent>> {
        Box::pin(async move {
            let spec: FirehoseDeliveryStreamSpec = typed(props, KIND)?;
            check(&spec)?;
            send_create(cx, &spec, props).await
        })
    }
    fn wait_deleted<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { wait_deleted(cx, name_prop(props, "name", KIND)?).await })
    }
    fn ready<'a>(&'a self, cx: &'a Cx<'a>, props: &'a Value, _: &'a Outputs) -> BoxFut<'a, Result<Option<Observed>>> {
        Box::pin(async move {
            let name = name_prop(props, "name", KIND)?;
            wait_active(cx, name).await?;
            find(cx, name).await
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        props: &'a Value,
        _: &'a Recorded,
        changed: &'a [String],
    ) -> BoxFut<'a, Result<Outputs>> {
        Box::pin(async move {
            let spec: FirehoseDeliveryStreamSpec = typed(props, KIND)?;
            check(&spec)?;
            apply(cx, &spec, props, changed).await
        })
    }
    fn delete<'a>(&'a self, cx: &'a Cx<'a>, recorded: &'a Recorded) -> BoxFut<'a, Result<()>> {
        Box::pin(async move { delete_stream(cx, name_prop(&recorded.props, "name", KIND)?).await })
    }
}

/// Deletes the delivery stream and waits until it is gone.
async fn delete_stream(cx: &Cx<'_>, name: &str) -> Result<()> {
    let firehose = &cx.cloud.firehose;
    // A stream still being created answers ResourceInUseException: wait it out.
    let answer = retry_when(PROPAGATION_DEADLINE, errors::is_busy, || {
        firehose.delete_delivery_stream().delivery_stream_name(name).allow_force_delete(false).send()
    })
    .await;
    errors::deleted(answer, format!("deleting Firehose delivery stream {name}"))?;
    wait_deleted(cx, name).await
}

fn check(spec: &FirehoseDeliveryStreamSpec) -> Result<()> {
    let name = &spec.name;
    if !(1..=128).contains(&spec.buffer_size_mb) {
        anyhow::bail!("Firehose delivery stream {name}: buffer_size_mb is 1 to 128, not {}", spec.buffer_size_mb);
    }
    if !(0..=900).contains(&spec.buffer_interval_s) {
        anyhow::bail!("Firehose delivery stream {name}: buffer_interval_s is 0 to 900, not {}", spec.buffer_interval_s);
    }
    if !CompressionFormat::values().contains(&spec.compression.as_str()) {
        anyhow::bail!(
            "Firehose delivery stream {name}: compression is one of {}, not `{}`",
            CompressionFormat::values().join(", "),
            spec.compression
        );
    }
    if spec.prefix.contains("!{") && spec.error_prefix.is_empty() {
        anyhow::bail!(
            "Firehose delivery stream {name}: a prefix with expressions (`!{{...}}`) needs an error_prefix \
             (Firehose requires one)"
        );
    }
    Ok(())
}

/// Sends CreateDeliveryStream for `spec` with the stack's mark, retrying while a new role
/// propagates. ResourceInUseException: the name is taken, or a stream of it is being deleted.
async fn send_create(cx: &Cx<'_>, spec: &FirehoseDeliveryStreamSpec, props: &Value) -> Result<Sent> {
    let source = KinesisStreamSourceConfiguration::builder()
        .kinesis_stream_arn(spec.source_stream_arn.get())
        .role_arn(spec.source_role_arn.get())
        .build()?;
    let destination = destination(spec)?;
    let tags = tags(props)?;
    let answer = retry_when(PROPAGATION_DEADLINE, errors::is_role_not_ready, || {
        cx.cloud
            .firehose
            .create_delivery_stream()
            .delivery_stream_name(&spec.name)
            .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
            .kinesis_stream_source_configuration(source.clone())
            .extended_s3_destination_configuration(destination.clone())
            .set_tags((!tags.is_empty()).then(|| tags.clone()))
            .send()
    })
    .await;
    errors::sent(
        answer,
        errors::is_in_use_or_conflict,
        format!("creating Firehose delivery stream {}", spec.name),
        |_| Outputs::new(),
    )
}

fn destination(spec: &FirehoseDeliveryStreamSpec) -> Result<ExtendedS3DestinationConfiguration> {
    Ok(ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(spec.bucket_arn.get())
        .role_arn(spec.role_arn.get())
        .prefix(&spec.prefix)
        .error_output_prefix(&spec.error_prefix)
        .buffering_hints(buffering(spec))
        .compression_format(CompressionFormat::from(spec.compression.as_str()))
        .build()?)
}

fn destination_update(spec: &FirehoseDeliveryStreamSpec) -> ExtendedS3DestinationUpdate {
    ExtendedS3DestinationUpdate::builder()
        .bucket_arn(spec.bucket_arn.get())
        .role_arn(spec.role_arn.get())
        .prefix(&spec.prefix)
        .error_output_prefix(&spec.error_prefix)
        .buffering_hints(buffering(spec))
        .compression_format(CompressionFormat::from(spec.compression.as_str()))
        .build()
}

fn buffering(spec: &FirehoseDeliveryStreamSpec) -> BufferingHints {
    BufferingHints::builder().size_in_mbs(spec.buffer_size_mb).interval_in_seconds(spec.buffer_interval_s).build()
}

/// Applies the `changed` properties in place (the mark, the destination) and returns the outputs.
async fn apply(cx: &Cx<'_>, spec: &FirehoseDeliveryStreamSpec, props: &Value, changed: &[String]) -> Result<Outputs> {
    if changed.iter().any(|f| f == "tags") {
        tag(cx, &spec.name, props).await?;
    }
    if changed.iter().any(|f| DESTINATION_FIELDS.contains(&f.as_str())) {
        update_destination(cx, spec).await?;
        wait_active(cx, &spec.name).await?;
    }
    find(cx, &spec.name).await?.map(|o| o.outputs).context("the delivery stream vanished during its update")
}

/// Sends UpdateDestination with the version id and destination id read right before (the
/// version changes on every update); retries while the stream is busy, the version went stale
/// or a new role propagates.
async fn update_destination(cx: &Cx<'_>, spec: &FirehoseDeliveryStreamSpec) -> Result<()> {
    let name = &spec.name;
    let started = Instant::now();
    loop {
        let current = describe(cx, name).await?.with_context(|| format!("delivery stream {name} vanished"))?;
        let destination_id = current
            .destinations
            .first()
            .map(|d| d.destination_id.clone())
            .with_context(|| format!("Firehose delivery stream {name} has no destination"))?;
        let sent = cx
            .cloud
            .firehose
            .update_destination()
            .delivery_stream_name(name)
            .current_delivery_stream_version_id(current.version_id)
            .destination_id(destination_id)
            .extended_s3_destination_update(destination_update(spec))
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e) if errors::is_update_retryable(&e) && started.elapsed() < PROPAGATION_DEADLINE => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => {
                return Err(errors::context(format!("updating the destination of Firehose delivery stream {name}"), e))
            }
        }
    }
}

fn tags(props: &Value) -> Result<Vec<Tag>> {
    declared_tags(props).into_iter().map(|(k, v)| Ok(Tag::builder().key(k).value(v).build()?)).collect()
}

/// Writes the stack's mark (TagDeliveryStream adds to the tags already there).
async fn tag(cx: &Cx<'_>, name: &str, props: &Value) -> Result<()> {
    let tags = tags(props)?;
    if tags.is_empty() {
        return Ok(());
    }
    cx.cloud
        .firehose
        .tag_delivery_stream()
        .delivery_stream_name(name)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| errors::context(format!("tagging Firehose delivery stream {name}"), e))?;
    Ok(())
}

/// Waits until the delivery stream is ACTIVE, saying each status it passes through.
async fn wait_active(cx: &Cx<'_>, name: &str) -> Result<()> {
    let reported = Mutex::new(String::new());
    poll_until(&format!("Firehose delivery stream {name} to become active"), POLL, WAIT, || async {
        let stream = describe(cx, name)
            .await?
            .with_context(|| format!("Firehose delivery stream {name} disappeared while becoming active"))?;
        report(cx, &reported, stream.delivery_stream_status.as_str());
        match stream.delivery_stream_status {
            DeliveryStreamStatus::Active => Ok(Some(())),
            DeliveryStreamStatus::CreatingFailed => Err(failure(name, &stream)),
            DeliveryStreamStatus::Deleting | DeliveryStreamStatus::DeletingFailed => {
                anyhow::bail!("Firehose delivery stream {name} is being deleted")
            }
            _ => Ok(None),
        }
    })
    .await
}

/// Waits until the delivery stream is gone.
async fn wait_deleted(cx: &Cx<'_>, name: &str) -> Result<()> {
    poll_until(&format!("Firehose delivery stream {name} to be deleted"), POLL, WAIT, || async {
        match describe(cx, name).await? {
            None => Ok(Some(())),
            Some(stream) if stream.delivery_stream_status == DeliveryStreamStatus::DeletingFailed => {
                Err(failure(name, &stream))
            }
            Some(_) => Ok(None),
        }
    })
    .await
}

/// Prints a status when it changes, except an ACTIVE seen at once (nothing was waited for).
fn report(cx: &Cx<'_>, reported: &Mutex<String>, status: &str) {
    let mut last = reported.lock().expect("status lock");
    if *last != status && !(last.is_empty() && status == DeliveryStreamStatus::Active.as_str()) {
        cx.progress(format!("delivery stream status {status}"));
    }
    *last = status.to_string();
}

/// The error for a stream in a failed state, with Firehose's description of the failure.
fn failure(name: &str, stream: &DeliveryStreamDescription) -> anyhow::Error {
    let why = stream
        .failure_description
        .as_ref()
        .map(|f| format!("{}: {}", f.r#type.as_str(), f.details))
        .unwrap_or_else(|| "Firehose gave no failure description".to_string());
    anyhow::anyhow!("Firehose delivery stream {name} is {}: {why}", stream.delivery_stream_status.as_str())
}

/// The delivery stream's description, whatever its status; `None` when it does not exist.
async fn describe(cx: &Cx<'_>, name: &str) -> Result<Option<DeliveryStreamDescription>> {
    let answer = cx.cloud.firehose.describe_delivery_stream().delivery_stream_name(name).send().await;
    let Some(out) = errors::found(answer, format!("reading Firehose delivery stream {name}"))? else { return Ok(None) };
    out.delivery_stream_description.map(Some).context("DescribeDeliveryStream returned no description")
}

/// All the delivery stream's tags, page by page; `None` when it does not exist.
async fn stream_tags(cx: &Cx<'_>, name: &str) -> Result<Option<Vec<(String, String)>>> {
    let (mut tags, mut start) = (Vec::new(), None);
    loop {
        let listed = cx
            .cloud
            .firehose
            .list_tags_for_delivery_stream()
            .delivery_stream_name(name)
            .set_exclusive_start_tag_key(start)
            .send()
            .await;
        let Some(out) = errors::found(listed, format!("reading the tags of Firehose delivery stream {name}"))? else {
            return Ok(None);
        };
        start = out.tags.last().map(|t| t.key.clone());
        let more = out.has_more_tags && start.is_some();
        tags.extend(out.tags.into_iter().map(|t| (t.key, t.value.unwrap_or_default())));
        if !more {
            return Ok(Some(tags));
        }
    }
}

/// The observed properties (named as in the spec) and outputs of a described delivery stream.
fn observe(stream: &DeliveryStreamDescription, tags: &[(String, String)]) -> Observed {
    let source = stream.source.as_ref().and_then(|s| s.kinesis_stream_source_description.as_ref());
    let destination = stream.destinations.first();
    let s3 = destination.and_then(|d| d.extended_s3_destination_description.as_ref());
    let hints = s3.and_then(|d| d.buffering_hints.as_ref());
    Observed {
        props: json!({
            "name": stream.delivery_stream_name,
            "source_stream_arn": source.and_then(|s| s.kinesis_stream_arn.clone()),
            "source_role_arn": source.and_then(|s| s.role_arn.clone()),
            "bucket_arn": s3.map(|d| d.bucket_arn.clone()),
            "role_arn": s3.map(|d| d.role_arn.clone()),
            "prefix": s3.map(|d| d.prefix.clone().unwrap_or_default()),
            "error_prefix": s3.map(|d| d.error_output_prefix.clone().unwrap_or_default()),
            "buffer_size_mb": hints.and_then(|h| h.size_in_mbs),
            "buffer_interval_s": hints.and_then(|h| h.interval_in_seconds),
            "compression": s3.map(|d| d.compression_format.as_str()),
            "tags": marked_tags(tags.iter().map(|(k, v)| (k, v))),
        }),
        outputs: outputs([
            ("arn", json!(stream.delivery_stream_arn)),
            ("name", json!(stream.delivery_stream_name)),
            ("version_id", json!(stream.version_id)),
            ("destination_id", json!(destination.map(|d| d.destination_id.clone()))),
        ]),
        created_unix: stream.create_timestamp.and_then(|t| u64::try_from(t.secs()).ok()),
        failed: (stream.delivery_stream_status == DeliveryStreamStatus::CreatingFailed)
            .then(|| failure(&stream.delivery_stream_name, stream).to_string()),
    }
}

async fn find(cx: &Cx<'_>, name: &str) -> Result<Option<Observed>> {
    let Some(stream) = describe(cx, name).await? else {
        return Ok(None);
    };
    if stream.delivery_stream_status == DeliveryStreamStatus::Deleting {
        return Ok(None);
    }
    let Some(tags) = stream_tags(cx, name).await? else {
        return Ok(None);
    };
    Ok(Some(observe(&stream, &tags)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::changed_fields;
    use aws_sdk_firehose::types::{
        DestinationDescription, ExtendedS3DestinationDescription, KinesisStreamSourceDescription, SourceDescription,
    };

    fn spec() -> FirehoseDeliveryStreamSpec {
        FirehoseDeliveryStreamSpec {
            name: "demo-archive".into(),
            source_stream_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/demo-events".into(),
            source_role_arn: "arn:aws:iam::123456789012:role/demo-firehose".into(),
            bucket_arn: "arn:aws:s3:::demo-archive-123456789012-us-east-1".into(),
            role_arn: "arn:aws:iam::123456789012:role/demo-firehose".into(),
            prefix: "records/year=!{timestamp:yyyy}/".into(),
            error_prefix: "errors/!{firehose:error-output-type}/".into(),
            buffer_size_mb: 5,
            buffer_interval_s: 60,
            compression: "GZIP".into(),
        }
    }

    fn described(spec: &FirehoseDeliveryStreamSpec) -> DeliveryStreamDescription {
        let s3 = ExtendedS3DestinationDescription::builder()
            .bucket_arn(spec.bucket_arn.get())
            .role_arn(spec.role_arn.get())
            .prefix(&spec.prefix)
            .error_output_prefix(&spec.error_prefix)
            .buffering_hints(buffering(spec))
            .compression_format(CompressionFormat::from(spec.compression.as_str()))
            .build()
            .unwrap();
        let source = KinesisStreamSourceDescription::builder()
            .kinesis_stream_arn(spec.source_stream_arn.get())
            .role_arn(spec.source_role_arn.get())
            .build();
        DeliveryStreamDescription::builder()
            .delivery_stream_name(&spec.name)
            .delivery_stream_arn("arn:aws:firehose:us-east-1:123456789012:deliverystream/demo-archive")
            .delivery_stream_status(DeliveryStreamStatus::Active)
            .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
            .version_id("3")
            .source(SourceDescription::builder().kinesis_stream_source_description(source).build())
            .destinations(
                DestinationDescription::builder()
                    .destination_id("destinationId-000000000001")
                    .extended_s3_destination_description(s3)
                    .build()
                    .unwrap(),
            )
            .has_more_destinations(false)
            .build()
            .unwrap()
    }

    #[test]
    fn a_stream_as_declared_shows_no_change() {
        let spec = spec();
        let mut declared = serde_json::to_value(&spec).unwrap();
        declared["tags"] = json!({"provision:stack": "demo"});
        let tags = [("provision:stack".to_string(), "demo".to_string()), ("team".to_string(), "x".to_string())];
        let observed = observe(&described(&spec), &tags);
        assert!(changed_fields(&declared, &observed.props, None, &[], &[]).is_empty(), "{}", observed.props);
        assert_eq!(observed.outputs["version_id"], json!("3"));
        assert_eq!(observed.outputs["destination_id"], json!("destinationId-000000000001"));
    }

    #[test]
    fn a_changed_destination_is_an_update_and_a_changed_source_a_replacement() {
        let observed = observe(&described(&spec()), &[]);
        let mut changed = spec();
        changed.prefix = "other/".into();
        changed.buffer_interval_s = 300;
        changed.source_stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/other".into();
        let mut fields = changed_fields(&serde_json::to_value(&changed).unwrap(), &observed.props, None, &[], &[]);
        fields.sort();
        assert_eq!(fields, vec!["buffer_interval_s", "prefix", "source_stream_arn"]);
        assert!(FirehoseDeliveryStream.replace_on().contains(&"source_stream_arn"));
        assert!(["prefix", "buffer_interval_s"].iter().all(|f| DESTINATION_FIELDS.contains(f)));
    }

    #[test]
    fn a_stream_whose_create_failed_is_observed_as_failed_with_the_reason() {
        assert_eq!(observe(&described(&spec()), &[]).failed, None);
        let mut stream = described(&spec());
        stream.delivery_stream_status = DeliveryStreamStatus::CreatingFailed;
        stream.failure_description = Some(
            aws_sdk_firehose::types::FailureDescription::builder()
                .r#type(aws_sdk_firehose::types::DeliveryStreamFailureType::InvalidKmsKey)
                .details("key gone")
                .build()
                .unwrap(),
        );
        let why = observe(&stream, &[]).failed.expect("a failed create is reported");
        assert!(why.contains("CREATING_FAILED") && why.contains("key gone"), "{why}");
    }

    #[test]
    fn declarations_firehose_refuses_are_refused_before_any_call() {
        assert!(check(&spec()).is_ok());
        let mut bad = spec();
        bad.buffer_size_mb = 129;
        assert!(check(&bad).is_err());
        let mut bad = spec();
        bad.buffer_interval_s = 901;
        assert!(check(&bad).is_err());
        let mut bad = spec();
        bad.compression = "BZIP2".into();
        assert!(check(&bad).is_err());
        let mut bad = spec();
        bad.error_prefix.clear();
        assert!(check(&bad).unwrap_err().to_string().contains("error_prefix"));
        assert!(crate::aws::names::firehose_delivery_stream("demo-archive").is_ok());
        assert!(crate::aws::names::firehose_delivery_stream("demo/archive").unwrap_err().contains("contains `/`"));
        assert!(crate::aws::names::firehose_delivery_stream(&"f".repeat(65)).unwrap_err().contains("1 to 64"));
    }
}
