//! Standard Webhooks signing.
//!
//! Every delivery carries `webhook-id`, `webhook-timestamp` and
//! `webhook-signature`, computed exactly as the Standard Webhooks
//! specification says, so a receiver verifies with the official library of
//! its language and never with code of ours. The signature is an
//! HMAC-SHA256 of `"{id}.{timestamp}.{payload}"`, base64, prefixed `v1,`.
//! During a secret rotation both secrets sign and the header holds one
//! `v1,…` entry per secret, space-separated: a receiver that knows either
//! secret accepts the request.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tidings_types::WebhookSecret;

/// The header carrying the message id (the event id, or a batch id).
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the signing time, Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// One `v1,<base64>` signature of `payload` with one secret.
pub fn sign(msg_id: &str, timestamp: i64, payload: &[u8], secret: &WebhookSecret) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.key())
        .expect("HMAC-SHA256 accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The `webhook-signature` value: one `v1,…` entry per secret, in the order
/// given (current secret first, by convention), separated by single spaces.
/// An empty `secrets` gives an empty string; callers always pass at least
/// the webhook's current secret.
pub fn signature_header(
    msg_id: &str,
    timestamp: i64,
    payload: &[u8],
    secrets: &[&WebhookSecret],
) -> String {
    secrets
        .iter()
        .map(|s| sign(msg_id, timestamp, payload, s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three Standard Webhooks headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `webhook-id`: stable across retries and replays of the same delivery.
    pub id: String,
    /// `webhook-timestamp`: Unix seconds at signing; re-signed per attempt.
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
}

impl SignatureHeaders {
    /// Sign `signed` (a [`Payload`](crate::Payload)'s `signed` bytes).
    pub fn new(msg_id: &str, timestamp: i64, signed: &[u8], secrets: &[&WebhookSecret]) -> Self {
        SignatureHeaders {
            id: msg_id.to_string(),
            timestamp,
            signature: signature_header(msg_id, timestamp, signed, secrets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER_ID, HeaderValue::from_str(id).unwrap());
        h.insert(HEADER_TIMESTAMP, HeaderValue::from(ts));
        h.insert(HEADER_SIGNATURE, HeaderValue::from_str(sig).unwrap());
        h
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn known_vector_of_the_reference_library() {
        // The vector from the `standardwebhooks` crate's own tests.
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let payload = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                payload,
                &secret
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn official_verifier_accepts_our_signature() {
        let secret = WebhookSecret::generate();
        let ts = now();
        let payload = br#"{"id":"evt_x","type":"sent","data":{"email":"a@example.com"}}"#;
        let sig = signature_header("evt_1", ts, payload, &[&secret]);
        assert!(sig.starts_with("v1,"));
        let wh = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        wh.verify(payload, &headers("evt_1", ts, &sig)).unwrap();
        // And it is exactly what the reference library computes.
        assert_eq!(wh.sign("evt_1", ts, payload).unwrap(), sig);
    }

    #[test]
    fn official_verifier_rejects_tampering() {
        let secret = WebhookSecret::generate();
        let ts = now();
        let sig = signature_header("evt_1", ts, b"body", &[&secret]);
        let wh = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        assert!(wh.verify(b"bodY", &headers("evt_1", ts, &sig)).is_err());
        assert!(wh.verify(b"body", &headers("evt_2", ts, &sig)).is_err());
        assert!(wh.verify(b"body", &headers("evt_1", ts + 1, &sig)).is_err());
        let other = standardwebhooks::Webhook::new(&WebhookSecret::generate().expose()).unwrap();
        assert!(other.verify(b"body", &headers("evt_1", ts, &sig)).is_err());
    }

    #[test]
    fn during_rotation_each_secret_alone_verifies() {
        let current = WebhookSecret::generate();
        let previous = WebhookSecret::generate();
        let ts = now();
        let payload = b"event=sent&event_id=evt_1";
        let sig = signature_header("evt_1", ts, payload, &[&current, &previous]);
        let parts: Vec<_> = sig.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_eq!(parts[0], sign("evt_1", ts, payload, &current));
        assert_eq!(parts[1], sign("evt_1", ts, payload, &previous));
        for s in [&current, &previous] {
            let wh = standardwebhooks::Webhook::new(&s.expose()).unwrap();
            wh.verify(payload, &headers("evt_1", ts, &sig)).unwrap();
        }
        let stranger = standardwebhooks::Webhook::new(&WebhookSecret::generate().expose()).unwrap();
        assert!(stranger
            .verify(payload, &headers("evt_1", ts, &sig))
            .is_err());
    }

    #[test]
    fn signature_headers_bundle() {
        let secret = WebhookSecret::generate();
        let h = SignatureHeaders::new("evt_9", 1_700_000_000, b"x", &[&secret]);
        assert_eq!(h.id, "evt_9");
        assert_eq!(h.timestamp, 1_700_000_000);
        assert_eq!(h.signature, sign("evt_9", 1_700_000_000, b"x", &secret));
        assert_eq!(signature_header("evt_9", 1, b"x", &[]), "");
    }
}
