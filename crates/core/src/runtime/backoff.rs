//! Exponential backoff with jitter, used by reflectors between failed list
//! and watch attempts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with full jitter on top of a floor.
///
/// Each call to [`Backoff::next_delay`] returns a delay drawn from
/// `[d * (1 - jitter), d]`, where `d` starts at `initial` and is multiplied by
/// `factor` after each call, capped at `max`. [`Backoff::reset`] starts over
/// (call it after a success).
///
/// ```
/// use std::time::Duration;
/// use ketch_core::runtime::Backoff;
/// let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let first = b.next_delay();
/// assert!(first <= Duration::from_millis(100));
/// for _ in 0..10 {
///     assert!(b.next_delay() <= Duration::from_secs(1));
/// }
/// b.reset();
/// assert!(b.next_delay() <= Duration::from_millis(100));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    current: Duration,
    rng: u64,
}

impl Default for Backoff {
    /// 200 ms doubling to 30 s, with 50 % jitter.
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`, with 50 % jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = ketch_core::runtime::Backoff::new(Duration::from_millis(10), Duration::from_secs(5));
    /// assert_eq!(b.max(), Duration::from_secs(5));
    /// ```
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed = RandomState::new().build_hasher().finish() | 1;
        Self {
            initial,
            max: max.max(initial),
            factor: 2.0,
            jitter: 0.5,
            current: initial,
            rng: seed,
        }
    }

    /// Sets the growth factor (at least 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut b = ketch_core::runtime::Backoff::new(Duration::from_millis(10), Duration::from_secs(5))
    ///     .factor(1.0)
    ///     .jitter(0.0);
    /// assert_eq!(b.next_delay(), Duration::from_millis(10));
    /// assert_eq!(b.next_delay(), Duration::from_millis(10));
    /// ```
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Sets the jitter fraction in `[0, 1]`: how much of each delay may be
    /// randomly taken off.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut b = ketch_core::runtime::Backoff::new(Duration::from_millis(10), Duration::from_secs(5)).jitter(0.0);
    /// assert_eq!(b.next_delay(), Duration::from_millis(10));
    /// assert_eq!(b.next_delay(), Duration::from_millis(20));
    /// ```
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The cap of the delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The next delay to wait, advancing the backoff.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = base.mul_f64(self.factor).min(self.max);
        if self.jitter == 0.0 {
            return base;
        }
        // xorshift64: plenty for spreading retries apart.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - self.jitter * unit)
    }

    /// Starts over from the initial delay.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(800)).jitter(0.0);
        let seen: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seen, vec![100, 200, 400, 800, 800, 800]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(1000));
        let delays: Vec<_> = (0..64).map(|_| b.next_delay()).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(500) && *d <= Duration::from_millis(1000))
        );
        let first = delays[0];
        assert!(
            delays.iter().any(|d| *d != first),
            "jitter must vary delays"
        );
    }

    #[test]
    fn invalid_parameters_are_clamped() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(1))
            .factor(f64::NAN)
            .jitter(7.0);
        assert_eq!(b.max(), Duration::from_millis(10));
        assert!(b.next_delay() <= Duration::from_millis(10));
    }
}
