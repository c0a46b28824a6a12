//! Phrase tables: the diagnostic sentences of real MTAs, per reason, kept
//! as data in `tables/<reason>.tsv` (one phrase a line, a tab, its source;
//! see `tables/README.md`).
//!
//! Matching is substring on lowercased text with addresses written
//! `<addr>` and whitespace collapsed. All phrases of all tables are matched
//! in one pass (an Aho–Corasick automaton built once), giving the set of
//! rules that occur in a text; `classify` then asks which tables have a hit.
//! Tables are checked in [`FIRST`] then [`SECOND`] order: the more specific
//! reasons first, so that "mailbox full" wins over a generic "rejected",
//! and "user unknown" over "blocked".

use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use crate::providers;
use crate::reason::Reason;
use crate::rules::{RuleId, RuleInfo, Rules};

/// The tables, with the reason each names. A name with a suffix
/// (`user_unknown.strong`) is a narrower table of the same reason.
const TABLES: &[(&str, Reason, &str)] = &[
    (
        "mailbox_full",
        Reason::MailboxFull,
        include_str!("tables/mailbox_full.tsv"),
    ),
    (
        "email_too_large",
        Reason::EmailTooLarge,
        include_str!("tables/email_too_large.tsv"),
    ),
    (
        "exceed_limit",
        Reason::ExceedLimit,
        include_str!("tables/exceed_limit.tsv"),
    ),
    (
        "suspended",
        Reason::Suspended,
        include_str!("tables/suspended.tsv"),
    ),
    (
        "has_moved",
        Reason::HasMoved,
        include_str!("tables/has_moved.tsv"),
    ),
    (
        "no_relaying",
        Reason::NoRelaying,
        include_str!("tables/no_relaying.tsv"),
    ),
    (
        "auth_failure",
        Reason::AuthFailure,
        include_str!("tables/auth_failure.tsv"),
    ),
    (
        "user_unknown",
        Reason::UserUnknown,
        include_str!("tables/user_unknown.tsv"),
    ),
    (
        "user_unknown.strong",
        Reason::UserUnknown,
        include_str!("tables/user_unknown.strong.tsv"),
    ),
    (
        "filtered",
        Reason::Filtered,
        include_str!("tables/filtered.tsv"),
    ),
    (
        "require_ptr",
        Reason::RequirePtr,
        include_str!("tables/require_ptr.tsv"),
    ),
    (
        "not_compliant_rfc",
        Reason::NotCompliantRfc,
        include_str!("tables/not_compliant_rfc.tsv"),
    ),
    (
        "bad_reputation",
        Reason::BadReputation,
        include_str!("tables/bad_reputation.tsv"),
    ),
    (
        "content_error",
        Reason::ContentError,
        include_str!("tables/content_error.tsv"),
    ),
    (
        "rejected",
        Reason::Rejected,
        include_str!("tables/rejected.tsv"),
    ),
    (
        "not_accept",
        Reason::NotAccept,
        include_str!("tables/not_accept.tsv"),
    ),
    (
        "host_unknown",
        Reason::HostUnknown,
        include_str!("tables/host_unknown.tsv"),
    ),
    (
        "virus_detected",
        Reason::VirusDetected,
        include_str!("tables/virus_detected.tsv"),
    ),
    (
        "spam_detected",
        Reason::SpamDetected,
        include_str!("tables/spam_detected.tsv"),
    ),
    (
        "rate_limited",
        Reason::RateLimited,
        include_str!("tables/rate_limited.tsv"),
    ),
    (
        "policy_violation.first",
        Reason::PolicyViolation,
        include_str!("tables/policy_violation.first.tsv"),
    ),
    (
        "policy_violation",
        Reason::PolicyViolation,
        include_str!("tables/policy_violation.tsv"),
    ),
    (
        "blocked",
        Reason::Blocked,
        include_str!("tables/blocked.tsv"),
    ),
    (
        "system_full",
        Reason::SystemFull,
        include_str!("tables/system_full.tsv"),
    ),
    (
        "failed_starttls",
        Reason::FailedStarttls,
        include_str!("tables/failed_starttls.tsv"),
    ),
    (
        "suppressed",
        Reason::Suppressed,
        include_str!("tables/suppressed.tsv"),
    ),
    (
        "network_error",
        Reason::NetworkError,
        include_str!("tables/network_error.tsv"),
    ),
    (
        "expired",
        Reason::Expired,
        include_str!("tables/expired.tsv"),
    ),
    (
        "system_error",
        Reason::SystemError,
        include_str!("tables/system_error.tsv"),
    ),
    (
        "security_error",
        Reason::SecurityError,
        include_str!("tables/security_error.tsv"),
    ),
    (
        "mailer_error",
        Reason::MailerError,
        include_str!("tables/mailer_error.tsv"),
    ),
    (
        "syntax_error",
        Reason::SyntaxError,
        include_str!("tables/syntax_error.tsv"),
    ),
];

