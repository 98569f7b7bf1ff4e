//! Everything the [`Supervisor`](super::Supervisor) reaches outside its own state, as one
//! set of drivers: the kernel (routes and links, the nft table, conntrack), the probers,
//! the service manager, the clock, the line owner (networkd files, pppd) and the lines' shaping (tc). [`Kernel`] is the real set; the unit tests use
//! recording fakes, so the daemon's decisions are tested without root.

use crate::apply::conntrack::{ConntrackDriver, ConntrackNetlink};
use crate::apply::{
    ApplyError, CounterReader, FirewallDriver, LinkObserver, NetlinkDriver, NftDriver, RouteDriver,
    ShapingDriver, TcShaping,
};
use crate::ha::run::EngineChange;
use crate::health::{spawn_wan_prober, ProbeJob, Round};
use crate::lines::pppd::SessionChange;
pub use crate::lines::LineDriver;
use crate::lines::SystemLines;
use routeros_shared::plan::Family;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The types of one set of drivers (named once, so the supervisor has one type parameter).
pub trait Platform {
    type Routes: RouteDriver + LinkObserver;
    type Firewall: FirewallDriver + CounterReader;
    type Conntrack: ConntrackDriver;
    type Probers: Probers;
    type Services: ServiceManager;
    type Clock: Clock;
    type Lines: LineDriver;
    type Shaping: ShapingDriver;
}

/// The drivers themselves, handed to [`Supervisor::new`](super::Supervisor::new).
pub struct Drivers<P: Platform> {
    pub routes: P::Routes,
    pub firewall: P::Firewall,
    pub conntrack: P::Conntrack,
    pub probers: P::Probers,
    pub services: P::Services,
    pub clock: P::Clock,
    pub lines: P::Lines,
    pub shaping: P::Shaping,
}

/// Probe tasks, one per WAN and family, sending their rounds to the event loop.
pub trait Probers {
    /// Stop every prober and start one per job, each probing every `interval`.
    fn restart(&mut self, jobs: &[ProbeJob], interval: Duration, timeout: Duration);
    /// From now on probe `wan`'s `family` side every `interval` (no-op if unchanged).
    fn set_interval(&mut self, wan: &str, family: Family, interval: Duration);
    /// Probe `wan`'s `family` side at once (its next round's verdict sets the pace again).
    fn probe_now(&mut self, wan: &str, family: Family) {
        self.set_interval(wan, family, Duration::ZERO);
    }
}

/// The service manager (systemd): restarts the LAN's DHCP/DNS unit after its config changed.
pub trait ServiceManager {
    /// Restart `unit` if it runs; never waits for it (routing decisions must not).
    fn try_restart(&mut self, unit: &str);
}

/// Wall-clock time, injectable so tests can let maintenance windows and commit-confirm
/// deadlines run out without sleeping.
pub trait Clock {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The real drivers: rtnetlink, `nft`, ctnetlink, ICMP probers, systemd over D-Bus.
pub struct Kernel;

impl Platform for Kernel {
    type Routes = NetlinkDriver;
    type Firewall = NftDriver;
    type Conntrack = ConntrackNetlink;
    type Probers = IcmpProbers;
    type Services = Systemd;
    type Clock = SystemClock;
    type Lines = SystemLines;
    type Shaping = TcShaping;
}

impl Drivers<Kernel> {
    /// Open the netlink sockets (in the current network namespace); probe rounds go to
    /// `rounds`, PPPoE session changes to the returned receiver.
    pub fn connect(
        rounds: mpsc::Sender<(String, Family, Round)>,
        network_dir: &Path,
        ha_dir: &Path,
    ) -> Result<(Self, Changes), ApplyError> {
        let (lines, sessions, engines, peers) =
            SystemLines::new(network_dir.to_path_buf(), ha_dir.to_path_buf());
        let drivers = Self {
            routes: NetlinkDriver::connect()?,
            firewall: NftDriver,
            conntrack: ConntrackNetlink::connect()?,
            probers: IcmpProbers {
                rounds,
                tasks: Vec::new(),
                intervals: HashMap::new(),
            },
            services: Systemd,
            clock: SystemClock,
            lines,
            shaping: TcShaping::default(),
        };
        Ok((
            drivers,
            Changes {
                sessions,
                engines,
                peers,
            },
        ))
    }
}

/// What the processes the daemon runs report, for its event loop.
pub struct Changes {
    pub sessions: UnboundedReceiver<SessionChange>,
    pub engines: UnboundedReceiver<EngineChange>,
    /// The HA peer's config digests (its beacon).
    pub peers: UnboundedReceiver<String>,
}

/// ICMP probers ([`spawn_wan_prober`]), one tokio task per WAN and family, each with the
/// sending side of its interval.
pub struct IcmpProbers {
    rounds: mpsc::Sender<(String, Family, Round)>,
    tasks: Vec<JoinHandle<()>>,
    intervals: HashMap<(String, Family), watch::Sender<Duration>>,
}

impl Probers for IcmpProbers {
    fn restart(&mut self, jobs: &[ProbeJob], interval: Duration, timeout: Duration) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.intervals.clear();
        for job in jobs {
            let (tx, rx) = watch::channel(interval);
            self.intervals.insert((job.wan.clone(), job.family), tx);
            self.tasks.push(spawn_wan_prober(
                job.clone(),
                rx,
                timeout,
                self.rounds.clone(),
            ));
        }
    }

    fn set_interval(&mut self, wan: &str, family: Family, interval: Duration) {
        if let Some(tx) = self.intervals.get(&(wan.to_string(), family)) {
            tx.send_if_modified(|now| std::mem::replace(now, interval) != interval);
        }
    }
}

/// systemd over D-Bus (`systemctl try-restart`, in the background).
pub struct Systemd;

impl ServiceManager for Systemd {
    fn try_restart(&mut self, unit: &str) {
        crate::daemon::lan_services::restart_unit(unit.to_string());
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        routeros_shared::events::now_ms()
    }
}
