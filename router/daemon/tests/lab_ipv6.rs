//! Dual-stack end to end: the daemon built for this test run routes the lab's IPv6 as it
//! routes IPv4. The LAN client has only the LAN's ULA (by router advertisement from the
//! daemon's dnsmasq); each WAN translates it to its own address, so the internet host sees
//! which WAN carried a connection. New IPv6 connections split by weight and keep their WAN;
//! a WAN whose IPv6 dies (IPv4 alive) loses its IPv6 connections and nothing else. Root only.
//!
//!     sudo cargo test -p routeros-daemon --test lab_ipv6 -- --include-ignored --test-threads=2

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use common::failover::*;
use common::lab::*;

const ECHO6: u16 = 5601;
const ECHO4: u16 = 5602;

/// Share of 2:1 weights the issue asks the split to hit: 2/3 ± 7 points.
const SPLIT_TOLERANCE: f64 = 0.07;

fn share_of_wan1(sources: &[IpAddr]) -> f64 {
    let counts = count_by_wan(sources, 2);
    assert_eq!(counts[&0], 0, "a source that is no WAN: {sources:?}");
    counts[&1] as f64 / sources.len() as f64
}

/// The LAN client got its address by SLAAC from the daemon's own router advertisements, and
/// 600 new IPv6 connections split 2:1 within 7 points, as 600 IPv4 ones do at the same time.
/// Long-lived connections of both families keep the WAN they started on.
#[test]
#[ignore = "needs root"]
fn ipv6_connections_split_by_weight_and_keep_their_wan() {
    let lab = Lab::up("v6a", LabOpts::default());
    let client6 = global_addrs6(&lab.lan(), "eth0");
    assert!(
        client6.contains(&format!("{LAN_CLIENT6}/64")) && client6.contains("dynamic"),
        "SLAAC address from the router's RAs:\n{client6}"
    );
    let dnsmasq = std::fs::read_to_string(lab.dir.join("state/dnsmasq.conf")).unwrap();
    assert!(dnsmasq.contains("enable-ra"), "{dnsmasq}");

    let server6 = TcpEchoServer::start(&lab.inet(), inet6(ECHO6));
    let server4 = TcpEchoServer::start(&lab.inet(), inet(ECHO4));
    let kept6 = EchoClient::connect_many(&lab.lan(), server6.addr, 30).expect("IPv6 connections");
    let kept4 = EchoClient::connect_many(&lab.lan(), server4.addr, 30).expect("IPv4 connections");

    let (lan, lan2) = (lab.lan(), lab.lan());
    let (a6, a4) = (server6.addr, server4.addr);
    let v6 = thread::spawn(move || probe_sources(&lan, a6, 600).expect("600 IPv6 connections"));
    let v4 = thread::spawn(move || probe_sources(&lan2, a4, 600).expect("600 IPv4 connections"));
    let (v6, v4) = (v6.join().unwrap(), v4.join().unwrap());
    let summary6 = assert_weighted_split(&v6, &[2, 1]);
    let summary4 = assert_weighted_split(&v4, &[2, 1]);
    let (s6, s4) = (share_of_wan1(&v6), share_of_wan1(&v4));
    println!("IPv6, 600 connections:\n{summary6}\nIPv4, 600 connections:\n{summary4}");
    println!("wan1 share: IPv6 {s6:.3}, IPv4 {s4:.3} (weights 2:1, expected 0.667)");
    for (family, share) in [("IPv6", s6), ("IPv4", s4)] {
        assert!(
            (share - 2.0 / 3.0).abs() <= SPLIT_TOLERANCE,
            "{family} wan1 share {share:.3} is not 0.667 ± {SPLIT_TOLERANCE}"
        );
    }
    assert!(
        v6.iter().all(IpAddr::is_ipv6),
        "IPv6 connections stayed IPv6 end to end"
    );

    for mut c in kept6.into_iter().chain(kept4) {
        let first = c.peer;
        for round in 0..3 {
            let seen = c.echo(&format!("still here {round}")).expect("echo");
            assert_eq!(seen, first, "a connection changed WAN");
        }
    }
    let marks: Vec<u32> = lab
        .conntrack_tcp6(ECHO6)
        .iter()
        .map(|e| e.mark & 0xff00)
        .collect();
    assert!(
        !marks.is_empty() && marks.iter().all(|m| [0x100, 0x200].contains(m)),
        "every IPv6 connection carries its WAN's mark: {marks:?}"
    );
}

