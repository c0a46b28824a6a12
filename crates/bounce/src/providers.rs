//! Error codes that mailbox providers publish on their postmaster pages.
//!
//! Some providers put a code of their own in the SMTP reply (Cox
//! `AUP#CXBL`, Orange / La Poste `LPN007_416`, `OFR_506`) and explain it
//! only on their site; the words of the reply then say little or mislead
//! (Cox answers "sender rejected" for a blocklisted IP). The code decides
//! the reason before any phrase table is read.

use crate::phrases::registry;
use crate::reason::Reason;
use crate::rules::{RuleId, Rules};

/// Where the codes come from.
const SOURCE: &str = "tidings-0.1";

/// A provider's codes: (code, reason, source).
pub type Codes = &'static [(&'static str, Reason, &'static str)];

/// Cox `AUP#<code>` values.
const COX: Codes = &[
    ("cxbl", Reason::Blocked, SOURCE),
    ("cdrbl", Reason::Blocked, SOURCE),
    ("cxdns", Reason::RequirePtr, SOURCE),
    ("cxsndr", Reason::AuthFailure, SOURCE),
    ("cxsmtp", Reason::Rejected, SOURCE),
    ("cxcnct", Reason::RateLimited, SOURCE),
    ("cxmxrt", Reason::RateLimited, SOURCE),
    ("cxthrt", Reason::SecurityError, SOURCE),
    ("cxmj", Reason::SecurityError, SOURCE),
    ("ipbl", Reason::Blocked, SOURCE),
    ("urlbl", Reason::SpamDetected, SOURCE),
];

/// Orange (`OFR`) and La Poste (`LPN`) numeric codes: the last three
/// digits of `LPN007_416`, `OFR_506`, `OFR004_405`.
const ORANGE: Codes = &[
    ("101", Reason::Blocked, SOURCE),
    ("102", Reason::Blocked, SOURCE),
    ("103", Reason::Blocked, SOURCE),
    ("104", Reason::RateLimited, SOURCE),
    ("305", Reason::SecurityError, SOURCE),
    ("401", Reason::AuthFailure, SOURCE),
    ("402", Reason::SecurityError, SOURCE),
    ("403", Reason::Rejected, SOURCE),
    ("405", Reason::Rejected, SOURCE),
    ("415", Reason::Rejected, SOURCE),
    ("416", Reason::UserUnknown, SOURCE),
    ("417", Reason::MailboxFull, SOURCE),
    ("420", Reason::Suspended, SOURCE),
    ("421", Reason::Rejected, SOURCE),
    ("426", Reason::Suspended, SOURCE),
    ("505", Reason::SystemError, SOURCE),
    ("506", Reason::SpamDetected, SOURCE),
    ("510", Reason::Blocked, SOURCE),
    ("514", Reason::EmailTooLarge, SOURCE),
    ("517", Reason::AuthFailure, SOURCE),
    ("630", Reason::PolicyViolation, SOURCE),
    ("999", Reason::Blocked, SOURCE),
];

/// The provider tables, for the rule catalogue (in this order).
pub fn tables() -> [(&'static str, Codes); 2] {
    [("provider:cox", COX), ("provider:orange", ORANGE)]
}

/// The reason a provider's own code gives, if the (lowercased) text has
/// one that `rules` allows.
pub fn reason(text: &str, rules: &mut Rules) -> Option<Reason> {
    let base = registry().provider_base;
    let mut allowed = |table: usize, i: usize| {
        let id = RuleId(base[table] + i as u32);
        let ok = rules.allows(id);
        if ok {
            rules.note(id);
        }
        ok
    };
    if let Some(p) = text.find("aup#") {
        let code = &text[p + 4..];
        if let Some(i) = COX.iter().position(|(c, _, _)| code.starts_with(c)) {
            if allowed(0, i) {
                return Some(COX[i].1);
            }
        }
    }
    for label in ["lpn", "ofr"] {
        let Some(p) = text.rfind(label) else { continue };
        let token: String = text[p + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let start = token
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let digits = &token[start..];
        if digits.len() >= 3 {
            let n = &digits[digits.len() - 3..];
            if let Some(i) = ORANGE.iter().position(|(c, _, _)| *c == n) {
                if allowed(1, i) {
                    return Some(ORANGE[i].1);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(text: &str) -> Option<Reason> {
        reason(text, &mut Rules::all())
    }

    #[test]
    fn reads_provider_codes() {
        assert_eq!(
            reason_of("550 sender rejected. aup#cdrbl"),
            Some(Reason::Blocked)
        );
        assert_eq!(
            reason_of("invalid recipient. lpn007_416"),
            Some(Reason::UserUnknown)
        );
        assert_eq!(
            reason_of("mail rejected. ofr_506 [506]"),
            Some(Reason::SpamDetected)
        );
        assert_eq!(reason_of("550 user unknown"), None);
    }
}
