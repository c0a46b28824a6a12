//! Synthetic messages for the edges: charsets that must be transcoded,
//! transfer encodings that must change, limits, options, malformed input.

use base64::Engine;
use proptest::prelude::*;
use tidings_tracking::rewrite::{rewrite, Limits, Note, RewriteError, RewriteOptions};

use crate::support::*;

const HEAD: &str =
    "From: a@example.com\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n";

fn single(content_type: &str, cte: &str, body: &[u8]) -> Vec<u8> {
    let mut m =
        format!("{HEAD}Content-Type: {content_type}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
            .into_bytes();
    m.extend_from_slice(body);
    m
}

fn all_off() -> RewriteOptions {
    RewriteOptions {
        track_opens: false,
        track_clicks: false,
        unsubscribe: false,
        ..opts()
    }
}

#[test]
fn utf16_html_becomes_utf8_with_its_charset_and_meta_updated() {
    let html = "<html><head><meta charset=\"utf-16\"></head><body><p>Grüße</p><a href=\"https://x.example/ü?a=1&amp;b=2\">x</a></body></html>";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(html.encode_utf16().flat_map(u16::to_le_bytes));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&utf16);
    let raw = single(
        "text/html; charset=\"UTF-16\"; format=x",
        "base64",
        b64.as_bytes(),
    );
    let r = run(&raw, &opts());
    assert_eq!(r.links[0].as_str(), "https://x.example/%C3%BC?a=1&b=2");
    let text = String::from_utf8_lossy(&r.message);
    assert!(
        text.contains("Content-Type: text/html; format=x; charset=utf-8\r\n"),
        "{text}"
    );
    let after = python(&r.message);
    let part = after.part("text/html");
    assert_eq!(part.charset.as_deref(), Some("utf-8"));
    assert!(part.text().contains("<meta charset=\"utf-8\">"));
    assert!(part.text().contains("<p>Grüße</p>"));
    assert_eq!(click_indices(part.text()), [0]);
}

#[test]
fn non_ascii_queries_are_encoded_in_the_documents_charset_like_a_browser() {
    let raw = single(
        "text/html; charset=iso-8859-1",
        "8bit",
        b"<a href=\"https://x.example/caf\xe9?q=caf\xe9\">caf\xe9</a>",
    );
    let r = run(&raw, &opts());
    // Path in UTF-8, query in the page's charset (URL Standard, "query state").
    assert_eq!(r.links[0].as_str(), "https://x.example/caf%C3%A9?q=caf%E9");
    let tail = b"\">caf\xe9</a><img src=";
    assert!(
        r.message.windows(tail.len()).any(|w| w == tail),
        "the text stays Latin-1"
    );
}

