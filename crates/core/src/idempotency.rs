//! `Idempotency-Key` on the requests that make something (a message, a
//! webhook). A client that lost its connection after tidings committed
//! cannot know whether it did; it sends the same request again with the
//! same key, and gets the first answer instead of a second message.
//!
//! - The key is taken in the transaction that makes the message or the
//!   webhook, so it is taken exactly when that exists: a crash between the
//!   two cannot leave one without the other.
//! - A key lives for [`WINDOW`] (24 hours), per account. Within it, the
//!   same key with the same request (route, content type and body, as a
//!   SHA-256 digest) answers what the first request made; with a different
//!   request it is refused (`idempotency_key_reused`).
//! - Two requests with one key at once: one commits, the other finds the
//!   key taken and answers as a replay of the first.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tidings_store::{IdempotencyKey, IdempotencyRecord, IDEMPOTENCY_KEY_TAKEN};
use tidings_types::{AccountId, Timestamp};

use crate::{CoreError, ErrorCode, Tidings};

/// How long a key answers for its first request.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Longest key, in bytes.
pub const MAX_KEY: usize = 255;

/// A request's key and the digest of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    key: String,
    fingerprint: String,
}

impl Idempotency {
    /// The key as the client sent it (1 to 255 printable ASCII
    /// characters), with the request: its route (`POST /v1/messages`), its
    /// content type and its body.
    pub fn new(key: &str, route: &str, content_type: &str, body: &[u8]) -> Result<Self, CoreError> {
        if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CoreError::invalid(
                ErrorCode::InvalidIdempotencyKey,
                format!("an Idempotency-Key is 1 to {MAX_KEY} printable ASCII characters, without spaces"),
            ));
        }
        let mut h = Sha256::new();
        for part in [route.as_bytes(), content_type.as_bytes(), body] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Ok(Self {
            key: key.to_string(),
            fingerprint: hex::encode(h.finalize()),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// What the store records in the transaction, expiring keys taken
    /// before `now - WINDOW`.
    pub(crate) fn record(&self, now: Timestamp) -> IdempotencyKey {
        IdempotencyKey {
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            expired_before: expiry(now),
        }
    }
}

fn expiry(now: Timestamp) -> Timestamp {
    now - chrono::Duration::from_std(WINDOW).expect("a day fits")
}

/// Whether `e` says the key was taken by a request that committed first.
pub(crate) fn is_taken(e: &CoreError) -> bool {
    matches!(e, CoreError::Invalid { code: ErrorCode::Conflict, message } if message == IDEMPOTENCY_KEY_TAKEN)
}

impl Tidings {
    /// The live record of `idem`'s key, if its first request was the same
    /// one; refused when the key was used with another request.
    pub(crate) async fn idempotent(
        &self,
        account: AccountId,
        idem: &Idempotency,
    ) -> Result<Option<IdempotencyRecord>, CoreError> {
        let now = self.clock.now();
        let Some(rec) = self
            .store
            .idempotency_key(account, idem.key.clone(), expiry(now))
            .await?
        else {
            return Ok(None);
        };
        if rec.fingerprint != idem.fingerprint {
            return Err(CoreError::invalid(
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "the Idempotency-Key `{}` was used at {} with a different request; use a new key for a new request",
                    idem.key,
                    tidings_types::time::rfc3339(rec.created_at)
                ),
            ));
        }
        Ok(Some(rec))
    }
}
