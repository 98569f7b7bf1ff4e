//! keepalived.conf of the pair (Debian 12's keepalived 2.2.7: `/etc/keepalived/keepalived.conf`,
//! unit `keepalived.service`).
//!
//! - One VRRP instance per address the master holds (the LAN's gateway, each WAN's virtual
//!   address), all in one sync group, so the addresses move together: a box is master of
//!   the LAN and all its lines or of none (a LAN gateway on one box and the WAN address on
//!   the other would send the LAN's traffic to a box that cannot masquerade it).
//! - Adverts go over the LAN, not the sync link: the LAN is what the master serves, so the
//!   boxes decide who holds the gateway by whether they hear each other there. A broken sync
//!   link alone then costs the pair only its connection sync (conntrackd), never a second
//!   master: with adverts on the sync link, both boxes would stop hearing each other and
//!   both take the addresses (split brain, proven in the lab `lab_ha_pair`). When the sync
//!   link is the LAN, adverts go to `peer` by unicast (`check_unicast_src` drops others);
//!   over a dedicated sync link the peer's LAN address is not in the config, so they go to
//!   VRRP's multicast group (224.0.0.18) on the LAN, as routers in a VRRP pair usually do
//!   (give the pair a `virtual_router_id` no other VRRP router on the LAN uses). Each
//!   address is put on its own device (`dev`), where keepalived also sends the gratuitous
//!   ARPs. Each such device is tracked: a master whose LAN or line loses its link goes to
//!   FAULT and hands over.
//! - Both boxes start as BACKUP with `nopreempt`: the one that becomes master stays master
//!   until it fails. A returning box with a higher priority does not take the role back,
//!   which would cost a second outage, and while its connection table is still being
//!   resynced from the peer.
//! - `notify` (on the group, or the instance when it is alone) runs
//!   `routeros-kill-switch --ha-notify`, to which keepalived appends
//!   `GROUP|INSTANCE <name> <STATE> <priority>`: the daemon hears of the change over its
//!   control socket (root only) and does the rest in its own order (conntrackd's commit,
//!   its plan, dnsmasq). No shell script to install and keep in step with the daemon.
//! - VRRP version: v3 (RFC 5798) counts the interval in centiseconds, v2 in whole seconds
//!   (keepalived rounds 0.2 s up to 1 s), but only v2 carries keepalived's password
//!   (`auth_type PASS`; v3 has no authentication and keepalived ignores the block). So a
//!   whole-second interval gives v2 with the pair's key, a sub-second one v3 without it.
//!   The key is sent in the clear on the LAN: it keeps a misconfigured VRRP speaker out, not
//!   an attacker on the LAN (who could as well spoof the gateway's ARP).
//! - No `vrrp_strict` and no firewall rules of keepalived's own: the nft table is the
//!   daemon's.
//!
//! The file holds the key: the daemon writes it mode 0600.

use super::{HaError, Pair};
use std::path::Path;

/// What keepalived runs on a change of state (it appends four words, see the module doc).
pub const NOTIFY: &str = "/usr/bin/routeros-kill-switch --ha-notify";

/// The notify command of a daemon serving `socket`, with the kill-switch at `kill_switch`
/// (the installed one, or the one beside the running daemon in a build tree):
/// `<kill_switch> --socket <socket> --ha-notify`. keepalived splits it on blanks, so
/// neither path may hold one.
pub fn notify_command(kill_switch: &Path, socket: &Path) -> Result<String, HaError> {
    let (bin, sock) = (
        kill_switch.display().to_string(),
        socket.display().to_string(),
    );
    for (field, path) in [("kill-switch", &bin), ("socket", &sock)] {
        if path.is_empty() || path.contains(|c: char| c.is_whitespace() || c == '"') {
            return Err(HaError::new(
                field,
                format!("`{path}` holds a blank or a quote: keepalived's notify cannot run it"),
            ));
        }
    }
    Ok(format!("{bin} --socket {sock} --ha-notify"))
}

