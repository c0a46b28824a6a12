//! What the operator sets for an SMTP listener. Every field has a default,
//! documented on the field and given by [`SmtpConfig::default`].

use std::path::PathBuf;
use std::time::Duration;

/// Settings shared by every session of one [`crate::SmtpServer`].
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The name the server gives in its greeting and EHLO reply, and the
    /// name on a generated self-signed certificate. Default `localhost`.
    pub hostname: String,
    /// Largest message accepted, counted after dot-unstuffing with CRLF line
    /// ends; advertised as `SIZE`. A larger message is read to its end and
    /// refused with `552 5.3.4`, never stored. A session holds at most this
    /// much in memory, so the worst case is this times `max_connections`.
    /// Default 25 MiB.
    pub max_message_bytes: usize,
    /// Recipients per message; the one past it gets `452 4.5.3`.
    /// Default 100.
    pub max_recipients: usize,
    /// Longest command line, CRLF included; a longer one gets `500 5.5.2`.
    /// RFC 5321 asks for at least 512; AUTH initial responses need more.
    /// Default 4096.
    pub max_command_line: usize,
    /// How long the server waits for the next bytes from the client (and
    /// for the client to take a reply) before `421 4.4.2` and closing.
    /// Default 5 minutes (RFC 5321 section 4.5.3.2).
    pub idle_timeout: Duration,
    /// How long a client has, from connecting, to get a session going: on
    /// submission until AUTH succeeds, on the inbound MX until its first
    /// MAIL is accepted. Past it, `421 4.4.2` and closing; until then the
    /// client cannot hold its connection open with a NOOP now and then.
    /// Default 30 seconds.
    pub setup_timeout: Duration,
    /// The longest a session may last, whatever it does. Default 30 minutes.
    pub session_timeout: Duration,
    /// Errors (unknown commands, bad syntax, bad sequence, overlong lines)
    /// a session may make; the next one ends it with `421 4.7.0`.
    /// Default 20.
    pub max_errors: u32,
    /// Sessions served at once by one [`crate::SmtpServer`], all its
    /// listeners together; a connection past it gets `421 4.3.2` and is
    /// closed. Default 256.
    pub max_connections: usize,
    /// Sessions served at once for one client address (IPv6 by /64), all
    /// listeners of the server together; a connection past it gets
    /// `421 4.7.0 Too many connections from your address` and is closed.
    /// Default 16.
    pub max_connections_per_ip: usize,
    /// Failed-AUTH throttling.
    pub auth: AuthLimits,
    /// Where the certificate comes from.
    pub tls: TlsSource,
    /// How long a TLS handshake (STARTTLS or implicit) may take.
    /// Default 30 seconds.
    pub tls_handshake_timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 4096,
            idle_timeout: Duration::from_secs(5 * 60),
            setup_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(30 * 60),
            max_errors: 20,
            max_connections: 256,
            max_connections_per_ip: 16,
            auth: AuthLimits::default(),
            tls: TlsSource::SelfSigned,
            tls_handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// Failed-AUTH throttling. Failures are counted per client IP (IPv6 by
/// /64) across sessions, and the count is forgotten once no failure has
/// happened for `window`.
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// Failures after which a session is closed with `421 4.7.0`.
    /// Default 3.
    pub max_failures_per_session: u32,
    /// Failures from one IP within `window` after which every AUTH from it
    /// gets `421 4.7.0` without the credentials being checked. Default 10.
    pub max_failures_per_ip: u32,
    /// How long an IP's failures are remembered after its last one.
    /// Default 15 minutes.
    pub window: Duration,
    /// The answer to the n-th failure of an IP (`535`, or `421` at the
    /// session's limit) is delayed by `delay * 2^(n-1)`, at most
    /// `max_delay`. Default 1 second.
    pub delay: Duration,
    /// Default 30 seconds.
    pub max_delay: Duration,
}

impl Default for AuthLimits {
    fn default() -> Self {
        Self {
            max_failures_per_session: 3,
            max_failures_per_ip: 10,
            window: Duration::from_secs(15 * 60),
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The certificate for STARTTLS and implicit TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Generate a self-signed certificate for `hostname` at start-up: for
    /// development only, clients must be told not to verify it. The default.
    SelfSigned,
    /// PEM files: the certificate chain (leaf first) and its private key
    /// (PKCS#8, PKCS#1 or SEC1).
    Files { cert: PathBuf, key: PathBuf },
}
