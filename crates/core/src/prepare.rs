//! A message as it goes to its recipients: the return path of a mail
//! transaction (VERP, when configured) and the bytes sent — rewritten for
//! one recipient (engagement tracking) when there is one, then DKIM-signed
//! with the key of the account's From domain. The outbound worker asks for
//! both and sends them; what it sends is decided here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidings_store::OutboundJob;
use tidings_types::MessageId;

use crate::Tidings;

impl Tidings {
    /// Whether each recipient gets a transaction of its own: with VERP
    /// (its own return path) or tracking (its own links).
    pub fn per_recipient_transactions(&self) -> bool {
        self.verp.is_some() || self.tracker.is_some()
    }

    /// The return path of a transaction carrying `jobs` (one message):
    /// the recipient's VERP address, or the message's envelope sender.
    pub fn return_path(&self, jobs: &[OutboundJob]) -> String {
        let msg = &jobs[0].message;
        match &self.verp {
            Some(codec) => codec.encode(msg.id, jobs[0].recipient_id),
            None => msg.mail_from.clone(),
        }
    }

    /// The bytes to send to `jobs` (one message): rewritten for the
    /// recipient when there is one, then DKIM-signed.
    pub fn outbound_bytes(&self, jobs: &[OutboundJob]) -> Bytes {
        let msg = &jobs[0].message;
        let rewritten = match jobs {
            [one] => self.rewrite_for(&one.message, one.recipient_id, &one.raw),
            _ => None,
        };
        let sign = |body: &[u8]| {
            let domain = msg.from.rsplit_once('@')?.1.to_ascii_lowercase();
            self.dkim_sign(msg.account_id, &domain, body)
                .map(Bytes::from)
        };
        match rewritten {
            Some(r) => sign(&r).unwrap_or_else(|| Bytes::from(r)),
            // The same bytes for every recipient: signed once, even though
            // VERP gives each recipient a transaction of its own.
            None => self
                .signed
                .get_or_sign(msg.id, || sign(&jobs[0].raw))
                .unwrap_or_else(|| jobs[0].raw.clone()),
        }
    }

    /// `raw` signed for `account` sending as `domain`; `None` when the
    /// domain has no key (or signing failed, which is logged).
    fn dkim_sign(
        &self,
        account: tidings_types::AccountId,
        domain: &str,
        raw: &[u8],
    ) -> Option<Vec<u8>> {
        let signer = self.dkim.signer(account, domain)?;
        match signer.sign(raw, self.clock.now().timestamp()) {
            Ok(signed) => Some(signed),
            Err(e) => {
                tracing::warn!(error = %e, domain, "DKIM signing failed; sending unsigned");
                None
            }
        }
    }
}

/// Signed copies of the messages lately sent unchanged, for the other
/// recipients of the same message: an RSA signature costs more than the
/// rest of a delivery. A few, for a few minutes (`t=` stays recent).
#[derive(Default)]
pub(crate) struct SignedOnce {
    recent: Mutex<std::collections::VecDeque<(MessageId, Instant, Bytes)>>,
}

impl SignedOnce {
    const KEEP: usize = 32;
    const FRESH: Duration = Duration::from_secs(300);

    fn get_or_sign(&self, id: MessageId, sign: impl FnOnce() -> Option<Bytes>) -> Option<Bytes> {
        {
            let recent = self.recent.lock().expect("signed lock");
            if let Some((_, _, b)) = recent
                .iter()
                .find(|(m, at, _)| *m == id && at.elapsed() < Self::FRESH)
            {
                return Some(b.clone());
            }
        }
        // Signed outside the lock; two recipients of one message may both
        // sign at the same moment, which costs time, not correctness.
        let signed = sign()?;
        let mut recent = self.recent.lock().expect("signed lock");
        recent.retain(|(m, at, _)| *m != id && at.elapsed() < Self::FRESH);
        if recent.len() >= Self::KEEP {
            recent.pop_front();
        }
        recent.push_back((id, Instant::now(), signed.clone()));
        Some(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_message_sent_unchanged_is_signed_once() {
        let signed = SignedOnce::default();
        let (a, b) = (MessageId::new(), MessageId::new());
        let calls = Cell::new(0);
        let sign = |tag: &'static [u8]| {
            calls.set(calls.get() + 1);
            Some(Bytes::from_static(tag))
        };
        assert_eq!(signed.get_or_sign(a, || sign(b"a")).unwrap(), "a");
        assert_eq!(signed.get_or_sign(a, || sign(b"again")).unwrap(), "a");
        assert_eq!(signed.get_or_sign(b, || sign(b"b")).unwrap(), "b");
        assert_eq!(calls.get(), 2);
        // A message that could not be signed is tried again.
        assert!(signed.get_or_sign(MessageId::new(), || None).is_none());
        for _ in 0..SignedOnce::KEEP {
            signed.get_or_sign(MessageId::new(), || sign(b"x"));
        }
        assert_eq!(signed.get_or_sign(a, || sign(b"a2")).unwrap(), "a2");
    }
}
