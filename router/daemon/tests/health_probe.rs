//! The health prober against the real kernel (root): two emulated ISPs in their own
//! namespaces, each holding the probe targets on its `lo`. The router's main default
//! route points at wan1 only; wan2 is reachable through table 200 and `oif wan2 lookup
//! 200`, the rule the planner installs. Probes on wan2 must really leave via wan2.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{fresh_netns, sh};
use routeros_daemon::health::{client_for, probe_round, spawn_wan_prober, ProbeJob, Round};
use routeros_shared::plan::Family;
use tokio::sync::{mpsc, watch};

const TARGET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const TARGET2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
/// Nobody holds it; ISP2 forwards and answers "network unreachable".
const UNROUTED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 99);
const TIMEOUT: Duration = Duration::from_millis(300);
/// The ISP end of each WAN veth, inside the ISP's namespace.
const PEER: &str = "up0";

/// An ISP namespace made with `ip netns add`, deleted on drop (also when a test panics).
struct Isp {
    ns: String,
}

impl Isp {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let ns = format!(
            "rtos-hp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sh(&format!("ip netns add {ns}"));
        let isp = Self { ns };
        isp.exec(
            // arp_ignore=1: like a real ISP router, do not answer ARP on the customer link
            // for addresses held elsewhere (here: the targets on lo). Otherwise the kernel's
            // "no route for this oif: assume on-link" fallback makes probes work without
            // the oif rule, and the test could not tell.
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
             net.ipv4.ip_forward=1 net.ipv4.conf.all.arp_ignore=1",
        );
        sh(&format!(
            "ip -n {0} link set lo up && ip -n {0} addr add {TARGET}/32 dev lo && \
             ip -n {0} addr add {TARGET2}/32 dev lo",
            isp.ns
        ));
        isp
    }

    fn exec(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} {cmd}", self.ns))
    }

    /// Packets the ISP received from us.
    fn rx_packets(&self) -> u64 {
        link_packets(&format!("-n {}", self.ns), PEER, "rx")
    }

    /// ICMP "destination unreachable" messages the ISP sent.
    fn dest_unreachs_sent(&self) -> u64 {
        let snmp = self.exec("cat /proc/net/snmp");
        let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
        let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
        let i = names
            .split_whitespace()
            .position(|n| n == "OutDestUnreachs")
            .unwrap();
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    }
}

impl Drop for Isp {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .status();
    }
}

fn link_packets(ns_arg: &str, dev: &str, dir: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&sh(&format!("ip {ns_arg} -s -j link show {dev}"))).unwrap();
    v[0]["stats64"][dir]["packets"]
        .as_u64()
        .expect("packet counter")
}

struct Lab {
    isp1: Isp,
    isp2: Isp,
}

/// wan1 192.0.2.2/29 (ISP 192.0.2.1), wan2 198.51.100.2/29 (ISP 198.51.100.1).
const WAN1: (&str, &str, &str, u32) = ("wan1", "192.0.2.2", "192.0.2.1", 100);
const WAN2: (&str, &str, &str, u32) = ("wan2", "198.51.100.2", "198.51.100.1", 200);

impl Lab {
    fn new() -> Self {
        fresh_netns();
        sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
        let lab = Self {
            isp1: Isp::new("isp1"),
            isp2: Isp::new("isp2"),
        };
        lab.connect(WAN1, &lab.isp1);
        lab.connect(WAN2, &lab.isp2);
        // The planner's per-WAN rules (priority 1300 + i).
        sh("ip rule add pref 1300 oif wan1 lookup 100");
        sh("ip rule add pref 1301 oif wan2 lookup 200");
        lab
    }

