//! Golden tests of whole plans (snapshots under `snapshots/`) and targeted checks of the
//! decisions: which WANs are balanced over, fail-static, failover tiers, policies.

use super::*;
use crate::config::{Config, RawConfig, Resolved, WanIds};
use ipnet::Ipv4Net;

/// A config with `n` WANs named wan1..wanN with the given weights.
fn config(weights: &[u32], extra: &str) -> Config {
    let mut text = String::new();
    for (i, w) in weights.iter().enumerate() {
        text += &format!(
            "[[wan_interfaces]]\nname = \"wan{}\"\nweight = {w}\ngateway = \"192.0.2.{}\"\n\n",
            i + 1,
            8 * i + 1
        );
    }
    text += "[lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n\n";
    text += extra;
    Config::from_toml(&text).unwrap()
}

/// `cfg` changed by `edit`, validated again.
fn edited(cfg: Config, edit: impl FnOnce(&mut RawConfig)) -> Config {
    let mut raw = cfg.to_raw();
    edit(&mut raw);
    Config::from_raw(raw).unwrap()
}

/// Every WAN present, carrier up, healthy, with an address of each family and an IPv6
/// gateway from a router advertisement.
fn healthy(cfg: &Config) -> WanFactsByName {
    cfg.wan_interfaces
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let addr: Ipv4Net = format!("192.0.2.{}/29", 8 * i + 2).parse().unwrap();
            let link = LinkInfo {
                present: true,
                carrier: true,
                address: Some(addr),
                gateway: None,
                point_to_point: false,
                address6: Some(format!("2001:db8:ff{:02x}::2/64", i + 1).parse().unwrap()),
                gateway6: Some("fe80::1".parse().unwrap()),
            };
            (
                w.name.clone(),
                WanFacts {
                    link,
                    health: HealthVerdict::Up,
                    health6: HealthVerdict::Up,
                    ..WanFacts::default()
                },
            )
        })
        .collect()
}

fn down(mut states: WanFactsByName, names: &[&str]) -> WanFactsByName {
    for n in names {
        states.get_mut(*n).unwrap().health = HealthVerdict::Down;
    }
    states
}

/// A first allocation: table 100 × n and mark n << 8 in list order.
fn resolved(cfg: &Config) -> Resolved<'_> {
    WanIds::allocate(cfg, &WanIds::default()).unwrap().resolved
}

fn plan_of(cfg: &Config, states: &WanFactsByName) -> Plan {
    plan(&resolved(cfg), states, &Overrides::default())
}

#[test]
fn golden_one_wan() {
    let cfg = config(&[1], "");
    insta::assert_snapshot!(plan_of(&cfg, &healthy(&cfg)).to_string());
}

#[test]
fn golden_two_wans_seed_weights() {
    let cfg = config(&[2, 1], "");
    insta::assert_snapshot!(plan_of(&cfg, &healthy(&cfg)).to_string());
}

#[test]
fn golden_three_wans_unequal_weights() {
    let cfg = config(&[5, 3, 1], "");
    insta::assert_snapshot!(plan_of(&cfg, &healthy(&cfg)).to_string());
}

#[test]
fn golden_policies() {
    let cfg = config(
        &[2, 1, 1],
        r#"
[[policies]]
name = "console"
src = "192.168.1.50"
via = ["wan1"]
last_resort = "drop"

[[policies]]
name = "bank"
dst = "203.0.113.0/24"
protocol = "tcp"
dst_port = 443
via = ["wan2", "wan3"]
sticky_timeout = 600

[[policies]]
name = "dns"
protocol = "udp"
dst_port = "53"
via = ["wan3"]

[[policies]]
name = "nas6"
src = "fd7a:9e51:5c34::50"
protocol = "icmp"
via = ["wan2"]
sticky_timeout = 60
"#,
    );
    insta::assert_snapshot!(plan_of(&cfg, &healthy(&cfg)).to_string());
}

/// Spare-capacity placement: the turn maps declared in the table, filled after it in the
/// same script (the golden load test feeds this to the kernel).
#[test]
fn golden_spare_capacity_with_sticky_policy() {
    let cfg = edited(
        config(
            &[2, 1],
            "[[policies]]\nname = \"bank\"\ndst = \"203.0.113.0/24\"\nvia = [\"wan1\", \"wan2\"]\nsticky_timeout = 600\n",
        ),
        |raw| raw.routing.placement = crate::config::Placement::SpareCapacity,
    );
    let states = placed(healthy(&cfg), &[("wan1", 26), ("wan2", 255)]);
    insta::assert_snapshot!(plan_of(&cfg, &states).to_string());
}

