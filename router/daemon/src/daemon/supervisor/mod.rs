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
mod pair;
mod resets;
mod shaping;
pub mod silence;
mod speeds;
mod status_report;
#[cfg(test)]
mod tests;

use super::config_store::ConfigStore;
use super::state_file::StateFile;
use super::{dns, lan_services, Options};
use crate::alerts::Alerter;
use crate::apply::conntrack::ConntrackDriver;
use crate::apply::{Applier, ApplyError, LinkObserver};
use crate::health::{HealthState, ProbeJob, Round, Transition, WanMonitor, WanStats};
use config_change::CommitConfirm;
use drivers::{Clock, Drivers, Platform, Probers, ServiceManager};
use resets::InService;
use routeros_shared::config::{Allocation, Config, HealthCheckConfig, Ipv6Mode, WanIds};
use routeros_shared::events::{Event, EventKind, EventLog};
use routeros_shared::plan::{
    self, Family, HealthVerdict, Overrides, PlannedWan, WanFactsByName, MARK_MASK,
};
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
    /// The lines' shaping: its driver and what the last sync gave (see [`shaping`]).
    shaper: P::Shaping,
    shaping: shaping::ShapingState,
    /// Why the lines could not be brought up as configured (None: they were).
    line_error: Option<String>,
    monitors: BTreeMap<String, WanMonitor>,
    stats: BTreeMap<String, WanStats>,
    /// Unix ms of each WAN's last state change.
    since: BTreeMap<String, u64>,
    /// The same for each WAN's IPv6 side (only WANs with IPv6 and IPv6 targets).
    monitors6: BTreeMap<String, WanMonitor>,
    stats6: BTreeMap<String, WanStats>,
    since6: BTreeMap<String, u64>,
    /// The passive failure signal's last counter readings (`silence.rs`).
    silence: crate::health::SilenceDetector,
    events: EventLog,
    /// Every new event, for `subscribe` clients.
    live: broadcast::Sender<Event>,
    /// The status snapshot the control server answers from.
    status: StatusPublisher,
    alerter: Alerter,
    /// What the last successful apply put in service (None before the first), IPv4...
    last: Option<InService>,
    /// ...and IPv6.
    last6: Option<InService>,
    last_apply_ms: Option<f64>,
    last_error: Option<String>,
    applied_at: Option<u64>,
    /// How often another program's change to our routes, rules or nft table was undone.
    kernel_restores: u64,
    config_store: ConfigStore,
    /// A config change applied but not yet confirmed.
    confirm: CommitConfirm,
    /// Line-speed learners and the spare-capacity placer (see [`speeds`]).
    speeds: speeds::Speeds,
    /// The HA pair's role as keepalived last reported it.
    role: pair::RoleState,
    /// The pair's config: our digest (HA on) and what the peer's beacon says.
    peer: pair::PeerState,
}

impl<P: Platform> Supervisor<P> {
    pub fn new(opts: Options, cfg: Config, drivers: Drivers<P>) -> Self {
        let overrides_store = StateFile::new(&opts.state_dir, "overrides.json");
        let id_store = StateFile::new(&opts.state_dir, "wan-ids.json");
        let config_store = ConfigStore::new(&opts.config);
        let opts_state_dir = opts.state_dir.clone();
        Self {
            applier: Applier::new(drivers.routes, drivers.firewall),
            conntrack: drivers.conntrack,
            probers: drivers.probers,
            services: drivers.services,
            clock: drivers.clock,
            lines: drivers.lines,
            shaper: drivers.shaping,
            shaping: shaping::ShapingState::default(),
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
            monitors6: BTreeMap::new(),
            silence: Default::default(),
            stats6: BTreeMap::new(),
            since6: BTreeMap::new(),
            events: EventLog::new(EVENT_LOG_SIZE),
            live: broadcast::channel(LIVE_EVENTS).0,
            status: StatusPublisher::default(),
            last: None,
            last6: None,
            last_apply_ms: None,
            last_error: None,
            applied_at: None,
            kernel_restores: 0,
            config_store,
            confirm: CommitConfirm::default(),
            speeds: speeds::Speeds::load(&opts_state_dir),
            role: pair::RoleState::default(),
            peer: pair::PeerState::default(),
        }
    }

