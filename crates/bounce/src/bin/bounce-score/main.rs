//! Scores the classifier (and, optionally, Sisimai 4's output) against a
//! labelled corpus folder.
//!
//! ```text
//! bounce-score <corpus-dir> [--sisimai <sisimai4.jsonl>] [--quiet]
//! ```
//!
//! `--sisimai` takes the output of `tools/sisimai4-dump.pl` and scores it
//! with the same code, so the two can be compared line for line.
//!
//! After the in-sample score comes leave-one-family-out cross-validation
//! (see `tidings_bounce::crossval`): every family scored with the rules
//! only it supports switched off, pooled, and the mean and worst fold.

#[path = "../common/mod.rs"]
mod common;
mod crossval;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Deserialize;
use tidings_bounce::scoring::{map_sisimai_reason, pct, FileScore, Prediction, Row, Totals};

#[derive(Deserialize)]
struct SisimaiLine {
    set: String,
    file: String,
    results: Vec<SisimaiResult>,
}

#[derive(Deserialize)]
struct SisimaiResult {
    recipient: String,
    reason: String,
    status: String,
    hardbounce: bool,
    feedbacktype: String,
    action: String,
}

fn sisimai_prediction(results: &[SisimaiResult]) -> Prediction {
    let rows: Vec<Row> = results
        .iter()
        .map(|r| Row {
            email: r.recipient.to_ascii_lowercase(),
            reason: map_sisimai_reason(&r.reason).to_string(),
            status: r.status.clone(),
            hard: r.hardbounce,
            temporary: r.action == "delayed" || r.action.is_empty() && r.status.starts_with('4'),
            feedback_type: r.feedbacktype.clone(),
        })
        .collect();
    Prediction {
        kind: Prediction::kind_of_reasons(rows.iter().map(|r| r.reason.as_str())),
        feedback_type: rows
            .first()
            .map(|r| r.feedback_type.clone())
            .unwrap_or_default(),
        rows,
    }
}

/// A percentage, or "n/a" when nothing was compared.
pub(crate) fn show(x: (usize, usize)) -> String {
    if x.1 == 0 {
        "n/a".into()
    } else {
        format!("{:.2}%", pct(x))
    }
}

pub(crate) fn print_report(
    title: &str,
    scores: &[FileScore],
    quiet: bool,
) -> BTreeMap<String, Totals> {
    println!("== {title}");
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    for s in scores {
        if !quiet {
            println!(
                "{:<12} {:<34} {:<10} rcpt {}/{} {} hard {}/{} status {}/{} reason {}/{}{}{}",
                s.set,
                s.file,
                s.kind,
                s.found,
                s.expected,
                if s.recipients_ok { "ok " } else { "BAD" },
                s.hard.0,
                s.hard.1,
                s.status.0,
                s.status.1,
                s.reason.0,
                s.reason.1,
                if s.feedback.1 > 0 {
                    format!(" feedback {}/{}", s.feedback.0, s.feedback.1)
                } else {
                    String::new()
                },
                if s.notes.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", s.notes.join("; "))
                },
            );
        }
        totals.entry(s.set.clone()).or_default().add(s);
        totals.entry("all".into()).or_default().add(s);
    }
    for (set, t) in &totals {
        println!(
            "TOTAL {title} {set:<12} files {:>3}  recipients {:>7}  hard/soft {:>7}  status {:>7}  reason {:>7}  feedback-type {:>7}",
            t.files,
            format!("{:.2}%", t.recipients_pct()),
            show(t.hard),
            show(t.status),
            show(t.reason),
            show(t.feedback),
        );
    }
    totals
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut sisimai: Option<PathBuf> = None;
    let mut quiet = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sisimai" => sisimai = args.next().map(PathBuf::from),
            "--quiet" | "-q" => quiet = true,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: bounce-score <corpus-dir> [--sisimai <sisimai4.jsonl>] [--quiet]");
        return ExitCode::from(2);
    };
    let corpus = match common::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bounce-score: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let scores = corpus.score(|s| Some(Prediction::from_report(&tidings_bounce::parse(&s.bytes))));
    let in_sample = print_report("tidings", &scores, quiet);
    crossval::run(&corpus, &in_sample["all"], quiet);
    if let Some(path) = sisimai {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("bounce-score: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let mut by_file: BTreeMap<(String, String), Vec<SisimaiResult>> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<SisimaiLine>(line) {
                Ok(l) => {
                    by_file.insert((l.set, l.file), l.results);
                }
                Err(e) => {
                    eprintln!("bounce-score: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        let scores = corpus.score(|s| {
            by_file
                .get(&(s.set.to_string(), s.file.clone()))
                .map(|r| sisimai_prediction(r))
        });
        print_report("sisimai4", &scores, quiet);
    }
    ExitCode::SUCCESS
}
