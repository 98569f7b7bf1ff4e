//! What one pppd run says about its session, from its log lines and its exit status.
//!
//! The lines are pppd 2.4.9's (and 2.5's) notices as written to its log descriptor, e.g.
//! `local  IP address 100.64.0.2` (two spaces), `remote IP address 100.64.0.1`,
//! `PAP authentication failed`, `Modem hangup`; the exit statuses are pppd(8)'s EXIT STATUS.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::process::PppdExit;

/// A PPPoE line's session as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionState {
    /// pppd is running and has no session yet (discovery, LCP, authentication, IPCP).
    Connecting,
    /// IPCP is up on the ppp device: our address and the peer's, as pppd printed them.
    Up {
        local: Ipv4Addr,
        peer: Option<Ipv4Addr>,
    },
    /// No session; the supervisor retries after a backoff.
    Down { last_error: String },
    /// The ISP refused our user name or password; retried only after a long backoff.
    AuthFailed { last_error: String },
    /// The line is no longer wanted (removed from the config, or the daemon stops).
    Stopped,
}

impl SessionState {
    /// One word for status lines: connecting, up, down, auth_failed, stopped.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Up { .. } => "up",
            Self::Down { .. } => "down",
            Self::AuthFailed { .. } => "auth_failed",
            Self::Stopped => "stopped",
        }
    }

    pub fn is_up(&self) -> bool {
        matches!(self, Self::Up { .. })
    }

    pub fn last_error(&self) -> Option<&str> {
        match self {
            Self::Down { last_error } | Self::AuthFailed { last_error } => Some(last_error),
            _ => None,
        }
    }
}

/// Lines that say why a run is failing or a session ends; the first one since the run
/// started (or since the session came up) goes into the error, after the exit's meaning.
const CAUSES: &[&str] = &[
    "Timeout waiting for PAD",
    "Unable to complete PPPoE Discovery",
    "PADO: ",
    "PADS: ",
    "PADT: ",
    "not Ethernet",
    "Can't use interface",
    "has MTU of",
    "No response to ",
    "terminated by peer",
    "Modem hangup",
    "LCP: timeout sending Config-Requests",
    "Peer refused to agree to our IP address",
    "Refused our IP address",
    "unrecognized option",
    "too few parameters",
    "kernel does not support",
    "Couldn't ",
    "Could not ",
    "Can't ",
    "Cannot ",
    "Failed to ",
];
/// Warnings that look like causes but are not.
const NOT_CAUSES: &[&str] = &["Could not determine remote IP address"];
/// Lines after which an up session is gone, before pppd has finished its exit (it still
/// runs the ip-down scripts): reported at once, as a carrier loss would be.
const SESSION_ENDS: &[&str] = &[
    "Modem hangup",
    "No response to ",
    "terminated by peer",
    "Connection terminated.",
];
/// Longest detail kept from a pppd line (they are short; this bounds a misbehaving one).
const MAX_DETAIL: usize = 200;

/// Follows one pppd run.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    state: SessionState,
    /// `local  IP address` seen, `remote IP address` expected on the next line.
    pending_local: Option<Ipv4Addr>,
    auth_failed: bool,
    /// The server's words on a failed login (PAP's "Remote message", CHAP's failure text).
    auth_message: Option<String>,
    cause: Option<String>,
}

