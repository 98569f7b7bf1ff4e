//! Running the HA pair (`[ha] enabled`): render keepalived's and conntrackd's files from the
//! config and hand them to the line driver, which runs both engines as children
//! ([`crate::ha::run`]). At start and after every config change; `None` (HA off) stops them.

use super::drivers::{Clock, LineDriver, Platform};
use super::Supervisor;
use crate::apply::LinkObserver;
use crate::ha::beacon::{self, BeaconTarget, PeerConfigWatch};
use crate::ha::run::{Engine, EngineChange, EngineState, PairFiles};
use crate::ha::{conntrackd, keepalived, Pair};
use routeros_shared::config::{pair_shared_view, read_key};
use routeros_shared::control::{Done, HaEngineReport, HaReport, HaRole, PeerConfig, Refusal};
use routeros_shared::events::{Event, EventKind};
use routeros_shared::plan::PairRole;
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;

impl<P: Platform> Supervisor<P> {
    /// Run the pair as the config says (idempotent: unchanged files change nothing). A
    /// failure (unreadable key, no address on the sync link) stops nothing that runs and
    /// is reported as an event; the next config change or restart tries again.
    pub(super) async fn run_pair(&mut self) {
        let files = match self.pair_files().await {
            Ok(files) => files,
            Err(e) => {
                let msg = format!("HA pair not run: {e}");
                tracing::error!("{msg}");
                self.emit(Event::new(EventKind::Ha, None, msg));
                return;
            }
        };
        let target = files.as_ref().map(|(_, t)| t.clone());
        self.peer.digest = target.as_ref().map(|t| t.digest.clone());
        self.lines.set_beacon(target);
        let files = files.map(|(f, _)| f);
        if let Err(e) = self.lines.set_pair(files).await {
            tracing::error!("{e}");
            self.emit(Event::new(EventKind::Ha, None, e));
        }
    }

    /// The files of this box and where its config beacon runs, `None` when HA is off.
    async fn pair_files(&mut self) -> Result<Option<(PairFiles, BeaconTarget)>, String> {
        let Some(pair) = Pair::of(&self.cfg).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let key_file = self
            .cfg
            .ha
            .auth_key_file
            .clone()
            .ok_or("ha.auth_key_file: missing")?;
        let key = read_key(&key_file).map_err(|e| format!("ha.auth_key_file: {e}"))?;
        let sync_address = self.sync_address(&pair.sync_interface).await?;
        let notify = keepalived::notify_command(&kill_switch(), &self.opts.socket)
            .map_err(|e| e.to_string())?;
        // Where the runner writes the files (conntrackd's lock and socket go there too).
        let run_dir = self
            .lines
            .pair_conf(Engine::Conntrackd)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let files = PairFiles {
            keepalived: keepalived::render(&pair, &key, &notify).map_err(|e| e.to_string())?,
            conntrackd: conntrackd::render(&pair, sync_address, &run_dir)
                .map_err(|e| e.to_string())?,
        };
        let peer = self.cfg.ha.peer.ok_or("ha.peer: missing")?;
        let beacon = BeaconTarget {
            bind: (sync_address, beacon::PORT).into(),
            peer: (peer, beacon::PORT).into(),
            digest: beacon::digest(&key, &pair_shared_view(&self.cfg.to_raw())),
        };
        Ok(Some((files, beacon)))
    }

    /// This box's address on the sync link: the LAN's from the config when the pair talks
    /// over the LAN (the link may also hold the virtual address), else the link's own.
    async fn sync_address(&mut self, dev: &str) -> Result<Ipv4Addr, String> {
        if dev == self.cfg.lan.interface {
            return Ok(self.cfg.lan.address.addr());
        }
        let link = self
            .applier
            .routes()
            .observe(dev)
            .await
            .map_err(|e| format!("ha.sync_interface: cannot read `{dev}`: {e}"))?;
        link.address.map(|a| a.addr()).ok_or_else(|| {
            format!("ha.sync_interface: `{dev}` has no IPv4 address (conntrackd sends from it)")
        })
    }

    /// keepalived or conntrackd started, exited or stopped: an event.
    pub fn on_engine_change(&mut self, change: EngineChange) {
        let event = Event::new(EventKind::Ha, None, change.message())
            .with(json!({ "engine": change.engine, "state": change.to }));
        self.emit(event);
    }

    /// The peer's beacon: its config digest.
    pub fn on_peer_beacon(&mut self, digest: String) {
        self.peer.watch.heard(digest, self.clock.now_ms());
        self.check_peer_config();
    }

