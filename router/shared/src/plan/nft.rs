//! Rendering our nftables table. The script deletes and re-creates `table inet routeros` in one
//! `nft -f` input, which nft applies as one transaction: the swap is atomic and nothing else
//! in the ruleset is touched. Conntrack marks live in the kernel's connection table, not in
//! ours, so established connections keep their WAN across every replacement.
//!
//! The table is `inet` so that one input/forward policy covers IPv4 and IPv6. New connections
//! of each family are balanced over the WANs active in that family (`choose_wan`,
//! `choose_wan6`): a line can be up for one and down for the other, and so do the policies
//! (one chain per policy and family, over the WANs usable in that family).
//! The LAN has one IPv6 prefix (a ULA by default) and every WAN masquerades it to its own
//! address, as IPv4: a connection keeps its WAN's address for its life, and a failover only
//! moves new connections (see README, IPv6, for why not several announced prefixes).

use super::decide::{Lane, PlannedWan};
use super::input::PairRole;
use super::model::MARK_MASK;
use super::weights::{interleaved, slots, MAX_CYCLE};
use crate::config::{Config, LastResort, Placement, PolicyConfig, Protocol, TrafficMatch};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Family and name of the one nftables table we own.
pub const NFT_FAMILY: &str = "inet";
pub const NFT_TABLE: &str = "routeros";
/// Family of the IPv4-only table of earlier versions (same name). Every script deletes it in
/// the transaction that creates ours, so an upgraded router swaps tables atomically.
pub const LEGACY_NFT_FAMILY: &str = "ip";

/// Management services that only the LAN may reach.
pub const MANAGEMENT_PORTS: [u16; 3] = [22, 8080, 8081];

/// Our table: the script that replaces it, and the turn maps' elements by map name (loaded
/// with it, and on their own when only they changed: [`super::Plan::turns_update`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Firewall {
    pub script: String,
    pub turns: BTreeMap<String, String>,
}