/// Connections of one family, grouped by the WAN that carries them.
fn by_wan_peers(clients: &[EchoClient]) -> BTreeMap<usize, usize> {
    let peers: Vec<IpAddr> = clients.iter().map(|c| c.peer).collect();
    count_by_wan(&peers, 2)
}

/// wan1's IPv6 upstream dies silently (its IPv4 and carrier stay): within the fast profile's
/// detection wan1 leaves IPv6 service alone. Its IPv6 connections are reset, the IPv6 ones
/// on wan2 and every IPv4 connection (wan1's too) keep working, and new IPv6 connections all
/// take wan2 while IPv4 still uses both. When wan1's IPv6 comes back it is used again.
#[test]
#[ignore = "needs root"]
fn ipv6_failover_leaves_ipv4_and_the_other_wan_alone() {
    let lab = Lab::up("v6b", fast(2));
    let server6 = TcpEchoServer::start(&lab.inet(), inet6(ECHO6));
    let server4 = TcpEchoServer::start(&lab.inet(), inet(ECHO4));
    let conns6 = EchoClient::connect_many(&lab.lan(), server6.addr, 40).expect("IPv6");
    let conns4 = EchoClient::connect_many(&lab.lan(), server4.addr, 40).expect("IPv4");
    let (n6, n4) = (by_wan_peers(&conns6), by_wan_peers(&conns4));
    assert!(n6[&1] > 0 && n6[&2] > 0 && n4[&1] > 0, "{n6:?} {n4:?}");

    let cut = Instant::now();
    lab.isp_blackhole_families(1, Families::V6, true);
    let (status, _) = lab.wait_status("wan1's IPv6 out of service", DETECT, |s| {
        let v6 = &wan(s, "wan1")["ipv6"];
        (v6["usable"] == false && v6["state"] == "down").then(|| s.clone())
    });
    println!(
        "wan1 IPv6 out of service {:.0} ms after its upstream died",
        cut.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(status["active_wans6"], serde_json::json!(["wan2"]));
    assert_eq!(active_wans(&status), ["wan1", "wan2"], "IPv4 keeps both");
    assert_eq!(state(&status, "wan1"), "up");

    let mut by6 = by_wan(conns6, 2);
    let mut by4 = by_wan(conns4, 2);
    let lost_wan2_v6 = echo_failures(by6.get_mut(&2).unwrap(), "IPv6 on wan2");
    let lost_v4: Vec<String> = [1, 2]
        .iter()
        .flat_map(|i| echo_failures(by4.get_mut(i).unwrap(), "IPv4"))
        .collect();
    assert!(
        lost_wan2_v6.is_empty(),
        "IPv6 on wan2 lost: {lost_wan2_v6:?}"
    );
    assert!(lost_v4.is_empty(), "IPv4 lost: {lost_v4:?}");
    // wan1's IPv6 entries were reset (its clients reconnect through wan2), its IPv4 kept.
    let ct6: Vec<u32> = lab
        .conntrack_tcp6(ECHO6)
        .iter()
        .map(|e| e.mark & 0xff00)
        .collect();
    assert!(!ct6.contains(&0x100), "wan1's IPv6 entries left: {ct6:?}");
    let ct4 = lab.conntrack_tcp(ECHO4);
    assert!(ct4.iter().any(|e| e.mark & 0xff00 == 0x100), "{ct4:?}");

    let fresh6 = probe_sources(&lab.lan(), server6.addr, 30).expect("new IPv6");
    assert_eq!(
        count_by_wan(&fresh6, 2)[&2],
        30,
        "new IPv6 connections all via wan2"
    );
    let fresh4 = probe_sources(&lab.lan(), server4.addr, 60).expect("new IPv4");
    assert!(count_by_wan(&fresh4, 2)[&1] > 0, "IPv4 still uses wan1");

    lab.isp_blackhole_families(1, Families::V6, false);
    lab.wait_status("wan1's IPv6 back", RECOVER, |s| {
        (s["active_wans6"] == serde_json::json!(["wan1", "wan2"])).then_some(())
    });
    let back: Vec<IpAddr> = probe_sources(&lab.lan(), server6.addr, 60).expect("IPv6 again");
    assert!(
        count_by_wan(&back, 2)[&1] > 0,
        "new IPv6 connections use wan1 again"
    );
    let events = lab.events(0, None, Some("wan1"));
    let msgs: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("wan1 ipv6: ") && m.contains("-> down")),
        "{msgs:#?}"
    );
    assert!(
        !msgs
            .iter()
            .any(|m| m.starts_with("wan1: ") && m.contains("-> down")),
        "wan1's IPv4 never went down: {msgs:#?}"
    );
}