    /// (Re)create one WAN link and its routes: its table's default, and the main default
    /// for wan1 only.
    fn connect(&self, (dev, addr, gw, table): (&str, &str, &str, u32), isp: &Isp) {
        let ns = &isp.ns;
        sh(&format!(
            "ip link add {dev} type veth peer name {PEER} netns {ns} && \
             ip -n {ns} addr add {gw}/29 dev {PEER} && ip -n {ns} link set {PEER} up && \
             ip addr add {addr}/29 dev {dev} && ip link set {dev} up && \
             ip route add default via {gw} dev {dev} table {table}"
        ));
        if dev == "wan1" {
            sh(&format!("ip route add default via {gw} dev {dev}"));
        }
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    // Current-thread: the sockets must be opened on this thread, inside its namespace.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

async fn round(wan: &str, targets: &[Ipv4Addr], seq: u16) -> Round {
    let client = client_for(wan, Family::V4).expect("ICMP socket bound to the WAN");
    probe_round(&client, wan, &ips(targets), TIMEOUT, seq).await
}

fn ips(targets: &[Ipv4Addr]) -> Vec<IpAddr> {
    targets.iter().map(|&t| t.into()).collect()
}

fn job(wan: &str, targets: &[Ipv4Addr]) -> ProbeJob {
    ProbeJob {
        wan: wan.into(),
        device: wan.into(),
        family: Family::V4,
        targets: ips(targets),
    }
}

#[test]
#[ignore = "needs root"]
fn a_wan2_round_leaves_via_wan2_and_counts_only_echo_replies() {
    let lab = Lab::new();
    assert!(
        sh("ip route show table main").contains("default via 192.0.2.1 dev wan1"),
        "main default is wan1 only"
    );
    let (isp1_rx, isp2_rx) = (lab.isp1.rx_packets(), lab.isp2.rx_packets());
    let (wan1_tx, wan2_tx) = (
        link_packets("", "wan1", "tx"),
        link_packets("", "wan2", "tx"),
    );
    let unreachs = lab.isp2.dest_unreachs_sent();

    let r = run(round("wan2", &[TARGET, TARGET2, UNROUTED], 7));

    assert!(
        r.replies[0].1.is_some() && r.replies[1].1.is_some(),
        "{r:?}"
    );
    assert_eq!(
        r.replies[2],
        (IpAddr::V4(UNROUTED), None),
        "an ICMP error is not an answer"
    );
    assert!(r.succeeded(2));
    assert!(
        lab.isp2.dest_unreachs_sent() > unreachs,
        "ISP2 did answer the unrouted probe with an ICMP error"
    );
    // Three echo requests (plus ARP) went out on wan2 and reached ISP2; nothing took wan1.
    assert!(link_packets("", "wan2", "tx") >= wan2_tx + 3);
    assert!(lab.isp2.rx_packets() >= isp2_rx + 3);
    assert_eq!(
        link_packets("", "wan1", "tx"),
        wan1_tx,
        "nothing left via wan1"
    );
    assert_eq!(lab.isp1.rx_packets(), isp1_rx, "ISP1 saw nothing");

    // Control: SO_BINDTODEVICE alone does not reach the WAN's gateway without the rule.
    sh("ip rule del pref 1301");
    let r = run(round("wan2", &[TARGET], 9));
    assert_eq!(
        r.answered(),
        0,
        "without `oif wan2 lookup 200` the probe must fail: {r:?}"
    );
    sh("ip rule add pref 1301 oif wan2 lookup 200");

    // And wan1's own round goes to ISP1.
    let r = run(round("wan1", &[TARGET, TARGET], 8));
    assert_eq!(
        r.answered(),
        2,
        "a duplicated target is pinged once, reported twice: {r:?}"
    );
    assert!(lab.isp1.rx_packets() > isp1_rx);
}

#[test]
#[ignore = "needs root"]
fn wan2_fails_when_isp2_goes_dark_while_wan1_still_answers() {
    let lab = Lab::new();
    run(async {
        let wan1 = client_for("wan1", Family::V4).unwrap();
        let wan2 = client_for("wan2", Family::V4).unwrap();
        let targets = ips(&[TARGET, TARGET2]);
        let r = probe_round(&wan2, "wan2", &targets, TIMEOUT, 1).await;
        assert_eq!(r.answered(), 2, "wan2 healthy first: {r:?}");

        sh(&format!("ip -n {} link set {PEER} down", lab.isp2.ns));

        let started = Instant::now();
        let (r1, r2) = tokio::join!(
            probe_round(&wan1, "wan1", &targets, TIMEOUT, 2),
            probe_round(&wan2, "wan2", &targets, TIMEOUT, 2),
        );
        assert_eq!(r2, Round::all_lost(&targets));
        assert!(!r2.succeeded(1));
        assert_eq!(r1.answered(), 2, "{r1:?}");
        assert!(
            started.elapsed() < TIMEOUT * 2,
            "targets are pinged concurrently"
        );
    });
}

/// Collect what the probers send until `deadline`.
async fn collect(
    rx: &mut mpsc::Receiver<(String, Family, Round)>,
    until: Duration,
) -> Vec<(String, Family, Round)> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + until;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        got.push(msg);
    }
    got
}

#[test]
#[ignore = "needs root"]
fn a_100ms_prober_delivers_about_15_rounds_in_1_5_s_even_when_its_wan_is_dead() {
    let lab = Lab::new();
    sh(&format!("ip -n {} link set {PEER} down", lab.isp2.ns));
    run(async {
        let (tx, mut rx) = mpsc::channel(64);
        let every = Duration::from_millis(100);
        let timeout = Duration::from_millis(80);
        let targets = [TARGET, TARGET2];
        // The interval's sending side lives as long as the probers (dropped: they stop).
        let (_pace, every) = watch::channel(every);
        let p1 = spawn_wan_prober(job("wan1", &targets), every.clone(), timeout, tx.clone());
        let p2 = spawn_wan_prober(job("wan2", &targets), every, timeout, tx);
        let got = collect(&mut rx, Duration::from_millis(1500)).await;
        p1.abort();
        p2.abort();

        let of = |wan: &str| {
            got.iter()
                .filter(|(w, _, _)| w == wan)
                .map(|(_, _, r)| r)
                .collect::<Vec<_>>()
        };
        let (w1, w2) = (of("wan1"), of("wan2"));
        assert!((13..=17).contains(&w1.len()), "wan1 rounds: {}", w1.len());
        assert!((13..=17).contains(&w2.len()), "wan2 rounds: {}", w2.len());
        assert!(
            w1.iter().all(|r| r.answered() == 2),
            "wan1 answers every round"
        );
        assert!(w2.iter().all(|r| r.answered() == 0), "wan2 is dark");
    });
}

