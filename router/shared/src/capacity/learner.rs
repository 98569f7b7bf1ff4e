//! Learning a line's speed passively from its interface byte counters: the highest rate it
//! sustained, followed down slowly while the line is busy at a lower rate.
//!
//! Why this shape: a counter cannot tell "the line is slow" from "nobody is using it", so
//! an idle line keeps its estimate; only a rate held for [`SUSTAIN`] counts (not a burst);
//! a higher sustained rate is taken at once (a line that got faster); and while the line
//! carries at least [`BUSY_SHARE`] of its estimate (over the window and in the last
//! interval), the estimate decays toward what it
//! carries with a [`HALF_LIFE`] of 15 s, so a line whose speed halved under load is
//! followed within 60 s (to 1/16 of the difference).

use super::round_clamped;
use std::collections::VecDeque;
use std::time::Duration;

/// How long a rate must hold to count as the line's speed.
pub const SUSTAIN: Duration = Duration::from_secs(3);
/// Half-life of the estimate's decay toward a lower sustained rate.
pub const HALF_LIFE: Duration = Duration::from_secs(15);
/// Below this share of the estimate the line is taken as idle, not slow: no decay.
pub const BUSY_SHARE: f64 = 0.4;
/// Estimates under this (kbit/s) are not reported: background chatter is no speed.
pub const MIN_LEARNED_KBIT: u64 = 256;

/// One direction's counter: bytes seen -> sustained rate -> speed estimate.
#[derive(Debug, Clone, Default)]
pub struct RateLearner {
    /// Samples covering the last [`SUSTAIN`] (the oldest at or before its start).
    window: VecDeque<(Duration, u64)>,
    /// The estimate, in bytes per second.
    estimate: f64,
    /// The rate over the last sample interval, in bytes per second.
    current: f64,
}

impl RateLearner {
    /// A learner that starts from a speed kept from an earlier run (state directory).
    pub fn with_estimate_kbit(kbit: u64) -> Self {
        Self {
            estimate: kbit as f64 * 1000.0 / 8.0,
            ..Self::default()
        }
    }

    /// Feed the counter's value at time `at`. A counter that went backwards (the interface
    /// was re-created) or a clock that did (the wall clock was set back) starts a new
    /// window; a sample at the same time as the last is ignored.
    pub fn sample(&mut self, at: Duration, bytes: u64) {
        let Some(&(last_at, last_bytes)) = self.window.back() else {
            self.window.push_back((at, bytes));
            return;
        };
        if at == last_at {
            return;
        }
        if bytes < last_bytes || at < last_at {
            self.window.clear();
            self.window.push_back((at, bytes));
            self.current = 0.0;
            return;
        }
        let dt = (at - last_at).as_secs_f64();
        self.current = (bytes - last_bytes) as f64 / dt;
        self.window.push_back((at, bytes));
        // Keep exactly one sample at or before the window's start.
        while self.window.len() > 2 && at - self.window[1].0 >= SUSTAIN {
            self.window.pop_front();
        }
        let (first_at, first_bytes) = self.window[0];
        let span = at - first_at;
        if span < SUSTAIN {
            return;
        }
        let sustained = (bytes - first_bytes) as f64 / span.as_secs_f64();
        if sustained >= self.estimate {
            self.estimate = sustained;
        } else if sustained.min(self.current) >= BUSY_SHARE * self.estimate {
            // Busy over the window and still now: a window that straddles the end of a
            // download is a line going idle, not a slower line.
            let keep = 0.5f64.powf(dt / HALF_LIFE.as_secs_f64());
            self.estimate = sustained + (self.estimate - sustained) * keep;
        }
    }

    /// The learned speed in kbit/s, once it is more than background chatter.
    pub fn learned_kbit(&self) -> Option<u64> {
        Some(kbit(self.estimate)).filter(|&k| k >= MIN_LEARNED_KBIT)
    }

    /// The rate over the last sample interval, in kbit/s.
    pub fn current_kbit(&self) -> u64 {
        kbit(self.current)
    }
}

fn kbit(bytes_per_s: f64) -> u64 {
    round_clamped(bytes_per_s * 8.0 / 1000.0, u64::MAX)
}

/// Both directions of one WAN interface: received bytes are the download, sent the upload.
#[derive(Debug, Clone, Default)]
pub struct LineLearner {
    pub down: RateLearner,
    pub up: RateLearner,
}

