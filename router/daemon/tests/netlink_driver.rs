//! `NetlinkDriver` against the real kernel, each test in its own network namespace (root).

mod common;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{fresh_netns, ip_json, sh, Monitor};
use routeros_daemon::apply::netlink::NetlinkDriver;
use routeros_daemon::apply::{ApplyError, LinkObserver, RouteDriver};
use routeros_shared::plan::{
    Family, NextHop, RouteSpec, RuleSelector, RuleSpec, MAIN_DEFAULT_METRIC, MAIN_TABLE, MARK_MASK,
    RULE_PRIO_FROM, RULE_PRIO_FWMARK, RULE_PRIO_OIF, RULE_PRIO_SUPPRESS_MAIN,
};
use serde_json::Value;

/// One emulated WAN: device, our address on it, its gateway (None: PPP-like), its table.
struct Wan {
    dev: &'static str,
    addr: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
    table: u32,
    weight: u8,
}

fn wans() -> Vec<Wan> {
    vec![
        Wan {
            dev: "wan1",
            addr: Ipv4Addr::new(192, 0, 2, 2),
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            table: 100,
            weight: 3,
        },
        Wan {
            dev: "wan2",
            addr: Ipv4Addr::new(198, 51, 100, 2),
            gateway: Some(Ipv4Addr::new(198, 51, 100, 1)),
            table: 200,
            weight: 1,
        },
        // Device-only next hop, like a PPP link; table above 255 needs RTA_TABLE.
        Wan {
            dev: "wan3",
            addr: Ipv4Addr::new(203, 0, 113, 2),
            gateway: None,
            table: 1000,
            weight: 2,
        },
    ]
}

/// A fresh namespace with three veth "WANs" up and addressed.
fn setup() {
    fresh_netns();
    for wan in wans() {
        let (dev, addr) = (wan.dev, wan.addr);
        sh(&format!(
            "ip link add {dev} type veth peer name {dev}p && ip link set {dev}p up && \
             ip link set {dev} up && ip addr add {addr}/24 dev {dev}"
        ));
    }
}

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

fn hop(wan: &Wan) -> NextHop {
    NextHop {
        dev: wan.dev.into(),
        gateway: wan.gateway.map(IpAddr::V4),
        weight: wan.weight,
    }
}

/// What the planner would ask for with these WANs active: a route per WAN table, a weighted
/// main default, and the four kinds of rules.
fn plan(wans: &[Wan]) -> (Vec<RouteSpec>, Vec<RuleSpec>) {
    let mut routes = vec![RouteSpec {
        family: Family::V4,
        table: MAIN_TABLE,
        metric: MAIN_DEFAULT_METRIC,
        hops: wans.iter().map(hop).collect(),
    }];
    let mut rules = vec![RuleSpec {
        family: Family::V4,
        priority: RULE_PRIO_SUPPRESS_MAIN,
        selector: RuleSelector::SuppressMainDefault,
        table: MAIN_TABLE,
    }];
    for (i, wan) in wans.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        routes.push(RouteSpec {
            family: Family::V4,
            table: wan.table,
            metric: 0,
            hops: vec![NextHop {
                weight: 1,
                ..hop(wan)
            }],
        });
        rules.extend([
            RuleSpec {
                family: Family::V4,
                priority: RULE_PRIO_FWMARK + i,
                selector: RuleSelector::FwMark {
                    mark: (i + 1) << 8,
                    mask: MARK_MASK,
                },
                table: wan.table,
            },
            RuleSpec {
                family: Family::V4,
                priority: RULE_PRIO_FROM + i,
                selector: RuleSelector::From(IpAddr::V4(wan.addr)),
                table: wan.table,
            },
            RuleSpec {
                family: Family::V4,
                priority: RULE_PRIO_OIF + i,
                selector: RuleSelector::Oif(wan.dev.into()),
                table: wan.table,
            },
        ]);
    }
    (routes, rules)
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

fn table_name(table: u32) -> String {
    if table == MAIN_TABLE {
        "main".into()
    } else {
        table.to_string()
    }
}