/// Render the whole table for the given WAN views and the WANs balanced over.
pub fn render(
    cfg: &Config,
    views: &[PlannedWan],
    active: &[&PlannedWan],
    active6: &[&PlannedWan],
    role: PairRole,
) -> Firewall {
    let lan = &cfg.lan.interface;
    // Destinations the main table reaches directly (LAN, WAN subnets such as the ISP's
    // modem) leave by their own interface whatever a pick says: not balanced; the egress
    // chain marks them by the interface they really use.
    let direct = brace(
        std::iter::once(cfg.lan.address.trunc())
            .chain(views.iter().filter_map(|w| w.subnet))
            .map(|n| n.to_string()),
    );
    // IPv6 destinations never balanced: the LAN, WAN subnets, link-local and multicast.
    let direct6 = brace(
        [
            cfg.lan.address6.trunc().to_string(),
            "fe80::/10".into(),
            "ff00::/8".into(),
        ]
        .into_iter()
        .chain(
            views
                .iter()
                .filter_map(|w| Some(w.v6.as_ref()?.subnet?.to_string())),
        ),
    );
    let views6: Vec<&PlannedWan> = views.iter().filter(|w| w.v6.is_some()).collect();
    let wan_set = quoted_set(views.iter().map(|w| w.dev.as_str()));
    let mut t = Table::default();

    for (p, lane) in policy_lanes(cfg) {
        if let Some(timeout) = p.sticky_timeout {
            for w in usable_via(p, views, lane) {
                t.set(&affinity_set(p, w, lane), addr_type(lane), timeout);
            }
        }
    }

    let unplaced = format!(
        "iifname \"{lan}\" ct state new ct mark & {MARK_MASK:#x} == 0x0 fib daddr type != local"
    );
    let mut pre = vec![format!("{unplaced} ip daddr != {direct} jump choose_wan")];
    if !views6.is_empty() {
        pre.push(format!(
            "{unplaced} ip6 daddr != {direct6} jump choose_wan6"
        ));
    }
    // Connections opened from a WAN (to the router or a port forward) answer through it.
    pre.extend(views.iter().map(|w| {
        format!(
            "iifname \"{}\" ct state new ct mark & {MARK_MASK:#x} == 0x0 ct mark set {:#x}",
            w.dev, w.mark
        )
    }));
    let silence = super::silence::enabled(cfg);
    if silence {
        for w in views {
            let (sent, replies) = super::silence::counter_names(w.mark);
            t.counter(&sent);
            t.counter(&replies);
        }
        pre.extend(super::silence::prerouting_rules(views));
    }
    pre.push(restore_mark());
    t.base_chain(
        "prerouting",
        "filter hook prerouting priority mangle",
        "accept",
        pre,
    );

    // Each family: its policies first, then the weighted pick over its active WANs.
    for (chain, lane, active) in [
        ("choose_wan", Lane::V4, active),
        ("choose_wan6", Lane::V6, active6),
    ] {
        if lane == Lane::V6 && views6.is_empty() {
            continue;
        }
        let rules = policy_lanes(cfg)
            .filter(|&(_, l)| l == lane)
            .filter_map(|(p, _)| policy_dispatch(p, views, lane))
            .chain(pick_wan(
                &mut t,
                chain,
                active.iter().copied(),
                cfg.routing.placement,
            ))
            .collect();
        t.chain(chain, rules);
    }
    for (p, lane) in policy_lanes(cfg) {
        let via: Vec<&PlannedWan> = usable_via(p, views, lane).collect();
        if !via.is_empty() {
            let chain = policy_chain(p, lane);
            let rules = policy_rules(&mut t, &chain, p, &via, lane, cfg.routing.placement);
            t.chain(&chain, rules);
        }
    }

    t.base_chain(
        "output",
        "route hook output priority mangle",
        "accept",
        vec![restore_mark()],
    );

    // Connections nothing classified yet (the router's own, or to a WAN subnet) carry the
    // mark of the WAN they actually leave by, so a failover flushes exactly the right ones.
    t.base_chain(
        "egress",
        "filter hook postrouting priority mangle",
        "accept",
        // The router's own pings (the health probes: one conntrack entry per probe) stay
        // unmarked, so a WAN's connection count is what its users have open, and a failover
        // has nothing of theirs to flush.
        [
            "fib saddr type local icmp type echo-request accept".to_string(),
            "fib saddr type local icmpv6 type echo-request accept".to_string(),
        ]
        .into_iter()
        .chain(views.iter().map(|w| {
            format!(
                "oifname \"{}\" ct state new ct mark & {MARK_MASK:#x} == 0x0 ct mark set {:#x}",
                w.dev, w.mark
            )
        }))
        .chain(if silence {
            super::silence::egress_rules(views)
        } else {
            Vec::new()
        })
        .collect(),
    );

    let classify = super::classify::rules(cfg, views);
    if !classify.is_empty() {
        t.base_chain(
            "classify",
            "filter hook postrouting priority mangle",
            "accept",
            classify,
        );
    }

    t.base_chain(
        "input",
        "filter hook input priority filter",
        "accept",
        vec![
            "iif \"lo\" accept".into(),
            "ct state established,related accept".into(),
            "ct state invalid drop".into(),
            format!("iifname {wan_set} jump wan_input"),
            format!(
                "iifname != \"{lan}\" tcp dport {} drop",
                brace(MANAGEMENT_PORTS.iter().map(|p| p.to_string()))
            ),
        ],
    );
    t.chain("wan_input", wan_input());

    t.base_chain(
        "forward",
        "filter hook forward priority filter",
        "drop",
        mss_clamp(cfg)
            .into_iter()
            .chain([
                "ct state established,related accept".into(),
                "ct state invalid drop".into(),
                format!("iifname \"{lan}\" oifname {wan_set} accept"),
                "ct status dnat accept".into(),
            ])
            .collect(),
    );

    if !cfg.port_forwards.is_empty() {
        t.base_chain(
            "port_forward",
            "nat hook prerouting priority dstnat",
            "accept",
            port_forwards(cfg, views),
        );
    }

    // Per family: IPv6 only on lines that have it, and only the LAN's prefix (the router's
    // own IPv6 traffic already has the WAN's address).
    let mut snat: Vec<String> = views
        .iter()
        .filter_map(|w| ipv4_snat(cfg, w, role))
        .collect();
    let lan6 = cfg.lan.address6.trunc();
    snat.extend(
        views6
            .iter()
            .map(|w| format!("oifname \"{}\" ip6 saddr {lan6} masquerade", w.dev)),
    );
    if !cfg.port_forwards.is_empty() {
        // Hairpin: a LAN client reaching a LAN server through the public address must see
        // the answer come from the router, or it drops the server's direct reply.
        snat.push(format!(
            "iifname \"{lan}\" oifname \"{lan}\" ct status dnat masquerade"
        ));
    }
    t.base_chain(
        "postrouting",
        "nat hook postrouting priority srcnat",
        "accept",
        snat,
    );
    t.finish()
}

