//! The router namespace's kernel state as the tools print it (nft, routes, rules, conntrack)
//! and the ISP failures the failover tests emulate.

use std::net::{IpAddr, Ipv4Addr};

use super::{nft_in, run_ok, uplink_inet6, Lab};

/// The IP families an emulated ISP fault hits (an nft table family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    V4,
    V6,
    Both,
}

impl Families {
    fn nft(self) -> &'static str {
        match self {
            Families::V4 => "ip",
            Families::V6 => "ip6",
            Families::Both => "inet",
        }
    }
}

/// Kernel state the daemon owns in the router namespace, as the tools print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelState {
    pub nft: String,
    pub routes: String,
    pub rules: String,
}

/// One TCP entry of `conntrack -L` in the router namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtEntry {
    /// Original tuple's source port (the LAN client's port, see [`EchoClient::local_port`]).
    pub sport: u16,
    /// Original tuple's destination port.
    pub dport: u16,
    /// The reply tuple's destination: the WAN address the connection was masqueraded (or,
    /// for IPv6, translated) to.
    pub reply_dst: Option<IpAddr>,
    /// The conntrack mark (the WAN's mark under 0xff00).
    pub mark: u32,
    pub line: String,
}

impl Lab {
    /// `nft -s list table inet routeros` in the router namespace. Stateless (no counter
    /// values): whatever the WAN input drops, stray IPv6 multicast of the ISPs included,
    /// changes a counter at any time without changing the table.
    pub fn nft_table(&self) -> String {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.rtr(),
                "nft",
                "-s",
                "list",
                "table",
                "inet",
                "routeros",
            ],
        )
    }

    /// Routes (IPv4; IPv6 link-local autoconfiguration would make the dump drift), all tables.
    pub fn routes(&self) -> String {
        run_ok(
            "ip",
            &["-4", "-n", &self.rtr(), "route", "show", "table", "all"],
        )
    }

    pub fn rules(&self) -> String {
        run_ok("ip", &["-n", &self.rtr(), "rule"])
    }

    pub fn kernel_state(&self) -> KernelState {
        KernelState {
            nft: self.nft_table(),
            routes: self.routes(),
            rules: self.rules(),
        }
    }

    /// The IPv4 TCP conntrack entries in the router namespace whose original destination
    /// port is `dport`.
    pub fn conntrack_tcp(&self, dport: u16) -> Vec<CtEntry> {
        self.conntrack_tcp_family("ipv4", dport)
    }

    /// As [`Lab::conntrack_tcp`] for IPv6 entries (`conntrack -L` lists one family).
    pub fn conntrack_tcp6(&self, dport: u16) -> Vec<CtEntry> {
        self.conntrack_tcp_family("ipv6", dport)
    }

    fn conntrack_tcp_family(&self, family: &str, dport: u16) -> Vec<CtEntry> {
        let port = dport.to_string();
        let out = run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.rtr(),
                "conntrack",
                "-L",
                "-f",
                family,
                "-p",
                "tcp",
                "--dport",
                &port,
            ],
        );
        out.lines().filter_map(parse_ct_line).collect()
    }

    /// `nft list chain inet routeros CHAIN` in the router namespace.
    pub fn nft_chain(&self, chain: &str) -> String {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.rtr(),
                "nft",
                "list",
                "chain",
                "inet",
                "routeros",
                chain,
            ],
        )
    }

    /// `ip -4 route show table TABLE` in the router namespace.
    pub fn route_table(&self, table: &str) -> String {
        run_ok(
            "ip",
            &["-4", "-n", &self.rtr(), "route", "show", "table", table],
        )
    }

    /// `ip -6 route show table TABLE` in the router namespace (the main table holds a default
    /// route `proto ra` per lab-addressed WAN, with an `expires` that counts down).
    pub fn route_table6(&self, table: &str) -> String {
        run_ok(
            "ip",
            &["-6", "-n", &self.rtr(), "route", "show", "table", table],
        )
    }

    /// ISP `i` loses its uplink (`ip link set dev up down` in its namespace): it still
    /// answers ARP and pings to itself, and the router's WAN keeps carrier, but it forwards
    /// nothing to the internet (it answers "network unreachable", as a router without an
    /// upstream does). `true` brings the uplink back with its default routes (IPv6 too
    /// when the lab has it; the addresses survive: the lab keeps them over a link down).
    pub fn isp_uplink(&self, i: usize, up: bool) {
        let isp = self.isp(i);
        let state = if up { "up" } else { "down" };
        run_ok("ip", &["-n", &isp, "link", "set", "dev", "up", state]);
        if up {
            // Setting a link down deletes the routes through it.
            let gw = Ipv4Addr::new(203, 0, 113, u8::try_from(129 + 2 * i).expect("i <= 16"));
            run_ok(
                "ip",
                &[
                    "-n",
                    &isp,
                    "route",
                    "replace",
                    "default",
                    "via",
                    &gw.to_string(),
                ],
            );
            if self.opts.ipv6 {
                let gw6 = uplink_inet6(i).to_string();
                run_ok(
                    "ip",
                    &[
                        "-6", "-n", &isp, "route", "replace", "default", "via", &gw6, "dev", "up",
                    ],
                );
            }
        }
    }

    /// ISP `i` silently drops everything it would forward (an nft `policy drop` forward
    /// chain in its namespace), IPv4 and IPv6, in both directions; no carrier change, no
    /// ICMP errors. `false` removes the rule.
    pub fn isp_blackhole(&self, i: usize, on: bool) {
        self.isp_blackhole_families(i, Families::Both, on);
    }

    /// As [`Lab::isp_blackhole`] for the given families only (e.g. the ISP's IPv6 upstream
    /// dies while IPv4 keeps working). Each family set has its own table, so `false` must
    /// name the same families as `true` did.
    pub fn isp_blackhole_families(&self, i: usize, families: Families, on: bool) {
        let family = families.nft();
        let script = if on {
            format!(
                "table {family} lab_fault {{\n\tchain forward {{\n\t\ttype filter hook forward priority -10; policy drop;\n\t}}\n}}\n"
            )
        } else {
            format!("delete table {family} lab_fault\n")
        };
        nft_in(&self.isp(i), &script);
    }

    /// The veth peer of the router's `wan<i>` (`down` in ISP `i`) goes down or up: the
    /// router's WAN loses or regains carrier.
    pub fn isp_carrier(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        run_ok(
            "ip",
            &["-n", &self.isp(i), "link", "set", "dev", "down", state],
        );
    }
}

