//! IPv6 on the WANs. WAN ports keep IPv6 (link-local always, SLAAC when the ISP sends RAs),
//! so the firewall must hold for IPv6 as it does for IPv4: a full TCP and UDP scan (nmap) from
//! the ISP side finds nothing open on the router's WAN link-local and global addresses, while
//! the LAN reaches the same listeners over IPv6; neighbour discovery and ping still work; new
//! IPv6 connections from a WAN are not forwarded. And a router upgraded from the IPv4-only
//! `table ip routeros` ends up with only `table inet routeros`. Root only.
//!
//!     sudo cargo test -p routeros-daemon --test lab_firewall6 -- --include-ignored --test-threads=2

mod common;

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::lab::*;

/// A globally routed LAN prefix beside the lab's ULA, as an ISP that routes a prefix to the
/// router would have it: the router and the client.
const LAN6_RTR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const LAN6_CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
/// TCP listeners on `::` in the router: sshd's port, the web ports and an unfiltered high port.
const TCP_PORTS: [u16; 4] = [22, 8080, 8081, 40000];
/// A UDP echo listener on `::` in the router.
const UDP_PORT: u16 = 40001;
/// A TCP listener on `::` on the LAN client and on the ISP, for the forward checks.
const SERVICE_PORT: u16 = 8000;

/// The lab's IPv6 (its default) has the ISP's wan1 address, the router's SLAAC address there
/// (`up` waited for it) and the LAN client's default route from the router's RAs. On top, a
/// global LAN prefix the ISP routes to the router. Link-local addresses come from the kernel.
fn give_ipv6(lab: &Lab) {
    assert!(lab.opts.ipv6, "these tests use the lab's IPv6 plan");
    let (rtr, isp, lan) = (lab.rtr(), lab.isp(1), lab.lan());
    let wan1 = run_ok(
        "ip",
        &["-6", "-n", &rtr, "-o", "addr", "show", "dev", "wan1"],
    );
    assert!(
        wan1.contains(&format!(" {}/64 ", wan_addr6(1))),
        "the lab's SLAAC address {} is not on wan1:\n{wan1}",
        wan_addr6(1)
    );
    // The client's address first: the lab's RA server on lan0 announces every prefix lan0
    // has, and the client would make this very address by SLAAC (identifier ::100) and
    // hold it tentative for a moment, so a connection right away would pick the ULA source.
    add_addr(&lan, "eth0", LAN6_CLIENT);
    add_addr(&rtr, "lan0", LAN6_RTR);
    let lan_prefix = "2001:db8:1::/64";
    run_ok(
        "ip",
        &[
            "-6",
            "-n",
            &isp,
            "route",
            "add",
            lan_prefix,
            "via",
            &wan_addr6(1).to_string(),
        ],
    );
}

/// `ADDR/64` on DEV in NS, without duplicate address detection (usable at once).
fn add_addr(ns: &str, dev: &str, addr: Ipv6Addr) {
    let cidr = format!("{addr}/64");
    run_ok(
        "ip",
        &["-6", "-n", ns, "addr", "add", &cidr, "dev", dev, "nodad"],
    );
}

/// DEV's link-local address in NS, once duplicate address detection is over.
fn link_local(ns: &str, dev: &str) -> Ipv6Addr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run_ok(
            "ip",
            &[
                "-6", "-n", ns, "-o", "addr", "show", "dev", dev, "scope", "link",
            ],
        );
        let usable = out
            .lines()
            .find(|l| !l.contains("tentative"))
            .and_then(|l| {
                let cidr = l.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
                cidr.split('/').next()?.parse().ok()
            });
        if let Some(addr) = usable {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "no usable link-local address on {dev} in {ns}:\n{out}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// The interface index of DEV in NS (the scope of a link-local address).
fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = run_ok("ip", &["-n", ns, "-o", "link", "show", "dev", dev]);
    out.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex in {out:?}"))
}

