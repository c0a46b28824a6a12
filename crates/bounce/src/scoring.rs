//! Scoring against labelled corpora (used by `bounce-score` and the corpus
//! test). Pure: the callers read the files.
//!
//! Two label sets, with different information, are scored differently:
//!
//! - **sisimai-dev** labels each bounced recipient by 1-based index with a
//!   status, a reason (Sisimai's vocabulary), `hardbounce` and, for ARF,
//!   `feedbacktype`. Addresses are not labelled, so *recipients correct*
//!   means: the message was recognised as the right kind (bounce,
//!   complaint, auto-reply, delivery), the number of recipients found equals
//!   the number labelled, and every bounced address is a valid `local@domain`.
//!   Hard/soft, status and reason are compared per labelled recipient, the
//!   i-th label with the i-th recipient found (a missing recipient counts as
//!   a disagreement). For complaints, auto-replies and deliveries hard/soft
//!   agrees when the kind is right (they are never hard bounces). A Sisimai pseudo-status (`x.0.9xx`, Sisimai's own
//!   "inferred" codes, not RFC 3463) agrees when the class agrees.
//! - **flufl** labels the set of bounced addresses and whether the failure is
//!   temporary. *Recipients correct* means the set of bounced addresses
//!   found equals the labelled set exactly (an empty set for non-bounces).
//!   Hard/soft is checked as far as flufl's label allows: a temporary
//!   failure must be reported with action `delayed` and soft; a permanent
//!   one with action `failed`. flufl has no reason labels.
//!
//! Both tidings and Sisimai 4 are turned into a [`Prediction`] and scored by
//! the same code.

use serde::Deserialize;

use crate::model::{Action, BounceType, Report};

/// One labelled recipient of sisimai-dev.json.
#[derive(Debug, Clone, Deserialize)]
pub struct SisimaiLabel {
    /// 1-based index of the recipient in the message.
    pub rcpt: usize,
    /// Expected status (Sisimai may use pseudo-codes like `5.0.911`).
    #[serde(default)]
    pub status: String,
    /// Expected reason, Sisimai vocabulary.
    pub reason: String,
    /// Expected hard bounce flag.
    #[serde(default)]
    pub hardbounce: bool,
    /// Expected feedback type (ARF only).
    #[serde(default)]
    pub feedbacktype: String,
}

/// One entry of flufl.json.
#[derive(Debug, Clone, Deserialize)]
pub struct FluflLabel {
    /// File name.
    pub file: String,
    /// Bounced addresses.
    pub addresses: Vec<String>,
    /// The failure is temporary.
    pub temporary: bool,
}

/// Parses sisimai-dev.json.
pub fn sisimai_labels(
    json: &str,
) -> serde_json::Result<std::collections::BTreeMap<String, Vec<SisimaiLabel>>> {
    serde_json::from_str(json)
}

/// Parses flufl.json.
pub fn flufl_labels(json: &str) -> serde_json::Result<Vec<FluflLabel>> {
    serde_json::from_str(json)
}

/// What a classifier said about one message, in a shape both tidings and
/// Sisimai 4 can be put into.
#[derive(Debug, Clone, Default)]
pub struct Prediction {
    /// `bounce`, `complaint`, `auto_reply`, `delivered`, or `none`.
    pub kind: String,
    /// One row per recipient.
    pub rows: Vec<Row>,
    /// Feedback type of a complaint (also when it names no recipient).
    pub feedback_type: String,
}

/// One recipient of a [`Prediction`].
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Lowercased address (may be empty for complaints without one).
    pub email: String,
    /// Reason in tidings' vocabulary (`complaint`, `auto_reply`,
    /// `delivered` for the non-bounce kinds).
    pub reason: String,
    /// Status as text.
    pub status: String,
    /// Hard bounce.
    pub hard: bool,
    /// Reported as delayed (the MTA keeps trying).
    pub temporary: bool,
    /// Feedback type of a complaint.
    pub feedback_type: String,
}

