//! End to end: the health watchdog of the daemon built for this test run, in a namespace lab
//! (`ci/lab.sh`), with real traffic from the LAN client, when WANs fail. Failures are emulated
//! only inside the lab's own namespaces: an ISP whose uplink dies or that silently drops (the
//! router's WAN keeps carrier), a WAN that loses carrier, a target that answers every other
//! probe, every WAN down at once. Operator overrides are in lab_overrides.rs, latency, DHCP
//! gateways and a fresh start in lab_health.rs; shared helpers in common/failover.rs. Every
//! test builds its own lab (prefixes f1..fa over the three files), so they can run in
//! parallel. Root only: `#[ignore = "needs root"]`.
//!
//!     sudo cargo test -p routeros-daemon --test lab_failover -- --include-ignored --test-threads=2

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::failover::*;
use common::lab::*;
use routeros_shared::events::{now_ms, EventKind};

/// The `to` states of `wan`'s state changes (incl. high-latency ones) after `since`.
fn states_entered(lab: &Lab, since: u64, wan: &str) -> Vec<String> {
    lab.events(since, None, Some(wan))
        .iter()
        .filter(|e| e["kind"] == "state_change" || e["kind"] == "high_latency")
        .filter_map(|e| e["details"]["to"].as_str().map(str::to_string))
        .collect()
}

/// `want` appears in `seq` in this order (other items may lie between).
fn is_subsequence(want: &[&str], seq: &[String]) -> bool {
    let mut it = seq.iter();
    want.iter().all(|w| it.any(|s| s == w))
}

