//! The reason vocabulary and the hard/soft rule.
//!
//! The vocabulary is fixed: callers store it, show it and filter on it, so a
//! new value is an API change. It is Sisimai 5's, whose names are the
//! de-facto vocabulary of bounce processing, spelled snake_case (its
//! `delivered`, `feedback` and `vacation` are report kinds here, not
//! reasons). Names tidings used before are still read ([`Reason::from_name`],
//! and serde aliases): `message_too_large` is `email_too_large`, and
//! `too_many_connections` is `rate_limited` (Sisimai 5 merged its
//! `toomanyconn` and `speeding` the same way).

use serde::{Deserialize, Serialize};

use crate::status::Status;

/// Why a recipient bounced. Serialised snake_case (`user_unknown`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The local part does not exist at the destination (5.1.1, "no such
    /// user", "unknown recipient"). Hard.
    UserUnknown,
    /// The recipient's mailbox is full or over quota (5.2.2). Soft.
    MailboxFull,
    /// The domain does not exist or has no usable MX (5.1.2, NXDOMAIN). Hard.
    HostUnknown,
    /// The MTA gave up after retrying for its maximum queue time, or a
    /// delayed-delivery warning (4.4.7, "retry timeout exceeded"). Soft.
    Expired,
    /// Refused after DATA by a recipient-side filter or rule (for example a
    /// mobile carrier's domain filter, "mailbox unavailable" after DATA). Soft.
    Filtered,
    /// The envelope sender was refused (5.1.8, "sender rejected", a bad
    /// MAIL FROM domain). Soft.
    Rejected,
    /// The sending IP or host was refused: blocklists, missing reverse DNS
    /// when not said explicitly, "access denied" before RCPT. Soft.
    Blocked,
    /// A spam filter rejected the content. Soft.
    SpamDetected,
    /// The destination's local policy refused the message (5.7.x policy,
    /// DMARC policy when not an authentication failure). Soft.
    PolicyViolation,
    /// The message exceeds the destination's size limit (5.3.4). Soft.
    #[serde(alias = "message_too_large")]
    EmailTooLarge,
    /// A security problem not otherwise named (5.7.x, authentication
    /// required, encryption needed). Soft.
    SecurityError,
    /// The destination reported an internal error (5.3.x, "system error",
    /// loops, misconfiguration). Soft.
    SystemError,
    /// DNS or network failure while delivering (no route, connection
    /// refused or timed out, 4.4.x). Soft.
    NetworkError,
    /// The mailbox has moved and is not forwarded (5.1.6). Hard.
    HasMoved,
    /// The destination accepts no mail at all (null MX, 5.1.10 / RFC 7505,
    /// "does not accept mail"). Hard when permanent (5.x.x), else soft.
    NotAccept,
    /// The recipient's account is disabled, suspended or inactive. Soft.
    Suspended,
    /// The remote server complained about our SMTP syntax (5.5.x). Soft.
    SyntaxError,
    /// A local delivery program (pipe, procmail, `X-Unix` diagnostic)
    /// failed. Soft.
    MailerError,
    /// The content or its headers were malformed or not accepted (5.6.x). Soft.
    ContentError,
    /// SPF, DKIM or DMARC authentication failed (5.7.23–5.7.27). Soft.
    AuthFailure,
    /// The sending IP or domain has a bad reputation at the destination. Soft.
    BadReputation,
    /// The sending IP has no, or a mismatching, reverse DNS (PTR). Soft.
    RequirePtr,
    /// The message does not comply with RFC 5322 (duplicate headers, bad
    /// Message-ID, ...). Soft.
    NotCompliantRfc,
    /// The destination refused to relay for us ("relaying denied"). Soft.
    NoRelaying,
    /// A virus scanner rejected the message. Soft.
    VirusDetected,
    /// A per-recipient limit other than size or quota was exceeded
    /// (5.2.3, too many recipients, message too long). Soft.
    ExceedLimit,
    /// The destination's own disk is full (4.3.1). Soft.
    SystemFull,
    /// Sending too fast or too much at once: a rate limit, throttling, too
    /// many connections or messages per connection (4.7.28, 4.5.3 / 4.3.2
    /// "too many connections"). Soft.
    #[serde(alias = "too_many_connections")]
    RateLimited,
    /// STARTTLS was required or failed. Soft.
    FailedStarttls,
    /// The destination's MTA has the address on its suppression list. Soft.
    Suppressed,
    /// A failure whose text is too short to decide the cause. Soft.
    OnHold,
    /// No reason could be determined at all. Soft.
    Undefined,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 32] = [
        Reason::UserUnknown,
        Reason::MailboxFull,
        Reason::HostUnknown,
        Reason::Expired,
        Reason::Filtered,
        Reason::Rejected,
        Reason::Blocked,
        Reason::SpamDetected,
        Reason::PolicyViolation,
        Reason::EmailTooLarge,
        Reason::SecurityError,
        Reason::SystemError,
        Reason::NetworkError,
        Reason::HasMoved,
        Reason::NotAccept,
        Reason::Suspended,
        Reason::SyntaxError,
        Reason::MailerError,
        Reason::ContentError,
        Reason::AuthFailure,
        Reason::BadReputation,
        Reason::RequirePtr,
        Reason::NotCompliantRfc,
        Reason::NoRelaying,
        Reason::VirusDetected,
        Reason::ExceedLimit,
        Reason::SystemFull,
        Reason::RateLimited,
        Reason::FailedStarttls,
        Reason::Suppressed,
        Reason::OnHold,
        Reason::Undefined,
    ];

    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UserUnknown => "user_unknown",
            Reason::MailboxFull => "mailbox_full",
            Reason::HostUnknown => "host_unknown",
            Reason::Expired => "expired",
            Reason::Filtered => "filtered",
            Reason::Rejected => "rejected",
            Reason::Blocked => "blocked",
            Reason::SpamDetected => "spam_detected",
            Reason::PolicyViolation => "policy_violation",
            Reason::EmailTooLarge => "email_too_large",
            Reason::SecurityError => "security_error",
            Reason::SystemError => "system_error",
            Reason::NetworkError => "network_error",
            Reason::HasMoved => "has_moved",
            Reason::NotAccept => "not_accept",
            Reason::Suspended => "suspended",
            Reason::SyntaxError => "syntax_error",
            Reason::MailerError => "mailer_error",
            Reason::ContentError => "content_error",
            Reason::AuthFailure => "auth_failure",
            Reason::BadReputation => "bad_reputation",
            Reason::RequirePtr => "require_ptr",
            Reason::NotCompliantRfc => "not_compliant_rfc",
            Reason::NoRelaying => "no_relaying",
            Reason::VirusDetected => "virus_detected",
            Reason::ExceedLimit => "exceed_limit",
            Reason::SystemFull => "system_full",
            Reason::RateLimited => "rate_limited",
            Reason::FailedStarttls => "failed_starttls",
            Reason::Suppressed => "suppressed",
            Reason::OnHold => "on_hold",
            Reason::Undefined => "undefined",
        }
    }

    /// The reason of a name: the current snake_case names, and those tidings
    /// used before (`message_too_large`, `too_many_connections`).
    pub fn from_name(name: &str) -> Option<Reason> {
        match name {
            "message_too_large" => Some(Reason::EmailTooLarge),
            "too_many_connections" => Some(Reason::RateLimited),
            _ => Reason::ALL.into_iter().find(|r| r.as_str() == name),
        }
    }

    /// The hard/soft rule. Hard means "this address will never work":
    /// user_unknown, host_unknown, has_moved, and not_accept with a
    /// permanent (5.x.x) status. Everything else — full mailboxes,
    /// blocks, policy, content, expiry — says nothing final about the
    /// address and is soft, whatever the status class.
    pub fn bounce_type(self, status: &Status) -> BounceType {
        match self {
            Reason::UserUnknown | Reason::HostUnknown | Reason::HasMoved => BounceType::Hard,
            Reason::NotAccept if status.is_permanent() => BounceType::Hard,
            _ => BounceType::Soft,
        }
    }

    /// The status used when the message carries none: the RFC 3463 code
    /// that best names the reason, in the class given.
    pub fn default_status(self, permanent: bool) -> Status {
        let (subject, detail) = match self {
            Reason::UserUnknown => (1, 1),
            Reason::HostUnknown => (1, 2),
            Reason::HasMoved => (1, 6),
            Reason::Rejected => (1, 8),
            Reason::NotAccept => (1, 10),
            Reason::MailboxFull => (2, 2),
            Reason::Suspended => (2, 1),
            Reason::ExceedLimit => (2, 3),
            Reason::Filtered => (2, 0),
            Reason::SystemFull => (3, 1),
            Reason::SystemError | Reason::MailerError => (3, 0),
            Reason::EmailTooLarge => (3, 4),
            Reason::NetworkError => (4, 0),
            Reason::Expired => (4, 7),
            Reason::SyntaxError => (5, 0),
            Reason::ContentError | Reason::NotCompliantRfc => (6, 0),
            Reason::NoRelaying => (7, 1),
            Reason::AuthFailure => (7, 26),
            Reason::RequirePtr => (7, 25),
            Reason::FailedStarttls => (7, 10),
            Reason::RateLimited => (7, 28),
            Reason::Blocked
            | Reason::SpamDetected
            | Reason::PolicyViolation
            | Reason::SecurityError
            | Reason::BadReputation
            | Reason::VirusDetected
            | Reason::Suppressed => (7, 1),
            Reason::OnHold | Reason::Undefined => (0, 0),
        };
        Status::new(if permanent { 5 } else { 4 }, subject, detail)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hard or soft bounce; see [`Reason::bounce_type`] for the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceType {
    /// The address is permanently undeliverable: suppress it.
    Hard,
    /// Anything else: count it, retry later, or look at the reason.
    Soft,
}
