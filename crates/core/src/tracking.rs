//! Engagement tracking: rewriting outgoing mail for one recipient, and
//! turning pixel loads, link clicks and unsubscribes into events.
//!
//! A token names only the recipient (its row id) and the kind of link,
//! under a MAC. The click target is never in the request: it is the link
//! at that index in the message as it was stored at send time, found by
//! running the same deterministic rewrite over the stored message. So a
//! token can only ever redirect to a URL the sender wrote.

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;
use serde_json::json;
use tidings_store::{InboundEffects, MessageRecord, RecipientStatus};
use tidings_tracking::rewrite::{rewrite, RecipientTokens, RewriteOptions};
use tidings_tracking::{classify_click, classify_open, Claims, TokenKeys, TokenKind};
use tidings_types::{EventType, NewEvent, Timestamp};

use crate::{CoreError, Tidings};

/// Keys, public base URL and defaults of tracking.
pub struct Tracker {
    pub keys: TokenKeys,
    pub base_url: url::Url,
    /// Add List-Unsubscribe headers and honour the placeholder.
    pub unsubscribe: bool,
}

/// How an unsubscribe arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeMethod {
    /// The confirmation page's form.
    Link,
    /// RFC 8058 `List-Unsubscribe=One-Click` POST from the mail client.
    OneClick,
}

impl Tidings {
    pub fn with_tracker(mut self, tracker: Arc<Tracker>) -> Self {
        self.tracker = Some(tracker);
        self
    }

    fn options(t: &Tracker, m: &MessageRecord) -> RewriteOptions {
        let mut o = RewriteOptions::new(t.base_url.clone());
        o.track_opens = m.track_opens;
        o.track_clicks = m.track_clicks;
        o.unsubscribe = t.unsubscribe;
        o
    }

    /// The message as it goes to one recipient: links, pixel and
    /// unsubscribe headers in place. `None` when nothing is tracked.
    pub fn rewrite_for(&self, m: &MessageRecord, recipient_id: i64, raw: &[u8]) -> Option<Vec<u8>> {
        let t = self.tracker.as_ref()?;
        if !m.track_opens && !m.track_clicks && !t.unsubscribe {
            return None;
        }
        let tokens = RecipientTokens {
            keys: &t.keys,
            account_id: 0,
            message_id: 0,
            recipient_id,
        };
        match rewrite(raw, &Self::options(t, m), &tokens) {
            Ok(r) => Some(r.message),
            Err(e) => {
                tracing::warn!(error = %e, message = %m.id, "not rewriting a message for tracking");
                None
            }
        }
    }

    fn claims(&self, token: &str, want: fn(&TokenKind) -> bool) -> Option<Claims> {
        let t = self.tracker.as_ref()?;
        t.keys.verify(token).ok().filter(|c| want(&c.kind))
    }

    async fn recipient(
        &self,
        claims: &Claims,
    ) -> Result<Option<(MessageRecord, String, Option<Timestamp>)>, CoreError> {
        let Some((m, email)) = self.messages()?.find_recipient(claims.recipient_id).await? else {
            return Ok(None);
        };
        let delivered = m
            .recipients
            .iter()
            .find(|r| r.email == email && r.status == RecipientStatus::Sent)
            .map(|r| r.updated_at);
        Ok(Some((m, email, delivered)))
    }

    async fn record(
        &self,
        m: &MessageRecord,
        ty: EventType,
        data: tidings_types::EventData,
        suppress: Option<&str>,
    ) -> Result<(), CoreError> {
        let email = data
            .get("email")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let mut fx = InboundEffects {
            events: vec![NewEvent::new(m.account_id, ty, self.clock.now(), data)?],
            ..Default::default()
        };
        if let Some(reason) = suppress {
            fx.suppress.push((m.account_id, email, reason.to_string()));
        }
        self.messages()?
            .record_inbound(fx, self.config.soft_bounce_limit)
            .await?;
        Ok(())
    }

