//! Timestamps in the Kubernetes wire form (RFC 3339, second precision, UTC).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, serialized as `2024-05-01T12:00:00Z`.
///
/// ```
/// use ketch_core::Time;
/// let t: Time = serde_json::from_str("\"2024-05-01T12:00:00Z\"").unwrap();
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"2024-05-01T12:00:00Z\"");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub jiff::Timestamp);

impl Time {
    /// The current time, truncated to whole seconds as the wire form keeps it.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a [`SystemTime`], truncating to whole seconds.
    pub fn from_system_time(t: SystemTime) -> Self {
        let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Self(jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
    }

    /// Seconds since the Unix epoch.
    pub fn as_second(&self) -> i64 {
        self.0.as_second()
    }

    /// This time plus `d` (saturating at the largest representable time).
    pub fn add(&self, d: Duration) -> Self {
        let secs = self.0.as_second().saturating_add(d.as_secs() as i64);
        Self(jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::MAX))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl std::str::FromStr for Time {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<jiff::Timestamp>()
            .map(Self)
            .map_err(|e| format!("invalid RFC 3339 time {s:?}: {e}"))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
