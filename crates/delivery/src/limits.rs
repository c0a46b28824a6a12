//! Protecting the receiver: per-webhook limits on requests in flight and on
//! requests started per second.
//!
//! In-flight is a semaphore: a [`LimitPermit`] holds one slot until it is
//! dropped, i.e. until the response (or error) is in. The rate is a pacer
//! rather than a bucket with a burst: starts are spaced evenly, one every
//! `1/N` s, so a receiver that asked for N per second never sees more than
//! N in any one-second window, and a backlog drains smoothly instead of in
//! bursts. Both use tokio's clock, so tests run them on a paused clock.
//!
//! A `Limiter` is immutable: when a webhook's settings change, the
//! dispatcher builds a new one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings_types::WebhookSettings;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limits of one webhook.
#[derive(Debug)]
pub struct Limiter {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    pacer: Option<Pacer>,
}

/// One request's right to go: holds an in-flight slot until dropped.
#[derive(Debug)]
#[must_use = "the in-flight slot is released when the permit is dropped"]
pub struct LimitPermit {
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct Pacer {
    interval: Duration,
    /// The earliest time the next request may start.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// Book the next start at or after `now`; returns when it is.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        at
    }

    /// Take a start now if one is free.
    fn try_take(&self, now: Instant) -> bool {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        match *next {
            Some(n) if n > now => false,
            _ => {
                *next = Some(now + self.interval);
                true
            }
        }
    }
}

impl Limiter {
    /// At most `max_in_flight` requests at once (0 counts as 1) and, when
    /// given, at most `max_per_second` starts per second (0 counts as 1:
    /// a limit is never silently lifted).
    pub fn new(max_in_flight: u32, max_per_second: Option<u32>) -> Self {
        let max_in_flight = (max_in_flight.max(1) as usize).min(Semaphore::MAX_PERMITS);
        Limiter {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            pacer: max_per_second.map(|n| Pacer {
                interval: Duration::from_secs(1) / n.max(1),
                next: Mutex::new(None),
            }),
        }
    }

    /// The limits a webhook's settings ask for.
    pub fn for_webhook(settings: &WebhookSettings) -> Self {
        Limiter::new(settings.max_in_flight, settings.max_per_second)
    }

    /// Wait for an in-flight slot, then for the next start the rate allows.
    ///
    /// Waiters get slots in FIFO order. If this future is dropped while
    /// waiting for the rate, its booked start goes unused: the limiter
    /// errs on the side of sending slower, never faster.
    pub async fn acquire(&self) -> LimitPermit {
        let slot = match self.in_flight.clone().acquire_owned().await {
            Ok(slot) => slot,
            // The semaphore is private and never closed.
            Err(_) => unreachable!("the in-flight semaphore is never closed"),
        };
        if let Some(pacer) = &self.pacer {
            let at = pacer.reserve(Instant::now());
            tokio::time::sleep_until(at).await;
        }
        LimitPermit { _slot: slot }
    }

    /// A permit now, or `None` if the in-flight limit is reached or the
    /// rate does not allow a start yet.
    pub fn try_acquire(&self) -> Option<LimitPermit> {
        let slot = self.in_flight.clone().try_acquire_owned().ok()?;
        if let Some(pacer) = &self.pacer {
            if !pacer.try_take(Instant::now()) {
                return None;
            }
        }
        Some(LimitPermit { _slot: slot })
    }

    /// Requests currently holding a permit.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SEC: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn rate_spaces_starts_evenly() {
        let limiter = Limiter::new(100, Some(10));
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..21 {
            let _permit = limiter.acquire().await;
            starts.push(Instant::now() - start);
        }
        assert_eq!(starts[0], Duration::ZERO);
        for pair in starts.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
        }
        assert_eq!(starts[20], 2 * SEC);
        // Never more than 10 starts in any one-second window.
        for (i, t) in starts.iter().enumerate() {
            let in_window = starts[i..].iter().filter(|s| **s < *t + SEC).count();
            assert!(
                in_window <= 10,
                "{in_window} starts in the second from {t:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn try_acquire_respects_the_rate() {
        let limiter = Limiter::new(10, Some(4));
        assert!(limiter.try_acquire().is_some());
        assert!(limiter.try_acquire().is_none());
        tokio::time::advance(Duration::from_millis(249)).await;
        assert!(limiter.try_acquire().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(limiter.try_acquire().is_some());
        // A refused try does not use up an in-flight slot.
        assert_eq!(limiter.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_limit_blocks_until_a_permit_drops() {
        let limiter = Arc::new(Limiter::new(3, None));
        let held: Vec<_> = (0..3).map(|_| limiter.try_acquire().unwrap()).collect();
        assert_eq!(limiter.in_flight(), 3);
        assert!(limiter.try_acquire().is_none());

        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let permit = limiter.acquire().await;
                let _ = tx.send(());
                permit
            })
        };
        // An hour of (virtual) time passes and the waiter is still waiting.
        assert!(tokio::time::timeout(3600 * SEC, &mut rx).await.is_err());

        drop(held);
        rx.await.unwrap();
        let permit = waiter.await.unwrap();
        assert_eq!(limiter.in_flight(), 1);
        drop(permit);
        assert_eq!(limiter.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn both_limits_hold_under_load() {
        let limiter = Arc::new(Limiter::new(4, Some(10)));
        let current = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let origin = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (limiter, current, peak) = (limiter.clone(), current.clone(), peak.clone());
            tasks.spawn(async move {
                let _permit = limiter.acquire().await;
                let started = Instant::now() - origin;
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // The receiver takes a (virtual) second to answer.
                tokio::time::sleep(SEC).await;
                current.fetch_sub(1, Ordering::SeqCst);
                started
            });
        }
        let mut starts = tasks.join_all().await;
        starts.sort();
        assert_eq!(peak.load(Ordering::SeqCst), 4);
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(100), "{pair:?}");
        }
        // Bound by in-flight (4 per second of response time), not by the rate.
        assert!(starts[19] >= 4 * SEC, "{:?}", starts[19]);
        assert_eq!(limiter.in_flight(), 0);
    }

    #[test]
    fn zero_limits_are_clamped_not_lifted() {
        let limiter = Limiter::new(0, Some(0));
        assert_eq!(limiter.max_in_flight(), 1);
        assert_eq!(limiter.pacer.as_ref().unwrap().interval, SEC);
    }

    #[test]
    fn built_from_settings() {
        let settings = WebhookSettings {
            url: "https://h.example/".parse().unwrap(),
            event_types: vec![tidings_types::EventType::Sent],
            format: Default::default(),
            fields: None,
            headers: Default::default(),
            description: None,
            max_in_flight: 7,
            max_per_second: Some(50),
            batch: None,
        };
        let limiter = Limiter::for_webhook(&settings);
        assert_eq!(limiter.max_in_flight(), 7);
        assert_eq!(
            limiter.pacer.as_ref().unwrap().interval,
            Duration::from_millis(20)
        );
    }
}
