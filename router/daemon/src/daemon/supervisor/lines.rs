//! Bringing up the lines the config gives a `mode` (at start and whenever the WANs change),
//! and following their PPPoE sessions.

use super::drivers::{LineDriver, Platform};
use super::Supervisor;
use crate::daemon::pppoe_secrets;
use crate::lines::networkd;
use crate::lines::pppd::{self, PppoeLine, SessionChange};
use routeros_shared::config::{Config, Ipv6Mode, WanMode};
use routeros_shared::control::{LineReport, SessionReport, SessionState};
use routeros_shared::events::{Event, EventKind};
use serde_json::json;

impl<P: Platform> Supervisor<P> {
    /// Render the networkd files and the PPPoE sessions of the config's lines and put them
    /// in place. A failure (no networkd, an unreadable password file) leaves routing as it
    /// is: those lines just do not come up, which the status and an event say.
    pub(super) async fn bring_up_lines(&mut self) {
        let mut problems = Vec::new();
        let files = networkd::render(&self.cfg);
        match self.lines.set_network_files(&files).await {
            Ok(changed) if changed.is_empty() => {}
            Ok(changed) => {
                tracing::info!(written = ?changed.written, removed = ?changed.removed, "network files updated; systemd-networkd reloaded");
            }
            Err(e) => problems.push(e.to_string()),
        }
        let (sessions, unreadable) = pppoe_lines(&self.cfg);
        problems.extend(unreadable);
        if let Err(e) = self.lines.set_pppoe(sessions) {
            problems.push(e);
        }
        let error = (!problems.is_empty())
            .then(|| format!("WAN lines not brought up: {}", problems.join("; ")));
        if let Some(msg) = &error {
            tracing::error!("{msg}");
            if self.line_error.as_ref() != Some(msg) {
                self.emit(
                    Event::new(EventKind::ConfigChange, None, msg.clone())
                        .with(json!({ "errors": problems })),
                );
            }
        }
        self.line_error = error;
    }

    /// A PPPoE session changed state: an event, and that WAN's link read again (only it:
    /// each read is a few netlink round trips), so a session that ended takes its WAN out
    /// of service now, as a carrier loss does.
    pub async fn on_session_change(&mut self, change: SessionChange) {
        let event =
            Event::new(EventKind::Session, Some(&change.wan), change.message()).with(json!(change));
        self.emit(event);
        if self.refresh_link(&change.wan).await {
            let _ = self.replan("PPPoE session").await;
            // A new session is a new ppp device, without the line's shaping.
            self.shape("PPPoE session").await;
        }
    }

    /// Whether `wan` is a PPPoE line whose session is not up. Its ppp device outlives the
    /// session by pppd's ip-down scripts (0.3-0.7 s measured on the image), carrying nothing:
    /// [`Supervisor::refresh_link`] counts it as gone.
    pub(super) fn session_not_up(&self, wan: &str) -> bool {
        let pppoe = self
            .cfg
            .wan_interfaces
            .iter()
            .any(|w| w.name == wan && w.mode == Some(WanMode::Pppoe));
        pppoe
            && !self
                .lines
                .sessions()
                .iter()
                .any(|s| s.wan == wan && matches!(s.state, pppd::SessionState::Up { .. }))
    }

    /// End the PPPoE sessions (daemon exit; the routes stay, fail-static).
    pub async fn stop_lines(&mut self) {
        self.lines.stop().await;
    }

    /// How `wan`'s line is brought up, from the config and its PPPoE session.
    pub(super) fn line_report(&self, wan: &str) -> LineReport {
        let Some(w) = self.cfg.wan_interfaces.iter().find(|w| w.name == wan) else {
            return LineReport::default();
        };
        let session = (w.mode == Some(WanMode::Pppoe)).then(|| {
            match self.lines.sessions().into_iter().find(|s| s.wan == wan) {
                Some(s) => SessionReport {
                    state: session_state(&s.state),
                    last_error: s.last_error,
                    since_ms: Some(s.since_ms),
                    restarts: s.restarts,
                },
                None => SessionReport {
                    state: SessionState::Stopped,
                    last_error: self.line_error.clone(),
                    since_ms: None,
                    restarts: 0,
                },
            }
        });
        LineReport {
            mode: w.mode,
            vlan: w.vlan,
            session,
        }
    }
}

fn session_state(s: &pppd::SessionState) -> SessionState {
    match s {
        pppd::SessionState::Connecting => SessionState::Connecting,
        pppd::SessionState::Up { .. } => SessionState::Up,
        pppd::SessionState::Down { .. } => SessionState::Down,
        pppd::SessionState::AuthFailed { .. } => SessionState::AuthFailed,
        pppd::SessionState::Stopped => SessionState::Stopped,
    }
}

/// The PPPoE sessions `cfg` asks for, and why any could not be set up (its password file
/// unreadable).
fn pppoe_lines(cfg: &Config) -> (Vec<PppoeLine>, Vec<String>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for w in &cfg.wan_interfaces {
        let Some(p) = w.pppoe.as_ref().filter(|_| w.mode == Some(WanMode::Pppoe)) else {
            continue;
        };
        match pppoe_secrets::read_password(p) {
            Ok(password) => lines.push(PppoeLine {
                wan: w.name.clone(),
                port: w.link_device(),
                ifname: w.device(),
                username: p.username.clone(),
                password,
                service_name: p.service_name.clone(),
                mtu: p.mtu,
                ipv6: w.ipv6 != Ipv6Mode::Off,
            }),
            Err(e) => problems.push(format!("{}: {e}", w.name)),
        }
    }
    (lines, problems)
}
