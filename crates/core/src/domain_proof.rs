//! Proof, by DNS, that an account controls a domain before tidings uses it
//! for that account.
//!
//! Claiming a domain is not owning it: without proof, the first account to
//! add `shop.example` as a sending domain could send as it, and the first
//! to set `track.shop.example` as its tracking domain would have its links
//! served there. So a domain is proven by a record only its DNS operator
//! can publish:
//!
//! - a sending domain by its DKIM record, the TXT record shown when it was
//!   added (`selector._domainkey.domain`), carrying this key's public key;
//! - a tracking domain by a TXT record at `_tidings.<host>` whose value is
//!   derived from the account and the host, so the record names the
//!   account it admits.
//!
//! Whose domains must be proven is the operator's choice
//! ([`ProofPolicy`]): by default every account's except the operator's own
//! (the installation's first account, made at first start). The operator
//! runs the server and its database and could use any domain anyway; the
//! proof protects accounts from each other, and a fresh installation's
//! tour can send from a domain whose DNS it cannot see.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tidings_types::{AccountId, Timestamp};

use crate::domains::DnsView;
use crate::{CoreError, Tidings};

/// Which accounts must prove their domains before tidings uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofPolicy {
    /// Every account but the operator's (the first account).
    #[default]
    ExceptOperator,
    /// Every account, the operator's too.
    All,
    /// None: a claim is enough (a single-tenant installation).
    None,
}

/// Why a DNS lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name has no TXT records (or does not exist).
    NotFound,
    /// The lookup itself failed: timeout, SERVFAIL, no server.
    Failed(String),
}

/// TXT lookups, done by the binary's resolver.
#[async_trait]
pub trait TxtResolver: Send + Sync + 'static {
    /// Each TXT record at `name`, its strings joined.
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError>;
}

/// Proven, or waiting for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    Pending,
    Verified,
}

impl DomainStatus {
    pub fn of(verified_at: Option<Timestamp>) -> Self {
        if verified_at.is_some() {
            Self::Verified
        } else {
            Self::Pending
        }
    }
}

/// What one check of the DNS found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// The expected record is published.
    Verified,
    /// No TXT record at the name, or none of the expected kind.
    RecordMissing,
    /// A record of the expected kind, with another value.
    RecordMismatch,
    /// The lookup failed; try again later.
    DnsError,
}

/// `POST /v1/domains/{domain}/verify` and `POST /v1/tracking/verify`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationView {
    pub domain: String,
    pub status: DomainStatus,
    #[schema(format = DateTime)]
    pub verified_at: Option<String>,
    /// The record to publish.
    pub record: DnsView,
    /// What this check found.
    pub result: CheckResult,
    /// The TXT records found at the record's name.
    pub found: Vec<String>,
    pub message: String,
}

/// The tags of a DKIM-style record (`v=DKIM1; k=rsa; p=...`).
fn tags(record: &str) -> BTreeMap<String, String> {
    record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            (k.trim().to_ascii_lowercase(), v)
        })
        .collect()
}

/// Does one of `found` carry the public key of `expected` (a DKIM record)?
pub fn check_dkim(found: &[String], expected: &str) -> CheckResult {
    let Some(want) = tags(expected).remove("p") else {
        return CheckResult::RecordMismatch;
    };
    let mut dkim_like = false;
    for record in found {
        let t = tags(record);
        if let Some(p) = t.get("p") {
            dkim_like = true;
            if *p == want {
                return CheckResult::Verified;
            }
        }
    }
    if dkim_like {
        CheckResult::RecordMismatch
    } else {
        CheckResult::RecordMissing
    }
}

/// Prefix of a tracking domain's verification value.
const TRACKING_PREFIX: &str = "tidings-verification=";

/// The TXT record that proves `host` is `account`'s tracking domain.
pub fn tracking_record(account: AccountId, host: &str) -> DnsView {
    let mut h = Sha256::new();
    h.update(b"tidings tracking domain\0");
    h.update(account.to_string().as_bytes());
    h.update(b"\0");
    h.update(host.as_bytes());
    let digest = hex::encode(h.finalize());
    DnsView {
        name: format!("_tidings.{host}"),
        kind: "TXT",
        value: format!("{TRACKING_PREFIX}{}", &digest[..32]),
    }
}

/// Does one of `found` equal the expected tracking record's value?
pub fn check_tracking(found: &[String], expected: &str) -> CheckResult {
    let trimmed = |s: &String| s.trim().to_string();
    if found.iter().map(trimmed).any(|f| f == expected) {
        CheckResult::Verified
    } else if found.iter().any(|f| f.trim().starts_with(TRACKING_PREFIX)) {
        CheckResult::RecordMismatch
    } else {
        CheckResult::RecordMissing
    }
}

