//! Port forwards on a real lab: the internet host reaches a LAN server through either WAN's
//! public address, and a LAN client reaches it through the public address too (hairpin).

mod common;

use common::lab::*;
use routeros_shared::control::Request;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// A LAN server that answers each connection with the address it came from.
fn serve_peer_addresses(ns: &str, port: u16) {
    let listener = in_ns(ns, || TcpListener::bind(("0.0.0.0", port))).expect("LAN listener");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let peer = stream
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let _ = writeln!(stream, "{peer}");
        }
    });
}

fn ask(ns: &str, to: SocketAddr) -> String {
    let stream = tcp_connect(ns, to, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect from {ns} to {to}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("answer");
    line.trim().to_string()
}

#[test]
#[ignore = "needs root"]
fn port_forward_reaches_lan_server_from_wan_and_by_hairpin() {
    let lab = Lab::up("n1", LabOpts::default());
    let mut cfg = std::fs::read_to_string(lab.config_path()).unwrap();
    cfg += "\n[[port_forwards]]\nname = \"web\"\nprotocol = \"tcp\"\nwan_port = 8443\nto = \"192.168.1.100\"\nto_port = 8000\n";
    std::fs::write(lab.config_path(), cfg).unwrap();
    let answer = lab.control(&Request::Reload).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    serve_peer_addresses(&lab.lan(), 8000);

    // From the internet through each WAN's address; the LAN server sees the real client.
    for wan_addr in [[192, 0, 2, 2], [198, 51, 100, 2]] {
        let seen = ask(&lab.inet(), SocketAddr::from((wan_addr, 8443)));
        assert!(
            seen.starts_with("203.0.113."),
            "forward via {wan_addr:?}: the server should see the internet client, saw {seen}"
        );
    }
    // Hairpin: the LAN client uses the public address; the reply must come back through the
    // router, so the server sees the router's LAN address.
    let seen = ask(&lab.lan(), SocketAddr::from(([198, 51, 100, 2], 8443)));
    assert_eq!(seen, "192.168.1.1", "hairpin NAT");
    // Not forwarded ports stay closed from the WAN side.
    assert!(
        tcp_connect(
            &lab.inet(),
            SocketAddr::from(([192, 0, 2, 2], 8000)),
            Duration::from_millis(800)
        )
        .is_err(),
        "only the forwarded port is open"
    );
}
