//! Reports that come back as mail: bounces (DSNs and the non-standard
//! kinds) and feedback-loop complaints, turned into `bounce`, `block` and
//! `complaint` events on the right message and recipient.
//!
//! Correlation trusts the VERP return path first: its token is signed, so
//! it names the message and recipient with certainty. When the report
//! arrives elsewhere (forwarded, or from an MTA that rewrote the return
//! path), the original message's Message-ID inside the report is the
//! fallback — accepted only when the reported address really was a
//! recipient of that message. Anything else is recorded for the operator,
//! never turned into an event for some account.

use crate::metrics::ReportKind;
use serde::Serialize;
use tidings_bounce::{BounceType, Report};
use tidings_store::{InboundEffects, MessageRecord, RecipientStatus, UnmatchedReport};
use tidings_types::payload::{self, BounceSource, SuppressionReason, UnsubscribeMethod};
use tidings_types::{AccountId, EventType, Field};

use crate::payloads::recipient_payload;
use crate::{CoreError, Tidings};

/// What one inbound message did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct InboundSummary {
    /// `bounce`, `complaint`, `auto_reply`, `delivery_success`, `unrecognised`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub events: Vec<tidings_types::EventId>,
    pub matched: bool,
}

fn report_kind(report: &Report) -> ReportKind {
    match report {
        Report::Bounce(_) => ReportKind::Bounce,
        Report::Complaint(_) => ReportKind::Complaint,
        Report::AutoReply(_) => ReportKind::AutoReply,
        Report::DeliverySuccess(_) => ReportKind::DeliverySuccess,
        Report::Unrecognised => ReportKind::Unrecognised,
    }
}

/// Reasons of the parser that are about the sender or the message, not
/// the address: those reports become `block` events, which suppress no
/// one.
fn block_reason(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "email_too_large" => "email_too_large",
        "blocked" | "bad_reputation" | "rate_limited" => "reputation",
        "spam_detected" | "virus_detected" | "content_error" => "content",
        "auth_failure" | "require_ptr" | "security_error" | "failed_starttls" => "auth",
        "policy_violation" | "no_relaying" | "not_compliant_rfc" => "policy",
        _ => return None,
    })
}

impl Tidings {
    /// The latest inbound reports that matched no message, newest first,
    /// for the operator.
    pub async fn unmatched_reports(&self, limit: u32) -> Result<Vec<UnmatchedReport>, CoreError> {
        Ok(self.messages()?.list_unmatched(limit).await?)
    }

    /// Process one inbound report. `envelope_to` are the SMTP recipients
    /// (VERP or feedback-loop addresses); `only_account` restricts effects
    /// to one account's messages (the HTTP API).
    pub async fn receive_report(
        &self,
        raw: &[u8],
        envelope_to: &[String],
        only_account: Option<AccountId>,
    ) -> Result<InboundSummary, CoreError> {
        let report = tidings_bounce::parse(raw);
        let summary = self
            .apply_report(&report, raw, envelope_to, only_account)
            .await?;
        if let Some(m) = &self.metrics {
            m.inbound_report(report_kind(&report));
        }
        Ok(summary)
    }

