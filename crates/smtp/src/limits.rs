//! Connection admission: at most so many connections at once in all, and
//! at most so many from one client address, so one client cannot take
//! every slot. A connection holds a [`ConnectionPermit`] while it is
//! served; dropping it gives the slot back.
//!
//! Clients are counted by [`client_key`]: an IPv4 address as it is, an
//! IPv6 address by its /64 (one host usually holds a whole /64), an
//! IPv4-mapped IPv6 address as the IPv4 address.
//!
//! Public because the binary's HTTP listener admits its connections by the
//! same rules.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Every slot of the listener (or server) was taken.
    TotalLimit,
    /// The client's address already held its share of the slots.
    PerIpLimit,
}

/// Admits connections within a total and a per-client limit. Cheap to
/// clone; clones share the counts.
#[derive(Clone)]
pub struct ConnectionLimiter {
    total: Arc<Semaphore>,
    per_ip: usize,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection's slot, given back on drop.
pub struct ConnectionPermit {
    _slot: OwnedSemaphorePermit,
    key: IpAddr,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimiter {
    /// At most `total` connections at once, and at most `per_ip` of them
    /// from one client (both at least 1).
    pub fn new(total: usize, per_ip: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total.clamp(1, Semaphore::MAX_PERMITS))),
            per_ip: per_ip.max(1),
            clients: Arc::default(),
        }
    }

    /// A slot for a connection from `ip`, or why there is none. The
    /// per-client limit is checked first, so a client over its share is
    /// told so even when the listener is also full.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let key = client_key(ip);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let held = clients.get(&key).copied().unwrap_or(0);
        if held >= self.per_ip {
            return Err(Refusal::PerIpLimit);
        }
        let slot = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TotalLimit)?;
        clients.insert(key, held + 1);
        Ok(ConnectionPermit {
            _slot: slot,
            key,
            clients: self.clients.clone(),
        })
    }

    /// Connections admitted and not yet ended.
    pub fn open(&self) -> usize {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.values().sum()
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = clients.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.key);
            }
        }
    }
}

/// The address a client is counted by: IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_then_total_and_slots_come_back() {
        let l = ConnectionLimiter::new(3, 2);
        let a1 = l.admit(ip("192.0.2.1")).unwrap();
        let _a2 = l.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.1")).err(), Some(Refusal::PerIpLimit));
        let _b1 = l.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.3")).err(), Some(Refusal::TotalLimit));
        assert_eq!(l.open(), 3);
        drop(a1);
        assert_eq!(l.open(), 2);
        let _c1 = l.admit(ip("192.0.2.3")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.1")).err(), Some(Refusal::TotalLimit));
    }

    #[test]
    fn ipv6_counted_by_prefix() {
        let l = ConnectionLimiter::new(10, 1);
        let _a = l.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(l.admit(ip("2001:db8::2")).err(), Some(Refusal::PerIpLimit));
        let _b = l.admit(ip("2001:db8:0:1::1")).unwrap();
        let _c = l.admit(ip("::ffff:192.0.2.7")).unwrap();
        assert_eq!(l.admit(ip("192.0.2.7")).err(), Some(Refusal::PerIpLimit));
    }
}
