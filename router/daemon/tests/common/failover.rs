//! Helpers shared by the lab tests of the health watchdog (lab_failover, lab_overrides,
//! lab_health): fast probing, what a status answer says about a WAN, LAN connections
//! grouped by the WAN that carries them, and waiting for the daemon's events.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::thread;
use std::time::{Duration, Instant};

use routeros_shared::events::EventKind;
use serde_json::Value;

use super::lab::*;

/// A dead WAN must be out within this: retry_count (3) rounds of 0.2 s, plus slack.
pub const DETECT: Duration = Duration::from_secs(2);
/// A restored WAN must be back within this: recovery_count (3) rounds of 0.2 s, plus slack.
pub const RECOVER: Duration = Duration::from_secs(5);
/// Longest wait for an event the daemon emits right after an apply.
pub const EVENT_WAIT: Duration = Duration::from_secs(2);

/// `wans` WANs of equal weight, probed every 0.2 s with a 0.2 s timeout, down after 3 failed
/// rounds and trusted again after 3 good ones.
pub fn fast(wans: usize) -> LabOpts {
    LabOpts {
        wans,
        weights: vec![1; wans],
        ..LabOpts::default()
    }
    .fast_health(0.2, 0.2, 3, 3)
}

pub fn state(status: &Value, name: &str) -> String {
    wan(status, name)["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

pub fn is_active(status: &Value, name: &str) -> bool {
    wan(status, name)["active"] == true
}

pub fn active_wans(status: &Value) -> Vec<String> {
    status["active_wans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// Every WAN of `names` is up and active, and nothing else is active.
pub fn all_up_and_active(status: &Value, names: &[&str]) -> bool {
    names
        .iter()
        .all(|n| state(status, n) == "up" && is_active(status, n))
        && active_wans(status) == names
}

/// Clients grouped by the WAN (1-based; 0 = unknown source) that carries them.
pub fn by_wan(clients: Vec<EchoClient>, wans: usize) -> BTreeMap<usize, Vec<EchoClient>> {
    let mut groups: BTreeMap<usize, Vec<EchoClient>> = BTreeMap::new();
    for c in clients {
        groups
            .entry(wan_index(c.peer, wans).unwrap_or(0))
            .or_default()
            .push(c);
    }
    groups
}

/// Echo once on every client; returns the failures.
pub fn echo_failures(clients: &mut [EchoClient], tag: &str) -> Vec<String> {
    clients
        .iter_mut()
        .enumerate()
        .filter_map(|(i, c)| {
            let want = c.peer;
            match c.echo(&format!("{tag} {i}")) {
                Ok(peer) if peer == want => None,
                Ok(peer) => Some(format!("conn {i}: peer {want} became {peer}")),
                Err(e) => Some(format!("conn {i} (via {want}): {e}")),
            }
        })
        .collect()
}

/// Use every client once, all at the same time; returns (those that still echoed, the errors
/// of the others).
pub fn use_each_once(clients: Vec<EchoClient>, tag: &str) -> (Vec<String>, Vec<String>) {
    let results: Vec<(u16, io::Result<IpAddr>)> = thread::scope(|s| {
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| s.spawn(move || (c.local_port(), c.echo(&format!("{tag} {i}")))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut worked = Vec::new();
    let mut errors = Vec::new();
    for (port, r) in results {
        match r {
            Ok(peer) => worked.push(format!("port {port} still echoed via {peer}")),
            Err(e) => errors.push(format!("port {port}: {:?}: {e}", e.kind())),
        }
    }
    (worked, errors)
}

/// `n` new LAN connections, counted per WAN (0 = unknown source).
pub fn new_connections(lab: &Lab, server: &TcpEchoServer, n: usize) -> BTreeMap<usize, usize> {
    let sources = probe_sources(&lab.lan(), server.addr, n)
        .unwrap_or_else(|e| panic!("[{}] {n} new LAN connections: {e}", lab.prefix));
    count_by_wan(&sources, lab.opts.wans)
}

/// New connections until each WAN of `want` carried one (5 at least, 60 at most); returns
/// the count per WAN. With equal weights, 60 connections all missing one of two WANs has a
/// chance of 2^-59.
pub fn until_wans_seen(
    lab: &Lab,
    server: &TcpEchoServer,
    want: &[usize],
) -> BTreeMap<usize, usize> {
    let wans = lab.opts.wans;
    let mut sources = Vec::new();
    for i in 0..60 {
        let c = EchoClient::connect(&lab.lan(), server.addr)
            .unwrap_or_else(|e| panic!("[{}] new connection {i}: {e}", lab.prefix));
        sources.push(c.peer);
        let seen: BTreeSet<usize> = sources
            .iter()
            .filter_map(|ip| wan_index(*ip, wans))
            .collect();
        if i >= 4 && want.iter().all(|w| seen.contains(w)) {
            break;
        }
    }
    let counts = count_by_wan(&sources, wans);
    assert!(
        want.iter().all(|w| counts[w] > 0) && counts[&0] == 0,
        "[{}] new connections must use WANs {want:?}; per WAN (0 = unknown): {counts:?}",
        lab.prefix
    );
    counts
}

/// Poll the event log until an event of `kind` (and `wan`) after `since` satisfies `pred`.
pub fn wait_event(
    lab: &Lab,
    since: u64,
    kind: EventKind,
    wan: Option<&str>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = lab
            .events(since, Some(kind), wan)
            .into_iter()
            .find(|e| pred(e))
        {
            return e;
        }
        assert!(
            start.elapsed() < EVENT_WAIT,
            "[{}] no {kind:?} event for {wan:?} ({what}) within {EVENT_WAIT:?}; all events since:\n{}",
            lab.prefix,
            dump_events(&lab.events(since, None, None))
        );
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn dump_events(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "  {} {} {}: {} {}",
                e["at_ms"], e["kind"], e["wan"], e["message"], e["details"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Conntrack entries of the echo server's connections by client port: port -> marks.
pub fn ct_marks(lab: &Lab) -> BTreeMap<u16, Vec<u32>> {
    let mut marks: BTreeMap<u16, Vec<u32>> = BTreeMap::new();
    for e in lab.conntrack_tcp(ECHO_PORT) {
        marks.entry(e.sport).or_default().push(e.mark);
    }
    marks
}
