//! The HTTPS client of every AWS SDK client in the provisioner and the functions: the SDK's own
//! hyper client with rustls, on the *ring* crypto provider instead of the SDK's default aws-lc.
//!
//! Why: the SDK's `default-https-client` feature builds aws-lc, a C library whose build alone
//! takes about 30 s of a cold build on two cores; *ring* builds in about 4 s and is built anyway
//! (the database's TLS uses it). So no crate here enables that feature, and every SDK
//! configuration is given this client ([`client`]) instead. A configuration without it fails its
//! first request with the SDK's "a http_client is required".
//!
//! Behaves as the SDK's default does: the connector settings and sleep of the client it serves,
//! the system's root certificates, and proxies from `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// A new HTTPS client (also speaks plain HTTP, for local endpoints). Connections are pooled per
/// client: build one per configuration, not one per request.
pub fn client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}