impl Prediction {
    /// The prediction of a tidings [`Report`].
    pub fn from_report(r: &Report) -> Prediction {
        let row = |email: &str, reason: &str| Row {
            email: email.to_string(),
            reason: reason.to_string(),
            ..Row::default()
        };
        match r {
            Report::Bounce(b) => Prediction {
                kind: "bounce".into(),
                rows: b
                    .recipients
                    .iter()
                    .map(|x| Row {
                        email: x.email.clone(),
                        reason: x.reason.as_str().into(),
                        status: x.status.to_string(),
                        hard: x.bounce_type == BounceType::Hard,
                        temporary: x.action == Action::Delayed,
                        feedback_type: String::new(),
                    })
                    .collect(),
                ..Prediction::default()
            },
            Report::Complaint(c) => Prediction {
                kind: "complaint".into(),
                feedback_type: c.feedback_type.clone(),
                rows: if c.recipients.is_empty() {
                    Vec::new()
                } else {
                    c.recipients
                        .iter()
                        .map(|e| Row {
                            feedback_type: c.feedback_type.clone(),
                            ..row(e, "complaint")
                        })
                        .collect()
                },
            },
            Report::AutoReply(a) => Prediction {
                kind: "auto_reply".into(),
                rows: vec![row(a.from.as_deref().unwrap_or(""), "auto_reply")],
                ..Prediction::default()
            },
            Report::DeliverySuccess(d) => Prediction {
                kind: "delivered".into(),
                rows: d.recipients.iter().map(|e| row(e, "delivered")).collect(),
                ..Prediction::default()
            },
            Report::Unrecognised => Prediction {
                kind: "none".into(),
                ..Prediction::default()
            },
        }
    }

    /// The kind Sisimai's reasons imply for a set of rows.
    pub fn kind_of_reasons<'a>(reasons: impl IntoIterator<Item = &'a str>) -> String {
        let mut kind = "none";
        for r in reasons {
            kind = match r {
                "complaint" => "complaint",
                "auto_reply" => "auto_reply",
                "delivered" => "delivered",
                _ => "bounce",
            };
        }
        kind.to_string()
    }
}

/// Sisimai's reason names in tidings' vocabulary (`feedback` is a
/// complaint, `vacation` an auto-reply, `delivered` a success DSN).
pub fn map_sisimai_reason(r: &str) -> &'static str {
    match r {
        "userunknown" => "user_unknown",
        "mailboxfull" => "mailbox_full",
        "hostunknown" => "host_unknown",
        "expired" => "expired",
        "filtered" => "filtered",
        "rejected" => "rejected",
        "blocked" => "blocked",
        "spamdetected" => "spam_detected",
        "policyviolation" => "policy_violation",
        "mesgtoobig" | "emailtoolarge" => "email_too_large",
        "securityerror" => "security_error",
        "systemerror" => "system_error",
        "networkerror" => "network_error",
        "hasmoved" => "has_moved",
        "notaccept" => "not_accept",
        "suspend" => "suspended",
        "syntaxerror" => "syntax_error",
        "mailererror" => "mailer_error",
        "contenterror" => "content_error",
        "authfailure" => "auth_failure",
        "badreputation" => "bad_reputation",
        "requireptr" => "require_ptr",
        "notcompliantrfc" => "not_compliant_rfc",
        "norelaying" => "no_relaying",
        "virusdetected" => "virus_detected",
        "exceedlimit" => "exceed_limit",
        "systemfull" => "system_full",
        "toomanyconn" | "speeding" | "ratelimited" => "rate_limited",
        "failedstarttls" => "failed_starttls",
        "suppressed" => "suppressed",
        "onhold" => "on_hold",
        "feedback" => "complaint",
        "vacation" => "auto_reply",
        "delivered" => "delivered",
        _ => "undefined",
    }
}

/// The score of one file.
#[derive(Debug, Clone, Default)]
pub struct FileScore {
    /// `sisimai-dev` or `flufl`.
    pub set: String,
    /// File name.
    pub file: String,
    /// Kind predicted.
    pub kind: String,
    /// Recipients expected / found.
    pub expected: usize,
    /// Recipients found.
    pub found: usize,
    /// See the module doc for the definition per set.
    pub recipients_ok: bool,
    /// Hard/soft agreements / comparisons.
    pub hard: (usize, usize),
    /// Status agreements / comparisons.
    pub status: (usize, usize),
    /// Reason agreements / comparisons.
    pub reason: (usize, usize),
    /// Feedback type agreements / comparisons.
    pub feedback: (usize, usize),
    /// Disagreements, for the report.
    pub notes: Vec<String>,
}

