//! Sending domains and their DKIM keys. Keys are made here (the private
//! key never leaves the server); the account is shown the TXT record to
//! publish. Signers are kept parsed in memory, since outbound delivery
//! signs every message.
//!
//! The same registry decides who may send as whom: a message is accepted
//! only from a domain the account added (or a subdomain of one, which is
//! signed as its parent), unless the operator allows any sender. Without
//! that rule any holder of an API key could send as any domain, unsigned.
//! A domain is one account's, and where the operator asks for it
//! ([`crate::domain_proof`]) it is used only once its DKIM record is found
//! in DNS (`POST /v1/domains/{domain}/verify`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tidings_mail::dkim::{DkimKey, KeyAlgorithm, Signer};
use tidings_store::DomainKey;
use tidings_types::{AccountId, Timestamp};

use crate::domain_proof::{self, DomainStatus, VerificationView};
use crate::{CoreError, ErrorCode, Tidings};

/// A domain's signer, and whether the account may use the domain yet.
struct Entry {
    signer: Arc<Signer>,
    usable: bool,
}

/// Parsed signers by (account, domain).
#[derive(Default)]
pub struct DkimRegistry {
    signers: RwLock<HashMap<(AccountId, String), Entry>>,
}

impl std::fmt::Debug for DkimRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.signers.read().map(|s| s.len()).unwrap_or(0);
        write!(f, "DkimRegistry({n} keys)")
    }
}

impl DkimRegistry {
    /// The signer for an account's From domain (or a parent domain it owns,
    /// so `news.example.com` mail signs as `example.com`).
    pub fn signer(&self, account: AccountId, domain: &str) -> Option<Arc<Signer>> {
        self.entry(account, domain, |e| e.signer.clone())
    }

    fn entry<T>(&self, account: AccountId, domain: &str, f: impl Fn(&Entry) -> T) -> Option<T> {
        let signers = self.signers.read().ok()?;
        let mut d = domain;
        loop {
            if let Some(e) = signers.get(&(account, d.to_string())) {
                return Some(f(e));
            }
            d = d.split_once('.')?.1;
            if !d.contains('.') {
                return None;
            }
        }
    }

    /// Has the account added `domain`, or a parent domain of it?
    pub fn owns(&self, account: AccountId, domain: &str) -> bool {
        self.signer(account, domain).is_some()
    }

    /// May the account send from `domain` now: it added the domain (or a
    /// parent), and proved it where proof is asked for?
    fn usable(&self, account: AccountId, domain: &str) -> bool {
        self.entry(account, domain, |e| e.usable).unwrap_or(false)
    }

    fn insert(&self, account: AccountId, domain: String, signer: Signer, usable: bool) {
        if let Ok(mut s) = self.signers.write() {
            let signer = Arc::new(signer);
            s.insert((account, domain), Entry { signer, usable });
        }
    }

    fn set_usable(&self, account: AccountId, domain: &str) {
        if let Ok(mut s) = self.signers.write() {
            if let Some(e) = s.get_mut(&(account, domain.to_string())) {
                e.usable = true;
            }
        }
    }

    fn remove(&self, account: AccountId, domain: &str) {
        if let Ok(mut s) = self.signers.write() {
            s.remove(&(account, domain.to_string()));
        }
    }
}

/// `POST /v1/domains`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainInput {
    pub domain: String,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    #[schema(schema_with = key_algorithm_schema)]
    pub algorithm: Option<KeyAlgorithm>,
}

/// `rsa2048` or `ed25519`, as [`KeyAlgorithm`] is written.
fn key_algorithm_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["rsa2048", "ed25519"]))
        .build()
}

/// A sending domain as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub selector: String,
    #[schema(schema_with = key_algorithm_schema)]
    pub algorithm: KeyAlgorithm,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The TXT record to publish.
    pub dns: DnsView,
    /// `verified` once the TXT record was found in DNS.
    pub status: DomainStatus,
    #[schema(format = DateTime)]
    pub verified_at: Option<String>,
    /// Whether mail from it is accepted now: it is verified, or this
    /// account's domains need no proof.
    pub usable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DnsView {
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub value: String,
}

fn view(
    k: &DkimKey,
    created_at: Timestamp,
    verified_at: Option<Timestamp>,
    usable: bool,
) -> DomainView {
    DomainView {
        status: DomainStatus::of(verified_at),
        verified_at: verified_at.map(tidings_types::time::rfc3339),
        usable,
        domain: k.domain.clone(),
        selector: k.selector.clone(),
        algorithm: k.algorithm,
        created_at: tidings_types::time::rfc3339(created_at),
        dns: dns_view(k),
    }
}

/// The TXT record that publishes `k`'s public key.
fn dns_view(k: &DkimKey) -> DnsView {
    let dns = k.dns_record();
    DnsView {
        name: dns.name,
        kind: "TXT",
        value: dns.value,
    }
}

fn key_of(k: &DomainKey) -> Result<DkimKey, CoreError> {
    DkimKey::from_pem(&k.domain, &k.selector, k.private_pem.expose())
        .map_err(|e| CoreError::Internal(format!("stored DKIM key for {}: {e}", k.domain)))
}