    /// A pixel load. Returns whether the token was valid (the pixel is
    /// served either way).
    pub async fn track_open(
        &self,
        token: &str,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Result<bool, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Open)) else {
            return Ok(false);
        };
        let Some((m, email, delivered)) = self.recipient(&c).await? else {
            return Ok(false);
        };
        let v = classify_open(ip, user_agent, delivered, self.clock.now());
        let first = !self
            .messages()?
            .has_event(m.account_id, m.id, email.clone(), EventType::Open)
            .await?;
        let mut data = m.event_data(&email);
        data.insert("ip".into(), json!(ip.to_string()));
        if let Some(ua) = user_agent {
            data.insert(
                "user_agent".into(),
                json!(ua.chars().take(500).collect::<String>()),
            );
        }
        data.insert("first".into(), json!(first));
        data.insert("machine".into(), json!(v.machine));
        self.record(&m, EventType::Open, data, None).await?;
        Ok(true)
    }

    /// A click: the original URL to redirect to, or `None` (404) for a
    /// token that is not valid.
    pub async fn track_click(
        &self,
        token: &str,
        method: &Method,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Result<Option<url::Url>, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Click { .. })) else {
            return Ok(None);
        };
        let TokenKind::Click { link_index } = c.kind else {
            return Ok(None);
        };
        let Some((m, email, delivered)) = self.recipient(&c).await? else {
            return Ok(None);
        };
        let t = self.tracker.as_ref().ok_or(CoreError::NotFound)?;
        let raw = self.messages()?.message_raw(m.id).await?;
        // The same rewrite as at send time lists the same links in the same order.
        let links = rewrite(&raw, &Self::options(t, &m), &|_: TokenKind| {
            String::from("x")
        })
        .map(|r| r.links)
        .unwrap_or_default();
        let Some(url) = links.get(link_index as usize).cloned() else {
            return Ok(None);
        };
        let v = classify_click(method, ip, user_agent, delivered, self.clock.now(), &[]);
        let first = !self
            .messages()?
            .has_event(m.account_id, m.id, email.clone(), EventType::Click)
            .await?;
        let mut data = m.event_data(&email);
        data.insert("url".into(), json!(url.as_str()));
        data.insert("link_index".into(), json!(link_index));
        data.insert("ip".into(), json!(ip.to_string()));
        if let Some(ua) = user_agent {
            data.insert(
                "user_agent".into(),
                json!(ua.chars().take(500).collect::<String>()),
            );
        }
        data.insert("first".into(), json!(first));
        data.insert("bot".into(), json!(v.bot));
        self.record(&m, EventType::Click, data, None).await?;
        Ok(Some(url))
    }

    /// The address an unsubscribe token is for (for the confirmation page).
    pub async fn unsubscribe_target(&self, token: &str) -> Result<Option<String>, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Unsubscribe)) else {
            return Ok(None);
        };
        Ok(self.recipient(&c).await?.map(|(_, email, _)| email))
    }

    /// Unsubscribe: an event, and the address joins the suppression list.
    pub async fn unsubscribe(
        &self,
        token: &str,
        method: UnsubscribeMethod,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Result<bool, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Unsubscribe)) else {
            return Ok(false);
        };
        let Some((m, email, _)) = self.recipient(&c).await? else {
            return Ok(false);
        };
        let mut data = m.event_data(&email);
        data.insert(
            "method".into(),
            json!(match method {
                UnsubscribeMethod::Link => "link",
                UnsubscribeMethod::OneClick => "one_click",
            }),
        );
        data.insert("ip".into(), json!(ip.to_string()));
        if let Some(ua) = user_agent {
            data.insert(
                "user_agent".into(),
                json!(ua.chars().take(500).collect::<String>()),
            );
        }
        self.record(&m, EventType::Unsubscribe, data, Some("unsubscribe"))
            .await?;
        Ok(true)
    }
}
