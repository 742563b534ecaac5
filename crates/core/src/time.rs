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

/// The last second of year 9999, the last one the four-digit form holds.
const MAX_FOUR_DIGIT_YEAR_SECOND: i64 = 253_402_300_799;

impl Time {
    /// The wire form of times from 1970 to 9999, written without the general
    /// formatting machinery (objects are encoded on every write); `None`
    /// for other times.
    fn wire_form(&self) -> Option<WireForm> {
        let secs = self.0.as_second();
        if !(0..=MAX_FOUR_DIGIT_YEAR_SECOND).contains(&secs) {
            return None;
        }
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, digits: usize, mut v: i64| {
            for i in (at..at + digits).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, rem / 3600);
        put(14, 2, rem / 60 % 60);
        put(17, 2, rem % 60);
        Some(WireForm(out))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, all ASCII.
struct WireForm([u8; 20]);

impl WireForm {
    fn as_str(&self) -> &str {
        // Digits and separators only, so always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wire_form() {
            Some(form) => f.write_str(form.as_str()),
            None => write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ")),
        }
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
        match self.wire_form() {
            Some(form) => s.serialize_str(form.as_str()),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_the_general_formatter() {
        let general = |t: &Time| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        // Every day boundary around leap years and centuries, and a spread
        // of seconds up to the end of year 9999.
        let last = jiff::Timestamp::MAX.as_second();
        let mut seconds: Vec<i64> = vec![0, 59, 86_399, 86_400, 951_782_400, 4_107_542_399];
        seconds.extend((0..40_000).map(|i| i * 7_919_993 + i % 86_400));
        seconds.push(last);
        for s in seconds.into_iter().filter(|s| *s <= last) {
            let t = Time(jiff::Timestamp::from_second(s).unwrap());
            assert_eq!(t.to_string(), general(&t), "second {s}");
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", general(&t))
            );
        }
        // Outside 1970-9999 the general formatter writes the time.
        let before = Time(jiff::Timestamp::from_second(-86_401).unwrap());
        assert_eq!(before.to_string(), "1969-12-30T23:59:59Z");
        let sub_second = Time(jiff::Timestamp::new(1_714_564_800, 999_999_999).unwrap());
        assert_eq!(sub_second.to_string(), "2024-05-01T12:00:00Z");
    }
}