#[test]
fn a_7bit_part_whose_line_grows_too_long_becomes_quoted_printable() {
    let filler = "x".repeat(960);
    let body = format!("<p>{filler}<a href=\"https://x.example/a\">a</a></p>\r\n");
    let raw = single("text/html; charset=us-ascii", "7bit", body.as_bytes());
    let r = run(&raw, &opts());
    let text = String::from_utf8_lossy(&r.message);
    assert!(text.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
    assert!(!text.contains("7bit"));
    assert!(text.lines().all(|l| l.len() <= 998));
    let html = python(&r.message).part("text/html").text().to_string();
    assert!(html.starts_with(&format!("<p>{filler}<a href=\"{BASE}/c/")));
}

#[test]
fn a_part_without_a_transfer_encoding_header_gets_one_when_needed() {
    let long = format!(
        "{HEAD}Content-Type: text/plain\r\n\r\n{} https://x.example/\r\n",
        "y".repeat(990)
    );
    let r = run(long.as_bytes(), &opts());
    let text = String::from_utf8_lossy(&r.message);
    assert!(text.contains("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\nList-Unsubscribe:"));
    assert_eq!(
        click_indices(python(&r.message).part("text/plain").text()),
        [0]
    );
}

#[test]
fn nothing_to_do_means_identical_bytes() {
    let raw = fixture("responsive-qp.eml");
    let plain = String::from_utf8(raw)
        .unwrap()
        .replace("{{tidings_unsubscribe_url}}", "https://acme.example/unsub");
    let plain = plain
        .replace(" data-tidings-notrack", "")
        .replace("clicktracking=3Doff ", "");
    let r = run(plain.as_bytes(), &all_off());
    assert!(r.links.is_empty());
    assert_eq!(r.message, plain.as_bytes());
}

#[test]
fn opens_only() {
    let raw = fixture("lf-base64.eml");
    let o = RewriteOptions {
        track_opens: true,
        ..all_off()
    };
    let r = run(&raw, &o);
    assert!(r.links.is_empty());
    let after = python(&r.message);
    assert!(after
        .header_all("List-Unsubscribe")
        .iter()
        .all(|v| v.contains("old-unsub")));
    let html = after.part("text/html").text();
    assert!(html.contains("href=\"https://app.example/security\""));
    assert_eq!(tracking_urls(html, "o").len(), 1);
}

#[test]
fn placeholders_are_replaced_even_with_unsubscribe_off() {
    let raw = single(
        "text/html",
        "7bit",
        b"<a href=\"%7B%7Btidings_unsubscribe_url%7D%7D\">stop</a> {{tidings_unsubscribe_url}}",
    );
    let r = run(&raw, &all_off());
    let text = String::from_utf8(r.message).unwrap();
    let u = tracking_urls(&text, "u");
    assert_eq!(u.len(), 2);
    assert_eq!(u[0].0, u[1].0, "one unsubscribe token per recipient");
    assert!(!text.contains("List-Unsubscribe"));
}

#[test]
fn the_mailto_entry_carries_the_token() {
    let o = RewriteOptions {
        unsubscribe_mailto: Some("unsub@t.example.com".into()),
        ..opts()
    };
    let r = run(&fixture("latin1-8bit.eml"), &o);
    let text = String::from_utf8_lossy(&r.message);
    let (url, _) = &tracking_urls(&text, "u")[0];
    let token = url.rsplit('/').next().unwrap();
    let want = format!("List-Unsubscribe: <{url}>,\r\n <mailto:unsub@t.example.com?subject=unsubscribe:{token}>\r\n");
    assert!(text.contains(&want), "{text}");
    let bad = RewriteOptions {
        unsubscribe_mailto: Some("a@b>, <https://evil.example".into()),
        ..opts()
    };
    let tokens = |_k| String::from("x");
    assert_eq!(
        rewrite(b"From: a@b\r\n\r\nx", &bad, &tokens).unwrap_err(),
        RewriteError::BadMailto
    );
}

#[test]
fn a_base_url_with_a_path() {
    let o = RewriteOptions {
        base_url: "https://example.com/track/".parse().unwrap(),
        ..opts()
    };
    let r = run(
        &single("text/plain", "7bit", b"see https://x.example/ now"),
        &o,
    );
    let text = String::from_utf8(r.message).unwrap();
    assert!(text.contains("see https://example.com/track/c/"), "{text}");
}

#[test]
fn rewriting_twice_tracks_nothing_new() {
    let once = run(&fixture("responsive-qp.eml"), &opts());
    let twice = run(
        &once.message,
        &RewriteOptions {
            track_opens: false,
            unsubscribe: false,
            ..opts()
        },
    );
    // Only the links the sender had opted out: their marks were removed
    // the first time. No tracking URL is wrapped again.
    let links: Vec<&str> = twice.links.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        links,
        [
            "https://acme.example/receipts/1042?sig=abc123",
            "https://acme.example/legacy/1042"
        ]
    );
}

