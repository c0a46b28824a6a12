//! An account's tracking settings: whether its messages get an open pixel,
//! tracked links and `List-Unsubscribe` unless a message says otherwise,
//! and the base URL of its tracking links (a custom tracking domain
//! CNAMEd to tidings, or the operator's global one).
//!
//! The accept path resolves these once, per message, and stores the
//! outcome on the message: the click endpoint re-runs the rewrite a
//! message went out with to find its links, so changing the settings later
//! must not change what an already accepted message's links mean.

use serde::{Deserialize, Serialize};
use tidings_store::{AccountTracking, AccountTrackingPatch};
use tidings_types::AccountId;

use crate::domain_proof::{self, DomainStatus, VerificationView};
use crate::domains::DnsView;
use crate::webhooks::double_option;
use crate::{CoreError, ErrorCode, Tidings};

/// `PATCH /v1/tracking`: absent fields stay as they are; `null` resets
/// `unsubscribe` to the operator's default and `domain` to the global
/// tracking base URL.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingPatch {
    #[serde(default)]
    pub opens: Option<bool>,
    #[serde(default)]
    pub clicks: Option<bool>,
    #[serde(default, with = "double_option")]
    pub unsubscribe: Option<Option<bool>>,
    #[serde(default, with = "double_option")]
    pub domain: Option<Option<String>>,
}

/// An account's tracking settings as the API shows them: defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrackingView {
    pub opens: bool,
    pub clicks: bool,
    pub unsubscribe: bool,
    /// The account's custom tracking base URL, if it set one.
    pub domain: Option<String>,
    /// The base URL tracking links are made with now: `domain` once it is
    /// usable, or the global one (`None` when tracking is not configured).
    pub base_url: Option<String>,
    /// `domain`'s proof: `verified` once its TXT record was found (only
    /// with a `domain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_status: Option<DomainStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub domain_verified_at: Option<String>,
    /// The TXT record that proves `domain` is this account's (only with a
    /// `domain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_record: Option<DnsView>,
}

/// What the accept path applies to a message that does not say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackingDefaults {
    pub opens: bool,
    pub clicks: bool,
    /// `None` when tracking is not configured.
    pub unsubscribe: Option<bool>,
    /// `None` when tracking is not configured.
    pub base_url: Option<String>,
}

/// Longest custom tracking base URL accepted.
const MAX_DOMAIN_LEN: usize = 512;

fn invalid_domain(msg: impl std::fmt::Display) -> CoreError {
    CoreError::invalid(
        ErrorCode::InvalidUrl,
        format!("domain: {msg} (expected a base URL such as `https://track.example.com`)"),
    )
}

/// Check a custom tracking base URL and return its normalized form:
/// lower-case scheme and host, no default port, no trailing slash. It must
/// be `http` or `https`, name a host, and carry no credentials, query or
/// fragment (tracking paths are appended to it).
/// A name whose last label is all digits reads as an address, not a
/// domain (`127.0.0.1`, `10.1`): no top-level domain is numeric.
pub(crate) fn is_numeric_name(name: &str) -> bool {
    name.trim_end_matches('.')
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()))
}

/// The host name of a normalized base URL: the name its verification
/// record is published under.
fn host_of(base: &str) -> Option<String> {
    let url = url::Url::parse(base).ok()?;
    Some(url.host_str()?.trim_end_matches('.').to_string())
}

