//! PPPoE lines: one distribution `pppd` (Ubuntu/Debian `ppp` package, its in-tree PPPoE
//! plugin) per line, supervised. No PPP or PPPoE protocol code of our own.
//!
//! - [`options`] renders a line's pppd options file (pure, golden-tested) and writes it
//!   mode 0600, since it holds the password; pppd's command line is only `file <path>`.
//! - [`session`] reads pppd's log lines and exit status into a [`SessionState`] (pure).
//! - [`backoff`] decides how long to wait before the next attempt (pure).
//! - [`process`] starts pppd behind the narrow [`Spawn`] trait; [`PppdCommand`] is the real
//!   one, the tests use it with a fake pppd script.
//! - [`supervisor`] keeps one task per line: starts, restarts with backoff, stops, and sends
//!   every state change as a [`SessionChange`] on a channel.
//!
//! The daemon calls [`PppdSupervisor::set_lines`] with the lines the config asks for and
//! turns the changes into events; [`PppdSupervisor::snapshot`] feeds the status report.

pub mod backoff;
pub mod options;
pub mod process;
pub mod session;
pub mod supervisor;
#[cfg(test)]
mod tests;

use std::fmt;

pub use backoff::Backoff;
pub use options::{render_options, validate_line, LineError};
pub use process::{spawn_child, PppdChild, PppdCommand, PppdEvent, PppdExit, PppdProcess, Spawn};
pub use session::SessionState;
pub use supervisor::{LineSnapshot, LinesError, PppdSupervisor, SessionChange, SupervisorConfig};

/// One PPPoE line as the daemon wants it.
#[derive(Clone, PartialEq, Eq)]
pub struct PppoeLine {
    /// The WAN's name in the config (event and status key).
    pub wan: String,
    /// The Ethernet (or VLAN) device pppd runs PPPoE discovery on.
    pub port: String,
    /// The ppp device pppd must create (pppd's `ifname` option), e.g. "ppp-wan1".
    pub ifname: String,
    pub username: String,
    /// Never logged, never in Debug output, never on pppd's command line.
    pub password: String,
    /// PPPoE Service-Name to ask for; any offered service when absent.
    pub service_name: Option<String>,
    /// MTU and MRU of the session (1492 fits PPPoE on a 1500-byte Ethernet).
    pub mtu: u16,
    /// Negotiate IPv6 over the session too (IPv6CP; the WAN's `ipv6` is not "off").
    pub ipv6: bool,
}

/// Written out by hand so that the password never reaches a log through `{:?}`.
impl fmt::Debug for PppoeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeLine")
            .field("wan", &self.wan)
            .field("port", &self.port)
            .field("ifname", &self.ifname)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("service_name", &self.service_name)
            .field("mtu", &self.mtu)
            .field("ipv6", &self.ipv6)
            .finish()
    }
}
