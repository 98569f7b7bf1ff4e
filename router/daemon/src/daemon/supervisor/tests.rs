//! The supervisor driven by recording fakes: no root, no kernel, no sleeping. The fakes
//! share one [`World`] that the tests set (link facts, connections per mark, failures) and
//! read back (nft scripts applied, marks flushed, probers and units restarted); time is a
//! [`FakeClock`] the tests move forward. State files live in a temp dir.

use super::drivers::{Clock, Drivers, Platform, Probers, ServiceManager};
use super::Supervisor;
use crate::apply::conntrack::ConntrackDriver;
use crate::apply::{ApplyError, FirewallDriver, LinkObserver, RouteDrift, RouteDriver};
use crate::daemon::control::{self, Request};
use crate::daemon::Options;
use crate::health::Round;
use routeros_shared::config::Config;
use routeros_shared::plan::{LinkInfo, RouteSpec, RuleSpec, MARK_MASK};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake kernel, probers and systemd hold and were asked to do.
#[derive(Default)]
struct World {
    links: BTreeMap<String, LinkInfo>,
    routes: Vec<RouteSpec>,
    rules: Vec<RuleSpec>,
    /// Every nft script applied, in order.
    nft: Vec<String>,
    /// Connections per mark: what a flush deletes and reports.
    connections: BTreeMap<u32, usize>,
    /// Every mark flushed, in order.
    flushed: Vec<u32>,
    /// The WANs of every prober restart.
    probers: Vec<Vec<String>>,
    /// Every unit restarted.
    units: Vec<String>,
    /// Route syncs fail (an apply is refused by the kernel).
    fail_routes: bool,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<World>>);

impl Fake {
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

impl RouteDriver for Fake {
    async fn sync(&mut self, routes: &[RouteSpec], rules: &[RuleSpec]) -> Result<(), ApplyError> {
        self.with(|w| {
            if w.fail_routes {
                return Err(ApplyError::Socket {
                    what: "refused by the fake",
                    source: std::io::Error::from_raw_os_error(libc::EPERM),
                });
            }
            (w.routes, w.rules) = (routes.to_vec(), rules.to_vec());
            Ok(())
        })
    }
    async fn current(&mut self) -> Result<(Vec<RouteSpec>, Vec<RuleSpec>), ApplyError> {
        Ok(self.with(|w| (w.routes.clone(), w.rules.clone())))
    }
    async fn drift(
        &mut self,
        routes: &[RouteSpec],
        rules: &[RuleSpec],
    ) -> Result<RouteDrift, ApplyError> {
        let (have_routes, have_rules) = RouteDriver::current(self).await?;
        Ok(RouteDrift::between(
            (routes, rules),
            (&have_routes, &have_rules),
        ))
    }
}

impl LinkObserver for Fake {
    async fn observe(&mut self, ifname: &str) -> Result<LinkInfo, ApplyError> {
        Ok(self.with(|w| w.links.get(ifname).cloned().unwrap_or_default()))
    }
    async fn byte_counters(&mut self) -> Result<HashMap<String, (u64, u64)>, ApplyError> {
        Ok(HashMap::new())
    }
}

impl FirewallDriver for Fake {
    async fn apply(&mut self, script: &str) -> Result<(), ApplyError> {
        self.with(|w| w.nft.push(script.to_string()));
        Ok(())
    }
    async fn current(&mut self) -> Result<Option<String>, ApplyError> {
        Ok(self.with(|w| w.nft.last().cloned()))
    }
}

impl ConntrackDriver for Fake {
    async fn flush_mark(&mut self, mark: u32, mask: u32) -> Result<usize, ApplyError> {
        assert_eq!(mask, MARK_MASK);
        Ok(self.with(|w| {
            w.flushed.push(mark);
            w.connections.remove(&mark).unwrap_or(0)
        }))
    }
    async fn count_mark(&mut self, mark: u32, _mask: u32) -> Result<usize, ApplyError> {
        Ok(self.with(|w| w.connections.get(&mark).copied().unwrap_or(0)))
    }
}

impl Probers for Fake {
    fn restart(&mut self, wans: &[String], _: &[Ipv4Addr], _: Duration, _: Duration) {
        self.with(|w| w.probers.push(wans.to_vec()));
    }
}

impl ServiceManager for Fake {
    fn try_restart(&mut self, unit: &str) {
        self.with(|w| w.units.push(unit.to_string()));
    }
}

#[derive(Clone)]
struct FakeClock(Arc<AtomicU64>);

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Fakes;

impl Platform for Fakes {
    type Routes = Fake;
    type Firewall = Fake;
    type Conntrack = Fake;
    type Probers = Fake;
    type Services = Fake;
    type Clock = FakeClock;
}

/// The configs' default probe target.
const TARGET: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);

