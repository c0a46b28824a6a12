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
use tidings_store::{
    BuildEngagement, Engagement, InboundEffects, MessageRecord, RecipientRef, RecipientStatus,
};
use tidings_tracking::rewrite::{rewrite, RecipientTokens, RewriteOptions};
use tidings_tracking::{classify_click, classify_open, Claims, RecentClick, TokenKeys, TokenKind};
use tidings_types::payload::{self, SuppressionReason};
use tidings_types::{EventType, Field, MessageId, NewEvent, Payload, Timestamp};

use crate::payloads::recipient_payload;
use crate::tracking_hosts::{allows, CustomHosts};
use crate::{CoreError, Tidings};

/// Keys, and the global public base URL and defaults of tracking (an
/// account's settings override them; see [`crate::tracking_settings`]).
pub struct Tracker {
    pub keys: TokenKeys,
    pub base_url: url::Url,
    /// Add List-Unsubscribe headers and honour the placeholder.
    pub unsubscribe: bool,
    /// Accounts' own tracking domains ([`Tidings::load_tracking_hosts`]).
    pub hosts: CustomHosts,
    /// The links of recently clicked messages.
    pub links: LinkCache,
}

/// The tracked links of recently clicked messages, in link order. Finding
/// them means reading the stored message and running its rewrite again;
/// a message never changes once stored, so its entry never goes stale.
/// A scanner that clicks every link of a message, or the recipients of
/// one campaign clicking through, find them here, and clicks that arrive
/// together wait for one rewrite instead of each running their own.
pub struct LinkCache(moka::future::Cache<MessageId, Arc<Vec<url::Url>>>);

impl Default for LinkCache {
    fn default() -> Self {
        Self(moka::future::Cache::new(4096))
    }
}

/// Who asked for a tracking link, and how: the request's method, the
/// client's address and User-Agent, and the host the request named
/// (`Host`).
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub method: &'a Method,
    pub ip: IpAddr,
    pub user_agent: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// When a recipient was delivered, if it was.
fn delivered(r: &RecipientRef) -> Option<Timestamp> {
    (r.status == RecipientStatus::Sent).then_some(r.updated_at)
}

