//! The pure decision: (config, WAN runtime state, operator overrides) -> desired kernel state.

mod input;
mod model;

pub use input::*;
pub use model::*;
