//! Which WANs carry traffic, and the routes and rules that follow from it.

use super::input::{HealthVerdict, Overrides, WanFactsByName};
use super::model::*;
use crate::capacity::{auto_weights, effective_speed, LineSpeed};
use crate::config::{BalanceMode, Ipv6Mode, Placement, Resolved, WeightMode};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One configured WAN with everything the planner derived about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWan {
    pub name: String,
    /// The device its traffic uses: the port, its VLAN or its ppp device.
    pub dev: String,
    pub table: u32,
    pub mark: u32,
    /// `weight` as configured, or under `weights = "auto"` derived from the line's speed;
    /// the main table's multipath route uses it.
    pub weight: u32,
    /// How new connections are shared (the numgen ranges): `weight`, or under
    /// `placement = "spare_capacity"` the daemon's placement weight when it gave one.
    pub share: u32,
    /// The line's download speed and where it came from.
    pub speed: LineSpeed,
    pub priority: u32,
    /// Configured gateway, else the one learned from the link.
    pub gateway: Option<Ipv4Addr>,
    pub address: Option<Ipv4Addr>,
    /// The WAN's connected subnet (reached directly, whatever the mark says).
    pub subnet: Option<Ipv4Net>,
    /// Has a present interface and a gateway: its table can hold a default route.
    pub routable: bool,
    /// Routable, carrier up, healthy and not disabled by the operator.
    pub usable: bool,
    pub disabled: bool,
    /// The same for IPv6 (`None`: `ipv6 = "off"`).
    pub v6: Option<Ipv6View>,
}

/// A WAN's IPv6 side: routed, health-checked and failed over apart from its IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6View {
    /// Configured `gateway6`, else the one the ISP's router advertisement gave.
    pub gateway: Option<Ipv6Addr>,
    /// The global address connections are translated to.
    pub address: Option<Ipv6Addr>,
    pub subnet: Option<Ipv6Net>,
    /// Present, with a gateway (or point-to-point) and a global address to translate to.
    pub routable: bool,
    /// Routable, carrier up, IPv6 probes answered and not disabled by the operator.
    pub usable: bool,
}

/// Which family's view of a WAN [`active_wans`] and the route builders look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    V4,
    V6,
}

impl PlannedWan {
    /// (routable, usable) in `lane`; a WAN without IPv6 is neither there.
    pub(crate) fn lane(&self, lane: Lane) -> (bool, bool) {
        match (lane, &self.v6) {
            (Lane::V4, _) => (self.routable, self.usable),
            (Lane::V6, Some(v6)) => (v6.routable, v6.usable),
            (Lane::V6, None) => (false, false),
        }
    }

    fn gateway_in(&self, lane: Lane) -> Option<IpAddr> {
        match lane {
            Lane::V4 => self.gateway.map(IpAddr::V4),
            Lane::V6 => self.v6.as_ref()?.gateway.map(IpAddr::V6),
        }
    }
}

/// Shares are whole numbers (numgen slots): while a line is degraded every share is
/// multiplied by this, so the degraded one's part (`degraded_share` ≥ 0.05) stays exact.
const DEGRADED_RESOLUTION: u32 = 20;

/// A degraded line's share (already scaled by [`DEGRADED_RESOLUTION`]): `part` of it,
/// rounded, never below 1 (it is still in service).
fn degraded(share: u32, part: f64) -> u32 {
    let reduced =
        crate::capacity::round_clamped(f64::from(share) * part.clamp(0.0, 1.0), u64::from(share));
    u32::try_from(reduced).unwrap_or(share).max(1)
}

/// Derive every WAN's view from config, numbers and runtime state, in config order.
pub fn wan_views(resolved: &Resolved, states: &WanFactsByName, ov: &Overrides) -> Vec<PlannedWan> {
    let routing = &resolved.config().routing;
    let facts = |name: &str| states.get(name).cloned().unwrap_or_default();
    let speeds: Vec<LineSpeed> = resolved
        .wans()
        .map(|wan| {
            effective_speed(
                wan.config.download_mbit,
                facts(&wan.config.name).learned_down_kbit,
            )
        })
        .collect();
    // Auto weights are relative to the fastest line, so they are derived for all at once.
    let auto = auto_weights(&speeds);
    let scale = if routing.degraded_share < 1.0
        && resolved.wans().any(|w| facts(&w.config.name).degraded)
    {
        DEGRADED_RESOLUTION
    } else {
        1
    };
    resolved
        .wans()
        .zip(speeds.into_iter().zip(auto))
        .map(|(wan, (speed, auto_weight))| {
            let (w, table, mark) = (wan.config, wan.table, wan.mark);
            let rt = facts(&w.name);
            let weight = match routing.weights {
                WeightMode::Static => w.weight,
                WeightMode::Auto => auto_weight,
            };
            let share = match routing.placement {
                Placement::Weight => weight,
                Placement::SpareCapacity => rt.placement_weight.unwrap_or(weight).max(1),
            };
            let share = if rt.degraded {
                degraded(share * scale, routing.degraded_share)
            } else {
                share * scale
            };
            let gateway = w.gateway.or(rt.link.gateway);
            // A point-to-point link (PPP) needs no gateway: the device reaches the peer.
            // A gateway needs an address on the link: without one (a line still being
            // configured) the kernel refuses the route, and the whole apply with it.
            let routable = rt.link.present
                && (rt.link.point_to_point || (gateway.is_some() && rt.link.address.is_some()));
            let disabled = ov.is_out(&w.name);
            let up = rt.link.carrier && !disabled;
            let v6 = (w.ipv6 != Ipv6Mode::Off).then(|| {
                let address = w.address6.or(rt.link.address6);
                let gateway = w.gateway6.or(rt.link.gateway6);
                let routable = rt.link.present
                    && address.is_some()
                    && (gateway.is_some() || rt.link.point_to_point);
                Ipv6View {
                    gateway,
                    address: address.map(|a| a.addr()),
                    subnet: address.map(|a| a.trunc()),
                    routable,
                    usable: routable && up && rt.health6 == HealthVerdict::Up,
                }
            });
            PlannedWan {
                name: w.name.clone(),
                dev: w.device(),
                table,
                mark,
                weight,
                share,
                speed,
                priority: w.priority,
                gateway,
                address: rt.link.address.map(|a| a.addr()),
                subnet: rt.link.address.map(|a| a.trunc()),
                routable,
                usable: routable && up && rt.health == HealthVerdict::Up,
                disabled,
                v6,
            }
        })
        .collect()
}

