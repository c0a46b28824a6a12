//! The retry policy, as pure functions: no clock and no randomness of its
//! own, so the dispatcher passes `now` and an RNG and a test passes fixed ones.
//!
//! After a failed attempt the next one is due, in turn: immediately, 5 s,
//! 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h later; then the schedule
//! is exhausted (11 attempts in all, about 3 days). Each delay gets ±10 %
//! jitter so that many events failing together do not retry in lockstep.
//!
//! `Retry-After` (only on 429 and 503) can lengthen a delay, never shorten
//! it: the receiver asked us to back off, so a longer request is honoured
//! up to a bound (1 h by default, so a receiver cannot park its events for
//! days); a shorter one is ignored in favour of the schedule, which exists
//! precisely to keep a struggling receiver from being hammered. An attempt
//! answered with `Retry-After` still counts as an attempt.

use std::time::Duration;

use chrono::NaiveDateTime;
use rand::Rng;
use tidings_types::Timestamp;

const MIN: u64 = 60;
const HOUR: u64 = 60 * MIN;

/// The delay before the retry that follows attempt *n* (`SCHEDULE[n - 1]`).
pub const SCHEDULE: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * MIN),
    Duration::from_secs(30 * MIN),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(5 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(14 * HOUR),
    Duration::from_secs(20 * HOUR),
    Duration::from_secs(24 * HOUR),
];

/// Attempts made in all before a delivery gives up: the first and one per
/// entry of [`SCHEDULE`].
pub const MAX_ATTEMPTS: u32 = SCHEDULE.len() as u32 + 1;

/// What one attempt's outcome means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Any 2xx: done.
    Delivered,
    /// Anything else but 410, including 3xx (redirects are never followed),
    /// timeouts and connection errors. `after` is the receiver's own
    /// `Retry-After` on a 429 or 503, unbounded; [`RetryPolicy::next_delay`]
    /// bounds it.
    Retry { after: Option<Duration> },
    /// 410 Gone: the receiver wants no more; the caller pauses the event
    /// type on this webhook at once.
    Gone,
}

/// Classify an attempt by its HTTP status (`None` when no response came
/// back) and the `Retry-After` it carried. `now` resolves an HTTP-date.
pub fn classify(status: Option<u16>, retry_after: Option<RetryAfter>, now: Timestamp) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429 | 503) => Verdict::Retry {
            after: retry_after.map(|r| r.delay_from(now)),
        },
        _ => Verdict::Retry { after: None },
    }
}

/// A parsed `Retry-After` header (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `delta-seconds`.
    Delay(Duration),
    /// An HTTP-date.
    At(Timestamp),
}

impl RetryAfter {
    /// Parse delta-seconds or an HTTP-date (IMF-fixdate, or the obsolete
    /// RFC 850 and asctime forms). Anything else is `None`.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits to fit is simply "a very long time".
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        const FORMATS: [&str; 3] = [
            "%a, %d %b %Y %H:%M:%S GMT",
            "%A, %d-%b-%y %H:%M:%S GMT",
            "%a %b %e %H:%M:%S %Y",
        ];
        FORMATS
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
            .map(|t| RetryAfter::At(t.and_utc()))
    }

    /// How long from `now` the receiver asked us to wait; a date in the
    /// past means no wait.
    pub fn delay_from(self, now: Timestamp) -> Duration {
        match self {
            RetryAfter::Delay(d) => d,
            RetryAfter::At(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
        }
    }
}

/// The knobs of the retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The longest `Retry-After` honoured; longer requests are cut to this.
    pub max_retry_after: Duration,
    /// Relative jitter, 0.1 for ±10 %; clamped to `0.0..=1.0`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retry_after: Duration::from_secs(HOUR),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt, given the attempts made so far
    /// (1-based: 1 after the first attempt failed) and the attempt's
    /// `Retry-After` (from [`Verdict::Retry`]). `None` when the schedule is
    /// exhausted. With no attempt made yet (0), the first is due now.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let base = scheduled_delay(attempts_made)?;
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let factor = if jitter > 0.0 {
            (1.0 + rng.gen_range(-jitter..=jitter)).max(0.0)
        } else {
            1.0
        };
        let delay = base.mul_f64(factor);
        let asked = retry_after.map_or(Duration::ZERO, |d| d.min(self.max_retry_after));
        Some(delay.max(asked))
    }
}

/// The schedule's own delay after `attempts_made` attempts, without jitter;
/// `None` once [`MAX_ATTEMPTS`] have been made.
pub fn scheduled_delay(attempts_made: u32) -> Option<Duration> {
    match attempts_made {
        0 => Some(Duration::ZERO),
        n => SCHEDULE.get(n as usize - 1).copied(),
    }
}