/// Sets the flag when dropped, also while unwinding: stops a helper thread of a scope.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
#[ignore = "needs root"]
fn dead_upstream_fails_over_and_only_its_connections_are_reset() {
    let lab = Lab::up("f1", fast(2));
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let clients =
        EchoClient::connect_many(&lab.lan(), server.addr, 20).expect("20 LAN connections");
    let mut groups = by_wan(clients, 2);
    let on1 = groups.remove(&1).unwrap_or_default();
    let mut on2 = groups.remove(&2).unwrap_or_default();
    assert!(
        groups.values().all(Vec::is_empty),
        "connections from unknown sources: {:?}",
        groups
            .values()
            .flatten()
            .map(|c| c.peer)
            .collect::<Vec<_>>()
    );
    assert!(
        !on1.is_empty() && !on2.is_empty(),
        "20 connections at weights 1:1 must use both WANs: {} on wan1, {} on wan2",
        on1.len(),
        on2.len()
    );
    println!(
        "20 connections: {} on wan1, {} on wan2",
        on1.len(),
        on2.len()
    );
    let mut on1 = on1;
    let before: Vec<String> = echo_failures(&mut on1, "before")
        .into_iter()
        .chain(echo_failures(&mut on2, "before"))
        .collect();
    assert!(before.is_empty(), "before the cut: {before:?}");
    let ports1: BTreeSet<u16> = on1.iter().map(EchoClient::local_port).collect();
    let ports2: BTreeSet<u16> = on2.iter().map(EchoClient::local_port).collect();
    // The conntrack check after the failover means something only if the entries are there
    // now, with their WAN's mark.
    let marks = ct_marks(&lab);
    for (ports, mark) in [(&ports1, 0x100), (&ports2, 0x200)] {
        let wrong: Vec<_> = ports
            .iter()
            .filter(|p| marks.get(p) != Some(&vec![mark]))
            .map(|p| (p, marks.get(p)))
            .collect();
        assert!(
            wrong.is_empty(),
            "before the cut every connection has one entry with mark {mark:#x}; not so: {wrong:?}"
        );
    }

    // isp1's uplink dies; the router's wan1 keeps carrier.
    let since = now_ms();
    lab.isp_uplink(1, false);
    let stop = AtomicBool::new(false);
    let (status, detect, pinged, dropped_out) = thread::scope(|s| {
        // wan2's connections keep talking every 100 ms through the whole failover.
        let pinger = s.spawn(|| {
            let (mut rounds, mut failures) = (0, Vec::new());
            let mut dead = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                for (i, c) in on2.iter_mut().enumerate() {
                    if dead.contains(&i) {
                        continue;
                    }
                    if let Err(e) = c.echo(&format!("during {rounds} {i}")) {
                        failures.push(format!("wan2 conn {i}, exchange {rounds}: {e}"));
                        dead.insert(i);
                    }
                }
                rounds += 1;
                thread::sleep(Duration::from_millis(100));
            }
            (rounds, failures)
        });
        let stop_guard = SetOnDrop(&stop);
        let (status, detect) = lab.wait_status("wan1 down and not active", DETECT, |s| {
            (state(s, "wan1") == "down" && !is_active(s, "wan1") && active_wans(s) == ["wan2"])
                .then(|| s.clone())
        });
        // The reset of wan1's connections follows the apply; keep talking on wan2 until the
        // failover event says it is done.
        let event = wait_event(
            &lab,
            since,
            EventKind::Failover,
            Some("wan1"),
            "wan1's reset",
            // Its IPv4 side's: the IPv6 side leaves service with its own event.
            |e| e["details"]["family"] == "v4",
        );
        drop(stop_guard);
        let (rounds, failures) = pinger.join().expect("pinger thread");
        (status, detect, (rounds, failures), event)
    });
    let (rounds, failures) = pinged;
    println!(
        "wan1 out {:.2}s after its upstream died; wan2's {} connections exchanged {rounds} rounds meanwhile",
        detect.as_secs_f64(),
        on2.len()
    );
    assert_eq!(
        wan(&status, "wan1")["carrier"],
        true,
        "the emulated failure keeps carrier (probes, not link events, must find it): {}",
        status_summary(&status)
    );
    assert!(
        failures.is_empty(),
        "wan2's connections must not lose a single exchange during wan1's failover: {failures:?}"
    );
    assert!(rounds >= 2, "the wan2 pinger ran only {rounds} rounds");

    let reset = dropped_out["details"]["reset_connections"]
        .as_u64()
        .unwrap_or_else(|| panic!("failover event without reset_connections: {dropped_out}"));
    println!(
        "failover event: {} {}",
        dropped_out["message"], dropped_out["details"]
    );
    assert!(
        reset >= on1.len() as u64,
        "failover event must count wan1's {} connections as reset, says {reset}: {dropped_out}",
        on1.len()
    );
    let down = wait_event(
        &lab,
        since,
        EventKind::StateChange,
        Some("wan1"),
        "wan1 down",
        |e| e["details"]["family"] == "v4" && e["details"]["to"] == "down",
    );
    assert!(
        down["details"]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("consecutive failed probe rounds")),
        "wan1 went down because of the probes: {down}"
    );

    // Only wan1's connections lost their conntrack entries.
    let marks = ct_marks(&lab);
    let left1: Vec<_> = ports1
        .iter()
        .filter_map(|p| marks.get(p).map(|m| (p, m)))
        .collect();
    assert!(
        left1.is_empty(),
        "wan1's connections must have no conntrack entry after the failover: {left1:?}"
    );
    let lost2: Vec<_> = ports2
        .iter()
        .filter(|p| marks.get(p) != Some(&vec![0x200]))
        .map(|p| (p, marks.get(p)))
        .collect();
    assert!(
        lost2.is_empty(),
        "wan2's connections must keep their entries (mark 0x200): {lost2:?}"
    );
    // wan1's connections are gone for good: using one gets a reset (or at least no answer).
    let n1 = on1.len();
    let (worked, errors) = use_each_once(on1, "after");
    println!("wan1's connections after the failover: {errors:?}");
    assert!(
        worked.is_empty(),
        "{} of wan1's {n1} connections still work: {worked:?}",
        worked.len()
    );

    let counts = new_connections(&lab, &server, 20);
    assert_eq!(
        (counts[&1], counts[&2], counts[&0]),
        (0, 20, 0),
        "all new connections must use wan2 while wan1 is down; per WAN: {counts:?}"
    );

    // isp1 comes back: wan1 is trusted again after recovery_count good rounds.
    lab.isp_uplink(1, true);
    let (_, recover) = lab.wait_status("wan1 up and active again", RECOVER, |s| {
        all_up_and_active(s, &["wan1", "wan2"]).then_some(())
    });
    println!(
        "wan1 back {:.2}s after isp1's uplink returned",
        recover.as_secs_f64()
    );
    assert!(
        recover >= Duration::from_millis(300),
        "recovery_count = 3 rounds of 0.2 s cannot pass in {recover:?}: no hysteresis?"
    );
    let entered = states_entered(&lab, since, "wan1");
    assert!(
        is_subsequence(&["down", "recovering", "up"], &entered),
        "wan1 must go down, recovering, up; state changes: {entered:?}"
    );
    let counts = until_wans_seen(&lab, &server, &[1, 2]);
    println!("new connections after the recovery: {counts:?}");
    let after = echo_failures(&mut on2, "end");
    assert!(after.is_empty(), "wan2's connections at the end: {after:?}");
}

