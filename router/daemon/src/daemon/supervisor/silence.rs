//! The passive failure signal, the daemon's side: a few times a second (only with
//! `[health_check] failure_interval`, i.e. slow probing while healthy) read the table's
//! per-WAN counters; a line in service that sends packets nobody answers gets probed at once,
//! in both families, instead of at its next slow round. The probes still decide: an answered
//! round sets the slow pace again, a failed one the fast pace until the line is judged.

use super::drivers::{Platform, Probers};
use super::Supervisor;
use crate::apply::CounterReader;
use routeros_shared::config::ProbePace;
use routeros_shared::plan::{silence::counter_names, Family};

/// How often the counters are read while the signal is on.
/// How often the counters are read while the signal is on: a silent line is noticed one to
/// two ticks after it fell silent (the tick it fell in still saw replies). Each reading is
/// one `nft` process (~4 ms of CPU).
pub const SILENCE_TICK: std::time::Duration = std::time::Duration::from_millis(200);

impl<P: Platform> Supervisor<P> {
    pub async fn on_silence_tick(&mut self) {
        if self.cfg.health_check.failure_interval.is_none() || self.paused() {
            return;
        }
        let counters = match self.applier.firewall().counters().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("cannot read the table's counters: {e}");
                return;
            }
        };
        let wans: Vec<(String, u32)> = self
            .cfg
            .wan_interfaces
            .iter()
            .filter_map(|w| Some((w.name.clone(), self.ids.get(&w.name)?.mark)))
            .collect();
        let now = std::time::Instant::now();
        for (wan, mark) in wans {
            let (sent, replies) = counter_names(mark);
            let (Some(&u), Some(&r)) = (counters.get(&sent), counters.get(&replies)) else {
                continue;
            };
            if !self.silence.silent(&wan, u, r, now) {
                continue;
            }
            // Only a line probed at the slow pace: one in doubt is probed fast already.
            if self.monitors.get(&wan).map(|m| m.pace()) != Some(ProbePace::Normal) {
                continue;
            }
            tracing::info!(
                wan,
                "packets out, no reply in for {} ms: probing now",
                SILENCE_TICK.as_millis()
            );
            self.probers.probe_now(&wan, Family::V4);
            if self.monitors6.contains_key(&wan) {
                self.probers.probe_now(&wan, Family::V6);
            }
        }
    }
}
