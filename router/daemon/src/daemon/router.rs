//! The daemon's state and its reactions: probe rounds, link changes, operator actions and
//! reloads all end in [`Router::replan`], which applies the plan and then moves connections
//! off WANs that stopped being usable (only theirs: conntrack entries with their mark).

use super::config_store::ConfigStore;
use super::state_file::StateFile;
use super::status_report::StatusPublisher;
use super::{dns, lan_services, reset_rule, Options};
use crate::alerts::Alerter;
use crate::apply::conntrack::{ConntrackDriver, ConntrackNetlink};
use crate::apply::{Applier, ApplyError, LinkObserver, NetlinkDriver, NftDriver};
use crate::health::{spawn_wan_prober, Round, Transition, WanMonitor, WanState, WanStats};
use routeros_shared::config::{Config, WanIds};
use routeros_shared::events::{now_ms, Event, EventKind, EventLog};
use routeros_shared::plan::{self, Overrides, WanStates, MARK_MASK};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Events kept for the dashboard.
const EVENT_LOG_SIZE: usize = 2000;
/// Events a `subscribe` client may fall behind before it is dropped.
const LIVE_EVENTS: usize = 256;

/// Connections reset by one re-plan, by WAN.
pub type Resets = BTreeMap<String, u64>;

pub struct Router {
    pub opts: Options,
    pub cfg: Config,
    pub states: WanStates,
    pub overrides: Overrides,
    pub store: StateFile<Overrides>,
    /// Every WAN's table and mark, by name; saved in `wan-ids.json`.
    pub ids: WanIds,
    id_store: StateFile<WanIds>,
    pub applier: Applier<NetlinkDriver, NftDriver>,
    pub conntrack: ConntrackNetlink,
    pub monitors: BTreeMap<String, WanMonitor>,
    pub stats: BTreeMap<String, WanStats>,
    /// Unix ms of each WAN's last state change.
    pub since: BTreeMap<String, u64>,
    pub events: EventLog,
    /// Every new event, for `subscribe` clients.
    pub live: broadcast::Sender<Event>,
    /// The status snapshot the control server answers from.
    pub status: StatusPublisher,
    alerter: Alerter,
    probers: Vec<JoinHandle<()>>,
    probe_tx: mpsc::Sender<(String, Round)>,
    /// Usable and active WANs after the last successful apply (None before the first).
    last: Option<(BTreeSet<String>, Vec<String>)>,
    pub last_apply_ms: Option<f64>,
    pub last_error: Option<String>,
    pub applied_at: Option<u64>,
    /// How often another program's change to our routes, rules or nft table was undone.
    pub kernel_restores: u64,
    pub config_store: ConfigStore,
    /// A config change applied but not yet confirmed.
    pub pending: Option<PendingChange>,
}

/// A commit-confirm change in flight: rolled back to `previous` at `rollback_at_ms`.
#[derive(Debug, Clone)]
pub struct PendingChange {
    pub id: String,
    pub rollback_at_ms: u64,
    pub previous: String,
    pub by: String,
}

impl Router {
    pub fn new(
        opts: Options,
        cfg: Config,
        probe_tx: mpsc::Sender<(String, Round)>,
    ) -> Result<Self, ApplyError> {
        let store = StateFile::new(&opts.state_dir, "overrides.json");
        let id_store = StateFile::new(&opts.state_dir, "wan-ids.json");
        let config_store = ConfigStore::new(&opts.config);
        let router = Self {
            applier: Applier::new(NetlinkDriver::connect()?, NftDriver),
            conntrack: ConntrackNetlink::connect()?,
            overrides: store.load(),
            store,
            ids: id_store.load(),
            id_store,
            alerter: Alerter::new(&cfg.alerts),
            opts,
            cfg,
            states: WanStates::new(),
            monitors: BTreeMap::new(),
            stats: BTreeMap::new(),
            since: BTreeMap::new(),
            events: EventLog::new(EVENT_LOG_SIZE),
            live: broadcast::channel(LIVE_EVENTS).0,
            status: StatusPublisher::default(),
            probers: Vec::new(),
            probe_tx,
            last: None,
            last_apply_ms: None,
            last_error: None,
            applied_at: None,
            kernel_restores: 0,
            config_store,
            pending: None,
        };
        Ok(router)
    }

