//! The control socket: newline-delimited JSON over a Unix stream socket, root-only (0600).
//! Each line is a [`Request`]; the daemon answers with one JSON line, typed in [`reply`]
//! (`subscribe` keeps the connection and sends one line per event). The CLIs and the web
//! server are clients; the daemon stays the only process that changes the kernel.
//!
//! Limits (enforced by the daemon's server): lines up to [`MAX_LINE`], [`MAX_SESSIONS`] connections at once,
//! [`IDLE_TIMEOUT`] per request; accept errors (EMFILE) back off instead of spinning.

use crate::events::EventKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod client;
mod ha;
mod reply;

pub use client::{call, call_with_timeout, DEFAULT_CALL_TIMEOUT};
pub use ha::{parse_notify, HaEngineReport, HaReport, HaRole, PeerConfig};
pub use reply::*;

/// Default socket path of the installed daemon.
pub const DEFAULT_SOCKET: &str = "/run/routeros/control.sock";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Everything the daemon knows about each WAN and the last apply.
    Status,
    /// Re-read and apply the config file; refused (state untouched) if it does not validate.
    Reload,
    /// Take a WAN out of service until enabled (its connections are moved off it).
    Disable { wan: String },
    /// Put a disabled or maintained WAN back into service.
    Enable { wan: String },
    /// For `seconds`: take `wan` out of service, or with no WAN pause failover router-wide.
    /// (The CLI speaks minutes; seconds let tests and the web UI use short windows.)
    Maintenance { seconds: u32, wan: Option<String> },
    /// Recent events, optionally after a time, of one WAN, of one kind.
    Events {
        #[serde(default)]
        since_ms: Option<u64>,
        #[serde(default)]
        wan: Option<String>,
        #[serde(default)]
        kind: Option<EventKind>,
    },
    /// Latency/jitter/loss points of one WAN over the last `seconds`.
    History { wan: String, seconds: u32 },
    /// The config file, its version and any change waiting for confirmation.
    GetConfig,
    /// Validate, save and apply a new config at once; it is rolled back by itself after
    /// `confirm_seconds` unless confirmed (commit-confirm), so a change that cuts the admin
    /// off undoes itself.
    ApplyConfig {
        toml: String,
        confirm_seconds: u32,
        #[serde(default)]
        by: String,
    },
    /// Keep the pending change.
    ConfirmConfig { id: String },
    /// Saved versions, oldest first.
    ConfigHistory,
    /// Apply a saved version (also commit-confirm).
    RollbackConfig {
        version: u64,
        #[serde(default)]
        by: String,
    },
    /// Stay connected and receive the daemon's events as they happen: first a
    /// [`Subscribed`] line with the logged events after `since_ms` (all without it), then
    /// one [`Event`](crate::events::Event) per line. The connection counts as a session;
    /// a subscriber that does not keep up is dropped (the daemon never waits for it).
    Subscribe {
        #[serde(default)]
        since_ms: Option<u64>,
    },
    /// Set the system time zone (an IANA name under /usr/share/zoneinfo, see
    /// [`timezone_name_problem`]) through systemd-timedated; refused with
    /// [`RefusalCode::Unsupported`] where there is no timedated (the namespace lab, a
    /// container). Answered [`Done`].
    SetTimezone { name: String },
    /// keepalived changed this box's role (its notify, through `routeros-kill-switch
    /// --ha-notify`): the daemon records it, has conntrackd commit or resync, re-plans.
    HaNotify {
        /// The sync group's (or lone instance's) name.
        name: String,
        role: HaRole,
        priority: u8,
    },
}

/// Why `name` is not shaped like an IANA time zone name (`Europe/Berlin`, `UTC`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+5`): a relative path below the zoneinfo
/// directory, so no `..`, no leading `/`, only letters, digits and `/ _ + -`. Whether the
/// zone exists is the daemon's check (its zoneinfo files).
pub fn timezone_name_problem(name: &str) -> Option<String> {
    let shaped = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('/')
        && !name.ends_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    (!shaped).then(|| format!("`{name}` is not a time zone name like Europe/Berlin"))
}

/// Seconds a config change made over the socket (the web UI) stays live unconfirmed
/// before it rolls back by itself (commit-confirm); a rollback to a saved version too.
pub const CONFIRM_SECONDS: u32 = 60;

/// Shortest commit-confirm window accepted.
pub const MIN_CONFIRM_SECONDS: u32 = 10;

/// Longest commit-confirm window accepted.
pub const MAX_CONFIRM_SECONDS: u32 = 3600;

/// Longest maintenance window accepted (one week).
pub const MAX_MAINTENANCE_MINUTES: u32 = 7 * 24 * 60;
pub const MAX_MAINTENANCE_SECONDS: u32 = MAX_MAINTENANCE_MINUTES * 60;

/// Longest request line accepted, newline included. The largest legitimate request is
/// `apply_config` with a whole config: the web accepts bodies up to 1 MiB and JSON escaping
/// at most doubles a TOML text (`"`, `\\`, newline and tab become two bytes; TOML allows no
/// other control characters), so 4 MiB leaves room to spare. A longer line is answered with
/// an error and the connection closed, before the rest of it is read.
pub const MAX_LINE: usize = 4 << 20;

/// Connections served at once, so that a client opening many cannot take the file
/// descriptors the probes and netlink need. The web server opens one per API call and
/// closes it after the answer, so a burst waits a moment for a free session; once all have
/// been busy for a second (idle or hostile peers), newcomers are answered "busy" and closed.
pub const MAX_SESSIONS: usize = 32;

/// Each request line must arrive in full within this long after the connection opened or
/// the last answer was sent; an idle or trickling peer is disconnected, freeing its slot.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One request line (trailing newline optional) as a [`Request`], or the refusal to send
/// back. Never panics, whatever the bytes (invalid UTF-8 included).
pub fn parse_request(line: &[u8]) -> Result<Request, Refusal> {
    serde_json::from_slice(line).map_err(|e| Refusal::bad_request(format!("bad request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_names_are_relative_paths_of_plain_characters() {
        for good in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert_eq!(timezone_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "Europe/../../etc",
            "Europe/",
            "a//b",
            "a b",
            "Europe/Berlin\n",
            "./UTC",
        ] {
            assert!(timezone_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(timezone_name_problem(&"A".repeat(65)).is_some());
        let wire = serde_json::to_value(Request::SetTimezone { name: "UTC".into() }).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"cmd": "set_timezone", "name": "UTC"})
        );
    }
}
