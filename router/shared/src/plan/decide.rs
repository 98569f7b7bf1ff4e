//! Which WANs carry traffic, and the routes and rules that follow from it.

use super::input::{HealthVerdict, Overrides, WanFactsByName};
use super::model::*;
use crate::config::{BalanceMode, Resolved};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// One configured WAN with everything the planner derived about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWan {
    pub name: String,
    /// The device its traffic uses: the port, its VLAN or its ppp device.
    pub dev: String,
    pub table: u32,
    pub mark: u32,
    pub weight: u32,
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
}

/// Derive every WAN's view from config, numbers and runtime state, in config order.
pub fn wan_views(resolved: &Resolved, states: &WanFactsByName, ov: &Overrides) -> Vec<PlannedWan> {
    resolved
        .wans()
        .map(|wan| {
            let (w, table, mark) = (wan.config, wan.table, wan.mark);
            let rt = states.get(&w.name).cloned().unwrap_or_default();
            let gateway = w.gateway.or(rt.link.gateway);
            // A point-to-point link (PPP) needs no gateway: the device reaches the peer.
            let routable = rt.link.present && (gateway.is_some() || rt.link.point_to_point);
            let disabled = ov.is_out(&w.name);
            PlannedWan {
                name: w.name.clone(),
                dev: w.device(),
                table,
                mark,
                weight: w.weight,
                priority: w.priority,
                gateway,
                address: rt.link.address.map(|a| a.addr()),
                subnet: rt.link.address.map(|a| a.trunc()),
                routable,
                usable: routable && rt.link.carrier && rt.health == HealthVerdict::Up && !disabled,
                disabled,
            }
        })
        .collect()
}

/// The WANs new connections are spread over. In failover mode only the best (lowest)
/// priority tier. When nothing is usable, keep using every routable WAN that the
/// operator did not disable: a guess beats a blackhole (fail-static).
pub fn active_wans(views: &[PlannedWan], mode: BalanceMode) -> Vec<&PlannedWan> {
    let usable: Vec<&PlannedWan> = views.iter().filter(|w| w.usable).collect();
    let pool = if usable.is_empty() {
        views.iter().filter(|w| w.routable && !w.disabled).collect()
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

fn hop(w: &PlannedWan, weight: u32) -> NextHop {
    NextHop {
        dev: w.dev.clone(),
        gateway: w.gateway,
        weight: weight.clamp(1, 255) as u8,
    }
}

/// Default routes: one per routable WAN in its own table (kept while the WAN is down so
/// its health probes still have a path), plus the weighted main default for the router's
/// own traffic over the active WANs.
pub fn routes(views: &[PlannedWan], active: &[&PlannedWan]) -> Vec<RouteSpec> {
    let mut routes: Vec<RouteSpec> = views
        .iter()
        .filter(|w| w.routable)
        .map(|w| RouteSpec {
            table: w.table,
            metric: 0,
            hops: vec![hop(w, 1)],
        })
        .collect();
    if !active.is_empty() {
        routes.push(RouteSpec {
            table: MAIN_TABLE,
            metric: MAIN_DEFAULT_METRIC,
            hops: active.iter().map(|w| hop(w, w.weight)).collect(),
        });
    }
    routes
}

/// Policy rules: main-table specifics first, then per WAN its fwmark, source-address and
/// bound-interface rules.
pub fn rules(views: &[PlannedWan]) -> Vec<RuleSpec> {
    let mut rules = vec![RuleSpec {
        priority: RULE_PRIO_SUPPRESS_MAIN,
        selector: RuleSelector::SuppressMainDefault,
        table: MAIN_TABLE,
    }];
    for (i, w) in (0u32..).zip(views) {
        rules.push(RuleSpec {
            priority: RULE_PRIO_FWMARK + i,
            selector: RuleSelector::FwMark {
                mark: w.mark,
                mask: MARK_MASK,
            },
            table: w.table,
        });
        if let Some(addr) = w.address {
            rules.push(RuleSpec {
                priority: RULE_PRIO_FROM + i,
                selector: RuleSelector::From(addr),
                table: w.table,
            });
        }
        rules.push(RuleSpec {
            priority: RULE_PRIO_OIF + i,
            selector: RuleSelector::Oif(w.dev.clone()),
            table: w.table,
        });
    }
    rules.sort();
    rules
}
