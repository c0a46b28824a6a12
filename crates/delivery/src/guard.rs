//! SSRF protection: tidings must not become a way for an account to reach
//! the operator's own network (loopback services, the LAN, the cloud
//! metadata endpoint) by pointing a webhook at it.
//!
//! Three checks, because each alone can be bypassed:
//!
//! 1. [`check_url`] (in [`tidings_types::address`]) when a webhook is
//!    created or changed, for a clear error up front: scheme, credentials,
//!    literal IP hosts, `localhost`.
//! 2. [`GuardedResolver`], the HTTP client's DNS resolver, which drops
//!    every address the policy refuses *at connect time*, so a name that
//!    resolved to a public address at creation and to 127.0.0.1 later (DNS
//!    rebinding) is still refused, and the client connects only to an
//!    address that was checked.
//! 3. The client checks literal-IP URLs itself before sending, because
//!    reqwest does not ask the resolver about them.
//!
//! The address classes and the policy are [`tidings_types::address`]'s,
//! shared with outbound mail.

use std::io;
use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub use tidings_types::address::{
    check_url, classify_ip, AddressClass, AddressPolicy, BlockedAddress, UrlError,
};

/// Why [`GuardedResolver`] returned no address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("could not resolve `{host}`")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
    #[error("`{host}` resolves only to addresses this server does not deliver to (e.g. {first})")]
    Blocked { host: String, first: BlockedAddress },
}

/// A DNS resolver for reqwest that resolves with the system resolver
/// (`tokio::net::lookup_host`) and keeps only the addresses the policy
/// allows, so the connection goes only to a checked address.
#[derive(Debug, Clone, Default)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    pub fn new(policy: AddressPolicy) -> Self {
        GuardedResolver { policy }
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Resolve `host` (port 0; reqwest fills in the URL's) and filter.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_string(),
                source,
            })?
            .collect();
        let mut first_blocked = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.policy.check_ip(a.ip()) {
                Ok(()) => true,
                Err(b) => {
                    first_blocked.get_or_insert(b);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_blocked) {
            (false, _) => Ok(allowed),
            (true, Some(first)) => Err(ResolveError::Blocked {
                host: host.to_string(),
                first,
            }),
            (true, None) => Err(ResolveError::NoAddress {
                host: host.to_string(),
            }),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