/// The sync group's name (also what `--ha-notify` is told).
pub const GROUP: &str = "routeros";

/// keepalived.conf for this box of `pair`, with the pair's `key` (from `auth_key_file`,
/// checked by the config) and `notify`, the command run on a change of state.
pub fn render(pair: &Pair, key: &str, notify: &str) -> Result<String, HaError> {
    if let Some(p) = routeros_shared::config::key_problem(key) {
        return Err(HaError::new("ha.auth_key_file", p));
    }
    if notify.is_empty() || notify.contains(['"', '\n']) {
        return Err(HaError::new(
            "notify",
            "must be a command without quotes or line breaks",
        ));
    }
    let whole_seconds = pair.advert_interval_ms % 1000 == 0;
    let mut out = super::Blocks::default();
    let mut line = |indent: usize, text: &str| out.line(indent, text);
    line(
        0,
        "# keepalived.conf of the HA pair, written by routeros-watchdog: do not edit.",
    );
    line(0, "# Mode 0600: it holds the pair's key.");
    line(0, "global_defs {");
    // Notify scripts run as root, and keepalived refuses them if a non-root user could
    // change them.
    line(1, "enable_script_security");
    line(1, "script_user root");
    if whole_seconds {
        line(
            1,
            "# Whole-second adverts: VRRPv2, which carries the pair's key.",
        );
        line(1, "vrrp_version 2");
    } else {
        line(
            1,
            "# Sub-second adverts need VRRPv3, which has no authentication.",
        );
        line(1, "vrrp_version 3");
    }
    line(0, "}");
    let grouped = pair.instances.len() > 1;
    if grouped {
        line(0, "");
        line(0, &format!("vrrp_sync_group {GROUP} {{"));
        line(1, "group {");
        for i in &pair.instances {
            line(2, &i.name);
        }
        line(1, "}");
        line(1, &format!("notify \"{notify}\""));
        line(0, "}");
    }
    let interval = advert_int(pair.advert_interval_ms);
    // The LAN instance's device: where every instance's adverts go (see the module doc).
    let lan = pair
        .instances
        .first()
        .map(|i| i.device.clone())
        .ok_or_else(|| HaError::new("ha.lan_virtual_address", "missing"))?;
    let unicast = pair.sync_interface == lan;
    for i in &pair.instances {
        line(0, "");
        line(0, &format!("vrrp_instance {} {{", i.name));
        line(1, "state BACKUP");
        line(1, "nopreempt");
        line(1, &format!("interface {lan}"));
        line(1, &format!("virtual_router_id {}", i.virtual_router_id));
        line(1, &format!("priority {}", pair.priority));
        line(1, &format!("advert_int {interval}"));
        if unicast {
            line(1, "unicast_peer {");
            line(2, &pair.peer.to_string());
            line(1, "}");
            line(1, "check_unicast_src");
        }
        if whole_seconds {
            line(1, "authentication {");
            line(2, "auth_type PASS");
            line(2, &format!("auth_pass {key}"));
            line(1, "}");
        }
        // keepalived tracks the interface it advertises on by itself (and says so when
        // told to track it again).
        if i.device != lan {
            line(1, "track_interface {");
            line(2, &i.device);
            line(1, "}");
        }
        line(1, "virtual_ipaddress {");
        line(2, &format!("{} dev {}", i.address, i.device));
        line(1, "}");
        if !grouped {
            line(1, &format!("notify \"{notify}\""));
        }
        line(0, "}");
    }
    Ok(out.0)
}

