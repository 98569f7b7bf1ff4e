//! conntrackd.conf of the pair (Debian 12's conntrackd 1.4.7:
//! `/etc/conntrackd/conntrackd.conf`, unit `conntrackd.service`, Type=notify).
//!
//! - FTFW ("fault tolerant"): every state change is acknowledged and resent when lost,
//!   over UDP to `peer` on `sync_interface`, both ways (each box sends its own changes and
//!   keeps the other's in its external cache, which the new master commits to the kernel
//!   with `conntrackd -c`). The connection marks travel with the entries, so a committed
//!   connection keeps its WAN.
//! - `StartupResync`: a box that (re)starts asks the peer for its whole table.
//! - Only TCP and UDP are synced: the health probes are ICMP (a box probes its own lines;
//!   the peer's probes are no connections of ours), and a lost ping costs nothing.
//! - The router's own traffic is left out by address (conntrackd looks at the original
//!   source and the reply source, i.e. the real ends of a connection): loopback, the
//!   box's own addresses (LAN, static lines, its sync address) and the peer's. The virtual
//!   addresses are not listed: a forwarded connection masqueraded to one has it only as
//!   its reply destination, and must be synced. Connections to the router itself through
//!   a virtual address (DNS to the LAN gateway) are synced, harmlessly.
//! - IPv6 is not synced yet: each box translates the LAN prefix to its own line addresses
//!   (no virtual IPv6 addresses), so an IPv6 connection cannot continue on the other box.

use super::{HaError, Pair};
use routeros_shared::control::HaRole;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// conntrackd's UDP port for the sync messages (its documentation's).
pub const PORT: u16 = 3780;

/// conntrackd's lock file in `run_dir` (the daemon's directory for the pair): its own, so
/// two boxes in namespaces of one machine do not share one, and the runner may remove a
/// stale one (conntrackd refuses to start while its lock file exists, and one killed with
/// SIGKILL leaves it behind).
pub fn lock_path(run_dir: &Path) -> PathBuf {
    run_dir.join("conntrackd.lock")
}

/// Where `conntrackd -C <file> -c` (`-n`, ...) reaches the running conntrackd.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join("conntrackd.ctl")
}

/// What conntrackd is told on a change of role, in order (each `conntrackd -C <file> <arg>`),
/// as conntrackd's own `primary-backup.sh` does:
/// - master: commit the peer's connections (external cache) to the kernel, flush both
///   caches, refill the internal one from the kernel, send it all to the peer;
/// - backup: shorten the kernel's timers of the connections it forwarded (they now go
///   through the peer, whose updates arrive in the external cache), ask the peer for its
///   whole table;
/// - fault: shorten the timers only.
pub fn role_commands(role: HaRole) -> &'static [&'static str] {
    match role {
        HaRole::Master => &["-c", "-f", "-R", "-B"],
        HaRole::Backup => &["-t", "-n"],
        HaRole::Fault => &["-t"],
        HaRole::Stop => &[],
    }
}

/// conntrackd.conf for this box of `pair`, whose address on `sync_interface` is
/// `sync_address` (the daemon reads it from the link; the config does not hold it), its
/// lock and control socket in `run_dir`.
pub fn render(pair: &Pair, sync_address: Ipv4Addr, run_dir: &Path) -> Result<String, HaError> {
    if sync_address == pair.peer {
        return Err(HaError::new(
            "ha.peer",
            format!(
                "{sync_address} is this box's own address on {}",
                pair.sync_interface
            ),
        ));
    }
    let mut out = super::Blocks::default();
    let mut line = |indent: usize, text: &str| out.line(indent, text);
    line(
        0,
        "# conntrackd.conf of the HA pair, written by routeros-watchdog: do not edit.",
    );
    line(0, "Sync {");
    line(1, "Mode FTFW {");
    line(2, "StartupResync on");
    line(1, "}");
    line(1, "UDP {");
    line(2, &format!("IPv4_address {sync_address}"));
    line(2, &format!("IPv4_Destination_Address {}", pair.peer));
    line(2, &format!("Port {PORT}"));
    line(2, &format!("Interface {}", pair.sync_interface));
    // The examples' buffers: a burst of new connections overruns the defaults (~200 KB).
    line(2, "SndSocketBuffer 1249280");
    line(2, "RcvSocketBuffer 1249280");
    line(2, "Checksum on");
    line(1, "}");
    line(0, "}");
    line(0, "");
    line(0, "General {");
    line(1, "HashSize 32768");
    line(1, "HashLimit 131072");
    line(1, "Syslog on");
    line(1, "LogFile off");
    // The distribution's unit is Type=notify.
    line(1, "Systemd on");
    line(1, &format!("LockFile {}", lock_path(run_dir).display()));
    line(1, "UNIX {");
    line(2, &format!("Path {}", socket_path(run_dir).display()));
    line(1, "}");
    line(1, "NetlinkBufferSize 2097152");
    line(1, "NetlinkBufferSizeMaxGrowth 8388608");
    line(1, "Filter From Userspace {");
    line(2, "Protocol Accept {");
    line(3, "TCP");
    line(3, "UDP");
    line(2, "}");
    line(2, "Address Ignore {");
    line(3, "IPv4_address 127.0.0.0/8");
    let mut own = pair.own_addresses.clone();
    own.extend([sync_address, pair.peer]);
    let mut seen = Vec::new();
    for a in own {
        if !seen.contains(&a) {
            seen.push(a);
            line(3, &format!("IPv4_address {a}"));
        }
    }
    line(3, "IPv6_address ::1");
    line(2, "}");
    line(1, "}");
    line(0, "}");
    Ok(out.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::tests::{pair, PAIR};

    const OURS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const RUN: &str = "/var/lib/routeros/ha";

    #[test]
    fn golden_ftfw_over_the_sync_link() {
        insta::assert_snapshot!(render(&pair(PAIR), OURS, Path::new(RUN)).unwrap());
    }

    #[test]
    fn virtual_addresses_are_synced_own_ones_are_not() {
        let text = render(&pair(PAIR), OURS, Path::new(RUN)).unwrap();
        for own in ["192.168.1.1", "203.0.113.2", "10.99.0.1", "10.99.0.2"] {
            assert!(text.contains(&format!("IPv4_address {own}\n")), "{own}");
        }
        for vip in ["192.168.1.254", "203.0.113.6"] {
            assert!(!text.contains(vip), "{vip} must not be ignored");
        }
        assert!(!text.contains("ICMP"));
    }

    #[test]
    fn role_changes_follow_primary_backup_sh() {
        assert_eq!(role_commands(HaRole::Master), ["-c", "-f", "-R", "-B"]);
        assert_eq!(role_commands(HaRole::Backup), ["-t", "-n"]);
        assert_eq!(role_commands(HaRole::Fault), ["-t"]);
        assert!(role_commands(HaRole::Stop).is_empty());
    }

    #[test]
    fn our_sync_address_is_not_the_peer() {
        let e = render(&pair(PAIR), Ipv4Addr::new(10, 99, 0, 2), Path::new(RUN)).unwrap_err();
        assert_eq!(e.field, "ha.peer");
    }
}