    /// (Re)build monitors, stats and probers for the current config. A WAN keeps its state
    /// and history across reloads; new WANs start Up so routing works before the first round.
    /// Called after the first apply: probes need the WAN tables and `oif` rules in place,
    /// or the first round is lost and a healthy WAN starts out looking lossy.
    pub fn configure_health(&mut self) {
        let hc = &self.cfg.health_check;
        let interval = Duration::from_secs_f64(hc.check_interval);
        let timeout = Duration::from_secs_f64(hc.timeout_seconds);
        let mut monitors = BTreeMap::new();
        let mut stats = BTreeMap::new();
        for w in &self.cfg.wan_interfaces {
            let start = self
                .monitors
                .get(&w.name)
                .map_or(WanState::Up, |m| m.state());
            monitors.insert(w.name.clone(), WanMonitor::new(hc, start));
            let s = self
                .stats
                .remove(&w.name)
                .unwrap_or_else(|| WanStats::new(interval));
            stats.insert(w.name.clone(), s);
            self.since.entry(w.name.clone()).or_insert_with(now_ms);
        }
        self.monitors = monitors;
        self.stats = stats;
        for p in self.probers.drain(..) {
            p.abort();
        }
        let targets = self.cfg.health_targets();
        for w in &self.cfg.wan_interfaces {
            self.probers.push(spawn_wan_prober(
                w.name.clone(),
                targets.clone(),
                interval,
                timeout,
                self.probe_tx.clone(),
            ));
        }
    }

    pub fn set_alerts(&mut self) {
        self.alerter.reconfigure(&self.cfg.alerts);
    }

    /// Failover is paused (router-wide maintenance): health changes are logged, not acted on.
    fn paused(&self) -> bool {
        self.overrides
            .paused_until
            .is_some_and(|t| t * 1000 > now_ms())
    }

    pub fn emit(&mut self, event: Event) {
        tracing::info!(kind = ?event.kind, wan = event.wan.as_deref().unwrap_or("-"), details = %event.details, "{}", event.message);
        self.alerter.notify(&event);
        let _ = self.live.send(event.clone());
        self.events.push(event);
    }