/// Our routes as `ip route` prints them: "table metric gw@dev*weight ...".
fn ip_routes() -> Vec<String> {
    let routes = ip_json("route show table all proto 201");
    let mut lines: Vec<String> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["dst"], "default", "only default routes: {r}");
            let hops: Vec<String> = match r["nexthops"].as_array() {
                Some(hops) => hops
                    .iter()
                    .map(|h| ip_hop(h, h["weight"].as_u64().unwrap()))
                    .collect(),
                None => vec![ip_hop(r, 1)],
            };
            let table = r["table"].as_str().unwrap_or("main");
            let metric = r["metric"].as_u64().unwrap_or(0);
            format!("{table} {metric} {}", hops.join(" "))
        })
        .collect();
    lines.sort();
    lines
}

fn ip_hop(h: &Value, weight: u64) -> String {
    let gw = h["gateway"].as_str().unwrap_or("-");
    format!("{gw}@{}*{weight}", h["dev"].as_str().unwrap())
}

fn expected_routes(routes: &[RouteSpec]) -> Vec<String> {
    let mut lines: Vec<String> = routes
        .iter()
        .map(|r| {
            let hops: Vec<String> = r
                .hops
                .iter()
                .map(|h| {
                    let gw = h.gateway.map_or("-".into(), |g| g.to_string());
                    format!("{gw}@{}*{}", h.dev, h.weight)
                })
                .collect();
            format!("{} {} {}", table_name(r.table), r.metric, hops.join(" "))
        })
        .collect();
    lines.sort();
    lines
}

/// Our rules as `ip rule` prints them: "prio src fwmark/mask oif suppress table".
fn ip_rules() -> Vec<String> {
    let rules = ip_json("rule show");
    let mut lines: Vec<String> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["protocol"] == "201")
        .map(|r| {
            let s = |k: &str| r[k].as_str().map_or("-".to_owned(), str::to_owned);
            let suppress = r["suppress_prefixlen"]
                .as_u64()
                .map_or("-".into(), |n| n.to_string());
            format!(
                "{} {} {}/{} {} {} {}",
                r["priority"],
                s("src"),
                s("fwmark"),
                s("fwmask"),
                s("oif"),
                suppress,
                s("table")
            )
        })
        .collect();
    lines.sort();
    lines
}

fn expected_rules(rules: &[RuleSpec]) -> Vec<String> {
    let mut lines: Vec<String> = rules
        .iter()
        .map(|r| {
            let (src, mark, oif, suppress) = match &r.selector {
                RuleSelector::SuppressMainDefault => ("all".into(), "-/-".into(), "-", "0"),
                RuleSelector::FwMark { mark, mask } => {
                    ("all".into(), format!("{mark:#x}/{mask:#x}"), "-", "-")
                }
                RuleSelector::From(addr) => (addr.to_string(), "-/-".into(), "-", "-"),
                RuleSelector::Oif(dev) => ("all".into(), "-/-".into(), dev.as_str(), "-"),
            };
            format!(
                "{} {src} {mark} {oif} {suppress} {}",
                r.priority,
                table_name(r.table)
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Everything routing-related in the namespace, ours or not.
fn kernel_snapshot() -> (String, String) {
    (sh("ip route show table all"), sh("ip rule show"))
}

async fn assert_kernel_holds(driver: &mut NetlinkDriver, routes: &[RouteSpec], rules: &[RuleSpec]) {
    assert_eq!(ip_routes(), expected_routes(routes));
    assert_eq!(ip_rules(), expected_rules(rules));
    assert_eq!(
        driver.current().await.unwrap(),
        (sorted(routes), sorted(rules))
    );
}

#[test]
#[ignore = "needs root"]
fn sync_installs_exactly_the_plan_and_a_second_sync_changes_nothing() {
    setup();
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        let (routes, rules) = plan(&wans());

        let monitor = Monitor::start("route rule");
        driver.sync(&routes, &rules).await.unwrap();
        let first = monitor.stop();
        assert_kernel_holds(&mut driver, &routes, &rules).await;
        // 4 routes + 10 rules added (the monitor itself is proved to see our changes).
        assert_eq!(first.len(), 14, "{first:#?}");
        assert!(sh("ip route show table 1000").contains("default dev wan3 proto 201 scope link"));

        let monitor = Monitor::start("route rule");
        driver.sync(&routes, &rules).await.unwrap();
        assert_eq!(monitor.stop(), Vec::<String>::new());
        assert_kernel_holds(&mut driver, &routes, &rules).await;
    });
}

#[test]
#[ignore = "needs root"]
fn changing_a_weight_replaces_the_multipath_route_in_place() {
    setup();
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        let (routes, rules) = plan(&wans());
        driver.sync(&routes, &rules).await.unwrap();

        let mut wans = wans();
        wans[1].weight = 7;
        let (routes, rules) = plan(&wans);
        let monitor = Monitor::start("route rule");
        driver.sync(&routes, &rules).await.unwrap();
        let events = monitor.stop();
        assert_eq!(events.len(), 1, "one replace, nothing else: {events:#?}");
        assert!(!events[0].starts_with("Deleted"), "{events:#?}");
        assert!(
            sh("ip route show table main").contains("nexthop via 198.51.100.1 dev wan2 weight 7")
        );
        assert_kernel_holds(&mut driver, &routes, &rules).await;
    });
}

