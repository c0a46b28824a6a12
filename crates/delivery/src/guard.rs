//! SSRF protection: tidings must not become a way for an account to reach
//! the operator's own network (loopback services, the LAN, the cloud
//! metadata endpoint) by pointing a webhook at it.
//!
//! Three checks, because each alone can be bypassed:
//!
//! 1. [`check_url`] when a webhook is created or changed, for a clear
//!    error up front: scheme, credentials, literal IP hosts, `localhost`.
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
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

pub use tidings_types::address::{classify_ip, AddressClass, AddressPolicy, BlockedAddress};

/// Why a webhook URL is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL scheme must be http or https, not `{0}`")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL may not carry a user name or password; send credentials in a custom header such as Authorization")]
    Credentials,
    #[error(transparent)]
    BlockedAddress(BlockedAddress),
    #[error("`{host}` is a {class} host, which this server does not deliver to")]
    BlockedHost { host: String, class: AddressClass },
}

impl UrlError {
    /// A stable snake_case code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::Scheme(_) => "url_scheme",
            UrlError::NoHost => "url_no_host",
            UrlError::Credentials => "url_credentials",
            UrlError::BlockedAddress(_) | UrlError::BlockedHost { .. } => "url_blocked",
        }
    }
}

/// Validate a webhook URL when it is created or changed: http or https, a
/// host, no userinfo (it would be stored, shown and logged with the URL;
/// custom headers are the place for credentials), and a host that is not
/// refused on its face (a literal IP, `localhost`, `*.localhost`, the GCP
/// metadata name). Names are resolved only at delivery, by
/// [`GuardedResolver`].
pub fn check_url(url: &Url, policy: &AddressPolicy) -> Result<(), UrlError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(UrlError::Scheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let ip = match url.host() {
        None => return Err(UrlError::NoHost),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(UrlError::NoHost);
            }
            match name.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    let class = if name == "localhost" || name.ends_with(".localhost") {
                        AddressClass::Loopback
                    } else if name == "metadata.google.internal" {
                        AddressClass::Metadata
                    } else {
                        return Ok(());
                    };
                    return if policy.allows(class) {
                        Ok(())
                    } else {
                        Err(UrlError::BlockedHost { host: name, class })
                    };
                }
            }
        }
    };
    policy.check_ip(ip).map_err(UrlError::BlockedAddress)
}

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