/// The numgen map of the plan's `choose_wan` chain, e.g. "numgen random mod 9 map { ... }".
fn choice_line(p: &Plan) -> String {
    chain_choice(p, "choose_wan")
}

/// The last `ct mark set` rule of chain `name` (the weighted pick).
fn chain_choice(p: &Plan, name: &str) -> String {
    let chain = p.nft.split(&format!("chain {name} {{")).nth(1).unwrap();
    let body = chain.split("\n\t}").next().unwrap_or("");
    let last = body
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with("ct mark set"));
    last.unwrap_or(body).to_string()
}

#[test]
fn three_wan_map_covers_every_slot_once() {
    let cfg = config(&[5, 3, 1], "");
    let line = choice_line(&plan_of(&cfg, &healthy(&cfg)));
    assert_eq!(
        line,
        "ct mark set numgen random mod 9 map { 0-4 : 0x100, 5-7 : 0x200, 8 : 0x300 }"
    );
}

#[test]
fn a_down_wan_leaves_the_choice_and_main_route_but_keeps_its_table() {
    let cfg = config(&[2, 1, 1], "");
    let p = plan_of(&cfg, &down(healthy(&cfg), &["wan2"]));
    assert_eq!(p.active_wans, ["wan1", "wan3"]);
    assert_eq!(
        choice_line(&p),
        "ct mark set numgen random mod 3 map { 0-1 : 0x100, 2 : 0x300 }"
    );
    let main = p.routes.iter().find(|r| r.table == MAIN_TABLE).unwrap();
    assert_eq!(
        main.hops.iter().map(|h| h.dev.as_str()).collect::<Vec<_>>(),
        ["wan1", "wan3"]
    );
    assert!(
        p.routes.iter().any(|r| r.table == 200),
        "probes still need wan2's table"
    );
    // Replies to connections opened through wan2 still go back through it.
    assert!(p.nft.contains("oifname \"wan2\" masquerade"));
}

#[test]
fn operator_disable_counts_as_down() {
    let cfg = config(&[2, 1], "");
    let ov = Overrides {
        disabled: ["wan1".to_string()].into(),
        ..Overrides::default()
    };
    let p = plan(&resolved(&cfg), &healthy(&cfg), &ov);
    assert_eq!(p.active_wans, ["wan2"]);
    assert_eq!(choice_line(&p), "ct mark set 0x200");
}

#[test]
fn all_down_keeps_the_last_routes_instead_of_blackholing() {
    let cfg = config(&[2, 1], "");
    let p = plan_of(&cfg, &down(healthy(&cfg), &["wan1", "wan2"]));
    assert_eq!(p.active_wans, ["wan1", "wan2"]);
    assert!(p.routes.iter().any(|r| r.table == MAIN_TABLE));
}

#[test]
fn failover_mode_uses_the_best_live_priority_tier() {
    let cfg = edited(
        config(&[1, 1, 1], "[routing]\nload_balancing = \"failover\"\n"),
        |raw| {
            for (w, prio) in raw.wan_interfaces.iter_mut().zip([2, 1, 1]) {
                w.priority = prio;
            }
        },
    );
    let states = healthy(&cfg);
    assert_eq!(plan_of(&cfg, &states).active_wans, ["wan2", "wan3"]);
    let states = down(states, &["wan2", "wan3"]);
    assert_eq!(plan_of(&cfg, &states).active_wans, ["wan1"]);
}

#[test]
fn a_configured_gateway_is_not_routed_before_the_line_has_its_address() {
    let cfg = config(&[1, 1], "");
    let mut states = healthy(&cfg);
    states.get_mut("wan2").unwrap().link.address = None;
    let p = plan_of(&cfg, &states);
    assert_eq!(p.active_wans, ["wan1"]);
    assert!(
        !p.routes
            .iter()
            .any(|r| r.table == 200 && r.family == Family::V4),
        "the kernel would refuse the route, and the apply with it"
    );
}

