//! The leave-one-family-out part of `bounce-score`.

use std::collections::BTreeMap;

use tidings_bounce::crossval::{self, Observed};
use tidings_bounce::rules::{catalogue, RuleId, Rules};
use tidings_bounce::scoring::{FileScore, Prediction, Totals};

use crate::common::{Corpus, Sample};
use crate::show;

/// Parses one sample with `rules`, scored against its label (None when
/// unlabelled), and what it tells about rule support.
fn run_one(corpus: &Corpus, s: &Sample, rules: &mut Rules) -> Option<(FileScore, Observed)> {
    rules.clear();
    let report = tidings_bounce::parse_with(&s.bytes, rules);
    let p = Prediction::from_report(&report);
    let (score, right) = match s.set {
        "sisimai-dev" => {
            let l = corpus.sisimai.get(&s.file)?;
            let score = tidings_bounce::scoring::score_sisimai(&s.file, l, &p);
            (score, crossval::rows_right_sisimai(l, &p))
        }
        _ => {
            let l = corpus.flufl.get(&s.file)?;
            let score = tidings_bounce::scoring::score_flufl(l, &p);
            (score, crossval::rows_right_flufl(l, &p))
        }
    };
    let rows = report
        .bounced()
        .iter()
        .zip(rules.matched())
        .zip(right)
        .map(|((b, m), ok)| (m.clone(), b.reason, ok))
        .collect();
    let observed = Observed {
        family: crossval::family(&s.file),
        rows,
    };
    Some((score, observed))
}

/// Prints the folds (unless `quiet`) and the summary next to `in_sample`:
/// first with the corpus-tuned rules left out, then strict (every rule).
pub fn run(corpus: &Corpus, in_sample: &Totals, quiet: bool) {
    let rules = catalogue();
    let tuned = |id: RuleId| rules[id.0 as usize].source == crossval::CORPUS_TUNED;
    folds(
        corpus,
        in_sample,
        quiet,
        "corpus-tuned rules left out",
        &tuned,
    );
    folds(
        corpus,
        in_sample,
        true,
        "strict: every rule left out",
        &|_| true,
    );
}

fn folds(
    corpus: &Corpus,
    in_sample: &Totals,
    quiet: bool,
    title: &str,
    eligible: &dyn Fn(RuleId) -> bool,
) {
    let mut observed = Vec::new();
    for s in &corpus.samples {
        if let Some((_, o)) = run_one(corpus, s, &mut Rules::recording()) {
            observed.push(o);
        }
    }
    let catalogue = catalogue();
    let support = crossval::support(&observed, |id| catalogue[id.0 as usize].reason);
    let mut families: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in &corpus.samples {
        families
            .entry(crossval::family(&s.file))
            .or_default()
            .push(s);
    }
    println!(
        "== leave one family out ({} families; {title})",
        families.len()
    );
    let mut pooled = Totals::default();
    let mut folds: Vec<(String, Totals)> = Vec::new();
    for (family, samples) in &families {
        let off = crossval::fitted_to(&support, family, eligible);
        let mut rules = Rules::without(off.iter().copied());
        let mut t = Totals::default();
        for s in samples {
            if let Some((score, _)) = run_one(corpus, s, &mut rules) {
                if !quiet && score.reason.0 < score.reason.1 {
                    println!("  {family}: {} [{}]", score.file, score.notes.join("; "));
                }
                t.add(&score);
                pooled.add(&score);
            }
        }
        if t.files == 0 {
            continue;
        }
        if !quiet {
            println!(
                "fold {family:<16} files {:>3}  rules off {:>3}  recipients {:>7}  hard/soft {:>7}  reason {:>7}",
                t.files,
                off.len(),
                format!("{:.2}%", t.recipients_pct()),
                show(t.hard),
                show(t.reason),
            );
        }
        if !quiet && !off.is_empty() {
            let names: Vec<String> = off
                .iter()
                .map(|id| {
                    let r = &catalogue[id.0 as usize];
                    format!("{}:{:?}", r.table, r.text)
                })
                .collect();
            println!("  rules off: {}", names.join(", "));
        }
        folds.push((family.to_string(), t));
    }
    let line = |name: &str, t: &Totals| {
        println!(
            "{name:<18} recipients {:>7}  hard/soft {:>7}  reason {:>7}",
            format!("{:.2}%", t.recipients_pct()),
            show(t.hard),
            show(t.reason),
        )
    };
    line("IN-SAMPLE", in_sample);
    line("LOFO pooled", &pooled);
    // The worst of all folds is usually a family of one or two messages;
    // the worst of the folds with at least 10 comparisons says more.
    let metric = |f: fn(&Totals) -> (usize, usize)| {
        let all = folds.iter().map(|(n, t)| (n.as_str(), f(t)));
        let big = all.clone().filter(|(_, x)| x.1 >= 10);
        match (crossval::mean_and_worst(all), crossval::mean_and_worst(big)) {
            (Some((mean, worst, name, n)), big) => {
                let big = big.map_or("n/a".to_string(), |(_, w, name, n)| {
                    format!("{w:>6.2}% ({name}, {n})")
                });
                format!(
                    "mean {mean:>6.2}%  worst {worst:>6.2}% ({name}, {n})  worst of >= 10: {big}"
                )
            }
            _ => "n/a".to_string(),
        }
    };
    println!(
        "LOFO folds         recipients {}\n                   hard/soft  {}\n                   reason     {}",
        metric(|t| (t.recipients_ok, t.files)),
        metric(|t| t.hard),
        metric(|t| t.reason),
    );
}
