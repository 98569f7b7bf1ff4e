//! The pure decision: (config, WAN runtime state, operator overrides) -> desired kernel state.
//! No I/O here: everything is unit-tested without root.

mod decide;
pub mod dhcp;
mod input;
mod model;
pub mod nft;
mod render;
mod weights;

pub use decide::{active_wans, wan_views, WanView};
pub use input::*;
pub use model::*;

use crate::config::{Config, WanIds};

/// Decide the complete kernel state for this moment. `ids`: every WAN's table and mark
/// (allocated for `cfg` by [`WanIds::allocate`]).
pub fn plan(cfg: &Config, ids: &WanIds, states: &WanStates, overrides: &Overrides) -> Plan {
    let views = wan_views(cfg, ids, states, overrides);
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
