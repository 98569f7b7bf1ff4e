//! Changing the configuration: reload from the file (SIGHUP, `reload`), or a new text from
//! the web UI with commit-confirm. Every path validates first and, when anything fails,
//! leaves the running config, the kernel and the file as they were.

use super::control::{
    Applied, ConfigReply, Done, PendingInfo, Refusal, RefusalCode, CONFIRM_SECONDS,
    MAX_CONFIRM_SECONDS, MIN_CONFIRM_SECONDS,
};
use super::router::{PendingChange, Router};
use routeros_shared::config::{parse_size, Config, ConfigError, ConfigErrors};
use routeros_shared::events::{now_ms, Event, EventKind};
use serde_json::json;

impl Router {
    /// Switch to an already validated config; on a failed apply go back to the old one.
    async fn switch_config(&mut self, new: Config) -> Result<(), String> {
        let old = std::mem::replace(&mut self.cfg, new);
        self.refresh_links().await;
        match self.replan("config change").await {
            Ok(_) => {
                if old.health_check != self.cfg.health_check
                    || old.wan_interfaces != self.cfg.wan_interfaces
                {
                    self.configure_health();
                }
                if old.alerts != self.cfg.alerts {
                    self.set_alerts();
                }
                Ok(())
            }
            Err(e) => {
                self.cfg = old;
                let _ = self.replan("revert").await;
                Err(format!("apply failed, previous config kept: {e}"))
            }
        }
    }

    fn refused(&mut self, what: &str, errors: &ConfigErrors) -> Refusal {
        let msg = format!("{what} refused: {} error(s)", errors.0.len());
        self.emit(
            Event::new(EventKind::ConfigChange, None, msg).with(json!({ "errors": errors.0 })),
        );
        Refusal {
            code: RefusalCode::InvalidConfig,
            message: "config invalid; nothing changed".into(),
            fields: errors.0.iter().cloned().map(Into::into).collect(),
        }
    }

    /// Re-read the file (SIGHUP or `reload`).
    pub async fn reload(&mut self) -> Result<Done, Refusal> {
        let new = match Config::load(&self.opts.config) {
            Ok(cfg) => cfg,
            Err(errors) => return Err(self.refused("reload", &errors)),
        };
        match self.switch_config(new).await {
            Ok(()) => {
                self.emit(Event::new(
                    EventKind::ConfigChange,
                    None,
                    "configuration reloaded from file",
                ));
                Ok(Done {
                    message: "configuration reloaded from file".into(),
                    apply_ms: self.last_apply_ms,
                })
            }
            Err(e) => Err(Refusal::new(RefusalCode::ApplyFailed, e)),
        }
    }

    pub fn get_config(&self) -> Result<ConfigReply, Refusal> {
        match self.config_store.read() {
            Ok(toml) => Ok(ConfigReply {
                toml,
                version: self.config_store.current_version(),
                pending: self.pending.as_ref().map(|p| PendingInfo {
                    id: p.id.clone(),
                    rollback_at_ms: p.rollback_at_ms,
                    by: Some(p.by.clone()),
                }),
                confirm_seconds: CONFIRM_SECONDS,
            }),
            Err(e) => Err(Refusal::internal(format!(
                "cannot read {}: {e}",
                self.opts.config.display()
            ))),
        }
    }

    /// Validate, save, apply; roll back by itself after `confirm_seconds` unless confirmed.
    pub async fn apply_config(
        &mut self,
        text: String,
        confirm_seconds: u32,
        by: String,
    ) -> Result<Applied, Refusal> {
        if let Some(p) = &self.pending {
            return Err(Refusal::new(
                RefusalCode::Conflict,
                format!(
                "a change by {} is waiting for confirmation; confirm it or let it roll back first",
                p.by
            ),
            ));
        }
        if !(MIN_CONFIRM_SECONDS..=MAX_CONFIRM_SECONDS).contains(&confirm_seconds) {
            return Err(Refusal::field(
                RefusalCode::BadRequest,
                "confirm_seconds",
                format!(
                    "{confirm_seconds} is not in {MIN_CONFIRM_SECONDS}..={MAX_CONFIRM_SECONDS}"
                ),
            ));
        }
        let new = match Config::from_toml(&text) {
            Ok(cfg) => cfg,
            Err(errors) => return Err(self.refused("change", &errors)),
        };
        let locked = root_only_changes(&self.cfg, &new);
        if !locked.is_empty() {
            return Err(self.refused("change", &ConfigErrors(locked)));
        }
        let previous = match self.config_store.read() {
            Ok(t) => t,
            Err(e) => {
                return Err(Refusal::internal(format!(
                    "cannot read the current config: {e}"
                )))
            }
        };
        let saved = self
            .config_store
            .ensure_recorded(now_ms())
            .and_then(|()| self.config_store.write(&text));
        if let Err(e) = saved {
            return Err(Refusal::internal(format!("cannot save the config: {e}")));
        }
        if let Err(e) = self.switch_config(new).await {
            let _ = self.config_store.write(&previous);
            return Err(Refusal::new(RefusalCode::ApplyFailed, e));
        }
        let version = self
            .config_store
            .record(&text, &by, now_ms())
            .map(|v| v.version)
            .ok();
        let pending = PendingChange {
            id: format!("{:x}", now_ms()),
            rollback_at_ms: now_ms() + u64::from(confirm_seconds) * 1000,
            previous,
            by: by.clone(),
        };
        let answer = Applied {
            pending: PendingInfo {
                id: pending.id.clone(),
                rollback_at_ms: pending.rollback_at_ms,
                by: None,
            },
            version,
            apply_ms: self.last_apply_ms,
        };
        self.emit(Event::new(
            EventKind::ConfigChange,
            None,
            format!(
                "configuration changed by {by}; rolls back in {confirm_seconds} s unless confirmed"
            ),
        ));
        self.pending = Some(pending);
        Ok(answer)
    }