/// How the LAN's IPv4 traffic leaving by `w` is translated, if it is:
/// - alone: masquerade (the line's address, whatever DHCP or PPPoE gave);
/// - in a pair, on a line with a `virtual_address`: to that address, on the master and the
///   backup alike. Masquerade would pick the box's own address, which the other box does
///   not hold: the connections it takes over after a failover would answer from an address
///   the ISP no longer routes to it. The backup has the rule too: in the moment it takes
///   the addresses, before keepalived's notify has re-planned it, a packet of the LAN would
///   otherwise leave untranslated and leave a conntrack entry without NAT that holds its
///   flow until it times out (seen in the lab as a UDP stream that never came back). Only
///   forwarded traffic (`fib saddr type != local`): the box's own (health probes) keeps its
///   own address, whose answers come back to this box, master or not;
/// - master, on a line without a virtual address: masquerade (its connections cannot
///   survive a failover: the other box has another address there);
/// - backup, on such a line: nothing (no LAN traffic should come through it).
fn ipv4_snat(cfg: &Config, w: &PlannedWan, role: PairRole) -> Option<String> {
    let virtual_address = || {
        cfg.wan_interfaces
            .iter()
            .find(|c| c.name == w.name)
            .and_then(|c| c.virtual_address)
    };
    match (role, virtual_address()) {
        (PairRole::Master | PairRole::Backup, Some(vip)) => Some(format!(
            "meta nfproto ipv4 oifname \"{}\" fib saddr type != local snat ip to {}",
            w.dev,
            vip.addr()
        )),
        (PairRole::Backup, None) => None,
        (PairRole::Master | PairRole::Alone, _) => Some(format!(
            "meta nfproto ipv4 oifname \"{}\" masquerade",
            w.dev
        )),
    }
}

/// What a WAN may send to the router itself beyond replies (`ct state established,related`);
/// the rest is counted and dropped. IPv4: pings, ICMP errors, DHCP replies. IPv6 (RFC 4890
/// section 4.4): ICMPv6 errors (packet-too-big for path MTU) and echo like IPv4, neighbour
/// discovery and router solicitations/advertisements (SLAAC) only from the link (hop limit
/// 255, which no router forwards), MLD from link-local sources (so snooping switches keep our
/// solicited-node groups), DHCPv6 replies. Left out as a WAN does not need them: redirects
/// (not accepted on IPv4 either), inverse ND, SEND, multicast router discovery, router
/// renumbering, node information.
fn wan_input() -> Vec<String> {
    [
        "icmp type { echo-request, echo-reply, destination-unreachable, time-exceeded } accept",
        "meta nfproto ipv4 udp sport 67 udp dport 68 accept",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, echo-reply } accept",
        "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept",
        "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 accept",
        "meta nfproto ipv6 udp sport 547 udp dport 546 accept",
        "counter drop",
    ]
    .map(String::from)
    .to_vec()
}

/// DNAT rules: from the WANs a forward listens on, and from the LAN to those WANs'
/// addresses (hairpin).
/// TCP MSS clamping on PPPoE sessions (MTU below Ethernet's 1500): without it, hosts whose
/// path-MTU discovery is blocked somewhere stall on full-size segments. SYNs leaving by the
/// session get the route's MTU; SYNs (and SYN-ACKs) arriving by it at most the session's.
fn mss_clamp(cfg: &Config) -> Vec<String> {
    cfg.wan_interfaces
        .iter()
        .filter_map(|w| Some((w.device(), w.pppoe.as_ref()?.mtu)))
        .flat_map(|(dev, mtu)| {
            let mss = mtu.saturating_sub(40);
            [
                format!("oifname \"{dev}\" tcp flags syn tcp option maxseg size set rt mtu"),
                format!(
                    "iifname \"{dev}\" tcp flags syn tcp option maxseg size > {mss} tcp option maxseg size set {mss}"
                ),
            ]
        })
        .collect()
}

