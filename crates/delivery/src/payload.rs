//! Putting events on the wire: one HTTP request per event, or per batch.
//!
//! The three formats are derived from the same two things, the event and
//! the account's field selection, so they cannot drift apart:
//!
//! - `json`: POST `application/json`, the body is [`Event::to_json`]; when
//!   the webhook batches, the body is always a JSON array (even of one
//!   event), so a receiver sees one shape per webhook, never a mix.
//! - `form`: POST `application/x-www-form-urlencoded` of `event`,
//!   `event_id`, `timestamp` and the selected data fields.
//! - `get`: GET with those same parameters appended to the URL's query
//!   string. Whatever the account already put in its URL's query (a static
//!   token, say) is kept byte for byte, before ours.
//!
//! [`Payload::signed`] is what the Standard Webhooks signature covers: the
//! body, or for `get` the whole query string as sent (without the `?`).

use bytes::Bytes;
use http::Method;
use serde_json::value::RawValue;
use tidings_types::fields::Field;
use tidings_types::{Event, WebhookFormat, WebhookSettings};
use url::form_urlencoded;

/// `Content-Type` of the `json` format.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `Content-Type` of the `form` format.
pub const CONTENT_TYPE_FORM: &str = "application/x-www-form-urlencoded";

/// One HTTP request, ready to sign and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub method: Method,
    /// The webhook URL; for `get`, with the parameters in its query.
    pub url: url::Url,
    /// `None` when there is no body (`get`).
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// The bytes the signature covers: the body, or the query string for `get`.
    pub signed: Bytes,
}

/// Why a set of events cannot be put in one request for this webhook.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("no events to send")]
    Empty,
    #[error("the {} format sends one event per request, not {count}", .format.as_str())]
    NotBatchable { format: WebhookFormat, count: usize },
    #[error("this webhook does not batch, so it takes one event per request, not {count}")]
    NotBatched { count: usize },
    #[error("a batch of {count} events is larger than this webhook's maximum of {max}")]
    BatchTooLarge { count: usize, max: u32 },
    #[error("could not encode the JSON body")]
    Json(#[source] serde_json::Error),
}

/// An event to put on the wire, and its data as the log keeps it (JSON
/// text) when `event.data` was left unparsed.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub event: &'a Event,
    pub stored_data: Option<&'a RawValue>,
}

/// Whether a webhook sends event data exactly as the log keeps it (the
/// `json` format with every field), so that it need not be parsed.
pub fn sends_stored_data(webhook: &WebhookSettings) -> bool {
    webhook.format == WebhookFormat::Json && webhook.fields.is_none()
}

/// Build the request that delivers `events` (in the order given) to a
/// webhook with these settings.
///
/// Several events make one request only for a `json` webhook with batching
/// on, and no more than its `max_events`.
pub fn build(events: &[&Event], webhook: &WebhookSettings) -> Result<Payload, PayloadError> {
    let events: Vec<Outgoing> = events
        .iter()
        .map(|&event| Outgoing {
            event,
            stored_data: None,
        })
        .collect();
    build_outgoing(&events, webhook)
}

/// [`build`] for events whose data may still be the log's JSON text. That
/// text is sent only where [`sends_stored_data`]; elsewhere `event.data`
/// must hold the data.
pub fn build_outgoing<'a>(
    events: &[Outgoing<'a>],
    webhook: &WebhookSettings,
) -> Result<Payload, PayloadError> {
    let count = events.len();
    let first = match events {
        [] => return Err(PayloadError::Empty),
        [first, ..] => first.event,
    };
    let fields = webhook.fields.as_deref();
    let stored = sends_stored_data(webhook);
    match webhook.format {
        WebhookFormat::Json => {
            let wire = |o: &Outgoing<'a>| Wire {
                event: o.event,
                fields,
                stored_data: o.stored_data.filter(|_| stored),
            };
            let body = match webhook.batch {
                Some(batch) => {
                    if count > batch.max_events.max(1) as usize {
                        return Err(PayloadError::BatchTooLarge {
                            count,
                            max: batch.max_events,
                        });
                    }
                    let all: Vec<Wire> = events.iter().map(wire).collect();
                    serde_json::to_vec(&all)
                }
                None if count > 1 => return Err(PayloadError::NotBatched { count }),
                None => serde_json::to_vec(&wire(&events[0])),
            };
            let body = Bytes::from(body.map_err(PayloadError::Json)?);
            Ok(Payload {
                method: Method::POST,
                url: webhook.url.clone(),
                content_type: Some(CONTENT_TYPE_JSON),
                signed: body.clone(),
                body,
            })
        }
        format @ (WebhookFormat::Form | WebhookFormat::Get) if count > 1 => {
            Err(PayloadError::NotBatchable { format, count })
        }
        WebhookFormat::Form => {
            let body = Bytes::from(parameters(first, fields));
            Ok(Payload {
                method: Method::POST,
                url: webhook.url.clone(),
                content_type: Some(CONTENT_TYPE_FORM),
                signed: body.clone(),
                body,
            })
        }
        WebhookFormat::Get => {
            let url = append_query(&webhook.url, &parameters(first, fields));
            let signed = Bytes::copy_from_slice(url.query().unwrap_or_default().as_bytes());
            Ok(Payload {
                method: Method::GET,
                url,
                content_type: None,
                body: Bytes::new(),
                signed,
            })
        }
    }
}

