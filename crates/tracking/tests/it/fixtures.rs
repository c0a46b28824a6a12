//! The fixtures in `tests/fixtures/`, each rewritten with everything on.

use crate::support::*;

fn strs(links: &[url::Url]) -> Vec<&str> {
    links.iter().map(url::Url::as_str).collect()
}

/// Put the original URLs back where the tracking URLs are, and the
/// placeholder where the unsubscribe URL is.
fn untrack(text: &str, links: &[url::Url]) -> String {
    let mut out = text.to_string();
    for (url, claims) in tracking_urls(text, "c") {
        let tidings_tracking::TokenKind::Click { link_index } = claims.kind else {
            unreachable!()
        };
        out = out.replacen(&url, links[link_index as usize].as_str(), 1);
    }
    for (url, _) in tracking_urls(text, "u") {
        out = out.replacen(&url, "{{tidings_unsubscribe_url}}", 1);
    }
    out
}

#[test]
fn responsive_template_with_qp_parts_and_an_attachment() {
    let raw = fixture("responsive-qp.eml");
    let r = run(&raw, &opts());
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(
        strs(&r.links),
        [
            // text/plain, in order; trailing punctuation is not URL
            "https://acme.example/orders/1042?utm_source=email&utm_medium=transactional",
            "https://acme.example/help/shipping_(intl)",
            "https://acme.example/help",
            // text/html: `&amp;` decoded, `&copy=1` kept (as browsers do),
            // `&#104;` decoded, whitespace trimmed, unquoted and
            // single-quoted values, uppercase tags, <area>
            "https://acme.example/?utm_source=email&utm_medium=transactional&utm_campaign=shipped",
            "https://acme.example/orders/1042/track?src=email&lang=en",
            "https://acme.example/orders/1042/delivery",
            "https://acme.example/p/kettle-2000?ref=order&v=2",
            "https://acme.example/p/kettle-2000?ref=order&v=2",
            "https://acme.example/p/mug?ref=order#reviews",
            "https://acme.example/p/mug?ref=order&copy=1",
            "https://acme.example/stores/berlin",
            "https://acme.example/privacy",
            "https://acme.example/preferences?email=ana%40example.org&token=x%2By",
        ]
    );

    let before = python(&raw);
    let after = python(&r.message);
    assert!(after.defects.is_empty(), "{:?}", after.defects);
    assert_eq!(
        after.leaves(),
        ["text/plain", "text/html", "application/pdf"]
    );
    for p in &after.parts {
        assert!(p.defects.is_empty(), "{}: {:?}", p.content_type, p.defects);
    }

    // Headers: one List-Unsubscribe, ours, replacing the sender's; the
    // others as they were.
    let lu = after.header_all("List-Unsubscribe");
    assert_eq!(lu.len(), 1, "{lu:?}");
    let unsub = tracking_urls(lu[0], "u");
    assert_eq!(lu[0], format!("<{}>", unsub[0].0));
    assert_eq!(
        after.header_all("List-Unsubscribe-Post"),
        ["List-Unsubscribe=One-Click"]
    );
    for name in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
    ] {
        assert_eq!(after.header_all(name), before.header_all(name), "{name}");
    }

    // Text: links and placeholder replaced, nothing else changed.
    let text = after.part("text/plain").text();
    assert_eq!(click_indices(text), [0, 1, 2]);
    assert!(text.contains(&format!("Track it here: {BASE}/c/")));
    assert!(
        text.contains(&format!("Unsubscribe: {}\r\n", unsub[0].0)),
        "{text}"
    );
    assert_eq!(untrack(text, &r.links), before.part("text/plain").text());

    // HTML: links in order, pixel right before </body>, comments (Outlook
    // conditionals and their links included) and everything outside the
    // link tags unchanged.
    let html = after.part("text/html").text();
    let html_before = before.part("text/html").text();
    assert_eq!(click_indices(html), (3..=12).collect::<Vec<_>>());
    let pixel = &tracking_urls(html, "o")[0].0;
    assert!(html.contains(&format!("<img src=\"{pixel}\" width=\"1\" height=\"1\"")));
    let body_end = html.find("</body>").unwrap();
    assert!(
        html[..body_end].trim_end().ends_with("/>") && html[..body_end].contains(pixel.as_str())
    );
    assert_eq!(comments(html), comments(html_before));
    assert!(comments(html)
        .iter()
        .any(|c| c.contains("href=\"https://acme.example/orders/1042/track?src=mso\"")));
    assert_eq!(without_link_tags(html), without_link_tags(html_before));
    for kept in [
        "<a href=\"mailto:support@acme.example?subject=Order%201042\">",
        "<a href=\"tel:+4930123456\">",
        "<a href=\"#top\">",
        "<a href=\"/account/orders\">",
        "href=\"/stores/paris\"",
        "<a href=\"https://acme.example/receipts/1042?sig=abc123\">download",
        "<a href=\"https://acme.example/legacy/1042\">",
    ] {
        assert!(html.contains(kept), "{kept} not in the HTML");
    }
    assert!(!html.contains("data-tidings-notrack") && !html.contains("clicktracking"));
    assert!(html.contains(&format!(
        "<a href=\"{}\" style=\"color:#999999;\">Unsubscribe</a>",
        unsub[0].0
    )));
    assert!(!html.contains("tidings_unsubscribe_url"));

    // The attachment, byte for byte: decoded and as raw MIME.
    assert_eq!(
        after.part("application/pdf").payload(),
        before.part("application/pdf").payload()
    );
    assert_eq!(
        raw_part(&r.message, "=_mixed_7f3a", 1),
        raw_part(&raw, "=_mixed_7f3a", 1)
    );
    // Preamble and the mixed part's header, as they were.
    let pre = raw
        .windows(15)
        .position(|w| w == b"This is a multi")
        .unwrap();
    let pre_after = r
        .message
        .windows(15)
        .position(|w| w == b"This is a multi")
        .unwrap();
    assert_eq!(r.message[pre_after..pre_after + 120], raw[pre..pre + 120]);

    // Quoted-printable stays quoted-printable, lines ≤ 76.
    let html_raw = raw_part(&r.message, "=_alt_19c2", 1);
    assert!(std::str::from_utf8(html_raw)
        .unwrap()
        .contains("Content-Transfer-Encoding: quoted-printable\r\n"));
    for line in html_raw.split(|&b| b == b'\n').skip(3) {
        assert!(line.len() <= 77, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn windows_1252_part_is_rewritten_in_place() {
    let raw = fixture("latin1-8bit.eml");
    let r = run(&raw, &opts());
    assert_eq!(
        strs(&r.links),
        [
            "https://hotel.example/r/7781?lang=fr",
            "https://hotel.example/annuler?id=7781&ref=mail"
        ]
    );
    // No transcoding: same charset, same transfer encoding, and the body
    // is the original once links are put back and the pixel (at the end:
    // there is no </body>) is taken away.
    let text = String::from_utf8_lossy(&r.message).into_owned();
    assert!(text.contains(
        "Content-Type: text/html; charset=windows-1252\r\nContent-Transfer-Encoding: 8bit\r\n"
    ));
    let split = |m: &[u8]| {
        let p = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (m[..p + 4].to_vec(), m[p + 4..].to_vec())
    };
    let (_, body_before) = split(&raw);
    let (_, body_after) = split(&r.message);
    let mut restored = body_after.clone();
    let pixel_at = restored.windows(5).rposition(|w| w == b"<img ").unwrap();
    assert!(restored.ends_with(b" />"));
    restored.truncate(pixel_at);
    let clicks = tracking_urls(&String::from_utf8_lossy(&restored), "c");
    let originals = [
        "https://hotel.example/r/7781?lang=fr",
        "https://hotel.example/annuler?id=7781&amp;ref=mail",
    ];
    let mut restored = String::from_utf8_lossy(&restored).into_owned().into_bytes();
    for ((url, _), orig) in clicks.iter().zip(originals) {
        let p = restored
            .windows(url.len())
            .position(|w| w == url.as_bytes())
            .unwrap();
        restored.splice(p..p + url.len(), orig.bytes());
    }
    // (lossy conversion only touched non-UTF-8 bytes, so compare lossy)
    assert_eq!(
        String::from_utf8_lossy(&restored),
        String::from_utf8_lossy(&body_before)
    );
    assert_eq!(
        body_after.iter().filter(|&&b| b >= 0x80).count(),
        body_before.iter().filter(|&&b| b >= 0x80).count()
    );

    let after = python(&r.message);
    assert!(after.defects.is_empty());
    let html = after.part("text/html").text();
    assert!(
        html.contains("Bonjour Renée, votre réservation à l’hôtel est confirmée — prix : 120 €.")
    );
    assert_eq!(click_indices(html), [0, 1]);
    assert_eq!(tracking_urls(html, "o").len(), 1);
}

#[test]
fn lf_message_with_a_base64_html_part() {
    let raw = fixture("lf-base64.eml");
    let r = run(&raw, &opts());
    assert!(!r.message.contains(&b'\r'), "line breaks stay LF");
    assert_eq!(
        strs(&r.links),
        [
            "https://app.example/verify?code=493117&u=42",
            "https://app.example/security"
        ]
    );
    // The text part had nothing to change: identical bytes.
    assert_eq!(raw_part(&r.message, "b1", 0), raw_part(&raw, "b1", 0));
    // The sender's List-Unsubscribe pair is replaced by ours.
    let after = python(&r.message);
    let lu = after.header_all("List-Unsubscribe");
    assert_eq!(lu.len(), 1);
    assert!(lu[0].starts_with(&format!("<{BASE}/u/")), "{lu:?}");
    assert_eq!(
        after.header_all("List-Unsubscribe-Post"),
        ["List-Unsubscribe=One-Click"]
    );

    let part = after.part("text/html");
    assert_eq!(part.cte.as_deref(), Some("base64"));
    let html = part.text();
    assert_eq!(click_indices(html), [0, 1]);
    assert!(html.contains("日本語のテキストも大丈夫です。 Emoji: ✅"));
    let pixel = html.find(&format!("<img src=\"{BASE}/o/")).unwrap();
    assert!(
        html[pixel..].contains("/></BODY>"),
        "pixel right before </BODY>"
    );
    let html_raw = raw_part(&r.message, "b1", 1);
    let lines: Vec<&[u8]> = html_raw.split(|&b| b == b'\n').collect();
    assert!(lines.iter().all(|l| l.len() <= 76));
    assert!(
        html_raw.ends_with(b"\n\n"),
        "the blank line before the closing delimiter is kept"
    );
}

#[test]
fn japanese_charsets_are_kept() {
    let raw = fixture("japanese.eml");
    let r = run(&raw, &opts());
    assert_eq!(
        strs(&r.links),
        [
            "https://shop.example.jp/o/5521",
            "https://shop.example.jp/o/5521"
        ]
    );
    let before = python(&raw);
    let after = python(&r.message);
    assert_eq!(after.leaves(), ["text/plain", "text/html", "image/png"]);

    let text = after.part("text/plain");
    assert_eq!(text.charset.as_deref(), Some("iso-2022-jp"));
    assert_eq!(click_indices(text.text()), [0]);
    assert_eq!(
        untrack(text.text(), &r.links),
        before.part("text/plain").text()
    );
    // ISO-2022-JP was decoded and encoded back; it is still 7-bit and, with
    // the link put back, the same bytes.
    let raw_text = raw_part(&r.message, "----=_jp_alt", 0);
    assert!(raw_text.is_ascii());
    let restored = untrack(&String::from_utf8_lossy(raw_text), &r.links);
    assert_eq!(restored.as_bytes(), raw_part(&raw, "----=_jp_alt", 0));

    // Shift_JIS HTML: rewritten in place, so even half-width katakana is
    // untouched.
    let html = after.part("text/html");
    assert_eq!(html.charset.as_deref(), Some("shift_jis"));
    assert!(html.text().contains("ソフト表示テスト：ポイント・ｱｲｳ"));
    assert!(html
        .text()
        .contains("<img src=\"cid:logo@shop\" alt=\"ロゴ\">"));
    assert_eq!(click_indices(html.text()), [1]);
    assert_eq!(
        untrack(&without_link_tags(html.text()), &r.links),
        without_link_tags(before.part("text/html").text())
    );
    assert_eq!(
        after.part("image/png").payload(),
        before.part("image/png").payload()
    );
    assert_eq!(
        raw_part(&r.message, "----=_jp_rel", 1),
        raw_part(&raw, "----=_jp_rel", 1)
    );
}

#[test]
fn forwarded_messages_and_html_attachments_are_left_alone() {
    let raw = fixture("forwarded.eml");
    let r = run(&raw, &opts());
    assert_eq!(strs(&r.links), ["https://acme.example/ticket/77"]);
    assert_eq!(raw_part(&r.message, "outer", 1), raw_part(&raw, "outer", 1));
    assert_eq!(raw_part(&r.message, "outer", 2), raw_part(&raw, "outer", 2));
    let after = python(&r.message);
    let first = &after
        .parts
        .iter()
        .find(|p| p.content_type == "text/html")
        .unwrap();
    assert_eq!(click_indices(first.text()), [0]);
    assert!(
        first.text().trim_end().ends_with(" />"),
        "the pixel closes a body-less part"
    );
    let attachment = after
        .parts
        .iter()
        .find(|p| p.filename.as_deref() == Some("page.html"))
        .unwrap();
    assert_eq!(attachment.disposition.as_deref(), Some("attachment"));
    assert!(attachment
        .text()
        .contains("https://attachment.example/keep"));
    assert!(
        String::from_utf8_lossy(&r.message).contains("<a href=\"https://forwarded.example/keep\">")
    );
}