#[test]
#[ignore = "needs root"]
fn carrier_loss_takes_effect_without_waiting_for_probes() {
    // Slow probes: a failure found by probing would take 3 rounds of 5 s.
    let opts = LabOpts {
        weights: vec![1, 1],
        ..LabOpts::default()
    }
    .fast_health(5.0, 1.0, 3, 3);
    let lab = Lab::up("f2", opts);
    let since = now_ms();
    lab.isp_carrier(1, false);
    let (status, took) = lab.wait_status(
        "wan1 unusable after losing carrier",
        Duration::from_secs(1),
        |s| (wan(s, "wan1")["usable"] == false).then(|| s.clone()),
    );
    println!(
        "wan1 unusable {:.3}s after carrier loss",
        took.as_secs_f64()
    );
    let w1 = wan(&status, "wan1");
    assert!(
        w1["carrier"] == false
            && w1["state"] == "down"
            && w1["active"] == false
            && active_wans(&status) == ["wan2"],
        "after carrier loss: {}",
        status_summary(&status)
    );
    let lost = wait_event(
        &lab,
        since,
        EventKind::StateChange,
        Some("wan1"),
        "carrier",
        |e| e["details"]["family"] == "v4" && e["details"]["to"] == "down",
    );
    assert_eq!(lost["details"]["cause"], "carrier lost", "{lost}");
    let choose = lab.nft_chain("choose_wan");
    assert!(
        !choose.contains("0x00000100"),
        "new connections must no longer pick wan1:\n{choose}"
    );

    // Carrier back: the WAN is not trusted before the probes say so.
    let since = now_ms();
    lab.isp_carrier(1, true);
    let (status, took) = lab.wait_status(
        "wan1 has carrier again and is recovering",
        Duration::from_secs(1),
        |s| {
            let w = wan(s, "wan1");
            (w["carrier"] == true && w["state"] == "recovering").then(|| s.clone())
        },
    );
    println!(
        "wan1 recovering {:.3}s after carrier returned",
        took.as_secs_f64()
    );
    assert!(
        wan(&status, "wan1")["usable"] == false && active_wans(&status) == ["wan2"],
        "a WAN whose carrier just came back waits for recovery_count good rounds: {}",
        status_summary(&status)
    );
    let back = wait_event(
        &lab,
        since,
        EventKind::StateChange,
        Some("wan1"),
        "carrier back",
        |e| e["details"]["family"] == "v4" && e["details"]["to"] == "recovering",
    );
    assert!(
        back["details"]["cause"]
            .as_str()
            .is_some_and(|c| c.starts_with("carrier restored")),
        "{back}"
    );
}

/// isp1 drops every other echo request it forwards (counters: all requests, dropped ones).
const FLAP_NFT: &str = "table ip lab_flap {
\tchain forward {
\t\ttype filter hook forward priority -10; policy accept;
\t\ticmp type echo-request counter
\t\ticmp type echo-request numgen inc mod 2 == 0 counter drop
\t}
}
";