#[test]
fn gateway_is_learned_when_not_configured() {
    let cfg = edited(config(&[1, 1], ""), |raw| {
        raw.wan_interfaces[1].gateway = None
    });
    let mut states = healthy(&cfg);
    let p = plan_of(&cfg, &states);
    assert_eq!(p.active_wans, ["wan1"], "no gateway yet: not routable");
    assert!(!p
        .routes
        .iter()
        .any(|r| r.table == 200 && r.family == Family::V4));

    states.get_mut("wan2").unwrap().link.gateway = Some("198.51.100.1".parse().unwrap());
    let p = plan_of(&cfg, &states);
    assert_eq!(p.active_wans, ["wan1", "wan2"]);
    let t200 = p.routes.iter().find(|r| r.table == 200).unwrap();
    assert_eq!(t200.family, Family::V4);
    assert_eq!(t200.hops[0].gateway, Some("198.51.100.1".parse().unwrap()));
}

#[test]
fn carrier_loss_and_missing_interfaces_are_not_usable() {
    let cfg = config(&[1, 1], "");
    let mut states = healthy(&cfg);
    states.get_mut("wan1").unwrap().link.carrier = false;
    assert_eq!(plan_of(&cfg, &states).active_wans, ["wan2"]);
    states.remove("wan2");
    let p = plan_of(&cfg, &states);
    assert!(
        !p.routes.iter().any(|r| r.table == 200),
        "absent interface gets no route"
    );
}

#[test]
fn policy_falls_back_or_drops_when_its_wans_are_down() {
    let cfg = config(
        &[1, 1],
        r#"
[[policies]]
name = "strict"
src = "192.168.1.50"
via = ["wan1"]
last_resort = "drop"

[[policies]]
name = "loose"
src = "192.168.1.51"
via = ["wan1"]
"#,
    );
    let p = plan_of(&cfg, &down(healthy(&cfg), &["wan1"]));
    assert!(p.nft.contains("ip saddr 192.168.1.50 drop"), "{}", p.nft);
    assert!(
        !p.nft.contains("192.168.1.51"),
        "loose policy falls through: {}",
        p.nft
    );
    assert!(!p.nft.contains("chain policy_strict"));
}

#[test]
fn planning_is_deterministic() {
    let cfg = config(&[2, 1, 1], "");
    assert_eq!(plan_of(&cfg, &healthy(&cfg)), plan_of(&cfg, &healthy(&cfg)));
}

#[test]
fn maintenance_counts_as_disabled_until_it_expires() {
    let cfg = config(&[2, 1], "");
    let mut ov = Overrides::default();
    ov.maintenance.insert("wan2".into(), 1_000);
    assert_eq!(
        plan(&resolved(&cfg), &healthy(&cfg), &ov).active_wans,
        ["wan1"]
    );
    assert!(ov.expire(999).is_empty());
    assert_eq!(ov.expire(1_000), ["wan2"]);
    assert_eq!(
        plan(&resolved(&cfg), &healthy(&cfg), &ov).active_wans,
        ["wan1", "wan2"]
    );
}

#[test]
fn golden_port_forwards_and_dhcp() {
    let cfg = config(
        &[2, 1],
        r#"
[lan.dhcp]
start = "192.168.1.50"
end = "192.168.1.99"

[[port_forwards]]
name = "web"
protocol = "tcp"
wan_port = 8443
to = "192.168.1.10"
to_port = 443

[[port_forwards]]
name = "game"
protocol = "udp"
wan_port = "27000-27015"
to = "192.168.1.20"
wans = ["wan2"]

[[port_forwards]]
name = "nas6"
protocol = "tcp"
wan_port = 443
family = "both"
to = "192.168.1.30"
to6 = "fd7a:9e51:5c34::30"

[[port_forwards]]
name = "ssh6"
protocol = "tcp"
wan_port = 2222
to_port = 22
family = "ipv6"
to6 = "fd7a:9e51:5c34::31"
"#,
    );
    insta::assert_snapshot!(plan_of(&cfg, &healthy(&cfg)).nft);
}

/// The rules of chain `name` (base-chain header left out), trimmed.
fn chain_rules<'a>(nft: &'a str, name: &str) -> Vec<&'a str> {
    let body = nft
        .split(&format!("\tchain {name} {{\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no chain {name} in:\n{nft}"));
    body.lines()
        .map(str::trim)
        .take_while(|l| *l != "}")
        .filter(|l| !l.starts_with("type "))
        .collect()
}