/// Scores a prediction against sisimai-dev labels.
pub fn score_sisimai(file: &str, labels: &[SisimaiLabel], p: &Prediction) -> FileScore {
    let mut s = FileScore {
        set: "sisimai-dev".into(),
        file: file.into(),
        kind: p.kind.clone(),
        expected: labels.len(),
        found: p.rows.len(),
        ..FileScore::default()
    };
    let want_kind =
        Prediction::kind_of_reasons(labels.iter().map(|l| map_sisimai_reason(&l.reason)));
    let valid = p.kind != "bounce" || p.rows.iter().all(|r| crate::is_valid_address(&r.email));
    s.recipients_ok = want_kind == p.kind && s.expected == s.found && valid;
    if !s.recipients_ok {
        s.notes.push(format!("kind {} want {want_kind}", p.kind));
    }
    for l in labels {
        let row = l.rcpt.checked_sub(1).and_then(|i| p.rows.get(i));
        let want_reason = map_sisimai_reason(&l.reason);
        let (hard, status, reason) = match row {
            Some(r) => (r.hard, r.status.as_str(), r.reason.as_str()),
            None => (false, "-", "-"),
        };
        s.hard.1 += 1;
        // Complaints, auto-replies and deliveries are never hard bounces:
        // recognising the kind is the agreement.
        let not_a_bounce = matches!(want_reason, "complaint" | "auto_reply" | "delivered");
        if not_a_bounce && p.kind == want_kind || row.is_some() && hard == l.hardbounce {
            s.hard.0 += 1;
        } else {
            s.notes.push(format!("hard {hard} want {}", l.hardbounce));
        }
        s.status.1 += 1;
        if row.is_some() && status_agrees(&l.status, status) {
            s.status.0 += 1;
        } else {
            s.notes.push(format!("status {status} want {}", l.status));
        }
        s.reason.1 += 1;
        if reason == want_reason {
            s.reason.0 += 1;
        } else {
            s.notes.push(format!("reason {reason} want {want_reason}"));
        }
        if !l.feedbacktype.is_empty() {
            s.feedback.1 += 1;
            let got = row.map_or(p.feedback_type.as_str(), |r| r.feedback_type.as_str());
            if got == l.feedbacktype {
                s.feedback.0 += 1;
            } else {
                s.notes
                    .push(format!("feedback {got} want {}", l.feedbacktype));
            }
        }
    }
    s
}

fn status_agrees(want: &str, got: &str) -> bool {
    if want == got || want.is_empty() && (got.is_empty() || got == "-") {
        return true;
    }
    // Sisimai's pseudo-codes x.0.9xx: only the class is meaningful.
    let pseudo = want.len() == 7 && want[1..].starts_with(".0.9");
    pseudo && want.as_bytes().first() == got.as_bytes().first()
}

/// Scores a prediction against a flufl label.
pub fn score_flufl(label: &FluflLabel, p: &Prediction) -> FileScore {
    let mut want: Vec<String> = label
        .addresses
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    want.sort();
    want.dedup();
    let mut got: Vec<String> = if p.kind == "bounce" {
        p.rows.iter().map(|r| r.email.clone()).collect()
    } else {
        Vec::new()
    };
    got.sort();
    got.dedup();
    let mut s = FileScore {
        set: "flufl".into(),
        file: label.file.clone(),
        kind: p.kind.clone(),
        expected: want.len(),
        found: got.len(),
        recipients_ok: want == got,
        ..FileScore::default()
    };
    if !s.recipients_ok {
        s.notes.push(format!("got {got:?} want {want:?}"));
    }
    for a in &want {
        s.hard.1 += 1;
        let row = p.rows.iter().find(|r| &r.email == a);
        let ok =
            row.is_some_and(|r| r.temporary == label.temporary && (!label.temporary || !r.hard));
        if ok {
            s.hard.0 += 1;
        } else if let Some(r) = row {
            s.notes.push(format!(
                "temporary {} hard {} want temporary {}",
                r.temporary, r.hard, label.temporary
            ));
        }
    }
    s
}

/// Sums of [`FileScore`]s.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Files scored.
    pub files: usize,
    /// Files whose recipients were correct.
    pub recipients_ok: usize,
    /// Hard/soft agreements / comparisons.
    pub hard: (usize, usize),
    /// Status agreements / comparisons.
    pub status: (usize, usize),
    /// Reason agreements / comparisons.
    pub reason: (usize, usize),
    /// Feedback type agreements / comparisons.
    pub feedback: (usize, usize),
}

impl Totals {
    /// Adds one file.
    pub fn add(&mut self, s: &FileScore) {
        self.files += 1;
        self.recipients_ok += usize::from(s.recipients_ok);
        for (t, x) in [
            (&mut self.hard, s.hard),
            (&mut self.status, s.status),
            (&mut self.reason, s.reason),
            (&mut self.feedback, s.feedback),
        ] {
            t.0 += x.0;
            t.1 += x.1;
        }
    }

    /// Recipients correct, percent of files.
    pub fn recipients_pct(&self) -> f64 {
        pct((self.recipients_ok, self.files))
    }
}

/// `a / b` in percent (100 when nothing was compared).
pub fn pct((a, b): (usize, usize)) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
}