fn parse_ct_line(line: &str) -> Option<CtEntry> {
    let field = |key: &str, nth: usize| -> Option<&str> {
        line.split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .nth(nth)
    };
    Some(CtEntry {
        sport: field("sport=", 0)?.parse().ok()?,
        dport: field("dport=", 0)?.parse().ok()?,
        reply_dst: field("dst=", 1).and_then(|a| a.parse().ok()),
        mark: field("mark=", 0).and_then(|m| m.parse().ok()).unwrap_or(0),
        line: line.to_string(),
    })
}

/// Fail naming what differs (nft table, routes or rules) and when.
pub fn assert_state_eq(before: &KernelState, after: &KernelState, when: &str) {
    for (what, a, b) in [
        ("nft list table inet routeros", &before.nft, &after.nft),
        ("ip -4 route show table all", &before.routes, &after.routes),
        ("ip rule", &before.rules, &after.rules),
    ] {
        assert!(
            a == b,
            "`{what}` changed {when}:\n--- before\n{a}\n--- after\n{b}"
        );
    }
}

/// `ip -6 -o addr show dev DEV scope global` in namespace NS.
pub fn global_addrs6(ns: &str, dev: &str) -> String {
    run_ok(
        "ip",
        &[
            "-6", "-n", ns, "-o", "addr", "show", "dev", dev, "scope", "global",
        ],
    )
}
