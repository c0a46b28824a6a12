use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;
use tidings_mail::parser::{HeaderValue, MessageParser};

use super::*;

fn request(v: serde_json::Value) -> SendRequest {
    serde_json::from_value(v).unwrap()
}

fn code_of(r: Result<Composed, CoreError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    }
}

#[test]
fn reply_to_cannot_carry_headers_or_a_body() {
    let injected = "r@example.com\r\nSubject: INJECTED\r\nContent-Type: text/html\r\n\r\n<h1>INJECTED BODY</h1>";
    for reply_to in [
        json!({"email": injected, "name": "R"}),
        json!(injected),
        json!("R <r@example.com>\r\nBcc: victim@example.org"),
        json!({"email": "r@example.com", "name": "R\r\nBcc: victim@example.org"}),
        json!("a@example.com, b@example.com"),
    ] {
        let r = compose(request(json!({
            "from": "shop@example.com", "to": "x@sink.example", "subject": "original",
            "text": "original", "reply_to": reply_to,
        })));
        assert_eq!(code_of(r), "invalid_address", "{reply_to}");
    }
}

#[test]
fn every_address_field_is_parsed_alike() {
    let evil = "x@example.com\r\nBcc: victim@example.org";
    for field in ["from", "to", "cc", "bcc", "reply_to"] {
        let mut v = json!({"from": "shop@example.com", "to": "x@sink.example",
            "subject": "s", "text": "t"});
        v[field] = json!(evil);
        assert_eq!(
            code_of(compose(request(v.clone()))),
            "invalid_address",
            "{field}"
        );
        v[field] = json!([{"email": "a@example.com", "name": "A\nB"}]);
        if field == "from" || field == "reply_to" {
            v[field] = json!({"email": "a@example.com", "name": "A\nB"});
        }
        assert_eq!(
            code_of(compose(request(v))),
            "invalid_address",
            "{field} name"
        );
    }
}

#[test]
fn owned_headers_are_refused_by_name() {
    for name in [
        "From",
        "from",
        "Sender",
        "To",
        "CC",
        "Bcc",
        "Reply-To",
        "Return-Path",
        "Message-ID",
        "DKIM-Signature",
        "List-Unsubscribe",
        "Subject",
        "Content-Type",
        "X-Tidings-Track",
        "Resent-From",
    ] {
        let r = compose(request(
            json!({"from": "shop@example.com", "to": "x@sink.example",
            "subject": "s", "text": "t", "headers": {name: "ceo@victim.example"}}),
        ));
        match r {
            Err(e) => {
                assert_eq!(e.code().as_str(), "reserved_header", "{name}");
                assert!(e.to_string().contains(name), "{e}");
            }
            Ok(_) => panic!("{name} accepted"),
        }
    }
    let ok = compose(request(
        json!({"from": "shop@example.com", "to": "x@sink.example",
        "subject": "s", "text": "t", "headers": {"X-Campaign": "spring", "In-Reply-To": "<a@b.example>"}}),
    ));
    assert!(ok.is_ok());
}

#[test]
fn an_attachment_type_must_be_a_mime_type() {
    for ct in [
        "text/plain\r\nBcc: injected@evil.example",
        "text/plain\nX: y",
        "not a type",
        "text/",
        "",
    ] {
        let r = compose(request(
            json!({"from": "shop@example.com", "to": "x@sink.example",
            "subject": "s", "text": "t",
            "attachments": [{"filename": "a.txt", "content_type": ct, "content": "aGk="}]}),
        ));
        assert_eq!(code_of(r), "invalid_message", "{ct:?}");
    }
    let r = compose(request(
        json!({"from": "shop@example.com", "to": "x@sink.example",
        "subject": "s", "text": "t",
        "attachments": [{"filename": "a\r\nb.txt", "content": "aGk="}]}),
    ));
    assert_eq!(code_of(r), "invalid_message");
    let ok = compose(request(
        json!({"from": "shop@example.com", "to": "x@sink.example",
        "subject": "s", "text": "t",
        "attachments": [{"filename": "a.txt", "content_type": "text/plain; charset=utf-8", "content": "aGk="}]}),
    ));
    assert!(ok.is_ok());
}

#[test]
fn control_fields_and_the_subject_are_one_line() {
    for (field, v) in [
        ("subject", json!("a\r\nBcc: x@evil.example")),
        ("subject", json!("a\u{0}b")),
        ("custom_id", json!("a\r\nb")),
        ("group", json!("a\nb")),
        ("tags", json!(["a\r\nb"])),
    ] {
        let mut req = json!({"from": "shop@example.com", "to": "x@sink.example",
            "subject": "s", "text": "t"});
        req[field] = v;
        assert_eq!(code_of(compose(request(req))), "invalid_message", "{field}");
    }
}

/// Unfolded, with runs of white space as one space: how a header reads.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[ -~]{0,40}",
        10 => "\\PC{0,30}",
        1 => any::<String>(),
        1 => "[a-zA-Z ]{0,20}(\r\n|\n|\r|\u{0})[A-Za-z-]{1,10}: [ -~]{0,20}",
        2 => "[a-z]{1200,1500}",
        2 => "[ -~é中]{900,1100}",
    ]
}

