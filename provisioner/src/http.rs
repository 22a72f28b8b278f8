//! A small HTTP/1.1 client for posting to the deployed API (tests, the demo and the benchmark).
//! Built on the hyper stack the SDK already compiles, so it adds no build cost. It proves who
//! calls as the API requires ([`CallerAuth`]): the stack's API key, or a SigV4 signature with the
//! caller's AWS credentials.

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// Signs `request` for API Gateway's `execute-api` (headers: `authorization`, `x-amz-date`, and
/// the session token when there is one).
fn sign(
    request: &mut hyper::Request<Full<Bytes>>,
    body: &[u8],
    credentials: &aws_credential_types::Credentials,
    region: &str,
) -> Result<()> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .context("SigV4 parameters")?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .context("building the request to sign")?;
    let (instructions, _signature) = sign(signable, &params).context("signing")?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// A pooled HTTP client (keep-alive connections are reused across requests).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    auth: CallerAuth,
}

/// How a request proves who sends it.
#[derive(Clone, Default)]
pub enum CallerAuth {
    /// Nothing: an open API.
    #[default]
    Anonymous,
    /// The stack's API key, sent as `x-api-key`.
    ApiKey(String),
    /// A SigV4 signature (service `execute-api`) with these credentials, in this region.
    SigV4 { credentials: aws_credential_types::Credentials, region: String },
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with default pooling.
    pub fn new() -> Self {
        Self { inner: Client::builder(TokioExecutor::new()).build_http(), auth: CallerAuth::Anonymous }
    }

    /// The same client, sending every request with `auth`.
    pub fn with_auth(self, auth: CallerAuth) -> Self {
        Self { auth, ..self }
    }

    /// POSTs `body` to `url` with the given content type (none when `None`).
    pub async fn post(&self, url: &str, content_type: Option<&str>, body: impl Into<Bytes>) -> Result<Response> {
        let headers: Vec<(&str, &str)> = content_type.map(|c| ("content-type", c)).into_iter().collect();
        self.post_with_headers(url, &headers, body).await
    }

    /// GETs `url`.
    pub async fn get(&self, url: &str) -> Result<Response> {
        let request = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .with_context(|| format!("building a request to {url}"))?;
        self.send(url, request, &[]).await
    }

    /// POSTs `body` to `url` with these headers.
    pub async fn post_with_headers(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response> {
        let mut request = hyper::Request::post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.into();
        let request = request.body(Full::new(body.clone())).with_context(|| format!("building a request to {url}"))?;
        self.send(url, request, &body).await
    }

    async fn send(&self, url: &str, mut request: hyper::Request<Full<Bytes>>, body: &[u8]) -> Result<Response> {
        self.authenticate(&mut request, body).with_context(|| format!("signing the request to {url}"))?;
        let method = request.method().clone();
        let response = self.inner.request(request).await.with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let body =
            response.into_body().collect().await.with_context(|| format!("reading the answer of {url}"))?.to_bytes();
        Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
    }

    fn authenticate(&self, request: &mut hyper::Request<Full<Bytes>>, body: &[u8]) -> Result<()> {
        match &self.auth {
            CallerAuth::Anonymous => Ok(()),
            CallerAuth::ApiKey(key) => {
                request
                    .headers_mut()
                    .insert("x-api-key", key.parse().context("the API key is not a valid header value")?);
                Ok(())
            }
            CallerAuth::SigV4 { credentials, region } => sign(request, body, credentials, region),
        }
    }

    /// POSTs a JSON value.
    pub async fn post_json(&self, url: &str, value: &serde_json::Value) -> Result<Response> {
        self.post(url, Some("application/json"), value.to_string()).await
    }
}
