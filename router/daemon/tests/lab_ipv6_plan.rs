//! The lab's IPv6 plan as the tests see it (tests/common/lab.rs) agrees with what
//! `ci/lab.sh up` builds (ci/lib/lab-common.sh): SLAAC addresses and RA default routes on the
//! router's WANs and the LAN client, the internet hosts reachable through each ISP, and the
//! traffic helpers working over IPv6. The topology only (no daemon, so no NAT): the router
//! itself talks to the internet. The plan functions are checked without root.
//!
//!     sudo cargo test -p routeros-daemon --test lab_ipv6_plan -- --include-ignored

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use common::lab::*;

#[test]
fn the_plan_gives_each_wan_its_own_64() {
    assert_eq!(wan_net6(1).to_string(), "2001:db8:ff01::/64");
    assert_eq!(wan_net6(16).to_string(), "2001:db8:ff10::/64");
    assert_eq!(wan_addr6(2).to_string(), "2001:db8:ff02::2");
    assert_eq!(wan_isp6(3).to_string(), "2001:db8:ff03::1");
    assert_eq!(uplink_inet6(10).to_string(), "2001:db8:fe0a::2");
    let any_in_wan2: Ipv6Addr = "2001:db8:ff02::abcd:1".parse().unwrap();
    assert_eq!(wan_index(IpAddr::V6(any_in_wan2), 2), Some(2));
    assert_eq!(
        wan_index6(IpAddr::V6(any_in_wan2), 1),
        None,
        "WAN 2 of a 1-WAN lab"
    );
    assert_eq!(wan_index(IpAddr::V6(LAN_CLIENT6), 2), None);
    assert_eq!(wan_index6(IpAddr::V4(wan_addr(1)), 2), None);
    // IPv4 stays exact, also when a dual-stack listener reports it IPv4-mapped.
    assert_eq!(wan_index(IpAddr::V4(wan_addr(2)), 2), Some(2));
    assert_eq!(
        wan_index(IpAddr::V6(wan_addr(1).to_ipv6_mapped()), 2),
        Some(1)
    );
    assert_eq!(wan_index(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)), 2), None);
}

/// `ip -6 route show default` in NS.
fn defaults6(ns: &str) -> String {
    run_ok("ip", &["-6", "-n", ns, "route", "show", "default"])
}

#[test]
#[ignore = "needs root"]
fn the_lab_has_ipv6_as_the_plan_says() {
    let lab = Lab::up(
        "p6",
        LabOpts {
            no_daemon: true,
            ..LabOpts::default()
        },
    );
    let (rtr, lan, inet) = (lab.rtr(), lab.lan(), lab.inet());

    // SLAAC on each WAN from its ISP's RAs, and a default route `proto ra` through it.
    let routes = defaults6(&rtr);
    for i in 1..=2 {
        let dev = format!("wan{i}");
        let addrs = global_addrs6(&rtr, &dev);
        assert!(
            addrs.contains(&format!(" {}/64 ", wan_addr6(i))) && !addrs.contains("tentative"),
            "{dev}: no settled SLAAC address {} in\n{addrs}",
            wan_addr6(i)
        );
        assert!(
            routes
                .lines()
                .any(|l| l.contains(&format!(" dev {dev} proto ra "))),
            "no RA default route through {dev}:\n{routes}"
        );
    }
    // The LAN: the router's ULA, the client's SLAAC address and default route from the RAs.
    assert!(global_addrs6(&rtr, "lan0").contains(&format!(" {LAN_ROUTER6}/64 ")));
    let client = global_addrs6(&lan, "eth0");
    assert!(
        client.contains(&format!(" {LAN_CLIENT6}/64 ")) && client.contains("dynamic"),
        "LAN client without its SLAAC address:\n{client}"
    );
    assert!(defaults6(&lan).contains(" dev eth0 proto ra "));

    // Through each ISP: a ping bound to the WAN reaches both internet hosts.
    for i in 1..=2 {
        for host in [INET_HOST6, INET_HOST6_2] {
            let out = Command::new("ip")
                .args(["netns", "exec", &rtr, "ping", "-6", "-c1", "-W2", "-I"])
                .arg(format!("wan{i}"))
                .arg(host.to_string())
                .output()
                .expect("run ping");
            assert!(
                out.status.success(),
                "ping -I wan{i} {host}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // The LAN client reaches the router's ULA (the internet has no route back to the ULA:
    // that is the daemon's translation to do).
    let out = Command::new("ip")
        .args(["netns", "exec", &lan, "ping", "-6", "-c1", "-W2"])
        .arg(LAN_ROUTER6.to_string())
        .output()
        .expect("run ping");
    assert!(out.status.success(), "LAN client cannot ping {LAN_ROUTER6}");

    // The echo server on the internet host's IPv6 address; the router's own connection
    // leaves by one of its RA default routes, and the server's peer names that WAN.
    let server = TcpEchoServer::start(&inet, inet6(ECHO_PORT));
    let mut client = EchoClient::connect(&rtr, inet6(ECHO_PORT)).expect("connect over IPv6");
    let i = wan_index(client.peer, 2)
        .unwrap_or_else(|| panic!("peer {} is in no WAN's /64", client.peer));
    assert_eq!(client.peer, IpAddr::V6(wan_addr6(i)));
    assert_eq!(client.echo("hello").expect("echo"), client.peer);
    assert_eq!(server.peers(), [client.peer]);
}

#[test]
#[ignore = "needs root"]
fn lab_ipv6_off_leaves_an_ipv4_only_lab() {
    let lab = Lab::up(
        "q6",
        LabOpts {
            no_daemon: true,
            ipv6: false,
            ..LabOpts::default()
        },
    );
    let (rtr, lan) = (lab.rtr(), lab.lan());
    for (ns, dev) in [
        (&rtr, "wan1"),
        (&rtr, "wan2"),
        (&rtr, "lan0"),
        (&lan, "eth0"),
    ] {
        assert_eq!(global_addrs6(ns, dev), "", "{dev} in {ns} has global IPv6");
    }
    assert_eq!(defaults6(&rtr), "");
    assert_eq!(
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &rtr,
                "sysctl",
                "-n",
                "net.ipv6.conf.all.forwarding"
            ]
        )
        .trim(),
        "0"
    );
    // IPv4 as ever: the router reaches its ISP's gateway.
    let out = Command::new("ip")
        .args(["netns", "exec", &rtr, "ping", "-c1", "-W2", "192.0.2.1"])
        .output()
        .expect("run ping");
    assert!(out.status.success(), "router cannot ping ISP 1 over IPv4");
}
