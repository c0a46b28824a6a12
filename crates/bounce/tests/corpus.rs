//! The crate's one integration-test binary (one binary keeps link time
//! down): the labelled corpus with its score thresholds, focused examples,
//! and property tests.

#[path = "corpus/charsets.rs"]
mod charsets;
#[path = "../src/bin/common/mod.rs"]
mod common;
#[path = "corpus/evidence.rs"]
mod evidence;
#[path = "corpus/examples.rs"]
mod examples;
#[path = "corpus/properties.rs"]
mod properties;

use std::path::{Path, PathBuf};

use tidings_bounce::scoring::{pct, Prediction, Totals};

/// Thresholds on the bundled corpus (sisimai-dev + flufl), in percent.
const MIN_RECIPIENTS: f64 = 98.0;
const MIN_HARD_SOFT: f64 = 97.0;
const MIN_REASON: f64 = 90.0;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn corpus_scores_meet_thresholds() {
    let corpus = common::load(&fixtures()).expect("fixtures load");
    let scores = corpus.score(|s| Some(Prediction::from_report(&tidings_bounce::parse(&s.bytes))));
    let mut all = Totals::default();
    for s in &scores {
        all.add(s);
    }
    let misses: Vec<String> = scores
        .iter()
        .filter(|s| !s.recipients_ok)
        .map(|s| format!("{}/{}", s.set, s.file))
        .collect();
    assert!(all.files > 400, "only {} labelled files scored", all.files);
    assert!(
        all.recipients_pct() >= MIN_RECIPIENTS,
        "recipients {:.2}% < {MIN_RECIPIENTS}%; wrong: {misses:?}",
        all.recipients_pct()
    );
    assert!(
        pct(all.hard) >= MIN_HARD_SOFT,
        "hard/soft {:.2}%",
        pct(all.hard)
    );
    assert!(
        pct(all.reason) >= MIN_REASON,
        "reason {:.2}%",
        pct(all.reason)
    );
}

#[test]
fn unlabelled_corpus_messages_parse() {
    let corpus = common::load(&fixtures()).expect("fixtures load");
    for s in &corpus.samples {
        let r = tidings_bounce::parse(&s.bytes);
        for b in r.bounced() {
            assert!(
                tidings_bounce::is_valid_address(&b.email),
                "{}: {}",
                s.file,
                b.email
            );
        }
    }
}
