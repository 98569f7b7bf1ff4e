//! Changing the configuration: reload from the file (SIGHUP, `reload`), or a new text from
//! the web UI with commit-confirm. Every path validates first and, when anything fails,
//! leaves the running config, the kernel and the file as they were.
//!
//! Commit-confirm ([`CommitConfirm`]): a change over the socket is applied and saved at
//! once, and goes back to the previous text unless confirmed in time. One change at a
//! time: another is refused while one waits. A reload (SIGHUP, `reload`) while a change
//! waits re-reads the file, which holds the pending text, and leaves the change pending:
//! it is still rolled back when its time is up, over whatever the file holds then.

use super::drivers::{Clock, Platform};
use super::Supervisor;
use crate::daemon::control::{
    Applied, ConfigReply, Done, PendingInfo, Refusal, RefusalCode, CONFIRM_SECONDS,
    MAX_CONFIRM_SECONDS, MIN_CONFIRM_SECONDS,
};
use crate::daemon::pppoe_secrets;
use nix::libc::ENETUNREACH;
use routeros_shared::config::{parse_size, Config, ConfigErrors, FieldError};
use routeros_shared::events::{Event, EventKind};
use serde_json::json;
use std::time::Duration;

/// How long a config change that touched the lines waits for networkd to settle them before
/// a refused route counts as a failed apply, and how often it tries again meanwhile.
const LINES_SETTLE: Duration = Duration::from_secs(5);
const SETTLE_STEP: Duration = Duration::from_millis(250);

/// A commit-confirm change in flight: rolled back to `previous` at `rollback_at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChange {
    pub id: String,
    pub rollback_at_ms: u64,
    /// The config text before the change.
    pub previous: String,
    pub by: String,
}

/// The commit-confirm window: at most one change waits for confirmation. Pure state; the
/// supervisor applies, saves and rolls back.
#[derive(Debug, Default)]
pub struct CommitConfirm {
    pending: Option<PendingChange>,
}

impl CommitConfirm {
    pub fn pending(&self) -> Option<&PendingChange> {
        self.pending.as_ref()
    }

    /// Why a change with this window cannot start now, if it cannot.
    pub fn refuse_start(&self, confirm_seconds: u32) -> Option<Refusal> {
        if let Some(p) = &self.pending {
            return Some(Refusal::new(
                RefusalCode::Conflict,
                format!(
                    "a change by {} is waiting for confirmation; confirm it or let it roll back first",
                    p.by
                ),
            ));
        }
        if !(MIN_CONFIRM_SECONDS..=MAX_CONFIRM_SECONDS).contains(&confirm_seconds) {
            return Some(Refusal::field(
                RefusalCode::BadRequest,
                "confirm_seconds",
                format!(
                    "{confirm_seconds} is not in {MIN_CONFIRM_SECONDS}..={MAX_CONFIRM_SECONDS}"
                ),
            ));
        }
        None
    }

    /// A change was applied at `now_ms`: it rolls back to `previous` unless confirmed.
    pub fn start(
        &mut self,
        previous: String,
        by: String,
        confirm_seconds: u32,
        now_ms: u64,
    ) -> &PendingChange {
        self.pending.insert(PendingChange {
            id: format!("{now_ms:x}"),
            rollback_at_ms: now_ms + u64::from(confirm_seconds) * 1000,
            previous,
            by,
        })
    }

    /// Keep the pending change `id`; the change it was, or why not.
    pub fn confirm(&mut self, id: &str) -> Result<PendingChange, Refusal> {
        match self.pending.take() {
            Some(p) if p.id == id => Ok(p),
            Some(other) => {
                self.pending = Some(other);
                Err(Refusal::field(
                    RefusalCode::Conflict,
                    "id",
                    "not the pending change",
                ))
            }
            None => Err(Refusal::new(
                RefusalCode::NoPending,
                "no change is waiting for confirmation",
            )),
        }
    }

    /// The pending change whose time is up at `now_ms`, now no longer pending.
    pub fn take_due(&mut self, now_ms: u64) -> Option<PendingChange> {
        self.pending.take_if(|p| p.rollback_at_ms <= now_ms)
    }
}

