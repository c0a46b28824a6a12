//! Where mail for a domain goes: a configured transport (a smarthost for
//! everything, or a host per domain, as Postfix's transport maps), or the
//! domain's MX records in preference order, falling back to its address
//! records when it has no MX (RFC 5321 §5.1). A null MX (RFC 7505) or a
//! domain that does not exist is permanent; a DNS failure is temporary.
//!
//! A recipient's domain is the sender's to choose, so its mail hosts pass
//! the same address policy as webhook targets: an MX (or address record)
//! on loopback, private, link-local or metadata addresses is skipped, and
//! a domain with nothing else is refused for good. Configured transports
//! and the smarthost are the operator's own choice and are not checked.

use std::collections::HashMap;
use std::net::SocketAddr;

use hickory_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use hickory_resolver::error::ResolveErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::TokioAsyncResolver;
use tidings_types::address::{AddressPolicy, BlockedAddress};

/// A host to try, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The domain cannot receive mail (no such domain, null MX).
    #[error("{0}")]
    Permanent(String),
    /// Try again later (DNS failure, timeout).
    #[error("{0}")]
    Temporary(String),
}

pub struct Router {
    transports: HashMap<String, String>,
    smarthost: Option<String>,
    mx_port: u16,
    mx_policy: AddressPolicy,
    resolver: TokioAsyncResolver,
}

impl Router {
    /// `nameservers` empty means the system's resolver configuration.
    pub fn new(
        smarthost: Option<String>,
        transports: HashMap<String, String>,
        nameservers: &[SocketAddr],
        mx_port: u16,
        mx_policy: AddressPolicy,
    ) -> std::io::Result<Self> {
        let resolver = if nameservers.is_empty() {
            TokioAsyncResolver::tokio_from_system_conf().map_err(std::io::Error::other)?
        } else {
            let mut cfg = ResolverConfig::new();
            for ns in nameservers {
                cfg.add_name_server(NameServerConfig::new(*ns, Protocol::Udp));
            }
            let mut opts = ResolverOpts::default();
            opts.attempts = 2;
            TokioAsyncResolver::tokio(cfg, opts)
        };
        Ok(Self {
            transports: transports
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            smarthost,
            mx_port,
            mx_policy,
            resolver,
        })
    }

    /// Whether mail for `domain` goes to the smarthost (a per-domain
    /// transport takes precedence over it): the destination whose
    /// certificate is verified and which gets the credentials.
    pub fn is_smarthost(&self, domain: &str) -> bool {
        self.smarthost.is_some() && !self.transports.contains_key(domain)
    }

    pub async fn destinations(&self, domain: &str) -> Result<Vec<Destination>, RouteError> {
        let configured = self.transports.get(domain).or(self.smarthost.as_ref());
        if let Some(hostport) = configured {
            return self.resolve_hostport(hostport).await;
        }
        let mx = match self.resolver.mx_lookup(format!("{domain}.")).await {
            Ok(mx) => {
                let mut v: Vec<(u16, String)> = mx
                    .iter()
                    .map(|r| {
                        (
                            r.preference(),
                            r.exchange().to_utf8().trim_end_matches('.').to_string(),
                        )
                    })
                    .collect();
                v.sort();
                v
            }
            Err(e) => match e.kind() {
                ResolveErrorKind::NoRecordsFound { response_code, .. }
                    if *response_code == ResponseCode::NXDomain =>
                {
                    return Err(RouteError::Permanent(format!(
                        "domain {domain} does not exist"
                    )));
                }
                ResolveErrorKind::NoRecordsFound { .. } => vec![(0, domain.to_string())],
                _ => {
                    return Err(RouteError::Temporary(format!(
                        "DNS lookup for {domain} failed: {e}"
                    )))
                }
            },
        };
        if mx.len() == 1 && (mx[0].1.is_empty() || mx[0].1 == ".") {
            return Err(RouteError::Permanent(format!(
                "{domain} does not accept mail (null MX)"
            )));
        }
        let mut out = Vec::new();
        let mut blocked: Option<BlockedAddress> = None;
        for (_, host) in mx {
            if let Ok(ips) = self.resolver.lookup_ip(format!("{host}.")).await {
                for ip in ips.iter() {
                    if let Err(b) = self.mx_policy.check_ip(ip) {
                        blocked.get_or_insert(b);
                        continue;
                    }
                    out.push(Destination {
                        host: host.clone(),
                        addr: SocketAddr::new(ip, self.mx_port),
                    });
                }
            }
        }
        if let (true, Some(b)) = (out.is_empty(), blocked) {
            return Err(RouteError::Permanent(format!(
                "the mail hosts of {domain} are only at addresses this server does not deliver to ({b}); \
                 an operator can allow them with outbound.allow_loopback or outbound.allow_private"
            )));
        }
        if out.is_empty() {
            return Err(RouteError::Temporary(format!(
                "no address for the mail hosts of {domain}"
            )));
        }
        Ok(out)
    }

    async fn resolve_hostport(&self, hostport: &str) -> Result<Vec<Destination>, RouteError> {
        let (host, port) = hostport
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .unwrap_or((hostport, 25));
        if let Ok(ip) = host.parse() {
            return Ok(vec![Destination {
                host: host.to_string(),
                addr: SocketAddr::new(ip, port),
            }]);
        }
        let ips = self
            .resolver
            .lookup_ip(format!("{host}."))
            .await
            .map_err(|e| RouteError::Temporary(format!("cannot resolve {host}: {e}")))?;
        Ok(ips
            .iter()
            .map(|ip| Destination {
                host: host.to_string(),
                addr: SocketAddr::new(ip, port),
            })
            .collect())
    }
}
