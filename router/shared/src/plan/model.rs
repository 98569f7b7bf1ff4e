//! The desired kernel state: what the planner produces and the appliers make true.
//! Plain data with names (not ifindexes) so it can be compared, serialised and golden-tested.

use super::nft::{NFT_FAMILY, NFT_TABLE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Routing protocol number stamped on every route and rule we install, so that adoption
/// and clean-up only ever touch our own entries (`ip route show proto 201`).
pub const ROUTE_PROTO: u8 = 201;

/// Metric of our default route in the main table: below DHCP clients' defaults (networkd
/// uses 1024, dhclient 0 is rare on servers) so the weighted multipath route wins.
pub const MAIN_DEFAULT_METRIC: u32 = 10;

/// The main routing table (RT_TABLE_MAIN).
pub const MAIN_TABLE: u32 = 254;

/// Mask of the packet/conntrack mark bits that belong to us.
pub const MARK_MASK: u32 = 0xff00;

/// Rule priorities. Everything in `RULE_PRIO_FIRST..=RULE_PRIO_LAST` is ours.
pub const RULE_PRIO_FIRST: u32 = 1000;
pub const RULE_PRIO_SUPPRESS_MAIN: u32 = 1000;
pub const RULE_PRIO_FWMARK: u32 = 1100;
pub const RULE_PRIO_FROM: u32 = 1200;
pub const RULE_PRIO_OIF: u32 = 1300;
pub const RULE_PRIO_LAST: u32 = 1399;

/// The address family of a route or rule: the kernel keeps IPv4 and IPv6 routing apart.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    V4,
    V6,
}

/// One next hop of a default route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NextHop {
    /// Interface name (resolved to an index by the applier).
    pub dev: String,
    /// Gateway of the route's family (IPv6: usually the ISP router's link-local address);
    /// `None` for point-to-point links (PPP) where the device is enough.
    pub gateway: Option<IpAddr>,
    /// Weight as `ip route` prints it (1..=255).
    pub weight: u8,
}

/// A default route (0.0.0.0/0 or ::/0) in one table; one hop is a plain route, several a
/// multipath one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteSpec {
    #[serde(default)]
    pub family: Family,
    pub table: u32,
    pub metric: u32,
    pub hops: Vec<NextHop>,
}

/// What a policy rule matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RuleSelector {
    /// `lookup main suppress_prefixlength 0`: more specific main routes (LAN, connected WAN
    /// subnets) win over the per-WAN tables' defaults.
    SuppressMainDefault,
    /// `fwmark MARK/MASK`.
    FwMark { mark: u32, mask: u32 },
    /// `from ADDR`: the router's own traffic sourced from a WAN address leaves by that WAN.
    From(IpAddr),
    /// `oif DEV`: sockets bound to a WAN (health probes) use that WAN's table.
    Oif(String),
}

/// An `ip rule`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleSpec {
    #[serde(default)]
    pub family: Family,
    pub priority: u32,
    pub selector: RuleSelector,
    /// Table to look up.
    pub table: u32,
}

/// Everything the kernel should hold for the current decision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Default routes: one per WAN table and the main-table multipath default.
    pub routes: Vec<RouteSpec>,
    pub rules: Vec<RuleSpec>,
    /// Our nftables table, as one nft script that replaces it atomically (its turn maps
    /// declared empty: their elements are `turns`).
    pub nft: String,
    /// Elements of the table's turn maps (spare-capacity placement), by map name: they
    /// change with the lines' rates, up to a few times a second, and are then rewritten in
    /// place instead of with the table.
    #[serde(default)]
    pub turns: BTreeMap<String, String>,
    /// WANs that new IPv4 connections are balanced over, in config order.
    pub active_wans: Vec<String>,
    /// WANs that new IPv6 connections are balanced over, in config order.
    #[serde(default)]
    pub active_wans6: Vec<String>,
}

impl Plan {
    /// The script that loads the whole table, turn maps filled: one transaction.
    pub fn firewall_script(&self) -> String {
        let mut script = self.nft.clone();
        for (name, elements) in &self.turns {
            script.push_str(&add_elements(name, elements));
        }
        script
    }

    /// The script that brings a kernel holding `applied` to this plan by rewriting turn maps
    /// alone, when the table is otherwise the same and some map's elements moved (one
    /// transaction: `flush` + `add element` per changed map). `None` when the table itself
    /// differs (load [`Plan::firewall_script`]) or nothing changed.
    pub fn turns_update(&self, applied: &Plan) -> Option<String> {
        if self.nft != applied.nft || self.turns == applied.turns {
            return None;
        }
        let script: String = self
            .turns
            .iter()
            .filter(|(name, elements)| applied.turns.get(*name) != Some(*elements))
            .map(|(name, elements)| {
                format!(
                    "flush map {NFT_FAMILY} {NFT_TABLE} {name}\n{}",
                    add_elements(name, elements)
                )
            })
            .collect();
        Some(script)
    }
}

fn add_elements(map: &str, elements: &str) -> String {
    format!("add element {NFT_FAMILY} {NFT_TABLE} {map} {{ {elements} }}\n")
}