    /// Log a WAN state change; true if the planner's view of the WAN changed.
    fn note_transition(&mut self, wan: &str, t: Transition) -> bool {
        self.since.insert(wan.to_string(), now_ms());
        let kind = if t.to == WanState::Degraded && t.cause.contains("latency") {
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
        let Some(health) = self.monitors.get(wan).map(|m| m.state().health()) else {
            return false;
        };
        let entry = self.states.entry(wan.to_string()).or_default();
        let changed = entry.health != health;
        entry.health = health;
        changed
    }

    /// After a pause ends, catch up with what the monitors say now.
    pub fn sync_all_health(&mut self) -> bool {
        let wans: Vec<String> = self.monitors.keys().cloned().collect();
        wans.iter().fold(false, |acc, w| self.sync_health(w) | acc)
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

    /// Re-read every WAN's link facts; true if anything the planner uses changed. Carrier
    /// loss takes a WAN down at once, without waiting for probes.
    pub async fn refresh_links(&mut self) -> bool {
        let mut changed = false;
        let wans: Vec<String> = self
            .cfg
            .wan_interfaces
            .iter()
            .map(|w| w.name.clone())
            .collect();
        for wan in wans {
            let link = match self.applier.routes().observe(&wan).await {
                Ok(link) => link,
                Err(e) => {
                    tracing::warn!(wan, "cannot read link state: {e}");
                    continue;
                }
            };
            let old = self.states.entry(wan.clone()).or_default().link.clone();
            if old == link {
                continue;
            }
            tracing::info!(wan, ?link, "link changed");
            let carrier_now = link.present && link.carrier;
            let carrier_before = old.present && old.carrier;
            self.states.entry(wan.clone()).or_default().link = link;
            changed = true;
            let now = Instant::now();
            let t = match self.monitors.get_mut(&wan) {
                Some(m) if carrier_before && !carrier_now => m.link_lost(now),
                Some(m) if !carrier_before && carrier_now => m.link_restored(now),
                _ => None,
            };
            if let Some(t) = t {
                self.note_transition(&wan, t);
            }
        }
        changed
    }

    /// Give the config's WANs their numbers (kept by name, see [`WanIds`]) and save them
    /// before anything uses them, so that a crash cannot forget a mark still to be flushed.
    fn allocate_ids(&mut self) -> Result<(), ApplyError> {
        let ids = WanIds::allocate(&self.cfg, &self.ids).map_err(ApplyError::WanIds)?;
        if ids == self.ids {
            return Ok(());
        }
        self.id_store.save(&ids).map_err(|e| {
            ApplyError::WanIds(format!(
                "cannot save {}: {e}",
                self.id_store.path().display()
            ))
        })?;
        tracing::info!(wans = ?ids.wans, released = ?ids.released, "WAN tables and marks");
        self.ids = ids;
        Ok(())
    }

    /// Plan from the current inputs, apply, then move connections as the change requires;
    /// returns how many connections that reset, by WAN.
    pub async fn replan(&mut self, why: &str) -> Result<Resets, ApplyError> {
        if let Err(e) = self.allocate_ids() {
            tracing::error!(why, "{e}");
            self.last_error = Some(e.to_string());
            return Err(e);
        }
        let views = plan::wan_views(&self.cfg, &self.ids, &self.states, &self.overrides);
        let plan = plan::plan(&self.cfg, &self.ids, &self.states, &self.overrides);
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
        self.applied_at = Some(now_ms() / 1000);
        tracing::info!(why, active = ?plan.active_wans, apply_ms = ms, nft_replaced = outcome.firewall_replaced, "plan applied");

        let usable: BTreeSet<String> = views
            .iter()
            .filter(|w| w.usable)
            .map(|w| w.name.clone())
            .collect();
        let active = plan.active_wans.clone();
        let mut resets = Resets::new();
        if let Some((prev_usable, prev_active)) =
            self.last.replace((usable.clone(), active.clone()))
        {
            resets = self
                .move_connections(&prev_usable, &prev_active, &usable, &active)
                .await;
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
    pub async fn reconcile(&mut self, firewall_too: bool) {
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

    /// Reset the connections of WANs that left service (so clients reconnect through the
    /// survivors); with `move_back_on_recovery`, also those left on WANs that no longer
    /// carry new connections once a better one is back. When nothing is usable there is
    /// nowhere to move to, so nothing is reset.
    async fn move_connections(
        &mut self,
        prev_usable: &BTreeSet<String>,
        prev_active: &[String],
        usable: &BTreeSet<String>,
        active: &[String],
    ) -> Resets {
        let mut resets = Resets::new();
        let reset = reset_rule::resets(
            prev_usable,
            usable,
            active,
            self.cfg.routing.move_back_on_recovery,
        );
        for (wan, why) in reset {
            // A WAN removed from the config has no numbers here: flush_released resets it.
            let Some(mark) = self.ids.get(&wan).map(|id| id.mark) else {
                continue;
            };
            let flushed = self.conntrack.flush_mark(mark, MARK_MASK).await;
            let (n, err) = match &flushed {
                Ok(n) => (*n, None),
                Err(e) => (0, Some(e.to_string())),
            };
            *resets.entry(wan.clone()).or_default() += u64::try_from(n).unwrap_or(u64::MAX);
            let msg = format!(
                "{wan} {why}: {n} connections reset to reconnect via {}",
                active.join(", ")
            );
            self.emit(
                Event::new(EventKind::Failover, Some(&wan), msg).with(json!({
                    "reset_connections": n, "mark": mark, "error": err, "active": active,
                })),
            );
        }
        let all_down = usable.is_empty();
        if prev_active != active || (all_down && !prev_usable.is_empty()) {
            let msg = if all_down {
                // Fail-static: the plan keeps the last routes rather than blackholing.
                format!(
                    "every WAN is down: keeping the last routes ({}) until one comes back",
                    if active.is_empty() {
                        "none".to_string()
                    } else {
                        active.join(", ")
                    }
                )
            } else {
                format!("new connections now use: {}", active.join(", "))
            };
            self.emit(
                Event::new(EventKind::Failover, None, msg)
                    .with(json!({ "from": prev_active, "to": active })),
            );
        }
        resets
    }

    /// The applied plan for diagnosis and the live WANs' DNS servers for the LAN forwarder.
    fn write_files(&self, plan: &plan::Plan) {
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
                    lan_services::restart_unit(unit.clone());
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot write dnsmasq.conf: {e}"),
        }
    }
}
