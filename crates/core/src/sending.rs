//! The one accept path for mail, from HTTP (JSON or raw) and SMTP alike:
//! parse and validate, assign ids, store the message and one delivery job
//! per recipient in one transaction — suppressed recipients become
//! `dropped` events in that same transaction — and only then acknowledge.
//! The From domain must be one of the account's sending domains (see
//! [`crate::domains`]); only the server's own notifications skip that.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tidings_mail::build::{Attachment, Parts};
use tidings_mail::message::Track;
use tidings_mail::{prepare, Address};
use tidings_store::{MessageRecord, NewMessage, NewRecipient, Source};
use tidings_types::{AccountId, Event, EventType, MessageId, NewEvent};

use crate::{CoreError, ErrorCode, Tidings};

/// An address given as `"a@example.com"`, `"Name <a@example.com>"` or
/// `{"email": "...", "name": "..."}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressInput {
    Text(String),
    Object {
        email: String,
        #[serde(default)]
        name: Option<String>,
    },
}

impl AddressInput {
    fn parts(&self) -> (Option<String>, String) {
        match self {
            AddressInput::Object { email, name } => (name.clone(), email.clone()),
            AddressInput::Text(t) => match (t.rfind('<'), t.rfind('>')) {
                (Some(a), Some(b)) if a < b => {
                    let name = t[..a].trim().trim_matches('"').trim();
                    (
                        (!name.is_empty()).then(|| name.to_string()),
                        t[a + 1..b].trim().to_string(),
                    )
                }
                _ => (None, t.trim().to_string()),
            },
        }
    }
}

/// One or many addresses.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressList {
    One(AddressInput),
    Many(Vec<AddressInput>),
}

impl AddressList {
    fn items(&self) -> Vec<AddressInput> {
        match self {
            AddressList::One(a) => vec![a.clone()],
            AddressList::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    pub filename: String,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Base64.
    pub content: String,
}

/// Per-message tracking; absent options take the account's settings.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackInput {
    #[serde(default)]
    pub opens: Option<bool>,
    #[serde(default)]
    pub clicks: Option<bool>,
}

/// The JSON of `POST /v1/messages`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub from: AddressInput,
    #[serde(default)]
    pub to: Option<AddressList>,
    #[serde(default)]
    pub cc: Option<AddressList>,
    #[serde(default)]
    pub bcc: Option<AddressList>,
    #[serde(default)]
    pub reply_to: Option<AddressInput>,
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub track: Option<TrackInput>,
}

/// What the accept path answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: MessageId,
    pub smtp_message_id: String,
    pub recipients: Vec<AcceptedRecipient>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AcceptedRecipient {
    pub email: String,
    /// `queued`, or `dropped` when the address is suppressed.
    #[schema(value_type = String, pattern = "^(queued|dropped)$")]
    pub status: &'static str,
}

fn bad(code: ErrorCode, msg: impl Into<String>) -> CoreError {
    CoreError::invalid(code, msg)
}

fn parse_address(s: &str) -> Result<Address, CoreError> {
    Address::parse(s).map_err(|e| bad(ErrorCode::InvalidAddress, e.to_string()))
}

/// Whose sender a message carries: the account's, which must be one of its
/// sending domains, or the server's own (notifications to an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Account,
    Server,
}

impl Tidings {
    /// Accept a message given as JSON parts.
    pub async fn send_json(
        &self,
        account: AccountId,
        req: SendRequest,
    ) -> Result<Accepted, CoreError> {
        self.send_json_as(account, req, Sender::Account).await
    }