/// A tracking event; `None` (and a log line) if its fields do not match
/// the catalogue, which would be a bug here.
fn event(account: tidings_types::AccountId, at: Timestamp, data: Payload) -> Option<NewEvent> {
    data.event(account, at)
        .inspect_err(|e| tracing::error!(error = %e, "a tracking event does not fit the catalogue"))
        .ok()
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

    /// The rewrite a message goes out with: what it was accepted with,
    /// or, for messages stored before that was recorded, the global
    /// settings.
    fn options(t: &Tracker, m: &MessageRecord) -> RewriteOptions {
        let base = m
            .tracking_base
            .as_deref()
            .and_then(|b| url::Url::parse(b).ok())
            .unwrap_or_else(|| t.base_url.clone());
        let mut o = RewriteOptions::new(base);
        o.track_opens = m.track_opens;
        o.track_clicks = m.track_clicks;
        o.unsubscribe = Self::unsubscribes(t, m);
        o
    }

    fn unsubscribes(t: &Tracker, m: &MessageRecord) -> bool {
        m.track_unsubscribe.unwrap_or(t.unsubscribe)
    }

    /// The message as it goes to one recipient: links, pixel and
    /// unsubscribe headers in place. `None` when nothing is tracked.
    pub fn rewrite_for(&self, m: &MessageRecord, recipient_id: i64, raw: &[u8]) -> Option<Vec<u8>> {
        let t = self.tracker.as_ref()?;
        if !m.track_opens && !m.track_clicks && !Self::unsubscribes(t, m) {
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

    /// A signed token for one recipient's open pixel, click link or
    /// unsubscribe link, as the rewriter puts in the message; `None` when
    /// tracking is not configured.
    pub fn tracking_token(&self, recipient_id: i64, kind: TokenKind) -> Option<String> {
        let t = self.tracker.as_ref()?;
        Some(t.keys.issue(&Claims {
            account_id: 0,
            message_id: 0,
            recipient_id,
            kind,
        }))
    }

    fn claims(&self, token: &str, want: fn(&TokenKind) -> bool) -> Option<Claims> {
        let t = self.tracker.as_ref()?;
        t.keys.verify(token).ok().filter(|c| want(&c.kind))
    }

    /// The accounts whose tokens may be used on `host`; `None`: any.
    fn allowed_on(&self, host: Option<&str>) -> Option<Vec<tidings_types::AccountId>> {
        self.tracker.as_ref()?.hosts.accounts_of(host)
    }

    /// The token's recipient, unless it is unknown or the request came in
    /// on another account's tracking domain.
    async fn recipient(
        &self,
        claims: &Claims,
        host: Option<&str>,
    ) -> Result<Option<RecipientRef>, CoreError> {
        let allowed = self.allowed_on(host);
        Ok(self
            .messages()?
            .recipient(claims.recipient_id)
            .await?
            .filter(|r| allows(&allowed, r.message.account_id)))
    }

    async fn record(
        &self,
        m: &MessageRecord,
        email: &str,
        data: Payload,
        suppress: Option<SuppressionReason>,
    ) -> Result<(), CoreError> {
        let mut fx = InboundEffects {
            events: vec![data.event(m.account_id, self.clock.now())?],
            ..Default::default()
        };
        if let Some(reason) = suppress {
            fx.suppress
                .push((m.account_id, email.to_string(), reason.as_str().into()));
        }
        self.messages()?
            .record_inbound(fx, self.soft_bounce_rule.clone())
            .await?;
        Ok(())
    }

    /// An open or click event's fields: the message's, then the request's.
    fn request_data(
        m: &MessageRecord,
        email: &str,
        event_type: EventType,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Payload {
        recipient_payload(m, email, event_type)
            .with(Field::Ip, ip.to_string())
            .with(
                Field::UserAgent,
                user_agent.map(|ua| ua.chars().take(500).collect::<String>()),
            )
    }

    /// A pixel load. Returns whether the token was valid (the pixel is
    /// served either way).
    pub async fn track_open(&self, token: &str, visit: Visit<'_>) -> Result<bool, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Open)) else {
            return Ok(false);
        };
        let now = self.clock.now();
        let (method, ip) = (visit.method.clone(), visit.ip);
        let ua = visit.user_agent.map(str::to_owned);
        let allowed = self.allowed_on(visit.host);
        // One transaction finds the recipient, judges the open and records
        // it: no separate read, and `first` is exact under concurrency.
        let build: BuildEngagement = Box::new(move |r, history| {
            if !allows(&allowed, r.message.account_id) {
                return None;
            }
            let v = classify_open(&method, ip, ua.as_deref(), delivered(r), now);
            let data = Self::request_data(&r.message, &r.email, EventType::Open, ip, ua.as_deref())
                .with(Field::Machine, v.machine)
                .with(Field::First, !history.opened);
            event(r.message.account_id, now, data)
        });
        Ok(self
            .messages()?
            .record_engagement(c.recipient_id, Engagement::Open, build)
            .await?)
    }

    /// A click: the original URL to redirect to, or `None` (404) for a
    /// token that is not valid.
    pub async fn track_click(
        &self,
        token: &str,
        visit: Visit<'_>,
    ) -> Result<Option<url::Url>, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Click { .. })) else {
            return Ok(None);
        };
        let TokenKind::Click { link_index } = c.kind else {
            return Ok(None);
        };
        let Some(t) = self.recipient(&c, visit.host).await? else {
            return Ok(None);
        };
        let Some(url) = self.link(&t.message, link_index).await? else {
            return Ok(None);
        };
        // A HEAD asks where the link goes without going there (a link
        // checker, a preview): it is answered, and is no click at all.
        if *visit.method == Method::HEAD {
            return Ok(Some(url));
        }
        let now = self.clock.now();
        let (method, ip) = (visit.method.clone(), visit.ip);
        let ua = visit.user_agent.map(str::to_owned);
        let target = url.clone();
        // Judged inside the transaction that records it, so a scanner
        // clicking every link at once sees its own other clicks.
        let build: BuildEngagement = Box::new(move |r, history| {
            let recent: Vec<RecentClick> = history
                .recent_clicks
                .iter()
                .map(|&(at, link_index)| RecentClick { at, link_index })
                .collect();
            let v = classify_click(&method, ip, ua.as_deref(), delivered(r), now, &recent);
            let data =
                Self::request_data(&r.message, &r.email, EventType::Click, ip, ua.as_deref())
                    .with(Field::Url, target.as_str())
                    .with(Field::LinkIndex, link_index)
                    .with(Field::First, history.clicks == 0)
                    .with(Field::Bot, v.bot);
            event(r.message.account_id, now, data)
        });
        let recorded = self
            .messages()?
            .record_engagement(c.recipient_id, Engagement::Click { link_index }, build)
            .await?;
        Ok(recorded.then_some(url))
    }

    /// The `index`-th tracked link of a stored message: the same rewrite as
    /// at send time lists the same links in the same order.
    async fn link(&self, m: &MessageRecord, index: u32) -> Result<Option<url::Url>, CoreError> {
        let t = self.tracker.as_ref().ok_or(CoreError::NotFound)?;
        let links = t
            .links
            .0
            .try_get_with(m.id, async {
                let raw = self.messages()?.message_raw(m.id).await?;
                let links = rewrite(&raw, &Self::options(t, m), &|_: TokenKind| {
                    String::from("x")
                })
                .map(|r| r.links)
                .unwrap_or_default();
                Ok::<_, CoreError>(Arc::new(links))
            })
            .await
            // Shared by the clicks that waited for this load.
            .map_err(|e: Arc<CoreError>| match *e {
                CoreError::NotFound => CoreError::NotFound,
                ref other => CoreError::Internal(other.to_string()),
            })?;
        Ok(links.get(index as usize).cloned())
    }

    /// The address an unsubscribe token is for (for the confirmation page).
    pub async fn unsubscribe_target(
        &self,
        token: &str,
        host: Option<&str>,
    ) -> Result<Option<String>, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Unsubscribe)) else {
            return Ok(None);
        };
        Ok(self.recipient(&c, host).await?.map(|t| t.email))
    }

    /// Unsubscribe: an event, and the address joins the suppression list.
    pub async fn unsubscribe(
        &self,
        token: &str,
        method: UnsubscribeMethod,
        visit: Visit<'_>,
    ) -> Result<bool, CoreError> {
        let Some(c) = self.claims(token, |k| matches!(k, TokenKind::Unsubscribe)) else {
            return Ok(false);
        };
        let Some(t) = self.recipient(&c, visit.host).await? else {
            return Ok(false);
        };
        // One unsubscribe per recipient of a message: a mail client that
        // posts the one-click request again, or a second visit to the
        // link, changes nothing and records nothing.
        let before = self
            .messages()?
            .message_events(t.message.account_id, t.message.id)
            .await?;
        if before.iter().any(|e| {
            e.event_type == EventType::Unsubscribe
                && e.data.get(Field::Email.as_str()).and_then(|v| v.as_str())
                    == Some(t.email.as_str())
        }) {
            return Ok(true);
        }
        let data = Self::request_data(
            &t.message,
            &t.email,
            EventType::Unsubscribe,
            visit.ip,
            visit.user_agent,
        )
        .with(
            Field::Method,
            match method {
                UnsubscribeMethod::Link => payload::UnsubscribeMethod::Link,
                UnsubscribeMethod::OneClick => payload::UnsubscribeMethod::OneClick,
            },
        );
        self.record(
            &t.message,
            &t.email,
            data,
            Some(SuppressionReason::Unsubscribe),
        )
        .await?;
        Ok(true)
    }
}
