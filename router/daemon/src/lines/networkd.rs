//! systemd-networkd files for the lines the router brings up (DHCP, static, VLAN, the bare
//! port under a PPPoE session, and the session's IPv6 side): pure rendering, one `.network`
//! per device plus a `.netdev` per VLAN.
//!
//! Named `05-routeros-<device>.*`: networkd uses the first file (in lexical order, over
//! /etc, /run and /usr/lib) that matches a link, so ours win over netplan's
//! `10-netplan-*` for the same port, while ports the router does not manage keep theirs.

use routeros_shared::config::{Config, Ipv6Mode, WanConfig, WanMode};
use std::fmt::Write;

/// Prefix of every file we write; the writer removes stale files with it and no others.
pub const FILE_PREFIX: &str = "05-routeros-";

/// One file for networkd's runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

/// Every file for `cfg`'s managed lines, sorted by name.
pub fn render(cfg: &Config) -> Vec<UnitFile> {
    let mut files = Vec::new();
    for (i, w) in cfg.wan_interfaces.iter().enumerate() {
        let Some(mode) = w.mode else { continue };
        // Unique per WAN, in config order like the factory netplan's (100 × position): the
        // daemon learns a DHCP line's gateway from this default route in the main table.
        let metric = 100 * (i + 1);
        let header = format!(
            "# Written by routeros-watchdog for WAN \"{}\" (wan_interfaces[{i}], mode {}); replaced on every change.\n",
            w.name,
            mode.as_str()
        );
        // Under a PPPoE session the port only carries it; the ppp device gets the addresses.
        let port_body = || match mode {
            WanMode::Pppoe => NO_ADDRESSING.to_string(),
            _ => addressing(w, mode, metric),
        };
        match w.vlan {
            None => files.push(network(&header, w, &w.name, port_body())),
            Some(id) => {
                let vlan = w.link_device();
                let mut port = String::new();
                writeln!(port, "VLAN={vlan}").unwrap();
                port.push_str(NO_ADDRESSING);
                files.push(network(&header, w, &w.name, port));
                files.push(UnitFile {
                    name: format!("{FILE_PREFIX}{vlan}.netdev"),
                    text: format!("{header}[NetDev]\nName={vlan}\nKind=vlan\n\n[VLAN]\nId={id}\n"),
                });
                // The MAC is the port's; the VLAN device inherits it.
                files.push(device_network(&header, &vlan, &port_body()));
            }
        }
        if mode == WanMode::Pppoe && w.ipv6 != Ipv6Mode::Off {
            // pppd brings the session's IPv4 up itself, and its IPv6 link (IPv6CP: the
            // link-local addresses); networkd does the rest of IPv6 over it as on any line
            // (router advertisements, DHCPv6, a delegated prefix) and keeps what pppd set.
            let body = format!("KeepConfiguration=static\n{}", addressing(w, mode, metric));
            files.push(device_network(&header, &w.device(), &body));
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// A device that only carries something else (VLANs, a PPPoE session): up, no addresses.
const NO_ADDRESSING: &str = "LinkLocalAddressing=no\nIPv6AcceptRA=no\n";

/// The `[Network]` body (and sections after it) that gives the line its addresses.
fn addressing(w: &WanConfig, mode: WanMode, metric: usize) -> String {
    let v4_dhcp = mode == WanMode::Dhcp;
    let v6_auto = w.ipv6 == Ipv6Mode::Auto;
    let mut network = String::new();
    let mut sections = String::new();
    let dhcp = match (v4_dhcp, v6_auto) {
        (true, true) => Some("yes"),
        (true, false) => Some("ipv4"),
        (false, true) => Some("ipv6"),
        (false, false) => None,
    };
    if let Some(dhcp) = dhcp {
        writeln!(network, "DHCP={dhcp}").unwrap();
    }
    // No Gateway=: the daemon installs the WAN's default routes from `gateway(6)` itself.
    if let (WanMode::Static, Some(a)) = (mode, w.address) {
        writeln!(network, "Address={a}").unwrap();
    }
    if let (Ipv6Mode::Static, Some(a)) = (w.ipv6, w.address6) {
        writeln!(network, "Address={a}").unwrap();
    }
    if mode == WanMode::Static || w.ipv6 == Ipv6Mode::Static {
        network.push_str("ConfigureWithoutCarrier=yes\n");
    }
    match w.ipv6 {
        // Router advertisements (networkd handles them itself, forwarding or not), DHCPv6
        // for an address, and a delegated prefix whose first /64 gives the line a global
        // address when the ISP hands out no other (many only delegate). The LAN does not
        // use the prefix: it has its own, translated per WAN (see README, IPv6).
        Ipv6Mode::Auto => {
            network.push_str("IPv6AcceptRA=yes\nDHCPPrefixDelegation=yes\n");
            // A ppp device has no MAC to derive an EUI-64 interface identifier from: the
            // addresses get a stable one (RFC 7217) from the machine and the prefix.
            let token = match mode {
                WanMode::Pppoe => "Token=prefixstable\n",
                _ => "",
            };
            // A metric per WAN, so the advertised default routes never merge into one.
            write!(
                sections,
                "\n[IPv6AcceptRA]\nRouteMetric={metric}\n{token}\n[DHCPv6]\nWithoutRA=solicit\nPrefixDelegationHint=::/56\nUseHostname=no\n\n[DHCPPrefixDelegation]\nUplinkInterface=:self\nSubnetId=0\nAnnounce=no\n{token}"
            )
            .unwrap();
        }
        Ipv6Mode::Static => network.push_str("IPv6AcceptRA=no\n"),
        Ipv6Mode::Off => network.push_str("LinkLocalAddressing=no\nIPv6AcceptRA=no\n"),
    }
    if v4_dhcp {
        // No hostname from the lease: a router keeps its own name.
        write!(
            sections,
            "\n[DHCPv4]\nRouteMetric={metric}\nUseHostname=no\n"
        )
        .unwrap();
    }
    network + &sections
}

/// The `.network` file of a device the router's config creates (a VLAN, a ppp session).
fn device_network(header: &str, dev: &str, body: &str) -> UnitFile {
    UnitFile {
        name: format!("{FILE_PREFIX}{dev}.network"),
        text: format!(
            "{header}[Match]\nName={dev}\n\n[Link]\nRequiredForOnline=no\n\n[Network]\n{body}"
        ),
    }
}

/// The `.network` file of the port itself.
fn network(header: &str, w: &WanConfig, dev: &str, body: String) -> UnitFile {
    let mac = w
        .mac
        .map(|m| format!("MACAddress={m}\n"))
        .unwrap_or_default();
    UnitFile {
        name: format!("{FILE_PREFIX}{dev}.network"),
        text: format!(
            "{header}[Match]\nName={dev}\n\n[Link]\n{mac}RequiredForOnline=no\n\n[Network]\n{body}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_every_mode() {
        let cfg = Config::from_toml(
            r#"
[[wan_interfaces]]
name = "wan1"
mode = "static"
address = "203.0.113.5/29"
gateway = "203.0.113.1"

[[wan_interfaces]]
name = "wan2"
mode = "dhcp"
vlan = 7
mac = "02:00:5e:10:00:01"

[[wan_interfaces]]
name = "wan3"
mode = "pppoe"
[wan_interfaces.pppoe]
username = "u"
password = "p"

[[wan_interfaces]]
name = "wan4"
mode = "pppoe"
vlan = 35
[wan_interfaces.pppoe]
username = "u"
password = "p"

[[wan_interfaces]]
name = "wan5"
mode = "dhcp"
ipv6 = "off"

[[wan_interfaces]]
name = "wan6"

[[wan_interfaces]]
name = "wan7"
mode = "dhcp"
ipv6 = "static"
address6 = "2001:db8:ff07::2/64"
gateway6 = "fe80::1"

[lan]
interface = "lan"
address = "192.168.1.1/24"
"#,
        )
        .unwrap();
        let all: String = render(&cfg)
            .iter()
            .map(|f| format!("=== {}\n{}", f.name, f.text))
            .collect();
        insta::assert_snapshot!(all);
    }

    #[test]
    fn unmanaged_wans_get_no_files() {
        let cfg = Config::from_toml(
            "[[wan_interfaces]]\nname = \"wan1\"\n[lan]\ninterface = \"lan\"\naddress = \"192.168.1.1/24\"\n",
        )
        .unwrap();
        assert!(render(&cfg).is_empty());
    }
}