/// [`RetryPolicy::next_delay`] with the default policy.
pub fn next_delay(
    attempts_made: u32,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Option<Duration> {
    RetryPolicy::default().next_delay(attempts_made, retry_after, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn schedule_is_the_documented_one_and_ends_after_eleven_attempts() {
        let expected = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];
        for (i, s) in expected.iter().enumerate() {
            assert_eq!(scheduled_delay(i as u32 + 1), Some(secs(*s)));
        }
        assert_eq!(MAX_ATTEMPTS, 11);
        assert_eq!(scheduled_delay(11), None);
        assert_eq!(scheduled_delay(u32::MAX), None);
        assert_eq!(scheduled_delay(0), Some(Duration::ZERO));
        let mut r = rng();
        assert_eq!(next_delay(11, None, &mut r), None);
        assert_eq!(next_delay(11, Some(secs(10)), &mut r), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let mut r = rng();
        for attempts in 1..MAX_ATTEMPTS {
            let base = scheduled_delay(attempts).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let d = next_delay(attempts, None, &mut r).unwrap();
                assert!(d >= base.mul_f64(0.9), "{d:?} < 90% of {base:?}");
                assert!(d <= base.mul_f64(1.1), "{d:?} > 110% of {base:?}");
                seen.insert(d);
            }
            if base.is_zero() {
                assert_eq!(seen.len(), 1, "immediately stays immediate");
            } else {
                assert!(seen.len() > 100, "jitter should spread delays");
            }
        }
    }

    #[test]
    fn jitter_is_clamped_and_never_negative() {
        let mut r = rng();
        for jitter in [5.0, -1.0, f64::NAN, f64::INFINITY] {
            let p = RetryPolicy {
                jitter,
                ..RetryPolicy::default()
            };
            for _ in 0..200 {
                let d = p.next_delay(3, None, &mut r).unwrap();
                assert!(d <= secs(600));
            }
        }
        let none = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(none.next_delay(2, None, &mut r), Some(secs(5)));
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_and_is_bounded() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut r = rng();
        // Longer than the 5 s step: honoured.
        assert_eq!(p.next_delay(2, Some(secs(120)), &mut r), Some(secs(120)));
        // Shorter than the 30 min step: the schedule wins.
        assert_eq!(p.next_delay(4, Some(secs(60)), &mut r), Some(secs(1800)));
        // Far longer: bounded to the maximum (1 h).
        assert_eq!(p.next_delay(2, Some(secs(86400)), &mut r), Some(secs(3600)));
        // The bound never shortens the schedule's own 5 h step.
        assert_eq!(
            p.next_delay(6, Some(secs(86400)), &mut r),
            Some(secs(18000))
        );
        let strict = RetryPolicy {
            max_retry_after: secs(30),
            jitter: 0.0,
        };
        assert_eq!(
            strict.next_delay(1, Some(secs(3600)), &mut r),
            Some(secs(30))
        );
    }

    #[test]
    fn classify_statuses() {
        let now = chrono::Utc::now();
        for s in [200, 201, 204, 299] {
            assert_eq!(classify(Some(s), None, now), Verdict::Delivered);
        }
        assert_eq!(classify(Some(410), None, now), Verdict::Gone);
        for s in [
            100, 199, 300, 301, 302, 304, 307, 308, 400, 401, 404, 500, 502, 504,
        ] {
            assert_eq!(
                classify(Some(s), Some(RetryAfter::Delay(secs(9))), now),
                Verdict::Retry { after: None },
                "status {s}"
            );
        }
        assert_eq!(classify(None, None, now), Verdict::Retry { after: None });
        for s in [429, 503] {
            assert_eq!(
                classify(Some(s), Some(RetryAfter::Delay(secs(9))), now),
                Verdict::Retry {
                    after: Some(secs(9))
                }
            );
            assert_eq!(classify(Some(s), None, now), Verdict::Retry { after: None });
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_all_http_date_forms() {
        assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Delay(secs(120))));
        assert_eq!(RetryAfter::parse(" 0 "), Some(RetryAfter::Delay(secs(0))));
        assert_eq!(
            RetryAfter::parse("99999999999999999999999"),
            Some(RetryAfter::Delay(secs(u64::MAX)))
        );
        let when = chrono::Utc
            .with_ymd_and_hms(1994, 11, 6, 8, 49, 37)
            .unwrap();
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                RetryAfter::parse(text),
                Some(RetryAfter::At(when)),
                "{text}"
            );
        }
        for junk in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994 08:49:37 PST"] {
            assert_eq!(RetryAfter::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn retry_after_is_relative_to_the_given_now() {
        let now = chrono::Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let later = RetryAfter::parse("Wed, 01 Jan 2025 12:02:30 GMT").unwrap();
        assert_eq!(later.delay_from(now), secs(150));
        let past = RetryAfter::parse("Wed, 01 Jan 2025 11:00:00 GMT").unwrap();
        assert_eq!(past.delay_from(now), Duration::ZERO);
        assert_eq!(RetryAfter::Delay(secs(3)).delay_from(now), secs(3));
        assert_eq!(
            classify(Some(503), Some(later), now),
            Verdict::Retry {
                after: Some(secs(150))
            }
        );
    }
}