    pub(crate) async fn send_json_as(
        &self,
        account: AccountId,
        req: SendRequest,
        sender: Sender,
    ) -> Result<Accepted, CoreError> {
        let (from_name, from_email) = req.from.parts();
        let from = parse_address(&from_email)?;
        let list = |l: &Option<AddressList>| -> Result<Vec<String>, CoreError> {
            l.as_ref()
                .map(|l| l.items())
                .unwrap_or_default()
                .iter()
                .map(|a| parse_address(&a.parts().1).map(|a| a.to_string()))
                .collect()
        };
        let to = list(&req.to)?;
        let cc = list(&req.cc)?;
        let bcc = list(&req.bcc)?;
        if req.text.is_none() && req.html.is_none() {
            return Err(bad(
                ErrorCode::InvalidMessage,
                "a message needs `text`, `html` or both",
            ));
        }
        if req.subject.chars().any(|c| c == '\r' || c == '\n') {
            return Err(bad(ErrorCode::InvalidMessage, "the subject is one line"));
        }
        let mut headers = Vec::new();
        for (k, v) in &req.headers {
            let ok_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !ok_name || v.contains(['\r', '\n']) {
                return Err(bad(
                    ErrorCode::InvalidMessage,
                    format!("header `{k}` is not valid"),
                ));
            }
            headers.push((k.clone(), v.clone()));
        }
        let mut attachments = Vec::new();
        for a in &req.attachments {
            let content = base64::engine::general_purpose::STANDARD
                .decode(a.content.as_bytes())
                .map_err(|_| {
                    bad(
                        ErrorCode::InvalidMessage,
                        format!("attachment `{}` is not base64", a.filename),
                    )
                })?;
            attachments.push(Attachment {
                filename: a.filename.clone(),
                content_type: a
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                content,
            });
        }
        let raw = tidings_mail::build::build(
            &Parts {
                from: (from_name, from.to_string()),
                to: to.clone(),
                cc: cc.clone(),
                reply_to: req.reply_to.as_ref().map(|r| r.parts().1),
                subject: req.subject.clone(),
                text: req.text.clone(),
                html: req.html.clone(),
                headers,
                attachments,
            },
            &self.config.hostname,
        );
        let mut prepared = prepare(&raw, &self.config.hostname)
            .map_err(|e| bad(ErrorCode::InvalidMessage, e.to_string()))?;
        if let Some(c) = req.custom_id {
            prepared.custom_id = Some(c);
        }
        if let Some(g) = req.group {
            prepared.group = Some(g);
        }
        if !req.tags.is_empty() {
            prepared.tags = tidings_mail::message::parse_tags(&req.tags.join(","))
                .map_err(|e| bad(ErrorCode::InvalidMessage, e.to_string()))?;
        }
        if let Some(t) = req.track {
            prepared.track = Track {
                opens: t.opens,
                clicks: t.clicks,
            };
        }
        let rcpts: Vec<String> = to.into_iter().chain(cc).chain(bcc).collect();
        self.accept(
            account,
            prepared,
            from.to_string(),
            rcpts,
            Source::Http,
            sender,
        )
        .await
    }

    /// Accept a raw RFC 5322 message. Without an envelope, recipients come
    /// from To, Cc and Bcc (and Bcc is removed), as `sendmail -t` does.
    pub async fn send_raw(
        &self,
        account: AccountId,
        raw: &[u8],
        envelope: Option<(String, Vec<String>)>,
        source: Source,
    ) -> Result<Accepted, CoreError> {
        if raw.len() > self.config.max_message_bytes {
            return Err(bad(ErrorCode::MessageTooLarge, "the message is too large"));
        }
        let mut prepared = prepare(raw, &self.config.hostname)
            .map_err(|e| bad(ErrorCode::InvalidMessage, e.to_string()))?;
        let (mail_from, rcpts) = match envelope {
            Some(e) => e,
            None => {
                let (rcpts, without_bcc) = header_recipients(&prepared.raw)?;
                prepared.raw = without_bcc;
                (prepared.from.clone(), rcpts)
            }
        };
        self.accept(account, prepared, mail_from, rcpts, source, Sender::Account)
            .await
    }