/// A UDP listener that sends every datagram back (so a scanner sees the port open).
struct UdpEcho {
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl UdpEcho {
    fn start(ns: &str, addr: SocketAddr) -> Self {
        let socket = in_ns(ns, || UdpSocket::bind(addr)).expect("UDP echo socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], peer);
                }
            }
        });
        Self {
            stop,
            worker: Some(worker),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// TCP listeners on `::` for `ports` in NS (the kernel completes handshakes into the backlog,
/// no accept needed) and the UDP echo on UDP_PORT.
fn router_listeners(ns: &str) -> (Vec<TcpListener>, UdpEcho) {
    let tcp = in_ns(ns, || {
        TCP_PORTS
            .iter()
            .map(|p| TcpListener::bind((Ipv6Addr::UNSPECIFIED, *p)))
            .collect::<io::Result<Vec<_>>>()
    })
    .expect("TCP listeners on :: in the router");
    let udp = UdpEcho::start(ns, SocketAddr::from((Ipv6Addr::UNSPECIFIED, UDP_PORT)));
    (tcp, udp)
}

/// What nmap reported for one target.
#[derive(Debug)]
struct Scan {
    open: Vec<u16>,
    closed: Vec<u16>,
    /// Ports nmap accounted for (listed plus "Ignored State" count): the scan was complete.
    total: usize,
    grepable: String,
}

/// `nmap -6 KIND -p PORTS TARGET` from NS (KIND: -sS for TCP SYN, -sU for UDP). A port that
/// answers is `open` (a listener) or `closed` (RST / port unreachable: the host's stack was
/// reached); a port the firewall drops is `filtered` (TCP) or `open|filtered` (UDP).
fn nmap(ns: &str, kind: &str, ports: &str, target: &str) -> Scan {
    let started = Instant::now();
    let grepable = run_ok(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "nmap",
            "-6",
            "-n",
            "-Pn",
            kind,
            "-p",
            ports,
            "--max-retries",
            "1",
            "--min-rate",
            "20000",
            "-oG",
            "-",
            target,
        ],
    );
    let line = grepable
        .lines()
        .find(|l| l.contains("\tPorts: ") || l.contains("\tIgnored State: "))
        .unwrap_or_else(|| panic!("nmap {kind} {target} from {ns}: no port line in\n{grepable}"));
    let mut scan = Scan {
        open: Vec::new(),
        closed: Vec::new(),
        total: 0,
        grepable: grepable.clone(),
    };
    for field in line.split('\t') {
        if let Some(list) = field.strip_prefix("Ports: ") {
            for entry in list.split(", ").filter(|e| !e.trim().is_empty()) {
                let mut parts = entry.trim().split('/');
                let port: u16 = parts.next().unwrap().parse().expect("port number");
                match parts.next() {
                    Some("open") => scan.open.push(port),
                    Some("closed") => scan.closed.push(port),
                    _ => {}
                }
                scan.total += 1;
            }
        } else if let Some(ignored) = field.strip_prefix("Ignored State: ") {
            let count = ignored
                .rsplit('(')
                .next()
                .and_then(|c| c.trim_end_matches(')').parse::<usize>().ok())
                .unwrap_or_else(|| panic!("cannot read {field:?}"));
            scan.total += count;
        }
    }
    println!(
        "nmap {kind} -p {ports} {target} from {ns} ({:.1}s): open {:?}, closed {:?}, {} ports",
        started.elapsed().as_secs_f64(),
        scan.open,
        scan.closed,
        scan.total
    );
    scan
}

/// The packet count of the `counter drop` rule in chain `wan_input`.
fn wan_input_drops(lab: &Lab) -> u64 {
    let chain = lab.nft_chain("wan_input");
    chain
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("counter packets ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `counter packets N` in wan_input:\n{chain}"))
}

/// `ping -6 -c 1` from NS; true if it was answered (panics if ping cannot run).
fn ping6(ns: &str, target: &str) -> bool {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "2", target,
        ])
        .output()
        .expect("run ip netns exec ping");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("exec of"),
        "cannot run ping (iputils-ping installed?): {stderr}"
    );
    out.status.success()
}