impl Tidings {
    pub async fn add_domain(
        &self,
        account: AccountId,
        input: DomainInput,
    ) -> Result<DomainView, CoreError> {
        let selector = input
            .selector
            .unwrap_or_else(|| format!("tidings{}", self.clock.now().format("%Y%m")));
        let algorithm = input.algorithm.unwrap_or(KeyAlgorithm::Rsa2048);
        let domain = input
            .domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if crate::tracking_settings::is_numeric_name(&domain)
            || domain.parse::<std::net::IpAddr>().is_ok()
        {
            return Err(CoreError::invalid(
                ErrorCode::InvalidRequest,
                format!("`{domain}` is an IP address; a sending domain is a domain name"),
            ));
        }
        // A sending domain is one account's: another account's From
        // addresses in it, and its DKIM key, are not this one's to use.
        let taken = self
            .messages()?
            .domain_keys(None)
            .await?
            .iter()
            .any(|k| k.domain == domain && k.account_id != account);
        if taken {
            return Err(CoreError::invalid(
                ErrorCode::Conflict,
                format!("the sending domain {domain} is another account's"),
            ));
        }
        let key = DkimKey::generate(&domain, &selector, algorithm)
            .map_err(|e| CoreError::invalid(ErrorCode::InvalidRequest, e.to_string()))?;
        let signer = Signer::new(&key).map_err(|e| CoreError::Internal(e.to_string()))?;
        let now = self.clock.now();
        self.messages()?
            .add_domain_key(DomainKey {
                account_id: account,
                domain: key.domain.clone(),
                selector: key.selector.clone(),
                algorithm: serde_json::to_value(algorithm)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                private_pem: key.private_pem().clone(),
                created_at: now,
                verified_at: None,
            })
            .await?;
        let usable = !self.needs_proof(account).await?;
        self.dkim
            .insert(account, key.domain.clone(), signer, usable);
        Ok(view(&key, now, None, usable))
    }

    pub async fn list_domains(&self, account: AccountId) -> Result<Vec<DomainView>, CoreError> {
        let keys = self.messages()?.domain_keys(Some(account)).await?;
        let trusted = !self.needs_proof(account).await?;
        keys.iter()
            .map(|k| {
                let usable = trusted || k.verified_at.is_some();
                Ok(view(&key_of(k)?, k.created_at, k.verified_at, usable))
            })
            .collect()
    }

    /// Look up a sending domain's DKIM record; once it is found the domain
    /// is verified (and stays so: a later failed check changes nothing).
    pub async fn verify_domain(
        &self,
        account: AccountId,
        domain: &str,
    ) -> Result<VerificationView, CoreError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let stored = self
            .messages()?
            .domain_keys(Some(account))
            .await?
            .into_iter()
            .find(|k| k.domain == domain)
            .ok_or(CoreError::NotFound)?;
        let record = dns_view(&key_of(&stored)?);
        let (result, found) = domain_proof::look(self, &record, domain_proof::check_dkim).await?;
        let mut verified_at = stored.verified_at;
        if result == domain_proof::CheckResult::Verified && verified_at.is_none() {
            let now = self.clock.now();
            self.messages()?
                .set_domain_verified(account, domain.clone(), now)
                .await?;
            self.dkim.set_usable(account, &domain);
            verified_at = Some(now);
        }
        Ok(VerificationView {
            status: DomainStatus::of(verified_at),
            verified_at: verified_at.map(tidings_types::time::rfc3339),
            message: domain_proof::explain(result, &record),
            domain,
            record,
            result,
            found,
        })
    }

    pub async fn remove_domain(&self, account: AccountId, domain: &str) -> Result<(), CoreError> {
        let domain = domain.to_ascii_lowercase();
        self.messages()?
            .remove_domain_key(account, domain.clone())
            .await?;
        self.dkim.remove(account, &domain);
        Ok(())
    }

    /// Load every stored key into the signer registry (at start).
    pub async fn load_dkim(&self) -> Result<usize, CoreError> {
        let keys = self.messages()?.domain_keys(None).await?;
        let n = keys.len();
        for k in keys {
            let signer =
                Signer::new(&key_of(&k)?).map_err(|e| CoreError::Internal(e.to_string()))?;
            let usable = k.verified_at.is_some() || !self.needs_proof(k.account_id).await?;
            self.dkim.insert(k.account_id, k.domain, signer, usable);
        }
        Ok(n)
    }

    /// Refuse a From address whose domain the account has not added,
    /// unless the operator allows any sender.
    pub(crate) fn check_sender(&self, account: AccountId, from: &str) -> Result<(), CoreError> {
        if self.config.allow_any_sender {
            return Ok(());
        }
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        if !domain.is_empty() && self.dkim.usable(account, &domain) {
            return Ok(());
        }
        if !domain.is_empty() && self.dkim.owns(account, &domain) {
            return Err(CoreError::invalid(
                ErrorCode::DomainUnverified,
                format!(
                    "the sender domain `{domain}` (From: {from}) is not verified yet: publish \
                     its DKIM record (GET /v1/domains shows it) and check it with \
                     POST /v1/domains/{{domain}}/verify"
                ),
            ));
        }
        Err(CoreError::invalid(
            ErrorCode::UnknownSenderDomain,
            format!(
                "the sender domain `{domain}` (From: {from}) is not one of this account's \
                 sending domains; add it with POST /v1/domains {{\"domain\": \"{domain}\"}} \
                 and publish its DKIM record (an operator can allow any sender for \
                 development with `sending.allow_any_sender = true`)"
            ),
        ))
    }

    /// The signers outbound delivery uses.
    pub fn dkim_registry(&self) -> Arc<DkimRegistry> {
        self.dkim.clone()
    }
}