    /// The effects of one parsed report, committed.
    async fn apply_report(
        &self,
        report: &Report,
        raw: &[u8],
        envelope_to: &[String],
        only_account: Option<AccountId>,
    ) -> Result<InboundSummary, CoreError> {
        let verp = self.verp.as_deref();
        // Without an envelope (HTTP, CLI), the MTA that took the report
        // usually recorded where it was addressed.
        let from_headers;
        let envelope_to = if envelope_to.is_empty() {
            from_headers = delivered_to(raw);
            &from_headers[..]
        } else {
            envelope_to
        };
        let kind = report.kind();
        let store = self.messages()?;
        let now = self.clock.now();
        let mut summary = InboundSummary {
            kind,
            ..Default::default()
        };
        let targets = self.correlate(report, envelope_to, verp).await?;
        let targets: Vec<_> = targets
            .into_iter()
            .filter(|(m, _)| only_account.is_none_or(|a| a == m.account_id))
            .collect();
        let mut fx = InboundEffects::default();
        match report {
            Report::Bounce(b) => {
                for (m, email) in &targets {
                    let r = b
                        .recipients
                        .iter()
                        .find(|r| r.email.eq_ignore_ascii_case(email))
                        .or(b.recipients.first());
                    let Some(r) = r else { continue };
                    let diagnostic: String = r.diagnostic.chars().take(1000).collect();
                    if r.action == tidings_bounce::Action::Delayed {
                        // Not final: the remote MTA is still trying.
                        let response = if diagnostic.is_empty() {
                            r.status.to_string()
                        } else {
                            diagnostic
                        };
                        let ev = recipient_payload(m, email, EventType::Deferred)
                            .with(Field::SmtpResponse, response)
                            .with(Field::RemoteMta, r.remote_mta.clone())
                            .event(m.account_id, now)?;
                        fx.events.push(ev);
                        continue;
                    }
                    let reason = r.reason.as_str();
                    let data = if let Some(block) = block_reason(reason) {
                        recipient_payload(m, email, EventType::Block)
                            .with(Field::Status, r.status.to_string())
                            .with(Field::Reason, block)
                            .with(Field::Diagnostic, diagnostic)
                    } else {
                        let hard = r.bounce_type == BounceType::Hard;
                        if hard {
                            fx.suppress.push((
                                m.account_id,
                                email.clone(),
                                SuppressionReason::HardBounce.as_str().into(),
                            ));
                        } else {
                            fx.soft.push((m.account_id, email.clone()));
                        }
                        recipient_payload(m, email, EventType::Bounce)
                            .with(
                                Field::BounceType,
                                if hard {
                                    payload::BounceType::Hard
                                } else {
                                    payload::BounceType::Soft
                                },
                            )
                            .with(Field::Status, r.status.to_string())
                            .with(Field::Reason, reason)
                            .with(Field::Diagnostic, diagnostic)
                            .with(Field::Source, BounceSource::Dsn)
                    };
                    let data = data.with(Field::RemoteMta, r.remote_mta.clone());
                    let ty = data.event_type();
                    let status = if ty == EventType::Block {
                        RecipientStatus::Blocked
                    } else {
                        RecipientStatus::Bounced
                    };
                    fx.statuses.push((m.id, email.clone(), status));
                    fx.events.push(data.event(m.account_id, now)?);
                }
            }
            Report::Complaint(c) => {
                for (m, email) in &targets {
                    let complaint = recipient_payload(m, email, EventType::Complaint)
                        .with(Field::FeedbackType, c.feedback_type.clone())
                        .with(Field::Reporter, c.reporter.clone());
                    fx.events.push(complaint.event(m.account_id, now)?);
                    fx.suppress.push((
                        m.account_id,
                        email.clone(),
                        SuppressionReason::Complaint.as_str().into(),
                    ));
                    if self.config.complaint_unsubscribes {
                        let u = recipient_payload(m, email, EventType::Unsubscribe)
                            .with(Field::Method, UnsubscribeMethod::Complaint);
                        fx.events.push(u.event(m.account_id, now)?);
                    }
                }
            }
            // Auto-replies and delivery successes are not failures.
            _ => return Ok(summary),
        }
        if fx.events.is_empty() {
            store
                .record_unmatched(UnmatchedReport {
                    id: 0,
                    received_at: now,
                    kind: kind.to_string(),
                    reason: if targets.is_empty() {
                        "no message matched".into()
                    } else {
                        "no final failure in the report".into()
                    },
                    envelope_to: envelope_to.join(","),
                    summary: summarise(report),
                })
                .await?;
            return Ok(summary);
        }
        summary.events = fx.events.iter().map(|e| e.id).collect();
        summary.matched = true;
        store
            .record_inbound(fx, self.soft_bounce_rule.clone())
            .await?;
        Ok(summary)
    }

    /// (message, recipient address) pairs the report is about.
    async fn correlate(
        &self,
        report: &Report,
        envelope_to: &[String],
        verp: Option<&tidings_mail::verp::VerpCodec>,
    ) -> Result<Vec<(MessageRecord, String)>, CoreError> {
        let store = self.messages()?;
        let mut out: Vec<(MessageRecord, String)> = Vec::new();
        if let Some(codec) = verp {
            for rcpt in envelope_to {
                if let Ok(tok) = codec.decode(rcpt) {
                    if let Some((m, email)) = store.find_recipient(tok.recipient_id).await? {
                        if m.id == tok.message_id
                            && !out.iter().any(|(o, e)| o.id == m.id && *e == email)
                        {
                            out.push((m, email));
                        }
                    }
                }
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        let (original, reported): (_, Vec<String>) = match report {
            Report::Bounce(b) => (
                &b.original,
                b.recipients.iter().map(|r| r.email.clone()).collect(),
            ),
            Report::Complaint(c) => {
                let mut v = c.recipients.clone();
                v.extend(c.email.clone());
                v.extend(c.original.to.iter().cloned());
                (&c.original, v)
            }
            _ => return Ok(out),
        };
        let Some(mid) = &original.message_id else {
            return Ok(out);
        };
        let mid = if mid.starts_with('<') {
            mid.clone()
        } else {
            format!("<{mid}>")
        };
        for m in store.find_by_smtp_id(mid).await? {
            for email in &reported {
                let e = email.to_ascii_lowercase();
                if m.recipients.iter().any(|r| r.email == e)
                    && !out.iter().any(|(o, x)| o.id == m.id && *x == e)
                {
                    let mut bare = m.clone();
                    bare.recipients.clear();
                    out.push((bare, e));
                }
            }
        }
        Ok(out)
    }
}

/// Addresses from Delivered-To, X-Original-To, Envelope-To and To.
fn delivered_to(raw: &[u8]) -> Vec<String> {
    use tidings_mail::parser::{HeaderValue, MessageParser};
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for h in m.headers() {
        let name = h.name().to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "delivered-to" | "x-original-to" | "envelope-to" | "to"
        ) {
            continue;
        }
        match h.value() {
            HeaderValue::Address(a) => out.extend(
                a.iter()
                    .filter_map(|x| x.address.as_deref())
                    .map(str::to_string),
            ),
            HeaderValue::Text(t) => out.push(t.trim().trim_matches(['<', '>']).to_string()),
            _ => {}
        }
    }
    out
}

fn summarise(report: &Report) -> String {
    let s = serde_json::to_string(report).unwrap_or_default();
    s.chars().take(2000).collect()
}