impl Default for SessionTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionTracker {
    pub fn new() -> Self {
        Self {
            state: SessionState::Connecting,
            pending_local: None,
            auth_failed: false,
            auth_message: None,
            cause: None,
        }
    }

    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Feed one output line; returns the states it moved through (usually none, at most
    /// two when an address line was not followed by the peer's).
    pub fn on_line(&mut self, line: &str) -> Vec<SessionState> {
        let line = line.trim();
        let mut changes = Vec::new();
        if let Some(peer) = addr_after(line, "remote IP address ") {
            if let Some(local) = self.pending_local.take() {
                self.set(
                    SessionState::Up {
                        local,
                        peer: Some(peer),
                    },
                    &mut changes,
                );
            }
            return changes;
        }
        // pppd prints the peer's address right after ours; anything else means it had none.
        if let Some(local) = self.pending_local.take() {
            self.set(SessionState::Up { local, peer: None }, &mut changes);
        }
        if let Some(local) =
            addr_after(line, "local  IP address ").or_else(|| addr_after(line, "local IP address "))
        {
            self.pending_local = Some(local);
            self.cause = None;
            self.auth_failed = false;
        } else if let Some(local) = addr_after(line, "Local IP address changed to ") {
            if let SessionState::Up { peer, .. } = self.state {
                self.set(SessionState::Up { local, peer }, &mut changes);
            }
        } else if let Some(peer) = addr_after(line, "Remote IP address changed to ") {
            if let SessionState::Up { local, .. } = self.state {
                let peer = Some(peer);
                self.set(SessionState::Up { local, peer }, &mut changes);
            }
        } else if let Some(message) = line.strip_prefix("Remote message: ") {
            self.auth_message = Some(detail(message));
        } else if line.contains("authentication failed") && !line.contains("peer authentication") {
            // "PAP authentication failed", "CHAP authentication failed: E=691 ..."; not
            // "PAP peer authentication failed for ...", which is about the peer.
            self.auth_failed = true;
            if let Some((_, message)) = line.split_once("authentication failed: ") {
                self.auth_message = Some(detail(message));
            }
        } else {
            let is_cause = CAUSES.iter().any(|c| line.contains(c))
                && !NOT_CAUSES.iter().any(|c| line.contains(c));
            if is_cause && self.cause.is_none() {
                self.cause = Some(detail(line));
            }
            if self.state.is_up() && SESSION_ENDS.iter().any(|c| line.contains(c)) {
                let why = self.cause.clone().unwrap_or_else(|| detail(line));
                let last_error = format!("session dropped: {why}");
                self.set(SessionState::Down { last_error }, &mut changes);
            }
        }
        changes
    }

    /// pppd exited: its final state, `AuthFailed` or `Down`. A session already reported
    /// down by its log lines keeps that report.
    pub fn on_exit(&mut self, exit: PppdExit) -> SessionState {
        let state = if self.auth_failed || exit == PppdExit::Code(19) {
            let last_error = match &self.auth_message {
                Some(message) => format!("authentication failed: {message}"),
                None => "authentication failed".to_string(),
            };
            SessionState::AuthFailed { last_error }
        } else if matches!(self.state, SessionState::Down { .. }) {
            self.state.clone()
        } else {
            let meaning = exit_meaning(exit);
            let last_error = match &self.cause {
                Some(cause) => format!("{meaning}: {cause}"),
                None => meaning,
            };
            SessionState::Down { last_error }
        };
        self.state = state.clone();
        state
    }

    fn set(&mut self, state: SessionState, changes: &mut Vec<SessionState>) {
        if self.state != state {
            self.state = state.clone();
            changes.push(state);
        }
    }
}

/// pppd(8) EXIT STATUS, in the words of a PPPoE line.
pub fn exit_meaning(exit: PppdExit) -> String {
    let code = match exit {
        PppdExit::Code(code) => code,
        PppdExit::Signal(signal) => return format!("pppd was killed by signal {signal}"),
        PppdExit::Lost => return "pppd's exit status could not be read".into(),
    };
    let text = match code {
        0 => "the peer ended the session",
        1 => "pppd failed",
        2 => "pppd refused its options",
        3 => "pppd is not running as root",
        4 => "the kernel has no PPP support",
        5 => "pppd was stopped by a signal",
        6 => "the device could not be locked",
        7 => "the device could not be opened",
        // The PPPoE plugin is pppd's "connect" step: discovery failing exits with 8.
        8 => "PPPoE discovery failed",
        9 => "the pty command could not be run",
        10 => "PPP negotiation failed",
        11 => "the peer failed to authenticate itself",
        12 => "the link was idle",
        13 => "the connect time limit was reached",
        14 => "callback was negotiated",
        15 => "the peer stopped answering LCP echo requests",
        16 => "the session was hung up (PADT from the server, or the port went down)",
        17 => "loopback detected",
        18 => "the init script failed",
        19 => "authentication failed",
        _ => return format!("pppd exited with status {code}"),
    };
    text.to_string()
}

/// The address after `prefix` when `line` starts with it.
fn addr_after(line: &str, prefix: &str) -> Option<Ipv4Addr> {
    line.strip_prefix(prefix)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A pppd line as error text: trimmed, bounded, without the program name its option
/// errors on stderr start with (`/usr/sbin/pppd: In file ...`), and in plain words when the
/// port is missing: the plugin takes `nic-<port>` only when `<port>` is an Ethernet device,
/// so pppd calls it an unrecognized option (a VLAN device not created yet, a typo).
fn detail(line: &str) -> String {
    let line = line.trim();
    let line = match line.split_once(": ") {
        Some((program, rest)) if program.ends_with("pppd") && !program.contains(' ') => rest,
        _ => line,
    };
    if let Some((_, tail)) = line.split_once("unrecognized option 'nic-") {
        if let Some(port) = tail.strip_suffix('\'') {
            return format!("no Ethernet device {port}");
        }
    }
    match line.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(tracker: &mut SessionTracker, lines: &str) -> Vec<SessionState> {
        lines.lines().flat_map(|l| tracker.on_line(l)).collect()
    }

    fn up(local: &str, peer: Option<&str>) -> SessionState {
        SessionState::Up {
            local: local.parse().unwrap(),
            peer: peer.map(|p| p.parse().unwrap()),
        }
    }

    /// What pppd 2.4.9 with the PPPoE plugin prints for a session coming up.
    const SESSION_UP: &str = "\
Plugin pppoe.so loaded.
PPP session is 7
Connected to 02:00:00:00:00:01 via interface eth1
Using interface ppp-wan1
Connect: ppp-wan1 <--> eth1
PAP authentication succeeded
peer from calling number 02:00:00:00:00:01 authorized
local  IP address 100.64.0.2
remote IP address 100.64.0.1
";

    #[test]
    fn session_comes_up_with_both_addresses_in_one_change() {
        let mut t = SessionTracker::new();
        assert_eq!(
            feed(&mut t, SESSION_UP),
            vec![up("100.64.0.2", Some("100.64.0.1"))]
        );
    }

    #[test]
    fn local_address_without_peer_still_comes_up() {
        let mut t = SessionTracker::new();
        assert!(t.on_line("local  IP address 100.64.0.2").is_empty());
        assert_eq!(
            t.on_line("Script /etc/ppp/ip-up started"),
            vec![up("100.64.0.2", None)]
        );
    }

    #[test]
    fn renegotiated_addresses_are_changes() {
        let mut t = SessionTracker::new();
        feed(&mut t, SESSION_UP);
        assert_eq!(
            t.on_line("Local IP address changed to 100.64.0.9"),
            vec![up("100.64.0.9", Some("100.64.0.1"))]
        );
        assert_eq!(
            t.on_line("Remote IP address changed to 100.64.0.8"),
            vec![up("100.64.0.9", Some("100.64.0.8"))]
        );
    }

    #[test]
    fn pap_failure_is_auth_failed_with_the_servers_words() {
        let mut t = SessionTracker::new();
        let changes = feed(
            &mut t,
            "PPP session is 7\nRemote message: Login incorrect\nPAP authentication failed\n\
             Connection terminated.\n",
        );
        assert!(changes.is_empty());
        assert_eq!(
            t.on_exit(PppdExit::Code(19)),
            SessionState::AuthFailed {
                last_error: "authentication failed: Login incorrect".into()
            }
        );
    }

    #[test]
    fn chap_failure_message_and_exit_19_alone() {
        let mut t = SessionTracker::new();
        t.on_line("CHAP authentication failed: E=691 R=0 bad user");
        assert_eq!(
            t.on_exit(PppdExit::Code(19)).last_error(),
            Some("authentication failed: E=691 R=0 bad user")
        );
        let mut t = SessionTracker::new();
        assert_eq!(
            t.on_exit(PppdExit::Code(19)),
            SessionState::AuthFailed {
                last_error: "authentication failed".into()
            }
        );
    }

    #[test]
    fn hangup_while_up_is_down_at_once_and_the_exit_keeps_it() {
        let mut t = SessionTracker::new();
        feed(&mut t, SESSION_UP);
        let down = SessionState::Down {
            last_error: "session dropped: Modem hangup".into(),
        };
        assert_eq!(t.on_line("Modem hangup"), vec![down.clone()]);
        assert!(t.on_line("Connection terminated.").is_empty());
        assert_eq!(t.on_exit(PppdExit::Code(16)), down);
    }

    #[test]
    fn dead_peer_while_up() {
        let mut t = SessionTracker::new();
        feed(&mut t, SESSION_UP);
        let changes = feed(
            &mut t,
            "No response to 3 echo-requests\nSerial link appears to be disconnected.\n",
        );
        assert_eq!(
            changes,
            vec![SessionState::Down {
                last_error: "session dropped: No response to 3 echo-requests".into()
            }]
        );
    }

    #[test]
    fn discovery_timeout_names_the_first_cause() {
        let mut t = SessionTracker::new();
        feed(
            &mut t,
            "Plugin pppoe.so loaded.\nTimeout waiting for PADO packets\n\
             Unable to complete PPPoE Discovery\n",
        );
        assert_eq!(
            t.on_exit(PppdExit::Code(8)).last_error(),
            Some("PPPoE discovery failed: Timeout waiting for PADO packets")
        );
    }

    #[test]
    fn option_errors_on_stderr_lose_the_program_name() {
        // As pppd 2.4.9 prints them (checked with the bookworm binary).
        let mut t = SessionTracker::new();
        t.on_line(
            "/usr/sbin/pppd: In file /run/routeros/pppd/wan1.options: unrecognized option 'mtu2'",
        );
        assert_eq!(
            t.on_exit(PppdExit::Code(2)).last_error(),
            Some(
                "pppd refused its options: In file /run/routeros/pppd/wan1.options: \
                 unrecognized option 'mtu2'"
            )
        );
    }

    #[test]
    fn no_dev_ppp() {
        // pppd 2.4.9 on a kernel (or in a sandbox) without /dev/ppp, as seen here.
        let mut t = SessionTracker::new();
        feed(
            &mut t,
            "Plugin pppoe.so loaded.\n\
             Couldn't open the /dev/ppp device: No such file or directory\n\
             Linux kernel does not support PPPoE -- are you running 2.4.x?\n",
        );
        assert_eq!(
            t.on_exit(PppdExit::Code(1)).last_error(),
            Some("pppd failed: Couldn't open the /dev/ppp device: No such file or directory")
        );
    }

    #[test]
    fn a_missing_port_is_named() {
        let mut t = SessionTracker::new();
        t.on_line("Plugin pppoe.so loaded.");
        t.on_line("/usr/sbin/pppd: In file /run/routeros/pppd/wan1.options: unrecognized option 'nic-eth9.7'");
        assert_eq!(
            t.on_exit(PppdExit::Code(2)).last_error(),
            Some("pppd refused its options: no Ethernet device eth9.7")
        );
    }

    #[test]
    fn default_peer_warning_is_not_a_cause() {
        let mut t = SessionTracker::new();
        t.on_line("Could not determine remote IP address: defaulting to 10.64.64.64");
        assert_eq!(
            t.on_exit(PppdExit::Code(10)).last_error(),
            Some("PPP negotiation failed")
        );
    }

    #[test]
    fn exit_meanings() {
        let cases = [
            (PppdExit::Code(0), "the peer ended the session"),
            (PppdExit::Code(4), "the kernel has no PPP support"),
            (PppdExit::Code(5), "pppd was stopped by a signal"),
            (PppdExit::Code(8), "PPPoE discovery failed"),
            (PppdExit::Code(10), "PPP negotiation failed"),
            (
                PppdExit::Code(15),
                "the peer stopped answering LCP echo requests",
            ),
            (
                PppdExit::Code(16),
                "the session was hung up (PADT from the server, or the port went down)",
            ),
            (PppdExit::Code(19), "authentication failed"),
            (PppdExit::Code(42), "pppd exited with status 42"),
            (PppdExit::Signal(9), "pppd was killed by signal 9"),
        ];
        for (exit, text) in cases {
            assert_eq!(exit_meaning(exit), text);
        }
    }

    #[test]
    fn long_lines_are_bounded() {
        let mut t = SessionTracker::new();
        t.on_line(&format!("Couldn't {}", "x".repeat(500)));
        let err = t.on_exit(PppdExit::Code(1));
        assert!(err.last_error().unwrap().len() < 250, "{err:?}");
    }

    #[test]
    fn states_serialise_tagged() {
        let json = serde_json::to_value(up("100.64.0.2", Some("100.64.0.1"))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "up", "local": "100.64.0.2", "peer": "100.64.0.1"})
        );
        let json = serde_json::to_value(SessionState::AuthFailed {
            last_error: "authentication failed".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "auth_failed", "last_error": "authentication failed"})
        );
    }
}
