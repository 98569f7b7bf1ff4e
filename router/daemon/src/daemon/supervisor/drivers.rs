//! Everything the [`Supervisor`](super::Supervisor) reaches outside its own state, as one
//! set of drivers: the kernel (routes and links, the nft table, conntrack), the probers,
//! the service manager, the clock and the line owner (networkd files, pppd). [`Kernel`] is the real set; the unit tests use
//! recording fakes, so the daemon's decisions are tested without root.

use crate::apply::conntrack::{ConntrackDriver, ConntrackNetlink};
use crate::apply::{
    ApplyError, FirewallDriver, LinkObserver, NetlinkDriver, NftDriver, RouteDriver,
};
use crate::health::{spawn_wan_prober, ProbeJob, Round};
use crate::lines::pppd::SessionChange;
pub use crate::lines::LineDriver;
use crate::lines::SystemLines;
use routeros_shared::plan::Family;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// The types of one set of drivers (named once, so the supervisor has one type parameter).
pub trait Platform {
    type Routes: RouteDriver + LinkObserver;
    type Firewall: FirewallDriver;
    type Conntrack: ConntrackDriver;
    type Probers: Probers;
    type Services: ServiceManager;
    type Clock: Clock;
    type Lines: LineDriver;
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
}

/// Probe tasks, one per WAN and family, sending their rounds to the event loop.
pub trait Probers {
    /// Stop every prober and start one per job.
    fn restart(&mut self, jobs: &[ProbeJob], interval: Duration, timeout: Duration);
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
}

impl Drivers<Kernel> {
    /// Open the netlink sockets (in the current network namespace); probe rounds go to
    /// `rounds`, PPPoE session changes to the returned receiver.
    pub fn connect(
        rounds: mpsc::Sender<(String, Family, Round)>,
        network_dir: &Path,
    ) -> Result<(Self, UnboundedReceiver<SessionChange>), ApplyError> {
        let (lines, sessions) = SystemLines::new(network_dir.to_path_buf());
        let drivers = Self {
            routes: NetlinkDriver::connect()?,
            firewall: NftDriver,
            conntrack: ConntrackNetlink::connect()?,
            probers: IcmpProbers {
                rounds,
                tasks: Vec::new(),
            },
            services: Systemd,
            clock: SystemClock,
            lines,
        };
        Ok((drivers, sessions))
    }
}

/// ICMP probers ([`spawn_wan_prober`]), one tokio task per WAN and family.
pub struct IcmpProbers {
    rounds: mpsc::Sender<(String, Family, Round)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Probers for IcmpProbers {
    fn restart(&mut self, jobs: &[ProbeJob], interval: Duration, timeout: Duration) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for job in jobs {
            self.tasks.push(spawn_wan_prober(
                job.clone(),
                interval,
                timeout,
                self.rounds.clone(),
            ));
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
