//! The one accept path for mail, from HTTP (JSON or raw) and SMTP alike:
//! parse and validate, assign ids, store the message and one delivery job
//! per recipient in one transaction — suppressed recipients become
//! `dropped` events in that same transaction — and only then acknowledge.
//! The From domain must be one of the account's sending domains (see
//! [`crate::domains`]); only the server's own notifications skip that.

use serde::Serialize;
use tidings_mail::{prepare, Address};
use tidings_store::{MessageRecord, NewMessage, NewRecipient, RecipientStatus, Source};
use tidings_types::payload::DropReason;
use tidings_types::{AccountId, Event, EventType, Field, MessageId};

use crate::idempotency::Idempotency;
use crate::payloads::recipient_payload;
use crate::{CoreError, ErrorCode, Tidings};

pub use crate::compose::{AddressInput, AddressList, AttachmentInput, SendRequest, TrackInput};

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

/// How a message came in: by which door, as whose sender, under which
/// `Idempotency-Key`.
struct Intake<'a> {
    source: Source,
    sender: Sender,
    idem: Option<&'a Idempotency>,
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

    /// Accept a message given as JSON, once per `Idempotency-Key` (see
    /// [`crate::idempotency`]): the answer, and whether it is the answer
    /// to an earlier request with the same key.
    pub async fn send_json_once(
        &self,
        account: AccountId,
        req: SendRequest,
        idem: Option<&Idempotency>,
    ) -> Result<(Accepted, bool), CoreError> {
        if let Some(a) = self.replay_message(account, idem).await? {
            return Ok((a, true));
        }
        let r = self
            .send_json_with(account, req, Sender::Account, idem)
            .await;
        self.settle(account, idem, r).await
    }

    /// [`Tidings::send_raw`], once per `Idempotency-Key`.
    pub async fn send_raw_once(
        &self,
        account: AccountId,
        raw: &[u8],
        source: Source,
        idem: Option<&Idempotency>,
    ) -> Result<(Accepted, bool), CoreError> {
        if let Some(a) = self.replay_message(account, idem).await? {
            return Ok((a, true));
        }
        let r = self.send_raw_with(account, raw, None, source, idem).await;
        self.settle(account, idem, r).await
    }

    /// A send that found its key taken lost a race with a request that
    /// committed first: answer as that one did.
    async fn settle(
        &self,
        account: AccountId,
        idem: Option<&Idempotency>,
        r: Result<Accepted, CoreError>,
    ) -> Result<(Accepted, bool), CoreError> {
        match r {
            Err(e) if crate::idempotency::is_taken(&e) => {
                match self.replay_message(account, idem).await? {
                    Some(a) => Ok((a, true)),
                    None => Err(e),
                }
            }
            r => r.map(|a| (a, false)),
        }
    }

    /// The first answer of a request with `idem`'s key, rebuilt from the
    /// message it made: its id, and each recipient queued or dropped.
    async fn replay_message(
        &self,
        account: AccountId,
        idem: Option<&Idempotency>,
    ) -> Result<Option<Accepted>, CoreError> {
        let Some(i) = idem else { return Ok(None) };
        let Some(rec) = self.idempotent(account, i).await? else {
            return Ok(None);
        };
        let id: MessageId = rec
            .target
            .parse()
            .map_err(|_| CoreError::Internal(format!("idempotency key names {}", rec.target)))?;
        let m = self.messages()?.get_message(account, id).await?;
        Ok(Some(Accepted {
            id,
            smtp_message_id: m.smtp_message_id,
            recipients: m
                .recipients
                .into_iter()
                .map(|r| AcceptedRecipient {
                    status: if r.status == RecipientStatus::Dropped {
                        "dropped"
                    } else {
                        "queued"
                    },
                    email: r.email,
                })
                .collect(),
        }))
    }

    pub(crate) async fn send_json_as(
        &self,
        account: AccountId,
        req: SendRequest,
        sender: Sender,
    ) -> Result<Accepted, CoreError> {
        self.send_json_with(account, req, sender, None).await
    }

    async fn send_json_with(
        &self,
        account: AccountId,
        req: SendRequest,
        sender: Sender,
        idem: Option<&Idempotency>,
    ) -> Result<Accepted, CoreError> {
        let c = crate::compose::compose(req)?;
        let raw = tidings_mail::build::build(&c.parts, &self.config.hostname);
        let mut prepared = prepare(&raw, &self.config.hostname)
            .map_err(|e| bad(ErrorCode::InvalidMessage, e.to_string()))?;
        if let Some(id) = c.custom_id {
            prepared.custom_id = Some(id);
        }
        if let Some(g) = c.group {
            prepared.group = Some(g);
        }
        if !c.tags.is_empty() {
            prepared.tags = c.tags;
        }
        if let Some(t) = c.track {
            prepared.track = t;
        }
        let from = c.parts.from.address;
        let rcpts: Vec<String> = c.recipients.iter().map(|m| m.address.to_string()).collect();
        let how = Intake {
            source: Source::Http,
            sender,
            idem,
        };
        self.accept(account, prepared, from.to_string(), rcpts, how)
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
        self.send_raw_with(account, raw, envelope, source, None)
            .await
    }

    async fn send_raw_with(
        &self,
        account: AccountId,
        raw: &[u8],
        envelope: Option<(String, Vec<String>)>,
        source: Source,
        idem: Option<&Idempotency>,
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
        let how = Intake {
            source,
            sender: Sender::Account,
            idem,
        };
        self.accept(account, prepared, mail_from, rcpts, how).await
    }

    async fn accept(
        &self,
        account: AccountId,
        p: tidings_mail::Prepared,
        mail_from: String,
        rcpts: Vec<String>,
        how: Intake<'_>,
    ) -> Result<Accepted, CoreError> {
        let Intake {
            source,
            sender,
            idem,
        } = how;
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
            idempotency: idem.map(|i| i.record(now)),
        };
        let record = record_of(&message);
        let mut recipients = Vec::new();
        for e in &emails {
            let dropped = recipient_payload(&record, e, EventType::Dropped)
                .with(Field::Reason, DropReason::Suppressed)
                .event(account, now)?;
            recipients.push(NewRecipient {
                email: e.clone(),
                dropped,
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
