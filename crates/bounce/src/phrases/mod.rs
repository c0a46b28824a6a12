//! Phrase tables: the diagnostic sentences of real MTAs, per reason.
//!
//! Matching is substring on lowercased text with addresses removed and
//! whitespace collapsed. Tables are checked in [`FIRST`] then [`SECOND`]
//! order (see `classify`): the more specific
//! reasons first, so that "mailbox full" wins over a generic "rejected",
//! and "user unknown" over "blocked".

mod address;
mod delivery;

pub use address::USER_UNKNOWN_STRONG;
use address::*;
pub use delivery::POLICY_FIRST;
use delivery::*;

use crate::reason::Reason;

/// First stage: reasons tried in this order, each by its phrases (and its
/// RFC 3463 code when that is specific); the more specific first.
pub const FIRST: &[Reason] = &[
    Reason::MailboxFull,
    Reason::MessageTooLarge,
    Reason::ExceedLimit,
    Reason::Suspended,
    Reason::HasMoved,
    Reason::NoRelaying,
    Reason::AuthFailure,
    Reason::UserUnknown,
    Reason::Filtered,
    Reason::RequirePtr,
    Reason::NotCompliantRfc,
    Reason::BadReputation,
    Reason::ContentError,
    Reason::TooManyConnections,
    Reason::Rejected,
    Reason::NotAccept,
    Reason::HostUnknown,
    Reason::VirusDetected,
    Reason::SpamDetected,
    Reason::RateLimited,
    Reason::PolicyViolation,
    Reason::Blocked,
];

/// Second stage, after a specific status code: the vaguer phrase tables.
pub const SECOND: &[Reason] = &[
    Reason::PolicyViolation,
    Reason::SystemFull,
    Reason::FailedStarttls,
    Reason::Suppressed,
    Reason::NetworkError,
    Reason::Expired,
    Reason::SystemError,
    Reason::SecurityError,
    Reason::MailerError,
    Reason::SyntaxError,
];

/// Phrases that mean a 5.1.1 was not about the address after all.
pub const CONTRADICT_USER: &[Reason] = &[
    Reason::MailboxFull,
    Reason::Filtered,
    Reason::HasMoved,
    Reason::Blocked,
    Reason::Rejected,
    Reason::NotAccept,
    Reason::MailerError,
];

/// True when a phrase of `r` occurs in `text`.
pub fn matches(r: Reason, text: &str) -> bool {
    table(r).iter().any(|p| text.contains(p))
}

/// The phrases that indicate `r`.
pub fn table(r: Reason) -> &'static [&'static str] {
    match r {
        Reason::MailboxFull => MAILBOX_FULL,
        Reason::MessageTooLarge => TOO_LARGE,
        Reason::ExceedLimit => EXCEED_LIMIT,
        Reason::Suspended => SUSPENDED,
        Reason::HasMoved => HAS_MOVED,
        Reason::NoRelaying => NO_RELAYING,
        Reason::AuthFailure => AUTH_FAILURE,
        Reason::UserUnknown => USER_UNKNOWN,
        Reason::Filtered => FILTERED,
        Reason::RequirePtr => REQUIRE_PTR,
        Reason::NotCompliantRfc => NOT_COMPLIANT,
        Reason::BadReputation => BAD_REPUTATION,
        Reason::ContentError => CONTENT_ERROR,
        Reason::Rejected => REJECTED,
        Reason::HostUnknown => HOST_UNKNOWN,
        Reason::SpamDetected => SPAM,
        Reason::VirusDetected => VIRUS,
        Reason::RateLimited => RATE_LIMITED,
        Reason::TooManyConnections => TOO_MANY_CONN,
        Reason::Blocked => BLOCKED,
        Reason::PolicyViolation => POLICY,
        Reason::SystemFull => SYSTEM_FULL,
        Reason::NotAccept => NOT_ACCEPT,
        Reason::FailedStarttls => STARTTLS,
        Reason::SecurityError => SECURITY,
        Reason::Suppressed => SUPPRESSED,
        Reason::SystemError => SYSTEM_ERROR,
        Reason::NetworkError => NETWORK_ERROR,
        Reason::Expired => EXPIRED,
        Reason::MailerError => MAILER_ERROR,
        Reason::SyntaxError => SYNTAX_ERROR,
        _ => &[],
    }
}

const SUPPRESSED: &[&str] = &["suppression list", "suppressed", "on the suppression"];
