//! Making a [`Plan`](routeros_shared::plan::Plan) true in the kernel. Kernel-facing code sits behind
//! the narrow traits below so the daemon logic can be driven by fakes in unit tests.

mod applier;
pub mod conntrack;
mod drift;
pub mod netlink;
pub mod nft;
pub mod qdisc;

pub use applier::{Applier, Outcome};
pub use drift::{Drift, RouteDrift};
pub use netlink::NetlinkDriver;
pub use nft::NftDriver;
pub use qdisc::{ShapingDriver, ShapingOutcome, TcShaping};

pub use conntrack::ConntrackError;
pub use nft::NftError;
use routeros_shared::config::WanIdsError;
use routeros_shared::plan::{LinkInfo, RouteSpec, RuleSpec};

/// Why talking to the kernel failed. Each variant keeps its source error (with the errno
/// where the kernel sent one), so callers can test the kind instead of reading text.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("interface {0} does not exist")]
    NoSuchInterface(String),
    /// A request the kernel (or the rtnetlink crate) refused: `source` holds the errno.
    #[error("netlink: {what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// Opening or using a netlink socket failed.
    #[error("netlink: {what}: {source}")]
    Socket {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Drivers spawn their socket's connection on the tokio runtime they are created on.
    #[error("netlink: no tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// A route the planner made that netlink cannot express (a bug, not a kernel refusal).
    #[error("netlink: {0}")]
    Unrepresentable(String),
    #[error("nft: {0}")]
    Nft(#[from] NftError),
    /// ctnetlink (or the `conntrack` tool): "netlink: conntrack: ..." as it always read.
    #[error("netlink: conntrack: {0}")]
    Conntrack(#[from] ConntrackError),
    /// Allocating the WANs' tables and marks (before anything is applied).
    #[error("WAN numbers: {0}")]
    WanIds(#[from] WanIdsError),
    /// Saving them to the state directory.
    #[error("WAN numbers: cannot save {}: {source}", path.display())]
    SaveWanIds {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ApplyError {
    /// The errno (positive) the kernel or a system call answered, when that is the cause.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ApplyError::Netlink { source, .. } => netlink::errno(source),
            ApplyError::Socket { source, .. } | ApplyError::SaveWanIds { source, .. } => {
                source.raw_os_error()
            }
            ApplyError::Conntrack(ConntrackError::Io { source, .. })
            | ApplyError::Nft(NftError::Io { source, .. }) => source.raw_os_error(),
            _ => None,
        }
    }
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
    /// change); empty when it holds exactly them. Read-only. A driver that stores routes in
    /// another form than the planner writes them (netlink) compares canonical forms instead.
    async fn drift(
        &mut self,
        routes: &[RouteSpec],
        rules: &[RuleSpec],
    ) -> Result<RouteDrift, ApplyError> {
        let (have_routes, have_rules) = self.current().await?;
        Ok(RouteDrift::between(
            (routes, rules),
            (&have_routes, &have_rules),
        ))
    }
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

/// The named counters of our table (packets by name), for the passive failure signal.
#[allow(async_fn_in_trait)]
pub trait CounterReader {
    async fn counters(&mut self) -> Result<std::collections::HashMap<String, u64>, ApplyError>;
}
