//! The pure decision: (config, WAN runtime state, operator overrides) -> desired kernel state.
//! No I/O here: everything is unit-tested without root.

mod decide;
pub mod dhcp;
mod input;
mod model;
pub mod nft;
mod render;
mod weights;

pub use decide::{active_wans, wan_views, PlannedWan};
pub use input::*;
pub use model::*;

use crate::config::Resolved;

/// Decide the complete kernel state for this moment, from the config with every WAN's
/// table and mark (see [`WanIds::allocate`](crate::config::WanIds::allocate)).
pub fn plan(resolved: &Resolved, states: &WanFactsByName, overrides: &Overrides) -> Plan {
    let cfg = resolved.config();
    let views = wan_views(resolved, states, overrides);
    let active = active_wans(&views, cfg.routing.load_balancing);
    Plan {
        routes: decide::routes(&views, &active),
        rules: decide::rules(&views),
        nft: nft::render(cfg, &views, &active),
        active_wans: active.iter().map(|w| w.name.clone()).collect(),
    }
}

#[cfg(test)]
mod tests;
