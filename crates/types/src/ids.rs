//! Prefixed, typed identifiers.
//!
//! Each id is a ULID behind a short prefix (`evt_01J…`), so ids sort by
//! creation time, are unique without coordination between nodes, and say
//! what they name when they turn up in a log or a support ticket. Parsing
//! checks the prefix, so a webhook id can never be passed where an event id
//! is expected, not even through the HTTP API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id text did not have the expected prefix or was not a valid ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: expected `{prefix}` followed by 26 characters")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
}

/// ULIDs from one monotonic generator, so that ids made in the same
/// millisecond still sort in the order they were made (call logs and
/// cursors rely on it).
fn next_ulid() -> ulid::Ulid {
    static GEN: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut g = GEN.lock().unwrap_or_else(|p| p.into_inner());
    g.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(ulid::Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id; ids made later in this process sort after ids
            /// made earlier, even within one millisecond.
            pub fn new() -> Self {
                Self(next_ulid())
            }

            pub fn from_ulid(u: ulid::Ulid) -> Self {
                Self(u)
            }

            pub fn ulid(&self) -> ulid::Ulid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0.to_string().to_ascii_lowercase())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let err = IdError { kind: $kind, prefix: $prefix };
                let rest = s.strip_prefix($prefix).ok_or(err.clone())?;
                if rest.len() != 26 {
                    return Err(err);
                }
                ulid::Ulid::from_string(&rest.to_ascii_uppercase())
                    .map(Self)
                    .map_err(|_| err)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-7][0-9a-hjkmnp-tv-z]{25}$")))
                    .examples([concat!($prefix, "01jd0000000000000000000000")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An account: the tenant that owns keys, webhooks, messages and events.
    AccountId, "acc_", "account");
prefixed_id!(
    /// An API key (the id part, not the secret).
    ApiKeyId, "key_", "api key");
prefixed_id!(
    /// A webhook endpoint of an account.
    WebhookId, "wh_", "webhook");
prefixed_id!(
    /// An event. The same on every retry and replay, and sent as `webhook-id`.
    EventId, "evt_", "event");
prefixed_id!(
    /// A message accepted for sending.
    MessageId, "msg_", "message");
prefixed_id!(
    /// One delivery attempt in the call log.
    AttemptId, "att_", "attempt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefix_checked() {
        let id = EventId::new();
        let s = id.to_string();
        assert!(s.starts_with("evt_"));
        assert_eq!(s.len(), 30);
        assert_eq!(s.parse::<EventId>().unwrap(), id);
        assert!(s.parse::<WebhookId>().is_err());
        assert!("evt_".parse::<EventId>().is_err());
        assert!("evt_!!!!!!!!!!!!!!!!!!!!!!!!!!".parse::<EventId>().is_err());
    }

    #[test]
    fn later_ids_sort_after() {
        let a = EventId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::new();
        assert!(a.to_string() < b.to_string());
    }
}
