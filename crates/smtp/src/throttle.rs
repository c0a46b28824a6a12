//! Failed-AUTH throttling per client IP, shared by every session of a
//! server (so reconnecting does not reset it). Clients are counted as the
//! connection limits count them ([`crate::limits::client_key`]): IPv6 by
//! its /64, since one host usually holds a whole /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::AuthLimits;
use crate::limits::client_key as key;

/// Above this many remembered IPs, expired ones are dropped on insert.
const PRUNE_ABOVE: usize = 10_000;

pub(crate) struct AuthThrottle {
    limits: AuthLimits,
    ips: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl AuthThrottle {
    pub(crate) fn new(limits: AuthLimits) -> Self {
        Self {
            limits,
            ips: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self, f: &Failures, now: Instant) -> bool {
        now.duration_since(f.last) < self.limits.window
    }

    /// The IP has used up its failures: refuse AUTH without checking.
    pub(crate) fn blocked(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let ips = self.ips.lock().unwrap_or_else(|p| p.into_inner());
        ips.get(&key(ip))
            .is_some_and(|f| self.live(f, now) && f.count >= self.limits.max_failures_per_ip)
    }

    /// Count a failure; how long to wait before answering it.
    pub(crate) fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut ips = self.ips.lock().unwrap_or_else(|p| p.into_inner());
        if ips.len() > PRUNE_ABOVE {
            ips.retain(|_, f| now.duration_since(f.last) < self.limits.window);
        }
        let entry = ips.entry(key(ip)).or_insert(Failures {
            count: 0,
            last: now,
        });
        if !self.live(entry, now) {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        let doublings = entry.count.saturating_sub(1).min(16);
        self.limits
            .delay
            .saturating_mul(1 << doublings)
            .min(self.limits.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AuthLimits {
        AuthLimits {
            max_failures_per_session: 3,
            max_failures_per_ip: 3,
            window: Duration::from_secs(60),
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delay_doubles_is_capped_and_expires() {
        let t = AuthThrottle::new(limits());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.failed(ip), Duration::from_secs(1));
        assert_eq!(t.failed(ip), Duration::from_secs(2));
        assert!(!t.blocked(ip));
        assert_eq!(t.failed(ip), Duration::from_secs(4));
        assert!(t.blocked(ip));
        assert_eq!(t.failed(ip), Duration::from_secs(5));
        assert!(!t.blocked("192.0.2.2".parse().unwrap()));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!t.blocked(ip));
        assert_eq!(t.failed(ip), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_counted_by_prefix() {
        let t = AuthThrottle::new(limits());
        for a in ["2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"] {
            t.failed(a.parse().unwrap());
        }
        assert!(t.blocked("2001:db8::9".parse().unwrap()));
        assert!(!t.blocked("2001:db8:0:1::1".parse().unwrap()));
        t.failed("::ffff:192.0.2.7".parse().unwrap());
        assert!(!t.blocked("192.0.2.7".parse().unwrap()));
    }
}
