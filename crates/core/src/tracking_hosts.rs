//! Whose tracking domain a request came in on.
//!
//! An account may serve its tracking links from a domain of its own (a
//! CNAME to tidings). A request on such a host is honoured only for that
//! account's tokens: otherwise one account's links could be followed, and
//! its redirects served, under another account's brand. Requests on any
//! other host (the global base URL, an internal address behind a proxy, a
//! domain an account used before) are not restricted: tokens are signed,
//! so they only ever act on their own recipient.
//!
//! The hosts are read from the store at start and again after every change
//! of an account's domain in this process. A domain that still waits for
//! its proof ([`crate::domain_proof`]) is not one yet.

use std::collections::HashMap;
use std::sync::RwLock;

use tidings_types::AccountId;

use crate::{CoreError, Tidings};

/// Custom tracking hosts and the accounts that use them (usually one).
#[derive(Debug, Default)]
pub struct CustomHosts(RwLock<HashMap<String, Vec<AccountId>>>);

/// A host as compared here: lowercase, without a trailing dot, and without
/// the port when it is 80 or 443 (a proxy may or may not pass those on).
fn key(host: &str, port: Option<&str>) -> String {
    let mut k = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(p) = port.filter(|p| !matches!(*p, "80" | "443")) {
        k.push(':');
        k.push_str(p);
    }
    k
}

/// The key of a `Host` header's value (`name`, `name:port`, `[v6]:port`).
fn request_key(host: &str) -> String {
    match host.rsplit_once(':') {
        Some((h, p))
            if !h.is_empty()
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            key(h, Some(p))
        }
        _ => key(host, None),
    }
}

/// The key of a base URL's host, if it has one.
pub(crate) fn url_key(url: &url::Url) -> Option<String> {
    let port = url.port().map(|p| p.to_string());
    Some(key(url.host_str()?, port.as_deref()))
}

impl CustomHosts {
    /// Replace the hosts with those of these (account, base URL) pairs.
    /// The global base URL's host is never an account's own.
    pub fn set(&self, domains: Vec<(AccountId, String)>, global: &url::Url) {
        let global = url_key(global);
        let mut map: HashMap<String, Vec<AccountId>> = HashMap::new();
        for (account, base) in domains {
            let Some(k) = url::Url::parse(&base).ok().as_ref().and_then(url_key) else {
                continue;
            };
            if Some(&k) != global.as_ref() {
                map.entry(k).or_default().push(account);
            }
        }
        *self.0.write().expect("hosts lock") = map;
    }

    /// The accounts whose tokens a request on `host` may use; `None` when
    /// any account's may (it is no account's custom host).
    pub fn accounts_of(&self, host: Option<&str>) -> Option<Vec<AccountId>> {
        let map = self.0.read().expect("hosts lock");
        if map.is_empty() {
            return None;
        }
        map.get(&request_key(host?)).cloned()
    }
}

/// Whether a request limited to `allowed` (see [`CustomHosts::accounts_of`])
/// may use a token of `account`.
pub(crate) fn allows(allowed: &Option<Vec<AccountId>>, account: AccountId) -> bool {
    allowed.as_ref().is_none_or(|a| a.contains(&account))
}

impl Tidings {
    /// Read the accounts' custom tracking hosts from the store.
    pub async fn load_tracking_hosts(&self) -> Result<(), CoreError> {
        if let Some(t) = &self.tracker {
            let mut usable = Vec::new();
            for d in self.store.tracking_domains().await? {
                if d.verified_at.is_some() || !self.needs_proof(d.account_id).await? {
                    usable.push((d.account_id, d.base_url));
                }
            }
            t.hosts.set(usable, &t.base_url);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(pairs: &[(AccountId, &str)]) -> CustomHosts {
        let h = CustomHosts::default();
        let global = url::Url::parse("https://t.tidings.example").unwrap();
        h.set(
            pairs.iter().map(|(a, d)| (*a, d.to_string())).collect(),
            &global,
        );
        h
    }

    #[test]
    fn hosts_match_whatever_the_case_dot_or_default_port() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let h = hosts(&[
            (a, "https://links.a.example"),
            (b, "http://track.b.example:8080/t"),
        ]);
        for host in ["links.a.example", "LINKS.A.example.", "links.a.example:443"] {
            assert_eq!(h.accounts_of(Some(host)), Some(vec![a]), "{host}");
        }
        assert_eq!(h.accounts_of(Some("track.b.example:8080")), Some(vec![b]));
        assert_eq!(h.accounts_of(Some("track.b.example")), None, "another port");
        assert_eq!(h.accounts_of(Some("127.0.0.1:3000")), None);
        assert_eq!(h.accounts_of(None), None);
    }

    #[test]
    fn the_global_host_is_never_an_accounts_own_and_shared_hosts_allow_each() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let h = hosts(&[
            (a, "https://t.tidings.example/a"),
            (a, "https://shared.example"),
            (b, "https://shared.example/b"),
        ]);
        assert_eq!(h.accounts_of(Some("t.tidings.example")), None);
        let shared = h.accounts_of(Some("shared.example"));
        assert!(allows(&shared, a) && allows(&shared, b));
        assert!(!allows(&shared, AccountId::new()));
        assert!(allows(&None, AccountId::new()));
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let a = AccountId::new();
        let h = hosts(&[(a, "http://[::1]:9000")]);
        assert_eq!(h.accounts_of(Some("[::1]:9000")), Some(vec![a]));
        assert_eq!(request_key("[::1]"), "[::1]");
    }
}
