//! Example data for test events, filled from the field catalogue so every
//! field a receiver may see appears with a plausible value.

use serde_json::{json, Value};
use tidings_types::{EventData, EventType, Field};

fn example(field: Field, t: EventType) -> Value {
    match field {
        Field::Email => json!("recipient@example.com"),
        Field::MessageId => json!("msg_00000000000000000000000000"),
        Field::SmtpMessageId => json!("<example@tidings.test>"),
        Field::CustomId => json!("order-1234"),
        Field::Group => json!("receipts"),
        Field::Tags => json!(["example", "test"]),
        Field::Subject => json!("Your receipt"),
        Field::From => json!("shop@example.com"),
        Field::RemoteMta => json!("mx.example.com"),
        Field::SmtpResponse => match t {
            EventType::Deferred => json!("451 4.7.1 Try again later"),
            _ => json!("250 2.0.0 OK queued"),
        },
        Field::Tls => json!(true),
        Field::Attempt => json!(1),
        Field::NextAttemptAt => json!("2030-01-01T00:05:00.000Z"),
        Field::BounceType => json!("hard"),
        Field::Status => match t {
            EventType::Block => json!("5.7.1"),
            _ => json!("5.1.1"),
        },
        Field::Reason => match t {
            EventType::Block => json!("policy"),
            EventType::Dropped => json!("suppressed"),
            _ => json!("user_unknown"),
        },
        Field::Diagnostic => json!("550 5.1.1 The email account does not exist"),
        Field::Source => json!("smtp"),
        Field::Ip => json!("192.0.2.1"),
        Field::UserAgent => json!("Mozilla/5.0"),
        Field::First => json!(true),
        Field::Machine => json!(false),
        Field::Url => json!("https://example.com/welcome"),
        Field::LinkIndex => json!(0),
        Field::Bot => json!(false),
        Field::Method => json!("link"),
        Field::FeedbackType => json!("abuse"),
        Field::Reporter => json!("feedback.example.net"),
    }
}

pub fn example_data(t: EventType) -> EventData {
    t.fields()
        .map(|f| (f.as_str().to_string(), example(f, t)))
        .collect()
}