/// WAN ports keep IPv6 (link-local always, SLAAC addresses), and a table of family `ip` never
/// sees it: the table is `inet`, so the input and forward policy hold for both families, and
/// the WAN may send the router only what IPv6 needs on a link (RFC 4890 section 4.4).
#[test]
fn firewall_covers_ipv6_on_the_wans() {
    let cfg = config(
        &[2, 1],
        "[[port_forwards]]\nname = \"web\"\nprotocol = \"tcp\"\nwan_port = 8443\nto = \"192.168.1.10\"\n",
    );
    let nft = plan_of(&cfg, &healthy(&cfg)).nft;
    assert!(nft.contains("\ntable inet routeros {\n"), "{nft}");
    // An upgraded router still has the old IPv4-only table: gone in the same transaction.
    assert!(
        nft.contains("\nadd table ip routeros\ndelete table ip routeros\n"),
        "{nft}"
    );

    // Management ports: LAN only, whatever the family (no `ip`/`meta nfproto` qualifier).
    assert!(chain_rules(&nft, "input")
        .contains(&"iifname != \"lan0\" tcp dport { 22, 8080, 8081 } drop"));
    assert_eq!(
        chain_rules(&nft, "wan_input"),
        [
            "icmp type { echo-request, echo-reply, destination-unreachable, time-exceeded } accept",
            "meta nfproto ipv4 udp sport 67 udp dport 68 accept",
            "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, echo-reply } accept",
            "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept",
            "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 accept",
            "meta nfproto ipv6 udp sport 547 udp dport 546 accept",
            "counter drop",
        ]
    );

    // Forward: policy drop for both families; new connections only from the LAN out (and
    // IPv4 port forwards, the only DNAT there is).
    assert!(nft.contains(
        "\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n"
    ));
    assert_eq!(
        chain_rules(&nft, "forward"),
        [
            "ct state established,related accept",
            "ct state invalid drop",
            "iifname \"lan0\" oifname { \"wan1\", \"wan2\" } accept",
            "ct status dnat accept",
        ]
    );

    // NAT names its family: an unqualified masquerade in an inet table would NAT both. IPv6
    // translates the LAN's prefix only. The hairpin is for both on purpose: it only touches
    // port-forwarded (DNATed) connections from the LAN back into it.
    for rule in chain_rules(&nft, "postrouting") {
        assert!(
            rule.starts_with("meta nfproto ipv4 ")
                || rule.contains(" ip6 saddr fd7a:9e51:5c34::/64 masquerade")
                || rule == "iifname \"lan0\" oifname \"lan0\" ct status dnat masquerade",
            "{rule}"
        );
    }
    for rule in chain_rules(&nft, "port_forward") {
        assert!(rule.contains(" dnat ip to "), "{rule}");
    }
}

