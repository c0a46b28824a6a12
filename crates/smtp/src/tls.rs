//! The server's TLS configuration: PEM files from the config, or a
//! self-signed certificate made at start-up for development. Always rustls
//! with the `ring` provider, named explicitly so that no other provider
//! compiled into the binary can change which one is used.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSource;
use crate::error::SmtpError;

/// A ready TLS acceptor and the certificate chain it presents.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// Leaf first. With [`TlsSource::SelfSigned`] this is the generated
    /// certificate, which a test client can trust.
    pub chain: Vec<CertificateDer<'static>>,
}

impl ServerTls {
    pub fn load(source: &TlsSource, hostname: &str) -> Result<Self, SmtpError> {
        let (chain, key) = match source {
            TlsSource::Files { cert, key } => {
                let pem = |what: &'static str, path: &std::path::Path| {
                    let path = path.to_path_buf();
                    move |source| SmtpError::Pem { what, path, source }
                };
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(pem("certificate", cert))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(pem("certificate", cert))?;
                if chain.is_empty() {
                    return Err(SmtpError::NoCertificate(cert.clone()));
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(pem("key", key))?;
                (chain, key)
            }
            TlsSource::SelfSigned => {
                let mut names = vec![hostname.to_string()];
                if hostname != "localhost" {
                    names.push("localhost".into());
                }
                let ck = rcgen::generate_simple_self_signed(names)?;
                let key = PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
                (vec![ck.cert.der().clone()], key.into())
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            chain,
        })
    }
}
