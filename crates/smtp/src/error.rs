use std::path::PathBuf;

/// Why an SMTP listener could not be set up. Once a listener runs, nothing
/// a client does is an error of the server: sessions end with a
/// [`crate::SessionEnd`] instead.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot read the TLS {what} from {path}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("the TLS certificate and key cannot be used")]
    Tls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate")]
    SelfSigned(#[from] rcgen::Error),
}