/// 2026-01-01T00:00:00Z: any fixed time will do.
const T0: u64 = 1_767_225_600_000;

const TWO_WANS: &str = r#"
[[wan_interfaces]]
name = "wan1"
gateway = "10.0.1.1"
[[wan_interfaces]]
name = "wan2"
gateway = "10.0.2.1"
[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#;

/// Failover by priority, moving connections back to wan1 when it recovers.
const MOVE_BACK: &str = r#"
[[wan_interfaces]]
name = "wan1"
gateway = "10.0.1.1"
priority = 1
[[wan_interfaces]]
name = "wan2"
gateway = "10.0.2.1"
priority = 2
[lan]
interface = "lan0"
address = "192.168.1.1/24"
[routing]
load_balancing = "failover"
move_back_on_recovery = true
"#;

/// One supervisor over the fakes, its config file and state in a temp dir.
struct Lab {
    sup: Supervisor<Fakes>,
    world: Fake,
    clock: Arc<AtomicU64>,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Lab {
    /// Started (first plan applied) with every WAN present, with carrier and healthy.
    fn start(toml: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routeros.toml"), toml).unwrap();
        let world = Fake::default();
        world.with(|w| {
            for (n, wan) in (1u8..).zip(["wan1", "wan2"]) {
                w.links.insert(wan.to_string(), link(n, true));
            }
        });
        let clock = Arc::new(AtomicU64::new(T0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sup = Self::supervisor(dir.path(), &world, &clock, &rt);
        let mut lab = Lab {
            sup,
            world,
            clock,
            dir,
            rt,
        };
        lab.rt.block_on(lab.sup.start());
        lab
    }

    /// A supervisor over the files in `dir` (as after a restart of the daemon).
    fn supervisor(
        dir: &std::path::Path,
        world: &Fake,
        clock: &Arc<AtomicU64>,
        rt: &tokio::runtime::Runtime,
    ) -> Supervisor<Fakes> {
        let opts = Options {
            config: dir.join("routeros.toml"),
            state_dir: dir.join("state"),
            socket: dir.join("control.sock"),
            socket_group: None,
            dhcp_unit: Some("lan-dnsmasq.service".into()),
            log_dir: dir.join("log"),
        };
        std::fs::create_dir_all(&opts.state_dir).unwrap();
        let cfg = Config::load(&opts.config).unwrap();
        let drivers = Drivers::<Fakes> {
            routes: world.clone(),
            firewall: world.clone(),
            conntrack: world.clone(),
            probers: world.clone(),
            services: world.clone(),
            clock: FakeClock(clock.clone()),
        };
        // Inside the runtime: the alerter spawns its tasks there (none without alerts).
        let _guard = rt.enter();
        Supervisor::new(opts, cfg, drivers)
    }

    /// The answer as a control client gets it on the wire.
    fn request(&mut self, req: Request) -> Value {
        control::to_wire(&self.rt.block_on(self.sup.handle(req)))
    }

    fn second(&mut self) {
        self.rt.block_on(self.sup.on_second());
    }

    fn advance_to(&self, ms: u64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    fn set_carrier(&mut self, wan: &str, carrier: bool) {
        self.world
            .with(|w| w.links.get_mut(wan).unwrap().carrier = carrier);
        self.rt.block_on(self.sup.on_link_event());
    }

    /// Carrier back, then the probe rounds a recovery needs (`recovery_count`, 3).
    fn recover(&mut self, wan: &str) {
        self.set_carrier(wan, true);
        let good = Round::new(vec![(TARGET, Some(Duration::from_millis(10)))]);
        for _ in 0..3 {
            self.rt.block_on(self.sup.on_round(wan, good.clone()));
        }
    }

    fn lose_rounds(&mut self, wan: &str, n: usize) {
        for _ in 0..n {
            self.rt
                .block_on(self.sup.on_round(wan, Round::all_lost(&[TARGET])));
        }
    }

    fn mark(&self, wan: &str) -> u32 {
        self.sup.ids.get(wan).unwrap().mark
    }

    /// Marks flushed since the last call.
    fn take_flushed(&self) -> Vec<u32> {
        self.world.with(|w| std::mem::take(&mut w.flushed))
    }

    fn messages(&self) -> Vec<String> {
        self.sup
            .events
            .query(0, None, None)
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }

    fn config_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("routeros.toml")).unwrap()
    }
}

fn link(n: u8, carrier: bool) -> LinkInfo {
    LinkInfo {
        present: true,
        carrier,
        address: Some(format!("10.0.{n}.2/24").parse().unwrap()),
        gateway: None,
    }
}

/// The reply said yes (the one place that reads the reply's shape).
fn ok(reply: &Value) -> bool {
    reply["ok"] == true
}

fn error(reply: &Value) -> String {
    reply["error"].as_str().unwrap_or_default().to_string()
}

fn wan_names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

// ---- start and the reset decision ----

#[test]
fn start_applies_then_probes_and_resets_nothing() {
    let lab = Lab::start(TWO_WANS);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    lab.world.with(|w| {
        assert_eq!(w.nft.len(), 1, "one table load");
        assert!(!w.routes.is_empty() && !w.rules.is_empty());
        assert_eq!(
            w.probers,
            [wan_names(&["wan1", "wan2"])],
            "probers after the apply"
        );
        assert_eq!(w.units, ["lan-dnsmasq.service"], "dnsmasq.conf was written");
    });
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert!(lab.dir.path().join("state/plan.txt").exists());
    assert!(lab.dir.path().join("state/wan-ids.json").exists());
}

#[test]
fn nothing_changed_flushes_nothing() {
    let mut lab = Lab::start(TWO_WANS);
    lab.rt.block_on(lab.sup.on_link_event());
    lab.rt.block_on(lab.sup.on_link_poll());
    lab.second();
    assert!(ok(&lab.request(Request::Reload)));
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    lab.world.with(|w| {
        assert_eq!(w.nft.len(), 1, "same script: not reloaded");
        assert_eq!(w.units.len(), 1, "same dnsmasq.conf: not restarted");
    });
}

#[test]
fn carrier_loss_resets_that_wan_only_and_the_last_wan_keeps_its_routes() {
    let mut lab = Lab::start(TWO_WANS);
    let (m1, m2) = (lab.mark("wan1"), lab.mark("wan2"));
    lab.world.with(|w| {
        w.connections.insert(m1, 7);
        w.connections.insert(m2, 9);
    });
    lab.set_carrier("wan1", false);
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]));
    let msgs = lab.messages();
    assert!(
        msgs.iter()
            .any(|m| m == "wan1 left service: 7 connections reset to reconnect via wan2"),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m == "new connections now use: wan2"));

    // The last one goes too: nowhere to move to, so nothing is reset; routes stay.
    lab.set_carrier("wan2", false);
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("every WAN is down: keeping the last routes")));

    // Back: recovery alone resets nothing (move_back_on_recovery is off).
    lab.recover("wan1");
    lab.recover("wan2");
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
}

