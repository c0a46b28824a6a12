//! Managing webhooks: validation of what an account asks for, and the
//! rules that tie settings to delivery state (changing the URL or any
//! parameter resumes paused event types; rotating a secret keeps the old
//! one signing for an overlap).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tidings_store::{AttemptFilter, AttemptRecord, TypeState};
use tidings_types::address::{check_url, AddressClass, UrlError};
use tidings_types::{
    AccountId, BatchSettings, EventType, Field, Timestamp, Webhook, WebhookFormat, WebhookId,
    WebhookSecret, WebhookSettings,
};

use crate::idempotency::Idempotency;
use crate::{CoreError, ErrorCode, Tidings};

/// A webhook as an account describes it when creating one.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// A public http(s) URL.
    #[schema(format = "uri")]
    pub url: String,
    #[serde(default)]
    pub event_types: Option<Vec<EventType>>,
    #[serde(default)]
    pub format: Option<WebhookFormat>,
    #[serde(default)]
    pub fields: Option<Vec<Field>>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    #[serde(default)]
    pub max_per_second: Option<u32>,
    #[serde(default)]
    pub batch: Option<BatchSettings>,
    /// Bring your own `whsec_…` secret; one is generated otherwise.
    #[serde(default)]
    pub secret: Option<String>,
    /// Skip the backfill of recent events for this webhook.
    #[serde(default)]
    pub backfill: Option<bool>,
}

/// A partial update: absent fields stay as they are; `null` clears the
/// optional ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    #[schema(format = "uri")]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<EventType>>,
    #[serde(default)]
    pub format: Option<WebhookFormat>,
    #[serde(default, with = "double_option")]
    pub fields: Option<Option<Vec<Field>>>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, with = "double_option")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    #[serde(default, with = "double_option")]
    pub max_per_second: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    pub batch: Option<Option<BatchSettings>>,
}

pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Header names the account may not set: they carry the signature or are
/// the transport's own.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "user-agent",
];

fn invalid(code: ErrorCode, msg: impl Into<String>) -> CoreError {
    CoreError::invalid(code, msg)
}

