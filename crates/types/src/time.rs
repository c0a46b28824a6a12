//! Time is UTC with millisecond precision everywhere: that is what the store
//! keeps and what payloads carry, so a value read back equals the value written.

use chrono::{DateTime, SubsecRound, TimeZone, Utc};

/// A UTC instant, millisecond precision.
pub type Timestamp = DateTime<Utc>;

/// Milliseconds since the Unix epoch, the store's representation.
pub fn to_millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_millis`]. Out-of-range values clamp to the epoch.
pub fn from_millis(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Truncate to the precision the store keeps.
pub fn trunc(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(3)
}

/// RFC 3339 with milliseconds and a `Z`, the format of every payload.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