/// IPv6 forwards (pinholes) from the WANs with IPv6 to the host's address in the LAN's
/// prefix, and from the LAN to those WANs' IPv6 addresses (hairpin: a LAN host that looks
/// the service up by its public name gets the WAN's address, as from outside).
fn port_forwards(cfg: &Config, views: &[PlannedWan]) -> Vec<String> {
    let lan = &cfg.lan.interface;
    let mut rules = Vec::new();
    for f in &cfg.port_forwards {
        let wans: Vec<&PlannedWan> = views
            .iter()
            .filter(|w| f.wans.is_empty() || f.wans.contains(&w.name))
            .collect();
        let with_port = |host: String| match f.to_port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let proto = f.protocol.nft_name();
        let port = f.wan_port;
        // From the LAN to the WANs' own addresses (`family`: ip or ip6).
        let hairpin = |family: &str, addrs: Vec<String>, target: &str| {
            (!addrs.is_empty()).then(|| {
                format!(
                    "iifname \"{lan}\" {family} daddr {} {proto} dport {port} dnat {family} to {target}",
                    brace(addrs.into_iter())
                )
            })
        };
        if let Some(to) = f.to.filter(|_| f.family.has_ipv4()) {
            let target = with_port(to.to_string());
            let names = quoted_set(wans.iter().map(|w| w.dev.as_str()));
            rules.push(format!(
                "iifname {names} {proto} dport {port} dnat ip to {target}"
            ));
            let addrs = wans.iter().filter_map(|w| w.address);
            rules.extend(hairpin(
                "ip",
                addrs.map(|a| a.to_string()).collect(),
                &target,
            ));
        }
        let wans6: Vec<&PlannedWan> = wans.iter().copied().filter(|w| w.v6.is_some()).collect();
        if let Some(to6) = f.to6.filter(|_| f.family.has_ipv6() && !wans6.is_empty()) {
            // Brackets only around an address followed by a port.
            let target = match f.to_port {
                Some(p) => format!("[{to6}]:{p}"),
                None => to6.to_string(),
            };
            rules.push(format!(
                "iifname {} meta nfproto ipv6 {proto} dport {port} dnat ip6 to {target}",
                quoted_set(wans6.iter().map(|w| w.dev.as_str()))
            ));
            let addrs6 = wans6.iter().filter_map(|w| w.v6.as_ref()?.address);
            rules.extend(hairpin(
                "ip6",
                addrs6.map(|a| a.to_string()).collect(),
                &target,
            ));
        }
    }
    rules
}

/// Copy the connection's WAN mark onto the packet so the fwmark rules route it.
fn restore_mark() -> String {
    format!("ct mark & {MARK_MASK:#x} != 0x0 meta mark set ct mark & {MARK_MASK:#x}")
}

