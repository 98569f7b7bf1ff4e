//! The supervisor driven by recording fakes: no root, no kernel, no sleeping. The fakes
//! share one [`World`] that the tests set (link facts, connections per mark, failures) and
//! read back (nft scripts applied, marks flushed, probers and units restarted); time is a
//! [`FakeClock`] the tests move forward. State files live in a temp dir.

use super::drivers::{Clock, Drivers, LineDriver, Platform, Probers, ServiceManager};
use super::Supervisor;
use crate::apply::conntrack::ConntrackDriver;
use crate::apply::{
    ApplyError, CounterReader, FirewallDriver, LinkObserver, RouteDriver, ShapingDriver,
    ShapingOutcome,
};
use crate::daemon::control::{self, Request};
use crate::daemon::Options;
use crate::ha::run::{Engine, EngineSnapshot, PairFiles};
use crate::health::{ProbeJob, Round};
use crate::lines::networkd::UnitFile;
use crate::lines::pppd::{LineSnapshot, PppoeLine, SessionChange};
use crate::lines::{FilesChanged, LineError};
use routeros_shared::config::Config;
use routeros_shared::plan::shaping::ShapedLine;
use routeros_shared::plan::{Family, LinkInfo, RouteSpec, RuleSpec, MARK_MASK};
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
    /// Every mark flushed (both families or IPv4 only), in order.
    flushed: Vec<u32>,
    /// Every mark flushed for IPv6 only, in order.
    flushed6: Vec<u32>,
    /// IPv6 connections per mark.
    connections6: BTreeMap<u32, usize>,
    /// The WANs of every prober restart: IPv4 probers, IPv6 probers.
    probers: Vec<Vec<String>>,
    probers6: Vec<Vec<String>>,
    /// Every prober job of the last restart.
    jobs: Vec<ProbeJob>,
    /// The probe interval each prober was last set to, by (WAN, family).
    intervals: BTreeMap<(String, Family), Duration>,
    /// The table's named counters (packets), as `nft list counters` would give them.
    counters: HashMap<String, u64>,
    /// Every unit restarted.
    units: Vec<String>,
    /// Route syncs fail (an apply is refused by the kernel).
    fail_routes: bool,
    /// The next this many route syncs fail with ENETUNREACH (a line between two addresses).
    unreachable_syncs: usize,
    /// The networkd files in place, by name.
    network_files: BTreeMap<String, String>,
    /// The PPPoE sessions asked for, by WAN: (port, ppp device, user, password).
    pppoe: BTreeMap<String, (String, String, String, String)>,
    /// What the fake pppd supervisor reports.
    sessions: Vec<LineSnapshot>,
    /// Every call to run the HA pair: its (keepalived, conntrackd) files, None for off.
    pair: Vec<Option<(String, String)>>,
    /// Every conntrackd command line run for a role change, in order.
    pair_commands: Vec<Vec<String>>,
    /// Where the pair's config beacon runs (None: off).
    beacon: Option<crate::ha::beacon::BeaconTarget>,
    /// Interface byte counters (rx, tx) by device.
    bytes: HashMap<String, (u64, u64)>,
    /// The lines the kernel shapes (the last sync's, those whose device exists).
    shaped: Vec<ShapedLine>,
    /// How many shaping syncs ran.
    shaping_syncs: usize,
    /// The kernel has no CAKE.
    no_cake: bool,
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
            if w.unreachable_syncs > 0 {
                w.unreachable_syncs -= 1;
                return Err(ApplyError::Socket {
                    what: "gateway unreachable in the fake",
                    source: std::io::Error::from_raw_os_error(libc::ENETUNREACH),
                });
            }
            (w.routes, w.rules) = (routes.to_vec(), rules.to_vec());
            Ok(())
        })
    }
    async fn current(&mut self) -> Result<(Vec<RouteSpec>, Vec<RuleSpec>), ApplyError> {
        Ok(self.with(|w| (w.routes.clone(), w.rules.clone())))
    }
}

