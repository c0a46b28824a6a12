//! Property tests: no input panics, and the output stays bounded.

use proptest::prelude::*;
use tidings_bounce::{parse, Report};

use super::{common, fixtures};

/// Upper bounds any report must respect, whatever the input.
fn assert_bounded(r: &Report) {
    for b in r.bounced() {
        assert!(b.diagnostic.chars().count() <= 2000);
        assert!(tidings_bounce::is_valid_address(&b.email));
    }
    assert!(r.bounced().len() <= 1000);
    if let Report::Complaint(c) = r {
        assert!(c.recipients.len() <= 1000);
    }
}

fn samples() -> Vec<Vec<u8>> {
    let corpus = common::load(&fixtures()).expect("fixtures load");
    corpus.samples.into_iter().map(|s| s.bytes).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        assert_bounded(&parse(&bytes));
    }

    #[test]
    fn header_like_noise_never_panics(lines in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,60}", 0..40), body in "[ -~\r\n]{0,400}") {
        let msg = format!("{}\n\n{}", lines.join("\n"), body);
        assert_bounded(&parse(msg.as_bytes()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mutated_corpus_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        thread_local!(static SAMPLES: Vec<Vec<u8>> = samples());
        let mut msg = SAMPLES.with(|s| pick.get(s).clone());
        for (at, byte, op) in edits {
            if msg.is_empty() {
                break;
            }
            let i = at.index(msg.len());
            match op {
                0 => msg[i] = byte,
                1 => msg.insert(i, byte),
                2 => { msg.remove(i); }
                _ => msg.splice(i..i, b"\n--".iter().copied()).for_each(drop),
            }
        }
        if !msg.is_empty() {
            let end = cut.index(msg.len() + 1).max(msg.len() / 2);
            msg.truncate(end);
        }
        assert_bounded(&parse(&msg));
    }
}

#[test]
fn deep_mime_nesting_is_bounded() {
    let mut msg = String::from("From: MAILER-DAEMON@x.example\nSubject: Undelivered\n");
    for i in 0..2000 {
        msg.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    msg.push_str("Content-Type: text/plain\n\n<a@b.example>: 550 5.1.1 user unknown\n");
    assert_bounded(&parse(msg.as_bytes()));
}

#[test]
fn huge_headers_and_endless_boundaries_are_bounded() {
    let mut msg = String::from("From: MAILER-DAEMON@x.example\nSubject: Undelivered\nX-Long: ");
    msg.push_str(&"a".repeat(3 * 1024 * 1024));
    msg.push_str("\nContent-Type: multipart/report; boundary=\"z\"\n\n");
    for _ in 0..100_000 {
        msg.push_str("--z\n");
    }
    assert_bounded(&parse(msg.as_bytes()));
    let many_rcpts: String = (0..20_000)
        .map(|i| {
            format!("Final-Recipient: rfc822; u{i}@x.example\nAction: failed\nStatus: 5.1.1\n\n")
        })
        .collect();
    let dsn = format!(
        "From: MAILER-DAEMON@x.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"q\"\n\n--q\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n{many_rcpts}--q--\n"
    );
    assert_bounded(&parse(dsn.as_bytes()));
}
