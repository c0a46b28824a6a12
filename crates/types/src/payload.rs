//! Typed event data: the builder every producer of events fills, keyed by
//! the field catalogue ([`Field`]) so that a misspelt key does not compile,
//! and the closed sets of values tidings itself writes into event data and
//! the suppression list, each with the name the wire and the database use.
//!
//! A [`Payload`] is made for one event type; a field that type does not
//! carry is a programming error, caught by a debug assertion here and by
//! [`NewEvent::new`] when the event is made.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{EventData, EventType, NewEvent};
use crate::fields::{Field, FieldError};
use crate::ids::AccountId;
use crate::time::Timestamp;

/// The data of one event of one type, built field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    event_type: EventType,
    data: EventData,
}

impl Payload {
    /// An empty payload for an event of `event_type`.
    pub fn new(event_type: EventType) -> Self {
        Payload {
            event_type,
            data: EventData::new(),
        }
    }

    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// Set `field` to `value`; a null value (`None`) leaves it out.
    pub fn set(&mut self, field: Field, value: impl Into<Value>) -> &mut Self {
        debug_assert!(
            field.applies_to(self.event_type),
            "{field} is not a field of {} events",
            self.event_type
        );
        let value = value.into();
        if !value.is_null() {
            self.data.insert(field.as_str().to_string(), value);
        }
        self
    }

    /// [`Payload::set`], by value.
    pub fn with(mut self, field: Field, value: impl Into<Value>) -> Self {
        self.set(field, value);
        self
    }

    /// The same fields, for an event of another type (the common fields
    /// of a message's recipient apply to every type).
    pub fn retyped(self, event_type: EventType) -> Self {
        Payload {
            event_type,
            data: self.data,
        }
    }

    pub fn data(&self) -> &EventData {
        &self.data
    }

    pub fn into_data(self) -> EventData {
        self.data
    }

    /// The event, for `account` at `timestamp`.
    pub fn event(self, account: AccountId, timestamp: Timestamp) -> Result<NewEvent, FieldError> {
        NewEvent::new(account, self.event_type, timestamp, self.data)
    }
}

macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $s)] $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for Value {
            fn from(v: $name) -> Value {
                Value::from(v.as_str())
            }
        }
    };
}

closed_set! {
    /// Why tidings itself put an address on an account's suppression list
    /// (an account adding one by hand gives a reason of its own).
    SuppressionReason {
        HardBounce = "hard_bounce",
        /// Consecutive soft bounces, up to the configured limit.
        SoftBounces = "soft_bounces",
        Complaint = "complaint",
        Unsubscribe = "unsubscribe",
        /// The reason of one added by hand without one.
        Manual = "manual",
    }
}

closed_set! {
    /// A bounce's `bounce_type`.
    BounceType {
        Hard = "hard",
        Soft = "soft",
    }
}

closed_set! {
    /// Where a bounce was learnt: the SMTP reply at delivery, or a DSN.
    BounceSource {
        Smtp = "smtp",
        Dsn = "dsn",
    }
}

closed_set! {
    /// An unsubscribe's `method`.
    UnsubscribeMethod {
        /// The link in the message.
        Link = "link",
        /// RFC 8058 one-click, from the mailbox provider.
        OneClick = "one_click",
        /// A complaint, when complaints also unsubscribe.
        Complaint = "complaint",
    }
}

closed_set! {
    /// A dropped recipient's `reason`.
    DropReason {
        Suppressed = "suppressed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_set_by_catalogue_name_and_nulls_left_out() {
        let p = Payload::new(EventType::Sent)
            .with(Field::Email, "a@example.com")
            .with(Field::RemoteMta, None::<String>)
            .with(Field::Tls, true);
        assert_eq!(
            Value::Object(p.into_data()),
            serde_json::json!({"email": "a@example.com", "tls": true})
        );
    }

    #[test]
    fn closed_sets_serialise_as_their_names() {
        for r in SuppressionReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), Value::from(r.as_str()));
        }
        assert_eq!(BounceType::Hard.as_str(), "hard");
        assert_eq!(UnsubscribeMethod::OneClick.to_string(), "one_click");
        let back: BounceSource = serde_json::from_str("\"dsn\"").unwrap();
        assert_eq!(back, BounceSource::Dsn);
    }
}