#[test]
#[ignore = "needs root"]
fn removing_a_wan_deletes_its_table_route_and_rules() {
    setup();
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        let (routes, rules) = plan(&wans());
        driver.sync(&routes, &rules).await.unwrap();

        let mut wans = wans();
        wans.remove(1);
        let (routes, rules) = plan(&wans);
        driver.sync(&routes, &rules).await.unwrap();
        assert_kernel_holds(&mut driver, &routes, &rules).await;
        assert_eq!(sh("ip route show table 200"), "");
        assert!(!sh("ip rule show").contains("lookup 200"));

        // An empty plan removes everything of ours.
        driver.sync(&[], &[]).await.unwrap();
        assert_kernel_holds(&mut driver, &[], &[]).await;
    });
}

#[test]
#[ignore = "needs root"]
fn foreign_routes_and_rules_are_left_alone() {
    setup();
    // Same slot as our table-100 route (table 100, metric 0), a DHCP-style main default,
    // and a rule identical to one of ours but for its protocol.
    sh("ip route add default via 192.0.2.1 dev wan1 table 100 proto static");
    sh("ip route add default via 198.51.100.1 dev wan2 metric 1024 proto dhcp");
    sh("ip rule add pref 1100 fwmark 0x100/0xff00 lookup 100");
    let before = kernel_snapshot();
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        let (routes, rules) = plan(&wans());
        driver.sync(&routes, &rules).await.unwrap();
        assert_kernel_holds(&mut driver, &routes, &rules).await;

        // Move our table-100 route to another gateway: the static one in its slot survives.
        let mut wans = wans();
        wans[0].gateway = Some(Ipv4Addr::new(192, 0, 2, 254));
        let (routes, rules) = plan(&wans);
        driver.sync(&routes, &rules).await.unwrap();
        assert_kernel_holds(&mut driver, &routes, &rules).await;
        let table100 = sh("ip route show table 100");
        assert!(
            table100.contains("default via 192.0.2.1 dev wan1 proto static"),
            "{table100}"
        );
        assert!(
            table100.contains("default via 192.0.2.254 dev wan1 proto 201"),
            "{table100}"
        );

        driver.sync(&[], &[]).await.unwrap();
    });
    assert_eq!(kernel_snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn observe_reports_carrier_address_and_the_learned_gateway() {
    setup();
    // A DHCP default on wan1 in main; a different foreign one in another table that must
    // lose to main; a foreign multipath default that is wan2's only source of a gateway.
    sh("ip route add default via 192.0.2.1 dev wan1 metric 1024 proto dhcp");
    sh("ip route add default via 192.0.2.5 dev wan1 table 50 proto static");
    sh("ip route add default table 300 proto static \
        nexthop via 192.0.2.1 dev wan1 nexthop via 198.51.100.1 dev wan2");
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        // Our own default through wan1 with a lower metric must not be taken for the ISP's.
        let ours = RouteSpec {
            family: Family::V4,
            table: MAIN_TABLE,
            metric: MAIN_DEFAULT_METRIC,
            hops: vec![NextHop {
                dev: "wan1".into(),
                gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77))),
                weight: 1,
            }],
        };
        driver.sync(&[ours], &[]).await.unwrap();

        let wan1 = driver.observe("wan1").await.unwrap();
        assert!(wan1.present && wan1.carrier);
        assert_eq!(wan1.address, Some("192.0.2.2/24".parse().unwrap()));
        assert_eq!(wan1.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(
            (wan1.address6, wan1.gateway6),
            (None, None),
            "no global IPv6 yet"
        );

        let wan2 = driver.observe("wan2").await.unwrap();
        assert_eq!(wan2.gateway, Some(Ipv4Addr::new(198, 51, 100, 1)));
        let wan3 = driver.observe("wan3").await.unwrap();
        assert_eq!(wan3.address, Some("203.0.113.2/24".parse().unwrap()));
        assert_eq!(wan3.gateway, None);

        // A veth loses carrier when its peer goes down.
        sh("ip link set wan1p down");
        let wan1 = driver.observe("wan1").await.unwrap();
        assert!(wan1.present && !wan1.carrier);

        let missing = driver.observe("nope0").await.unwrap();
        assert_eq!(missing, Default::default());
        assert!(!missing.present);
    });
}

