//! Traffic classes on a real lab: what a LAN client sends out through a WAN arrives at the
//! internet host with the DSCP value of its class (a configured one, a built-in one, none),
//! over IPv4 and IPv6, as counted by nftables on the internet host.

mod common;

use common::lab::*;
use routeros_shared::control::Request;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const GAME: u16 = 27015;
const PLAIN: u16 = 27016;
const TORRENT: u16 = 6881;

/// Counters on the internet host, one per (what, DSCP it should carry).
const COUNTERS: &str = "
table inet dscp_seen {
    counter game4_video {}
    counter game6_video {}
    counter plain4_zero {}
    counter torrent4_bulk {}
    counter torrent4_zero {}
    chain input {
        type filter hook input priority 0; policy accept;
        udp dport 27015 ip dscp 34 counter name game4_video
        udp dport 27015 ip6 dscp 34 counter name game6_video
        udp dport 27016 ip dscp 0 counter name plain4_zero
        tcp dport 6881 ip dscp 8 counter name torrent4_bulk
        tcp dport 6881 ip dscp 0 counter name torrent4_zero
    }
}
";

fn packets(lab: &Lab, counter: &str) -> u64 {
    let out = run_ok(
        "ip",
        &[
            "netns",
            "exec",
            &lab.inet(),
            "nft",
            "list",
            "counter",
            "inet",
            "dscp_seen",
            counter,
        ],
    );
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {out}"))
}

fn send_udp(lab: &Lab, to: SocketAddr) {
    in_ns(&lab.lan(), || {
        let bind: SocketAddr = if to.is_ipv6() {
            "[::]:0".parse().unwrap()
        } else {
            "0.0.0.0:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(bind).expect("UDP socket");
        for _ in 0..3 {
            sock.send_to(b"hello", to).expect("send");
        }
    });
}

/// A TCP SYN to a port nobody listens on: the SYN is what gets counted.
fn syn(lab: &Lab, to: SocketAddr) {
    let _ = tcp_connect(&lab.lan(), to, Duration::from_millis(500));
}

fn reload_with(lab: &Lab, base: &str, extra: &str) {
    std::fs::write(lab.config_path(), format!("{base}\n{extra}")).unwrap();
    let reply = lab.control(&Request::Reload).expect("reload");
    assert_eq!(reply["ok"], true, "{reply}");
}

#[test]
#[ignore = "needs root"]
fn packets_leave_with_their_class_dscp() {
    let lab = Lab::up("q1", LabOpts::default());
    nft_in(&lab.inet(), COUNTERS);
    let base = std::fs::read_to_string(lab.config_path()).unwrap();
    reload_with(
        &lab,
        &base,
        &format!("[[classes]]\nname = \"game\"\nprotocol = \"udp\"\ndst_port = {GAME}\ndscp = \"video\"\n"),
    );

    send_udp(&lab, inet(GAME));
    send_udp(&lab, inet6(GAME));
    send_udp(&lab, inet(PLAIN));
    syn(&lab, inet(TORRENT));
    std::thread::sleep(Duration::from_millis(300));
    let seen = |c| packets(&lab, c);
    println!(
        "game v4 {} v6 {}, plain {}, torrent bulk {} zero {}",
        seen("game4_video"),
        seen("game6_video"),
        seen("plain4_zero"),
        seen("torrent4_bulk"),
        seen("torrent4_zero")
    );
    assert_eq!(seen("game4_video"), 3, "a configured class, IPv4");
    assert_eq!(seen("game6_video"), 3, "the same class over IPv6");
    assert_eq!(seen("plain4_zero"), 3, "unclassified traffic keeps DSCP 0");
    assert!(seen("torrent4_bulk") >= 1, "the built-in bulk class");
    assert_eq!(seen("torrent4_zero"), 0);
    let chain = lab.nft_chain("classify");
    assert!(
        chain.contains("udp dport 27015 counter packets 3 "),
        "the router counts per class:\n{chain}"
    );

    // Built-in classes off: the torrent port goes out unmarked.
    reload_with(&lab, &base, "[qos]\ndefault_classes = false\n");
    syn(&lab, inet(TORRENT));
    std::thread::sleep(Duration::from_millis(300));
    assert!(seen("torrent4_zero") >= 1, "no built-in classes");
}
