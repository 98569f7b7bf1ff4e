//! Per-WAN health state machine. Pure: it is fed probe rounds and carrier events with the
//! time they happened and answers with the transitions worth logging.
//!
//! Hysteresis is what keeps a lossy WAN from flapping: `retry_count` consecutive failed
//! rounds take a WAN down, `recovery_count` consecutive successful rounds bring it back,
//! and a success (or failure) resets the other count.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::round::Round;
use routeros_shared::config::{HealthCheckConfig, ProbePace};
pub use routeros_shared::plan::HealthState;

/// Rounds the latency and loss thresholds are judged over.
const QUALITY_WINDOW: usize = 10;
/// Fewer rounds than this are not judged: one lost probe out of two would read as 50% loss.
const MIN_QUALITY_ROUNDS: usize = 3;
/// A degraded WAN is clean again only below this share of each threshold, so a latency
/// hovering around the threshold does not toggle Up/Degraded every round.
const CLEAR_RATIO: f64 = 0.8;

/// A state change, for the event log and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: HealthState,
    pub to: HealthState,
    /// Wall-clock time, serialised as Unix milliseconds.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// Human-readable reason, e.g. "carrier lost", "latency 812 ms > 500 ms" or
    /// "3 consecutive failed probe rounds (0/2 targets answered, 1 required)".
    pub cause: String,
    /// Mean RTT over the recent rounds (None when nothing answered).
    pub latency_ms: Option<f64>,
    /// Probe loss over the recent rounds.
    pub loss_percent: f64,
}

/// Live view of one monitor, for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSnapshot {
    pub state: HealthState,
    pub carrier: bool,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    pub latency_ms: Option<f64>,
    pub loss_percent: f64,
}