#[test]
#[ignore = "needs root"]
fn wan_ipv6_scan_finds_nothing_open_and_lan_reaches_the_same_listeners() {
    let lab = Lab::up("s6", LabOpts::default());
    give_ipv6(&lab);
    let (rtr, isp, lan) = (lab.rtr(), lab.isp(1), lab.lan());
    let rtr_wan_ll = link_local(&rtr, "wan1");
    let rtr_lan_ll = link_local(&rtr, "lan0");
    link_local(&isp, "down");
    link_local(&lan, "eth0");
    let _listeners = router_listeners(&rtr);
    let tcp_list = "22,8080,8081,40000";

    // Positive controls: the same scanner finds the listeners from the LAN, over the LAN
    // link-local address and the LAN global address.
    for target in [format!("{rtr_lan_ll}%eth0"), LAN6_RTR.to_string()] {
        let tcp = nmap(&lan, "-sS", tcp_list, &target);
        assert_eq!(
            tcp.open, TCP_PORTS,
            "TCP from the LAN to {target}:\n{}",
            tcp.grepable
        );
        let udp = nmap(&lan, "-sU", &UDP_PORT.to_string(), &target);
        assert_eq!(
            udp.open,
            [UDP_PORT],
            "UDP from the LAN to {target}:\n{}",
            udp.grepable
        );
    }

    // The WAN side: every TCP and UDP port of the router's WAN link-local and global address.
    let dropped_before = wan_input_drops(&lab);
    let mut scans = 0;
    for target in [format!("{rtr_wan_ll}%down"), wan_addr6(1).to_string()] {
        for kind in ["-sS", "-sU"] {
            let scan = nmap(&isp, kind, "1-65535", &target);
            assert!(
                scan.open.is_empty() && scan.closed.is_empty(),
                "nmap {kind} from the ISP reached {target}: open {:?}, closed {:?}\n{}",
                scan.open,
                scan.closed,
                scan.grepable
            );
            assert_eq!(scan.total, 65535, "incomplete scan:\n{}", scan.grepable);
            scans += 1;
        }
    }
    // The probes reached the router and our WAN input chain dropped them (not lost on the
    // way). nmap sends an unanswered port a second probe (--max-retries 1), so this is about
    // twice the bound.
    let dropped = wan_input_drops(&lab) - dropped_before;
    println!("wan_input dropped {dropped} packets during {scans} full scans");
    assert!(
        dropped >= scans * 65535,
        "wan_input dropped {dropped} packets during {scans} full scans"
    );
}

/// RFC 4890 section 4.4: neighbour discovery and echo must not be dropped. Echo requests are
/// answered from the WAN as for IPv4 (no rate limit on one family only: the IPv4 path answers
/// pings already, and the kernel's own ICMP limits apply).
#[test]
#[ignore = "needs root"]
fn neighbour_discovery_and_ping_work_on_the_wan() {
    let lab = Lab::up("n6", LabOpts::default());
    give_ipv6(&lab);
    let (rtr, isp) = (lab.rtr(), lab.isp(1));
    let rtr_wan_ll = link_local(&rtr, "wan1");
    let isp_ll = link_local(&isp, "down");
    link_local(&lab.lan(), "eth0");
    let flush = || {
        run_ok("ip", &["-6", "-n", &rtr, "neigh", "flush", "dev", "wan1"]);
        run_ok("ip", &["-6", "-n", &isp, "neigh", "flush", "dev", "down"]);
    };
    // Each ping after a flush needs a neighbour solicitation and advertisement first: the
    // ISP's into the router's input (ISP -> router), the router's answer to its own (router
    // -> ISP).
    for (ns, target) in [
        (&isp, format!("{rtr_wan_ll}%down")),
        (&isp, wan_addr6(1).to_string()),
        (&rtr, format!("{isp_ll}%wan1")),
        (&rtr, wan_isp6(1).to_string()),
    ] {
        flush();
        assert!(ping6(ns, &target), "ping -6 {target} from {ns} unanswered");
    }
}

/// IPv6 is not routed yet: new connections from a WAN are dropped in forward (policy drop,
/// both families) even when the kernel would forward them; the LAN may still open connections
/// out, as on IPv4.
#[test]
#[ignore = "needs root"]
fn new_ipv6_from_the_wan_is_not_forwarded() {
    let lab = Lab::up("f6", LabOpts::default());
    give_ipv6(&lab);
    let (rtr, isp, lan) = (lab.rtr(), lab.isp(1), lab.lan());
    link_local(&rtr, "wan1");
    link_local(&isp, "down");
    link_local(&lan, "eth0");
    // The kernel forwards IPv6 (the lab sets it; set here too, as the check depends on it):
    // only the firewall decides.
    run_ok(
        "ip",
        &[
            "netns",
            "exec",
            &rtr,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
        ],
    );
    let bind = |ns: &str| {
        in_ns(ns, || {
            TcpListener::bind((Ipv6Addr::UNSPECIFIED, SERVICE_PORT))
        })
        .unwrap_or_else(|e| panic!("listener in {ns}: {e}"))
    };
    let (_lan_service, _isp_service) = (bind(&lan), bind(&isp));

    // Positive control: LAN -> ISP crosses the router (so routes and forwarding are right).
    let out = SocketAddr::from((wan_isp6(1), SERVICE_PORT));
    tcp_connect(&lan, out, CONNECT_TIMEOUT)
        .unwrap_or_else(|e| panic!("LAN must reach {out} over IPv6: {e}"));

    for to in [
        SocketAddr::from((LAN6_CLIENT, SERVICE_PORT)),
        SocketAddr::from((LAN6_RTR, 22)),
    ] {
        let r = tcp_connect(&isp, to, Duration::from_secs(1));
        assert!(r.is_err(), "the ISP side reached {to} over IPv6: {r:?}");
    }
}