impl Tidings {
    fn validate(&self, s: &WebhookSettings) -> Result<(), CoreError> {
        check_url(&s.url, &self.config.address_policy).map_err(url_error)?;
        if s.event_types.is_empty() {
            return Err(invalid(
                ErrorCode::InvalidEventType,
                "event_types must name at least one event type",
            ));
        }
        if let Some(fields) = &s.fields {
            if fields.is_empty() {
                return Err(invalid(
                    ErrorCode::UnknownField,
                    "fields must name at least one field, or be null for all",
                ));
            }
        }
        for (name, value) in &s.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    format!("header `{name}` is set by tidings and cannot be overridden"),
                ));
            }
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    format!("header `{name}` is not a valid HTTP header"),
                ));
            }
        }
        if s.headers.len() > 20 {
            return Err(invalid(ErrorCode::InvalidRequest, "at most 20 headers"));
        }
        if !(1..=1000).contains(&s.max_in_flight) {
            return Err(invalid(
                ErrorCode::InvalidRequest,
                "max_in_flight must be between 1 and 1000",
            ));
        }
        if let Some(r) = s.max_per_second {
            if !(1..=100_000).contains(&r) {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    "max_per_second must be between 1 and 100000",
                ));
            }
        }
        if let Some(b) = s.batch {
            if s.format != WebhookFormat::Json {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    "batching is available for the json format only",
                ));
            }
            if !(1..=1000).contains(&b.max_events) || b.max_wait_ms > 60_000 {
                return Err(invalid(
                    ErrorCode::InvalidRequest,
                    "batch.max_events must be 1 to 1000 and batch.max_wait_ms at most 60000",
                ));
            }
        }
        if s.description.as_ref().is_some_and(|d| d.len() > 1000) {
            return Err(invalid(
                ErrorCode::InvalidRequest,
                "description is at most 1000 characters",
            ));
        }
        Ok(())
    }

    fn parse_url(url: &str) -> Result<url::Url, CoreError> {
        if url.len() > 2048 {
            return Err(invalid(
                ErrorCode::InvalidUrl,
                "url is at most 2048 characters",
            ));
        }
        url::Url::parse(url).map_err(|e| invalid(ErrorCode::InvalidUrl, format!("url: {e}")))
    }

    pub async fn create_webhook(
        &self,
        account: AccountId,
        input: WebhookInput,
    ) -> Result<(Webhook, u64), CoreError> {
        self.create_webhook_once(account, input, None)
            .await
            .map(|(w, n, _)| (w, n))
    }

    /// Create a webhook once per `Idempotency-Key` (see
    /// [`crate::idempotency`]): the webhook, the events backfilled, and
    /// whether this answers an earlier request with the same key.
    pub async fn create_webhook_once(
        &self,
        account: AccountId,
        input: WebhookInput,
        idem: Option<&Idempotency>,
    ) -> Result<(Webhook, u64, bool), CoreError> {
        if let Some(r) = self.replay_webhook(account, idem).await? {
            return Ok(r);
        }
        let settings = WebhookSettings {
            url: Self::parse_url(&input.url)?,
            event_types: dedup(input.event_types.unwrap_or_else(|| EventType::ALL.to_vec())),
            format: input.format.unwrap_or_default(),
            fields: input.fields.map(dedup),
            headers: input.headers.unwrap_or_default(),
            description: input.description,
            max_in_flight: input
                .max_in_flight
                .unwrap_or(WebhookSettings::DEFAULT_MAX_IN_FLIGHT),
            max_per_second: input.max_per_second,
            batch: input.batch,
        };
        self.validate(&settings)?;
        self.check_host(&settings.url).await?;
        let secret = match input.secret {
            Some(s) => WebhookSecret::parse(&s)
                .map_err(|e| invalid(ErrorCode::InvalidRequest, e.to_string()))?,
            None => WebhookSecret::generate(),
        };
        let now = self.clock.now();
        let webhook = Webhook {
            id: WebhookId::new(),
            account_id: account,
            settings,
            secret,
            previous_secret: None,
            created_at: now,
            updated_at: now,
        };
        let since = (input.backfill != Some(false) && !self.config.backfill.is_zero())
            .then(|| now - chrono_dur(self.config.backfill));
        let key = idem.map(|i| i.record(now));
        match self.store.create_webhook(&webhook, since, key).await {
            Ok(n) => Ok((webhook, n, false)),
            Err(e) => {
                let e = CoreError::from(e);
                if crate::idempotency::is_taken(&e) {
                    if let Some(r) = self.replay_webhook(account, idem).await? {
                        return Ok(r);
                    }
                }
                Err(e)
            }
        }
    }

    /// The webhook a request with `idem`'s key created, and how many
    /// events it backfilled then.
    async fn replay_webhook(
        &self,
        account: AccountId,
        idem: Option<&Idempotency>,
    ) -> Result<Option<(Webhook, u64, bool)>, CoreError> {
        let Some(i) = idem else { return Ok(None) };
        let Some(rec) = self.idempotent(account, i).await? else {
            return Ok(None);
        };
        let id: WebhookId = rec
            .target
            .parse()
            .map_err(|_| CoreError::Internal(format!("idempotency key names {}", rec.target)))?;
        match self.store.get_webhook(account, id).await {
            Ok(w) => Ok(Some((w, rec.detail.max(0) as u64, true))),
            Err(tidings_store::StoreError::NotFound) => Err(invalid(
                ErrorCode::Conflict,
                format!(
                    "the webhook the Idempotency-Key `{}` created has been deleted",
                    i.key()
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        patch: WebhookPatch,
    ) -> Result<Webhook, CoreError> {
        let mut w = self.store.get_webhook(account, id).await?;
        let s = &mut w.settings;
        if let Some(u) = patch.url {
            s.url = Self::parse_url(&u)?;
        }
        if let Some(t) = patch.event_types {
            s.event_types = dedup(t);
        }
        if let Some(f) = patch.format {
            s.format = f;
        }
        if let Some(f) = patch.fields {
            s.fields = f.map(dedup);
        }
        if let Some(h) = patch.headers {
            s.headers = h;
        }
        if let Some(d) = patch.description {
            s.description = d;
        }
        if let Some(m) = patch.max_in_flight {
            s.max_in_flight = m;
        }
        if let Some(r) = patch.max_per_second {
            s.max_per_second = r;
        }
        if let Some(b) = patch.batch {
            s.batch = b;
        }
        self.validate(&w.settings)?;
        self.check_host(&w.settings.url).await?;
        let now = self.clock.now();
        w.updated_at = now;
        // Any modification of the URL or parameters resumes paused types.
        self.store.update_webhook(&w, true, now).await?;
        Ok(w)
    }

    pub async fn delete_webhook(&self, account: AccountId, id: WebhookId) -> Result<(), CoreError> {
        Ok(self.store.delete_webhook(account, id).await?)
    }

    pub async fn get_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<Webhook, CoreError> {
        Ok(self.store.get_webhook(account, id).await?)
    }

    pub async fn list_webhooks(&self, account: AccountId) -> Result<Vec<Webhook>, CoreError> {
        Ok(self.store.list_webhooks(account).await?)
    }

    pub async fn webhook_status(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<Vec<TypeState>, CoreError> {
        Ok(self.store.webhook_status(account, id).await?)
    }

    /// Resume paused event types (all of them when `types` is empty).
    pub async fn resume_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        types: &[EventType],
    ) -> Result<Vec<EventType>, CoreError> {
        Ok(self
            .store
            .resume_webhook(account, id, types, self.clock.now())
            .await?)
    }

    /// Replace the signing secret; the old one keeps signing for `overlap`
    /// (the configured default when `None`).
    pub async fn rotate_secret(
        &self,
        account: AccountId,
        id: WebhookId,
        overlap: Option<Duration>,
        new_secret: Option<String>,
    ) -> Result<Webhook, CoreError> {
        let mut w = self.store.get_webhook(account, id).await?;
        let overlap = overlap.unwrap_or(self.config.secret_overlap);
        if overlap > Duration::from_secs(7 * 24 * 3600) {
            return Err(invalid(
                ErrorCode::InvalidRequest,
                "the overlap is at most 7 days",
            ));
        }
        let secret = match new_secret {
            Some(s) => WebhookSecret::parse(&s)
                .map_err(|e| invalid(ErrorCode::InvalidRequest, e.to_string()))?,
            None => WebhookSecret::generate(),
        };
        let now = self.clock.now();
        let old = std::mem::replace(&mut w.secret, secret);
        w.previous_secret = (!overlap.is_zero()).then(|| (old, now + chrono_dur(overlap)));
        w.updated_at = now;
        self.store.update_webhook(&w, false, now).await?;
        Ok(w)
    }

    /// Re-send the account's events in `[from, to)` to one webhook.
    pub async fn replay(
        &self,
        account: AccountId,
        id: WebhookId,
        from: Timestamp,
        to: Option<Timestamp>,
        types: &[EventType],
    ) -> Result<u64, CoreError> {
        let now = self.clock.now();
        let to = to.unwrap_or(now + chrono::Duration::milliseconds(1));
        if from >= to {
            return Err(invalid(
                ErrorCode::InvalidRequest,
                "`from` must be before `to`",
            ));
        }
        Ok(self.store.replay(account, id, from, to, types, now).await?)
    }

    pub async fn attempts(
        &self,
        account: AccountId,
        filter: AttemptFilter,
    ) -> Result<Vec<AttemptRecord>, CoreError> {
        if let Some(w) = filter.webhook_id {
            self.store.get_webhook(account, w).await?;
        }
        Ok(self.store.list_attempts(account, &filter).await?)
    }
}

/// A refused URL as the account sees it. A blocked destination names the
/// operator setting that would allow it, since the account cannot tell
/// "never" from "not on this server" otherwise.
/// How long saving a webhook waits for its host name to resolve.
const SAVE_LOOKUP: Duration = Duration::from_secs(2);

impl Tidings {
    /// A host name is resolved when the webhook is saved, as at each
    /// delivery: one that resolves only to addresses the policy refuses is
    /// refused now (`blocked_url`), not at its first delivery. A name that
    /// does not resolve (yet) is accepted; delivery checks again.
    async fn check_host(&self, url: &url::Url) -> Result<(), CoreError> {
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        let Some(resolver) = &self.host_resolver else {
            return Ok(());
        };
        match tokio::time::timeout(SAVE_LOOKUP, resolver.lookup(host)).await {
            Ok(crate::ports::HostLookup::Blocked(first)) => Err(url_error(UrlError::BlockedHost {
                host: format!("{host} (resolves to {})", first.ip),
                class: first.class,
            })),
            _ => Ok(()),
        }
    }
}

fn url_error(e: UrlError) -> CoreError {
    let class = match &e {
        UrlError::BlockedAddress(b) => b.class,
        UrlError::BlockedHost { class, .. } => *class,
        _ => return invalid(ErrorCode::InvalidUrl, e.to_string()),
    };
    let hint = match class {
        AddressClass::Loopback => {
            "; the server's operator can allow loopback targets \
             (for development) with `webhooks.allow_loopback = true` \
             (TIDINGS_WEBHOOKS__ALLOW_LOOPBACK=true)"
        }
        AddressClass::Private | AddressClass::LinkLocal | AddressClass::Reserved => {
            "; the server's operator can allow private, link-local and reserved targets \
             with `webhooks.allow_private = true` (TIDINGS_WEBHOOKS__ALLOW_PRIVATE=true)"
        }
        AddressClass::Public => "",
        AddressClass::Metadata
        | AddressClass::Unspecified
        | AddressClass::Multicast
        | AddressClass::Broadcast => "; no setting allows it",
    };
    invalid(ErrorCode::BlockedUrl, format!("{e}{hint}"))
}

fn dedup<T: Ord + Copy>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Tidings {
    /// Tell the account's contact that an event type stopped being posted
    /// to one of its webhooks (the status API shows it too). Best effort:
    /// a failure here is logged, never fatal.
    pub async fn notify_pause(
        &self,
        webhook: WebhookId,
        event_type: EventType,
        reason: tidings_store::PauseReason,
    ) {
        let result = async {
            let w = self.store.load_webhook(webhook).await?;
            let account = self.store.get_account(w.account_id).await?;
            let Some(contact) = account.contact_email else {
                return Ok::<_, CoreError>(());
            };
            let domain = if self.config.hostname.contains('.') {
                self.config.hostname.clone()
            } else {
                "tidings.invalid".to_string()
            };
            let why = match reason {
                tidings_store::PauseReason::Gone => "it answered 410 Gone".to_string(),
                tidings_store::PauseReason::ConsecutiveFailures => format!(
                    "{} deliveries in a row failed",
                    self.config.pause_after
                ),
            };
            let text = format!(
                "tidings stopped posting `{event_type}` events to your webhook {} ({}) because {why}.\n\n\
                 Nothing is lost: the events wait, and are delivered in order once you fix the \
                 receiver and resume (POST /v1/webhooks/{}/resume) or update the webhook.\n",
                w.id, w.settings.url, w.id
            );
            let req: crate::sending::SendRequest = serde_json::from_value(serde_json::json!({
                "from": format!("tidings <notifications@{domain}>"),
                "to": contact,
                "subject": format!("Webhook paused: {event_type} events to {}", w.settings.url),
                "text": text,
                "track": {"opens": false, "clicks": false},
            }))
            .map_err(|e| CoreError::Internal(e.to_string()))?;
            self.send_json_as(w.account_id, req, crate::sending::Sender::Server)
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, %webhook, "could not email the account about a paused webhook");
        }
    }
}
