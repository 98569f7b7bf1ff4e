//! End to end: operator overrides of the health watchdog in a namespace lab (`ci/lab.sh`),
//! with real traffic from the LAN client: the kill switch disables and enables a WAN (its
//! connections reset, the others untouched, the override outliving a restart, refusals that
//! change nothing) and a maintenance window ends by itself. Shared helpers in
//! common/failover.rs. Root only: `#[ignore = "needs root"]`.
//!
//!     sudo cargo test -p routeros-daemon --test lab_overrides -- --include-ignored --test-threads=2

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::failover::*;
use common::lab::*;
use routeros_shared::control::Request;
use routeros_shared::events::{now_ms, EventKind};
use serde_json::Value;

/// Exactly `names` carry new connections and each of them is usable (whatever its health
/// state: up or degraded). For checks about operator actions, not health.
fn all_active(status: &Value, names: &[&str]) -> bool {
    names
        .iter()
        .all(|n| is_active(status, n) && wan(status, n)["usable"] == true)
        && active_wans(status) == names
}

/// Run `routeros-kill-switch --socket <lab socket> ARGS`: (exit code, stdout, stderr).
fn kill_switch(lab: &Lab, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_routeros-kill-switch"))
        .arg("--socket")
        .arg(lab.socket_path())
        .args(args)
        .output()
        .expect("run routeros-kill-switch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root"]
fn kill_switch_round_trip() {
    let lab = Lab::up(
        "f5",
        LabOpts {
            weights: vec![1, 1],
            ..LabOpts::default()
        },
    );
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let clients =
        EchoClient::connect_many(&lab.lan(), server.addr, 12).expect("12 LAN connections");
    let mut groups = by_wan(clients, 2);
    let on1 = groups.remove(&1).unwrap_or_default();
    let mut on2 = groups.remove(&2).unwrap_or_default();
    assert!(
        !on1.is_empty() && !on2.is_empty(),
        "12 connections at 1:1 use both WANs: {} / {}",
        on1.len(),
        on2.len()
    );
    let ports1: BTreeSet<u16> = on1.iter().map(EchoClient::local_port).collect();

    let since = now_ms();
    let (code, out, err) = kill_switch(&lab, &["--disable", "wan1"]);
    assert_eq!(code, Some(0), "--disable wan1: {out}{err}");
    assert_eq!(
        out.trim(),
        "wan1 disabled by the operator",
        "stdout of --disable"
    );
    let status = lab.status();
    let w1 = wan(&status, "wan1");
    assert!(
        w1["disabled"] == true
            && w1["usable"] == false
            && w1["active"] == false
            && active_wans(&status) == ["wan2"],
        "right after --disable: {}",
        status_summary(&status)
    );
    let reset = wait_event(
        &lab,
        since,
        EventKind::Failover,
        Some("wan1"),
        "wan1's reset",
        // Its IPv4 side's: the IPv6 side leaves service with its own event.
        |e| e["details"]["family"] == "v4",
    );
    assert!(
        reset["details"]["reset_connections"].as_u64() >= Some(on1.len() as u64),
        "the reset must cover wan1's {} connections: {reset}",
        on1.len()
    );
    wait_event(
        &lab,
        since,
        EventKind::Operator,
        Some("wan1"),
        "operator",
        |e| e["message"] == "wan1 disabled by the operator",
    );
    let marks = ct_marks(&lab);
    let left: Vec<_> = ports1
        .iter()
        .filter_map(|p| marks.get(p).map(|m| (p, m)))
        .collect();
    assert!(
        left.is_empty(),
        "wan1's conntrack entries must be gone: {left:?}"
    );
    let n1 = on1.len();
    let (worked, errors) = use_each_once(on1, "disabled");
    println!("wan1's {n1} connections after --disable: {errors:?}");
    assert!(
        worked.is_empty(),
        "wan1's connections still work: {worked:?}"
    );
    let kept = echo_failures(&mut on2, "disabled");
    assert!(
        kept.is_empty(),
        "wan2's connections must not notice: {kept:?}"
    );
    let counts = new_connections(&lab, &server, 20);
    assert_eq!(
        (counts[&1], counts[&2]),
        (0, 20),
        "new connections only via wan2: {counts:?}"
    );

    let (code, out, err) = kill_switch(&lab, &["--status"]);
    assert_eq!(code, Some(0), "--status: {out}{err}");
    // One line per WAN, its name first; wan1's says "disabled", wan2's "active".
    let words = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in --status:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(
        words("wan1").contains(&"disabled".to_string())
            && words("wan2").contains(&"active".to_string())
            && !words("wan2").contains(&"disabled".to_string()),
        "--status must show wan1 disabled and wan2 active:\n{out}"
    );

    // The override outlives the daemon.
    lab.daemon_stop();
    let (code, out, err) = kill_switch(&lab, &["--status"]);
    println!("--status with the daemon stopped: exit {code:?}, stderr: {err}");
    assert!(
        code.is_some_and(|c| c != 0),
        "--status without a daemon must fail: exit {code:?}, stdout {out:?}"
    );
    assert!(
        err.contains("cannot reach the routeros-watchdog daemon") && err.contains("is it running"),
        "--status without a daemon must say the daemon is not reachable/running: {err:?}"
    );
    lab.daemon_start();
    let status = lab.status();
    assert!(
        wan(&status, "wan1")["disabled"] == true && active_wans(&status) == ["wan2"],
        "still disabled after a restart: {}",
        status_summary(&status)
    );
    let counts = new_connections(&lab, &server, 10);
    assert_eq!(
        counts[&1], 0,
        "after the restart, new connections avoid wan1: {counts:?}"
    );

    let (code, out, err) = kill_switch(&lab, &["--enable", "wan1"]);
    assert_eq!(code, Some(0), "--enable wan1: {out}{err}");
    assert_eq!(out.trim(), "wan1 enabled by the operator");
    let status = lab.status();
    assert!(
        all_active(&status, &["wan1", "wan2"]) && wan(&status, "wan1")["disabled"] == false,
        "after --enable: {}",
        status_summary(&status)
    );
    until_wans_seen(&lab, &server, &[1, 2]);

    // Refusals.
    let (code, out, err) = kill_switch(&lab, &["--disable", "eth9"]);
    assert!(
        code.is_some_and(|c| c != 0),
        "--disable eth9 must fail: {code:?} {out}"
    );
    assert!(
        err.contains("eth9") && err.contains("wan1, wan2"),
        "the refusal names the WANs: {err:?}"
    );
    let (code, out, err) = kill_switch(&lab, &["--maintenance", "0", "wan1"]);
    assert_eq!(code, Some(2), "--maintenance 0 wan1: {out}{err}");
    assert!(err.contains("minutes"), "{err:?}");
    let status = lab.status();
    assert!(
        all_active(&status, &["wan1", "wan2"]),
        "refused commands change nothing: {}",
        status_summary(&status)
    );
}

#[test]
#[ignore = "needs root"]
fn maintenance_window_expires_by_itself() {
    let lab = Lab::up(
        "f6",
        LabOpts {
            weights: vec![1, 1],
            ..LabOpts::default()
        },
    );
    let since = now_ms();
    let asked = Instant::now();
    let answer = lab
        .control(&Request::Maintenance {
            seconds: 3,
            wan: Some("wan2".into()),
        })
        .expect("maintenance answer");
    assert_eq!(answer["ok"], true, "{answer}");
    let status = lab.status();
    let w2 = wan(&status, "wan2");
    assert!(
        w2["usable"] == false
            && w2["active"] == false
            && w2["maintenance_until"].is_u64()
            && active_wans(&status) == ["wan1"],
        "wan2 out at once: {}",
        status_summary(&status)
    );
    let choose = lab.nft_chain("choose_wan");
    assert!(!choose.contains("0x00000200"), "{choose}");

    let (_, _) = lab.wait_status(
        "wan2 back after its 3 s window",
        Duration::from_secs(8),
        |s| {
            (all_active(s, &["wan1", "wan2"]) && wan(s, "wan2")["maintenance_until"].is_null())
                .then_some(())
        },
    );
    let took = asked.elapsed();
    println!(
        "wan2 back {:.2}s after a 3 s maintenance window",
        took.as_secs_f64()
    );
    // The window ends at the first 1 s tick at or after `until` = whole seconds of the request
    // time + 3, i.e. 2.0-4.0 s after the request (see the report on maintenance precision).
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_secs(6),
        "a 3 s window ended after {took:?}"
    );
    let ops = lab.events(since, Some(EventKind::Operator), None);
    let messages: Vec<&str> = ops.iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(
        ops.iter().any(|e| e["wan"] == "wan2"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("maintenance"))),
        "operator event for wan2's maintenance: {messages:?}"
    );
    assert!(
        ops.iter()
            .any(|e| e["wan"] == "wan2"
                && e["message"] == "maintenance of wan2 ended: back in service"),
        "operator event for the end of wan2's window: {messages:?}"
    );
}