/// A static line, a tagged DHCP line and a PPPoE session: routes, rules and NAT use each
/// line's device, and the ppp device is routed without a gateway.
#[test]
fn golden_access_types_use_their_devices() {
    let cfg = Config::from_toml(
        r#"
[[wan_interfaces]]
name = "wan1"
mode = "static"
address = "192.0.2.2/29"
gateway = "192.0.2.1"

[[wan_interfaces]]
name = "wan2"
mode = "dhcp"
vlan = 7

[[wan_interfaces]]
name = "wan3"
mode = "pppoe"
[wan_interfaces.pppoe]
username = "u"
password = "p"

[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#,
    )
    .unwrap();
    let mut states = healthy(&cfg);
    states.get_mut("wan2").unwrap().link.gateway = Some("192.0.2.9".parse().unwrap());
    let ppp = &mut states.get_mut("wan3").unwrap().link;
    ppp.point_to_point = true;
    ppp.address = Some("100.64.0.2/32".parse().unwrap());
    let plan = plan_of(&cfg, &states);
    assert_eq!(plan.active_wans, ["wan1", "wan2", "wan3"]);
    insta::assert_snapshot!(plan.to_string());
}

/// Each family fails over on its own: wan1's IPv6 dies, its IPv4 carries on.
#[test]
fn ipv6_down_on_one_line_leaves_its_ipv4_alone() {
    let cfg = config(&[2, 1], "");
    let mut states = healthy(&cfg);
    states.get_mut("wan1").unwrap().health6 = HealthVerdict::Down;
    let p = plan_of(&cfg, &states);
    assert_eq!(p.active_wans, ["wan1", "wan2"]);
    assert_eq!(p.active_wans6, ["wan2"]);
    assert_eq!(chain_choice(&p, "choose_wan6"), "ct mark set 0x200");
    let main6 = p
        .routes
        .iter()
        .find(|r| r.table == MAIN_TABLE && r.family == Family::V6)
        .unwrap();
    assert_eq!(main6.hops.len(), 1);
    assert_eq!(main6.hops[0].dev, "wan2");
    assert!(
        p.routes
            .iter()
            .any(|r| r.table == 100 && r.family == Family::V6),
        "wan1's IPv6 probes still need its table"
    );
}

/// Without an address to translate to or a router advertisement's gateway, a line's IPv6
/// is not routable; `ipv6 = "off"` leaves no IPv6 trace of the line at all.
#[test]
fn ipv6_needs_address_and_gateway_and_off_means_none() {
    let cfg = config(&[1, 1], "");
    let mut states = healthy(&cfg);
    states.get_mut("wan2").unwrap().link.gateway6 = None;
    assert_eq!(plan_of(&cfg, &states).active_wans6, ["wan1"]);
    states.get_mut("wan1").unwrap().link.address6 = None;
    let p = plan_of(&cfg, &states);
    assert!(p.active_wans6.is_empty());
    assert!(!p.routes.iter().any(|r| r.family == Family::V6));
    assert!(p.nft.contains("chain choose_wan6 {\n\t}"), "{}", p.nft);

    let off = edited(cfg, |raw| {
        raw.wan_interfaces[1].ipv6 = crate::config::Ipv6Mode::Off
    });
    let p = plan_of(&off, &healthy(&off));
    assert_eq!(p.active_wans6, ["wan1"]);
    assert!(!p
        .rules
        .iter()
        .any(|r| r.family == Family::V6 && r.table == 200));
    assert!(!p.nft.contains("oifname \"wan2\" ip6"));
    let all_off = edited(off, |raw| {
        raw.wan_interfaces[0].ipv6 = crate::config::Ipv6Mode::Off
    });
    let p = plan_of(&all_off, &healthy(&all_off));
    assert!(!p.rules.iter().any(|r| r.family == Family::V6));
    assert!(!p.nft.contains("choose_wan6"));
}

/// A static IPv6 line uses its configured address and gateway, whatever the link reports.
#[test]
fn static_ipv6_is_used_as_configured() {
    let cfg = edited(config(&[1], ""), |raw| {
        let w = &mut raw.wan_interfaces[0];
        w.ipv6 = crate::config::Ipv6Mode::Static;
        w.address6 = Some("2001:db8:77::2/64".parse().unwrap());
        w.gateway6 = Some("2001:db8:77::1".parse().unwrap());
    });
    let p = plan_of(&cfg, &healthy(&cfg));
    let t = p.routes.iter().find(|r| r.family == Family::V6).unwrap();
    assert_eq!(t.hops[0].gateway, Some("2001:db8:77::1".parse().unwrap()));
    assert!(p
        .rules
        .iter()
        .any(|r| r.selector == RuleSelector::From("2001:db8:77::2".parse().unwrap())));
}

// Smart traffic: weights from line speeds, placement by spare capacity (the daemon's numbers
// arrive as facts; the planner only turns them into ranges).

fn main_hop_weights(p: &Plan) -> Vec<u8> {
    let main = p.routes.iter().find(|r| r.table == MAIN_TABLE).unwrap();
    main.hops.iter().map(|h| h.weight).collect()
}

fn learned(mut states: WanFactsByName, wan: &str, kbit: u64) -> WanFactsByName {
    states.get_mut(wan).unwrap().learned_down_kbit = Some(kbit);
    states
}

fn placed(mut states: WanFactsByName, weights: &[(&str, u32)]) -> WanFactsByName {
    for (wan, w) in weights {
        states.get_mut(*wan).unwrap().placement_weight = Some(*w);
    }
    states
}

#[test]
fn static_weights_ignore_speeds_and_the_daemons_numbers() {
    let cfg = edited(config(&[2, 1], ""), |raw| {
        raw.wan_interfaces[0].download_mbit = Some(10.0);
        raw.wan_interfaces[1].download_mbit = Some(1000.0);
    });
    let states = placed(
        learned(healthy(&cfg), "wan1", 5),
        &[("wan1", 1), ("wan2", 200)],
    );
    let p = plan_of(&cfg, &states);
    assert_eq!(
        choice_line(&p),
        "ct mark set numgen random mod 3 map { 0-1 : 0x100, 2 : 0x200 }"
    );
    assert_eq!(main_hop_weights(&p), [2, 1]);
}

#[test]
fn auto_weights_follow_declared_then_learned_then_default_speeds() {
    let auto = |cfg: Config| {
        edited(cfg, |raw| {
            raw.routing.weights = crate::config::WeightMode::Auto;
        })
    };
    let cfg = auto(edited(config(&[1, 1, 1], ""), |raw| {
        raw.wan_interfaces[0].download_mbit = Some(100.0);
    }));
    // wan1 declared 100, wan2 learned 50 (its learned speed only counts when none is
    // declared), wan3 neither: the 100 Mbit/s default.
    let states = learned(learned(healthy(&cfg), "wan2", 50_000), "wan1", 1_000);
    let views = wan_views(&resolved(&cfg), &states, &Overrides::default());
    let got: Vec<_> = views
        .iter()
        .map(|w| (w.speed.kbit, w.speed.source.as_str(), w.weight, w.share))
        .collect();
    assert_eq!(
        got,
        [
            (100_000, "declared", 255, 255),
            (50_000, "learned", 128, 128),
            (100_000, "default", 255, 255)
        ]
    );
    let p = plan_of(&cfg, &states);
    assert_eq!(
        choice_line(&p),
        "ct mark set numgen random mod 638 map { 0-254 : 0x100, 255-382 : 0x200, 383-637 : 0x300 }"
    );
    // The router's own traffic follows the same weights.
    assert_eq!(main_hop_weights(&p), [255, 128, 255]);
}

/// Turns per mark in a turn map's elements (`0-3 : 0x200, 4 : 0x100, ...`).
fn turns_of(p: &Plan, map: &str) -> Vec<(u32, u32)> {
    let mut by_mark = std::collections::BTreeMap::new();
    for e in p.turns[map].split(", ") {
        let (range, mark) = e.split_once(" : ").unwrap();
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let n = last.parse::<u32>().unwrap() - first.parse::<u32>().unwrap() + 1;
        let mark = u32::from_str_radix(mark.trim_start_matches("0x"), 16).unwrap();
        *by_mark.entry(mark).or_insert(0) += n;
    }
    by_mark.into_iter().collect()
}

#[test]
fn spare_capacity_placement_changes_only_the_turn_maps() {
    let cfg = edited(config(&[2, 1], ""), |raw| {
        raw.routing.placement = crate::config::Placement::SpareCapacity;
    });
    // Before the daemon measured anything: the weights, taking turns (`numgen inc`), so
    // connections opened at once are spread over the lines.
    let before = plan_of(&cfg, &healthy(&cfg));
    assert_eq!(
        choice_line(&before),
        "ct mark set numgen inc mod 64 map @turns_choose_wan"
    );
    assert_eq!(
        turns_of(&before, "turns_choose_wan"),
        [(0x100, 43), (0x200, 21)]
    );
    assert!(before.turns["turns_choose_wan"]
        .starts_with("0 : 0x100, 1 : 0x200, 2-3 : 0x100, 4 : 0x200"));
    // wan1 saturated: the placer gave it 26 against wan2's 255.
    let p = plan_of(&cfg, &placed(healthy(&cfg), &[("wan1", 26), ("wan2", 255)]));
    assert_eq!(turns_of(&p, "turns_choose_wan"), [(0x100, 6), (0x200, 58)]);
    // Only the map's elements moved: the table stays, routes and rules do not churn with
    // the rates (the main route keeps the weights).
    assert_eq!(p.nft, before.nft);
    assert_eq!(main_hop_weights(&p), [2, 1]);
    assert_eq!((&p.routes, &p.rules), (&before.routes, &before.rules));
    let update = p.turns_update(&before).unwrap();
    assert!(update.starts_with("flush map inet routeros turns_choose_wan\nadd element inet routeros turns_choose_wan { 0-4 : 0x200, 5 : 0x100,"), "{update}");
    assert_eq!(p.turns_update(&p), None, "nothing moved");
}

#[test]
fn spare_capacity_shares_apply_inside_policies_and_failover_still_wins() {
    let policy = "[[policies]]\nname = \"bulk\"\nsrc = \"192.168.1.0/25\"\nvia = [\"wan1\", \"wan2\"]\nsticky_timeout = 600\n";
    let cfg = edited(config(&[1, 1, 1], policy), |raw| {
        raw.routing.placement = crate::config::Placement::SpareCapacity;
    });
    let states = placed(healthy(&cfg), &[("wan1", 255), ("wan2", 13), ("wan3", 100)]);
    let p = plan_of(&cfg, &states);
    assert_eq!(
        chain_choice(&p, "policy_bulk"),
        "ct mark set numgen inc mod 64 map @turns_policy_bulk"
    );
    assert_eq!(turns_of(&p, "turns_policy_bulk"), [(0x100, 61), (0x200, 3)]);
    // Sticky hosts: the host-affinity sets live in the table, which moved shares leave alone.
    let moved = plan_of(
        &cfg,
        &placed(healthy(&cfg), &[("wan1", 13), ("wan2", 255), ("wan3", 100)]),
    );
    assert_eq!(moved.nft, p.nft);
    assert!(
        p.nft
            .contains("ip saddr @policy_bulk_1 ct mark set 0x100 return"),
        "{}",
        p.nft
    );
    // A down line leaves the choice whatever its spare capacity: a new table.
    let p = plan_of(&cfg, &down(states, &["wan1"]));
    assert_eq!(turns_of(&p, "turns_choose_wan"), [(0x200, 7), (0x300, 57)]);
}

/// Classes in config order, each in the families it matches, before the built-in ones (off
/// here); the first that matches decides (`return`).
#[test]
fn classes_mark_dscp_on_the_way_out_first_match_wins() {
    let cfg = config(
        &[1, 1],
        r#"
[[classes]]
name = "nas"
src = "fd7a:9e51:5c34::50"
dscp = "bulk"

[[classes]]
name = "calls"
protocol = "udp"
dst_port = "3478-3481"
dscp = 46

[qos]
default_classes = false
"#,
    );
    let nft = plan_of(&cfg, &healthy(&cfg)).nft;
    assert_eq!(
        chain_rules(&nft, "classify"),
        [
            "oifname { \"wan1\", \"wan2\" } meta nfproto ipv6 ip6 saddr fd7a:9e51:5c34::50 counter ip6 dscp set 8 return",
            "oifname { \"wan1\", \"wan2\" } meta nfproto ipv4 udp dport 3478-3481 counter ip dscp set 46 return",
            "oifname { \"wan1\", \"wan2\" } meta nfproto ipv6 udp dport 3478-3481 counter ip6 dscp set 46 return",
        ]
    );
    // Neither classes nor built-ins: no chain at all.
    let bare = config(&[1, 1], "[qos]\ndefault_classes = false\n");
    assert!(!plan_of(&bare, &healthy(&bare))
        .nft
        .contains("chain classify"));
}

/// A degraded line keeps `degraded_share` of its share (default half), the others theirs;
/// shares are scaled while one is degraded so that part stays exact even for weight 1.
#[test]
fn a_degraded_line_gets_its_reduced_share_of_new_connections() {
    let cfg = config(&[2, 1], "");
    let mut facts = healthy(&cfg);
    facts.get_mut("wan1").unwrap().degraded = true;
    assert_eq!(
        choice_line(&plan_of(&cfg, &facts)),
        "ct mark set numgen random mod 40 map { 0-19 : 0x100, 20-39 : 0x200 }"
    );
    let cfg = config(&[1, 1], "[routing]\ndegraded_share = 0.25\n");
    let mut facts = healthy(&cfg);
    facts.get_mut("wan2").unwrap().degraded = true;
    assert_eq!(
        choice_line(&plan_of(&cfg, &facts)),
        "ct mark set numgen random mod 25 map { 0-19 : 0x100, 20-24 : 0x200 }"
    );
    // Nothing degraded: the weights as they are.
    let cfg = config(&[2, 1], "");
    assert_eq!(
        choice_line(&plan_of(&cfg, &healthy(&cfg))),
        "ct mark set numgen random mod 3 map { 0-1 : 0x100, 2 : 0x200 }"
    );
}

/// Two lines: wan1 static with a virtual address, wan2 by DHCP; the pair talks over the LAN.
fn pair_config() -> Config {
    let text = r#"
[[wan_interfaces]]
name = "wan1"
mode = "static"
address = "203.0.113.2/29"
gateway = "203.0.113.1"
virtual_address = "203.0.113.6/29"

[[wan_interfaces]]
name = "wan2"
mode = "dhcp"

[lan]
interface = "lan0"
address = "192.168.1.1/24"

[ha]
enabled = true
peer = "192.168.1.2"
sync_interface = "lan0"
lan_virtual_address = "192.168.1.254/24"
auth_key_file = "/etc/routeros/ha.key"
"#;
    Config::from_toml(text).unwrap()
}

/// The IPv4 source NAT rules of a plan's nft table.
fn snat4(nft: &str) -> Vec<String> {
    nft.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("meta nfproto ipv4 oifname"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_master_translates_to_the_virtual_address_where_a_line_has_one() {
    let cfg = pair_config();
    let p = plan_as(
        &resolved(&cfg),
        &healthy(&cfg),
        &Overrides::default(),
        PairRole::Master,
    );
    assert_eq!(
        snat4(&p.nft),
        [
            "meta nfproto ipv4 oifname \"wan1\" fib saddr type != local snat ip to 203.0.113.6",
            "meta nfproto ipv4 oifname \"wan2\" masquerade",
        ]
    );
}

#[test]
fn the_backup_keeps_its_plan_and_translates_only_to_virtual_addresses() {
    let cfg = pair_config();
    let states = healthy(&cfg);
    let master = plan_as(
        &resolved(&cfg),
        &states,
        &Overrides::default(),
        PairRole::Master,
    );
    let backup = plan_as(
        &resolved(&cfg),
        &states,
        &Overrides::default(),
        PairRole::Backup,
    );
    // Only the virtual address's line: the flows of a takeover leave translated as on
    // the master; the line without one translates nothing.
    assert_eq!(
        snat4(&backup.nft),
        ["meta nfproto ipv4 oifname \"wan1\" fib saddr type != local snat ip to 203.0.113.6"],
        "{}",
        backup.nft
    );
    // Routes, rules and marks are the same: ready to take over.
    assert_eq!(backup.routes, master.routes);
    assert_eq!(backup.rules, master.rules);
    assert_eq!(backup.active_wans, master.active_wans);
    // A pair not told its role yet plans as backup (keepalived starts every box so).
    assert_eq!(
        plan(&resolved(&cfg), &states, &Overrides::default()),
        backup
    );
}

#[test]
fn alone_a_virtual_address_changes_nothing() {
    let cfg = edited(pair_config(), |raw| raw.ha.enabled = false);
    let p = plan(&resolved(&cfg), &healthy(&cfg), &Overrides::default());
    assert_eq!(
        snat4(&p.nft),
        [
            "meta nfproto ipv4 oifname \"wan1\" masquerade",
            "meta nfproto ipv4 oifname \"wan2\" masquerade",
        ]
    );
}

/// With `failure_interval` the table counts, per WAN, packets sent for connections without
/// a reply and replies received (the passive failure signal); without it, nothing.
#[test]
fn silence_counters_only_with_a_failure_interval() {
    let cfg = config(&[1, 1], "[health_check]\nfailure_interval = 0.2\n");
    let nft = plan_of(&cfg, &healthy(&cfg)).nft;
    assert!(nft.contains("\tcounter sent_1 {\n\t}\n"), "{nft}");
    assert!(nft.contains("\tcounter replies_2 {\n\t}\n"), "{nft}");
    assert!(chain_rules(&nft, "egress")
        .contains(&"oifname \"wan2\" ct direction original counter name \"sent_2\""));
    assert!(chain_rules(&nft, "prerouting")
        .contains(&"iifname \"wan1\" ct direction reply counter name \"replies_1\""));
    let plain = config(&[1, 1], "");
    assert!(!plan_of(&plain, &healthy(&plain)).nft.contains("sent_"));
}
