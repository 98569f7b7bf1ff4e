//! The daemon's state and its reactions: probe rounds, link changes, operator actions and
//! reloads all end in [`Supervisor::replan`], which applies the plan and then moves
//! connections off WANs that stopped being usable (only theirs: conntrack entries with their
//! mark; which ones is decided in [`resets`]).
//!
//! Generic over its [`drivers`], so the unit tests (`tests.rs`) drive it with recording
//! fakes. Submodules add the request handlers ([`commands`]), operator overrides
//! ([`overrides`]) and config changes with commit-confirm ([`config_change`]).

mod commands;
mod config_change;
pub mod drivers;
mod lines;
mod overrides;
mod resets;
mod status_report;
#[cfg(test)]
mod tests;

use super::config_store::ConfigStore;
use super::state_file::StateFile;
use super::{dns, lan_services, Options};
use crate::alerts::Alerter;
use crate::apply::conntrack::ConntrackDriver;
use crate::apply::{Applier, ApplyError, LinkObserver};
use crate::health::{HealthState, Round, Transition, WanMonitor, WanStats};
use config_change::CommitConfirm;
use drivers::{Clock, Drivers, Platform, Probers, ServiceManager};
use resets::InService;
use routeros_shared::config::{Allocation, Config, WanIds};
use routeros_shared::events::{Event, EventKind, EventLog};
use routeros_shared::plan::{self, Overrides, PlannedWan, WanFactsByName, MARK_MASK};
use serde_json::json;
pub use status_report::{StatusBoard, StatusPublisher};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Events kept for the dashboard.
const EVENT_LOG_SIZE: usize = 2000;
/// Events a `subscribe` client may fall behind before it is dropped.
const LIVE_EVENTS: usize = 256;

/// Connections reset by one re-plan, by WAN.
pub type Resets = BTreeMap<String, u64>;

/// Owns the config, each WAN's health and link facts and the operator overrides, and keeps
/// the kernel holding the plan they give.
pub struct Supervisor<P: Platform> {
    opts: Options,
    cfg: Config,
    states: WanFactsByName,
    overrides: Overrides,
    overrides_store: StateFile<Overrides>,
    /// Every WAN's table and mark, by name; saved in `wan-ids.json`.
    ids: WanIds,
    id_store: StateFile<WanIds>,
    applier: Applier<P::Routes, P::Firewall>,
    conntrack: P::Conntrack,
    probers: P::Probers,
    services: P::Services,
    clock: P::Clock,
    lines: P::Lines,
    /// Why the lines could not be brought up as configured (None: they were).
    line_error: Option<String>,
    monitors: BTreeMap<String, WanMonitor>,
    stats: BTreeMap<String, WanStats>,
    /// Unix ms of each WAN's last state change.
    since: BTreeMap<String, u64>,
    events: EventLog,
    /// Every new event, for `subscribe` clients.
    live: broadcast::Sender<Event>,
    /// The status snapshot the control server answers from.
    status: StatusPublisher,
    alerter: Alerter,
    /// What the last successful apply put in service (None before the first).
    last: Option<InService>,
    last_apply_ms: Option<f64>,
    last_error: Option<String>,
    applied_at: Option<u64>,
    /// How often another program's change to our routes, rules or nft table was undone.
    kernel_restores: u64,
    config_store: ConfigStore,
    /// A config change applied but not yet confirmed.
    confirm: CommitConfirm,
}

impl<P: Platform> Supervisor<P> {
    pub fn new(opts: Options, cfg: Config, drivers: Drivers<P>) -> Self {
        let overrides_store = StateFile::new(&opts.state_dir, "overrides.json");
        let id_store = StateFile::new(&opts.state_dir, "wan-ids.json");
        let config_store = ConfigStore::new(&opts.config);
        Self {
            applier: Applier::new(drivers.routes, drivers.firewall),
            conntrack: drivers.conntrack,
            probers: drivers.probers,
            services: drivers.services,
            clock: drivers.clock,
            lines: drivers.lines,
            line_error: None,
            overrides: overrides_store.load(),
            overrides_store,
            ids: id_store.load(),
            id_store,
            alerter: Alerter::new(&cfg.alerts),
            opts,
            cfg,
            states: WanFactsByName::new(),
            monitors: BTreeMap::new(),
            stats: BTreeMap::new(),
            since: BTreeMap::new(),
            events: EventLog::new(EVENT_LOG_SIZE),
            live: broadcast::channel(LIVE_EVENTS).0,
            status: StatusPublisher::default(),
            last: None,
            last_apply_ms: None,
            last_error: None,
            applied_at: None,
            kernel_restores: 0,
            config_store,
            confirm: CommitConfirm::default(),
        }
    }

