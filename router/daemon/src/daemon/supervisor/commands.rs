//! Answers to control-socket requests. Every change goes through validation first and
//! leaves the running state and the saved files as they were when it is refused.

use super::drivers::Platform;
use super::Supervisor;
use crate::apply::conntrack::ConntrackDriver;
use crate::apply::LinkObserver;
use crate::daemon::control::{self, Request};
use routeros_shared::plan::MARK_MASK;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

/// Window of the latency/loss figures in the status.
const STATUS_WINDOW: Duration = Duration::from_secs(60);

impl<P: Platform> Supervisor<P> {
    pub async fn handle(&mut self, req: Request) -> Value {
        match req {
            Request::Status => self.status().await,
            Request::Reload => self.reload().await,
            Request::Disable { wan } => {
                let msg = format!("{wan} disabled by the operator");
                self.set_override(
                    &wan,
                    |ov| {
                        ov.disabled.insert(wan.clone());
                    },
                    msg,
                )
                .await
            }
            Request::Enable { wan } => {
                let msg = format!("{wan} enabled by the operator");
                self.set_override(
                    &wan,
                    |ov| {
                        ov.disabled.remove(&wan);
                        ov.maintenance.remove(&wan);
                    },
                    msg,
                )
                .await
            }
            Request::Maintenance { seconds, wan } => self.maintenance(seconds, wan).await,
            Request::Events {
                since_ms,
                wan,
                kind,
            } => {
                let events = self
                    .events
                    .query(since_ms.unwrap_or(0), wan.as_deref(), kind);
                json!({ "ok": true, "events": events })
            }
            Request::History { wan, seconds } => self.history(&wan, seconds),
            Request::GetConfig => self.get_config(),
            Request::ApplyConfig {
                toml,
                confirm_seconds,
                by,
            } => self.apply_config(toml, confirm_seconds, by).await,
            Request::ConfirmConfig { id } => self.confirm_config(&id),
            Request::ConfigHistory => {
                json!({ "ok": true, "versions": self.config_store.versions() })
            }
            Request::RollbackConfig { version, by } => {
                match self.config_store.version_text(version) {
                    Ok(text) => self.apply_config(text, 60, by).await,
                    Err(_) => control::error(&format!("version: {version} does not exist")),
                }
            }
        }
    }

    async fn status(&mut self) -> Value {
        let views = self.views();
        let active = self
            .applier
            .applied()
            .map(|p| p.active_wans.clone())
            .unwrap_or_default();
        let now = Instant::now();
        let counters = self
            .applier
            .routes()
            .byte_counters()
            .await
            .unwrap_or_default();
        let mut wans = Vec::new();
        for w in &views {
            let link = self
                .states
                .get(&w.name)
                .map(|s| s.link.clone())
                .unwrap_or_default();
            let status = self.monitors.get(&w.name).map(|m| m.status());
            let summary = self
                .stats
                .get(&w.name)
                .map(|s| s.summary(now, STATUS_WINDOW));
            let connections = self.conntrack.count_mark(w.mark, MARK_MASK).await.ok();
            wans.push(json!({
                "name": w.name, "table": w.table, "mark": w.mark, "weight": w.weight,
                "priority": w.priority, "gateway": w.gateway, "address": link.address,
                "present": link.present, "carrier": link.carrier,
                "state": status.as_ref().map(|s| s.state),
                "since_ms": self.since.get(&w.name),
                "latency_ms": summary.as_ref().and_then(|s| s.latency_ms),
                "jitter_ms": summary.as_ref().and_then(|s| s.jitter_ms),
                "loss_percent": summary.as_ref().map(|s| s.loss_percent),
                "connections": connections,
                "rx_bytes": counters.get(&w.name).map(|c| c.0),
                "tx_bytes": counters.get(&w.name).map(|c| c.1),
                "usable": w.usable,
                "disabled": self.overrides.disabled.contains(&w.name),
                "maintenance_until": self.overrides.maintenance.get(&w.name),
                "active": active.contains(&w.name),
            }));
        }
        json!({
            "ok": true,
            "config": self.opts.config,
            "mode": self.cfg.routing.load_balancing,
            "active_wans": active,
            "failover_paused_until": self.overrides.paused_until,
            "wans": wans,
            "applied_at": self.applied_at,
            "last_apply_ms": self.last_apply_ms,
            "last_error": self.last_error,
            "kernel_restores": self.kernel_restores,
        })
    }

    /// Latency/jitter/loss points of one WAN for graphs.
    fn history(&self, wan: &str, seconds: u32) -> Value {
        let Some(stats) = self.stats.get(wan) else {
            return control::error(&format!("`{wan}` is not a WAN interface"));
        };
        let window = Duration::from_secs(u64::from(seconds.clamp(1, 86_400)));
        let points: Vec<_> = stats
            .points(Instant::now(), SystemTime::now(), window)
            .collect();
        json!({ "ok": true, "wan": wan, "points": points })
    }
}