impl LineLearner {
    pub fn sample(&mut self, at: Duration, rx_bytes: u64, tx_bytes: u64) {
        self.down.sample(at, rx_bytes);
        self.up.sample(at, tx_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic counter: `mbit` Mbit/s for `secs` seconds, one sample per second.
    struct Line {
        t: u64,
        bytes: u64,
    }

    impl Line {
        fn new() -> Self {
            Line { t: 0, bytes: 0 }
        }
        fn run(&mut self, l: &mut RateLearner, mbit: u64, secs: u64) {
            for _ in 0..secs {
                self.t += 1;
                self.bytes += mbit * 1_000_000 / 8;
                l.sample(Duration::from_secs(self.t), self.bytes);
            }
        }
    }

    fn mbit(l: &RateLearner) -> f64 {
        l.learned_kbit().unwrap_or(0) as f64 / 1000.0
    }

    #[test]
    fn a_sustained_rate_is_learned_and_a_burst_counts_only_averaged_over_the_window() {
        let mut l = RateLearner::default();
        let mut line = Line::new();
        line.run(&mut l, 1, 10);
        assert_eq!(mbit(&l), 1.0);
        // Two seconds at 80 Mbit/s inside a 3 s window: averages under the burst.
        line.run(&mut l, 80, 2);
        assert!(mbit(&l) < 80.0 * 2.0 / 3.0 + 1.0, "{}", mbit(&l));
        line.run(&mut l, 80, 3);
        assert_eq!(mbit(&l), 80.0);
        assert_eq!(l.current_kbit(), 80_000);
    }

    #[test]
    fn a_faster_line_is_followed_at_once() {
        let mut l = RateLearner::with_estimate_kbit(50_000);
        let mut line = Line::new();
        line.run(&mut l, 100, 4);
        assert_eq!(mbit(&l), 100.0);
    }

    #[test]
    fn a_line_that_halves_under_load_is_followed_within_60_s() {
        let mut l = RateLearner::default();
        let mut line = Line::new();
        line.run(&mut l, 100, 30);
        assert_eq!(mbit(&l), 100.0);
        line.run(&mut l, 50, 10);
        // Slowly: ten seconds later it still trusts most of the old speed...
        assert!(mbit(&l) > 65.0, "{}", mbit(&l));
        line.run(&mut l, 50, 50);
        // ...and within 60 s it is within 10 % of the new one.
        assert!((50.0..55.0).contains(&mbit(&l)), "{}", mbit(&l));
    }

    #[test]
    fn an_idle_line_keeps_its_speed() {
        let mut l = RateLearner::default();
        let mut line = Line::new();
        line.run(&mut l, 100, 10);
        line.run(&mut l, 0, 600);
        line.run(&mut l, 30, 600); // light use (30 % of the line) is not a slower line
        assert_eq!(mbit(&l), 100.0);
        assert_eq!(l.current_kbit(), 30_000);
    }

    #[test]
    fn chatter_is_not_a_speed_and_resets_and_clock_steps_are_harmless() {
        let mut l = RateLearner::default();
        assert_eq!(l.learned_kbit(), None);
        let mut line = Line::new();
        line.run(&mut l, 0, 10);
        assert_eq!(l.learned_kbit(), None);
        line.run(&mut l, 20, 5);
        // The interface was re-created: its counter starts again from zero.
        line.bytes = 0;
        line.run(&mut l, 20, 1);
        assert_eq!(mbit(&l), 20.0);
        // A repeated timestamp is ignored rather than dividing by zero.
        l.sample(Duration::from_secs(line.t), line.bytes + 1_000_000_000);
        line.run(&mut l, 20, 4);
        assert_eq!(mbit(&l), 20.0);
        // The clock set back: learning goes on from there, not once it is back where it was.
        line.t = 0;
        line.run(&mut l, 60, 4);
        assert_eq!(mbit(&l), 60.0);
    }

    #[test]
    fn irregular_sampling_gives_the_same_rate() {
        let mut l = RateLearner::default();
        let mut t = Duration::ZERO;
        let mut bytes = 0u64;
        // 40 Mbit/s = 5 MB/s, sampled every 0.25 s, 0.5 s or 1.5 s in turn.
        for step_ms in [250u64, 500, 1500].iter().cycle().take(30) {
            t += Duration::from_millis(*step_ms);
            bytes += 5_000_000 * step_ms / 1000;
            l.sample(t, bytes);
        }
        assert_eq!(mbit(&l), 40.0);
    }

    #[test]
    fn both_directions_are_learned_apart() {
        let mut l = LineLearner::default();
        for s in 1..=5u64 {
            l.sample(Duration::from_secs(s), s * 12_500_000, s * 1_250_000);
        }
        assert_eq!(l.down.learned_kbit(), Some(100_000));
        assert_eq!(l.up.learned_kbit(), Some(10_000));
    }
}