#[test]
#[ignore = "needs root"]
fn a_missing_interface_fails_before_anything_changes() {
    setup();
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        let (routes, rules) = plan(&wans());
        driver.sync(&routes, &rules).await.unwrap();
        let before = kernel_snapshot();

        // Drop a WAN (its rules would go) and add a hop on an interface that does not exist.
        let mut wans = wans();
        wans.truncate(2);
        let (mut routes, rules) = plan(&wans);
        routes[0].hops.push(NextHop {
            dev: "wan9".into(),
            gateway: None,
            weight: 1,
        });
        let err = driver.sync(&routes, &rules).await.unwrap_err();
        assert!(
            matches!(&err, ApplyError::NoSuchInterface(dev) if dev == "wan9"),
            "{err}"
        );
        assert_eq!(kernel_snapshot(), before);
    });
}

#[test]
#[ignore = "needs root"]
fn drift_is_empty_after_sync_and_names_what_another_program_deleted() {
    setup();
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        // One active WAN of weight 3: a single-hop main default, stored without its weight.
        let (mut routes, rules) = plan(&wans());
        routes[0].hops.truncate(1);
        assert_eq!(routes[0].hops[0].weight, 3);
        driver.sync(&routes, &rules).await.unwrap();
        let drift = driver.drift(&routes, &rules).await.unwrap();
        assert!(drift.is_empty(), "right after sync: {drift:?}");

        sh("ip rule del priority 1100 && ip route flush table 200");
        let drift = driver.drift(&routes, &rules).await.unwrap();
        let fwmark: Vec<u32> = drift.missing_rules.iter().map(|r| r.priority).collect();
        let tables: Vec<u32> = drift.missing_routes.iter().map(|r| r.table).collect();
        assert_eq!((fwmark, tables), (vec![1100], vec![200]), "{drift:?}");
        assert!(drift.extra_routes.is_empty() && drift.extra_rules.is_empty());

        driver.sync(&routes, &rules).await.unwrap();
        assert!(driver.drift(&routes, &rules).await.unwrap().is_empty());
    });
}