impl<P: Platform> Supervisor<P> {
    /// Switch to an already validated config; on a failed apply go back to the old one.
    async fn switch_config(&mut self, new: Config) -> Result<(), String> {
        let old = std::mem::replace(&mut self.cfg, new);
        let lines_changed = old.wan_interfaces != self.cfg.wan_interfaces;
        if lines_changed {
            self.bring_up_lines().await;
        }
        self.refresh_links().await;
        let mut applied = self.replan("config change").await;
        // networkd applies changed line files on its own time: a line whose address moves is
        // briefly without one, and a route through its gateway is refused meanwhile
        // (ENETUNREACH). Give the lines a few seconds to settle before calling it a failure.
        let mut waited = Duration::ZERO;
        while lines_changed
            && waited < LINES_SETTLE
            && applied
                .as_ref()
                .is_err_and(|e| e.errno() == Some(ENETUNREACH))
        {
            tokio::time::sleep(SETTLE_STEP).await;
            waited += SETTLE_STEP;
            self.refresh_links().await;
            applied = self.replan("config change (lines settling)").await;
        }
        match applied {
            Ok(_) => {
                self.shape("config change").await;
                self.run_pair().await;
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
                if lines_changed {
                    self.bring_up_lines().await;
                }
                let _ = self.replan("revert").await;
                self.shape("revert").await;
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
            fields: errors.0.clone(),
        }
    }

    /// Re-read the file (SIGHUP or `reload`).
    pub async fn reload(&mut self) -> Result<Done, Refusal> {
        let new = match Config::load(&self.opts.config) {
            Ok(cfg) => cfg,
            Err(errors) => return Err(self.refused("reload", &errors)),
        };
        let problems = self.kernel_problems(&new).await;
        if !problems.is_empty() {
            return Err(self.refused("reload", &ConfigErrors(problems)));
        }
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

    pub(super) fn get_config(&self) -> Result<ConfigReply, Refusal> {
        match self.config_store.read() {
            Ok(toml) => Ok(ConfigReply {
                toml,
                version: self.config_store.current_version(),
                pending: self.confirm.pending().map(|p| PendingInfo {
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
    pub(super) async fn apply_config(
        &mut self,
        text: String,
        confirm_seconds: u32,
        by: String,
    ) -> Result<Applied, Refusal> {
        if let Some(refusal) = self.confirm.refuse_start(confirm_seconds) {
            return Err(refusal);
        }
        let new = match Config::from_toml(&text) {
            Ok(cfg) => cfg,
            Err(errors) => return Err(self.refused("change", &errors)),
        };
        let secrets = pppoe_secrets::secrets_dir(&self.opts.config);
        let mut locked = root_only_changes(&self.cfg, &new);
        locked.extend(pppoe_secrets::foreign_password_files(
            &self.cfg, &new, &secrets,
        ));
        // What the config names on this machine, as `Config::load` checks it for a file.
        locked.extend(routeros_shared::config::key_file_problems(&new));
        // What this kernel can do (CAKE for shaping).
        locked.extend(self.kernel_problems(&new).await);
        if !locked.is_empty() {
            return Err(self.refused("change", &ConfigErrors(locked)));
        }
        // Saved (and kept in the history) without the PPPoE passwords given inline.
        let (text, new) =
            match pppoe_secrets::move_inline_passwords(&text, &secrets, self.clock.now_ms()) {
                Ok(None) => (text, new),
                Ok(Some(moved)) => match Config::from_toml(&moved) {
                    Ok(cfg) => (moved, cfg),
                    Err(e) => return Err(Refusal::internal(format!("{e}"))),
                },
                Err(e) => return Err(Refusal::internal(e)),
            };
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
            .ensure_recorded(self.clock.now_ms())
            .and_then(|()| self.config_store.write(&text));
        if let Err(e) = saved {
            return Err(Refusal::internal(format!("cannot save the config: {e}")));
        }
        if let Err(e) = self.switch_config(new).await {
            let _ = self.config_store.write(&previous);
            return Err(Refusal::new(RefusalCode::ApplyFailed, e));
        }
        let now = self.clock.now_ms();
        let version = self
            .config_store
            .record(&text, &by, now)
            .map(|v| v.version)
            .ok();
        let pending = self
            .confirm
            .start(previous, by.clone(), confirm_seconds, now);
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
        Ok(answer)
    }

    pub(super) fn confirm_config(&mut self, id: &str) -> Result<Done, Refusal> {
        match self.confirm.confirm(id) {
            Ok(p) => {
                let message = format!("change by {} confirmed", p.by);
                self.emit(Event::new(EventKind::ConfigChange, None, message.clone()));
                Ok(Done {
                    message,
                    apply_ms: None,
                })
            }
            Err(refusal) => Err(refusal),
        }
    }

    /// Called every second: an unconfirmed change whose time is up goes back.
    pub(super) async fn expire_pending(&mut self) {
        let Some(p) = self.confirm.take_due(self.clock.now_ms()) else {
            return;
        };
        let restored = match Config::from_toml(&p.previous) {
            Ok(cfg) => match self.config_store.write(&p.previous) {
                Ok(()) => self.switch_config(cfg).await,
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let now = self.clock.now_ms();
        let _ = self.config_store.record(&p.previous, "rollback", now);
        let msg = match restored {
            Ok(()) => format!("change by {} not confirmed: rolled back", p.by),
            Err(e) => format!("change by {} not confirmed; rollback failed: {e}", p.by),
        };
        self.emit(Event::new(EventKind::ConfigChange, None, msg));
    }
}

/// What a change over the control socket (the web UI, whose admin is not root) may not
/// touch: the file the root daemon writes its log to and how it rotates it (a path there
/// makes root create, append to and rename files), and the HA key file it reads. Root edits
/// the file and restarts instead.
fn root_only_changes(running: &Config, new: &Config) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // The root daemon reads this file and writes its key into keepalived.conf: over the
    // socket, naming another file would let a web user have any file's first line read.
    if running.ha.auth_key_file != new.ha.auth_key_file {
        errors.push(FieldError::new(
            "ha.auth_key_file",
            format!(
                "cannot be changed here (it stays {}); only root may change it, in the config file",
                running
                    .ha
                    .auth_key_file
                    .as_ref()
                    .map_or("unset".into(), |f| format!("`{}`", f.display()))
            ),
        ));
    }
    let (old, new) = (&running.logging, &new.logging);
    if old.file != new.file {
        errors.push(FieldError::new(
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
        errors.push(FieldError::new(
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
    fn commit_confirm_one_change_until_confirmed_or_due() {
        let mut cc = CommitConfirm::default();
        let range = cc.refuse_start(9).unwrap();
        assert_eq!(range.code, RefusalCode::BadRequest);
        assert_eq!(range.fields[0].path, "confirm_seconds");
        assert_eq!(range.fields[0].reason, "9 is not in 10..=3600");
        assert_eq!(cc.refuse_start(10), None);
        assert_eq!(cc.confirm("x").unwrap_err().code, RefusalCode::NoPending);

        let id = cc.start("old".into(), "ann".into(), 60, 5_000).id.clone();
        assert_eq!(id, "1388");
        assert_eq!(cc.pending().unwrap().rollback_at_ms, 65_000);
        let busy = cc.refuse_start(60).unwrap();
        assert_eq!(busy.code, RefusalCode::Conflict);
        assert!(busy.message.starts_with("a change by ann is waiting"));
        assert_eq!(cc.confirm("other").unwrap_err().fields[0].path, "id");
        assert!(cc.pending().is_some(), "a wrong id keeps it");
        assert_eq!(cc.take_due(64_999), None);
        assert_eq!(cc.confirm(&id).map(|p| p.previous), Ok("old".to_string()));
        assert_eq!(
            cc.take_due(u64::MAX),
            None,
            "confirmed: nothing to roll back"
        );

        cc.start("old".into(), "ann".into(), 60, 5_000);
        let due = cc.take_due(65_000).unwrap();
        assert_eq!((due.previous.as_str(), due.by.as_str()), ("old", "ann"));
        assert!(cc.pending().is_none());
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

    #[test]
    fn the_ha_key_file_is_root_only() {
        let with_key = |file: &str| {
            Config::from_toml(&format!("{BASE}[ha]\nauth_key_file = \"{file}\"\n")).unwrap()
        };
        let running = with_key("/etc/routeros/ha.key");
        assert_eq!(
            root_only_changes(&running, &with_key("/etc/routeros/ha.key")),
            []
        );
        let errs = root_only_changes(&running, &with_key("/etc/shadow"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "ha.auth_key_file");
        assert!(
            errs[0].reason.contains("stays `/etc/routeros/ha.key`"),
            "{errs:?}"
        );
    }
}
