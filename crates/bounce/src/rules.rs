//! Which named rules may decide a reason, and which ones matched.
//!
//! Every phrase of the phrase tables and every provider code is a rule with
//! a stable [`RuleId`] in one [`catalogue`]. [`crate::parse`] lets them all
//! decide and records nothing; [`crate::parse_with`] takes a [`Rules`] that
//! can switch some off and record which matched, per classified recipient.
//! That is how `bounce-score` measures generalisation: a rule that only one
//! source family of the corpus supports is switched off while that family
//! is scored (see `docs/benchmarks-inbound.md`). Switching rules off is
//! data passed in, not a mode of the classifier: the same code path runs.

use crate::reason::Reason;

/// Index of a rule in the [`catalogue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// One rule of the catalogue.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    /// The table it belongs to (`user_unknown`, `user_unknown.strong`,
    /// `provider:cox`, ...).
    pub table: &'static str,
    /// The reason the table names.
    pub reason: Reason,
    /// The phrase or code.
    pub text: &'static str,
    /// Where the phrase comes from (a URL, or `tidings-0.1`).
    pub source: &'static str,
}

/// Every rule, in [`RuleId`] order.
pub fn catalogue() -> &'static [RuleInfo] {
    &crate::phrases::registry().rules
}

/// Rules switched off, and an optional record of the rules that matched.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    off: Vec<bool>,
    record: bool,
    matched: Vec<Vec<RuleId>>,
}

impl Rules {
    /// Every rule on, nothing recorded (what [`crate::parse`] uses).
    pub fn all() -> Rules {
        Rules::default()
    }

    /// Every rule on; the rules that match are recorded per recipient.
    pub fn recording() -> Rules {
        Rules {
            record: true,
            ..Rules::default()
        }
    }

    /// Every rule on except `off`.
    pub fn without(off: impl IntoIterator<Item = RuleId>) -> Rules {
        let mut v = vec![false; catalogue().len()];
        for RuleId(i) in off {
            if let Some(x) = v.get_mut(i as usize) {
                *x = true;
            }
        }
        Rules {
            off: v,
            ..Rules::default()
        }
    }

    /// True unless the rule was switched off.
    pub fn allows(&self, id: RuleId) -> bool {
        !self.off.get(id.0 as usize).copied().unwrap_or(false)
    }

    /// Any rule switched off at all (lets the matcher skip the mask).
    pub(crate) fn any_off(&self) -> bool {
        !self.off.is_empty()
    }

    /// Starts the record of the next classified recipient.
    pub(crate) fn begin_recipient(&mut self) {
        if self.record {
            self.matched.push(Vec::new());
        }
    }

    /// Notes that `id` matched for the current recipient.
    pub(crate) fn note(&mut self, id: RuleId) {
        if self.record {
            if let Some(m) = self.matched.last_mut() {
                m.push(id);
            }
        }
    }

    /// The rules that matched, one list per classified recipient, in the
    /// order of the report's recipients.
    pub fn matched(&self) -> &[Vec<RuleId>] {
        &self.matched
    }

    /// Forgets what was recorded.
    pub fn clear(&mut self) {
        self.matched.clear();
    }
}
