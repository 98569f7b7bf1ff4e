//! Per-WAN history of probe rounds for graphs and summaries: a ring buffer holding at
//! least the last hour at the configured interval.
//!
//! Samples are stamped with `Instant`, not wall time: routers without an RTC jump years at
//! the first NTP sync, and windows measured in wall time would empty or swell. Wall time is
//! derived only when points are exported.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::round::Round;

/// An hour at the smallest allowed interval (0.1 s); bounds memory per WAN (~1.5 MB).
pub const MAX_SAMPLES: usize = 36_000;
const HOUR_SECS: f64 = 3600.0;

/// One probe round, condensed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Instant,
    /// Mean RTT of the targets that answered; None when the whole round was lost.
    pub latency_ms: Option<f64>,
    /// |latency - latency of the previous answered round|.
    pub jitter_ms: Option<f64>,
    pub sent: u16,
    pub answered: u16,
}

/// Aggregates over a time window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Rounds in the window.
    pub samples: usize,
    /// Mean of the rounds' mean RTTs (answered rounds only).
    pub latency_ms: Option<f64>,
    /// Mean absolute difference of consecutive answered rounds' RTTs.
    pub jitter_ms: Option<f64>,
    /// Lost probes / sent probes.
    pub loss_percent: f64,
}

/// A graph point: Unix milliseconds plus the round's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t_ms: u64,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: f64,
}

#[derive(Debug, Clone)]
pub struct WanStats {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl WanStats {
    /// Room for an hour of rounds at `interval`: ceil(3600 s / interval), at most [`MAX_SAMPLES`].
    pub fn new(interval: Duration) -> Self {
        let per_hour = (HOUR_SECS / interval.as_secs_f64().max(1e-3)).ceil();
        // In 1..=MAX_SAMPLES: a positive quotient, capped.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let capacity = per_hour.min(MAX_SAMPLES as f64) as usize;
        Self::with_capacity(capacity)
    }

    pub fn with_capacity(capacity: usize) -> Self {
        // Grows on demand: most WANs probe every few seconds and never need the cap.
        Self {
            samples: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Record a round that finished at `at`; the oldest sample goes when full.
    pub fn push(&mut self, at: Instant, round: &Round) {
        let latency_ms = round.mean_rtt_ms();
        let previous = self.samples.iter().rev().find_map(|s| s.latency_ms);
        let jitter_ms = latency_ms
            .zip(previous)
            .map(|(now, prev)| (now - prev).abs());
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at,
            latency_ms,
            jitter_ms,
            sent: clamp_u16(round.sent()),
            answered: clamp_u16(round.answered()),
        });
    }

    /// Samples taken within `window` before `now`, oldest first.
    pub fn samples(&self, now: Instant, window: Duration) -> impl Iterator<Item = &Sample> + '_ {
        let since = now.checked_sub(window);
        self.samples
            .iter()
            .filter(move |s| since.is_none_or(|since| s.at > since))
    }

    pub fn summary(&self, now: Instant, window: Duration) -> Summary {
        let mut out = Summary::default();
        let (mut sent, mut answered) = (0u64, 0u64);
        let (mut lat_sum, mut lat_n) = (0.0, 0u32);
        let (mut jit_sum, mut jit_n) = (0.0, 0u32);
        let mut prev: Option<f64> = None;
        for s in self.samples(now, window) {
            out.samples += 1;
            sent += u64::from(s.sent);
            answered += u64::from(s.answered);
            if let Some(lat) = s.latency_ms {
                lat_sum += lat;
                lat_n += 1;
                // Jitter only between rounds both inside the window.
                if let Some(p) = prev.replace(lat) {
                    jit_sum += (lat - p).abs();
                    jit_n += 1;
                }
            }
        }
        out.latency_ms = (lat_n > 0).then(|| lat_sum / f64::from(lat_n));
        out.jitter_ms = (jit_n > 0).then(|| jit_sum / f64::from(jit_n));
        out.loss_percent = loss_percent(sent, answered);
        out
    }

    /// Graph points within `window`, with wall time derived from one (`now`, `wall_now`) pair.
    pub fn points(
        &self,
        now: Instant,
        wall_now: SystemTime,
        window: Duration,
    ) -> impl Iterator<Item = Point> + '_ {
        self.samples(now, window).map(move |s| {
            let wall = wall_now
                .checked_sub(now.saturating_duration_since(s.at))
                .unwrap_or(UNIX_EPOCH);
            let t_ms = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            Point {
                t_ms: u64::try_from(t_ms).unwrap_or(u64::MAX),
                latency_ms: s.latency_ms,
                jitter_ms: s.jitter_ms,
                loss_percent: loss_percent(u64::from(s.sent), u64::from(s.answered)),
            }
        })
    }
}

fn loss_percent(sent: u64, answered: u64) -> f64 {
    if sent == 0 {
        0.0
    } else {
        (sent - answered) as f64 * 100.0 / sent as f64
    }
}

