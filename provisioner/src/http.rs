//! A small HTTP/1.1 client for posting to the deployed API (tests, the demo and the benchmark).
//! Built on the hyper stack the SDK already compiles, so it adds no build cost.

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// A pooled HTTP client (keep-alive connections are reused across requests).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
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
        Self { inner: Client::builder(TokioExecutor::new()).build_http() }
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
        self.send(url, request).await
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
        let request = request.body(Full::new(body.into())).with_context(|| format!("building a request to {url}"))?;
        self.send(url, request).await
    }

    async fn send(&self, url: &str, request: hyper::Request<Full<Bytes>>) -> Result<Response> {
        let method = request.method().clone();
        let response = self.inner.request(request).await.with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let body =
            response.into_body().collect().await.with_context(|| format!("reading the answer of {url}"))?.to_bytes();
        Ok(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
    }

    /// POSTs a JSON value.
    pub async fn post_json(&self, url: &str, value: &serde_json::Value) -> Result<Response> {
        self.post(url, Some("application/json"), value.to_string()).await
    }
}
