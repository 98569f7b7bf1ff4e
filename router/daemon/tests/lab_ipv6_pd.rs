//! DHCPv6 prefix delegation from a real server: the ISP of a DHCP line only delegates (Kea
//! DHCPv6 hands out a /56, its router advertisements carry no SLAAC prefix), so the line's
//! only global IPv6 address is the one networkd makes in the delegated prefix's first /64.
//! The daemon takes that address for the WAN and masquerades the LAN's ULA to it: the
//! internet host sees the LAN client's connections come from it. The other WAN keeps SLAAC.
//! Root only.
//!
//!     sudo cargo test -p routeros-daemon --test lab_ipv6_pd -- --include-ignored

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::lab::*;
use ipnet::Ipv6Net;

const ECHO6: u16 = 5611;
/// From the daemon being ready to the DHCP line's IPv6 in service: DHCPv6 (networkd solicits
/// at once), then the IPv6 probe rounds.
const PD_UP: Duration = Duration::from_secs(30);

#[test]
#[ignore = "needs root"]
fn dhcp_line_gets_its_address_from_a_delegated_prefix() {
    let lab = Lab::up(
        "pd",
        LabOpts {
            weights: vec![1, 1],
            wan_modes: vec!["dhcp", "-"],
            ..LabOpts::default()
        },
    );
    let (address, took) = lab.wait_status("wan1's IPv6 from the delegated prefix", PD_UP, |s| {
        let v6 = &wan(s, "wan1")["ipv6"];
        let a: Ipv6Net = v6["address"].as_str()?.parse().ok()?;
        (pd6_pool(1).contains(&a.addr()) && v6["active"] == true).then_some(a)
    });
    println!(
        "wan1 IPv6 {address} in service {:.1} s after the daemon was ready",
        took.as_secs_f64()
    );

    // Kea delegated the pool's first /56; networkd addressed the line from its first /64.
    let leases = std::fs::read_to_string(lab.dir.join("isp1-pd.leases")).expect("Kea leases");
    let lease = leases
        .lines()
        .find(|l| l.starts_with("2001:db8:101::,"))
        .unwrap_or_else(|| panic!("no lease for 2001:db8:101::/56:\n{leases}"));
    let fields: Vec<&str> = lease.split(',').collect();
    assert_eq!(fields[6], "2", "lease type 2 is a prefix: {lease}");
    assert_eq!(fields[8], "56", "a /56: {lease}");
    let first64: Ipv6Net = "2001:db8:101::/64".parse().unwrap();
    assert_eq!(address.trunc(), first64, "SubnetId=0: the first /64");
    println!("Kea lease: {lease}");

    // The ISP only delegates: no SLAAC address from the link's /64 on the DHCP line, while
    // the lab-addressed wan2 has one.
    let global = |dev: &str| {
        run_ok(
            "ip",
            &[
                "-6",
                "-n",
                &lab.rtr(),
                "addr",
                "show",
                "dev",
                dev,
                "scope",
                "global",
            ],
        )
    };
    let (g1, g2) = (global("wan1"), global("wan2"));
    assert!(!g1.contains("2001:db8:ff01:"), "no SLAAC on wan1:\n{g1}");
    assert!(g2.contains("2001:db8:ff02:"), "SLAAC on wan2:\n{g2}");
    let status = lab.status();
    let w2: Ipv6Net = wan(&status, "wan2")["ipv6"]["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("wan2 has an IPv6 address");
    assert!(wan_net6(2).contains(&w2.addr()), "{w2}");

    // The LAN client reaches the IPv6 internet host through both lines; through wan1 the
    // host sees the address from the delegated prefix.
    let server = TcpEchoServer::start(&lab.inet(), inet6(ECHO6));
    let sources = probe_sources(&lab.lan(), server.addr, 60).expect("60 IPv6 connections");
    let via1: Vec<IpAddr> = sources
        .iter()
        .copied()
        .filter(|s| wan_index6(*s, 2) == Some(1))
        .collect();
    println!("{}", assert_weighted_split(&sources, &[1, 1]));
    assert!(
        !via1.is_empty() && via1.iter().all(|s| *s == IpAddr::V6(address.addr())),
        "wan1's connections come from {address}: {sources:?}"
    );
}
