//! File descriptors held in reserve. At start the soft `RLIMIT_NOFILE` is
//! raised to the hard limit, and the listeners' connection limits are
//! checked against it: their sum must leave [`reserve`] descriptors free
//! for everything else the process opens (the database and its WAL,
//! outbound SMTP, webhook deliveries, DNS, logs), so a flood that fills
//! every listener cannot starve delivery or the store, and no listener
//! ever meets `Too many open files` on accept. Limits that do not fit are
//! scaled down, each in proportion, with a warning; the plan is logged.

/// The connection limits the listeners run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit after raising it (`u64::MAX`: unlimited).
    pub limit: u64,
    /// Descriptors left for everything but the listeners' connections.
    pub reserved: u64,
    pub http: usize,
    pub submission: usize,
    pub inbound: usize,
}

/// Descriptors kept free of listener connections: a quarter of the limit,
/// and at least 256 (the store, at most 64 outbound SMTP connections,
/// webhook deliveries, DNS, and connections refused at a limit, each of
/// which is open for an instant).
pub fn reserve(limit: u64) -> u64 {
    (limit / 4).max(256)
}

/// Raise the soft limit as far as the hard limit allows; the soft limit
/// in force afterwards.
pub fn raise_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let soft = rlimit::Resource::NOFILE.get().map(|(soft, _)| soft);
            tracing::warn!(error = %e, ?soft, "cannot raise the file descriptor limit");
            soft.unwrap_or(1024)
        }
    }
}

/// Fit the configured connection limits (`http`, `submission`, `inbound`,
/// 0 for a listener that is off) under `limit` less the reserve.
pub fn plan(limit: u64, http: usize, submission: usize, inbound: usize) -> Budget {
    let reserved = reserve(limit);
    let wanted = (http + submission + inbound) as u64;
    let room = limit.saturating_sub(reserved);
    let fit = |n: usize| -> usize {
        if n == 0 || wanted <= room {
            return n;
        }
        // In proportion, and never below one connection.
        ((n as u128 * room as u128 / wanted as u128) as usize).max(1)
    };
    Budget {
        limit,
        reserved,
        http: fit(http),
        submission: fit(submission),
        inbound: fit(inbound),
    }
}

/// [`raise_limit`], then [`plan`], logged.
pub fn budget(http: usize, submission: usize, inbound: usize) -> Budget {
    let b = plan(raise_limit(), http, submission, inbound);
    if (b.http, b.submission, b.inbound) != (http, submission, inbound) {
        tracing::warn!(
            limit = b.limit,
            reserved = b.reserved,
            http = b.http,
            submission = b.submission,
            inbound = b.inbound,
            "the connection limits do not fit under the file descriptor limit: scaled down (raise the hard RLIMIT_NOFILE, or lower the limits)"
        );
    } else {
        tracing::info!(
            limit = b.limit,
            reserved = b.reserved,
            http = b.http,
            submission = b.submission,
            inbound = b.inbound,
            "file descriptors: connection limits fit with the reserve"
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_fit_are_kept() {
        let b = plan(20_000, 4096, 256, 256);
        assert_eq!((b.http, b.submission, b.inbound), (4096, 256, 256));
        assert_eq!(b.reserved, 5000);
    }

    #[test]
    fn limits_that_do_not_fit_are_scaled_down_leaving_the_reserve() {
        let b = plan(1024, 4096, 256, 0);
        assert_eq!(b.reserved, 256);
        assert_eq!(b.inbound, 0);
        assert!(b.http + b.submission <= 1024 - 256, "{b:?}");
        assert!(b.http > b.submission && b.submission >= 1, "{b:?}");
        let tiny = plan(100, 4096, 256, 256);
        assert_eq!((tiny.http, tiny.submission, tiny.inbound), (1, 1, 1));
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert!(raise_limit() >= soft);
    }
}