/// One event as the `json` format sends it: the document of
/// [`Event::to_json`], written straight from the event. Building the
/// `Value` first would copy every data field for each delivery. The keys
/// come in the same (sorted) order as the `Value`'s, so the bytes are the
/// same too.
struct Wire<'a> {
    event: &'a Event,
    fields: Option<&'a [Field]>,
    /// The data as the log keeps it, sent as it is: it was written from
    /// the same sorted map, so the bytes are the same as `WireData`'s.
    stored_data: Option<&'a RawValue>,
}

impl serde::Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4))?;
        match self.stored_data {
            Some(raw) => map.serialize_entry("data", raw)?,
            None => map.serialize_entry("data", &WireData(self))?,
        }
        map.serialize_entry("id", &self.event.id)?;
        map.serialize_entry(
            "timestamp",
            &tidings_types::time::rfc3339(self.event.timestamp),
        )?;
        map.serialize_entry("type", &self.event.event_type)?;
        map.end()
    }
}

/// The selected data fields of a [`Wire`] event, in the data's own order.
struct WireData<'a>(&'a Wire<'a>);

impl serde::Serialize for WireData<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let selected = |key: &str| {
            self.0
                .fields
                .is_none_or(|sel| sel.iter().any(|f| f.as_str() == key))
        };
        s.collect_map(self.0.event.data.iter().filter(|(k, _)| selected(k)))
    }
}

/// The `form`/`get` parameters of one event, URL-encoded: `event`,
/// `event_id`, `timestamp`, then the selected data fields in catalogue
/// order (then any key outside the catalogue, in name order).
fn parameters(event: &Event, fields: Option<&[Field]>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair("event", event.event_type.as_str());
    out.append_pair("event_id", &event.id.to_string());
    out.append_pair("timestamp", &tidings_types::time::rfc3339(event.timestamp));
    let mut data = event.selected_data(fields);
    for field in Field::ALL {
        if let Some(value) = data.remove(field.as_str()) {
            if let Some(text) = form_value(&value) {
                out.append_pair(field.as_str(), &text);
            }
        }
    }
    for (key, value) in &data {
        if let Some(text) = form_value(value) {
            out.append_pair(key, &text);
        }
    }
    out.finish()
}

/// A data value as one form parameter: strings as they are, booleans as
/// `true`/`false`, numbers in decimal, lists joined with commas. Nulls are
/// left out.
fn form_value(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(form_value)
                .collect::<Vec<_>>()
                .join(","),
        ),
        // Not in the catalogue; sent as JSON text rather than dropped.
        Value::Object(_) => Some(value.to_string()),
    }
}