/// The rule that sets a new connection's mark by share over `wans` (none if empty): at
/// random by weight, or under spare-capacity placement taking turns by share (connections
/// opened at once are spread over the lines; see `weights::interleaved`).
/// The weighted pick of a WAN for a new connection, as one rule of `chain`. Static weights:
/// `numgen random` over an inline map (it changes only with the weights). Spare capacity:
/// `numgen inc` over the named map `turns_<chain>`, whose elements move with the lines'
/// rates: the applier rewrites only them, in place (see [`Table::turns_map`]).
fn pick_wan<'a>(
    t: &mut Table,
    chain: &str,
    wans: impl Iterator<Item = &'a PlannedWan>,
    placement: Placement,
) -> Option<String> {
    let weighted: Vec<(u32, u32)> = wans.map(|w| (w.mark, w.share)).collect();
    match weighted.as_slice() {
        [] => None,
        [(mark, _)] => Some(format!("ct mark set {mark:#x}")),
        _ => {
            let (generator, (total, slots)) = match placement {
                Placement::Weight => ("random", slots(&weighted)),
                Placement::SpareCapacity => ("inc", interleaved(&weighted)),
            };
            let elements = slots
                .iter()
                .map(|s| {
                    if s.first == s.last {
                        format!("{} : {:#x}", s.first, s.mark)
                    } else {
                        format!("{}-{} : {:#x}", s.first, s.last, s.mark)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let map = match placement {
                Placement::Weight => format!("{{ {elements} }}"),
                Placement::SpareCapacity => format!("@{}", t.turns_map(chain, elements)),
            };
            Some(format!(
                "ct mark set numgen {generator} mod {total} map {map}"
            ))
        }
    }
}

/// Every policy with each family it matches, in config order.
fn policy_lanes(cfg: &Config) -> impl Iterator<Item = (&PolicyConfig, Lane)> {
    cfg.policies
        .iter()
        .flat_map(|p| lanes(&p.traffic()).map(move |lane| (p, lane)))
}

/// The families a policy's or class's match applies to.
pub(super) fn lanes(t: &TrafficMatch) -> impl Iterator<Item = Lane> {
    let (v4, v6) = t.families();
    [(v4, Lane::V4), (v6, Lane::V6)]
        .into_iter()
        .filter(|&(on, _)| on)
        .map(|(_, lane)| lane)
}

fn usable_via<'a>(
    p: &'a PolicyConfig,
    views: &'a [PlannedWan],
    lane: Lane,
) -> impl Iterator<Item = &'a PlannedWan> {
    views
        .iter()
        .filter(move |w| w.lane(lane).1 && p.via.contains(&w.name))
}

/// nft's address keyword of a family.
pub(super) fn ip(lane: Lane) -> &'static str {
    match lane {
        Lane::V4 => "ip",
        Lane::V6 => "ip6",
    }
}

fn addr_type(lane: Lane) -> &'static str {
    match lane {
        Lane::V4 => "ipv4_addr",
        Lane::V6 => "ipv6_addr",
    }
}

/// `policy_<name>` for IPv4 (the name of earlier versions), `policy6_<name>` for IPv6.
fn policy_chain(p: &PolicyConfig, lane: Lane) -> String {
    match lane {
        Lane::V4 => format!("policy_{}", p.name),
        Lane::V6 => format!("policy6_{}", p.name),
    }
}

fn affinity_set(p: &PolicyConfig, w: &PlannedWan, lane: Lane) -> String {
    format!("{}_{}", policy_chain(p, lane), w.mark >> 8)
}

/// The match part of a policy or class in `lane`, e.g. `ip saddr 192.168.1.50 tcp dport
/// 443` (empty: everything).
pub(super) fn traffic_match(t: &TrafficMatch, lane: Lane) -> String {
    let mut m = Vec::new();
    if let Some(src) = t.src {
        m.push(format!("{} saddr {src}", ip(lane)));
    }
    if let Some(dst) = t.dst {
        m.push(format!("{} daddr {dst}", ip(lane)));
    }
    match (t.protocol, t.src_port, t.dst_port) {
        (Some(proto), None, None) => m.push(format!("meta l4proto {}", l4proto(proto, lane))),
        (Some(proto), sport, dport) => {
            if let Some(s) = sport {
                m.push(format!("{} sport {s}", proto.nft_name()));
            }
            if let Some(d) = dport {
                m.push(format!("{} dport {d}", proto.nft_name()));
            }
        }
        (None, ..) => {}
    }
    m.join(" ")
}

/// The layer-4 protocol as `meta l4proto` names it: ICMP's IPv6 counterpart is ICMPv6.
fn l4proto(proto: Protocol, lane: Lane) -> &'static str {
    match (proto, lane) {
        (Protocol::Icmp, Lane::V6) => "icmpv6",
        _ => proto.nft_name(),
    }
}

/// The `choose_wan` rule for one policy: jump to its chain, drop, or nothing (fall through
/// to default balancing) when none of its WANs is usable.
fn policy_dispatch(p: &PolicyConfig, views: &[PlannedWan], lane: Lane) -> Option<String> {
    let matcher = traffic_match(&p.traffic(), lane);
    let sep = if matcher.is_empty() { "" } else { " " };
    if usable_via(p, views, lane).next().is_some() {
        Some(format!("{matcher}{sep}goto {}", policy_chain(p, lane)))
    } else {
        match p.last_resort {
            LastResort::Default => None,
            LastResort::Drop => Some(format!("{matcher}{sep}drop")),
        }
    }
}