/// The IPv6 half of a dual-stack plan: per-WAN tables with a link-local gateway (as a router
/// advertisement gives) or none (PPP), a weighted multipath main default, and the IPv6 rules,
/// next to the IPv4 plan. The kernel stores IPv6 metric 0 as 1024: a second sync must still
/// see the plan in place and change nothing.
#[test]
#[ignore = "needs root"]
fn ipv6_routes_and_rules_sync_beside_ipv4_and_stay_put() {
    setup();
    for (i, dev) in ["wan1", "wan2", "wan3"].iter().enumerate() {
        sh(&format!(
            "ip -6 addr add 2001:db8:ff0{}::2/64 dev {dev} nodad",
            i + 1
        ));
    }
    let v6_hop = |dev: &str, gw: Option<&str>, weight| NextHop {
        dev: dev.into(),
        gateway: gw.map(|g| IpAddr::V6(g.parse().unwrap())),
        weight,
    };
    let (mut routes, mut rules) = plan(&wans());
    routes.extend([
        RouteSpec {
            family: Family::V6,
            table: MAIN_TABLE,
            metric: MAIN_DEFAULT_METRIC,
            hops: vec![
                v6_hop("wan1", Some("fe80::1"), 3),
                v6_hop("wan2", Some("2001:db8:ff02::1"), 1),
            ],
        },
        RouteSpec {
            family: Family::V6,
            table: 100,
            metric: 1024,
            hops: vec![v6_hop("wan1", Some("fe80::1"), 1)],
        },
        RouteSpec {
            family: Family::V6,
            table: 1000,
            metric: 1024,
            hops: vec![v6_hop("wan3", None, 1)],
        },
    ]);
    let v6_rule = |priority, selector, table| RuleSpec {
        family: Family::V6,
        priority,
        selector,
        table,
    };
    rules.extend([
        v6_rule(
            RULE_PRIO_SUPPRESS_MAIN,
            RuleSelector::SuppressMainDefault,
            MAIN_TABLE,
        ),
        v6_rule(
            RULE_PRIO_FWMARK,
            RuleSelector::FwMark {
                mark: 0x100,
                mask: MARK_MASK,
            },
            100,
        ),
        v6_rule(
            RULE_PRIO_FROM,
            RuleSelector::From(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0xff01, 0, 0, 0, 0, 2,
            ))),
            100,
        ),
        v6_rule(RULE_PRIO_OIF + 2, RuleSelector::Oif("wan3".into()), 1000),
    ]);
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        driver.sync(&routes, &rules).await.unwrap();
        let main6 = sh("ip -6 route show table main proto 201");
        assert!(
            main6.contains("nexthop via fe80::1 dev wan1 weight 3")
                && main6.contains("nexthop via 2001:db8:ff02::1 dev wan2 weight 1"),
            "{main6}"
        );
        assert!(sh("ip -6 route show table 1000").contains("default dev wan3 proto 201"));
        let rules6 = sh("ip -6 rule show");
        for want in [
            "1000:\tfrom all lookup main suppress_prefixlength 0 proto 201",
            "1100:\tfrom all fwmark 0x100/0xff00 lookup 100 proto 201",
            "1200:\tfrom 2001:db8:ff01::2 lookup 100 proto 201",
            "1302:\tfrom all oif wan3 lookup 1000 proto 201",
        ] {
            assert!(rules6.contains(want), "{want:?} in:\n{rules6}");
        }
        assert!(driver.drift(&routes, &rules).await.unwrap().is_empty());

        let monitor = Monitor::start("route rule");
        driver.sync(&routes, &rules).await.unwrap();
        assert_eq!(monitor.stop(), Vec::<String>::new());

        // Dropping IPv6 from the plan removes exactly the IPv6 entries.
        let (v4_routes, v4_rules) = plan(&wans());
        driver.sync(&v4_routes, &v4_rules).await.unwrap();
        assert_eq!(sh("ip -6 route show table all proto 201"), "");
        assert!(!sh("ip -6 rule show").contains("proto 201"));
        assert_kernel_holds(&mut driver, &v4_routes, &v4_rules).await;
    });
}

/// A router advertisement's default route (proto ra, a link-local gateway) and a global
/// address give the line's IPv6 facts; a link-local address alone is none.
#[test]
#[ignore = "needs root"]
fn observe_reports_the_global_ipv6_address_and_the_advertised_gateway() {
    setup();
    sh("ip -6 addr add 2001:db8:ff01::2/64 dev wan1 nodad");
    sh("ip -6 route add default via fe80::1 dev wan1 proto ra metric 1024");
    sh("ip -6 route add default via fe80::2 dev wan2 proto ra metric 1025");
    run(async {
        let mut driver = NetlinkDriver::connect().unwrap();
        let wan1 = driver.observe("wan1").await.unwrap();
        assert_eq!(wan1.address6, Some("2001:db8:ff01::2/64".parse().unwrap()));
        assert_eq!(wan1.gateway6, Some("fe80::1".parse().unwrap()));
        let wan2 = driver.observe("wan2").await.unwrap();
        assert_eq!(wan2.address6, None, "only link-local on wan2");
        assert_eq!(wan2.gateway6, Some("fe80::2".parse().unwrap()));
    });
}
