//! Smart placement in the namespace lab (`ci/lab.sh`: wan1 100 Mbit/s, wan2 50 Mbit/s tbf,
//! weights 2:1). Spare capacity: while one LAN host's download fills wan1, new connections
//! from another host go mostly to wan2; once it ends, they split by weight again. Auto
//! weights: after a download over each line, the weights follow the learned speeds. Root only.
//!
//!     sudo LAB_TEST_TAG=S cargo test -p routeros-daemon --test lab_placement -- --include-ignored --nocapture

mod common;

use common::lab::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A second LAN host, whose downloads a policy pins to wan1.
const BULK_HOST: &str = "192.168.1.101";
const BULK_PORT: &str = "5299";
/// New connections counted per phase.
const PROBES: usize = 120;

/// A process started by the test, killed (by its own id) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_in(ns: &str, args: &[&str]) -> Proc {
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {args:?} in {ns}: {e}"));
    Proc(child)
}

/// Add `host` to the LAN client's interface (another LAN host).
fn add_lan_host(lab: &Lab, host: &str) {
    let cidr = format!("{host}/24");
    run_ok(
        "ip",
        &["-n", &lab.lan(), "addr", "add", &cidr, "dev", "eth0"],
    );
}

/// A download of `secs` seconds from the internet host to `host` (iperf3 -R on `port`):
/// (server, client).
fn download(lab: &Lab, host: &str, port: &str, secs: &str) -> (Proc, Proc) {
    let server = spawn_in(&lab.inet(), &["iperf3", "-s", "-p", port]);
    std::thread::sleep(Duration::from_millis(500));
    let inet = INET_HOST.to_string();
    let args = [
        "iperf3", "-c", &inet, "-p", port, "-B", host, "-R", "-t", secs,
    ];
    (server, spawn_in(&lab.lan(), &args))
}

/// wan2's share of new connections as the daemon places them (from the status).
fn wan2_share(status: &Value) -> Option<f64> {
    let share = |name| wan(status, name)["share"].as_f64();
    let (a, b) = (share("wan1")?, share("wan2")?);
    Some(b / (a + b))
}

fn probe_wan2_share(lab: &Lab, server: &TcpEchoServer) -> (f64, String) {
    let sources = probe_sources(&lab.lan(), server.addr, PROBES).expect("LAN connections");
    let counts = count_by_wan(&sources, 2);
    assert_eq!(counts[&0], 0, "sources that are no WAN address: {counts:?}");
    (counts[&2] as f64 / PROBES as f64, format!("{counts:?}"))
}

/// `[routing]` lines, then policies pinning each `(host, wan)`.
fn routing(first: &str, pins: &[(&str, &str)]) -> String {
    let mut toml = format!("{first}\n");
    for (i, (host, wan)) in pins.iter().enumerate() {
        toml +=
            &format!("\n[[policies]]\nname = \"pin{i}\"\nsrc = \"{host}\"\nvia = [\"{wan}\"]\n");
    }
    toml
}