/// A policy's own chain: host affinity first (if sticky), then a weighted pick that is
/// remembered for the host.
fn policy_rules(
    t: &mut Table,
    chain: &str,
    p: &PolicyConfig,
    via: &[&PlannedWan],
    lane: Lane,
    placement: Placement,
) -> Vec<String> {
    let mut rules = Vec::new();
    let sticky = p.sticky_timeout.is_some();
    let ip = ip(lane);
    if sticky {
        rules.extend(via.iter().map(|w| {
            format!(
                "{ip} saddr @{} ct mark set {:#x} return",
                affinity_set(p, w, lane),
                w.mark
            )
        }));
    }
    rules.extend(pick_wan(t, chain, via.iter().copied(), placement));
    if sticky {
        rules.extend(via.iter().map(|w| {
            format!(
                "ct mark & {MARK_MASK:#x} == {:#x} update @{} {{ {ip} saddr }}",
                w.mark,
                affinity_set(p, w, lane)
            )
        }));
    }
    rules
}

fn brace(items: impl Iterator<Item = String>) -> String {
    format!("{{ {} }}", items.collect::<Vec<_>>().join(", "))
}

pub(super) fn quoted_set<'a>(names: impl Iterator<Item = &'a str>) -> String {
    brace(names.map(|n| format!("\"{n}\"")))
}

/// Accumulates the table body; `finish` wraps it in the delete-and-recreate preamble.
#[derive(Default)]
struct Table {
    body: String,
    /// The turn maps' elements, by map name: kept out of the body (see [`Table::turns_map`]).
    turns: BTreeMap<String, String>,
}

impl Table {
    fn set(&mut self, name: &str, addr_type: &str, timeout_s: u32) {
        let _ = writeln!(
            self.body,
            "\tset {name} {{\n\t\ttype {addr_type}\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout_s}s\n\t}}\n"
        );
    }

    /// Declare the turn map of `chain` (empty: its `elements` go into the plan beside the
    /// script, so a change of shares alone is applied as an in-place rewrite of the map, and
    /// the table with its dynamic sets and counters stays). Returns its name.
    fn turns_map(&mut self, chain: &str, elements: String) -> String {
        let name = format!("turns_{chain}");
        let _ = writeln!(
            self.body,
            "\tmap {name} {{\n\t\ttypeof numgen inc mod {MAX_CYCLE} : ct mark\n\t\tflags interval\n\t}}\n"
        );
        self.turns.insert(name.clone(), elements);
        name
    }

    /// A named counter (`counter name "<name>"` in rules; read with `nft list counters`).
    fn counter(&mut self, name: &str) {
        let _ = writeln!(self.body, "\tcounter {name} {{\n\t}}\n");
    }

    fn base_chain(&mut self, name: &str, hook: &str, policy: &str, rules: Vec<String>) {
        let header = format!("type {hook}; policy {policy};");
        self.write_chain(name, Some(&header), &rules);
    }

    fn chain(&mut self, name: &str, rules: Vec<String>) {
        self.write_chain(name, None, &rules);
    }

    fn write_chain(&mut self, name: &str, header: Option<&str>, rules: &[String]) {
        let _ = writeln!(self.body, "\tchain {name} {{");
        if let Some(h) = header {
            let _ = writeln!(self.body, "\t\t{h}");
        }
        for r in rules {
            let _ = writeln!(self.body, "\t\t{r}");
        }
        let _ = writeln!(self.body, "\t}}\n");
    }

    /// `add` then `delete` removes a table whether or not it exists, in the same transaction
    /// as the new table: ours, and the legacy `ip` one of a router upgraded from it.
    fn finish(self) -> Firewall {
        let script = format!(
            "# Generated by routeros-watchdog: replaced as a whole on every change.\n\
             add table {NFT_FAMILY} {NFT_TABLE}\n\
             delete table {NFT_FAMILY} {NFT_TABLE}\n\
             add table {LEGACY_NFT_FAMILY} {NFT_TABLE}\n\
             delete table {LEGACY_NFT_FAMILY} {NFT_TABLE}\n\
             table {NFT_FAMILY} {NFT_TABLE} {{\n{}}}\n",
            self.body.trim_end_matches('\n').to_string() + "\n"
        );
        Firewall {
            script,
            turns: self.turns,
        }
    }
}
