//! What the planner decides from besides the config: what the kernel reports about each WAN
//! link, what the health checks concluded, and what the operator forced.

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Facts about one WAN interface as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkInfo {
    /// The interface exists.
    pub present: bool,
    /// Carrier is up (IFF_LOWER_UP).
    pub carrier: bool,
    /// First IPv4 address on the interface.
    pub address: Option<Ipv4Net>,
    /// Gateway learned from a default route on this interface that is not ours
    /// (installed by DHCP or netplan in any table but our WAN tables).
    pub gateway: Option<Ipv4Addr>,
    /// A point-to-point link (IFF_POINTOPOINT, e.g. a PPP session): routed without a gateway.
    #[serde(default)]
    pub point_to_point: bool,
    /// First global IPv6 address (SLAAC, DHCPv6 or static; not tentative).
    #[serde(default)]
    pub address6: Option<Ipv6Net>,
    /// IPv6 gateway learned like `gateway` (the router advertisement's default route).
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

/// The planner's two-valued view of a WAN's health checks: may it carry traffic?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthVerdict {
    #[default]
    Up,
    Down,
}

/// A WAN's health as its probes see it, with hysteresis (the health monitor's state,
/// shown on the dashboard); the planner only needs its [`HealthVerdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Answering within the latency and loss thresholds.
    Up,
    /// Answering, but slow or lossy: still carries traffic.
    Degraded,
    /// Failed rounds in a row, or no carrier.
    Down,
    /// Was down and answers again, not trusted yet.
    Recovering,
}

impl HealthState {
    /// Up or degraded: the line passes its health checks and may carry traffic.
    pub fn is_live(self) -> bool {
        matches!(self, HealthState::Up | HealthState::Degraded)
    }

    /// Up/Degraded carry traffic, Down/Recovering do not.
    pub fn verdict(self) -> HealthVerdict {
        if self.is_live() {
            HealthVerdict::Up
        } else {
            HealthVerdict::Down
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Up => "up",
            HealthState::Degraded => "degraded",
            HealthState::Down => "down",
            HealthState::Recovering => "recovering",
        }
    }
}

/// Operator decisions that override health (kill-switch, maintenance).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// WANs the operator took out of service until enabled again.
    pub disabled: BTreeSet<String>,
    /// WANs in maintenance: out of service until this Unix time (seconds).
    pub maintenance: BTreeMap<String, u64>,
    /// Router-wide maintenance until this Unix time: health changes are not acted on.
    pub paused_until: Option<u64>,
}

impl Overrides {
    /// The operator has taken this WAN out of service (disabled or in maintenance).
    pub fn is_out(&self, wan: &str) -> bool {
        self.disabled.contains(wan) || self.maintenance.contains_key(wan)
    }

    /// Drop maintenance windows that ended by `now`; the WANs whose window ended, with ""
    /// for the router-wide pause.
    pub fn expire(&mut self, now: u64) -> Vec<String> {
        let mut ended: Vec<String> = self
            .maintenance
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(wan, _)| wan.clone())
            .collect();
        self.maintenance.retain(|_, until| *until > now);
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
            ended.push(String::new());
        }
        ended
    }
}

/// Runtime view of every WAN, by interface name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WanFacts {
    pub link: LinkInfo,
    /// The IPv4 probes' verdict.
    pub health: HealthVerdict,
    /// The IPv6 probes' verdict: each family fails over on its own.
    #[serde(default)]
    pub health6: HealthVerdict,
    /// The IPv4 probes see the line degraded (slow or lossy, still in service): it gets
    /// `[routing] degraded_share` of its share of new connections, in both families.
    #[serde(default)]
    pub degraded: bool,
    /// The download speed the daemon learned from the interface counters (kbit/s,
    /// `capacity::RateLearner`): the line's speed under `weights = "auto"` when it declares
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_down_kbit: Option<u64>,
    /// The line's weight for new connections under `placement = "spare_capacity"` (the
    /// daemon's `capacity::SparePlacer`: weight × spare share, with hysteresis); absent: its
    /// weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_weight: Option<u32>,
}

pub type WanFactsByName = BTreeMap<String, WanFacts>;

/// Every WAN of `cfg` present with carrier and never probed: what `--print-plan` plans for.
pub fn all_up(cfg: &crate::config::Config) -> WanFactsByName {
    cfg.wan_interfaces
        .iter()
        .map(|w| {
            let link = LinkInfo {
                present: true,
                carrier: true,
                point_to_point: w.mode == Some(crate::config::WanMode::Pppoe),
                ..LinkInfo::default()
            };
            let rt = WanFacts {
                link,
                ..WanFacts::default()
            };
            (w.name.clone(), rt)
        })
        .collect()
}

/// This box's part in an HA pair (`[ha]`), which the plan depends on: only the master
/// translates the LAN's IPv4 traffic and serves DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairRole {
    /// No pair (`[ha]` off).
    #[default]
    Alone,
    /// Holds the virtual addresses.
    Master,
    /// Backup, fault, or not told yet (keepalived starts every box as backup).
    Backup,
}

impl PairRole {
    /// The role of a box of `cfg` before keepalived has said anything: alone without a
    /// pair, backup in one.
    pub fn of_config(cfg: &crate::config::Config) -> PairRole {
        if cfg.ha.enabled {
            PairRole::Backup
        } else {
            PairRole::Alone
        }
    }
}