#[test]
fn limits() {
    let tokens = |_k| String::from("tok");
    let small = RewriteOptions {
        limits: Limits {
            max_message_bytes: 10,
            ..Limits::default()
        },
        ..opts()
    };
    assert!(matches!(
        rewrite(HEAD.as_bytes(), &small, &tokens),
        Err(RewriteError::TooLarge { .. })
    ));
    assert_eq!(
        rewrite(b"\r\nno headers", &opts(), &tokens).unwrap_err(),
        RewriteError::NoHeaders
    );

    let few_links = RewriteOptions {
        limits: Limits {
            max_links: 1,
            ..Limits::default()
        },
        ..opts()
    };
    let r = run(
        &single(
            "text/plain",
            "7bit",
            b"https://a.example/ https://b.example/",
        ),
        &few_links,
    );
    assert_eq!(r.links.len(), 1);
    assert_eq!(r.notes, [Note::TooManyLinks]);
    assert!(String::from_utf8_lossy(&r.message).contains(" https://b.example/"));

    // Nesting beyond max_depth is copied without looking inside.
    let mut m = String::from(HEAD);
    for d in 0..20 {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"d{d}\"\r\n\r\n--d{d}\r\n"
        ));
    }
    m.push_str("Content-Type: text/html\r\n\r\n<a href=\"https://deep.example/\">x</a>\r\n");
    for d in (0..20).rev() {
        m.push_str(&format!("--d{d}--\r\n"));
    }
    let r = run(m.as_bytes(), &opts());
    assert!(r.links.is_empty());
    assert!(r.notes.contains(&Note::TooDeep));
    assert!(python(&r.message).defects.is_empty());
}

#[test]
fn parts_that_cannot_be_decoded_are_left_alone() {
    let bad64 = single(
        "text/html; charset=utf-8",
        "base64",
        b"PGE+*** not base64 ***",
    );
    let r = run(&bad64, &opts());
    assert_eq!(r.notes, [Note::BadTransferEncoding]);
    assert!(r.message.ends_with(b"*** not base64 ***"));

    let uue = single("text/plain", "x-uuencode", b"begin 644 x\r\n");
    assert_eq!(
        run(&uue, &opts()).notes,
        [Note::UnknownTransferEncoding("x-uuencode".into())]
    );

    let kr = single(
        "text/html; charset=iso-2022-kr",
        "7bit",
        b"<a href=\"https://x.example/\">x</a>",
    );
    let r = run(&kr, &opts());
    assert_eq!(r.notes, [Note::UndecodableCharset("iso-2022-kr".into())]);
    assert!(r.links.is_empty());
}

#[test]
fn html_the_parser_cannot_follow_is_left_alone_and_its_links_forgotten() {
    // lol_html's own example of markup it refuses to guess about.
    let html = b"<a href=\"https://x.example/\">x</a><select><xmp><script>\"use strict\";</script></select>";
    let raw = single("text/html", "7bit", html);
    let r = run(&raw, &opts());
    assert!(
        matches!(r.notes.as_slice(), [Note::HtmlNotRewritten(_)]),
        "{:?}",
        r.notes
    );
    assert!(r.links.is_empty());
    assert!(r.message.ends_with(html));
}

#[test]
fn a_utf16_part_without_links_keeps_its_charset() {
    let text: Vec<u8> = "no links here"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&text);
    let raw = single("text/plain; charset=utf-16be", "base64", b64.as_bytes());
    let r = run(&raw, &all_off());
    assert_eq!(r.message, raw);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..600), ct in prop::sample::select(vec![
        "text/html", "text/plain; charset=shift_jis", "multipart/mixed; boundary=b", "text/html; charset=utf-16be",
    ]), cte in prop::sample::select(vec!["7bit", "quoted-printable", "base64"])) {
        let raw = single(ct, cte, &body);
        let _ = run(&raw, &opts());
    }

    #[test]
    fn text_without_links_is_untouched(body in "[a-zA-Z0-9 .,\r\n<>=/&;-]{0,400}") {
        let raw = single("text/html; charset=utf-8", "quoted-printable", body.as_bytes());
        let r = run(&raw, &all_off());
        prop_assert_eq!(r.message, raw);
    }
}
