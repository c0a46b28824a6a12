//! Leave-one-family-out cross-validation of the classification rules.
//!
//! The classifier has no fitted weights: what can be fitted to a corpus is
//! its rules (the phrases of the tables and the provider codes). A rule
//! written for one family's messages shows up as a rule that only that
//! family needs. So, per family F of the corpus (a Sisimai `lhost-*` /
//! `rhost-*` engine, a flufl family, or a generic format such as
//! `rfc3464`):
//!
//! 1. every message is parsed once with every rule on, recording which
//!    rules matched each recipient;
//! 2. a rule is *supported* by a family when, in one of its messages, it
//!    matched a recipient that was classified right and names the reason
//!    given (so it helped a right answer);
//! 3. the rules supported by F alone are switched off, and F's messages
//!    are parsed and scored again.
//!
//! A rule that no family supports stays on (it helps nobody here, so it is
//! not fitted to anybody). Two variants: *strict* switches off every such
//! rule; the default only those whose source is [`CORPUS_TUNED`] (a rule
//! taken from an MTA's or provider's documentation was not fitted to the
//! corpus, whichever family happens to show it). Pure: `bounce-score` does
//! the parsing.

use std::collections::{BTreeMap, BTreeSet};

use crate::rules::RuleId;
use crate::scoring::{map_sisimai_reason, FluflLabel, Prediction, SisimaiLabel};

/// The family of a corpus file: the engine name of a Sisimai file
/// (`lhost-postfix-01.eml` → `postfix`, `rhost-google-03.eml` → `google`),
/// the format of a generic one (`rfc3464-07.eml` → `rfc3464`, `arf-01.eml`
/// → `arf`), or the MTA of a flufl file (`postfix_01.txt` → `postfix`). The
/// same MTA in both sets is one family; flufl's generic `dsn_*` files join
/// `rfc3464`.
pub fn family(file: &str) -> String {
    let stem = file
        .strip_suffix(".eml")
        .or_else(|| file.strip_suffix(".txt"))
        .unwrap_or(file);
    let name = stem
        .rsplit_once(['-', '_'])
        .filter(|(_, n)| n.chars().all(|c| c.is_ascii_digit()))
        .map_or(stem, |(name, _)| name);
    let name = name
        .strip_prefix("lhost-")
        .or_else(|| name.strip_prefix("rhost-"))
        .unwrap_or(name);
    match name {
        "dsn" => "rfc3464".to_string(),
        n => n.to_string(),
    }
}

/// What one message contributes to rule support: its family, and per
/// recipient the rules that matched, the reason given and whether the
/// recipient was scored right.
#[derive(Debug, Clone)]
pub struct Observed {
    /// See [`family`].
    pub family: String,
    /// One entry per recipient: (matched rules, reason given, right).
    pub rows: Vec<(Vec<RuleId>, crate::Reason, bool)>,
}

/// The families that support each rule (see the module doc). `reason_of`
/// gives the reason a rule names.
pub fn support(
    observed: &[Observed],
    reason_of: impl Fn(RuleId) -> crate::Reason,
) -> BTreeMap<RuleId, BTreeSet<String>> {
    let mut out: BTreeMap<RuleId, BTreeSet<String>> = BTreeMap::new();
    for o in observed {
        for (rules, reason, right) in &o.rows {
            for &id in rules.iter().filter(|_| *right) {
                if reason_of(id) == *reason {
                    out.entry(id).or_default().insert(o.family.clone());
                }
            }
        }
    }
    out
}

/// The rules to switch off while `family` is scored: those only it
/// supports, among the rules `eligible` admits.
pub fn fitted_to(
    support: &BTreeMap<RuleId, BTreeSet<String>>,
    family: &str,
    eligible: impl Fn(RuleId) -> bool,
) -> Vec<RuleId> {
    support
        .iter()
        .filter(|(id, fams)| fams.len() == 1 && fams.contains(family) && eligible(**id))
        .map(|(id, _)| *id)
        .collect()
}

/// The source of the rules that were tuned on the development corpus
/// rather than taken from documentation.
pub const CORPUS_TUNED: &str = "tidings-0.1";

/// Per predicted row of a sisimai-dev message: the reason agrees with the
/// label of the same index.
pub fn rows_right_sisimai(labels: &[SisimaiLabel], p: &Prediction) -> Vec<bool> {
    p.rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            labels
                .iter()
                .find(|l| l.rcpt == i + 1)
                .is_some_and(|l| map_sisimai_reason(&l.reason) == r.reason)
        })
        .collect()
}

/// Per predicted row of a flufl message: a labelled address, with the
/// temporary/hard reading the label wants (flufl has no reasons).
pub fn rows_right_flufl(label: &FluflLabel, p: &Prediction) -> Vec<bool> {
    p.rows
        .iter()
        .map(|r| {
            label
                .addresses
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&r.email))
                && r.temporary == label.temporary
                && (!label.temporary || !r.hard)
        })
        .collect()
}

/// Mean and worst of per-fold percentages, over the folds that compared
/// anything: `(mean, worst, worst fold's name, worst fold's comparisons)`.
pub fn mean_and_worst<'a>(
    folds: impl IntoIterator<Item = (&'a str, (usize, usize))>,
) -> Option<(f64, f64, &'a str, usize)> {
    let mut n = 0usize;
    let mut sum = 0.0;
    let mut worst: Option<(f64, &str, usize)> = None;
    for (name, x) in folds {
        if x.1 == 0 {
            continue;
        }
        let p = crate::scoring::pct(x);
        n += 1;
        sum += p;
        if worst.is_none_or(|w| p < w.0 || p == w.0 && x.1 > w.2) {
            worst = Some((p, name, x.1));
        }
    }
    worst.map(|(p, name, k)| (sum / n as f64, p, name, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reason;

    #[test]
    fn families_from_file_names() {
        assert_eq!(family("lhost-postfix-01.eml"), "postfix");
        assert_eq!(family("rhost-google-03.eml"), "google");
        assert_eq!(family("rfc3464-07.eml"), "rfc3464");
        assert_eq!(family("arf-01.eml"), "arf");
        assert_eq!(family("postfix_01.txt"), "postfix");
        assert_eq!(family("dsn_03.txt"), "rfc3464");
        assert_eq!(family("lhost-x1-01.eml"), "x1");
    }

    #[test]
    fn only_single_family_rules_are_fitted() {
        let obs = |family: &str, rules: &[u32], right| Observed {
            family: family.into(),
            rows: vec![(
                rules.iter().map(|&i| RuleId(i)).collect(),
                Reason::UserUnknown,
                right,
            )],
        };
        let observed = [
            obs("a", &[1, 2], true),
            obs("b", &[2], true),
            obs("c", &[3], false),
        ];
        let s = support(&observed, |_| Reason::UserUnknown);
        assert_eq!(fitted_to(&s, "a", |_| true), vec![RuleId(1)]);
        assert!(fitted_to(&s, "a", |id| id != RuleId(1)).is_empty());
        assert!(fitted_to(&s, "b", |_| true).is_empty());
        assert!(fitted_to(&s, "c", |_| true).is_empty());
        // A rule naming another reason than the one given supports nothing.
        let s = support(&observed, |_| Reason::Blocked);
        assert!(s.is_empty());
    }

    #[test]
    fn mean_and_worst_skip_empty_folds() {
        let m = mean_and_worst([("a", (9, 10)), ("b", (0, 0)), ("c", (1, 2))]).unwrap();
        assert!((m.0 - 70.0).abs() < 1e-9);
        assert_eq!((m.1, m.2, m.3), (50.0, "c", 2));
    }
}