/// An IPv6 port forward opens a pinhole from the WANs it lists (wan2) to a LAN host's ULA;
/// wan1, not listed, stays closed. From the LAN, wan2's IPv6 address reaches the host too
/// (hairpin), answered through the router.
#[test]
#[ignore = "needs root"]
fn an_ipv6_port_forward_opens_a_pinhole_on_its_wans_only_and_by_hairpin() {
    let lab = Lab::up("v6c", LabOpts::default());
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    let fwd = format!(
        "{text}\n[[port_forwards]]\nname = \"web6\"\nprotocol = \"tcp\"\nwan_port = 8686\nto_port = {ECHO6}\nfamily = \"ipv6\"\nto6 = \"{LAN_CLIENT6}\"\nwans = [\"wan2\"]\n"
    );
    std::fs::write(lab.config_path(), fwd).unwrap();
    let reply = lab
        .control(&routeros_shared::control::Request::Reload)
        .expect("reload");
    assert_eq!(reply["ok"], true, "{reply}");
    let server = TcpEchoServer::start(&lab.lan(), SocketAddr::from((LAN_CLIENT6, ECHO6)));
    let via_wan2 = SocketAddr::from((wan_addr6(2), 8686));
    let deadline = Instant::now() + Duration::from_secs(5);
    let peer = loop {
        match EchoClient::connect(&lab.inet(), via_wan2) {
            Ok(c) => break c.peer,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the pinhole on wan2 does not answer: {e}"),
        }
    };
    assert!(
        peer.is_ipv6() && !matches!(peer, IpAddr::V6(a) if a.segments()[0] == 0xfd7a),
        "the LAN host sees the internet host's address: {peer}"
    );
    assert_eq!(server.peers().len(), 1);
    // Hairpin: the LAN host itself, through wan2's public IPv6 address. The router translates
    // the source to its own LAN address, so the reply comes back through it.
    let hairpin = EchoClient::connect(&lab.lan(), via_wan2).expect("hairpin through wan2");
    assert_eq!(
        hairpin.peer,
        IpAddr::V6(LAN_ROUTER6),
        "the LAN host sees the router's LAN address"
    );
    let via_wan1 = SocketAddr::from((wan_addr6(1), 8686));
    assert!(
        tcp_connect(&lab.inet(), via_wan1, Duration::from_millis(500)).is_err(),
        "no pinhole on wan1"
    );
}

/// Policies apply per family: one that names no address (TCP to port ECHO_BOTH, via wan1)
/// takes IPv4 and IPv6 alike; one with the client's IPv6 address (via wan2) takes all its
/// IPv6 connections and none of its IPv4 ones, which are still balanced.
#[test]
#[ignore = "needs root"]
fn policies_match_ipv6_by_their_addresses_and_both_families_without() {
    const ECHO_BOTH: u16 = 5603;
    let lab = Lab::up("v6d", LabOpts::default());
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    let policies = format!(
        "{text}\n[[policies]]\nname = \"both\"\nprotocol = \"tcp\"\ndst_port = {ECHO_BOTH}\nvia = [\"wan1\"]\n\n[[policies]]\nname = \"client6\"\nsrc = \"{LAN_CLIENT6}\"\nvia = [\"wan2\"]\n"
    );
    std::fs::write(lab.config_path(), policies).unwrap();
    let reply = lab
        .control(&routeros_shared::control::Request::Reload)
        .expect("reload");
    assert_eq!(reply["ok"], true, "{reply}");

    let servers = [inet6(ECHO6), inet(ECHO4), inet6(ECHO_BOTH), inet(ECHO_BOTH)]
        .map(|addr| TcpEchoServer::start(&lab.inet(), addr));
    let by_wan = |server: &TcpEchoServer| {
        let sources = probe_sources(&lab.lan(), server.addr, 60).expect("60 connections");
        count_by_wan(&sources, 2)
    };
    let [v6, v4, both6, both4] = servers.each_ref().map(by_wan);
    println!("per WAN: IPv6 {v6:?}, IPv4 {v4:?}, port {ECHO_BOTH}: IPv6 {both6:?} IPv4 {both4:?}");
    assert_eq!((v6[&1], v6[&2]), (0, 60), "the client's IPv6 goes by wan2");
    assert!(v4[&1] > 0 && v4[&2] > 0, "its IPv4 is balanced: {v4:?}");
    assert_eq!(
        (both6[&1], both6[&2]),
        (60, 0),
        "port {ECHO_BOTH} over IPv6 by wan1"
    );
    assert_eq!(
        (both4[&1], both4[&2]),
        (60, 0),
        "port {ECHO_BOTH} over IPv4 by wan1"
    );
}
