//! Line speeds and spare-capacity placement, the daemon's side: once a second, every WAN's
//! byte counters (one link dump through the [`LinkObserver`] driver) feed its
//! [`LineLearner`]; what the learners say becomes the planner's facts (`learned_down_kbit`
//! under `weights = "auto"`, `placement_weight` under `placement = "spare_capacity"`), and
//! the supervisor re-plans when a fact changed. The deciding is in
//! `routeros_shared::capacity`; this module only carries numbers and keeps learned speeds
//! in `line-speeds.json` across restarts.

use super::drivers::{Clock, Platform};
use super::Supervisor;
use crate::apply::LinkObserver;
use crate::daemon::state_file::StateFile;
use routeros_shared::capacity::{
    effective_speed, LineLearner, LineLoad, LineSpeed, RateLearner, SparePlacer, Use,
};
use routeros_shared::config::{Placement, WeightMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A learned speed reaches the planner only when it moved by more than this share of the
/// last one given: weights (and the nft table) do not follow every wobble of the estimate.
const LEARNED_STEP: f64 = 0.05;
/// The reason a re-plan for new speeds or placement weights gives (logged at debug level).
pub(super) const REPLAN_WHY: &str = "line speeds";
/// Learned speeds are written to disk at most this often.
const SAVE_INTERVAL_MS: u64 = 60_000;

/// What `line-speeds.json` holds: each WAN's learned speeds, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedSpeeds {
    pub wans: BTreeMap<String, Learned>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_kbit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_kbit: Option<u64>,
}

/// The learners, the placer and the file their speeds are kept in.
pub struct Speeds {
    learners: BTreeMap<String, LineLearner>,
    placer: SparePlacer,
    store: StateFile<LearnedSpeeds>,
    saved: LearnedSpeeds,
    saved_at_ms: u64,
    /// The byte counters could not be read last time (warned once per failure streak).
    failing: bool,
}

impl Speeds {
    /// Learners primed with the speeds kept by an earlier run.
    pub fn load(state_dir: &Path) -> Self {
        let store = StateFile::new(state_dir, "line-speeds.json");
        let saved: LearnedSpeeds = store.load();
        let learners = saved
            .wans
            .iter()
            .map(|(wan, l)| {
                let learner = LineLearner {
                    down: l
                        .down_kbit
                        .map(RateLearner::with_estimate_kbit)
                        .unwrap_or_default(),
                    up: l
                        .up_kbit
                        .map(RateLearner::with_estimate_kbit)
                        .unwrap_or_default(),
                };
                (wan.clone(), learner)
            })
            .collect();
        Self {
            learners,
            placer: SparePlacer::default(),
            store,
            saved,
            saved_at_ms: 0,
            failing: false,
        }
    }

    fn learned(&self) -> LearnedSpeeds {
        LearnedSpeeds {
            wans: self
                .learners
                .iter()
                .map(|(wan, l)| {
                    let learned = Learned {
                        down_kbit: l.down.learned_kbit(),
                        up_kbit: l.up.learned_kbit(),
                    };
                    (wan.clone(), learned)
                })
                .filter(|(_, l)| *l != Learned::default())
                .collect(),
        }
    }

    /// The learned download speed of `wan`, if any.
    pub fn learned_down(&self, wan: &str) -> Option<u64> {
        self.learners.get(wan)?.down.learned_kbit()
    }

    /// The upload speed of `wan`: declared, else learned, else the default.
    pub fn upload(&self, wan: &str, declared_mbit: Option<f64>) -> LineSpeed {
        let learned = self.learners.get(wan).and_then(|l| l.up.learned_kbit());
        effective_speed(declared_mbit, learned)
    }

    /// What `wan` receives and sends now (kbit/s over the last second).
    fn rates(&self, wan: &str) -> (u64, u64) {
        self.learners
            .get(wan)
            .map_or((0, 0), |l| (l.down.current_kbit(), l.up.current_kbit()))
    }
}

/// `next` replaces `current` when it is the first value or moved by more than LEARNED_STEP.
fn moved(current: Option<u64>, next: Option<u64>) -> bool {
    match (current, next) {
        (Some(c), Some(n)) => (n as f64 - c as f64).abs() > LEARNED_STEP * c.max(1) as f64,
        (c, n) => c != n,
    }
}

