//! Secrets that never print: API keys, SMTP passwords and webhook signing
//! secrets are wrapped so `Debug` and logs show a placeholder.

use std::fmt;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A string that is redacted in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it must leave the process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// A Standard Webhooks signing secret: `whsec_` followed by base64 of the
/// key bytes. Receivers pass this string unchanged to the official
/// verifier libraries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// The secret text is not `whsec_<base64>` of 24 to 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by base64 of 24 to 64 random bytes")]
pub struct InvalidSecret;

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    /// A fresh random 32-byte secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self { key }
    }

    pub fn parse(s: &str) -> Result<Self, InvalidSecret> {
        let b64 = s.strip_prefix(Self::PREFIX).ok_or(InvalidSecret)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| InvalidSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self { key })
    }

    /// The raw HMAC key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The `whsec_…` form shown to the account.
    pub fn expose(&self) -> String {
        format!(
            "{}{}",
            Self::PREFIX,
            base64::engine::general_purpose::STANDARD.encode(&self.key)
        )
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = InvalidSecret;
    fn try_from(s: String) -> Result<Self, InvalidSecret> {
        Self::parse(&s)
    }
}

impl From<WebhookSecret> for String {
    fn from(s: WebhookSecret) -> String {
        s.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trips_and_hides() {
        let s = WebhookSecret::generate();
        let text = s.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap(), s);
        assert_eq!(format!("{s:?}"), "WebhookSecret(***)");
        assert!(WebhookSecret::parse("whsec_abc").is_err());
        assert!(WebhookSecret::parse("nope").is_err());
    }
}
