//! The status the control socket answers, built from the daemon's state once per change
//! and published through a `watch` channel: `status` requests are answered from the latest
//! snapshot by the control server, without waiting for the event loop (which may be busy
//! with a probe round or an apply). Connection counts (from the counting task) and byte
//! counters ([`super::counters`]) are merged in when a request is answered.

use super::drivers::Platform;
use super::resets::{self, InService};
use super::Supervisor;
use crate::daemon::counters::{ByteCounters, Counters};
use routeros_shared::control::{
    Ipv6Report, RouterStatus, StatusReport, TakeOutEffect, WanReport, WanRole,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Window of the latency/loss figures in the status.
const STATUS_WINDOW: Duration = Duration::from_secs(60);

/// A WAN's role from the operator's overrides and the applied plan. Usability is the
/// planner's (`PlannedWan::usable`); this only names what the WAN does with it.
pub fn role(disabled: bool, maintenance: bool, active: bool) -> WanRole {
    if disabled {
        WanRole::Disabled
    } else if maintenance {
        WanRole::Maintenance
    } else if active {
        WanRole::Active
    } else {
        WanRole::Standby
    }
}

impl<P: Platform> Supervisor<P> {
    /// Everything the daemon knows about each WAN and the last apply, counters aside.
    pub(super) fn status_report(&self) -> StatusReport {
        let views = self.views();
        let active = self
            .applier
            .applied()
            .map(|p| p.active_wans.clone())
            .unwrap_or_default();
        let active6 = self
            .applier
            .applied()
            .map(|p| p.active_wans6.clone())
            .unwrap_or_default();
        let now = Instant::now();
        // What is in service now, as the reset rule sees it (for each WAN's take-out effect).
        let now_in = InService {
            usable: views
                .iter()
                .filter(|w| w.usable)
                .map(|w| w.name.clone())
                .collect(),
            active: active.clone(),
        };
        let wans = views
            .iter()
            .map(|w| {
                let link = self
                    .states
                    .get(&w.name)
                    .map(|s| s.link.clone())
                    .unwrap_or_default();
                let summary = self
                    .stats
                    .get(&w.name)
                    .map(|s| s.summary(now, STATUS_WINDOW));
                let disabled = self.overrides.disabled.contains(&w.name);
                let maintenance_until = self.overrides.maintenance.get(&w.name).copied();
                let is_active = active.contains(&w.name);
                WanReport {
                    name: w.name.clone(),
                    device: w.dev.clone(),
                    line: self.line_report(&w.name),
                    table: w.table,
                    mark: w.mark,
                    weight: w.weight,
                    priority: w.priority,
                    gateway: w.gateway,
                    address: link.address,
                    present: link.present,
                    carrier: link.carrier,
                    state: self.monitors.get(&w.name).map(|m| m.state()),
                    since_ms: self.since.get(&w.name).copied(),
                    latency_ms: summary.as_ref().and_then(|s| s.latency_ms),
                    jitter_ms: summary.as_ref().and_then(|s| s.jitter_ms),
                    loss_percent: summary.as_ref().map(|s| s.loss_percent),
                    connections: None,
                    rx_bytes: None,
                    tx_bytes: None,
                    usable: w.usable,
                    role: role(disabled, maintenance_until.is_some(), is_active),
                    take_out: TakeOutEffect {
                        resets_connections: resets::take_out_resets(&now_in, &w.name, &self.ids),
                        takeover: now_in
                            .usable
                            .iter()
                            .filter(|u| **u != w.name)
                            .cloned()
                            .collect(),
                    },
                    disabled,
                    maintenance_until,
                    active: is_active,
                    speed_down: Some(w.speed),
                    speed_up: Some(self.speeds.upload(&w.name, self.upload_mbit(&w.name))),
                    share: Some(w.share),
                    shaping: self.shaping_report(&w.name),
                    ipv6: w.v6.as_ref().map(|v6| {
                        let summary6 = self
                            .stats6
                            .get(&w.name)
                            .map(|s| s.summary(now, STATUS_WINDOW));
                        Ipv6Report {
                            address: v6
                                .address
                                .zip(v6.subnet)
                                .and_then(|(a, net)| ipnet::Ipv6Net::new(a, net.prefix_len()).ok()),
                            gateway: v6.gateway,
                            usable: v6.usable,
                            active: active6.contains(&w.name),
                            // Without an address its probes are not counted: no state to show.
                            state: self
                                .monitors6
                                .get(&w.name)
                                .filter(|_| v6.address.is_some())
                                .map(|m| m.state()),
                            since_ms: self.since6.get(&w.name).copied(),
                            latency_ms: summary6.as_ref().and_then(|s| s.latency_ms),
                            loss_percent: summary6.as_ref().map(|s| s.loss_percent),
                        }
                    }),
                }
            })
            .collect();
        let router = RouterStatus {
            config: self.opts.config.clone(),
            mode: serde_json::to_value(self.cfg.routing.load_balancing)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            active_wans: active,
            active_wans6: active6,
            failover_paused_until: self.overrides.paused_until,
            applied_at: self.applied_at,
            last_apply_ms: self.last_apply_ms,
            last_error: self.last_error.clone(),
            kernel_restores: self.kernel_restores,
            ha: self.ha_report(),
            bytes_at_ms: None,
        };
        StatusReport { router, wans }
    }
}

impl<P: Platform> Supervisor<P> {
    /// `[[wan_interfaces]] upload_mbit` of `wan`.
    pub(super) fn upload_mbit(&self, wan: &str) -> Option<f64> {
        self.cfg
            .wan_interfaces
            .iter()
            .find(|w| w.name == wan)
            .and_then(|w| w.upload_mbit)
    }
}

/// The latest status and counters, readable from any task.
#[derive(Clone)]
pub struct StatusBoard {
    report: watch::Receiver<Arc<StatusReport>>,
    counters: watch::Receiver<Arc<Counters>>,
    bytes: Arc<ByteCounters>,
}

/// The daemon's end of the board: it publishes after every apply and every event-loop
/// turn.
pub struct StatusPublisher {
    tx: watch::Sender<Arc<StatusReport>>,
}

impl Default for StatusPublisher {
    fn default() -> Self {
        Self {
            tx: watch::channel(Arc::new(StatusReport::default())).0,
        }
    }
}

impl StatusPublisher {
    /// A board reading this publisher's reports with `counters` merged in.
    pub fn board(
        &self,
        counters: watch::Receiver<Arc<Counters>>,
        bytes: ByteCounters,
    ) -> StatusBoard {
        StatusBoard {
            report: self.tx.subscribe(),
            counters,
            bytes: Arc::new(bytes),
        }
    }

    /// Replace the snapshot if the report changed (readers are not woken for nothing).
    pub fn publish(&self, report: StatusReport) {
        self.tx.send_if_modified(|current| {
            if **current == report {
                return false;
            }
            *current = Arc::new(report);
            true
        });
    }
}

impl<P: Platform> Supervisor<P> {
    /// Publish the status as it is now (answered by the control server from then on).
    pub fn publish_status(&self) {
        self.status.publish(self.status_report());
    }

    /// The board the control server answers `status` from: this supervisor's reports with
    /// the counter task's connection counts and the byte counters merged in.
    pub fn status_board(
        &self,
        counters: watch::Receiver<Arc<Counters>>,
        bytes: ByteCounters,
    ) -> StatusBoard {
        self.status.board(counters, bytes)
    }
}

impl StatusBoard {
    /// The latest status with the latest connection counts and the byte counters now.
    pub async fn current(&self) -> StatusReport {
        let mut report = StatusReport::clone(&self.report.borrow());
        self.counters.borrow().fill(&mut report);
        self.bytes.fill(&mut report).await;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_decisions_name_the_role_first() {
        assert_eq!(role(true, true, true), WanRole::Disabled);
        assert_eq!(role(false, true, true), WanRole::Maintenance);
        assert_eq!(role(false, false, true), WanRole::Active);
        assert_eq!(role(false, false, false), WanRole::Standby);
    }
}
