//! Microsecond timestamps (`MicroTime`), used by Lease and Event.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with microsecond precision, serialized as
/// `2024-05-01T12:00:00.123456Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroTime(pub jiff::Timestamp);

impl MicroTime {
    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        let now = jiff::Timestamp::now();
        let micros = now.as_microsecond();
        Self(jiff::Timestamp::from_microsecond(micros).unwrap_or(now))
    }
}

impl fmt::Display for MicroTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }
}

impl Serialize for MicroTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MicroTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<jiff::Timestamp>()
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}")))
    }
}