    pub fn confirm_config(&mut self, id: &str) -> Result<Done, Refusal> {
        match &self.pending {
            Some(p) if p.id == id => {
                let by = p.by.clone();
                self.pending = None;
                let message = format!("change by {by} confirmed");
                self.emit(Event::new(EventKind::ConfigChange, None, message.clone()));
                Ok(Done {
                    message,
                    apply_ms: None,
                })
            }
            Some(_) => Err(Refusal::field(
                RefusalCode::Conflict,
                "id",
                "not the pending change",
            )),
            None => Err(Refusal::new(
                RefusalCode::NoPending,
                "no change is waiting for confirmation",
            )),
        }
    }

    /// Called every second: an unconfirmed change whose time is up goes back.
    pub async fn expire_pending(&mut self) {
        let Some(p) = self
            .pending
            .as_ref()
            .filter(|p| p.rollback_at_ms <= now_ms())
            .cloned()
        else {
            return;
        };
        self.pending = None;
        let restored = match Config::from_toml(&p.previous) {
            Ok(cfg) => match self.config_store.write(&p.previous) {
                Ok(()) => self.switch_config(cfg).await,
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let _ = self.config_store.record(&p.previous, "rollback", now_ms());
        let msg = match restored {
            Ok(()) => format!("change by {} not confirmed: rolled back", p.by),
            Err(e) => format!("change by {} not confirmed; rollback failed: {e}", p.by),
        };
        self.emit(Event::new(EventKind::ConfigChange, None, msg));
    }
}

/// What a change over the control socket (the web UI, whose admin is not root) may not
/// touch: the file the root daemon writes its log to and how it rotates it (a path there
/// makes root create, append to and rename files). Root edits the file and restarts instead.
fn root_only_changes(running: &Config, new: &Config) -> Vec<ConfigError> {
    let (old, new) = (&running.logging, &new.logging);
    let mut errors = Vec::new();
    if old.file != new.file {
        errors.push(ConfigError::new(
            "logging.file",
            format!(
                "cannot be changed here (it stays {}); only root may change it, in the config file, then restart routeros-watchdog",
                old.file
                    .as_ref()
                    .map_or("unset".into(), |f| format!("`{}`", f.display()))
            ),
        ));
    }
    if parse_size(&old.max_size).ok() != parse_size(&new.max_size).ok() {
        errors.push(ConfigError::new(
            "logging.max_size",
            format!(
                "cannot be changed here (it stays `{}`); only root may change it, in the config file, then restart routeros-watchdog",
                old.max_size
            ),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[wan_interfaces]]\nname = \"wan1\"\n[lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n";

    fn cfg(logging: &str) -> Config {
        Config::from_toml(&format!("{BASE}[logging]\n{logging}\n")).unwrap()
    }

    #[test]
    fn log_file_and_size_are_root_only() {
        let running = cfg("file = \"/var/log/routeros.log\"\nmax_size = \"10MB\"");
        // Same meaning, other spelling, and the level: allowed.
        let same =
            cfg("level = \"debug\"\nfile = \"/var/log/routeros.log\"\nmax_size = \"10240KB\"");
        assert_eq!(root_only_changes(&running, &same), []);
        assert_eq!(
            root_only_changes(&running, &cfg("")),
            [],
            "defaults are the same"
        );

        for file in ["/etc/cron.d/x", "/var/log/other.log"] {
            let moved = cfg(&format!("file = \"{file}\""));
            let errs = root_only_changes(&running, &moved);
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].path, "logging.file");
            assert!(
                errs[0].reason.contains("stays `/var/log/routeros.log`"),
                "{errs:?}"
            );
        }

        let errs = root_only_changes(&running, &cfg("max_size = \"64KB\""));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "logging.max_size");
    }
}
