//! Detector 3: vendor formats that are not RFC 3464.
//!
//! Only what the generic text scanner cannot get right lives here:
//!
//! - JSON notifications (Amazon SES, directly or wrapped in an SNS
//!   envelope) carry bounces, complaints and deliveries as data;
//! - a few providers state the reason in words the phrase tables would
//!   misread (hints keyed on the provider's own markers, not on files).

use std::collections::HashSet;

use serde_json::Value;

use crate::finding::Finding;
use crate::headers::{first_address, is_valid_address, Headers};
use crate::model::{Action, Complaint, OriginalMessage};
use crate::reason::Reason;
use crate::status::Status;

/// What a JSON notification turned out to be.
pub enum JsonReport {
    /// Failed recipients.
    Bounce(Vec<Finding>, Option<String>),
    /// A complaint.
    Complaint(Box<Complaint>),
    /// Delivered recipients.
    Delivery(Vec<String>),
}

/// Reads an SES-style JSON notification from the text, if there is one.
pub fn json(text: &str, original: &OriginalMessage) -> Option<JsonReport> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    if end <= start
        || !text[start..end].contains("otificationType") && !text[start..end].contains("eventType")
    {
        return None;
    }
    let body = &text[start..=end];
    let v: Value = serde_json::from_str(body)
        .or_else(|_| serde_json::from_str(&body.replace("!\n ", "").replace("\n ", "")))
        .ok()?;
    // An SNS envelope carries the notification as a string.
    let v = match v.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).ok()?,
        None => v,
    };
    let kind = v
        .get("notificationType")
        .or_else(|| v.get("eventType"))
        .and_then(Value::as_str)?;
    match kind {
        "Bounce" => {
            let b = v.get("bounce")?;
            let permanent = b.get("bounceType").and_then(Value::as_str) == Some("Permanent");
            let sub = b.get("bounceSubType").and_then(Value::as_str).unwrap_or("");
            let mta = b
                .get("reportingMTA")
                .and_then(Value::as_str)
                .map(|m| m.split_once(';').map_or(m, |x| x.1).trim().to_string());
            let mut out = Vec::new();
            for r in b.get("bouncedRecipients")?.as_array()?.iter().take(500) {
                let Some(addr) = r
                    .get("emailAddress")
                    .and_then(Value::as_str)
                    .and_then(first_address)
                else {
                    continue;
                };
                let mut f = Finding::new(addr);
                f.action = r
                    .get("action")
                    .and_then(Value::as_str)
                    .and_then(Action::parse);
                f.status = r
                    .get("status")
                    .and_then(Value::as_str)
                    .and_then(Status::parse);
                if let Some(d) = r.get("diagnosticCode").and_then(Value::as_str) {
                    let (ty, text) = d.split_once(';').unwrap_or(("smtp", d));
                    f.diagnostic_type = Some(ty.trim().to_ascii_lowercase());
                    f.diagnostic = text.trim().to_string();
                }
                f.hint = match sub {
                    "Suppressed" | "OnAccountSuppressionList" => Some(Reason::Suppressed),
                    "MailboxFull" => Some(Reason::MailboxFull),
                    "MessageTooLarge" => Some(Reason::EmailTooLarge),
                    "ContentRejected" | "AttachmentRejected" => Some(Reason::ContentError),
                    "NoEmail" if f.diagnostic.is_empty() => Some(Reason::UserUnknown),
                    _ => None,
                };
                if f.status.is_none() && f.diagnostic.is_empty() {
                    f.action = Some(if permanent {
                        Action::Failed
                    } else {
                        Action::Delayed
                    });
                }
                out.push(f);
            }
            (!out.is_empty()).then_some(JsonReport::Bounce(out, mta))
        }
        "Complaint" => {
            let c = v.get("complaint")?;
            let recipients: Vec<String> = c
                .get("complainedRecipients")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get("emailAddress").and_then(Value::as_str))
                        .filter_map(first_address)
                        .collect()
                })
                .unwrap_or_default();
            let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            Some(JsonReport::Complaint(Box::new(Complaint {
                feedback_type: s("complaintFeedbackType").unwrap_or_else(|| "abuse".into()),
                reporter: s("userAgent"),
                email: recipients.first().cloned(),
                recipients,
                source_ip: None,
                arrival_date: s("arrivalDate"),
                original: original.clone(),
            })))
        }
        "Delivery" => {
            let d = v.get("delivery")?;
            let r = d
                .get("recipients")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .filter(|a| is_valid_address(a))
                .collect();
            Some(JsonReport::Delivery(r))
        }
        _ => None,
    }
}

/// Reasons stated by a provider's own markers in a plain-text bounce.
pub fn hint_text(top: &Headers, error_text: &str, findings: &mut [Finding]) {
    let lower = error_text.to_lowercase();
    let from = top.get("from").unwrap_or("").to_ascii_lowercase();
    let failed = top
        .get("x-failed-recipients")
        .unwrap_or("")
        .to_ascii_lowercase();
    // Google Groups: the group refused the poster (not a member, no such group).
    let google_groups = failed.contains("googlegroups.com")
        || (from.contains("google")
            && (lower.contains("groups.google.com") || lower.contains("google groups")));
    if google_groups {
        for f in findings.iter_mut() {
            f.hint = f.hint.or(Some(Reason::Rejected));
        }
    }
}

/// What list managers answer to a post they refuse, with where each says
/// it.
const LIST_REFUSALS: &[&str] = &[
    // fml, Majordomo
    "not a member of this mailing list",
    "you are not a member of",
    "you are not member",
    // Mailman 2, Mailman/Handlers/Moderate.py (nonmember rejection notice)
    "you are not allowed to post to this mailing list",
    // Mailman 3, templates/en/list:user:notice:rejected.txt
    "mailing-list was rejected for the following reasons",
    // ezmlm-idx, ezmlm-issubn via qmail's bouncesaying
    "sorry, only subscribers may post",
    // L-Soft LISTSERV
    "you are not authorized to send mail to the",
];

/// A mailing-list manager refusing a post from a non-member (fml,
/// Majordomo, Mailman, ezmlm, LISTSERV, ...): the list's address is the
/// failed recipient — named in the text, else the original's `To`.
pub fn list_rejection(
    top: &Headers,
    error_text: &str,
    exclude: &HashSet<String>,
    original: &OriginalMessage,
) -> Option<Vec<Finding>> {
    let original_list = original.to.iter().find(|a| !exclude.contains(*a)).cloned();
    let subject = top.get("subject").unwrap_or("").to_lowercase();
    let body = crate::text::summary(&error_text.to_lowercase());
    if !(LIST_REFUSALS.iter().any(|m| body.contains(m)) || subject.contains("are not member")) {
        return None;
    }
    // The list is the first address that is neither ours nor the list's
    // owner or request address.
    let list = crate::headers::find_addresses(error_text)
        .into_iter()
        .map(|a| a.2)
        .filter(|a| !exclude.contains(a))
        .find(|a| {
            let local = a.split('@').next().unwrap_or("");
            !(local.ends_with("-owner")
                || local.ends_with("-request")
                || local.starts_with("owner-"))
        })
        .or(original_list)?;
    let mut f = Finding::new(list);
    f.diagnostic = crate::text::summary(error_text).chars().take(500).collect();
    f.hint = Some(Reason::Rejected);
    f.action = Some(Action::Failed);
    Some(vec![f])
}