#[test]
#[ignore = "needs root"]
fn a_saturated_line_gets_fewer_new_connections() {
    let lab = Lab::up(
        "sp",
        LabOpts {
            ipv6: false,
            routing_toml: routing("placement = \"spare_capacity\"", &[(BULK_HOST, "wan1")]),
            ..LabOpts::default()
        },
    );
    add_lan_host(&lab, BULK_HOST);
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));

    // Idle: by weight (wan2 1/3).
    let (idle, idle_counts) = probe_wan2_share(&lab, &server);

    // One download from the bulk host fills wan1.
    let (_iperf_server, bulk) = download(&lab, BULK_HOST, BULK_PORT, "60");
    let (placed, took) = lab.wait_status(
        "wan1 full: wan2 given >= 80 % of new connections",
        Duration::from_secs(15),
        |s| wan2_share(s).filter(|&share| share >= 0.8),
    );
    // Held for a few seconds, the download teaches the daemon wan1's speed (tbf 100 Mbit/s).
    let (speed, learned_in) = lab.wait_status(
        "wan1's download speed learned from its counters",
        Duration::from_secs(15),
        |s| {
            let speed = &wan(s, "wan1")["speed_down"];
            let kbit = speed["kbit"].as_u64()?;
            (speed["source"] == "learned" && (85_000..=105_000).contains(&kbit)).then_some(kbit)
        },
    );

    // Steady state (rate at the learned speed: wan1 at the 5 % floor), then count.
    let (settled, _) = lab.wait_status(
        "wan1 full at its learned speed: wan2 given >= 85 %",
        Duration::from_secs(10),
        |s| wan2_share(s).filter(|&share| share >= 0.85),
    );
    let (busy, busy_counts) = probe_wan2_share(&lab, &server);

    // The download ends: back to the weights.
    drop(bulk);
    let (_, back) = lab.wait_status(
        "download over: back to weight placement",
        Duration::from_secs(15),
        |s| wan2_share(s).filter(|&share| share < 0.4),
    );
    println!(
        "new connections on wan2: idle {idle:.2} {idle_counts}, wan1 saturated {busy:.2} {busy_counts} \
         (placer share {placed:.2} {:.1} s after the download started, {settled:.2} once wan1 \
         learned {speed} kbit/s {:.1} s later); back to weights {:.1} s after the download ended",
        took.as_secs_f64(),
        learned_in.as_secs_f64(),
        back.as_secs_f64()
    );
    assert!(
        busy >= 0.8,
        "wan2 got {busy:.2} of new connections while wan1 was full"
    );
    assert!(
        idle < 0.5,
        "idle placement follows the 2:1 weights: wan2 got {idle:.2}"
    );
}

#[test]
#[ignore = "needs root"]
fn auto_weights_follow_the_learned_speeds() {
    const HOST2: &str = "192.168.1.102";
    let lab = Lab::up(
        "sa",
        LabOpts {
            ipv6: false,
            routing_toml: routing(
                "weights = \"auto\"",
                &[(BULK_HOST, "wan1"), (HOST2, "wan2")],
            ),
            ..LabOpts::default()
        },
    );
    add_lan_host(&lab, BULK_HOST);
    add_lan_host(&lab, HOST2);
    // Nothing learned yet: both lines at the default speed, equal weights.
    let status = lab.status();
    for name in ["wan1", "wan2"] {
        assert_eq!(
            wan(&status, name)["speed_down"]["source"],
            "default",
            "{name}"
        );
        assert_eq!(wan(&status, name)["weight"], 255, "{name}");
    }
    // A download over each line at once.
    let _one = download(&lab, BULK_HOST, BULK_PORT, "30");
    let _two = download(&lab, HOST2, "5298", "30");
    let learned = |s: &Value, name: &str, range: std::ops::RangeInclusive<u64>| {
        let speed = &wan(s, name)["speed_down"];
        speed["source"] == "learned" && speed["kbit"].as_u64().is_some_and(|k| range.contains(&k))
    };
    let ((w1, w2), took) = lab.wait_status(
        "both speeds learned and the weights following them (about 2:1)",
        Duration::from_secs(20),
        |s| {
            let weights = (
                wan(s, "wan1")["weight"].as_u64()?,
                wan(s, "wan2")["weight"].as_u64()?,
            );
            (learned(s, "wan1", 85_000..=105_000)
                && learned(s, "wan2", 42_000..=53_000)
                && weights.0 == 255
                && (110..=150).contains(&weights.1))
            .then_some(weights)
        },
    );
    let status = lab.status();
    println!(
        "auto weights {w1}:{w2} {:.1} s after the downloads started; speeds wan1 {} wan2 {}",
        took.as_secs_f64(),
        wan(&status, "wan1")["speed_down"],
        wan(&status, "wan2")["speed_down"]
    );
    let nft = lab.nft_table();
    assert!(
        nft.contains(&format!("numgen random mod {} map", w1 + w2)),
        "the choice map follows the weights:\n{nft}"
    );
}
