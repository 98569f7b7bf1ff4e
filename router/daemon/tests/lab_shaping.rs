//! Shaping on a real lab. This machine's kernel has no CAKE: a config shaping a line is
//! refused (control socket, reload, `--check`) naming the key and the reason, and routing
//! stays exactly as it was. The redirect half (ifb, ingress qdisc, u32 + mirred) and the
//! driver's reading back, adopting and removing are tested with tbf in CAKE's place; a
//! restarted daemon removes what is ours and no longer configured.

mod common;

use common::lab::*;
use routeros_daemon::apply::qdisc::tc::probe_cake;
use routeros_daemon::apply::{ShapingDriver, TcShaping};
use routeros_shared::control::Request;
use routeros_shared::plan::shaping::{ShapedLine, Shaper};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The lab's config with wan1's speeds declared and shaping on.
fn shaping_config(base: &str) -> String {
    replace_once(
        base,
        "name = \"wan1\"\n",
        "name = \"wan1\"\ndownload_mbit = 8\nupload_mbit = 4\nshaping = { enabled = true }\n",
    )
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `tc qdisc show` of every device in the router namespace, and its ifb devices.
fn qdiscs_and_ifbs(lab: &Lab) -> (String, String) {
    (
        run_ok("ip", &["netns", "exec", &lab.rtr(), "tc", "qdisc", "show"]),
        run_ok(
            "ip",
            &["-n", &lab.rtr(), "-br", "link", "show", "type", "ifb"],
        ),
    )
}

#[test]
#[ignore = "needs root"]
fn shaping_without_cake_is_refused_and_routing_untouched() {
    let lab = Lab::up(
        "sh1",
        LabOpts {
            ipv6: false,
            ..LabOpts::default()
        },
    );
    let has_cake = block_on(probe_cake()).expect("the probe runs");
    println!("this kernel has CAKE: {has_cake}");
    let base = std::fs::read_to_string(lab.config_path()).unwrap();
    let shaped = shaping_config(&base);
    let before = lab.kernel_state();
    let tc_before = qdiscs_and_ifbs(&lab);

    let answer = lab
        .control(&Request::ApplyConfig {
            toml: shaped.clone(),
            confirm_seconds: 60,
            by: "test".into(),
        })
        .expect("apply answer");
    println!("apply of a shaping config: {answer}");
    if has_cake {
        // A kernel with CAKE (not this lab's): accepted, and the line is shaped.
        assert_eq!(answer["ok"], true, "{answer}");
        let status = lab.status();
        assert_eq!(wan(&status, "wan1")["shaping"]["active"], true, "{status}");
        return;
    }
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(
        answer["errors"][0]["path"],
        "wan_interfaces[0].shaping.enabled"
    );
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("this kernel has no sch_cake"),
        "{answer}"
    );
    assert_eq!(answer["errors"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(
        std::fs::read_to_string(lab.config_path()).unwrap(),
        base,
        "saved config untouched"
    );

    // The same file by reload (SIGHUP's path) and by `routeros-watchdog --check`.
    std::fs::write(lab.config_path(), &shaped).unwrap();
    let answer = lab.control(&Request::Reload).expect("reload answer");
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(
        answer["errors"][0]["path"],
        "wan_interfaces[0].shaping.enabled"
    );
    let check = Command::new(env!("CARGO_BIN_EXE_routeros-watchdog"))
        .args(["--check", "--config"])
        .arg(lab.config_path())
        .output()
        .expect("run --check");
    let printed = String::from_utf8_lossy(&check.stderr);
    println!("--check: {printed}");
    assert!(!check.status.success(), "{printed}");
    assert!(
        printed.contains("wan_interfaces[0].shaping.enabled: this kernel has no sch_cake"),
        "{printed}"
    );
    std::fs::write(lab.config_path(), &base).unwrap();
    // The config without shaping passes the same check.
    let check = Command::new(env!("CARGO_BIN_EXE_routeros-watchdog"))
        .args(["--check", "--config"])
        .arg(lab.config_path())
        .output()
        .expect("run --check");
    assert!(check.status.success(), "{check:?}");

    // Nothing of the running state moved: routes, rules, nft, qdiscs; lines still carry.
    assert_state_eq(&before, &lab.kernel_state(), "after the refusals");
    assert_eq!(qdiscs_and_ifbs(&lab), tc_before);
    let status = lab.status();
    assert_eq!(wan(&status, "wan1")["shaping"], Value::Null, "{status}");
    assert_eq!(status["active_wans"], serde_json::json!(["wan1", "wan2"]));
    let server = TcpEchoServer::start(&lab.inet(), inet(ECHO_PORT));
    let peers = probe_sources(&lab.lan(), server.addr, 4).expect("traffic still flows");
    assert_eq!(peers.len(), 4);
}

/// `iperf3` server on the internet host (ours to kill).
struct Iperf(Child);

impl Iperf {
    fn start(lab: &Lab, port: u16) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.inet(), "iperf3", "-s", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server");
        std::thread::sleep(Duration::from_millis(300));
        Iperf(child)
    }
}

impl Drop for Iperf {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Goodput in Mbit/s the LAN client receives (`download`) or sends, over 3 s.
fn goodput(lab: &Lab, port: u16, download: bool) -> f64 {
    let port = port.to_string();
    let host = INET_HOST.to_string();
    let ns = lab.lan();
    let mut args = vec![
        "netns", "exec", &ns, "iperf3", "-c", &host, "-p", &port, "-t", "3", "-J",
    ];
    if download {
        args.push("-R");
    }
    let json: Value = serde_json::from_str(&run_ok("ip", &args)).expect("iperf3 JSON");
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("received rate")
        / 1e6
}

#[test]
#[ignore = "needs root"]
fn the_driver_shapes_both_directions_adopts_and_a_restart_cleans_up() {
    let lab = Lab::up(
        "sh2",
        LabOpts {
            wans: 1,
            weights: vec![1],
            ipv6: false,
            ..LabOpts::default()
        },
    );
    const PORT: u16 = 5291;
    let _server = Iperf::start(&lab, PORT);
    let (free_down, free_up) = (goodput(&lab, PORT, true), goodput(&lab, PORT, false));
    println!("unshaped: down {free_down:.1} Mbit/s, up {free_up:.1} Mbit/s");

    let line = ShapedLine {
        wan: "wan1".into(),
        dev: "wan1".into(),
        ifb: "ifb-wan1".into(),
        upload_kbit: 4_000,
        download_kbit: 8_000,
    };
    let configured = vec!["wan1".to_string()];
    let sync = |lines: Vec<ShapedLine>| {
        let configured = configured.clone();
        in_ns(&lab.rtr(), move || {
            block_on(TcShaping::new(Shaper::Tbf).sync(&lines, &configured))
        })
    };

    let first = sync(vec![line.clone()]);
    println!("first sync ran: {:#?}", first.ran);
    assert!(first.failed.is_empty(), "{first:?}");
    assert_eq!(first.ran.len(), 7, "every step: {first:?}");
    // A new driver (a restarted daemon) finds it all in place: nothing run.
    let again = sync(vec![line.clone()]);
    assert!(again.ran.is_empty() && again.failed.is_empty(), "{again:?}");

    let (down, up) = (goodput(&lab, PORT, true), goodput(&lab, PORT, false));
    println!("shaped to 8/4 Mbit/s with tbf: down {down:.2} Mbit/s, up {up:.2} Mbit/s");
    assert!(
        (5.5..=8.4).contains(&down),
        "download through the ifb: {down}"
    );
    assert!((2.7..=4.2).contains(&up), "upload on wan1: {up}");

    // A changed rate is one command.
    let mut faster = line.clone();
    faster.download_kbit = 16_000;
    let changed = sync(vec![faster]);
    assert_eq!(changed.ran.len(), 1, "{changed:?}");
    assert!(changed.ran[0].contains("dev ifb-wan1 root handle 6e78: tbf rate 16000kbit"));

    // The daemon's config shapes nothing: a restart removes ours, leaving the defaults.
    lab.daemon_stop();
    lab.daemon_start();
    let (qdiscs, ifbs) = qdiscs_and_ifbs(&lab);
    println!("after the restart:\n{qdiscs}{ifbs}");
    assert!(!qdiscs.contains("6e78:"), "{qdiscs}");
    assert!(!qdiscs.contains("ingress"), "{qdiscs}");
    assert!(ifbs.trim().is_empty(), "{ifbs}");
    let down = goodput(&lab, PORT, true);
    assert!(down > 20.0, "unshaped again: {down}");
}
