//! The data of the events about a message's recipients, built with the
//! typed [`Payload`] over the field catalogue: every producer (sending,
//! outbound outcomes, inbound reports, tracking) starts from
//! [`recipient_payload`] and adds its type's fields by [`Field`], so a key
//! cannot be misspelt.

use tidings_store::MessageRecord;
use tidings_types::{EventType, Field, Payload};

/// The fields every event about message `m` carries, for recipient
/// `email`, in a payload for an event of `event_type`.
pub fn recipient_payload(m: &MessageRecord, email: &str, event_type: EventType) -> Payload {
    Payload::new(event_type)
        .with(Field::Email, email)
        .with(Field::MessageId, m.id.to_string())
        .with(Field::SmtpMessageId, m.smtp_message_id.clone())
        .with(Field::CustomId, m.custom_id.clone())
        .with(Field::Group, m.group.clone())
        .with(Field::Tags, m.tags.clone())
        .with(Field::Subject, m.subject.clone())
        .with(Field::From, m.from.clone())
}
