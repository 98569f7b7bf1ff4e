//! End to end: the daemon built for this test run routes a namespace lab (`ci/lab.sh`) and
//! real traffic from the LAN client proves what it does. Every test builds its own lab with
//! its own prefix, so the tests can run in parallel. Root only: `#[ignore = "needs root"]`.
//!
//!     sudo cargo test -p routeros-daemon --test lab_routing -- --include-ignored --test-threads=2

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::lab::*;
use routeros_shared::control::Request;

const UDP_PORT: u16 = 5002;

fn wans_seen(sources: &[IpAddr], wans: usize) -> BTreeSet<usize> {
    sources
        .iter()
        .filter_map(|ip| wan_index(*ip, wans))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn lan_reaches_internet_through_both_wans() {
    let lab = Lab::up("t1", LabOpts::default());
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let second = TcpEchoServer::start(&lab.inet(), SocketAddr::from((INET_HOST2, ECHO_PORT)));

    // Keep opening connections until both WANs carried one: at least 5, at most 60. With
    // weights 2:1 the chance that 60 all take one WAN is (2/3)^60 < 1e-10.
    let mut sources = Vec::new();
    for i in 0..60 {
        let mut c = EchoClient::connect(&lab.lan(), server.addr)
            .unwrap_or_else(|e| panic!("connection {i} from the LAN to {}: {e}", server.addr));
        let echoed = c
            .echo(&format!("hello {i}"))
            .expect("echo over the routed connection");
        assert_eq!(
            echoed, c.peer,
            "the server's view of the peer changed mid-connection"
        );
        sources.push(c.peer);
        if i >= 4 && wans_seen(&sources, 2).len() == 2 {
            break;
        }
    }
    let counts = count_by_wan(&sources, 2);
    println!(
        "{} connections, per WAN (0 = unknown source): {counts:?}",
        sources.len()
    );
    assert_eq!(
        wans_seen(&sources, 2),
        BTreeSet::from([1, 2]),
        "both WANs must carry LAN traffic; sources seen: {sources:?} (counts {counts:?})"
    );
    assert_eq!(
        counts[&0], 0,
        "sources that are no WAN address: {sources:?}"
    );
    assert_eq!(
        server.peers(),
        sources,
        "server-side record matches what the clients were told"
    );

    // The second internet address is reachable too.
    let c = EchoClient::connect(&lab.lan(), second.addr).expect("LAN reaches 203.0.113.11");
    assert!(
        wan_index(c.peer, 2).is_some(),
        "masqueraded source {}",
        c.peer
    );
}

#[test]
#[ignore = "needs root"]
fn new_connections_split_by_weight() {
    let lab = Lab::up("t2", LabOpts::default());
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let started = Instant::now();
    let sources = probe_sources(&lab.lan(), server.addr, 300).expect("300 LAN connections");
    let summary = assert_weighted_split(&sources, &[2, 1]);
    println!(
        "300 new connections in {:.2}s, weights 2:1:\n{summary}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "needs root"]
fn three_wans_split_by_weight() {
    let weights = vec![3, 2, 1];
    let lab = Lab::up(
        "t7",
        LabOpts {
            wans: 3,
            weights: weights.clone(),
            ..LabOpts::default()
        },
    );
    let nft = lab.nft_table();
    assert!(
        nft.contains(
            "numgen random mod 6 map { 0-2 : 0x00000100, 3-4 : 0x00000200, 5 : 0x00000300 }"
        ),
        "weighted map over three WANs (3:2:1 -> slots 0-2, 3-4, 5):\n{nft}"
    );
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let sources = probe_sources(&lab.lan(), server.addr, 300).expect("300 LAN connections");
    let summary = assert_weighted_split(&sources, &weights);
    println!("300 new connections, weights 3:2:1:\n{summary}");
    assert_eq!(
        wans_seen(&sources, 3),
        BTreeSet::from([1, 2, 3]),
        "{summary}"
    );
}

#[test]
#[ignore = "needs root"]
fn connections_keep_their_wan() {
    let lab = Lab::up("t3", LabOpts::default());
    let recorder = UdpRecorder::start(&lab.inet(), inet(UDP_PORT));
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    // (a) and (b) run side by side: both take ~3 s of wall time.
    thread::scope(|s| {
        let udp = s.spawn(|| udp_flows_keep_their_wan(&lab, &recorder));
        let tcp = s.spawn(|| tcp_connections_keep_their_wan(&lab, &server));
        for (what, h) in [("udp", udp), ("tcp", tcp)] {
            if let Err(p) = h.join() {
                eprintln!("{what} part failed");
                std::panic::resume_unwind(p);
            }
        }
    });
}

/// 40 UDP flows (one local port each), 20 datagrams each, one every 100 ms.
fn udp_flows_keep_their_wan(lab: &Lab, recorder: &UdpRecorder) {
    const FLOWS: usize = 40;
    const ROUNDS: usize = 20;
    let sockets: Vec<UdpSocket> = in_ns(&lab.lan(), || {
        (0..FLOWS)
            .map(|_| UdpSocket::bind("0.0.0.0:0"))
            .collect::<io::Result<_>>()
    })
    .expect("UDP sockets in the LAN namespace");
    let ports: BTreeSet<u16> = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    assert_eq!(ports.len(), FLOWS, "each flow has its own local port");

    let start = Instant::now();
    for round in 0..ROUNDS {
        for (flow, sock) in sockets.iter().enumerate() {
            sock.send_to(format!("flow {flow} seq {round}").as_bytes(), recorder.addr)
                .unwrap_or_else(|e| panic!("send flow {flow} seq {round}: {e}"));
        }
        // Pace by the clock, not by sleeps that add up.
        let next = start + Duration::from_millis(100 * (round as u64 + 1));
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }

    let got = recorder.wait_for(FLOWS * ROUNDS, Duration::from_secs(5));
    let mut by_flow: BTreeMap<usize, (BTreeSet<IpAddr>, usize)> = BTreeMap::new();
    for (from, payload) in &got {
        let flow: usize = payload
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("unexpected datagram {payload:?} from {from}"));
        let entry = by_flow.entry(flow).or_default();
        entry.0.insert(from.ip());
        entry.1 += 1;
    }
    let per_wan = count_by_wan(
        &by_flow
            .values()
            .filter_map(|(ips, _)| ips.iter().next().copied())
            .collect::<Vec<_>>(),
        2,
    );
    println!(
        "UDP: {} of {} datagrams arrived; flows per WAN (0 = unknown): {per_wan:?}",
        got.len(),
        FLOWS * ROUNDS
    );
    let split: Vec<String> = by_flow
        .iter()
        .filter(|(_, (ips, _))| ips.len() != 1)
        .map(|(flow, (ips, _))| format!("flow {flow} came from {ips:?}"))
        .collect();
    assert!(split.is_empty(), "flows changed WAN: {split:?}");
    let short: Vec<String> = (0..FLOWS)
        .filter_map(|f| {
            let n = by_flow.get(&f).map_or(0, |e| e.1);
            (n != ROUNDS).then(|| format!("flow {f}: {n}/{ROUNDS}"))
        })
        .collect();
    assert!(short.is_empty(), "datagrams missing: {short:?}");
    assert_eq!(per_wan[&0], 0, "flows from unknown sources: {by_flow:?}");
    assert!(
        per_wan[&1] > 0 && per_wan[&2] > 0,
        "both WANs must carry UDP flows: {per_wan:?}"
    );

    // Every echo came back through the same NAT mapping to its own socket.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut replies = vec![0usize; FLOWS];
    let mut buf = [0u8; 256];
    for (flow, sock) in sockets.iter().enumerate() {
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        while replies[flow] < ROUNDS && Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    assert_eq!(from, recorder.addr, "reply from the server address");
                    assert!(
                        text.starts_with(&format!("flow {flow} ")),
                        "flow {flow} got {text:?}"
                    );
                    replies[flow] += 1;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("flow {flow}: receiving replies: {e}"),
            }
        }
    }
    let missing: Vec<String> = replies
        .iter()
        .enumerate()
        .filter(|(_, &n)| n != ROUNDS)
        .map(|(f, n)| format!("flow {f}: {n}/{ROUNDS}"))
        .collect();
    assert!(missing.is_empty(), "echo replies missing: {missing:?}");
}