/// (echo requests seen, echo requests dropped) by the `lab_flap` table in `ns`.
fn flap_counters(ns: &str) -> (u64, u64) {
    let chain = run_ok(
        "ip",
        &[
            "netns", "exec", ns, "nft", "list", "chain", "ip", "lab_flap", "forward",
        ],
    );
    let counts: Vec<u64> = chain
        .lines()
        .filter_map(|l| {
            let rest = l.split("counter packets ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect();
    match counts.as_slice() {
        [all, dropped] => (*all, *dropped),
        _ => panic!("expected two counters in lab_flap:\n{chain}"),
    }
}

#[test]
#[ignore = "needs root"]
fn flapping_target_does_not_flap_the_wan() {
    // One target, so every round has one probe and rounds alternate: ok, lost, ok, lost...
    // Never retry_count (3) failures in a row.
    let opts = LabOpts {
        targets: vec![INET_HOST],
        ..fast(2)
    };
    let lab = Lab::up("f3", opts);
    lab.wait_status("both WANs up", Duration::from_secs(3), |s| {
        all_up_and_active(s, &["wan1", "wan2"]).then_some(())
    });
    let since = now_ms();
    nft_in(&lab.isp(1), FLAP_NFT);
    let start = Instant::now();
    let mut seen: Vec<(f64, String, bool)> = Vec::new();
    let (all, dropped) = loop {
        let status = lab.status();
        let now = (state(&status, "wan1"), is_active(&status, "wan1"));
        if seen.last().map(|(_, s, a)| (s, a)) != Some((&now.0, &now.1)) {
            seen.push((start.elapsed().as_secs_f64(), now.0, now.1));
        }
        let (all, dropped) = flap_counters(&lab.isp(1));
        if all >= 40 {
            break (all, dropped);
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "only {all} probes through isp1 in 25 s\n{}",
            status_summary(&status)
        );
        thread::sleep(Duration::from_millis(100));
    };
    println!(
        "{all} probe rounds through isp1 in {:.1}s, {dropped} dropped; wan1 (t, state, active): {seen:?}",
        start.elapsed().as_secs_f64()
    );
    let share = dropped as f64 / all as f64;
    assert!(
        (0.4..=0.6).contains(&share),
        "isp1 must drop about every other probe: {dropped} of {all}"
    );
    let bad: Vec<_> = seen
        .iter()
        .filter(|(_, s, active)| !(s == "up" || s == "degraded") || !active)
        .collect();
    assert!(
        bad.is_empty(),
        "wan1 must stay up (degraded at worst) and active while every other probe is lost: {bad:?}"
    );
    let entered = states_entered(&lab, since, "wan1");
    assert!(
        !entered.iter().any(|s| s == "down" || s == "recovering"),
        "no state change to down/recovering for wan1: {entered:?}\n{}",
        dump_events(&lab.events(since, None, Some("wan1")))
    );
    let failovers = lab.events(since, Some(EventKind::Failover), None);
    assert!(
        failovers.is_empty(),
        "no failover while a target flaps:\n{}",
        dump_events(&failovers)
    );
}

#[test]
#[ignore = "needs root"]
fn three_wans_one_failing() {
    let lab = Lab::up("f4", fast(3));
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let choose = lab.nft_chain("choose_wan");
    assert!(
        ["0x00000100", "0x00000200", "0x00000300"]
            .iter()
            .all(|m| choose.contains(m)),
        "all three marks in the pick at the start:\n{choose}"
    );
    lab.isp_blackhole(2, true);
    let (status, took) = lab.wait_status("wan2 down, wan1 and wan3 active", DETECT, |s| {
        (state(s, "wan2") == "down" && active_wans(s) == ["wan1", "wan3"]).then(|| s.clone())
    });
    println!(
        "wan2 out {:.2}s after isp2 started dropping:\n{}",
        took.as_secs_f64(),
        status_summary(&status)
    );
    assert_eq!(wan(&status, "wan2")["carrier"], true, "no carrier change");
    let choose = lab.nft_chain("choose_wan");
    assert!(
        !choose.contains("0x00000200")
            && choose.contains("0x00000100")
            && choose.contains("0x00000300"),
        "the pick must hold wan1's and wan3's marks only:\n{choose}"
    );
    // wan2's own table keeps its default: its probes need a path to notice the recovery.
    let t200 = lab.route_table("200");
    assert!(
        t200.contains("default via 198.51.100.1 dev wan2"),
        "table 200 while wan2 is down:\n{t200}"
    );
    let counts = new_connections(&lab, &server, 60);
    println!("60 new connections with wan2 down, per WAN: {counts:?}");
    assert!(
        counts[&2] == 0 && counts[&0] == 0 && counts[&1] > 0 && counts[&3] > 0,
        "60 new connections must split over wan1 and wan3 only; per WAN (0 = unknown): {counts:?}"
    );

    lab.isp_blackhole(2, false);
    lab.wait_status("wan2 back", RECOVER, |s| {
        all_up_and_active(s, &["wan1", "wan2", "wan3"]).then_some(())
    });
    let choose = lab.nft_chain("choose_wan");
    assert!(
        choose.contains("0x00000200"),
        "wan2's mark is back in the pick:\n{choose}"
    );
}

#[test]
#[ignore = "needs root"]
fn all_wans_down_keeps_last_routes() {
    let lab = Lab::up("f8", fast(2));
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let before = lab.kernel_state();
    let since = now_ms();
    lab.isp_blackhole(1, true);
    lab.isp_uplink(2, false);
    let (status, took) = lab.wait_status("both WANs down", DETECT, |s| {
        (state(s, "wan1") == "down" && state(s, "wan2") == "down").then(|| s.clone())
    });
    println!(
        "both down after {:.2}s:\n{}",
        took.as_secs_f64(),
        status_summary(&status)
    );
    // Fail-static: new connections keep being spread over both (a guess beats a blackhole).
    assert_eq!(
        active_wans(&status),
        ["wan1", "wan2"],
        "with nothing usable, every routable WAN stays active: {}",
        status_summary(&status)
    );
    let main = lab.route_table("main");
    assert!(
        main.lines()
            .any(|l| l.starts_with("default") && l.contains("proto 201"))
            && main.contains("nexthop via 192.0.2.1 dev wan1")
            && main.contains("nexthop via 198.51.100.1 dev wan2"),
        "our main default stays, over both WANs:\n{main}"
    );
    let during = lab.kernel_state();
    assert!(
        during.routes == before.routes && during.nft == before.nft,
        "with every WAN down the kernel must hold what it held with every WAN up\n\
         --- routes before\n{}\n--- routes now\n{}\n--- nft before\n{}\n--- nft now\n{}",
        before.routes,
        during.routes,
        before.nft,
        during.nft
    );
    let failovers = lab.events(since, Some(EventKind::Failover), None);
    println!("failover events:\n{}", dump_events(&failovers));
    assert!(
        failovers.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("every WAN is down")),
        "the event log must say every WAN is down, not name a dead WAN as the new route:\n{}",
        dump_events(&failovers)
    );

    lab.isp_blackhole(1, false);
    lab.isp_uplink(2, true);
    // Both families: the table is compared whole, and each family recovers on its own
    // (the IPv6 side a few rounds after the IPv4 one, at times).
    let (_, took) = lab.wait_status("both WANs back", RECOVER, |s| {
        let v6_back = ["wan1", "wan2"]
            .iter()
            .all(|w| wan(s, w)["ipv6"]["usable"] == true && wan(s, w)["ipv6"]["active"] == true);
        (all_up_and_active(s, &["wan1", "wan2"]) && v6_back).then_some(())
    });
    println!(
        "both back {:.2}s after the ISPs recovered",
        took.as_secs_f64()
    );
    until_wans_seen(&lab, &server, &[1, 2]);
    let after = lab.kernel_state();
    assert!(
        after.routes == before.routes && after.nft == before.nft,
        "back to the initial state\n--- routes before\n{}\n--- routes now\n{}\n--- nft before\n{}\n--- nft now\n{}",
        before.routes,
        after.routes,
        before.nft,
        after.nft
    );
}