    /// Read the links, apply the first plan, then start probing. Probes need the WAN tables
    /// and `oif` rules in place, or the first round is lost and a healthy WAN starts out
    /// looking lossy. A failed first apply is retried every second (see [`Self::on_second`]).
    pub async fn start(&mut self) {
        self.bring_up_lines().await;
        self.refresh_links().await;
        if let Err(e) = self.replan("start").await {
            tracing::error!("initial apply failed, retrying: {e}");
        }
        self.configure_health();
    }

    /// A burst of kernel route/rule/link events.
    pub async fn on_link_event(&mut self) {
        if self.refresh_links().await {
            let _ = self.replan("link change").await;
        }
        self.reconcile(false).await;
    }

    /// The periodic link poll: the safety net besides kernel events (a deleted nft table is
    /// noticed only here).
    pub async fn on_link_poll(&mut self) {
        if self.refresh_links().await {
            let _ = self.replan("link poll").await;
        }
        self.reconcile(true).await;
    }

    /// Once a second: roll back an unconfirmed change whose time is up, end maintenance
    /// windows, and retry a failed apply.
    pub async fn on_second(&mut self) {
        self.expire_pending().await;
        if self.expire_overrides() || self.last_error.is_some() {
            let _ = self.replan("maintenance/retry").await;
        }
    }

    /// The WANs new connections use, as last applied.
    pub fn active_wans(&self) -> Vec<String> {
        self.applier
            .applied()
            .map(|p| p.active_wans.clone())
            .unwrap_or_default()
    }

    /// (Re)build monitors, stats and probers for the current config. A WAN keeps its state
    /// and history across reloads; new WANs start Up so routing works before the first round.
    fn configure_health(&mut self) {
        let hc = &self.cfg.health_check;
        let interval = Duration::from_secs_f64(hc.check_interval);
        let timeout = Duration::from_secs_f64(hc.timeout_seconds);
        let mut monitors = BTreeMap::new();
        let mut stats = BTreeMap::new();
        for w in &self.cfg.wan_interfaces {
            let start = self
                .monitors
                .get(&w.name)
                .map_or(HealthState::Up, |m| m.state());
            monitors.insert(w.name.clone(), WanMonitor::new(hc, start));
            let s = self
                .stats
                .remove(&w.name)
                .unwrap_or_else(|| WanStats::new(interval));
            stats.insert(w.name.clone(), s);
            let now = self.clock.now_ms();
            self.since.entry(w.name.clone()).or_insert(now);
        }
        self.monitors = monitors;
        self.stats = stats;
        let wans: Vec<(String, String)> = self
            .cfg
            .wan_interfaces
            .iter()
            .map(|w| (w.name.clone(), w.device()))
            .collect();
        let targets = self.cfg.health_targets();
        self.probers.restart(&wans, &targets, interval, timeout);
    }

    fn set_alerts(&mut self) {
        self.alerter.reconfigure(&self.cfg.alerts);
    }

    fn emit(&mut self, event: Event) {
        tracing::info!(kind = ?event.kind, wan = event.wan.as_deref().unwrap_or("-"), details = %event.details, "{}", event.message);
        self.alerter.notify(&event);
        let _ = self.live.send(event.clone());
        self.events.push(event);
    }

    /// Log a WAN state change; true if the planner's view of the WAN changed.
    fn note_transition(&mut self, wan: &str, t: Transition) -> bool {
        self.since.insert(wan.to_string(), self.clock.now_ms());
        let kind = if t.to == HealthState::Degraded && t.cause.contains("latency") {
            EventKind::HighLatency
        } else {
            EventKind::StateChange
        };
        let msg = format!("{wan}: {:?} -> {:?} ({})", t.from, t.to, t.cause).to_lowercase();
        let details = serde_json::to_value(&t).unwrap_or_default();
        self.emit(Event::new(kind, Some(wan), msg).with(details));
        if self.paused() {
            return false;
        }
        self.sync_health(wan)
    }

    /// Copy a monitor's verdict into the planner's input; true if it changed.
    fn sync_health(&mut self, wan: &str) -> bool {
        let Some(health) = self.monitors.get(wan).map(|m| m.state().verdict()) else {
            return false;
        };
        let entry = self.states.entry(wan.to_string()).or_default();
        let changed = entry.health != health;
        entry.health = health;
        changed
    }

    /// One probe round of one WAN: record it, and re-plan if the verdict changed.
    pub async fn on_round(&mut self, wan: &str, round: Round) {
        let now = Instant::now();
        if let Some(stats) = self.stats.get_mut(wan) {
            stats.push(now, &round);
        }
        let Some(t) = self
            .monitors
            .get_mut(wan)
            .and_then(|m| m.record(round, now))
        else {
            return;
        };
        if self.note_transition(wan, t) {
            let _ = self.replan("health").await;
        }
    }

