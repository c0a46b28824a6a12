//! Error codes that mailbox providers publish on their postmaster pages.
//!
//! Some providers put a code of their own in the SMTP reply (Cox
//! `AUP#CXBL`, Orange / La Poste `LPN007_416`, `OFR_506`) and explain it
//! only on their site; the words of the reply then say little or mislead
//! (Cox answers "sender rejected" for a blocklisted IP). The code decides
//! the reason before any phrase table is read.

use crate::reason::Reason;

/// Cox `AUP#<code>` values.
const COX: &[(&str, Reason)] = &[
    ("cxbl", Reason::Blocked),
    ("cdrbl", Reason::Blocked),
    ("cxdns", Reason::RequirePtr),
    ("cxsndr", Reason::AuthFailure),
    ("cxsmtp", Reason::Rejected),
    ("cxcnct", Reason::TooManyConnections),
    ("cxmxrt", Reason::TooManyConnections),
    ("cxthrt", Reason::SecurityError),
    ("cxmj", Reason::SecurityError),
    ("ipbl", Reason::Blocked),
    ("urlbl", Reason::SpamDetected),
];

/// Orange (`OFR`) and La Poste (`LPN`) numeric codes: the last three
/// digits of `LPN007_416`, `OFR_506`, `OFR004_405`.
const ORANGE: &[(u16, Reason)] = &[
    (101, Reason::Blocked),
    (102, Reason::Blocked),
    (103, Reason::Blocked),
    (104, Reason::TooManyConnections),
    (305, Reason::SecurityError),
    (401, Reason::AuthFailure),
    (402, Reason::SecurityError),
    (403, Reason::Rejected),
    (405, Reason::Rejected),
    (415, Reason::Rejected),
    (416, Reason::UserUnknown),
    (417, Reason::MailboxFull),
    (420, Reason::Suspended),
    (421, Reason::Rejected),
    (426, Reason::Suspended),
    (505, Reason::SystemError),
    (506, Reason::SpamDetected),
    (510, Reason::Blocked),
    (514, Reason::MessageTooLarge),
    (517, Reason::AuthFailure),
    (630, Reason::PolicyViolation),
    (999, Reason::Blocked),
];

/// The reason a provider's own code gives, if the (lowercased) text has one.
pub fn reason(text: &str) -> Option<Reason> {
    if let Some(p) = text.find("aup#") {
        let code = &text[p + 4..];
        if let Some((_, r)) = COX.iter().find(|(c, _)| code.starts_with(c)) {
            return Some(*r);
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
            let n: u16 = digits[digits.len() - 3..].parse().ok()?;
            if let Some((_, r)) = ORANGE.iter().find(|(c, _)| *c == n) {
                return Some(*r);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_provider_codes() {
        assert_eq!(
            reason("550 sender rejected. aup#cdrbl"),
            Some(Reason::Blocked)
        );
        assert_eq!(
            reason("invalid recipient. lpn007_416"),
            Some(Reason::UserUnknown)
        );
        assert_eq!(
            reason("mail rejected. ofr_506 [506]"),
            Some(Reason::SpamDetected)
        );
        assert_eq!(reason("550 user unknown"), None);
    }
}
