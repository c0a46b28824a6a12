//! The field catalogue: the single source of truth for what an event's
//! `data` may hold. Payload formats, field selection, validation and the
//! OpenAPI document are all derived from this one list.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::EventType;

/// What a field's value looks like, for documentation and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Integer,
    Boolean,
    StringList,
    Timestamp,
}

macro_rules! catalogue {
    ($( $variant:ident = $name:literal, $kind:ident, [$($t:ident),*] ; )*) => {
        /// One field of the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field { $($variant),* }

        impl Field {
            /// Every field, in catalogue order (common fields first).
            pub const ALL: &'static [Field] = &[$(Field::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Field::$variant => $name),* }
            }

            pub fn kind(self) -> FieldKind {
                match self { $(Field::$variant => FieldKind::$kind),* }
            }

            /// The event types that carry this field; empty means all.
            pub fn event_types(self) -> &'static [EventType] {
                match self { $(Field::$variant => &[$(EventType::$t),*]),* }
            }
        }
    };
}

catalogue! {
    // On every event.
    Email = "email", String, [];
    MessageId = "message_id", String, [];
    SmtpMessageId = "smtp_message_id", String, [];
    CustomId = "custom_id", String, [];
    Group = "group", String, [];
    Tags = "tags", StringList, [];
    Subject = "subject", String, [];
    From = "from", String, [];
    // Delivery outcomes.
    RemoteMta = "remote_mta", String, [Sent, Deferred, Bounce, Block];
    SmtpResponse = "smtp_response", String, [Sent, Deferred];
    Tls = "tls", Boolean, [Sent];
    Attempt = "attempt", Integer, [Sent, Deferred];
    NextAttemptAt = "next_attempt_at", Timestamp, [Deferred];
    BounceType = "bounce_type", String, [Bounce];
    Status = "status", String, [Bounce, Block];
    Reason = "reason", String, [Bounce, Block, Dropped];
    Diagnostic = "diagnostic", String, [Bounce, Block];
    Source = "source", String, [Bounce];
    // Engagement.
    Ip = "ip", String, [Open, Click, Unsubscribe];
    UserAgent = "user_agent", String, [Open, Click, Unsubscribe];
    First = "first", Boolean, [Open, Click];
    Machine = "machine", Boolean, [Open];
    Url = "url", String, [Click];
    LinkIndex = "link_index", Integer, [Click];
    Bot = "bot", Boolean, [Click];
    Method = "method", String, [Unsubscribe];
    // Feedback loops.
    FeedbackType = "feedback_type", String, [Complaint];
    Reporter = "reporter", String, [Complaint];
}

impl Field {
    /// Does an event of type `t` carry this field?
    pub fn applies_to(self, t: EventType) -> bool {
        let types = self.event_types();
        types.is_empty() || types.contains(&t)
    }
}

/// A data key or field selection did not match the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("unknown field `{0}`")]
    Unknown(String),
    #[error("field `{field}` does not belong to `{event_type}` events")]
    NotForType {
        field: String,
        event_type: EventType,
    },
}

impl FromStr for Field {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| FieldError::Unknown(s.to_string()))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A field name: one of the catalogue's.
impl utoipa::PartialSchema for Field {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Field::ALL.iter().map(|f| f.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for Field {}

impl FieldKind {
    /// The JSON schema of a value of this kind.
    pub fn schema(self) -> utoipa::openapi::Schema {
        use utoipa::openapi::schema::{
            ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
        };
        let of = |t: Type| ObjectBuilder::new().schema_type(t);
        match self {
            FieldKind::String => of(Type::String).into(),
            FieldKind::Integer => of(Type::Integer).into(),
            FieldKind::Boolean => of(Type::Boolean).into(),
            FieldKind::StringList => ArrayBuilder::new().items(of(Type::String)).into(),
            FieldKind::Timestamp => of(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse() {
        let mut names: Vec<_> = Field::ALL.iter().map(|f| f.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
        for f in Field::ALL {
            assert_eq!(f.as_str().parse::<Field>().unwrap(), *f);
        }
    }

    #[test]
    fn common_fields_apply_everywhere() {
        for t in EventType::ALL {
            assert!(Field::Email.applies_to(t));
        }
        assert!(Field::Url.applies_to(EventType::Click));
        assert!(!Field::Url.applies_to(EventType::Open));
    }
}