fn email() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[a-z0-9+_-]{1,12}@[a-z]{1,10}\\.(com|example|org)",
        1 => "[a-z]{1,5}@[a-z]{1,5}\\.com(\r\n|\n)(Bcc|Subject): [ -~]{0,12}",
        1 => any::<String>(),
    ]
}

fn address() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        6 => (email(), proptest::option::of(text())).prop_map(|(e, n)| json!({"email": e, "name": n})),
        4 => email().prop_map(|e| json!(e)),
        4 => ("[A-Za-z0-9 .'-]{0,20}", email()).prop_map(|(n, e)| json!(format!("{n} <{e}>"))),
        1 => (text(), email()).prop_map(|(n, e)| json!(format!("{n} <{e}>"))),
    ]
}

/// A file name or a custom id: mostly ordinary, sometimes anything.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![8 => "[A-Za-z0-9._ -]{1,30}", 1 => text()]
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "(text|application|image)/[a-z0-9.+-]{1,12}(; charset=utf-8)?",
        1 => "text/plain(\r\n|\n)Bcc: [a-z]{1,5}@evil\\.example",
        1 => text(),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "X-[A-Za-z0-9-]{1,20}",
        1 => "(From|Bcc|To|Subject|Message-ID|Content-Type|List-Unsubscribe)",
        1 => any::<String>(),
    ]
}

fn send_request() -> impl Strategy<Value = serde_json::Value> {
    (
        address(),
        proptest::collection::vec(address(), 1..3),
        proptest::collection::vec(address(), 0..2),
        proptest::option::of(address()),
        text(),
        text(),
        proptest::collection::btree_map(header_name(), text(), 0..3),
        proptest::option::of((label(), content_type())),
        proptest::option::of(label()),
    )
        .prop_map(|(from, to, cc, reply_to, subject, body, headers, att, custom_id)| {
            let mut v = json!({"from": from, "to": to, "cc": cc, "subject": subject,
                "text": body, "headers": headers});
            if let Some(r) = reply_to {
                v["reply_to"] = r;
            }
            if let Some((filename, content_type)) = att {
                v["attachments"] =
                    json!([{"filename": filename, "content_type": content_type, "content": "aGk="}]);
            }
            if let Some(c) = custom_id {
                v["custom_id"] = json!(c);
            }
            v
        })
}

/// Header names of a message's top level, as written, in order.
fn header_names(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Whatever lands in any field, a message that is accepted has exactly
    /// the expected header fields, once each, no line over 998 octets, and
    /// reads back as what was asked for.
    #[test]
    fn whatever_the_fields_hold_the_message_has_exactly_its_headers(v in send_request()) {
        let req: SendRequest = serde_json::from_value(v.clone()).unwrap();
        let custom: BTreeMap<String, String> = req.headers.clone();
        // A refusal is a clear error, checked by the tests above; about
        // three requests in four are accepted.
        let Ok(c) = compose(req) else { return Ok(()) };
        let raw = tidings_mail::build::build(&c.parts, "mta.example.net");
        let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
        for (i, line) in lines.iter().enumerate() {
            prop_assert!(line.len() <= 999, "a line of {} octets", line.len());
            prop_assert!(i + 1 == lines.len() || line.ends_with(b"\r"), "a bare LF");
            prop_assert!(!line[..line.len().saturating_sub(1)].contains(&b'\r'), "a bare CR");
        }
        let names = header_names(&raw);
        let mut expected: Vec<String> = ["From", "To", "Subject", "Message-ID", "Date", "MIME-Version", "Content-Type"]
            .iter().map(|s| s.to_string()).collect();
        if !c.parts.cc.is_empty() { expected.push("Cc".into()); }
        if c.parts.reply_to.is_some() { expected.push("Reply-To".into()); }
        expected.extend(custom.keys().cloned());
        let mut got: Vec<String> = names.iter()
            .filter(|n| !n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
            .map(|n| n.to_ascii_lowercase()).collect();
        let mut want: Vec<String> = expected.iter().map(|n| n.to_ascii_lowercase()).collect();
        got.sort();
        want.sort();
        prop_assert_eq!(got, want, "{}", String::from_utf8_lossy(&raw[..raw.len().min(2000)]));

        let parsed = MessageParser::default().parse(&raw[..]).unwrap();
        let from = match parsed.header("From") {
            Some(HeaderValue::Address(a)) => a.first().and_then(|a| a.address.as_deref()).map(str::to_string),
            _ => None,
        };
        prop_assert_eq!(from, Some(c.parts.from.address.to_string()));
        let to: Vec<String> = match parsed.header("To") {
            Some(HeaderValue::Address(a)) => a.iter().filter_map(|a| a.address.as_deref()).map(str::to_string).collect(),
            _ => vec![],
        };
        let want_to: Vec<String> = c.parts.to.iter().map(|m| m.address.to_string()).collect();
        prop_assert_eq!(to, want_to);
        prop_assert_eq!(squash(parsed.subject().unwrap_or("")), squash(&c.parts.subject));
        let body = parsed.body_text(0).map(|b| b.replace("\r\n", "\n")).unwrap_or_default();
        let want_body = c.parts.text.clone().unwrap_or_default().replace("\r\n", "\n");
        prop_assert_eq!(body.trim_end(), want_body.trim_end());
    }
}
