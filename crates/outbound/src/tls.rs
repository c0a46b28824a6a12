//! TLS for outbound SMTP, with the two policies MTAs have:
//!
//! - To a recipient's MX (and per-domain transports), opportunistic
//!   (RFC 7435): STARTTLS when offered, any certificate accepted, plain
//!   when it is not offered. An MX's certificate rarely matches anything
//!   that could be checked, and refusing it would leave only plaintext.
//! - To the smarthost, verified: the certificate must chain to a trusted
//!   root and name the host the operator configured. The roots are the
//!   web PKI's (webpki-roots, which the webhook client trusts too), or
//!   only the certificates of the operator's CA file when one is given (a
//!   private relay). A failed check ends the attempt — it is deferred with
//!   the reason — rather than going on in plain, because the smarthost
//!   gets the credentials and every message.
//!
//! Both use rustls with the `ring` provider, named explicitly.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a session upgrades with STARTTLS.
#[derive(Clone)]
pub struct TlsPolicy {
    config: Arc<ClientConfig>,
    verify: bool,
}

impl std::fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPolicy")
            .field("verify", &self.verify)
            .finish()
    }
}

/// Why the verified policy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the CA file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the CA file {0} holds no certificate")]
    Empty(std::path::PathBuf),
    #[error("a certificate of the CA file {path} is not usable: {source}")]
    Bad {
        path: std::path::PathBuf,
        source: rustls::Error,
    },
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsPolicy {
    /// Any certificate, for opportunistic TLS to an MX.
    pub fn opportunistic() -> Self {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
            verify: false,
        }
    }

    /// Certificates that chain to the web PKI roots, or to the
    /// certificates in `ca_file` (PEM) alone when it is given.
    pub fn verified(ca_file: Option<&Path>) -> Result<Self, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let read = |source| TlsSetupError::Read {
                    path: path.to_path_buf(),
                    source,
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(read)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(read)?;
                if certs.is_empty() {
                    return Err(TlsSetupError::Empty(path.to_path_buf()));
                }
                for c in certs {
                    roots.add(c).map_err(|source| TlsSetupError::Bad {
                        path: path.to_path_buf(),
                        source,
                    })?;
                }
            }
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            verify: true,
        })
    }

    /// Whether the server's certificate is checked.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }

    /// The name the certificate must carry. Verified: the configured host
    /// itself (a DNS name or an IP address), or `None` when it is not a
    /// valid name. Opportunistic: any name will do.
    pub(crate) fn server_name(&self, host: &str) -> Option<ServerName<'static>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match ServerName::try_from(host.to_string()) {
            Ok(n) => Some(n),
            Err(_) if !self.verify => Some(ServerName::try_from("localhost").expect("valid")),
            Err(_) => None,
        }
    }
}

/// Opportunistic TLS between MTAs does not verify certificates (RFC 7435):
/// encryption without authentication beats plaintext, which is the only
/// alternative when a certificate does not match.
#[derive(Debug)]
struct NoVerify;

impl ServerCertVerifier for NoVerify {
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
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
