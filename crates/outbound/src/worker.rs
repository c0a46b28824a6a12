//! The outbound worker: its configuration, and the parts one delivery
//! goes through, a file for each phase:
//!
//! - `lease`: the loop that leases due recipients (through
//!   `tidings-core`) and runs their deliveries within the overall and
//!   per-domain limits;
//! - `prepare`: which recipients share a mail transaction, and what is
//!   sent to them (asked of `tidings-core`: return path, rewritten and
//!   signed bytes);
//! - `transact`: finding where to send, and speaking SMTP there on a
//!   pooled or fresh session;
//! - `record`: handing each reply back to `tidings-core`, which decides
//!   what it means and commits it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tidings_core::Tidings;
use tidings_types::SecretString;

use crate::connect::{Policies, Pool};
use crate::route::Router;
use crate::tls::TlsPolicy;

mod lease;
mod prepare;
mod record;
mod transact;

/// Credentials for the smarthost.
#[derive(Debug, Clone)]
pub struct RelayAuth {
    pub user: String,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Name given in EHLO.
    pub helo: String,
    /// Send everything through this `host:port`.
    pub smarthost: Option<String>,
    /// Sent to the smarthost only, and only over TLS unless
    /// `allow_plaintext_auth`.
    pub smarthost_auth: Option<RelayAuth>,
    /// PEM CA certificates the smarthost's certificate must chain to,
    /// instead of the web PKI roots.
    pub smarthost_ca_file: Option<PathBuf>,
    /// Send AUTH to a smarthost that offers no STARTTLS.
    pub allow_plaintext_auth: bool,
    /// Per-domain routes, `domain → host:port`.
    pub transports: HashMap<String, String>,
    /// DNS servers for MX lookups; empty means the system's.
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Port of MX hosts (25 on the Internet).
    pub mx_port: u16,
    /// Which addresses a domain's mail hosts may be at.
    pub mx_policy: tidings_types::address::AddressPolicy,
    /// Use STARTTLS when offered.
    pub starttls: bool,
    /// Connections at once to one destination domain.
    pub per_destination: usize,
    /// Deliveries at once overall.
    pub max_parallel: usize,
    pub timeout: Duration,
    /// How long temporary failures are retried before a soft bounce.
    pub max_age: Duration,
    /// Make leased deliveries due again at start: correct only when this
    /// process is the store's only user (embedded SQLite).
    pub release_leases_on_start: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            helo: "localhost".into(),
            smarthost: None,
            smarthost_auth: None,
            smarthost_ca_file: None,
            allow_plaintext_auth: false,
            transports: HashMap::new(),
            nameservers: Vec::new(),
            mx_port: 25,
            mx_policy: Default::default(),
            starttls: true,
            per_destination: 4,
            max_parallel: 64,
            timeout: Duration::from_secs(60),
            max_age: Duration::from_secs(3 * 86_400),
            release_leases_on_start: false,
        }
    }
}

/// Delivers outbound mail: leases from the store, prepares and decides
/// through `tidings-core`, sends over SMTP.
pub struct Worker {
    app: Tidings,
    config: Arc<OutboundConfig>,
    router: Arc<Router>,
    pool: Arc<Pool>,
    tls: Arc<Policies>,
}

impl Worker {
    /// `app` leases the recipients, prepares each message, and decides
    /// and records each reply's outcome, on its clock.
    pub fn new(app: Tidings, config: OutboundConfig) -> std::io::Result<Self> {
        let config_per_dest = config.per_destination;
        let smarthost = TlsPolicy::verified(config.smarthost_ca_file.as_deref())
            .map_err(std::io::Error::other)?;
        let tls = Policies {
            smarthost,
            mx: TlsPolicy::opportunistic(),
        };
        let router = Router::new(
            config.smarthost.clone(),
            config.transports.clone(),
            &config.nameservers,
            config.mx_port,
            config.mx_policy,
        )?;
        Ok(Self {
            app,
            config: Arc::new(config),
            router: Arc::new(router),
            pool: Arc::new(Pool::new(config_per_dest, Duration::from_secs(30))),
            tls: Arc::new(tls),
        })
    }
}

/// What a delivery uses besides its jobs.
#[derive(Clone, Copy)]
pub(crate) struct Conn<'a> {
    pub app: &'a Tidings,
    pub router: &'a Router,
    pub pool: &'a Pool,
    pub config: &'a OutboundConfig,
    pub tls: &'a Policies,
}