    /// Say so when the peer's config starts or stops differing from ours, or its beacon
    /// stops (also called every second, for the last).
    pub(super) fn check_peer_config(&mut self) {
        let now = self.clock.now_ms();
        let verdict = self.peer.watch.verdict(self.peer.digest.as_deref(), now);
        let was = std::mem::replace(&mut self.peer.verdict, verdict);
        let msg = match (was, verdict) {
            (a, b) if a == b => return,
            (_, PeerConfig::Differs) => {
                "the other box of the pair holds another config: edit both boxes alike (a failover would route by the other one)"
            }
            (PeerConfig::Differs, PeerConfig::Same) => "the pair's two configs are the same again",
            (_, PeerConfig::NotHeard) if self.peer.watch.heard_at().is_some() => {
                "no config beacon from the other box of the pair for 10 s (is it down, or the sync link?)"
            }
            _ => return,
        };
        if verdict == PeerConfig::Differs {
            tracing::warn!("{msg}");
        } else {
            tracing::info!("{msg}");
        }
        self.emit(
            Event::new(EventKind::Ha, None, msg.to_string())
                .with(json!({ "peer_config": verdict.as_str() })),
        );
    }
}

/// The pair's config as the beacon compares it.
#[derive(Debug, Default)]
pub(super) struct PeerState {
    /// Our digest (HA on and its files rendered).
    pub digest: Option<String>,
    pub watch: PeerConfigWatch,
    /// The last verdict said.
    pub verdict: PeerConfig,
}

/// This box's role as keepalived last reported it.
#[derive(Debug, Clone, Default)]
pub(super) struct RoleState {
    pub role: Option<HaRole>,
    pub previous: Option<HaRole>,
    /// Unix ms of the last change.
    pub since_ms: Option<u64>,
}

impl<P: Platform> Supervisor<P> {
    /// keepalived changed our role (its notify, over the control socket): record it, have
    /// conntrackd commit or resync (in the background, in order), say so, re-plan (the
    /// plan depends on the role). A repeated report of the same role changes nothing.
    pub(super) async fn on_ha_notify(
        &mut self,
        name: &str,
        role: HaRole,
        priority: u8,
    ) -> Result<Done, Refusal> {
        if !self.cfg.ha.enabled {
            return Err(Refusal::bad_request(
                "ha-notify: [ha] is not enabled on this box",
            ));
        }
        if self.role.role == Some(role) {
            return Ok(done(format!("HA role already {}", role.as_str())));
        }
        let previous = self.role.role.replace(role);
        self.role.previous = previous;
        self.role.since_ms = Some(self.clock.now_ms());
        let conf = self.lines.pair_conf(Engine::Conntrackd);
        let commands: Vec<Vec<String>> = conntrackd::role_commands(role)
            .iter()
            .map(|arg| vec!["-C".into(), conf.display().to_string(), (*arg).into()])
            .collect();
        self.lines.pair_commands(commands);
        let from = previous.map_or("none", HaRole::as_str);
        let msg = format!(
            "HA: this box is now {} (was {from}; {name}, priority {priority})",
            role.as_str()
        );
        self.emit(Event::new(EventKind::Ha, None, msg.clone()).with(json!({
            "role": role, "previous": previous, "name": name, "priority": priority,
        })));
        let _ = self.replan("HA role change").await;
        Ok(done(msg))
    }

    /// What the plan is made for: alone, or this box's role in the pair (backup until
    /// keepalived says master).
    pub(super) fn pair_role(&self) -> PairRole {
        match (self.cfg.ha.enabled, self.role.role) {
            (false, _) => PairRole::Alone,
            (true, Some(HaRole::Master)) => PairRole::Master,
            (true, _) => PairRole::Backup,
        }
    }

    /// The pair's part of the status, while HA is on.
    pub(super) fn ha_report(&self) -> Option<HaReport> {
        if !self.cfg.ha.enabled {
            return None;
        }
        let engines = self
            .lines
            .pair_engines()
            .into_iter()
            .map(|e| {
                let (state, last_error) = match e.state {
                    EngineState::Running => ("running", None),
                    EngineState::Exited { last_error, .. } => ("exited", Some(last_error)),
                    EngineState::Stopped => ("stopped", None),
                };
                HaEngineReport {
                    engine: e.engine.as_str().into(),
                    state: state.into(),
                    last_error,
                    restarts: e.restarts,
                }
            })
            .collect();
        Some(HaReport {
            role: self.role.role,
            peer: self.cfg.ha.peer,
            since_ms: self.role.since_ms,
            previous: self.role.previous,
            engines,
            peer_config: self
                .peer
                .watch
                .verdict(self.peer.digest.as_deref(), self.clock.now_ms()),
            peer_heard_ms: self.peer.watch.heard_at(),
        })
    }
}

fn done(message: String) -> Done {
    Done {
        message,
        apply_ms: None,
    }
}

/// The kill-switch beside the running daemon when there is one (a build tree, the labs),
/// else the installed one.
fn kill_switch() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("routeros-kill-switch")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "/usr/bin/routeros-kill-switch".into())
}