#[test]
fn recovery_moves_connections_back_when_configured() {
    let mut lab = Lab::start(MOVE_BACK);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
    lab.set_carrier("wan1", false);
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]));
    lab.set_carrier("wan1", true);
    assert_eq!(
        lab.take_flushed(),
        [] as [u32; 0],
        "carrier alone: still recovering"
    );
    lab.recover("wan1");
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")], "moved back to wan1");
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("wan2 moved back after recovery")));
}

#[test]
fn probe_failures_take_a_wan_out_and_reset_it() {
    let mut lab = Lab::start(TWO_WANS);
    lab.lose_rounds("wan2", 2);
    assert_eq!(
        lab.take_flushed(),
        [] as [u32; 0],
        "not down before retry_count"
    );
    lab.lose_rounds("wan2", 1);
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
}

// ---- operator overrides ----

#[test]
fn disable_and_enable_persist_and_reset_only_on_the_way_out() {
    let mut lab = Lab::start(TWO_WANS);
    lab.world
        .with(|w| w.connections.insert(lab.mark("wan2"), 5));
    let reply = lab.request(Request::Disable { wan: "wan2".into() });
    assert!(ok(&reply), "{reply}");
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));

    // Survives a restart of the daemon.
    let again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    assert!(again.overrides.disabled.contains("wan2"));

    assert!(ok(&lab.request(Request::Enable { wan: "wan2".into() })));
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    let again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    assert!(again.overrides.disabled.is_empty());
}