/// First stage: reasons tried in this order, each by its phrases (and its
/// RFC 3463 code when that is specific); the more specific first.
pub const FIRST: &[Reason] = &[
    Reason::MailboxFull,
    Reason::EmailTooLarge,
    Reason::ExceedLimit,
    Reason::Suspended,
    Reason::HasMoved,
    Reason::NoRelaying,
    Reason::AuthFailure,
    Reason::UserUnknown,
    Reason::Filtered,
    Reason::RequirePtr,
    Reason::NotCompliantRfc,
    Reason::BadReputation,
    Reason::ContentError,
    Reason::RateLimited,
    Reason::Rejected,
    Reason::NotAccept,
    Reason::HostUnknown,
    Reason::VirusDetected,
    Reason::SpamDetected,
    Reason::PolicyViolation,
    Reason::Blocked,
];

/// Second stage, after a specific status code: the vaguer phrase tables.
pub const SECOND: &[Reason] = &[
    Reason::PolicyViolation,
    Reason::SystemFull,
    Reason::FailedStarttls,
    Reason::Suppressed,
    Reason::NetworkError,
    Reason::Expired,
    Reason::SystemError,
    Reason::SecurityError,
    Reason::MailerError,
    Reason::SyntaxError,
];

/// Phrases that mean a 5.1.1 was not about the address after all.
pub const CONTRADICT_USER: &[Reason] = &[
    Reason::MailboxFull,
    Reason::Filtered,
    Reason::HasMoved,
    Reason::Blocked,
    Reason::Rejected,
    Reason::NotAccept,
    Reason::MailerError,
];

/// A narrower table than a reason's main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrow {
    /// User-unknown answers so specific to address lookup that they are
    /// not a content filter's, whatever the SMTP stage.
    UserUnknownStrong,
    /// The policy phrases trusted in the first stage (the wide policy
    /// table is only tried in the second).
    PolicyFirst,
}

/// The loaded tables.
pub struct Registry {
    /// Every rule: the phrases, then the provider codes.
    pub rules: Vec<RuleInfo>,
    automaton: AhoCorasick,
    /// Automaton pattern → the rules with that phrase.
    pattern_rules: Vec<Vec<u32>>,
    by_reason: Vec<Option<Range<u32>>>,
    strong: Range<u32>,
    policy_first: Range<u32>,
    /// First id of each provider table (see [`providers`]).
    pub provider_base: [u32; 2],
}

/// The registry, built on first use.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(build)
}

