//! What the planner decides from besides the config: what the kernel reports about each WAN
//! link, what the health checks concluded, and what the operator forced.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

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
}

/// Verdict of the health checks on one WAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Up,
    Down,
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
pub struct WanRuntime {
    pub link: LinkInfo,
    pub health: Health,
}

pub type WanStates = BTreeMap<String, WanRuntime>;

/// Every WAN of `cfg` present with carrier and never probed: what `--print-plan` plans for.
pub fn all_up(cfg: &crate::config::Config) -> WanStates {
    let link = LinkInfo {
        present: true,
        carrier: true,
        ..LinkInfo::default()
    };
    cfg.wan_interfaces
        .iter()
        .map(|w| {
            let rt = WanRuntime {
                link: link.clone(),
                ..WanRuntime::default()
            };
            (w.name.clone(), rt)
        })
        .collect()
}