/// Per-round totals kept for the quality window.
#[derive(Debug, Clone, Copy)]
struct RoundTotals {
    sent: usize,
    answered: usize,
    rtt_sum_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Quality {
    rounds: usize,
    latency_ms: Option<f64>,
    loss_percent: f64,
}

#[derive(Debug, Clone)]
pub struct WanMonitor {
    state: HealthState,
    down_after: u32,
    up_after: u32,
    reliability: u32,
    latency_limit_ms: f64,
    loss_limit_percent: f64,
    failures: u32,
    successes: u32,
    /// The link can carry probes (carrier, and for IPv4 an address); rounds without it
    /// are not counted.
    carrier: bool,
    /// The link has not been ready since this monitor started: the monitor shows Down
    /// meanwhile, and its first `link_restored` returns to this start state quietly (a line
    /// still being configured at boot is not an outage).
    awaiting_first_link: Option<HealthState>,
    /// Down -> Recovering is logged once per outage; aborted recoveries stay quiet.
    recovery_reported: bool,
    window: VecDeque<RoundTotals>,
    /// Maps the caller's `Instant`s to wall-clock time without reading the clock again.
    epoch: (Instant, SystemTime),
}

impl WanMonitor {
    pub fn new(cfg: &HealthCheckConfig, start: HealthState) -> Self {
        Self {
            state: start,
            down_after: cfg.retry_count.max(1),
            up_after: cfg.recovery_count.max(1),
            reliability: cfg.reliability.max(1),
            latency_limit_ms: f64::from(cfg.degraded_latency_ms),
            loss_limit_percent: f64::from(cfg.degraded_loss_percent),
            failures: 0,
            successes: 0,
            carrier: true,
            awaiting_first_link: None,
            recovery_reported: false,
            window: VecDeque::with_capacity(QUALITY_WINDOW + 1),
            epoch: (Instant::now(), SystemTime::now()),
        }
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// How fast the line should be probed now: fast while a failure is being confirmed,
    /// at the recovery pace while it is out of service.
    pub fn pace(&self) -> ProbePace {
        match self.state {
            HealthState::Down | HealthState::Recovering => ProbePace::Recovering,
            _ if self.failures > 0 => ProbePace::Failing,
            _ => ProbePace::Normal,
        }
    }

    pub fn status(&self) -> MonitorSnapshot {
        let q = self.quality();
        MonitorSnapshot {
            state: self.state,
            carrier: self.carrier,
            consecutive_failures: self.failures,
            consecutive_successes: self.successes,
            latency_ms: q.latency_ms,
            loss_percent: q.loss_percent,
        }
    }

    /// Feed one probe round; returns the transition it caused, if any worth logging.
    pub fn record(&mut self, round: Round, now: Instant) -> Option<Transition> {
        if !self.carrier {
            // Without carrier only `link_restored` may start a recovery.
            return None;
        }
        let ok = round.succeeded(self.reliability);
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        if ok && self.state == HealthState::Down {
            // Losses from the outage are not "degradation": judge the recovered link afresh.
            self.window.clear();
        }
        self.push(&round);
        let tally = format!("{}/{} targets answered", round.answered(), round.sent());

        match self.state {
            HealthState::Up | HealthState::Degraded if !ok && self.failures >= self.down_after => {
                let cause = format!(
                    "{} consecutive failed probe rounds ({tally}, {} required)",
                    self.failures, self.reliability
                );
                self.recovery_reported = false;
                self.go(HealthState::Down, cause, now)
            }
            HealthState::Up => {
                let reasons = self.degradation(1.0)?;
                self.go(HealthState::Degraded, reasons, now)
            }
            HealthState::Degraded => {
                if self.degradation(CLEAR_RATIO).is_some() {
                    return None;
                }
                let q = self.quality();
                let cause = format!(
                    "quality back within limits: latency {}, loss {:.0}% (limits {:.0} ms, {:.0}%)",
                    fmt_ms(q.latency_ms),
                    q.loss_percent,
                    self.latency_limit_ms,
                    self.loss_limit_percent
                );
                self.go(HealthState::Up, cause, now)
            }
            HealthState::Down | HealthState::Recovering
                if ok && self.successes >= self.up_after =>
            {
                let mut cause = format!(
                    "{} consecutive successful probe rounds ({tally})",
                    self.successes
                );
                let to = match self.degradation(1.0) {
                    Some(reasons) => {
                        cause = format!("{cause}; {reasons}");
                        HealthState::Degraded
                    }
                    None => HealthState::Up,
                };
                self.go(to, cause, now)
            }
            HealthState::Down if ok => {
                self.state = HealthState::Recovering;
                if std::mem::replace(&mut self.recovery_reported, true) {
                    return None;
                }
                let cause = format!(
                    "probe round succeeded ({tally}); {} of {} successful rounds needed",
                    self.successes, self.up_after
                );
                Some(self.transition(HealthState::Down, HealthState::Recovering, cause, now))
            }
            HealthState::Recovering if !ok => {
                // Quiet: the verdict (not usable) did not change, and a target that answers
                // every other round must not fill the event log.
                self.state = HealthState::Down;
                None
            }
            HealthState::Down | HealthState::Recovering => None,
        }
    }

    /// A monitor started while its link was not ready: Down, rounds not counted, until the
    /// link is; then it goes on from its start state without a transition.
    pub fn await_link(&mut self) {
        self.carrier = false;
        self.awaiting_first_link = Some(std::mem::replace(&mut self.state, HealthState::Down));
    }

    /// Still waiting for its link to be ready for the first time (see [`Self::await_link`]).
    pub fn awaiting_link(&self) -> bool {
        self.awaiting_first_link.is_some()
    }

    /// A monitor rebuilt by a reload goes on with what its predecessor knew of the link.
    pub fn keep_link(&mut self, old: &WanMonitor) {
        self.carrier = old.carrier;
        self.awaiting_first_link = old.awaiting_first_link;
        self.recovery_reported = old.recovery_reported;
    }

    /// The link went (`cause`: carrier lost, or no IPv4 address): down at once, whatever
    /// the probes said.
    pub fn link_lost(&mut self, now: Instant, cause: &str) -> Option<Transition> {
        self.carrier = false;
        self.awaiting_first_link = None;
        self.failures = 0;
        self.successes = 0;
        self.recovery_reported = false;
        if self.state == HealthState::Down {
            return None;
        }
        self.go(HealthState::Down, cause.into(), now)
    }

    /// The link is back (`cause`: carrier restored, IPv4 address back): start recovering;
    /// the probes decide when the WAN is trusted again.
    pub fn link_restored(&mut self, now: Instant, cause: &str) -> Option<Transition> {
        if std::mem::replace(&mut self.carrier, true) {
            return None;
        }
        self.failures = 0;
        self.successes = 0;
        self.window.clear();
        if let Some(start) = self.awaiting_first_link.take() {
            self.state = start;
            return None;
        }
        self.recovery_reported = true;
        let cause = format!("{cause}; {} successful probe rounds needed", self.up_after);
        self.go(HealthState::Recovering, cause, now)
    }

    fn push(&mut self, round: &Round) {
        let answered = round.answered();
        self.window.push_back(RoundTotals {
            sent: round.sent(),
            answered,
            rtt_sum_ms: round.mean_rtt_ms().unwrap_or(0.0) * answered as f64,
        });
        if self.window.len() > QUALITY_WINDOW {
            self.window.pop_front();
        }
    }

    fn quality(&self) -> Quality {
        let (sent, answered, rtt_sum) = self.window.iter().fold((0, 0, 0.0), |(s, a, r), t| {
            (s + t.sent, a + t.answered, r + t.rtt_sum_ms)
        });
        Quality {
            rounds: self.window.len(),
            latency_ms: (answered > 0).then(|| rtt_sum / answered as f64),
            loss_percent: if sent == 0 {
                0.0
            } else {
                (sent - answered) as f64 * 100.0 / sent as f64
            },
        }
    }

    /// Why the window is over `scale` x the thresholds, or None when it is within them
    /// (or too short to judge).
    fn degradation(&self, scale: f64) -> Option<String> {
        let q = self.quality();
        if q.rounds < MIN_QUALITY_ROUNDS {
            return None;
        }
        let (lat_limit, loss_limit) = (
            self.latency_limit_ms * scale,
            self.loss_limit_percent * scale,
        );
        let mut reasons = Vec::new();
        if let Some(lat) = q.latency_ms.filter(|&l| l > lat_limit) {
            reasons.push(format!("latency {lat:.0} ms > {lat_limit:.0} ms"));
        }
        if q.loss_percent > loss_limit {
            reasons.push(format!("loss {:.0}% > {loss_limit:.0}%", q.loss_percent));
        }
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }

    fn go(&mut self, to: HealthState, cause: String, now: Instant) -> Option<Transition> {
        let from = std::mem::replace(&mut self.state, to);
        (from != to).then(|| self.transition(from, to, cause, now))
    }

    fn transition(
        &self,
        from: HealthState,
        to: HealthState,
        cause: String,
        now: Instant,
    ) -> Transition {
        let q = self.quality();
        let (mono, wall) = self.epoch;
        let at = match now.checked_duration_since(mono) {
            Some(ahead) => wall + ahead,
            None => wall - mono.duration_since(now),
        };
        Transition {
            from,
            to,
            at,
            cause,
            latency_ms: q.latency_ms,
            loss_percent: q.loss_percent,
        }
    }
}

fn fmt_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "n/a".into(), |ms| format!("{ms:.0} ms"))
}

/// `SystemTime` as Unix milliseconds: what JavaScript's `Date` takes.
mod unix_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
