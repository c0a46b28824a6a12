//! Which destinations an IP address is: public, loopback, private,
//! link-local, reserved, cloud metadata, and the classes no one may reach.
//! The one policy for every connection tidings makes on an account's
//! behalf: webhook deliveries and outbound mail to a domain's MX hosts.
//!
//! The classification looks through IPv6 forms that carry an IPv4 address
//! (mapped, compatible, NAT64, 6to4), so `::ffff:127.0.0.1` is loopback.
//! [`check_url`] applies the policy to a webhook URL on its face (scheme,
//! credentials, literal hosts), without resolving it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Which non-public destinations the operator allows. The default allows
/// none; tests and single-machine setups turn on `allow_loopback`, and
/// deployments that deliver inside their own network `allow_private`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allow 127.0.0.0/8, ::1 and `localhost`.
    pub allow_loopback: bool,
    /// Allow private (RFC 1918, ULA, CGNAT), link-local and reserved
    /// (documentation, benchmarking, …) ranges.
    pub allow_private: bool,
}

/// What kind of destination an IP address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    Public,
    /// 127.0.0.0/8, ::1. Allowed with `allow_loopback`.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7, fec0::/10.
    /// Allowed with `allow_private`.
    Private,
    /// 169.254/16, fe80::/10. Allowed with `allow_private`.
    LinkLocal,
    /// Documentation, benchmarking and other special-purpose ranges that
    /// no public receiver uses. Allowed with `allow_private`, since some
    /// networks use them internally.
    Reserved,
    /// Cloud instance metadata endpoints. Always refused.
    Metadata,
    /// 0.0.0.0/8 and ::. Always refused (0.0.0.0 reaches the local host).
    Unspecified,
    /// Always refused.
    Multicast,
    /// 255.255.255.255. Always refused.
    Broadcast,
}

impl AddressClass {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Reserved => "reserved",
            AddressClass::Metadata => "metadata",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Instance metadata services: AWS/GCP/Azure/OCI/DigitalOcean, AWS ECS task
/// metadata, Alibaba Cloud, and Azure's WireServer.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];
/// AWS IMDS over IPv6.
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Classify an address, looking through IPv6 forms that embed an IPv4 one.
pub fn classify_ip(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, (net, prefix): (Ipv4Addr, u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, prefix): (Ipv6Addr, u32)) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

const fn v6(a: u16, b: u16, c: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)
}

const CGNAT: (Ipv4Addr, u32) = (Ipv4Addr::new(100, 64, 0, 0), 10);

/// Special-purpose IPv4 ranges no public receiver uses.
const RESERVED_V4: [(Ipv4Addr, u32); 7] = [
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved for future use
];

const PRIVATE_V6: [(Ipv6Addr, u32); 2] = [
    (v6(0xfc00, 0, 0), 7),  // unique local
    (v6(0xfec0, 0, 0), 10), // site-local (deprecated)
];
const LINK_LOCAL_V6: (Ipv6Addr, u32) = (v6(0xfe80, 0, 0), 10);
const GLOBAL_UNICAST_V6: (Ipv6Addr, u32) = (v6(0x2000, 0, 0), 3);

/// Special-purpose ranges inside global unicast that no public receiver
/// uses; everything outside 2000::/3 (e.g. 100::/64, discard) is reserved too.
const RESERVED_V6: [(Ipv6Addr, u32); 7] = [
    (v6(0x2001, 0x0db8, 0), 32), // documentation
    (v6(0x3fff, 0, 0), 20),      // documentation (RFC 9637)
    (v6(0x2001, 0x0002, 0), 48), // benchmarking
    (v6(0x2001, 0, 0), 32),      // Teredo
    (v6(0x2001, 0x0010, 0), 28), // ORCHID (deprecated)
    (v6(0x2001, 0x0020, 0), 28), // ORCHIDv2
    (v6(0x5f00, 0, 0), 16),      // SRv6 SIDs
];

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    if METADATA_V4.contains(&ip) {
        Metadata
    } else if ip.is_broadcast() {
        Broadcast
    } else if ip.octets()[0] == 0 {
        Unspecified
    } else if ip.is_multicast() {
        Multicast
    } else if ip.is_loopback() {
        Loopback
    } else if ip.is_private() || in_v4(ip, CGNAT) {
        Private
    } else if ip.is_link_local() {
        LinkLocal
    } else if RESERVED_V4.iter().any(|&net| in_v4(ip, net)) {
        Reserved
    } else {
        Public
    }
}

/// The IPv4 address carried by an IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`)
/// or 6to4 (`2002:aabb:ccdd::/48`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(last32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(last32),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if METADATA_V6.contains(&ip) {
        Metadata
    } else if ip.is_unspecified() {
        Unspecified
    } else if ip.is_loopback() {
        Loopback
    } else if let Some(v4) = embedded_v4(ip) {
        classify_v4(v4)
    } else if ip.is_multicast() {
        Multicast
    } else if PRIVATE_V6.iter().any(|&net| in_v6(ip, net)) {
        Private
    } else if in_v6(ip, LINK_LOCAL_V6) {
        LinkLocal
    } else if RESERVED_V6.iter().any(|&net| in_v6(ip, net)) || !in_v6(ip, GLOBAL_UNICAST_V6) {
        Reserved
    } else {
        Public
    }
}

/// The policy refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is a {class} address, which this server does not deliver to")]
pub struct BlockedAddress {
    pub ip: IpAddr,
    pub class: AddressClass,
}

impl AddressPolicy {
    /// Does the policy allow destinations of this class?
    pub fn allows(&self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::Private | AddressClass::LinkLocal | AddressClass::Reserved => {
                self.allow_private
            }
            AddressClass::Metadata
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Broadcast => false,
        }
    }

    /// `Ok` when the client may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), BlockedAddress> {
        let class = classify_ip(ip);
        if self.allows(class) {
            Ok(())
        } else {
            Err(BlockedAddress { ip, class })
        }
    }
}

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
/// the delivery client's resolver.
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
