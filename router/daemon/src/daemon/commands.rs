//! Answers to control-socket requests. Every change goes through validation first and
//! leaves the running state and the saved files as they were when it is refused.

use super::control::{
    Answer, Done, EventsReply, HealthPoint, HistoryReply, Refusal, RefusalCode, Reply, Request,
    TakenOut, VersionInfo, VersionsReply, CONFIRM_SECONDS, MAX_MAINTENANCE_SECONDS,
};
use super::router::Router;
use routeros_shared::events::{now_ms, Event, EventKind};
use routeros_shared::plan::Overrides;
use std::time::{Duration, Instant, SystemTime};

impl Router {
    /// The answer to one request. `subscribe` is answered here, on the event loop, so that
    /// no event falls between its backlog and the live ones.
    pub async fn answer(&mut self, req: Request) -> Answer {
        match req {
            Request::Subscribe { since_ms } => Answer::Subscribed {
                backlog: self
                    .events
                    .query(since_ms.unwrap_or(0), None, None)
                    .into_iter()
                    .cloned()
                    .collect(),
                events: self.live.subscribe(),
            },
            req => Answer::Line(self.handle(req).await),
        }
    }

    pub async fn handle(&mut self, req: Request) -> Result<Reply, Refusal> {
        match req {
            Request::Status => Ok(Reply::Status(Box::new(self.status_report()))),
            Request::Reload => self.reload().await.map(Reply::Done),
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
                .map(Reply::TakenOut)
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
                .map(done)
            }
            Request::Maintenance {
                seconds,
                wan: Some(wan),
            } => self
                .maintenance(seconds, Some(wan))
                .await
                .map(Reply::TakenOut),
            Request::Maintenance { seconds, wan: None } => {
                self.maintenance(seconds, None).await.map(done)
            }
            Request::Events {
                since_ms,
                wan,
                kind,
            } => Ok(Reply::Events(EventsReply {
                events: self
                    .events
                    .query(since_ms.unwrap_or(0), wan.as_deref(), kind)
                    .into_iter()
                    .cloned()
                    .collect(),
            })),
            Request::History { wan, seconds } => self.history(&wan, seconds).map(Reply::History),
            Request::GetConfig => self.get_config().map(Reply::Config),
            Request::ApplyConfig {
                toml,
                confirm_seconds,
                by,
            } => self
                .apply_config(toml, confirm_seconds, by)
                .await
                .map(Reply::Applied),
            Request::ConfirmConfig { id } => self.confirm_config(&id).map(Reply::Done),
            Request::ConfigHistory => Ok(Reply::Versions(VersionsReply {
                versions: self
                    .config_store
                    .versions()
                    .into_iter()
                    .map(|v| VersionInfo {
                        version: v.version,
                        saved_at_ms: v.saved_at_ms,
                        by: v.by,
                    })
                    .collect(),
            })),
            Request::RollbackConfig { version, by } => {
                match self.config_store.version_text(version) {
                    Ok(text) => self
                        .apply_config(text, CONFIRM_SECONDS, by)
                        .await
                        .map(Reply::Applied),
                    Err(_) => Err(Refusal::field(
                        RefusalCode::NotFound,
                        "version",
                        format!("{version} does not exist"),
                    )),
                }
            }
            // Answered by `answer` (it keeps the connection).
            Request::Subscribe { .. } => Err(Refusal::bad_request(
                "subscribe is answered by the control server",
            )),
        }
    }

    async fn maintenance(
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
        let until = (now_ms() + u64::from(seconds) * 1000).div_ceil(1000);
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
    async fn set_override(
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
        if let Err(e) = self.store.save(&next) {
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
    pub fn expire_overrides(&mut self) -> bool {
        let ended = self.overrides.expire(now_ms() / 1000);
        if ended.is_empty() {
            return false;
        }
        if let Err(e) = self.store.save(&self.overrides) {
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

    /// Latency/jitter/loss points of one WAN for graphs.
    fn history(&self, wan: &str, seconds: u32) -> Result<HistoryReply, Refusal> {
        let Some(stats) = self.stats.get(wan) else {
            return Err(Refusal::not_found(format!(
                "`{wan}` is not a WAN interface"
            )));
        };
        let window = Duration::from_secs(u64::from(seconds.clamp(1, 86_400)));
        let points = stats
            .points(Instant::now(), SystemTime::now(), window)
            .map(|p| HealthPoint {
                t_ms: p.t_ms,
                latency_ms: p.latency_ms,
                jitter_ms: p.jitter_ms,
                loss_percent: p.loss_percent,
            })
            .collect();
        Ok(HistoryReply {
            wan: wan.to_string(),
            points,
        })
    }
}

/// The answer of an override change that took nothing out of service.
fn done(t: TakenOut) -> Reply {
    Reply::Done(Done {
        message: t.message,
        apply_ms: None,
    })
}
