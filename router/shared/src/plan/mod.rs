//! The pure decision: (config, WAN runtime state, operator overrides) -> desired kernel state.
//! No I/O here: everything is unit-tested without root.

mod classify;
mod decide;
pub mod dhcp;
mod input;
mod model;
pub mod nft;
mod render;
pub mod shaping;
pub mod silence;
mod weights;

pub use decide::{active_wans, wan_views, Ipv6View, Lane, PlannedWan};
pub use input::*;
pub use model::*;

use crate::config::Resolved;

/// Decide the complete kernel state for this moment, from the config with every WAN's
/// table and mark (see [`WanIds::allocate`](crate::config::WanIds::allocate)), for a box
/// that is alone, or in a pair not yet told its role ([`PairRole::of_config`]).
pub fn plan(resolved: &Resolved, states: &WanFactsByName, overrides: &Overrides) -> Plan {
    plan_as(
        resolved,
        states,
        overrides,
        PairRole::of_config(resolved.config()),
    )
}

/// [`plan`] for a box in `role`.
pub fn plan_as(
    resolved: &Resolved,
    states: &WanFactsByName,
    overrides: &Overrides,
    role: PairRole,
) -> Plan {
    let cfg = resolved.config();
    let views = wan_views(resolved, states, overrides);
    let mode = cfg.routing.load_balancing;
    let active = active_wans(&views, mode, Lane::V4);
    let active6 = active_wans(&views, mode, Lane::V6);
    let names = |wans: &[&PlannedWan]| wans.iter().map(|w| w.name.clone()).collect();
    let firewall = nft::render(cfg, &views, &active, &active6, role);
    Plan {
        routes: [
            decide::routes(&views, &active, Lane::V4),
            decide::routes(&views, &active6, Lane::V6),
        ]
        .concat(),
        rules: [
            decide::rules(&views, Lane::V4),
            decide::rules(&views, Lane::V6),
        ]
        .concat(),
        nft: firewall.script,
        turns: firewall.turns,
        active_wans: names(&active),
        active_wans6: names(&active6),
    }
}

#[cfg(test)]
mod tests;