/// The WANs new connections are spread over. In failover mode only the best (lowest)
/// priority tier. When nothing is usable, keep using every routable WAN that the
/// operator did not disable: a guess beats a blackhole (fail-static).
/// Each family on its own: a line whose IPv6 died still carries IPv4.
pub fn active_wans(views: &[PlannedWan], mode: BalanceMode, lane: Lane) -> Vec<&PlannedWan> {
    let usable: Vec<&PlannedWan> = views.iter().filter(|w| w.lane(lane).1).collect();
    let pool = if usable.is_empty() {
        views
            .iter()
            .filter(|w| w.lane(lane).0 && !w.disabled)
            .collect()
    } else {
        usable
    };
    match mode {
        BalanceMode::Ecmp => pool,
        BalanceMode::Failover => {
            let best = pool.iter().map(|w| w.priority).min();
            pool.into_iter()
                .filter(|w| Some(w.priority) == best)
                .collect()
        }
    }
}

fn hop(w: &PlannedWan, lane: Lane, weight: u32) -> NextHop {
    NextHop {
        dev: w.dev.clone(),
        gateway: w.gateway_in(lane),
        weight: u8::try_from(weight.clamp(1, 255)).unwrap_or(u8::MAX),
    }
}

fn family(lane: Lane) -> Family {
    match lane {
        Lane::V4 => Family::V4,
        Lane::V6 => Family::V6,
    }
}

/// Default routes: one per routable WAN in its own table (kept while the WAN is down so
/// its health probes still have a path), plus the weighted main default for the router's
/// own traffic over the active WANs.
/// One family's, given the WANs active in it.
pub fn routes(views: &[PlannedWan], active: &[&PlannedWan], lane: Lane) -> Vec<RouteSpec> {
    let family = family(lane);
    let mut routes: Vec<RouteSpec> = views
        .iter()
        .filter(|w| w.lane(lane).0)
        .map(|w| RouteSpec {
            family,
            table: w.table,
            metric: 0,
            hops: vec![hop(w, lane, 1)],
        })
        .collect();
    if !active.is_empty() {
        routes.push(RouteSpec {
            family,
            table: MAIN_TABLE,
            metric: MAIN_DEFAULT_METRIC,
            hops: active.iter().map(|w| hop(w, lane, w.weight)).collect(),
        });
    }
    routes
}

/// Policy rules of one family: main-table specifics first, then per WAN (with IPv6, for
/// that family) its fwmark, source-address and bound-interface rules.
pub fn rules(views: &[PlannedWan], lane: Lane) -> Vec<RuleSpec> {
    let family = family(lane);
    let rule = |priority, selector, table| RuleSpec {
        family,
        priority,
        selector,
        table,
    };
    let mut rules = Vec::new();
    for (i, w) in (0u32..).zip(views) {
        let address = match lane {
            Lane::V4 => w.address.map(IpAddr::V4),
            Lane::V6 => match &w.v6 {
                Some(v6) => v6.address.map(IpAddr::V6),
                None => continue,
            },
        };
        let mark = RuleSelector::FwMark {
            mark: w.mark,
            mask: MARK_MASK,
        };
        rules.push(rule(RULE_PRIO_FWMARK + i, mark, w.table));
        if let Some(addr) = address {
            rules.push(rule(RULE_PRIO_FROM + i, RuleSelector::From(addr), w.table));
        }
        let oif = RuleSelector::Oif(w.dev.clone());
        rules.push(rule(RULE_PRIO_OIF + i, oif, w.table));
    }
    if lane == Lane::V4 || !rules.is_empty() {
        let suppress = RuleSelector::SuppressMainDefault;
        rules.push(rule(RULE_PRIO_SUPPRESS_MAIN, suppress, MAIN_TABLE));
    }
    rules.sort();
    rules
}