#[test]
fn unknown_wan_or_window_changes_nothing() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = lab.request(Request::Disable { wan: "wan9".into() });
    assert!(!ok(&reply));
    assert_eq!(
        error(&reply),
        "`wan9` is not a WAN interface (WANs: wan1, wan2)"
    );
    for seconds in [0, crate::daemon::control::MAX_MAINTENANCE_SECONDS + 1] {
        let reply = lab.request(Request::Maintenance { seconds, wan: None });
        assert!(error(&reply).starts_with("seconds: "), "{reply}");
    }
    assert_eq!(lab.sup.overrides, Default::default());
    assert!(!lab.dir.path().join("state/overrides.json").exists());
}

#[test]
fn wan_maintenance_ends_at_its_time() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = lab.request(Request::Maintenance {
        seconds: 60,
        wan: Some("wan1".into()),
    });
    assert!(ok(&reply), "{reply}");
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]));

    lab.advance_to(T0 + 59_999);
    lab.second();
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]), "not yet");

    lab.advance_to(T0 + 60_000);
    lab.second();
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    assert!(lab.sup.overrides.maintenance.is_empty());
    assert!(lab
        .messages()
        .contains(&"maintenance of wan1 ended: back in service".to_string()));
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    let again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    assert!(again.overrides.maintenance.is_empty(), "saved");
}

#[test]
fn router_wide_maintenance_holds_failover_until_it_ends() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(ok(&lab.request(Request::Maintenance {
        seconds: 120,
        wan: None
    })));
    lab.lose_rounds("wan1", 3);
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("wan1: up -> down")));
    assert_eq!(
        lab.sup.active_wans(),
        wan_names(&["wan1", "wan2"]),
        "logged, not acted on"
    );
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);

    lab.advance_to(T0 + 120_000);
    lab.second();
    assert_eq!(lab.sup.overrides.paused_until, None);
    assert!(lab
        .messages()
        .contains(&"maintenance ended: failover decisions resume".to_string()));
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]), "caught up");
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
}

// ---- commit-confirm ----

/// TWO_WANS with wan1 carrying twice the share.
fn heavier_wan1() -> String {
    TWO_WANS.replacen(
        "gateway = \"10.0.1.1\"",
        "gateway = \"10.0.1.1\"\nweight = 2",
        1,
    )
}

fn apply(lab: &mut Lab, toml: &str) -> Value {
    lab.request(Request::ApplyConfig {
        toml: toml.into(),
        confirm_seconds: 30,
        by: "admin".into(),
    })
}

fn pending_id(reply: &Value) -> String {
    reply["pending"]["id"].as_str().unwrap().to_string()
}

fn weight(lab: &Lab, wan: &str) -> u32 {
    lab.sup
        .cfg
        .wan_interfaces
        .iter()
        .find(|w| w.name == wan)
        .unwrap()
        .weight
}

#[test]
fn confirmed_change_stays() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = apply(&mut lab, &heavier_wan1());
    assert!(ok(&reply), "{reply}");
    assert_eq!(reply["pending"]["rollback_at_ms"], T0 + 30_000);
    let reply_id = pending_id(&reply);
    assert_eq!(weight(&lab, "wan1"), 2);
    assert_eq!(lab.config_file(), heavier_wan1());

    let wrong = lab.request(Request::ConfirmConfig { id: "nope".into() });
    assert_eq!(error(&wrong), "id: not the pending change");
    let id = lab.sup.confirm.pending().unwrap().id.clone();
    assert_eq!(reply_id, id);
    assert_eq!(pending_id(&lab.request(Request::GetConfig)), id);
    assert!(ok(&lab.request(Request::ConfirmConfig { id })));
    assert!(lab.sup.confirm.pending().is_none());

    lab.advance_to(T0 + 31_000);
    lab.second();
    assert_eq!(weight(&lab, "wan1"), 2, "no rollback after confirming");
    assert_eq!(lab.config_file(), heavier_wan1());
    let by: Vec<String> = lab
        .sup
        .config_store
        .versions()
        .into_iter()
        .map(|v| v.by)
        .collect();
    assert_eq!(by, ["file", "admin"]);
}

