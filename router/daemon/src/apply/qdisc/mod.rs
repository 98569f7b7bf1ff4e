//! Per-line shaping in the kernel: CAKE qdiscs, the ifb devices the downloads are shaped on,
//! and the ingress filters that redirect to them ([`ShapingDriver`]; the real one runs `tc`
//! and `ip`, see [`tc`]). What to run is decided from what the kernel holds ([`observe`]).

pub mod observe;
pub mod tc;

use routeros_shared::plan::shaping::ShapedLine;
use std::collections::BTreeMap;

pub use tc::TcShaping;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShapingOutcome {
    /// The commands run, as a shell shows them.
    pub ran: Vec<String>,
    /// Lines not shaped as wanted, with why (their device is missing, a command failed).
    pub failed: BTreeMap<String, String>,
    /// Removing shaping no longer wanted failed: the commands' errors.
    pub removal_errors: Vec<String>,
}

/// The kernel's shaping, through a narrow interface so the supervisor's handling of it is
/// tested with a fake.
#[allow(async_fn_in_trait)]
pub trait ShapingDriver {
    /// Make the kernel shape exactly `lines`: create or change what differs, remove what
    /// is ours on `configured` devices (every configured line's) or on the devices our ifbs
    /// were made for but no longer wanted. Running it again with the same input runs nothing.
    /// Never fails as a whole: each line's problem is reported in the outcome.
    async fn sync(&mut self, lines: &[ShapedLine], configured: &[String]) -> ShapingOutcome;

    /// Whether this kernel can run CAKE: Ok(false) when it has no sch_cake, Err when that
    /// could not be found out.
    async fn has_cake(&mut self) -> Result<bool, String>;
}
