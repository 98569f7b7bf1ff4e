//! Making a [`Plan`](routeros_shared::plan::Plan) true in the kernel. Kernel-facing code sits behind
//! the narrow traits below so the daemon logic can be driven by fakes in unit tests.

mod applier;
pub mod conntrack;
mod drift;
pub mod netlink;
pub mod nft;

pub use applier::{Applier, Outcome};
pub use drift::{Drift, RouteDrift};
pub use netlink::NetlinkDriver;
pub use nft::NftDriver;

use routeros_shared::plan::{LinkInfo, RouteSpec, RuleSpec};

/// Why talking to the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("interface {0} does not exist")]
    NoSuchInterface(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nft: {0}")]
    Nft(String),
    /// Allocating or saving the WANs' tables and marks (before anything is applied).
    #[error("WAN numbers: {0}")]
    WanIds(String),
}

/// Routes and policy rules, through rtnetlink.
#[allow(async_fn_in_trait)]
pub trait RouteDriver {
    /// Make our routes and rules (those stamped with `ROUTE_PROTO`) equal to the desired ones:
    /// add what is missing, replace what differs, delete what is no longer wanted. Routes and
    /// rules of anybody else are never touched. Re-running with the same input changes nothing.
    async fn sync(&mut self, routes: &[RouteSpec], rules: &[RuleSpec]) -> Result<(), ApplyError>;

    /// Our routes and rules as the kernel holds them now, sorted.
    async fn current(&mut self) -> Result<(Vec<RouteSpec>, Vec<RuleSpec>), ApplyError>;

    /// How the kernel differs from these routes and rules (what [`RouteDriver::sync`] would
    /// change); empty when it holds exactly them. Read-only.
    async fn drift(
        &mut self,
        routes: &[RouteSpec],
        rules: &[RuleSpec],
    ) -> Result<RouteDrift, ApplyError>;
}

/// Interface facts (carrier, address, learned gateway), through rtnetlink.
#[allow(async_fn_in_trait)]
pub trait LinkObserver {
    async fn observe(&mut self, ifname: &str) -> Result<LinkInfo, ApplyError>;
    /// (rx, tx) byte counters of every interface, for throughput figures.
    async fn byte_counters(
        &mut self,
    ) -> Result<std::collections::HashMap<String, (u64, u64)>, ApplyError>;
}

/// Our nftables table.
#[allow(async_fn_in_trait)]
pub trait FirewallDriver {
    /// Replace our table with the script, atomically.
    async fn apply(&mut self, script: &str) -> Result<(), ApplyError>;
    /// Our table as the kernel lists it, or None when it does not exist.
    async fn current(&mut self) -> Result<Option<String>, ApplyError>;
}
