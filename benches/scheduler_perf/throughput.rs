//! Scheduling throughput sampled every second, the way scheduler_perf's
//! throughput collector does it, and its summary.
//!
//! Every second the number of measured pods seen bound is read; the pods
//! bound since the previous sample, divided by the time since it, is one
//! sample. A second in which nothing was bound is folded into the next
//! sample, which is then recorded once for each second it covers (as
//! scheduler_perf does). Sampling starts together with the creation of the
//! measured pods, so no leading sample is dropped. The trailing partial
//! second is a sample of its own when it lasted at least half a second, or
//! when there is no other sample (a phase shorter than one second).

use std::time::{Duration, Instant};

use crate::tracker::PodTracker;

/// Length of one sample.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Shortest trailing partial interval that is a sample of its own.
const MIN_TAIL: Duration = Duration::from_millis(500);

/// Throughput samples of one measured phase.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Pods per second, one entry per second.
    pub per_second: Vec<f64>,
    /// Pods bound in the phase.
    pub pods: usize,
    /// From the start of the phase to the last bind.
    pub elapsed: Duration,
}

/// Samples the pods bound in `namespace` every second from `start` until
/// `count` of them are bound or `timeout` passes.
pub async fn sample(
    tracker: &PodTracker,
    namespace: &str,
    count: usize,
    start: Instant,
    timeout: Duration,
) -> Result<Samples, String> {
    let mut samples = Samples::default();
    let mut last_count = tracker.observed().bound_in(namespace);
    let mut last_time = start;
    let mut skipped = 0usize;
    let mut next_tick = start + SAMPLE_INTERVAL;
    let wait = tracker.wait_bound(namespace, count, timeout);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            done = &mut wait => {
                done?;
                break;
            }
            _ = tokio::time::sleep_until(next_tick.into()) => {
                let now = Instant::now();
                next_tick += SAMPLE_INTERVAL;
                let bound = tracker.observed().bound_in(namespace);
                if bound == last_count {
                    skipped += 1;
                    continue;
                }
                let rate = (bound - last_count) as f64 / (now - last_time).as_secs_f64();
                samples.per_second.extend(std::iter::repeat_n(rate, skipped + 1));
                skipped = 0;
                last_count = bound;
                last_time = now;
            }
        }
    }
    let (bound, last_bind) = {
        let seen = tracker.observed();
        (seen.bound_in(namespace), seen.last_bind_in(namespace))
    };
    let end = last_bind.unwrap_or_else(Instant::now).max(last_time);
    let tail = end - last_time;
    if bound > last_count && (samples.per_second.is_empty() || tail >= MIN_TAIL) {
        let seconds = tail.as_secs_f64().max(1e-6);
        samples
            .per_second
            .push((bound - last_count) as f64 / seconds);
    }
    samples.pods = count;
    samples.elapsed = end.saturating_duration_since(start);
    Ok(samples)
}

/// Average and percentiles of a phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Measured pods divided by the time from the start of the phase to the
    /// last bind.
    pub average: f64,
    /// 50th percentile of the samples.
    pub p50: f64,
    /// 90th percentile of the samples.
    pub p90: f64,
    /// 99th percentile of the samples.
    pub p99: f64,
}

impl Samples {
    /// Summarizes the samples; percentiles are taken as scheduler_perf does,
    /// the sample at rank `ceil(n * p / 100)` of the sorted samples.
    pub fn summary(&self) -> Summary {
        let mut sorted = self.per_second.clone();
        sorted.sort_by(f64::total_cmp);
        let percentile = |p: usize| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = (sorted.len() * p).div_ceil(100).max(1);
            sorted[rank - 1]
        };
        let seconds = self.elapsed.as_secs_f64();
        Summary {
            average: if seconds > 0.0 {
                self.pods as f64 / seconds
            } else {
                0.0
            },
            p50: percentile(50),
            p90: percentile(90),
            p99: percentile(99),
        }
    }
}
