//! Configuration: built-in defaults, then a TOML file, then `TIDINGS_*`
//! environment variables (nested keys joined by `__`, e.g.
//! `TIDINGS_HTTP__LISTEN=0.0.0.0:8080`), merged by figment into a raw
//! struct that refuses unknown keys, then turned once into the validated
//! settings the parts are built from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database lives.
    pub data_dir: PathBuf,
    /// This server's host name: Message-IDs, the SMTP greeting.
    pub hostname: String,
    pub http: HttpConfig,
    pub webhooks: WebhookConfig,
    pub sending: SendingConfig,
    pub storage: StorageConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
    pub outbound: OutboundSettings,
    pub smtp: SmtpSettings,
    pub inbound: InboundSettings,
    pub tracking: TrackingSettings,
    pub domains: DomainsConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainsConfig {
    /// Whose sending and tracking domains are used only once their DNS
    /// record is found: `except_operator` (every account but the first),
    /// `all`, or `none`.
    pub proof: tidings_core::domain_proof::ProofPolicy,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingSettings {
    /// Public base URL of the tracking links (e.g. `https://t.example.com`);
    /// the HTTP listener's address when unset.
    pub base_url: Option<String>,
    /// Add `List-Unsubscribe` (RFC 8058 one-click) to every message.
    pub unsubscribe: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundSettings {
    /// The inbound MX (bounces and feedback-loop reports); unset disables it.
    pub listen: Option<SocketAddr>,
    /// Domain of VERP return paths (`b-<token>@<domain>`); point its MX at
    /// the inbound listener. Defaults to `hostname`. Empty disables VERP.
    pub bounce_domain: Option<String>,
    /// Addresses feedback-loop reports are sent to.
    pub feedback_addresses: Vec<String>,
    /// A complaint also records an `unsubscribe` with method `complaint`.
    pub complaint_unsubscribes: bool,
    /// Sessions at once on the MX; past it, `421 4.3.2`.
    pub max_connections: usize,
    /// Sessions at once from one address (IPv6 by /64); past it,
    /// `421 4.7.0`.
    pub max_connections_per_ip: usize,
    /// Seconds from connecting until the first MAIL; past them, `421 4.4.2`.
    pub mail_timeout_secs: u64,
    /// Seconds without a byte from the client before `421 4.4.2`.
    pub idle_timeout_secs: u64,
}

impl Default for InboundSettings {
    fn default() -> Self {
        Self {
            listen: Some("127.0.0.1:2525".parse().expect("valid address")),
            bounce_domain: None,
            feedback_addresses: Vec::new(),
            complaint_unsubscribes: false,
            max_connections: 256,
            max_connections_per_ip: 16,
            mail_timeout_secs: 30,
            idle_timeout_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// SMTP submission with STARTTLS (port 587 style); unset disables it.
    pub listen: Option<SocketAddr>,
    /// SMTP submission over implicit TLS (port 465 style); unset disables it.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain and key; a self-signed pair is generated when unset.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Sessions at once, both submission listeners together; past it,
    /// `421 4.3.2`.
    pub max_connections: usize,
    /// Sessions at once from one address (IPv6 by /64); past it,
    /// `421 4.7.0`.
    pub max_connections_per_ip: usize,
    /// Seconds from connecting until AUTH succeeds; past them, `421 4.4.2`.
    pub auth_timeout_secs: u64,
    /// Seconds without a byte from the client before `421 4.4.2`.
    pub idle_timeout_secs: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            listen: Some("127.0.0.1:2587".parse().expect("valid address")),
            tls_listen: None,
            cert: None,
            key: None,
            max_connections: 256,
            max_connections_per_ip: 16,
            auth_timeout_secs: 30,
            idle_timeout_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Relay all mail through this `host:port` instead of the recipients' MX.
    pub smarthost: Option<String>,
    /// AUTH PLAIN at the smarthost (never at an MX or a transport).
    pub smarthost_user: Option<String>,
    pub smarthost_password: Option<String>,
    /// PEM CA certificates the smarthost's certificate must chain to,
    /// instead of the web PKI roots (a relay with a private CA).
    pub smarthost_ca_file: Option<PathBuf>,
    /// Send the smarthost credentials over a connection without TLS.
    pub allow_plaintext_auth: bool,
    /// Per-domain routes, `domain = "host:port"` (like transport maps).
    pub transports: std::collections::HashMap<String, String>,
    /// DNS servers (`ip:port`) for MX lookups; empty uses the system's.
    pub nameservers: Vec<SocketAddr>,
    /// Port of MX hosts.
    pub mx_port: u16,
    /// Deliver to a recipient domain whose mail hosts are on loopback
    /// (tests, a relay on this machine). Transports and the smarthost are
    /// never checked.
    pub allow_loopback: bool,
    /// Deliver to mail hosts on private, link-local and reserved
    /// addresses (mail that stays inside the operator's network).
    pub allow_private: bool,
    /// Use STARTTLS when the receiver offers it (verified at the
    /// smarthost, opportunistic elsewhere).
    pub starttls: bool,
    /// Connections at once per destination domain.
    pub per_destination: usize,
    /// Hours temporary failures are retried before a soft bounce.
    pub max_age_hours: u32,
    /// Seconds for each SMTP step.
    pub timeout_secs: u64,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            smarthost: None,
            smarthost_user: None,
            smarthost_password: None,
            smarthost_ca_file: None,
            allow_plaintext_auth: false,
            transports: Default::default(),
            nameservers: Vec::new(),
            mx_port: 25,
            allow_loopback: false,
            allow_private: false,
            starttls: true,
            per_destination: 4,
            max_age_hours: 72,
            timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the HTTP API, health and metrics.
    pub listen: SocketAddr,
    /// Connections at once; past it, new ones get `503` and are closed.
    pub max_connections: usize,
    /// Connections at once from one address (IPv6 by /64); past it, `503`.
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request's headers, counted from
    /// when the server starts waiting for them: so also how long an idle
    /// keep-alive connection stays open.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may move no byte either way (a stalled body,
    /// a client that stops reading the response) before it is closed.
    pub idle_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Seconds before a delivery attempt times out.
    pub timeout_secs: u64,
    /// Days of past events a new webhook receives; 0 disables backfill.
    pub backfill_days: u32,
    /// Consecutive failures of one event type that pause it on a webhook.
    pub pause_after: u32,
    /// Hours the old secret keeps signing after a rotation (default overlap).
    pub secret_overlap_hours: u32,
    /// Allow targets on loopback addresses (development and tests).
    pub allow_loopback: bool,
    /// Allow targets on private and link-local addresses.
    pub allow_private: bool,
    /// Most deliveries held in memory at once (queued or in flight).
    pub max_held: usize,
    /// Longest `Retry-After` honoured, in seconds.
    pub max_retry_after_secs: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendingConfig {
    /// Accept mail from any From domain, not only the domains an account
    /// added with `POST /v1/domains` (development only).
    pub allow_any_sender: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync every commit.
    Full,
    /// fsync at checkpoints; a power loss may lose the last commits.
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub durability: Durability,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days events and attempts are kept.
    pub days: u32,
    /// Seconds between pruning runs.
    pub prune_interval_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `tidings=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tidings-data"),
            hostname: "localhost".into(),
            http: HttpConfig::default(),
            webhooks: WebhookConfig::default(),
            sending: SendingConfig::default(),
            storage: StorageConfig::default(),
            retention: RetentionConfig::default(),
            log: LogConfig::default(),
            outbound: OutboundSettings::default(),
            smtp: SmtpSettings::default(),
            inbound: InboundSettings::default(),
            tracking: TrackingSettings::default(),
            domains: DomainsConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_read_timeout_secs: 20,
            idle_timeout_secs: 60,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 15,
            backfill_days: 7,
            pause_after: 100,
            secret_overlap_hours: 24,
            allow_loopback: false,
            allow_private: false,
            max_held: 8192,
            max_retry_after_secs: 3600,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            days: 30,
            prune_interval_secs: 3600,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Defaults, then the file (if given; it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                bail!("configuration file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(Env::prefixed("TIDINGS_").split("__").ignore(&["config"]));
        let cfg: Config = fig.extract().context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.webhooks.timeout_secs == 0 || self.webhooks.timeout_secs > 300 {
            bail!("webhooks.timeout_secs must be between 1 and 300");
        }
        if self.webhooks.pause_after == 0 {
            bail!("webhooks.pause_after must be at least 1");
        }
        if self.webhooks.max_held < 16 {
            bail!("webhooks.max_held must be at least 16");
        }
        if self.retention.days == 0 {
            bail!("retention.days must be at least 1");
        }
        self.validate_limits()
    }

    fn validate_limits(&self) -> anyhow::Result<()> {
        let listeners = [
            (
                "http",
                self.http.max_connections,
                self.http.max_connections_per_ip,
            ),
            (
                "smtp",
                self.smtp.max_connections,
                self.smtp.max_connections_per_ip,
            ),
            (
                "inbound",
                self.inbound.max_connections,
                self.inbound.max_connections_per_ip,
            ),
        ];
        for (name, total, per_ip) in listeners {
            if total == 0 || per_ip == 0 {
                bail!(
                    "{name}.max_connections and {name}.max_connections_per_ip must be at least 1"
                );
            }
            if per_ip > total {
                bail!("{name}.max_connections_per_ip ({per_ip}) is more than {name}.max_connections ({total})");
            }
        }
        let timeouts = [
            (
                "http.header_read_timeout_secs",
                self.http.header_read_timeout_secs,
            ),
            ("http.idle_timeout_secs", self.http.idle_timeout_secs),
            ("smtp.auth_timeout_secs", self.smtp.auth_timeout_secs),
            ("smtp.idle_timeout_secs", self.smtp.idle_timeout_secs),
            ("inbound.mail_timeout_secs", self.inbound.mail_timeout_secs),
            ("inbound.idle_timeout_secs", self.inbound.idle_timeout_secs),
        ];
        for (name, secs) in timeouts {
            if secs == 0 {
                bail!("{name} must be at least 1");
            }
        }
        // Testing a webhook answers only once the receiver has: the
        // connection must outlive the wait.
        if self.http.idle_timeout_secs <= self.webhooks.timeout_secs {
            bail!(
                "http.idle_timeout_secs ({}) must be more than webhooks.timeout_secs ({})",
                self.http.idle_timeout_secs,
                self.webhooks.timeout_secs
            );
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("tidings.db")
    }

    /// The VERP bounce domain, if VERP is on.
    pub fn bounce_domain(&self) -> Option<String> {
        match &self.inbound.bounce_domain {
            Some(d) if d.is_empty() => None,
            Some(d) => Some(d.clone()),
            // A bare host name (`localhost`) cannot receive mail from the
            // Internet: no VERP until a bounce domain is configured.
            None if !self.hostname.contains('.') => None,
            None => Some(self.hostname.clone()),
        }
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_secs(self.webhooks.timeout_secs)
    }
}