/// `url` with `params` (already encoded) after its own query, which is
/// kept exactly as written.
fn append_query(url: &url::Url, params: &str) -> url::Url {
    let mut url = url.clone();
    let query = match url.query() {
        None | Some("") => params.to_string(),
        Some(own) if own.ends_with('&') => format!("{own}{params}"),
        Some(own) => format!("{own}&{params}"),
    };
    url.set_query(Some(&query));
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;
    use tidings_types::{AccountId, BatchSettings, EventId, EventType};

    fn event(event_type: EventType, data: serde_json::Value) -> Event {
        Event {
            seq: 1,
            id: EventId::new(),
            account_id: AccountId::new(),
            event_type,
            timestamp: chrono::Utc
                .with_ymd_and_hms(2025, 3, 4, 5, 6, 7)
                .unwrap()
                .checked_add_signed(chrono::Duration::milliseconds(89))
                .unwrap(),
            data: data.as_object().unwrap().clone(),
        }
    }

    fn click() -> Event {
        event(
            EventType::Click,
            json!({
                "email": "ann+x@example.com",
                "tags": ["welcome", "a b", "ü"],
                "url": "https://shop.example/p?a=1&b=2#frag",
                "link_index": 3,
                "first": true,
                "bot": false,
                "subject": "Hello & welcome = 100%",
            }),
        )
    }

    fn settings(format: WebhookFormat, url: &str) -> WebhookSettings {
        WebhookSettings {
            url: url.parse().unwrap(),
            event_types: EventType::ALL.to_vec(),
            format,
            fields: None,
            headers: Default::default(),
            description: None,
            max_in_flight: 4,
            max_per_second: None,
            batch: None,
        }
    }

    fn pairs(encoded: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(encoded)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn json_single_event_is_the_canonical_object() {
        let e = click();
        let p = build(
            &[&e],
            &settings(WebhookFormat::Json, "https://h.example/hook"),
        )
        .unwrap();
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.content_type, Some("application/json"));
        assert_eq!(p.url.as_str(), "https://h.example/hook");
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body, e.to_json(None));
        assert_eq!(body["timestamp"], "2025-03-04T05:06:07.089Z");
        assert_eq!(p.signed, p.body);
    }

    #[test]
    fn json_bytes_are_those_of_the_canonical_value() {
        let (a, b) = (click(), click());
        let mut s = settings(WebhookFormat::Json, "https://h.example/");
        for fields in [None, Some(vec![Field::Email, Field::Url, Field::Tags])] {
            s.fields = fields.clone();
            s.batch = None;
            let p = build(&[&a], &s).unwrap();
            let want = serde_json::to_vec(&a.to_json(fields.as_deref())).unwrap();
            assert_eq!(p.body, want);
            s.batch = Some(BatchSettings {
                max_events: 10,
                max_wait_ms: 0,
            });
            let p = build(&[&a, &b], &s).unwrap();
            let want = json!([a.to_json(fields.as_deref()), b.to_json(fields.as_deref())]);
            assert_eq!(p.body, serde_json::to_vec(&want).unwrap());
        }
    }

    #[test]
    fn data_as_the_log_keeps_it_goes_out_byte_for_byte() {
        let (a, b) = (click(), click());
        // As the store writes it, and hands it back with `data` unparsed.
        let stored = |e: &Event| serde_json::to_string(&e.data).unwrap();
        let (ra, rb) = (stored(&a), stored(&b));
        let (ra, rb): (Box<RawValue>, Box<RawValue>) = (
            RawValue::from_string(ra).unwrap(),
            RawValue::from_string(rb).unwrap(),
        );
        let unparsed = |e: &Event| Event {
            data: Default::default(),
            ..e.clone()
        };
        let (ua, ub) = (unparsed(&a), unparsed(&b));
        let outgoing = [
            Outgoing {
                event: &ua,
                stored_data: Some(&ra),
            },
            Outgoing {
                event: &ub,
                stored_data: Some(&rb),
            },
        ];
        let mut s = settings(WebhookFormat::Json, "https://h.example/");
        assert!(sends_stored_data(&s));
        let one = build_outgoing(&outgoing[..1], &s).unwrap();
        assert_eq!(one.body, build(&[&a], &s).unwrap().body);
        s.batch = Some(BatchSettings {
            max_events: 10,
            max_wait_ms: 0,
        });
        let two = build_outgoing(&outgoing, &s).unwrap();
        assert_eq!(two.body, build(&[&a, &b], &s).unwrap().body);
        // A field selection or another format needs the parsed fields.
        s.fields = Some(vec![Field::Email]);
        assert!(!sends_stored_data(&s));
        assert!(!sends_stored_data(&settings(
            WebhookFormat::Form,
            "https://h.example/"
        )));
    }

    #[test]
    fn json_respects_field_selection() {
        let e = click();
        let mut s = settings(WebhookFormat::Json, "https://h.example/");
        s.fields = Some(vec![Field::Email, Field::Url]);
        let p = build(&[&e], &s).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(
            body["data"],
            json!({"email": "ann+x@example.com", "url": "https://shop.example/p?a=1&b=2#frag"})
        );
        assert_eq!(body["id"], json!(e.id.to_string()));
        assert_eq!(body["type"], "click");
    }

    #[test]
    fn json_batch_is_an_array_in_order_even_of_one() {
        let a = click();
        let b = event(EventType::Open, json!({"email": "b@example.com"}));
        let mut s = settings(WebhookFormat::Json, "https://h.example/");
        s.batch = Some(BatchSettings {
            max_events: 2,
            max_wait_ms: 100,
        });
        let p = build(&[&a, &b], &s).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body, json!([a.to_json(None), b.to_json(None)]));
        assert_eq!(p.signed, p.body);

        let one = build(&[&b], &s).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&one.body).unwrap();
        assert_eq!(body, json!([b.to_json(None)]));

        let c = click();
        assert!(matches!(
            build(&[&a, &b, &c], &s),
            Err(PayloadError::BatchTooLarge { count: 3, max: 2 })
        ));
    }

    #[test]
    fn several_events_need_json_batching() {
        let a = click();
        let b = click();
        assert!(matches!(
            build(
                &[&a, &b],
                &settings(WebhookFormat::Json, "https://h.example/")
            ),
            Err(PayloadError::NotBatched { count: 2 })
        ));
        for format in [WebhookFormat::Form, WebhookFormat::Get] {
            let mut s = settings(format, "https://h.example/");
            s.batch = Some(BatchSettings {
                max_events: 10,
                max_wait_ms: 100,
            });
            let err = build(&[&a, &b], &s).unwrap_err();
            assert!(matches!(err, PayloadError::NotBatchable { count: 2, .. }));
            assert!(err.to_string().contains(format.as_str()));
        }
        assert!(matches!(
            build(&[], &settings(WebhookFormat::Json, "https://h.example/")),
            Err(PayloadError::Empty)
        ));
    }

    #[test]
    fn form_encodes_every_kind_of_value() {
        let e = click();
        let p = build(&[&e], &settings(WebhookFormat::Form, "https://h.example/f")).unwrap();
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.content_type, Some("application/x-www-form-urlencoded"));
        assert_eq!(p.signed, p.body);
        let expected: Vec<(String, String)> = [
            ("event", "click".to_string()),
            ("event_id", e.id.to_string()),
            ("timestamp", "2025-03-04T05:06:07.089Z".to_string()),
            ("email", "ann+x@example.com".to_string()),
            ("tags", "welcome,a b,ü".to_string()),
            ("subject", "Hello & welcome = 100%".to_string()),
            ("first", "true".to_string()),
            ("url", "https://shop.example/p?a=1&b=2#frag".to_string()),
            ("link_index", "3".to_string()),
            ("bot", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(pairs(&p.body), expected);
        // Reserved characters are escaped, so values cannot leak into other parameters.
        let text = std::str::from_utf8(&p.body).unwrap();
        assert!(text.contains("email=ann%2Bx%40example.com"));
        assert!(text.contains("subject=Hello+%26+welcome+%3D+100%25"));
        assert!(text.starts_with("event=click&event_id=evt_"));
    }

    #[test]
    fn form_respects_field_selection_but_keeps_the_envelope() {
        let e = click();
        let mut s = settings(WebhookFormat::Form, "https://h.example/f");
        s.fields = Some(vec![Field::LinkIndex]);
        let p = build(&[&e], &s).unwrap();
        let keys: Vec<_> = pairs(&p.body).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["event", "event_id", "timestamp", "link_index"]);
    }

    #[test]
    fn form_value_shapes() {
        assert_eq!(form_value(&json!(null)), None);
        assert_eq!(form_value(&json!(-12)).as_deref(), Some("-12"));
        assert_eq!(form_value(&json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(form_value(&json!([])).as_deref(), Some(""));
        assert_eq!(form_value(&json!([1, true])).as_deref(), Some("1,true"));
        assert_eq!(form_value(&json!({"a": 1})).as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn get_appends_after_the_accounts_own_query_untouched() {
        let e = click();
        let raw = "https://h.example/in?token=a%2Fb+c~&x=%7e&flag";
        let p = build(&[&e], &settings(WebhookFormat::Get, raw)).unwrap();
        assert_eq!(p.method, Method::GET);
        assert_eq!(p.content_type, None);
        assert!(p.body.is_empty());
        let query = p.url.query().unwrap();
        let own = "token=a%2Fb+c~&x=%7e&flag&";
        assert!(query.starts_with(own), "{query}");
        let ours = &query[own.len()..];
        let form = build(&[&e], &settings(WebhookFormat::Form, raw)).unwrap();
        assert_eq!(ours.as_bytes(), &form.body[..]);
        assert_eq!(p.signed, query.as_bytes());
        assert_eq!(p.url.path(), "/in");
        assert!(p.url.as_str().starts_with(raw));
    }

    #[test]
    fn get_without_a_query_of_its_own() {
        let e = event(EventType::Open, json!({"email": "b@example.com"}));
        for raw in ["https://h.example/in", "https://h.example/in?"] {
            let p = build(&[&e], &settings(WebhookFormat::Get, raw)).unwrap();
            let query = p.url.query().unwrap();
            assert!(query.starts_with("event=open&event_id=evt_"), "{query}");
            assert_eq!(p.signed, query.as_bytes());
        }
        let p = build(
            &[&e],
            &settings(WebhookFormat::Get, "https://h.example/in?k=v&"),
        )
        .unwrap();
        assert!(p.url.query().unwrap().starts_with("k=v&event=open&"));
    }
}