pub fn normalize_domain(input: &str) -> Result<String, CoreError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(invalid_domain(
            "is empty; use null to go back to the default",
        ));
    }
    if s.len() > MAX_DOMAIN_LEN {
        return Err(invalid_domain(format!(
            "is longer than {MAX_DOMAIN_LEN} characters"
        )));
    }
    let url = url::Url::parse(s).map_err(|e| invalid_domain(format!("`{s}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_domain(format!(
            "the scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    match url.host() {
        Some(url::Host::Domain(h)) if !h.is_empty() && !is_numeric_name(h) => {}
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err(invalid_domain("must be a domain name, not an IP address"))
        }
        Some(url::Host::Domain(h)) if !h.is_empty() => {
            return Err(invalid_domain("must be a domain name, not an IP address"))
        }
        _ => return Err(invalid_domain("names no host")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid_domain("must not carry credentials"));
    }
    if url.query().is_some() {
        return Err(invalid_domain("must not have a query string"));
    }
    if url.fragment().is_some() {
        return Err(invalid_domain("must not have a fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

impl Tidings {
    /// The global defaults: the tracker's unsubscribe setting and base URL.
    fn global_tracking(&self) -> (Option<bool>, Option<String>) {
        match &self.tracker {
            Some(t) => (
                Some(t.unsubscribe),
                Some(t.base_url.as_str().trim_end_matches('/').to_string()),
            ),
            None => (None, None),
        }
    }

    async fn tracking_view(
        &self,
        account: AccountId,
        s: AccountTracking,
    ) -> Result<TrackingView, CoreError> {
        let (unsubscribe, base) = self.global_tracking();
        let usable = self.usable_tracking_domain(account, &s).await?;
        Ok(TrackingView {
            opens: s.opens,
            clicks: s.clicks,
            unsubscribe: s.unsubscribe.or(unsubscribe).unwrap_or(false),
            base_url: usable.or(base),
            domain_status: s
                .domain
                .as_ref()
                .map(|_| DomainStatus::of(s.domain_verified_at)),
            domain_verified_at: s.domain_verified_at.map(tidings_types::time::rfc3339),
            domain_record: s
                .domain
                .as_deref()
                .and_then(host_of)
                .map(|h| domain_proof::tracking_record(account, &h)),
            domain: s.domain,
        })
    }

    /// The account's tracking domain, if it set one and may use it now.
    async fn usable_tracking_domain(
        &self,
        account: AccountId,
        s: &AccountTracking,
    ) -> Result<Option<String>, CoreError> {
        Ok(match &s.domain {
            Some(d) if s.domain_verified_at.is_some() || !self.needs_proof(account).await? => {
                Some(d.clone())
            }
            _ => None,
        })
    }

    pub async fn tracking_settings(&self, account: AccountId) -> Result<TrackingView, CoreError> {
        let s = self.store.account_tracking(account).await?;
        self.tracking_view(account, s).await
    }

    /// Look up the tracking domain's TXT record; once it is found the
    /// domain is verified and its links are made with it.
    pub async fn verify_tracking_domain(
        &self,
        account: AccountId,
    ) -> Result<VerificationView, CoreError> {
        let s = self.store.account_tracking(account).await?;
        let Some((base, host)) = s.domain.as_deref().and_then(|d| Some((d, host_of(d)?))) else {
            return Err(CoreError::invalid(
                ErrorCode::NotFound,
                "the account has no custom tracking domain (set one with PATCH /v1/tracking)",
            ));
        };
        let record = domain_proof::tracking_record(account, &host);
        let (result, found) =
            domain_proof::look(self, &record, domain_proof::check_tracking).await?;
        let mut verified_at = s.domain_verified_at;
        if result == domain_proof::CheckResult::Verified && verified_at.is_none() {
            let now = self.clock.now();
            let patch = AccountTrackingPatch {
                domain_verified_at: Some(Some(now)),
                ..Default::default()
            };
            self.store
                .update_account_tracking(account, patch, now)
                .await?;
            self.load_tracking_hosts().await?;
            verified_at = Some(now);
        }
        Ok(VerificationView {
            domain: base.to_string(),
            status: DomainStatus::of(verified_at),
            verified_at: verified_at.map(tidings_types::time::rfc3339),
            message: domain_proof::explain(result, &record),
            record,
            result,
            found,
        })
    }

    pub async fn update_tracking_settings(
        &self,
        account: AccountId,
        patch: TrackingPatch,
    ) -> Result<TrackingView, CoreError> {
        let domain = match patch.domain {
            Some(Some(d)) => {
                let d = normalize_domain(&d)?;
                self.check_tracking_domain_free(account, &d).await?;
                Some(Some(d))
            }
            other => other,
        };
        // A new host must be proven anew; the same one keeps its proof.
        let current = self.store.account_tracking(account).await?;
        let new_host = |d: &Option<String>| d.as_deref().and_then(host_of);
        let domain_verified_at = match &domain {
            Some(d) if new_host(d) != new_host(&current.domain) => Some(None),
            _ => None,
        };
        let domain_changes = domain.is_some();
        let s = self
            .store
            .update_account_tracking(
                account,
                AccountTrackingPatch {
                    opens: patch.opens,
                    clicks: patch.clicks,
                    unsubscribe: patch.unsubscribe,
                    domain,
                    domain_verified_at,
                },
                self.clock.now(),
            )
            .await?;
        if domain_changes {
            self.load_tracking_hosts().await?;
        }
        self.tracking_view(account, s).await
    }

    /// A tracking domain belongs to one account: another's claim is a
    /// conflict, so no account can serve its links (and have them
    /// honoured) under another's host.
    async fn check_tracking_domain_free(
        &self,
        account: AccountId,
        domain: &str,
    ) -> Result<(), CoreError> {
        // Compared as requests on it are: the host, and a port other
        // than 80 or 443.
        let host = |base: &str| {
            url::Url::parse(base)
                .ok()
                .as_ref()
                .and_then(crate::tracking_hosts::url_key)
        };
        let wanted = host(domain);
        let taken = self
            .store
            .tracking_domains()
            .await?
            .into_iter()
            .any(|d| d.account_id != account && host(&d.base_url) == wanted);
        if taken {
            return Err(CoreError::invalid(
                crate::ErrorCode::Conflict,
                format!("the tracking domain {domain} is another account's"),
            ));
        }
        Ok(())
    }

    /// What a new message of `account` gets unless it says otherwise.
    pub(crate) async fn tracking_defaults(
        &self,
        account: AccountId,
    ) -> Result<TrackingDefaults, CoreError> {
        let s = self.store.account_tracking(account).await?;
        let (unsubscribe, base) = self.global_tracking();
        let own = self.usable_tracking_domain(account, &s).await?;
        Ok(TrackingDefaults {
            opens: s.opens,
            clicks: s.clicks,
            unsubscribe: unsubscribe.map(|global| s.unsubscribe.unwrap_or(global)),
            base_url: base.map(|global| own.unwrap_or(global)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        normalize_domain(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match normalize_domain(s) {
            Ok(v) => panic!("{s} was accepted as {v}"),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::InvalidUrl, "{s}");
                e.to_string()
            }
        }
    }

    #[test]
    fn normalizes_scheme_host_port_and_slash() {
        assert_eq!(ok("https://track.example.com"), "https://track.example.com");
        assert_eq!(
            ok("  HTTPS://Track.Example.COM/ "),
            "https://track.example.com"
        );
        assert_eq!(
            ok("https://track.example.com:443/"),
            "https://track.example.com"
        );
        assert_eq!(
            ok("http://track.example.com:80"),
            "http://track.example.com"
        );
        assert_eq!(
            ok("http://track.example.com:8080"),
            "http://track.example.com:8080"
        );
        assert_eq!(ok("https://example.com/t/"), "https://example.com/t");
        assert_eq!(
            ok("https://bücher.example"),
            "https://xn--bcher-kva.example"
        );
    }

    #[test]
    fn an_address_is_no_tracking_domain() {
        for s in [
            "http://127.0.0.1:9000",
            "http://[::1]",
            "https://10.1",
            "http://192.168.0.1.:80",
        ] {
            assert!(err(s).contains("not an IP address"), "{s}");
        }
    }

    #[test]
    fn normalizing_is_idempotent() {
        for s in ["HTTPS://A.example:443/x/", "http://b.example:8080"] {
            let once = ok(s);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn refuses_what_cannot_be_a_base_url() {
        assert!(err("").contains("empty"));
        assert!(err("track.example.com").contains("not a URL"));
        assert!(err("ftp://track.example.com").contains("scheme"));
        assert!(err("mailto:track@example.com").contains("scheme"));
        assert!(err("https://track.example.com/?a=1").contains("query"));
        assert!(err("https://track.example.com/?").contains("query"));
        assert!(err("https://track.example.com/#top").contains("fragment"));
        assert!(err("https://user:pw@track.example.com").contains("credentials"));
        assert!(err("https://").contains("not a URL"));
        assert!(err(&format!("https://{}.example", "a".repeat(600))).contains("longer"));
    }

    #[test]
    fn a_patch_tells_absent_from_null() {
        let p: TrackingPatch = serde_json::from_str(r#"{"opens": false}"#).unwrap();
        assert_eq!(
            (p.opens, p.unsubscribe, p.domain),
            (Some(false), None, None)
        );
        let p: TrackingPatch =
            serde_json::from_str(r#"{"domain": null, "unsubscribe": null}"#).unwrap();
        assert_eq!((p.unsubscribe, p.domain), (Some(None), Some(None)));
        let e = serde_json::from_str::<TrackingPatch>(r#"{"open": false}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