/// Ask DNS for the TXT records at `record.name` and judge them with `judge`.
pub(crate) async fn look(
    app: &Tidings,
    record: &DnsView,
    judge: impl Fn(&[String], &str) -> CheckResult,
) -> Result<(CheckResult, Vec<String>), CoreError> {
    let resolver = app.txt_resolver.as_ref().ok_or_else(|| {
        CoreError::Internal("no DNS resolver is configured for domain checks".into())
    })?;
    Ok(match resolver.txt(&record.name).await {
        Ok(found) => (judge(&found, &record.value), found),
        Err(LookupError::NotFound) => (CheckResult::RecordMissing, Vec::new()),
        Err(LookupError::Failed(e)) => {
            tracing::info!(name = %record.name, error = %e, "domain check: DNS lookup failed");
            (CheckResult::DnsError, Vec::new())
        }
    })
}

/// The sentence a check's result is explained by.
pub(crate) fn explain(result: CheckResult, record: &DnsView) -> String {
    match result {
        CheckResult::Verified => format!("the TXT record at {} is published", record.name),
        CheckResult::RecordMissing => format!(
            "no matching TXT record at {}: publish `{}` there, then check again \
             (DNS changes can take a while to be seen)",
            record.name, record.value
        ),
        CheckResult::RecordMismatch => format!(
            "the TXT record at {} has another value than `{}`: replace it, then check again",
            record.name, record.value
        ),
        CheckResult::DnsError => format!(
            "the DNS lookup of {} failed; nothing changed, check again later",
            record.name
        ),
    }
}

impl Tidings {
    /// Must `account` prove its domains before they are used?
    pub(crate) async fn needs_proof(&self, account: AccountId) -> Result<bool, CoreError> {
        Ok(match self.config.domain_proof {
            ProofPolicy::None => false,
            ProofPolicy::All => true,
            ProofPolicy::ExceptOperator => self.operator_account().await? != Some(account),
        })
    }

    /// The installation's first account: the operator's own.
    async fn operator_account(&self) -> Result<Option<AccountId>, CoreError> {
        if let Some(id) = self.operator.get() {
            return Ok(Some(*id));
        }
        let accounts = self.store.list_accounts().await?;
        let first = accounts
            .iter()
            .min_by_key(|a| (a.created_at, a.id.to_string()))
            .map(|a| a.id);
        if let Some(id) = first {
            let _ = self.operator.set(id);
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "v=DKIM1; k=rsa; p=MIIBIjANBgkq";

    #[test]
    fn dkim_record_is_matched_by_its_key_whatever_the_spacing() {
        let found = vec!["v=DKIM1;k=rsa; p=MIIB IjAN Bgkq".to_string()];
        assert_eq!(check_dkim(&found, OURS), CheckResult::Verified);
        let found = vec![
            "google-site-verification=abc".into(),
            " p=MIIBIjANBgkq ".into(),
        ];
        assert_eq!(check_dkim(&found, OURS), CheckResult::Verified);
    }

    #[test]
    fn another_key_is_a_mismatch_and_no_key_is_missing() {
        let other = vec!["v=DKIM1; k=rsa; p=MIIBother".to_string()];
        assert_eq!(check_dkim(&other, OURS), CheckResult::RecordMismatch);
        let unrelated = vec!["v=spf1 -all".to_string()];
        assert_eq!(check_dkim(&unrelated, OURS), CheckResult::RecordMissing);
        assert_eq!(check_dkim(&[], OURS), CheckResult::RecordMissing);
        // A revoked key (empty p=) proves nothing.
        let revoked = vec!["v=DKIM1; p=".to_string()];
        assert_eq!(check_dkim(&revoked, OURS), CheckResult::RecordMismatch);
    }

    #[test]
    fn tracking_record_names_the_account_and_the_host() {
        let a = AccountId::new();
        let b = AccountId::new();
        let ra = tracking_record(a, "track.shop.example");
        assert_eq!(ra.name, "_tidings.track.shop.example");
        assert!(ra.value.starts_with(TRACKING_PREFIX));
        assert_ne!(ra.value, tracking_record(b, "track.shop.example").value);
        assert_ne!(ra.value, tracking_record(a, "t.shop.example").value);
        assert_eq!(ra.value, tracking_record(a, "track.shop.example").value);

        let found = vec![format!(" {} ", ra.value)];
        assert_eq!(check_tracking(&found, &ra.value), CheckResult::Verified);
        let theirs = vec![tracking_record(b, "track.shop.example").value];
        assert_eq!(
            check_tracking(&theirs, &ra.value),
            CheckResult::RecordMismatch
        );
        assert_eq!(check_tracking(&[], &ra.value), CheckResult::RecordMissing);
    }
}