impl<P: Platform> Supervisor<P> {
    /// Put the speeds kept from the last run into the planner's facts (before the first plan).
    pub(super) fn restore_speeds(&mut self) {
        for w in &self.cfg.wan_interfaces {
            let learned = self.speeds.learned_down(&w.name);
            self.states
                .entry(w.name.clone())
                .or_default()
                .learned_down_kbit = learned;
        }
    }

    /// Read the counters, learn, place; true if a fact the plan uses changed (re-plan).
    pub(super) async fn sample_speeds(&mut self) -> bool {
        let now_ms = self.clock.now_ms();
        let counters = match self.applier.routes().byte_counters().await {
            Ok(c) => {
                self.speeds.failing = false;
                c
            }
            Err(e) => {
                if !std::mem::replace(&mut self.speeds.failing, true) {
                    tracing::warn!("cannot read byte counters, line speeds not learned: {e}");
                }
                return false;
            }
        };
        let at = Duration::from_millis(now_ms);
        let wans: Vec<(String, String)> = self
            .cfg
            .wan_interfaces
            .iter()
            .map(|w| (w.name.clone(), w.device()))
            .collect();
        self.speeds
            .learners
            .retain(|wan, _| wans.iter().any(|(name, _)| name == wan));
        for (wan, device) in &wans {
            if let Some(&(rx, tx)) = counters.get(device) {
                let learner = self.speeds.learners.entry(wan.clone()).or_default();
                learner.sample(at, rx, tx);
            }
        }
        let routing = self.cfg.routing.clone();
        let mut changed = false;
        for (wan, _) in &wans {
            let next = self.speeds.learned_down(wan);
            let facts = self.states.entry(wan.clone()).or_default();
            if moved(facts.learned_down_kbit, next) {
                facts.learned_down_kbit = next;
                changed |= routing.weights == WeightMode::Auto;
            }
        }
        changed |= self.place(at, routing.placement);
        self.save_speeds(now_ms);
        changed
    }

    /// Under spare-capacity placement, hand the placer's weights to the planner when they
    /// moved beyond its hysteresis; otherwise make sure none is left. True if a fact changed.
    fn place(&mut self, at: Duration, placement: Placement) -> bool {
        if placement == Placement::Weight {
            let mut changed = false;
            for facts in self.states.values_mut() {
                changed |= facts.placement_weight.take().is_some();
            }
            self.speeds.placer = SparePlacer::default();
            return changed;
        }
        let views = self.views();
        let lines: Vec<LineLoad> = views
            .iter()
            .map(|w| {
                let (rx, tx) = self.speeds.rates(&w.name);
                LineLoad {
                    down: Use {
                        speed_kbit: w.speed.kbit,
                        rate_kbit: rx,
                    },
                    // Only a declared upload speed: see `LineLoad::up`.
                    up: self.upload_mbit(&w.name).map(|mbit| Use {
                        speed_kbit: self.speeds.upload(&w.name, Some(mbit)).kbit,
                        rate_kbit: tx,
                    }),
                    weight: w.weight,
                }
            })
            .collect();
        let Some(weights) = self.speeds.placer.update(at, &lines) else {
            return false;
        };
        for (w, weight) in views.iter().zip(weights) {
            self.states
                .entry(w.name.clone())
                .or_default()
                .placement_weight = Some(weight);
        }
        tracing::debug!(
            shares = ?views.iter().map(|w| &w.name).zip(self.speeds.placer.current()).collect::<Vec<_>>(),
            "spare-capacity placement changed"
        );
        true
    }

    /// Keep the learned speeds on disk, at most once a minute and only when they changed.
    fn save_speeds(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.speeds.saved_at_ms) < SAVE_INTERVAL_MS {
            return;
        }
        let learned = self.speeds.learned();
        if learned == self.speeds.saved {
            return;
        }
        self.speeds.saved_at_ms = now_ms;
        match self.speeds.store.save(&learned) {
            Ok(()) => self.speeds.saved = learned,
            Err(e) => tracing::warn!("cannot save {}: {e}", self.speeds.store.path().display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::moved;

    #[test]
    fn learned_speeds_reach_the_plan_in_steps() {
        assert!(moved(None, Some(1_000)));
        assert!(moved(Some(1_000), None));
        assert!(!moved(Some(100_000), Some(104_000)));
        assert!(moved(Some(100_000), Some(106_000)));
        assert!(moved(Some(100_000), Some(94_000)));
        assert!(!moved(None, None));
    }
}