/// 20 TCP connections exchanging a message every 100 ms for 3 s.
fn tcp_connections_keep_their_wan(lab: &Lab, server: &TcpEchoServer) {
    const CONNS: usize = 20;
    const ROUNDS: usize = 30;
    let mut clients =
        EchoClient::connect_many(&lab.lan(), server.addr, CONNS).expect("20 TCP connections");
    let first: Vec<IpAddr> = clients.iter().map(|c| c.peer).collect();
    let start = Instant::now();
    let mut broken = Vec::new();
    let mut moved = Vec::new();
    for round in 0..ROUNDS {
        for (i, c) in clients.iter_mut().enumerate() {
            if broken.iter().any(|(j, _, _)| *j == i) {
                continue;
            }
            match c.echo(&format!("conn {i} round {round}")) {
                Ok(peer) if peer == first[i] => {}
                Ok(peer) => moved.push(format!("conn {i} round {round}: {} -> {peer}", first[i])),
                Err(e) => broken.push((i, round, e.to_string())),
            }
        }
        let next = start + Duration::from_millis(100 * (round as u64 + 1));
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    println!(
        "TCP: {CONNS} connections x {ROUNDS} exchanges in {:.1}s; per WAN: {:?}",
        start.elapsed().as_secs_f64(),
        count_by_wan(&first, 2)
    );
    assert!(
        broken.is_empty(),
        "connections broke (conn, round, error): {broken:?}"
    );
    assert!(moved.is_empty(), "connections changed peer: {moved:?}");
    assert_eq!(count_by_wan(&first, 2)[&0], 0, "unknown sources: {first:?}");
}

#[test]
#[ignore = "needs root"]
fn wan_side_cannot_reach_lan_or_management() {
    let lab = Lab::up("t4", LabOpts::default());
    let mgmt_ports = [22u16, 8080, 8081];
    // Listeners only; the kernel completes handshakes into the backlog without accept().
    let _router_listeners: Vec<TcpListener> = in_ns(&lab.rtr(), || {
        mgmt_ports
            .iter()
            .map(|p| TcpListener::bind(("0.0.0.0", *p)))
            .collect::<io::Result<_>>()
    })
    .expect("listeners on the router's management ports");
    let _lan_listener = in_ns(&lab.lan(), || TcpListener::bind(("0.0.0.0", 8000)))
        .expect("listener on the LAN client");
    let lan_service = SocketAddr::from((LAN_CLIENT, 8000));

    // Positive controls: the listeners are there and reachable from the inside.
    for port in mgmt_ports {
        let to = SocketAddr::from((LAN_ROUTER, port));
        tcp_connect(&lab.lan(), to, CONNECT_TIMEOUT)
            .unwrap_or_else(|e| panic!("LAN client must reach the router's {to}: {e}"));
    }
    tcp_connect(&lab.rtr(), lan_service, CONNECT_TIMEOUT)
        .unwrap_or_else(|e| panic!("router must reach the LAN service {lan_service}: {e}"));

    // The WAN side: isp1 is wan1's next hop; give it a route to the LAN through the router.
    run_ok(
        "ip",
        &[
            "-n",
            &lab.isp(1),
            "route",
            "add",
            "192.168.1.0/24",
            "via",
            "192.0.2.2",
        ],
    );
    let dropped_before = wan_input_drops(&lab);
    let wan1 = wan_addr(1);
    let mut targets = vec![lan_service, SocketAddr::from((LAN_ROUTER, 8080))];
    targets.extend(mgmt_ports.iter().map(|&p| SocketAddr::from((wan1, p))));
    let isp1 = lab.isp(1);
    let results: Vec<(SocketAddr, io::Result<()>)> = thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|&to| {
                let ns = isp1.clone();
                s.spawn(move || {
                    let r = tcp_connect(&ns, to, Duration::from_secs(1)).map(drop);
                    (to, r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let reached: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(to, _)| to.to_string())
        .collect();
    for (to, r) in &results {
        println!("from {isp1} to {to}: {r:?}");
    }
    assert!(
        reached.is_empty(),
        "the WAN side reached {reached:?} (must be filtered); all results: {results:?}"
    );
    // The attempts to the router itself reached it and were dropped by our WAN input chain
    // (not lost on the way): at least one SYN each to 192.0.2.2:22/8080/8081 and 192.168.1.1:8080.
    let dropped_after = wan_input_drops(&lab);
    assert!(
        dropped_after >= dropped_before + 4,
        "wan_input drop counter went from {dropped_before} to {dropped_after}; expected >= 4 more"
    );
}

/// The packet count of the `counter drop` rule in chain `wan_input`.
fn wan_input_drops(lab: &Lab) -> u64 {
    let chain = run_ok(
        "ip",
        &[
            "netns",
            "exec",
            &lab.rtr(),
            "nft",
            "list",
            "chain",
            "inet",
            "routeros",
            "wan_input",
        ],
    );
    chain
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("counter packets ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `counter packets N` in wan_input:\n{chain}"))
}

#[test]
#[ignore = "needs root"]
fn daemon_restart_keeps_established_connections() {
    let lab = Lab::up("t6", LabOpts::default());
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let mut clients =
        EchoClient::connect_many(&lab.lan(), server.addr, 10).expect("10 TCP connections");
    let peers: Vec<IpAddr> = clients.iter().map(|c| c.peer).collect();
    println!("10 connections, per WAN: {:?}", count_by_wan(&peers, 2));
    let echo_all = |clients: &mut [EchoClient], phase: &str| {
        let failures: Vec<String> = clients
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| match c.echo(&format!("{phase} {i}")) {
                Ok(peer) if peer == peers[i] => None,
                Ok(peer) => Some(format!("conn {i}: peer {} became {peer}", peers[i])),
                Err(e) => Some(format!("conn {i}: {e}")),
            })
            .collect();
        assert!(failures.is_empty(), "{phase}: {failures:?}");
    };
    echo_all(&mut clients, "before");
    let before = lab.kernel_state();

    lab.daemon_stop();
    assert!(
        lab.control(&Request::Status).is_err(),
        "the daemon must be gone after daemon-stop"
    );
    // Fail-static: the kernel keeps routing while the daemon is away.
    assert_state_eq(&before, &lab.kernel_state(), "when the daemon stopped");
    echo_all(&mut clients, "daemon-down");
    let fresh = probe_sources(&lab.lan(), server.addr, 5).expect("new connections while down");
    assert_eq!(count_by_wan(&fresh, 2)[&0], 0, "{fresh:?}");

    lab.daemon_start();
    echo_all(&mut clients, "after-restart");
    assert_state_eq(&before, &lab.kernel_state(), "after the restart");
    let status = lab.control(&Request::Status).expect("status after restart");
    assert_eq!(
        status["active_wans"],
        serde_json::json!(["wan1", "wan2"]),
        "{status}"
    );
}

/// Conntrack marks must name the WAN a connection really uses, or a failover flushes the
/// wrong connections: connections to a WAN's own subnet (the ISP's modem) bypass the pick
/// and are marked by their egress interface, as are the router's own connections.
#[test]
#[ignore = "needs root"]
fn conntrack_marks_match_the_wan_used() {
    let lab = Lab::up("t8", LabOpts::default());
    let modem = SocketAddr::from(([198, 51, 100, 1], ECHO_PORT));
    let server = TcpEchoServer::start(&lab.isp(2), modem);
    let clients = EchoClient::connect_many(&lab.lan(), server.addr, 12).expect("LAN -> isp2 modem");
    let marks = |filter: &[&str]| -> Vec<String> {
        let mut args = vec!["netns", "exec", "", "conntrack", "-L", "-p", "tcp"];
        let rtr = lab.rtr();
        args[2] = &rtr;
        args.extend_from_slice(filter);
        let out = Command::new("ip")
            .args(&args)
            .output()
            .expect("conntrack -L");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("mark="))
                    .map(str::to_string)
            })
            .collect()
    };
    let modem_marks = marks(&["--dst", "198.51.100.1", "--dport", &ECHO_PORT.to_string()]);
    assert_eq!(modem_marks.len(), 12, "conntrack entries: {modem_marks:?}");
    assert!(
        modem_marks.iter().all(|m| m == "mark=512"),
        "connections to wan2's subnet must carry wan2's mark 0x200: {modem_marks:?}"
    );
    drop(clients);

    // The router's own connections through the weighted main default.
    let inet_server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let own = EchoClient::connect_many(&lab.rtr(), inet_server.addr, 12).expect("router -> inet");
    for c in &own {
        let want = match wan_index(c.peer, 2) {
            Some(1) => "mark=256",
            Some(2) => "mark=512",
            other => panic!("router connection left by no WAN: {} ({other:?})", c.peer),
        };
        let port = c.local_port().to_string();
        let got = marks(&["--dst", "203.0.113.10", "--sport", &port]);
        assert_eq!(
            got,
            [want],
            "router connection from port {port} left via {}",
            c.peer
        );
    }

    // The health probes (the router's own pings, one entry each) stay unmarked: a WAN's
    // connection count and a failover's flush are about its users' connections only.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.rtr(), "conntrack", "-L", "-p", "icmp"])
        .output()
        .expect("conntrack -L -p icmp");
    let probes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("src=192.0.2.2") || l.contains("src=198.51.100.2"))
        .map(str::to_string)
        .collect();
    assert!(!probes.is_empty(), "no probe entries in conntrack");
    assert!(
        probes.iter().all(|l| l.contains("mark=0 ")),
        "probe entries must be unmarked: {probes:#?}"
    );
}