#[test]
#[ignore = "needs root"]
fn the_prober_rebinds_when_its_interface_is_recreated() {
    let lab = Lab::new();
    run(async {
        let (tx, mut rx) = mpsc::channel(64);
        let (_pace, every) = watch::channel(Duration::from_millis(100));
        let prober = spawn_wan_prober(job("wan1", &[TARGET]), every, Duration::from_millis(80), tx);
        wait_for(&mut rx, true).await;
        // Re-created between two rounds: the runtime is single-threaded, so the prober
        // cannot run while `sh` blocks. Only the index tells that the socket is stale.
        while rx.try_recv().is_ok() {}
        sh("ip link del wan1");
        lab.connect(WAN1, &lab.isp1);
        wait_for(&mut rx, true).await;
        // Gone for a while: rounds report loss, then the prober binds to the new link.
        sh("ip link del wan1");
        wait_for(&mut rx, false).await;
        lab.connect(WAN1, &lab.isp1);
        wait_for(&mut rx, true).await;
        prober.abort();
    });
}

/// A prober told a shorter interval uses it at once: slow rounds (every 2 s), then, one
/// round in, every 100 ms; and slow again when told so.
#[test]
#[ignore = "needs root"]
fn a_new_interval_takes_effect_at_once() {
    let _lab = Lab::new();
    run(async {
        let (tx, mut rx) = mpsc::channel(64);
        let (pace, every) = watch::channel(Duration::from_secs(2));
        let prober = spawn_wan_prober(job("wan1", &[TARGET]), every, Duration::from_millis(80), tx);
        wait_for(&mut rx, true).await; // the first round goes at once
        pace.send(Duration::from_millis(100)).unwrap();
        let fast = collect(&mut rx, Duration::from_millis(1000)).await.len();
        pace.send(Duration::from_secs(2)).unwrap();
        while rx.try_recv().is_ok() {}
        let slow = collect(&mut rx, Duration::from_millis(1000)).await.len();
        prober.abort();
        println!("rounds in 1 s: {fast} at 100 ms, {slow} at 2 s");
        assert!((8..=11).contains(&fast), "{fast} rounds at 100 ms");
        assert!(slow <= 1, "{slow} rounds at 2 s");
    });
}

/// Wait (at most 3 s) for a round that succeeded (`want_ok`) or failed.
async fn wait_for(rx: &mut mpsc::Receiver<(String, Family, Round)>, want_ok: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (_, _, r) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no round with success={want_ok} within 3 s"))
            .expect("prober alive");
        if r.succeeded(1) == want_ok {
            return;
        }
    }
}

/// IPv6 probes (ICMPv6 echo) through wan2 leave by wan2's IPv6 table, picked by the
/// planner's `oif` rule as for IPv4: with the rule a target behind ISP2 answers; without
/// it (no other IPv6 route in the router) nothing does.
#[test]
#[ignore = "needs root"]
fn an_ipv6_round_uses_the_wan_and_its_oif_rule() {
    const TARGET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf000, 0, 0, 0, 0, 0x10);
    fresh_netns();
    let isp = Isp::new("v6");
    isp.exec("sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.all.forwarding=1");
    let ns = &isp.ns;
    sh(&format!(
        "ip link add wan2 type veth peer name {PEER} netns {ns} && \
         ip -n {ns} addr add 2001:db8:ff02::1/64 dev {PEER} nodad && \
         ip -n {ns} addr add {TARGET6}/128 dev lo && ip -n {ns} link set {PEER} up && \
         ip addr add 2001:db8:ff02::2/64 dev wan2 nodad && ip link set wan2 up && \
         ip -6 route add default via 2001:db8:ff02::1 dev wan2 table 200 && \
         ip -6 rule add pref 1301 oif wan2 lookup 200"
    ));
    let targets = [IpAddr::V6(TARGET6)];
    run(async {
        let client = client_for("wan2", Family::V6).expect("ICMPv6 socket bound to wan2");
        // Neighbour discovery of the ISP's router may cost the first round.
        let mut answered = 0;
        for seq in 1..=5 {
            answered = probe_round(&client, "wan2", &targets, TIMEOUT, seq)
                .await
                .answered();
            if answered == 1 {
                break;
            }
        }
        assert_eq!(answered, 1, "the IPv6 target behind ISP2 answers");
        sh("ip -6 rule del pref 1301");
        let r = probe_round(&client, "wan2", &targets, TIMEOUT, 9).await;
        assert_eq!(r.answered(), 0, "without the oif rule: no route: {r:?}");
    });
}
