//! Events: what happened to an email.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::fields::{Field, FieldError};
use crate::ids::{AccountId, EventId};
use crate::time::Timestamp;

/// The event types of the Transactional Event API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Sent,
    Open,
    Click,
    Unsubscribe,
    Bounce,
    Complaint,
    Block,
    Deferred,
    Dropped,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::Sent,
        EventType::Open,
        EventType::Click,
        EventType::Unsubscribe,
        EventType::Bounce,
        EventType::Complaint,
        EventType::Block,
        EventType::Deferred,
        EventType::Dropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Sent => "sent",
            EventType::Open => "open",
            EventType::Click => "click",
            EventType::Unsubscribe => "unsubscribe",
            EventType::Bounce => "bounce",
            EventType::Complaint => "complaint",
            EventType::Block => "block",
            EventType::Deferred => "deferred",
            EventType::Dropped => "dropped",
        }
    }

    /// The fields an event of this type may carry: the common ones first,
    /// then its own, in catalogue order.
    pub fn fields(self) -> impl Iterator<Item = Field> {
        Field::ALL
            .iter()
            .copied()
            .filter(move |f| f.applies_to(self))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the event types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

/// The flat `data` object of an event, keyed by catalogue field name.
pub type EventData = serde_json::Map<String, serde_json::Value>;

/// An event as it is about to be recorded. The log assigns its position.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: EventId,
    pub account_id: AccountId,
    pub event_type: EventType,
    pub timestamp: Timestamp,
    pub data: EventData,
}

impl NewEvent {
    /// Build an event, checking every data key against the catalogue for
    /// this type. Null values are dropped rather than stored.
    pub fn new(
        account_id: AccountId,
        event_type: EventType,
        timestamp: Timestamp,
        mut data: EventData,
    ) -> Result<Self, FieldError> {
        for k in data.keys() {
            let field: Field = k.parse()?;
            if !field.applies_to(event_type) {
                return Err(FieldError::NotForType {
                    field: k.clone(),
                    event_type,
                });
            }
        }
        data.retain(|_, v| !v.is_null());
        Ok(NewEvent {
            id: EventId::new(),
            account_id,
            event_type,
            timestamp: crate::time::trunc(timestamp),
            data,
        })
    }
}

/// What operators count events of one type apart by, read from the data:
/// a bounce's `bounce_type` (anything but `hard` is soft: a soft failure
/// that became final), and whether an open (`machine`) or a click (`bot`)
/// came from software rather than a person. Other types have no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    None,
    HardBounce,
    SoftBounce,
    Human,
    Machine,
}

impl Variant {
    /// The variant of an event of type `event_type` with `data`.
    pub fn of(event_type: EventType, data: &EventData) -> Self {
        let flag = |f: Field| data.get(f.as_str()).and_then(serde_json::Value::as_bool);
        let software = |f: Field| {
            if flag(f) == Some(true) {
                Variant::Machine
            } else {
                Variant::Human
            }
        };
        match event_type {
            EventType::Bounce => {
                match data
                    .get(Field::BounceType.as_str())
                    .and_then(|v| v.as_str())
                {
                    Some(t) if t == crate::payload::BounceType::Hard.as_str() => {
                        Variant::HardBounce
                    }
                    _ => Variant::SoftBounce,
                }
            }
            EventType::Open => software(Field::Machine),
            EventType::Click => software(Field::Bot),
            _ => Variant::None,
        }
    }
}

/// A recorded event. `seq` is its position in the log: every event
/// committed later has a larger `seq`, which is what makes the polling
/// cursor exact.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub id: EventId,
    pub account_id: AccountId,
    pub event_type: EventType,
    pub timestamp: Timestamp,
    pub data: EventData,
}

impl Event {
    /// The canonical JSON form: `{"id","type","timestamp","data":{…}}`,
    /// with `data` limited to `fields` when a selection is given.
    pub fn to_json(&self, fields: Option<&[Field]>) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "timestamp": crate::time::rfc3339(self.timestamp),
            "data": self.selected_data(fields),
        })
    }

    /// `data` restricted to a field selection (all fields when `None`).
    pub fn selected_data(&self, fields: Option<&[Field]>) -> EventData {
        match fields {
            None => self.data.clone(),
            Some(sel) => self
                .data
                .iter()
                .filter(|(k, _)| sel.iter().any(|f| f.as_str() == k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_type_round_trips() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        assert!("opened".parse::<EventType>().is_err());
    }

    #[test]
    fn new_event_checks_catalogue() {
        let acc = AccountId::new();
        let mut d = EventData::new();
        d.insert("email".into(), json!("a@example.com"));
        d.insert("bounce_type".into(), json!("hard"));
        assert!(NewEvent::new(acc, EventType::Bounce, chrono::Utc::now(), d.clone()).is_ok());
        assert!(matches!(
            NewEvent::new(acc, EventType::Open, chrono::Utc::now(), d.clone()),
            Err(FieldError::NotForType { .. })
        ));
        d.insert("nonsense".into(), json!(1));
        assert!(matches!(
            NewEvent::new(acc, EventType::Bounce, chrono::Utc::now(), d),
            Err(FieldError::Unknown(_))
        ));
    }

    #[test]
    fn variants_come_from_the_data() {
        let data = |k: &str, v: serde_json::Value| {
            let mut d = EventData::new();
            d.insert(k.into(), v);
            d
        };
        let of = Variant::of;
        assert_eq!(
            of(EventType::Bounce, &data("bounce_type", json!("hard"))),
            Variant::HardBounce
        );
        assert_eq!(
            of(EventType::Bounce, &data("bounce_type", json!("soft"))),
            Variant::SoftBounce
        );
        assert_eq!(
            of(EventType::Bounce, &EventData::new()),
            Variant::SoftBounce
        );
        assert_eq!(
            of(EventType::Open, &data("machine", json!(true))),
            Variant::Machine
        );
        assert_eq!(
            of(EventType::Open, &data("machine", json!(false))),
            Variant::Human
        );
        assert_eq!(
            of(EventType::Click, &data("bot", json!(true))),
            Variant::Machine
        );
        assert_eq!(of(EventType::Click, &EventData::new()), Variant::Human);
        assert_eq!(
            of(EventType::Sent, &data("machine", json!(true))),
            Variant::None
        );
    }
}