fn clamp_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const B: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);

    fn round(a: Option<u64>, b: Option<u64>) -> Round {
        let ms = |x: Option<u64>| x.map(Duration::from_millis);
        Round::new(vec![(A, ms(a)), (B, ms(b))])
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn capacity_covers_an_hour_and_is_capped() {
        assert_eq!(WanStats::new(Duration::from_secs(5)).capacity(), 720);
        assert_eq!(WanStats::new(Duration::from_secs_f64(0.7)).capacity(), 5143);
        assert_eq!(WanStats::new(Duration::from_millis(100)).capacity(), 36_000);
        assert_eq!(
            WanStats::new(Duration::from_millis(10)).capacity(),
            MAX_SAMPLES
        );
        assert_eq!(WanStats::new(Duration::from_secs(7200)).capacity(), 1);
        assert_eq!(WanStats::new(Duration::ZERO).capacity(), MAX_SAMPLES);
    }

    #[test]
    fn ring_drops_the_oldest() {
        let t0 = Instant::now();
        let mut s = WanStats::with_capacity(3);
        for i in 0..5 {
            s.push(t0 + secs(i), &round(Some(10 * (i + 1)), None));
        }
        assert_eq!(s.len(), 3);
        let lats: Vec<_> = s
            .samples(t0 + secs(5), secs(3600))
            .map(|x| x.latency_ms)
            .collect();
        assert_eq!(lats, vec![Some(30.0), Some(40.0), Some(50.0)]);
    }

    #[test]
    fn summary_latency_jitter_and_loss() {
        let t0 = Instant::now();
        let mut s = WanStats::new(secs(1));
        // Round means: 10, lost, 30, 20 -> jitter |30-10|, |20-30| = 20, 10 -> 15.
        s.push(t0 + secs(1), &round(Some(10), Some(10)));
        s.push(t0 + secs(2), &round(None, None));
        s.push(t0 + secs(3), &round(Some(20), Some(40)));
        s.push(t0 + secs(4), &round(Some(20), None));
        let sum = s.summary(t0 + secs(4), secs(60));
        assert_eq!(sum.samples, 4);
        assert_eq!(sum.latency_ms, Some(20.0));
        assert_eq!(sum.jitter_ms, Some(15.0));
        assert_eq!(sum.loss_percent, 3.0 * 100.0 / 8.0);
    }

    #[test]
    fn summary_window_excludes_old_samples() {
        let t0 = Instant::now();
        let mut s = WanStats::new(secs(1));
        s.push(t0, &round(None, None));
        s.push(t0 + secs(10), &round(Some(50), Some(50)));
        s.push(t0 + secs(11), &round(Some(60), Some(60)));
        let sum = s.summary(t0 + secs(11), secs(5));
        assert_eq!(sum.samples, 2);
        assert_eq!(sum.loss_percent, 0.0);
        assert_eq!(sum.latency_ms, Some(55.0));
        assert_eq!(sum.jitter_ms, Some(10.0));
        // A stalled prober's old data is not "recent".
        assert_eq!(s.summary(t0 + secs(100), secs(5)), Summary::default());
    }

    #[test]
    fn empty_and_all_lost_summaries() {
        let t0 = Instant::now();
        let mut s = WanStats::new(secs(1));
        assert!(s.is_empty());
        assert_eq!(s.summary(t0, secs(60)), Summary::default());
        s.push(t0, &round(None, None));
        let sum = s.summary(t0, secs(60));
        assert_eq!(
            (sum.latency_ms, sum.jitter_ms, sum.loss_percent),
            (None, None, 100.0)
        );
    }

    #[test]
    fn per_sample_jitter_skips_lost_rounds() {
        let t0 = Instant::now();
        let mut s = WanStats::new(secs(1));
        s.push(t0, &round(Some(10), None));
        s.push(t0 + secs(1), &round(None, None));
        s.push(t0 + secs(2), &round(Some(25), None));
        let jit: Vec<_> = s
            .samples(t0 + secs(2), secs(60))
            .map(|x| x.jitter_ms)
            .collect();
        assert_eq!(jit, vec![None, None, Some(15.0)]);
    }

    #[test]
    fn points_carry_wall_time_for_graphs() {
        let t0 = Instant::now();
        let mut s = WanStats::new(secs(1));
        s.push(t0, &round(Some(10), None));
        s.push(t0 + secs(2), &round(Some(12), Some(14)));
        let wall_now = UNIX_EPOCH + secs(1_000_000);
        let pts: Vec<_> = s.points(t0 + secs(2), wall_now, secs(60)).collect();
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].t_ms, 999_998_000);
        assert_eq!(pts[1].t_ms, 1_000_000_000);
        assert_eq!(pts[0].loss_percent, 50.0);
        assert_eq!(pts[1].latency_ms, Some(13.0));
        assert_eq!(pts[1].jitter_ms, Some(3.0));
        let json = serde_json::to_value(pts[1]).unwrap();
        assert_eq!(json["t_ms"], 1_000_000_000u64);
    }
}