fn build() -> Registry {
    let mut rules = Vec::new();
    let mut by_reason = vec![None; Reason::ALL.len()];
    let (mut strong, mut policy_first) = (0..0, 0..0);
    for &(table, reason, data) in TABLES {
        let start = rules.len() as u32;
        for line in data.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (text, source) = line.split_once('\t').unwrap_or((line, ""));
            rules.push(RuleInfo {
                table,
                reason,
                text,
                source,
            });
        }
        let range = start..rules.len() as u32;
        match table {
            "user_unknown.strong" => strong = range,
            "policy_violation.first" => policy_first = range,
            _ => by_reason[reason as usize] = Some(range),
        }
    }
    let mut patterns: Vec<&'static str> = Vec::new();
    let mut pattern_rules: Vec<Vec<u32>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        let p = *index.entry(r.text).or_insert_with(|| {
            patterns.push(r.text);
            pattern_rules.push(Vec::new());
            patterns.len() - 1
        });
        pattern_rules[p].push(i as u32);
    }
    let automaton = AhoCorasick::new(&patterns).expect("phrase tables build");
    let mut provider_base = [0; 2];
    for (k, (table, codes)) in providers::tables().into_iter().enumerate() {
        provider_base[k] = rules.len() as u32;
        rules.extend(codes.iter().map(|&(text, reason, source)| RuleInfo {
            table,
            reason,
            text,
            source,
        }));
    }
    Registry {
        rules,
        automaton,
        pattern_rules,
        by_reason,
        strong,
        policy_first,
        provider_base,
    }
}

/// The phrase rules that occur in one text (and are switched on).
pub struct Hits {
    bits: Vec<u64>,
}

impl Hits {
    /// Matches every phrase against `text` (already [`crate::classify::clean`]ed),
    /// notes the hits in `rules`' record, and drops those switched off.
    pub fn find(text: &str, rules: &mut Rules) -> Hits {
        let reg = registry();
        let mut bits = vec![0u64; reg.rules.len().div_ceil(64)];
        if !text.is_empty() {
            for m in reg.automaton.find_overlapping_iter(text) {
                for &id in &reg.pattern_rules[m.pattern().as_usize()] {
                    if rules.any_off() && !rules.allows(RuleId(id)) {
                        continue;
                    }
                    let (w, b) = (id as usize / 64, id % 64);
                    if bits[w] & (1 << b) == 0 {
                        bits[w] |= 1 << b;
                        rules.note(RuleId(id));
                    }
                }
            }
        }
        Hits { bits }
    }

    fn any(&self, range: &Range<u32>) -> bool {
        range
            .clone()
            .any(|id| self.bits[id as usize / 64] & (1 << (id % 64)) != 0)
    }

    /// True when a phrase of `r`'s main table occurs.
    pub fn has(&self, r: Reason) -> bool {
        registry().by_reason[r as usize]
            .as_ref()
            .is_some_and(|range| self.any(range))
    }

    /// True when a phrase of a narrow table occurs.
    pub fn has_narrow(&self, n: Narrow) -> bool {
        let reg = registry();
        self.any(match n {
            Narrow::UserUnknownStrong => &reg.strong,
            Narrow::PolicyFirst => &reg.policy_first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_clean_data() {
        let reg = registry();
        assert!(reg.rules.len() > 500);
        for r in &reg.rules {
            assert!(!r.text.trim().is_empty(), "{}: empty phrase", r.table);
            assert_eq!(r.text, r.text.to_lowercase(), "{}: not lowercase", r.table);
            assert!(
                !r.source.is_empty(),
                "{}: {:?} has no source",
                r.table,
                r.text
            );
            assert!(
                !r.text.contains("  "),
                "{}: {:?} double space",
                r.table,
                r.text
            );
        }
    }

    #[test]
    fn every_table_is_reachable() {
        for &(table, reason, _) in TABLES {
            let listed = FIRST.contains(&reason) || SECOND.contains(&reason);
            assert!(listed, "{table} is never tried");
        }
    }

    #[test]
    fn finds_overlapping_phrases() {
        let h = Hits::find("550 mailbox full, user unknown", &mut Rules::all());
        assert!(h.has(Reason::MailboxFull));
        assert!(h.has(Reason::UserUnknown));
        assert!(!h.has(Reason::Blocked));
    }
}