    /// Read the links, apply the first plan, then start probing. Probes need the WAN tables
    /// and `oif` rules in place, or the first round is lost and a healthy WAN starts out
    /// looking lossy. A failed first apply is retried every second (see [`Self::on_second`]).
    pub async fn start(&mut self) {
        self.bring_up_lines().await;
        self.refresh_links().await;
        self.restore_speeds();
        if let Err(e) = self.replan("start").await {
            tracing::error!("initial apply failed, retrying: {e}");
        }
        // After the routes: shaping that fails (no CAKE in this kernel) must not delay them.
        self.shape("start").await;
        self.configure_health();
    }

    /// Start the HA pair (when `[ha]` is on). Only once the control socket serves:
    /// keepalived reports its first role (backup) at once, through the socket, and a report
    /// made before it exists is lost (seen in lab_ha_pair: a backup that never knew its role).
    pub async fn start_pair(&mut self) {
        self.run_pair().await;
    }

    /// A burst of kernel route/rule/link events.
    pub async fn on_link_event(&mut self) {
        if self.refresh_links().await {
            let _ = self.replan("link change").await;
            // A line's device may be new (a PPPoE session up): its shaping goes on it.
            self.shape("link change").await;
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
        if self.shaping.wanted() {
            // Also puts back qdiscs another program deleted or changed.
            self.shape("link poll").await;
        }
    }

    /// Once a second: roll back an unconfirmed change whose time is up, end maintenance
    /// windows, learn line speeds and place by spare capacity, and retry a failed apply.
    pub async fn on_second(&mut self) {
        self.expire_pending().await;
        self.check_peer_config();
        let speeds_changed = self.sample_speeds().await;
        if speeds_changed && !self.paused() && self.last_error.is_none() {
            let _ = self.replan(speeds::REPLAN_WHY).await;
        }
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

    /// (Re)build monitors, stats and probers for the current config: one set per WAN for
    /// IPv4, one per WAN with IPv6 for IPv6 (when there are IPv6 targets; otherwise a WAN's
    /// IPv6 counts as healthy while its link is). A WAN keeps its state and history across
    /// reloads; new WANs start Up so routing works before the first round.
    fn configure_health(&mut self) {
        let hc = self.cfg.health_check.clone();
        let interval = Duration::from_secs_f64(hc.check_interval);
        let timeout = Duration::from_secs_f64(hc.timeout_seconds);
        let mut jobs = Vec::new();
        let mut awaiting = Vec::new();
        for family in [Family::V4, Family::V6] {
            // Each line's targets of this family: its own, else the global ones.
            let wans: Vec<(String, String, Vec<std::net::IpAddr>)> = self
                .cfg
                .wan_interfaces
                .iter()
                .filter_map(|w| {
                    let (v4, v6) = self.cfg.wan_targets(w);
                    let targets = match family {
                        Family::V4 => v4,
                        Family::V6 => v6,
                    };
                    let probed =
                        family == Family::V4 || (w.ipv6 != Ipv6Mode::Off && !targets.is_empty());
                    probed.then(|| (w.name.clone(), w.device(), targets))
                })
                .collect();
            let now = self.clock.now_ms();
            let ready = self.links_ready(family);
            let (old_monitors, old_stats, since) = self.health_maps(family);
            let mut monitors = BTreeMap::new();
            let mut stats = BTreeMap::new();
            for (wan, _, targets) in &wans {
                // An IPv6 list may be shorter than `reliability` asks for IPv4: all of
                // it then (the IPv4 lists are checked against it).
                let checks = HealthCheckConfig {
                    reliability: hc
                        .reliability
                        .min(u32::try_from(targets.len()).unwrap_or(u32::MAX))
                        .max(1),
                    ..hc.clone()
                };
                let old = old_monitors.get(wan);
                let start = old.map_or(HealthState::Up, |m| m.state());
                let mut monitor = WanMonitor::new(&checks, start);
                match old {
                    Some(old) => monitor.keep_link(old),
                    None if !ready.get(wan).copied().unwrap_or(false) => {
                        monitor.await_link();
                        awaiting.push(wan.clone());
                    }
                    None => {}
                }
                monitors.insert(wan.clone(), monitor);
                let s = old_stats
                    .remove(wan)
                    .unwrap_or_else(|| WanStats::new(interval));
                stats.insert(wan.clone(), s);
                since.entry(wan.clone()).or_insert(now);
            }
            *old_monitors = monitors;
            *old_stats = stats;
            // Not usable while it waits (it has no path yet anyway): the planner's view too.
            for wan in awaiting.drain(..) {
                self.sync_health(&wan, family);
            }
            jobs.extend(wans.into_iter().map(|(wan, device, targets)| ProbeJob {
                wan,
                device,
                family,
                targets,
            }));
        }
        // A WAN no longer probed for IPv6 is not held down by its last IPv6 verdict.
        for (wan, facts) in self.states.iter_mut() {
            if !self.monitors6.contains_key(wan) {
                facts.health6 = HealthVerdict::Up;
            }
        }
        self.probers.restart(&jobs, interval, timeout);
    }

    /// One family's monitors, probe statistics and state-change times.
    #[allow(clippy::type_complexity)]
    fn health_maps(
        &mut self,
        family: Family,
    ) -> (
        &mut BTreeMap<String, WanMonitor>,
        &mut BTreeMap<String, WanStats>,
        &mut BTreeMap<String, u64>,
    ) {
        match family {
            Family::V4 => (&mut self.monitors, &mut self.stats, &mut self.since),
            Family::V6 => (&mut self.monitors6, &mut self.stats6, &mut self.since6),
        }
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

    /// Log a state change of a WAN's side of `family`; true if the planner's view of the
    /// WAN changed.
    fn note_transition(&mut self, wan: &str, family: Family, t: Transition) -> bool {
        let now = self.clock.now_ms();
        self.health_maps(family).2.insert(wan.to_string(), now);
        let kind = if t.to == HealthState::Degraded && t.cause.contains("latency") {
            EventKind::HighLatency
        } else {
            EventKind::StateChange
        };
        let side = match family {
            Family::V4 => "",
            Family::V6 => " ipv6",
        };
        let msg = format!("{wan}{side}: {:?} -> {:?} ({})", t.from, t.to, t.cause).to_lowercase();
        let mut details = serde_json::to_value(&t).unwrap_or_default();
        if let Some(obj) = details.as_object_mut() {
            obj.insert("family".into(), json!(family));
        }
        self.emit(Event::new(kind, Some(wan), msg).with(details));
        if self.paused() {
            return false;
        }
        self.sync_health(wan, family)
    }

    /// Copy a monitor's verdict into the planner's input; true if it changed.
    fn sync_health(&mut self, wan: &str, family: Family) -> bool {
        let Some(state) = self.health_maps(family).0.get(wan).map(|m| m.state()) else {
            return false;
        };
        let health = state.verdict();
        let entry = self.states.entry(wan.to_string()).or_default();
        let verdict = match family {
            Family::V4 => &mut entry.health,
            Family::V6 => &mut entry.health6,
        };
        let mut changed = *verdict != health;
        *verdict = health;
        if family == Family::V4 {
            let degraded = state == HealthState::Degraded;
            changed |= std::mem::replace(&mut entry.degraded, degraded) != degraded;
        }
        changed
    }

    /// One probe round of one WAN's side of `family`: record it, and re-plan if the verdict
    /// changed.
    /// A line without an IPv6 address (an ISP that offers none, or not yet) cannot answer
    /// IPv6 probes: those rounds are not counted, so an IPv4-only line raises no IPv6 alarm.
    /// A line that was not ready when its monitor started counts from the first round its
    /// link is ready and its table routed: the rounds sent before the plan gave it a path
    /// were lost, and would read as loss.
    pub async fn on_round(&mut self, wan: &str, family: Family, round: Round) {
        if family == Family::V6 && !self.has_ipv6_address(wan) {
            return;
        }
        let now = Instant::now();
        let awaiting = self
            .health_maps(family)
            .0
            .get(wan)
            .is_some_and(|m| m.awaiting_link());
        if awaiting {
            let path_ready = self
                .states
                .get(wan)
                .is_some_and(|s| link_ready(&s.link, family))
                && self.routed(wan, family);
            if !path_ready {
                return;
            }
            if let Some(m) = self.health_maps(family).0.get_mut(wan) {
                m.link_restored(now, "link ready");
            }
            if !self.paused() && self.sync_health(wan, family) {
                let _ = self.replan("health").await;
            }
        }
        let (monitors, stats, _) = self.health_maps(family);
        if let Some(stats) = stats.get_mut(wan) {
            stats.push(now, &round);
        }
        let Some(monitor) = monitors.get_mut(wan) else {
            return;
        };
        let transition = monitor.record(round, now);
        let pace = monitor.pace();
        let every = Duration::from_secs_f64(self.cfg.health_check.interval_at(pace));
        self.probers.set_interval(wan, family, every);
        let Some(t) = transition else {
            return;
        };
        if self.note_transition(wan, family, t) {
            let _ = self.replan("health").await;
        }
    }

    /// The applied plan has the line's own table routed in `family` (its probes' path).
    fn routed(&self, wan: &str, family: Family) -> bool {
        let Some(id) = self.ids.get(wan) else {
            return false;
        };
        self.applier.applied().is_some_and(|p| {
            p.routes
                .iter()
                .any(|r| r.family == family && r.table == id.table)
        })
    }

    /// The line has a global IPv6 address: configured (`address6`) or on its link.
    fn has_ipv6_address(&self, wan: &str) -> bool {
        let configured = self
            .cfg
            .wan_interfaces
            .iter()
            .any(|w| w.name == wan && w.address6.is_some());
        configured
            || self
                .states
                .get(wan)
                .is_some_and(|s| s.link.address6.is_some())
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
        let before = std::mem::replace(&mut state.link, link.clone());
        let now = Instant::now();
        for family in [Family::V4, Family::V6] {
            let (was, is) = (link_ready(&before, family), link_ready(&link, family));
            let t = match self.health_maps(family).0.get_mut(wan) {
                Some(m) if was && !is => m.link_lost(now, link_gone(&link)),
                // A monitor still waiting for its first ready link is released by its
                // first round on a routed table (see `on_round`).
                Some(m) if !was && is && !m.awaiting_link() => {
                    m.link_restored(now, link_back(&before))
                }
                _ => None,
            };
            if let Some(t) = t {
                self.note_transition(wan, family, t);
            }
        }
        true
    }

    /// Whether each WAN's link can carry `family`'s probes now.
    fn links_ready(&self, family: Family) -> BTreeMap<String, bool> {
        self.states
            .iter()
            .map(|(wan, s)| (wan.clone(), link_ready(&s.link, family)))
            .collect()
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
        let plan = plan::plan_as(&resolved, &self.states, &self.overrides, self.pair_role());
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
        if why == speeds::REPLAN_WHY {
            // Placement follows the rates, possibly every few seconds: not an info line each.
            tracing::debug!(
                why,
                apply_ms = ms,
                nft_replaced = outcome.firewall_replaced,
                "plan applied"
            );
        } else {
            tracing::info!(why, active = ?plan.active_wans, apply_ms = ms, nft_replaced = outcome.firewall_replaced, "plan applied");
        }

        let next = InService {
            usable: views
                .iter()
                .filter(|w| w.usable)
                .map(|w| w.name.clone())
                .collect(),
            active: plan.active_wans.clone(),
        };
        let next6 = InService {
            usable: views
                .iter()
                .filter(|w| w.v6.as_ref().is_some_and(|v6| v6.usable))
                .map(|w| w.name.clone())
                .collect(),
            active: plan.active_wans6.clone(),
        };
        let mut resets = Resets::new();
        if let Some(prev) = self.last.replace(next.clone()) {
            resets = self.move_connections(&prev, &next, Family::V4).await;
        }
        if let Some(prev) = self.last6.replace(next6.clone()) {
            for (wan, n) in self.move_connections(&prev, &next6, Family::V6).await {
                *resets.entry(wan).or_default() += n;
            }
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
            let flushed = self.conntrack.flush_mark(r.mark, MARK_MASK, None).await;
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

    /// Reset the connections of `family` that [`resets::connections_to_reset`] picks (so
    /// clients reconnect through the survivors) and say where new connections go now; how
    /// many were reset, by WAN. Each family on its own: a WAN whose IPv6 died keeps its
    /// IPv4 connections.
    async fn move_connections(
        &mut self,
        prev: &InService,
        next: &InService,
        family: Family,
    ) -> Resets {
        let move_back = self.cfg.routing.move_back_on_recovery;
        let active = &next.active;
        let side = match family {
            Family::V4 => "",
            Family::V6 => " IPv6",
        };
        let mut resets = Resets::new();
        for r in resets::connections_to_reset(prev, next, move_back, &self.ids) {
            let (wan, mark) = (r.wan, r.mark);
            let flushed = self
                .conntrack
                .flush_mark(mark, MARK_MASK, Some(family))
                .await;
            let (n, err) = match &flushed {
                Ok(n) => (*n, None),
                Err(e) => (0, Some(e.to_string())),
            };
            *resets.entry(wan.clone()).or_default() += u64::try_from(n).unwrap_or(u64::MAX);
            let msg = format!(
                "{wan}{side} {}: {n}{side} connections reset to reconnect via {}",
                r.why.as_str(),
                active.join(", ")
            );
            self.emit(
                Event::new(EventKind::Failover, Some(&wan), msg).with(json!({
                    "reset_connections": n, "mark": mark, "error": err, "active": active,
                    "family": family,
                })),
            );
        }
        if let Some(msg) = resets::failover_notice(prev, next) {
            let msg = match family {
                Family::V4 => msg,
                Family::V6 => format!("IPv6: {msg}"),
            };
            self.emit(
                Event::new(EventKind::Failover, None, msg)
                    .with(json!({ "from": prev.active, "to": active, "family": family })),
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
        match lan_services::write_dnsmasq(&self.cfg, dir, self.pair_role()) {
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

/// The link can carry `family`'s probes: carrier, and for IPv4 an address (a DHCP line
/// before its lease, or after losing it, cannot answer). IPv6 rounds without an address
/// are skipped in [`Supervisor::on_round`], as a line may offer no IPv6 at all.
fn link_ready(link: &plan::LinkInfo, family: Family) -> bool {
    let carrier = link.present && link.carrier;
    match family {
        Family::V4 => carrier && link.address.is_some(),
        Family::V6 => carrier,
    }
}

/// Why a ready link stopped being ready.
fn link_gone(link: &plan::LinkInfo) -> &'static str {
    if link.present && link.carrier {
        "no IPv4 address"
    } else {
        "carrier lost"
    }
}

/// Why a link is ready again, from what it lacked before.
fn link_back(before: &plan::LinkInfo) -> &'static str {
    if before.present && before.carrier {
        "IPv4 address back"
    } else {
        "carrier restored"
    }
}
