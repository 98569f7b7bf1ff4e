//! WAN numbers (routing table, conntrack mark) belong to the WAN's name, not to its place in
//! the config: reordering the WANs and reloading leaves every live connection on its WAN,
//! and removing a WAN resets its connections (by its mark) and nobody else's. Root only.
//!
//!     sudo cargo test -p routeros-daemon --test lab_wan_ids -- --include-ignored --test-threads=2

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::lab::*;
use routeros_shared::control::Request;
use routeros_shared::events::{now_ms, EventKind};
use serde_json::Value;

/// The `[[wan_interfaces]]` block of `name` in the lab config (up to the blank line after it).
fn block<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("[[wan_interfaces]]\nname = \"{name}\"\n"))
        .unwrap_or_else(|| panic!("no block for {name} in:\n{text}"));
    let len = text[start..]
        .find("\n\n")
        .expect("blank line after the block")
        + 1;
    &text[start..start + len]
}

fn reload(lab: &Lab, text: &str) {
    std::fs::write(lab.config_path(), text).expect("write config");
    let answer = lab.control(&Request::Reload).expect("reload");
    assert_eq!(answer["ok"], true, "reload: {answer}");
}

/// (table, mark) of every WAN in a status answer.
fn numbers(status: &Value) -> BTreeMap<String, (u64, u64)> {
    status["wans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            (
                w["name"].as_str().unwrap_or("?").to_string(),
                (
                    w["table"].as_u64().unwrap_or(0),
                    w["mark"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// Conntrack mark of every echo connection, by client port.
fn ct_marks(lab: &Lab) -> BTreeMap<u16, u32> {
    lab.conntrack_tcp(ECHO_PORT)
        .into_iter()
        .map(|e| (e.sport, e.mark))
        .collect()
}

/// 16 connections over both WANs (1:1), grouped by WAN (1-based).
fn connections(lab: &Lab, server: &TcpEchoServer) -> BTreeMap<usize, Vec<EchoClient>> {
    let mut by_wan: BTreeMap<usize, Vec<EchoClient>> = BTreeMap::new();
    for c in EchoClient::connect_many(&lab.lan(), server.addr, 16).expect("16 LAN connections") {
        by_wan
            .entry(wan_index(c.peer, 2).expect("a WAN address"))
            .or_default()
            .push(c);
    }
    assert!(
        by_wan.len() == 2,
        "16 connections at 1:1 must use both WANs: {:?}",
        by_wan.iter().map(|(w, c)| (w, c.len())).collect::<Vec<_>>()
    );
    by_wan
}

/// Every connection of WAN `i` has its WAN's mark `mark`.
fn assert_marks(lab: &Lab, clients: &[EchoClient], mark: u32, when: &str) {
    let marks = ct_marks(lab);
    for c in clients {
        assert_eq!(
            marks.get(&c.local_port()),
            Some(&mark),
            "{when}: the connection from port {} via {} must carry mark {mark:#x}; all: {marks:?}",
            c.local_port(),
            c.peer
        );
    }
}

fn tx_bytes(lab: &Lab) -> (u64, u64) {
    let s = lab.status();
    let tx = |w: &str| wan(&s, w)["tx_bytes"].as_u64().expect("tx_bytes");
    (tx("wan1"), tx("wan2"))
}

#[test]
#[ignore = "needs root"]
fn reordering_wans_keeps_connections_on_their_wan() {
    let lab = Lab::up(
        "n1",
        LabOpts {
            weights: vec![1, 1],
            ..LabOpts::default()
        },
    );
    let server = TcpEchoServer::start(&lab.inet(), SocketAddr::from((INET_HOST, ECHO_PORT)));
    let mut by_wan = connections(&lab, &server);
    let before = numbers(&lab.status());
    assert_eq!(
        before,
        BTreeMap::from([
            ("wan1".to_string(), (100, 0x100)),
            ("wan2".to_string(), (200, 0x200))
        ]),
        "the first run gives the positional numbers"
    );
    assert_marks(&lab, &by_wan[&1], 0x100, "before");
    assert_marks(&lab, &by_wan[&2], 0x200, "before");

    // wan2 first, wan1 second.
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    let (b1, b2) = (block(&text, "wan1"), block(&text, "wan2"));
    let swapped = text
        .replacen(b1, "@WAN1@", 1)
        .replacen(b2, b1, 1)
        .replacen("@WAN1@", b2, 1);
    assert!(
        swapped.find("\"wan2\"") < swapped.find("\"wan1\""),
        "{swapped}"
    );
    reload(&lab, &swapped);
    let status = lab.status();
    assert_eq!(
        status["wans"][0]["name"], "wan2",
        "the daemon runs the reordered config"
    );
    assert_eq!(numbers(&status), before, "numbers stay with the names");
    assert_marks(&lab, &by_wan[&1], 0x100, "after the reorder");
    assert_marks(&lab, &by_wan[&2], 0x200, "after the reorder");

    // wan1's connections still leave through wan1: their bytes show on its counter only.
    let (tx1, tx2) = tx_bytes(&lab);
    let line = "x".repeat(1000);
    for c in by_wan.get_mut(&1).unwrap().iter_mut() {
        for _ in 0..25 {
            let peer = c.echo(&line).expect("wan1's connection still answers");
            assert_eq!(peer, wan_ip(1), "still masqueraded to wan1's address");
        }
    }
    let sent = 25 * 1000 * by_wan[&1].len() as u64;
    let (tx1b, tx2b) = tx_bytes(&lab);
    println!(
        "after the reorder: {sent} bytes echoed on wan1's {} connections; tx wan1 +{}, wan2 +{}",
        by_wan[&1].len(),
        tx1b - tx1,
        tx2b - tx2
    );
    assert!(
        tx1b - tx1 >= sent && tx2b - tx2 < sent / 4,
        "wan1's connections must leave through wan1: tx wan1 +{}, wan2 +{} for {sent} bytes",
        tx1b - tx1,
        tx2b - tx2
    );
    for c in by_wan.get_mut(&2).unwrap().iter_mut() {
        assert_eq!(c.echo("wan2").expect("wan2's connection"), wan_ip(2));
    }
    let sources = probe_sources(&lab.lan(), server.addr, 40).expect("new connections");
    println!(
        "new connections after the reorder: {}",
        assert_weighted_split(&sources, &[1, 1])
    );
    let stored =
        std::fs::read_to_string(lab.dir.join("state/wan-ids.json")).expect("state/wan-ids.json");
    println!("state/wan-ids.json:\n{stored}");
}

#[test]
#[ignore = "needs root"]
fn removing_a_wan_resets_only_its_connections() {
    let lab = Lab::up(
        "n2",
        LabOpts {
            weights: vec![1, 1],
            ..LabOpts::default()
        },
    );
    let server = TcpEchoServer::start(&lab.inet(), SocketAddr::from((INET_HOST, ECHO_PORT)));
    let mut by_wan = connections(&lab, &server);
    assert_marks(&lab, &by_wan[&2], 0x200, "before");

    let since = now_ms();
    let text = std::fs::read_to_string(lab.config_path()).unwrap();
    let without2 = text.replacen(block(&text, "wan2"), "", 1);
    reload(&lab, &without2);
    assert_eq!(
        numbers(&lab.status()),
        BTreeMap::from([("wan1".to_string(), (100, 0x100))])
    );

    // wan2's entries are gone, wan1's are all there with their mark.
    let marks = ct_marks(&lab);
    let left: Vec<_> = by_wan[&2]
        .iter()
        .filter_map(|c| marks.get(&c.local_port()).map(|m| (c.local_port(), *m)))
        .collect();
    assert!(
        left.is_empty(),
        "wan2's connections must have no conntrack entry after its removal: {left:?}"
    );
    assert_marks(&lab, &by_wan[&1], 0x100, "after wan2's removal");
    let events = lab.events(since, Some(EventKind::ConfigChange), Some("wan2"));
    let reset = events
        .iter()
        .find_map(|e| e["details"]["reset_connections"].as_u64())
        .unwrap_or_else(|| panic!("no reset event for wan2: {events:?}"));
    println!("removal event: {}", events[0]["message"]);
    assert!(
        reset >= by_wan[&2].len() as u64,
        "the event counts wan2's {} connections, says {reset}",
        by_wan[&2].len()
    );
    for c in by_wan.get_mut(&1).unwrap().iter_mut() {
        assert_eq!(c.echo("wan1").expect("wan1's connection"), wan_ip(1));
    }
    let ids: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("state/wan-ids.json")).unwrap())
            .unwrap();
    assert_eq!(ids["released"], serde_json::json!([]), "flushed: {ids}");

    // Back in the config: the same numbers (they were free again).
    reload(&lab, &text);
    assert_eq!(
        numbers(&lab.status()),
        BTreeMap::from([
            ("wan1".to_string(), (100, 0x100)),
            ("wan2".to_string(), (200, 0x200))
        ])
    );
}

/// The router's address on WAN `i`, as the echo server reports it.
fn wan_ip(i: usize) -> std::net::IpAddr {
    std::net::IpAddr::V4(wan_addr(i))
}