impl LinkObserver for Fake {
    async fn observe(&mut self, ifname: &str) -> Result<LinkInfo, ApplyError> {
        Ok(self.with(|w| w.links.get(ifname).cloned().unwrap_or_default()))
    }
    async fn byte_counters(&mut self) -> Result<HashMap<String, (u64, u64)>, ApplyError> {
        Ok(self.with(|w| w.bytes.clone()))
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

impl CounterReader for Fake {
    async fn counters(&mut self) -> Result<HashMap<String, u64>, ApplyError> {
        Ok(self.with(|w| w.counters.clone()))
    }
}

impl ConntrackDriver for Fake {
    async fn flush_mark(
        &mut self,
        mark: u32,
        mask: u32,
        family: Option<Family>,
    ) -> Result<usize, ApplyError> {
        assert_eq!(mask, MARK_MASK);
        Ok(self.with(|w| match family {
            Some(Family::V6) => {
                w.flushed6.push(mark);
                w.connections6.remove(&mark).unwrap_or(0)
            }
            _ => {
                w.flushed.push(mark);
                w.connections.remove(&mark).unwrap_or(0)
            }
        }))
    }
    async fn count_mark(&mut self, mark: u32, _mask: u32) -> Result<usize, ApplyError> {
        Ok(self.with(|w| w.connections.get(&mark).copied().unwrap_or(0)))
    }
}

impl Probers for Fake {
    fn restart(&mut self, jobs: &[ProbeJob], _: Duration, _: Duration) {
        let of = |family| {
            jobs.iter()
                .filter(|j| j.family == family)
                .map(|j| j.wan.clone())
                .collect()
        };
        self.with(|w| {
            w.probers.push(of(Family::V4));
            w.probers6.push(of(Family::V6));
            w.jobs = jobs.to_vec();
        });
    }

    fn set_interval(&mut self, wan: &str, family: Family, interval: Duration) {
        self.with(|w| {
            w.intervals.insert((wan.to_string(), family), interval);
        });
    }
}

impl ShapingDriver for Fake {
    async fn sync(&mut self, lines: &[ShapedLine], _configured: &[String]) -> ShapingOutcome {
        self.with(|w| {
            w.shaping_syncs += 1;
            let (present, missing): (Vec<_>, Vec<_>) = lines
                .iter()
                .cloned()
                .partition(|l| w.links.get(&l.dev).is_some_and(|k| k.present));
            w.shaped = present;
            ShapingOutcome {
                failed: missing
                    .into_iter()
                    .map(|l| (l.wan, format!("its device {} does not exist", l.dev)))
                    .collect(),
                ..ShapingOutcome::default()
            }
        })
    }
    async fn has_cake(&mut self) -> Result<bool, String> {
        Ok(self.with(|w| !w.no_cake))
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
    type Lines = Fake;
    type Shaping = Fake;
}

impl LineDriver for Fake {
    async fn set_network_files(&mut self, files: &[UnitFile]) -> Result<FilesChanged, LineError> {
        self.with(|w| {
            let new: BTreeMap<String, String> = files
                .iter()
                .map(|f| (f.name.clone(), f.text.clone()))
                .collect();
            let changed = FilesChanged {
                written: new
                    .iter()
                    .filter(|(n, t)| w.network_files.get(*n) != Some(*t))
                    .map(|(n, _)| n.clone())
                    .collect(),
                removed: w
                    .network_files
                    .keys()
                    .filter(|n| !new.contains_key(*n))
                    .cloned()
                    .collect(),
            };
            w.network_files = new;
            Ok(changed)
        })
    }
    fn set_pppoe(&mut self, lines: Vec<PppoeLine>) -> Result<(), String> {
        self.with(|w| {
            w.pppoe = lines
                .into_iter()
                .map(|l| (l.wan, (l.port, l.ifname, l.username, l.password)))
                .collect();
        });
        Ok(())
    }
    fn sessions(&self) -> Vec<LineSnapshot> {
        self.with(|w| w.sessions.clone())
    }
    async fn set_pair(&mut self, files: Option<PairFiles>) -> Result<(), String> {
        self.with(|w| {
            w.pair
                .push(files.map(|f| (f.keepalived.clone(), f.conntrackd.clone())));
        });
        Ok(())
    }
    fn pair_engines(&self) -> Vec<EngineSnapshot> {
        Vec::new()
    }
    fn pair_commands(&mut self, commands: Vec<Vec<String>>) {
        self.with(|w| w.pair_commands.extend(commands));
    }
    fn set_beacon(&mut self, target: Option<crate::ha::beacon::BeaconTarget>) {
        self.with(|w| w.beacon = target);
    }
    fn pair_conf(&self, engine: Engine) -> std::path::PathBuf {
        std::path::PathBuf::from("/fake").join(engine.file_name())
    }
    async fn stop(&mut self) {
        self.with(|w| {
            w.pppoe.clear();
            w.pair.push(None);
        });
    }
}

/// The configs' default probe target.
const TARGET: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
const TARGET6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111);

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
        let world = Fake::default();
        world.with(|w| {
            for (n, wan) in (1u8..).zip(["wan1", "wan2"]) {
                w.links.insert(wan.to_string(), link(n, true));
            }
        });
        Self::start_with(tempfile::tempdir().unwrap(), toml, world)
    }

    /// Started over `world` as the tests set it, with `toml` as the config in `dir`.
    fn start_with(dir: tempfile::TempDir, toml: &str, world: Fake) -> Lab {
        std::fs::write(dir.path().join("routeros.toml"), toml).unwrap();
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
        lab.rt.block_on(async {
            lab.sup.start().await;
            lab.sup.start_pair().await;
        });
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
            network_dir: dir.join("network"),
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
            lines: world.clone(),
            shaping: world.clone(),
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
            self.rt
                .block_on(self.sup.on_round(wan, Family::V4, good.clone()));
        }
    }

    fn lose_rounds(&mut self, wan: &str, n: usize) {
        self.rounds(wan, Family::V4, n, false);
    }

    /// `n` probe rounds of one family of `wan`, all answered or all lost.
    fn rounds(&mut self, wan: &str, family: Family, n: usize, answered: bool) {
        let target: std::net::IpAddr = match family {
            Family::V4 => TARGET.into(),
            Family::V6 => TARGET6.into(),
        };
        let rtt = answered.then_some(Duration::from_millis(10));
        for _ in 0..n {
            let round = Round::new(vec![(target, rtt)]);
            self.rt.block_on(self.sup.on_round(wan, family, round));
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
        point_to_point: false,
        ..LinkInfo::default()
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

mod commit_confirm;
mod ipv6;
mod lines;
mod overrides;
mod pair;
mod probe_pace;
mod shaping;
mod speeds;
mod start_and_resets;
