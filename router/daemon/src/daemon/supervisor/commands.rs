//! Answers to control-socket requests. Every change goes through validation first and
//! leaves the running state and the saved files as they were when it is refused.

use super::drivers::Platform;
use super::Supervisor;
use crate::daemon::control::{
    Answer, Done, EventsReply, HealthPoint, HistoryReply, Refusal, RefusalCode, Reply, Request,
    TakenOut, VersionInfo, VersionsReply, CONFIRM_SECONDS,
};
use std::time::{Duration, Instant, SystemTime};

impl<P: Platform> Supervisor<P> {
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
            // Answered by the control server, off the event loop (control/timezone.rs).
            Request::HaNotify {
                name,
                role,
                priority,
            } => self
                .on_ha_notify(&name, role, priority)
                .await
                .map(Reply::Done),
            Request::SetTimezone { .. } => Err(Refusal::bad_request(
                "set_timezone is answered by the control server",
            )),
        }
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
