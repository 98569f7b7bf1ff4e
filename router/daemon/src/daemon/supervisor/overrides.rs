//! Operator overrides: a WAN disabled or in maintenance (out of service until enabled or
//! until its window ends), and router-wide maintenance (failover paused: health changes are
//! logged, not acted on). Saved in `overrides.json`, so they survive a restart.

use super::drivers::{Clock, Platform};
use super::Supervisor;
use crate::daemon::control::{Refusal, RefusalCode, TakenOut, MAX_MAINTENANCE_SECONDS};
use routeros_shared::events::{Event, EventKind};
use routeros_shared::plan::{Family, Overrides};

impl<P: Platform> Supervisor<P> {
    /// Failover is paused (router-wide maintenance): health changes are logged, not acted on.
    pub(super) fn paused(&self) -> bool {
        self.overrides
            .paused_until
            .is_some_and(|t| t * 1000 > self.clock.now_ms())
    }

    /// After a pause ends, catch up with what the monitors say now.
    fn sync_all_health(&mut self) -> bool {
        let wans: Vec<String> = self.monitors.keys().cloned().collect();
        let wans6: Vec<String> = self.monitors6.keys().cloned().collect();
        let v4 = wans
            .iter()
            .fold(false, |acc, w| self.sync_health(w, Family::V4) | acc);
        wans6
            .iter()
            .fold(v4, |acc, w| self.sync_health(w, Family::V6) | acc)
    }

    /// Take one WAN (or, with `wan` None, failover itself) out for `seconds`.
    pub(super) async fn maintenance(
        &mut self,
        seconds: u32,
        wan: Option<String>,
    ) -> Result<TakenOut, Refusal> {
        if !(1..=MAX_MAINTENANCE_SECONDS).contains(&seconds) {
            return Err(Refusal::field(
                RefusalCode::BadRequest,
                "seconds",
                format!("{seconds} is not in 1..={MAX_MAINTENANCE_SECONDS}"),
            ));
        }
        let until = window_end(self.clock.now_ms(), seconds);
        let minutes = format!("{:.1}", f64::from(seconds) / 60.0);
        let minutes = minutes.trim_end_matches(".0");
        match wan {
            Some(wan) => {
                let msg = format!("{wan} in maintenance for {minutes} min");
                self.set_override(
                    &wan,
                    |ov| {
                        ov.maintenance.insert(wan.clone(), until);
                    },
                    msg,
                )
                .await
            }
            None => {
                let msg = format!("failover paused for {minutes} min (maintenance)");
                self.set_override("", |ov| ov.paused_until = Some(until), msg)
                    .await
            }
        }
    }

    /// Change the overrides (for a known WAN, or router-wide with ""), persist, re-plan.
    /// Nothing changes if the WAN is unknown or the state cannot be saved. The answer
    /// says how many of the WAN's connections the re-plan reset (when it left service).
    pub(super) async fn set_override(
        &mut self,
        wan: &str,
        change: impl FnOnce(&mut Overrides),
        message: String,
    ) -> Result<TakenOut, Refusal> {
        if !wan.is_empty() && !self.cfg.wan_interfaces.iter().any(|w| w.name == wan) {
            let known: Vec<&str> = self
                .cfg
                .wan_interfaces
                .iter()
                .map(|w| w.name.as_str())
                .collect();
            return Err(Refusal::not_found(format!(
                "`{wan}` is not a WAN interface (WANs: {})",
                known.join(", ")
            )));
        }
        let mut next = self.overrides.clone();
        change(&mut next);
        if let Err(e) = self.overrides_store.save(&next) {
            return Err(Refusal::internal(format!("cannot save overrides: {e}")));
        }
        self.overrides = next;
        self.emit(Event::new(
            EventKind::Operator,
            (!wan.is_empty()).then_some(wan),
            message.clone(),
        ));
        if self.overrides.paused_until.is_none() {
            self.sync_all_health();
        }
        match self.replan("operator").await {
            Ok(resets) => Ok(TakenOut {
                message,
                reset_connections: resets.get(wan).copied().unwrap_or(0),
            }),
            Err(e) => Err(Refusal::new(
                RefusalCode::ApplyFailed,
                format!("{message}, but applying failed: {e}"),
            )),
        }
    }

    /// End maintenance windows whose time is up; true if any ended.
    pub(super) fn expire_overrides(&mut self) -> bool {
        let ended = self.overrides.expire(self.clock.now_ms() / 1000);
        if ended.is_empty() {
            return false;
        }
        if let Err(e) = self.overrides_store.save(&self.overrides) {
            tracing::warn!("cannot save overrides: {e}");
        }
        self.sync_all_health();
        for wan in ended {
            let (who, msg) = if wan.is_empty() {
                (
                    None,
                    "maintenance ended: failover decisions resume".to_string(),
                )
            } else {
                (
                    Some(wan.as_str()),
                    format!("maintenance of {wan} ended: back in service"),
                )
            };
            self.emit(Event::new(EventKind::Operator, who, msg));
        }
        true
    }
}

/// When a maintenance window of `seconds` started at `now_ms` ends: Unix seconds, rounded
/// up so the window is never shorter than asked.
fn window_end(now_ms: u64, seconds: u32) -> u64 {
    (now_ms + u64::from(seconds) * 1000).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::window_end;

    #[test]
    fn window_is_never_shorter_than_asked() {
        assert_eq!(window_end(1_000_000, 60), 1060);
        assert_eq!(window_end(1_000_001, 60), 1061);
        assert_eq!(window_end(1_000_999, 1), 1002);
    }
}