/// keepalived's `advert_int`: seconds, with the fraction when there is one (200 -> 0.2).
fn advert_int(ms: u32) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        s.to_string()
    } else {
        format!("{s}.{frac:03}").trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::tests::{pair, PAIR};

    #[test]
    fn golden_pair_with_a_virtual_wan_whole_seconds() {
        insta::assert_snapshot!(render(&pair(PAIR), "k3y-0001", NOTIFY).unwrap());
    }

    #[test]
    fn golden_lan_only_sub_second() {
        let lan_only = PAIR
            .replace("virtual_address = \"203.0.113.6/29\"\n", "")
            .replace("priority = 150", "priority = 100\nadvert_interval_ms = 200");
        insta::assert_snapshot!(render(&pair(&lan_only), "k3y-0001", NOTIFY).unwrap());
    }

    #[test]
    fn the_key_is_only_in_v2() {
        let fast = PAIR.replace("priority = 150", "priority = 150\nadvert_interval_ms = 250");
        let text = render(&pair(&fast), "k3y-0001", NOTIFY).unwrap();
        assert!(!text.contains("k3y-0001"), "{text}");
        assert!(text.contains("advert_int 0.25\n"), "{text}");
        assert!(text.contains("vrrp_version 3\n"), "{text}");
    }

    #[test]
    fn intervals_in_keepalived_seconds() {
        assert_eq!(advert_int(1000), "1");
        assert_eq!(advert_int(3000), "3");
        assert_eq!(advert_int(200), "0.2");
        assert_eq!(advert_int(1500), "1.5");
        assert_eq!(advert_int(150), "0.15");
        assert_eq!(advert_int(40_950), "40.95");
    }

    #[test]
    fn bad_keys_and_notify_commands_are_refused_without_quoting_the_key() {
        let p = pair(PAIR);
        let e = render(&p, "toolongkey", NOTIFY).unwrap_err();
        assert_eq!(e.field, "ha.auth_key_file");
        assert!(!e.to_string().contains("toolongkey"), "{e}");
        assert!(render(&p, "a b", NOTIFY).is_err());
        assert!(render(&p, "", NOTIFY).is_err());
        assert_eq!(render(&p, "k", "x\"y").unwrap_err().field, "notify");
        assert_eq!(render(&p, "k", "").unwrap_err().field, "notify");
    }

    #[test]
    fn adverts_go_over_the_lan_multicast_unless_the_pair_syncs_over_the_lan() {
        let text = render(&pair(PAIR), "k", NOTIFY).unwrap();
        assert_eq!(text.matches("interface lan0\n").count(), 2, "{text}");
        assert!(!text.contains("sync0"), "{text}");
        assert!(!text.contains("unicast_peer"), "{text}");
        let over_lan = PAIR
            .replace("sync_interface = \"sync0\"", "sync_interface = \"lan0\"")
            .replace("peer = \"10.99.0.2\"", "peer = \"192.168.1.2\"");
        let text = render(&pair(&over_lan), "k", NOTIFY).unwrap();
        assert_eq!(
            text.matches("unicast_peer {\n        192.168.1.2\n")
                .count(),
            2,
            "{text}"
        );
        assert_eq!(text.matches("check_unicast_src\n").count(), 2, "{text}");
    }

    #[test]
    fn every_instance_starts_backup_without_preempting() {
        let text = render(&pair(PAIR), "k", NOTIFY).unwrap();
        assert_eq!(text.matches("vrrp_instance ").count(), 2);
        assert_eq!(text.matches("state BACKUP\n").count(), 2);
        assert_eq!(text.matches("nopreempt\n").count(), 2);
        assert!(!text.contains("state MASTER"));
        assert!(!text.contains("vrrp_strict"));
    }

    #[test]
    fn the_notify_command_names_the_daemons_socket() {
        let cmd = notify_command(
            Path::new("/usr/bin/routeros-kill-switch"),
            Path::new("/run/routeros/control.sock"),
        )
        .unwrap();
        assert_eq!(
            cmd,
            "/usr/bin/routeros-kill-switch --socket /run/routeros/control.sock --ha-notify"
        );
        let e = notify_command(Path::new("/usr/bin/k"), Path::new("/tmp/my socket")).unwrap_err();
        assert_eq!(e.field, "socket");
    }
}
