//! `IntOrString`, the Kubernetes value that is either a number or a string
//! (a port name, a percentage).

use serde::{Deserialize, Serialize};

/// A value that is either an integer or a string, such as a Service's
/// `targetPort` (`8080` or `"http"`) or a rollout's `maxSurge` (`1` or `"25%"`).
///
/// ```
/// use ketch_core::IntOrString;
/// let v: IntOrString = serde_json::from_str("\"25%\"").unwrap();
/// assert_eq!(v.scaled_value(8, true), Ok(2));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A plain integer.
    Int(i32),
    /// A string: a name or a percentage such as `"25%"`.
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl IntOrString {
    /// Resolves the value against `total`: an integer is itself, a percentage
    /// is that share of `total`, rounded up when `round_up` is set, down
    /// otherwise (as Kubernetes does for maxSurge and maxUnavailable).
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Result<i32, String> {
        match self {
            IntOrString::Int(i) => Ok(*i),
            IntOrString::String(s) => {
                let pct = s
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<i64>().ok())
                    .ok_or_else(|| {
                        format!("invalid value {s:?}: must be an integer or a percentage")
                    })?;
                let scaled = pct * total as i64;
                let v = if round_up {
                    (scaled + 99).div_euclid(100)
                } else {
                    scaled.div_euclid(100)
                };
                Ok(v as i32)
            }
        }
    }
}

impl From<i32> for IntOrString {
    fn from(v: i32) -> Self {
        IntOrString::Int(v)
    }
}

impl From<&str> for IntOrString {
    fn from(v: &str) -> Self {
        IntOrString::String(v.to_string())
    }
}
