//! The DNS lookups domain checks make: TXT records through the same name
//! servers outbound mail uses (`outbound.nameservers`, or the system's).
//! Nothing is cached, so a check right after a record is published sees it
//! as soon as the name servers do.

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use hickory_resolver::error::ResolveErrorKind;
use hickory_resolver::TokioAsyncResolver;
use tidings_core::domain_proof::{LookupError, TxtResolver};

pub struct TxtLookups {
    resolver: TokioAsyncResolver,
}

impl TxtLookups {
    /// `nameservers` empty means the system's resolver configuration.
    pub fn new(nameservers: &[std::net::SocketAddr]) -> anyhow::Result<Self> {
        let (cfg, mut opts) = if nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()?
        } else {
            let mut cfg = ResolverConfig::new();
            for ns in nameservers {
                cfg.add_name_server(NameServerConfig::new(*ns, Protocol::Udp));
            }
            (cfg, ResolverOpts::default())
        };
        opts.cache_size = 0;
        opts.attempts = 2;
        opts.timeout = std::time::Duration::from_secs(3);
        Ok(Self {
            resolver: TokioAsyncResolver::tokio(cfg, opts),
        })
    }
}

#[async_trait]
impl TxtResolver for TxtLookups {
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        // Fully qualified: no search domain is appended.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn).await {
            Ok(records) => Ok(records
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>()
                })
                .collect()),
            Err(e) => match e.kind() {
                ResolveErrorKind::NoRecordsFound { .. } => Err(LookupError::NotFound),
                _ => Err(LookupError::Failed(e.to_string())),
            },
        }
    }
}