    async fn accept(
        &self,
        account: AccountId,
        p: tidings_mail::Prepared,
        mail_from: String,
        rcpts: Vec<String>,
        source: Source,
        sender: Sender,
    ) -> Result<Accepted, CoreError> {
        if rcpts.is_empty() {
            return Err(bad(
                ErrorCode::InvalidMessage,
                "the message has no recipients",
            ));
        }
        if rcpts.len() > self.config.max_recipients {
            return Err(bad(
                ErrorCode::TooManyRecipients,
                format!(
                    "at most {} recipients per message",
                    self.config.max_recipients
                ),
            ));
        }
        if p.raw.len() > self.config.max_message_bytes {
            return Err(bad(ErrorCode::MessageTooLarge, "the message is too large"));
        }
        if sender == Sender::Account {
            self.check_sender(account, &p.from)?;
        }
        let mut emails: Vec<String> = Vec::new();
        for r in &rcpts {
            let a = parse_address(r)?.normalized();
            if !emails.contains(&a) {
                emails.push(a);
            }
        }
        let defaults = self.tracking_defaults(account).await?;
        let now = self.clock.now();
        let opts = p.track;
        let message = NewMessage {
            id: MessageId::new(),
            account_id: account,
            created_at: now,
            source,
            mail_from: parse_address(&mail_from)
                .map(|a| a.to_string())
                .unwrap_or(mail_from),
            from: p.from,
            subject: p.subject,
            smtp_message_id: p.smtp_message_id,
            custom_id: p.custom_id,
            group: p.group,
            tags: p.tags,
            track_opens: opts.opens.unwrap_or(defaults.opens),
            track_clicks: opts.clicks.unwrap_or(defaults.clicks),
            track_unsubscribe: defaults.unsubscribe,
            tracking_base: defaults.base_url,
            raw: p.raw,
        };
        let record = record_of(&message);
        let mut recipients = Vec::new();
        for e in &emails {
            let mut data = record.event_data(e);
            data.insert("reason".into(), json!("suppressed"));
            recipients.push(NewRecipient {
                email: e.clone(),
                dropped: NewEvent::new(account, EventType::Dropped, now, data)?,
            });
        }
        let id = message.id;
        let smtp_message_id = message.smtp_message_id.clone();
        let dropped = self.messages()?.accept_message(message, recipients).await?;
        if let Some(m) = &self.metrics {
            m.message_accepted(source.into());
        }
        Ok(Accepted {
            id,
            smtp_message_id,
            recipients: emails
                .into_iter()
                .map(|e| AcceptedRecipient {
                    status: if dropped.contains(&e) {
                        "dropped"
                    } else {
                        "queued"
                    },
                    email: e,
                })
                .collect(),
        })
    }

    /// A message with per-recipient status and its event timeline.
    pub async fn get_message(
        &self,
        account: AccountId,
        id: MessageId,
    ) -> Result<(MessageRecord, Vec<Event>), CoreError> {
        let store = self.messages()?;
        let m = store.get_message(account, id).await?;
        let events = store.message_events(account, id).await?;
        Ok((m, events))
    }
}

fn record_of(m: &NewMessage) -> MessageRecord {
    MessageRecord {
        id: m.id,
        account_id: m.account_id,
        created_at: m.created_at,
        source: m.source,
        mail_from: m.mail_from.clone(),
        from: m.from.clone(),
        subject: m.subject.clone(),
        smtp_message_id: m.smtp_message_id.clone(),
        custom_id: m.custom_id.clone(),
        group: m.group.clone(),
        tags: m.tags.clone(),
        track_opens: m.track_opens,
        track_clicks: m.track_clicks,
        track_unsubscribe: m.track_unsubscribe,
        tracking_base: m.tracking_base.clone(),
        size: m.raw.len() as u64,
        recipients: vec![],
    }
}

/// Addresses of To, Cc and Bcc, and the message without its Bcc header.
fn header_recipients(raw: &bytes::Bytes) -> Result<(Vec<String>, bytes::Bytes), CoreError> {
    use tidings_mail::parser::{HeaderValue, MessageParser};
    let parsed = MessageParser::default()
        .parse_headers(&raw[..])
        .ok_or_else(|| bad(ErrorCode::InvalidMessage, "the message cannot be parsed"))?;
    let mut out = Vec::new();
    for name in ["To", "Cc", "Bcc"] {
        if let Some(HeaderValue::Address(a)) = parsed.header(name) {
            for addr in a.iter() {
                if let Some(e) = addr.address.as_deref() {
                    out.push(e.to_string());
                }
            }
        }
    }
    Ok((out, tidings_mail::message::strip_header(raw, "bcc")))
}