/// The table of versions before `inet`, as the previous release rendered it for this lab's
/// names (wan1, wan2, lan0): IPv4 only.
const LEGACY_TABLE: &str = r#"add table ip routeros
delete table ip routeros
table ip routeros {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		iifname "lan0" ct state new ct mark & 0xff00 == 0x0 fib daddr type != local ip daddr != { 192.168.1.0/24, 192.0.2.0/29, 198.51.100.0/29 } jump choose_wan
		iifname "wan1" ct state new ct mark & 0xff00 == 0x0 ct mark set 0x100
		iifname "wan2" ct state new ct mark & 0xff00 == 0x0 ct mark set 0x200
		ct mark & 0xff00 != 0x0 meta mark set ct mark & 0xff00
	}

	chain choose_wan {
		ct mark set numgen random mod 3 map { 0-1 : 0x100, 2 : 0x200 }
	}

	chain output {
		type route hook output priority mangle; policy accept;
		ct mark & 0xff00 != 0x0 meta mark set ct mark & 0xff00
	}

	chain egress {
		type filter hook postrouting priority mangle; policy accept;
		fib saddr type local icmp type echo-request accept
		oifname "wan1" ct state new ct mark & 0xff00 == 0x0 ct mark set 0x100
		oifname "wan2" ct state new ct mark & 0xff00 == 0x0 ct mark set 0x200
	}

	chain input {
		type filter hook input priority filter; policy accept;
		iif "lo" accept
		ct state established,related accept
		ct state invalid drop
		iifname { "wan1", "wan2" } jump wan_input
		iifname != "lan0" tcp dport { 22, 8080, 8081 } drop
	}

	chain wan_input {
		icmp type { echo-request, echo-reply, destination-unreachable, time-exceeded } accept
		udp sport 67 udp dport 68 accept
		counter drop
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan0" oifname { "wan1", "wan2" } accept
		ct status dnat accept
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan1" masquerade
		oifname "wan2" masquerade
	}
}
"#;

fn nft_tables(ns: &str) -> String {
    run_ok("ip", &["netns", "exec", ns, "nft", "list", "tables"])
}

/// A router upgraded from the IPv4-only table: the daemon's first apply replaces it (one nft
/// transaction deletes it and creates ours), and a restart adopts the inet table as it is.
#[test]
#[ignore = "needs root"]
fn upgrade_from_the_ipv4_table_leaves_only_the_inet_table() {
    let lab = Lab::up(
        "m6",
        LabOpts {
            no_daemon: true,
            ..LabOpts::default()
        },
    );
    let (rtr, isp) = (lab.rtr(), lab.isp(1));
    nft_in(&rtr, LEGACY_TABLE);
    assert_eq!(nft_tables(&rtr), "table ip routeros\n");
    let ssh = in_ns(&rtr, || TcpListener::bind((Ipv6Addr::UNSPECIFIED, 22))).expect("listener");
    let rtr_wan_ll = link_local(&rtr, "wan1");
    link_local(&isp, "down");
    let to = SocketAddr::V6(SocketAddrV6::new(rtr_wan_ll, 22, 0, ifindex(&isp, "down")));
    // What the old table left open.
    tcp_connect(&isp, to, CONNECT_TIMEOUT)
        .unwrap_or_else(|e| panic!("the old table should leave {to} open over IPv6: {e}"));

    lab.daemon_start();
    assert_eq!(nft_tables(&rtr), "table inet routeros\n");
    let r = tcp_connect(&isp, to, Duration::from_secs(1));
    assert!(
        r.is_err(),
        "after the upgrade the ISP side still reaches {to}: {r:?}"
    );

    let before = lab.kernel_state();
    lab.daemon_stop();
    lab.daemon_start();
    assert_eq!(nft_tables(&rtr), "table inet routeros\n");
    assert_eq!(
        lab.kernel_state(),
        before,
        "a restart adopts the table as it is"
    );
    drop(ssh);
}