    /// Re-read every WAN's link facts; true if anything the planner uses changed.
    async fn refresh_links(&mut self) -> bool {
        let wans: Vec<String> = self
            .cfg
            .wan_interfaces
            .iter()
            .map(|w| w.name.clone())
            .collect();
        let mut changed = false;
        for wan in wans {
            changed |= self.refresh_link(&wan).await;
        }
        changed
    }

    /// Re-read one WAN's link facts; true if anything the planner uses changed. Carrier
    /// loss (for a PPPoE line: its session ending) takes the WAN down at once, without
    /// waiting for probes.
    async fn refresh_link(&mut self, wan: &str) -> bool {
        let Some(device) = self
            .cfg
            .wan_interfaces
            .iter()
            .find(|w| w.name == wan)
            .map(|w| w.device())
        else {
            return false;
        };
        let mut link = match self.applier.routes().observe(&device).await {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(wan, "cannot read link state: {e}");
                return false;
            }
        };
        if self.session_not_up(wan) {
            // pppd's device outlives its session by the ip-down scripts: counted as gone
            // already, so no plan routes over it or names it (it may vanish mid-apply).
            link = plan::LinkInfo::default();
        }
        let state = self.states.entry(wan.to_string()).or_default();
        if state.link == link {
            return false;
        }
        tracing::info!(wan, ?link, "link changed");
        let carrier_before = state.link.present && state.link.carrier;
        let carrier_now = link.present && link.carrier;
        state.link = link;
        let now = Instant::now();
        let t = match self.monitors.get_mut(wan) {
            Some(m) if carrier_before && !carrier_now => m.link_lost(now),
            Some(m) if !carrier_before && carrier_now => m.link_restored(now),
            _ => None,
        };
        if let Some(t) = t {
            self.note_transition(wan, t);
        }
        true
    }

    /// Give the config's WANs their numbers (kept by name, see [`WanIds`]) and save them
    /// before anything uses them, so that a crash cannot forget a mark still to be flushed;
    /// then every WAN's view and the plan from the config resolved with those numbers.
    fn decide(&mut self) -> Result<(Vec<PlannedWan>, plan::Plan), ApplyError> {
        let Allocation { ids, resolved } = WanIds::allocate(&self.cfg, &self.ids)?;
        if ids != self.ids {
            self.id_store
                .save(&ids)
                .map_err(|source| ApplyError::SaveWanIds {
                    path: self.id_store.path().to_owned(),
                    source,
                })?;
            tracing::info!(wans = ?ids.wans, released = ?ids.released, "WAN tables and marks");
            self.ids = ids;
        }
        let views = plan::wan_views(&resolved, &self.states, &self.overrides);
        let plan = plan::plan(&resolved, &self.states, &self.overrides);
        Ok((views, plan))
    }

    /// Every WAN's view from the current inputs, for reports (read-only: allocating again
    /// gives the numbers [`Router::decide`] saved; empty only if none can be found).
    pub fn views(&self) -> Vec<PlannedWan> {
        WanIds::allocate(&self.cfg, &self.ids)
            .map(|a| plan::wan_views(&a.resolved, &self.states, &self.overrides))
            .unwrap_or_default()
    }

    /// Plan from the current inputs, apply, then move connections as the change requires;
    /// returns how many connections that reset, by WAN.
    async fn replan(&mut self, why: &str) -> Result<Resets, ApplyError> {
        let (views, plan) = match self.decide() {
            Ok(decided) => decided,
            Err(e) => {
                tracing::error!(why, "{e}");
                self.last_error = Some(e.to_string());
                return Err(e);
            }
        };
        let outcome = match self.applier.apply(&plan).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(why, "apply failed, previous state kept: {e}");
                self.last_error = Some(e.to_string());
                return Err(e);
            }
        };
        let ms = outcome.elapsed.as_secs_f64() * 1000.0;
        self.last_apply_ms = Some(ms);
        self.last_error = None;
        self.applied_at = Some(self.clock.now_ms() / 1000);
        tracing::info!(why, active = ?plan.active_wans, apply_ms = ms, nft_replaced = outcome.firewall_replaced, "plan applied");

        let next = InService {
            usable: views
                .iter()
                .filter(|w| w.usable)
                .map(|w| w.name.clone())
                .collect(),
            active: plan.active_wans.clone(),
        };
        let mut resets = Resets::new();
        if let Some(prev) = self.last.replace(next.clone()) {
            resets = self.move_connections(&prev, &next).await;
        }
        self.flush_released().await;
        self.write_files(&plan);
        self.publish_status();
        Ok(resets)
    }

    /// Reset the connections still carrying a mark that no WAN owns any more (its WAN was
    /// removed from the config, or an explicit `mark` renumbered it), then free the numbers.
    /// Runs right after the apply that retired the mark; a failed flush is retried after the
    /// next apply, unless another WAN owns the mark by then (its new connections carry it).
    async fn flush_released(&mut self) {
        if self.ids.released.is_empty() {
            return;
        }
        for r in self.ids.released.clone() {
            let flushed = self.conntrack.flush_mark(r.mark, MARK_MASK).await;
            let reused = self.ids.wans.values().any(|id| id.mark == r.mark);
            let what = if self.ids.get(&r.wan).is_some() {
                "renumbered by an explicit mark"
            } else {
                "removed from the configuration"
            };
            let msg = match &flushed {
                Ok(n) => format!(
                    "{} {what}: {n} connections of its old mark {:#x} reset",
                    r.wan, r.mark
                ),
                Err(e) => format!(
                    "{} {what}: resetting the connections of its old mark {:#x} failed: {e}",
                    r.wan, r.mark
                ),
            };
            if flushed.is_ok() || reused {
                self.ids.flushed(r.mark);
            }
            let (n, err) = match flushed {
                Ok(n) => (n, None),
                Err(e) => (0, Some(e.to_string())),
            };
            self.emit(
                Event::new(EventKind::ConfigChange, Some(&r.wan), msg).with(json!({
                    "reset_connections": n, "mark": r.mark, "table": r.table, "error": err,
                })),
            );
        }
        if let Err(e) = self.id_store.save(&self.ids) {
            tracing::warn!("cannot save {}: {e}", self.id_store.path().display());
        }
    }

    /// Put the applied plan back where another program changed it (systemd-networkd deleting
    /// "foreign" routes and rules on restart, a hand-made `ip rule del`, a deleted nft table).
    /// Called on every burst of route/rule/link events (`firewall_too` false: nft sends none
    /// of those) and on the link poll (`firewall_too` true).
    async fn reconcile(&mut self, firewall_too: bool) {
        if self.last_error.is_some() {
            return; // the once-a-second retry re-applies the whole plan anyway
        }
        match self.applier.reconcile(firewall_too).await {
            Ok(drift) if drift.is_empty() => {}
            Ok(drift) => {
                self.kernel_restores += 1;
                tracing::warn!(%drift, "our kernel state was changed by another program: restored");
            }
            Err(e) => {
                tracing::error!("restoring our kernel state failed, retrying: {e}");
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// Reset the connections [`resets::connections_to_reset`] picks (so clients reconnect
    /// through the survivors) and say where new connections go now; how many were reset,
    /// by WAN.
    async fn move_connections(&mut self, prev: &InService, next: &InService) -> Resets {
        let move_back = self.cfg.routing.move_back_on_recovery;
        let active = &next.active;
        let mut resets = Resets::new();
        for r in resets::connections_to_reset(prev, next, move_back, &self.ids) {
            let (wan, mark) = (r.wan, r.mark);
            let flushed = self.conntrack.flush_mark(mark, MARK_MASK).await;
            let (n, err) = match &flushed {
                Ok(n) => (*n, None),
                Err(e) => (0, Some(e.to_string())),
            };
            *resets.entry(wan.clone()).or_default() += u64::try_from(n).unwrap_or(u64::MAX);
            let msg = format!(
                "{wan} {}: {n} connections reset to reconnect via {}",
                r.why.as_str(),
                active.join(", ")
            );
            self.emit(
                Event::new(EventKind::Failover, Some(&wan), msg).with(json!({
                    "reset_connections": n, "mark": mark, "error": err, "active": active,
                })),
            );
        }
        if let Some(msg) = resets::failover_notice(prev, next) {
            self.emit(
                Event::new(EventKind::Failover, None, msg)
                    .with(json!({ "from": prev.active, "to": active })),
            );
        }
        resets
    }

    /// The applied plan for diagnosis and the live WANs' DNS servers for the LAN forwarder.
    fn write_files(&mut self, plan: &plan::Plan) {
        let dir = &self.opts.state_dir;
        if let Err(e) = std::fs::write(dir.join("plan.txt"), plan.to_string()) {
            tracing::warn!("cannot write plan.txt: {e}");
        }
        let servers = dns::upstreams(&self.cfg, &plan.active_wans);
        if let Err(e) = dns::write(&dir.join("resolv.conf"), &servers) {
            tracing::warn!("cannot write resolv.conf: {e}");
        }
        match lan_services::write_dnsmasq(&self.cfg, dir) {
            Ok(true) => {
                if let Some(unit) = &self.opts.dhcp_unit {
                    self.services.try_restart(unit);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot write dnsmasq.conf: {e}"),
        }
    }
}