#[test]
fn unconfirmed_change_rolls_back_when_its_time_is_up() {
    let mut lab = Lab::start(TWO_WANS);
    let first_script = lab.world.with(|w| w.nft[0].clone());
    let first_routes = lab.world.with(|w| w.routes.clone());
    assert!(ok(&apply(&mut lab, &heavier_wan1())));
    assert_ne!(
        lab.world.with(|w| w.routes.clone()),
        first_routes,
        "applied at once"
    );

    lab.advance_to(T0 + 29_999);
    lab.second();
    assert!(lab.sup.confirm.pending().is_some(), "not yet");

    lab.advance_to(T0 + 30_000);
    lab.second();
    assert!(lab.sup.confirm.pending().is_none());
    assert_eq!(weight(&lab, "wan1"), 1);
    assert_eq!(lab.config_file(), TWO_WANS);
    lab.world.with(|w| {
        assert_eq!(w.routes, first_routes, "kernel back to the first plan");
        assert_eq!(w.nft.last(), Some(&first_script));
    });
    assert!(lab
        .messages()
        .contains(&"change by admin not confirmed: rolled back".to_string()));
    let by: Vec<String> = lab
        .sup
        .config_store
        .versions()
        .into_iter()
        .map(|v| v.by)
        .collect();
    assert_eq!(by, ["file", "admin", "rollback"]);
    assert_eq!(
        error(&lab.request(Request::ConfirmConfig { id: "x".into() })),
        "no change is waiting for confirmation"
    );
}

#[test]
fn one_change_at_a_time() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(ok(&apply(&mut lab, &heavier_wan1())));
    let reply = apply(&mut lab, TWO_WANS);
    assert!(error(&reply).starts_with("a change by admin is waiting for confirmation"));
    assert_eq!(weight(&lab, "wan1"), 2, "second change not applied");
    assert_eq!(lab.config_file(), heavier_wan1());
}

/// Today's behaviour, kept: a reload re-reads the file (which holds the pending text) and
/// leaves the change pending; the rollback still comes when its time is up.
#[test]
fn reload_while_a_change_is_pending_keeps_it_pending() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(ok(&apply(&mut lab, &heavier_wan1())));
    let id = lab.sup.confirm.pending().unwrap().id.clone();
    assert!(ok(&lab.request(Request::Reload)));
    assert_eq!(weight(&lab, "wan1"), 2, "the file holds the pending text");
    assert_eq!(lab.sup.confirm.pending().map(|p| p.id.clone()), Some(id));

    lab.advance_to(T0 + 30_000);
    lab.second();
    assert_eq!(weight(&lab, "wan1"), 1);
    assert_eq!(lab.config_file(), TWO_WANS);
}

#[test]
fn failed_apply_keeps_the_running_config_and_the_file() {
    let mut lab = Lab::start(TWO_WANS);
    lab.world.with(|w| w.fail_routes = true);
    let reply = apply(&mut lab, &heavier_wan1());
    assert!(
        error(&reply).starts_with("apply failed, previous config kept"),
        "{reply}"
    );
    assert_eq!(weight(&lab, "wan1"), 1);
    assert_eq!(lab.config_file(), TWO_WANS);
    assert!(lab.sup.confirm.pending().is_none());

    // The once-a-second retry re-applies once the kernel takes it again.
    lab.world.with(|w| w.fail_routes = false);
    lab.second();
    assert!(lab.sup.last_error.is_none());
}

#[test]
fn invalid_change_is_refused_before_anything_moves() {
    let mut lab = Lab::start(TWO_WANS);
    let scripts = lab.world.with(|w| w.nft.len());
    let reply = apply(&mut lab, "[[wan_interfaces]]\nname = \"\"\n");
    assert_eq!(error(&reply), "config invalid; nothing changed");
    assert_eq!(lab.config_file(), TWO_WANS);
    assert_eq!(lab.world.with(|w| w.nft.len()), scripts);
    assert!(lab.sup.confirm.pending().is_none());
    let reply = lab.request(Request::ApplyConfig {
        toml: heavier_wan1(),
        confirm_seconds: 5,
        by: "admin".into(),
    });
    assert!(error(&reply).starts_with("confirm_seconds: 5"), "{reply}");
}
