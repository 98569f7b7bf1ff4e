//! The HA pair with the real daemon in each box ([`common::pair`]'s topology): each router
//! namespace runs `routeros-watchdog` with `[ha] enabled = true`, which starts keepalived and
//! conntrackd itself and hears its role from keepalived's notify. A LAN client behind the
//! virtual gateway keeps 50 TCP connections to the internet host (a line each second each)
//! and a UDP stream (a probe every 20 ms), both `ci/lib/udp_probe.py`. Then:
//!
//! 1. the master box dies (every process in it killed with SIGKILL, its links down): the
//!    UDP stream's outage is within the target (1 s adverts: VRRP's 3 adverts + skew, about
//!    3 s with the priorities 254/253, asserted < 3.5 s; 200 ms adverts: < 1 s) and all 50 TCP connections go on through the backup,
//!    the internet host still seeing them from the virtual address. Before, the backup's
//!    conntrackd must hold all 50. The 1 s run keeps the kernel's default
//!    `nf_conntrack_tcp_loose = 1` (as the appliance ships); the 200 ms run sets it to 0, so
//!    there a connection survives only if its conntrack entry reached the backup through
//!    conntrackd and was committed (the kernel does not pick a TCP connection up mid-stream);
//! 2. the old master comes back (as after a reboot: no addresses of the pair, an empty
//!    conntrack table): it stays backup (`nopreempt`), takes the table from the new master,
//!    and the stream sees no second outage above the target, the connections all live;
//! 3. the sync link alone breaks: VRRP runs over the LAN, so the boxes still hear each other
//!    and never both hold the gateway; the stream goes on.
//!
//! Prints the figures (`--nocapture`), one `HA-FIGURES` line per run for ci/bench-ha.sh.

mod common;

use common::pair::{box_config, wait_until, Topology, INET_HOST, LAN_GATEWAY, WAN_VIRTUAL};
use common::sh;
use routeros_shared::control::{self, Request};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONNS: usize = 50;
const UDP_PORT: u16 = 40000;
const TCP_PORT: u16 = 40001;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// One box: its namespace and the daemon running in it (files under `dir`).
struct RouterBox {
    name: &'static str,
    ns: String,
    dir: PathBuf,
    daemon: Option<Child>,
}

impl RouterBox {
    fn new(t: &Topology, name: &'static str, run: &Path, config: &str) -> RouterBox {
        let dir = run.join(name);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("routeros.toml"), config).unwrap();
        RouterBox {
            name,
            ns: t.ns(name),
            dir,
            daemon: None,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// The daemon, as the unit runs it but in the namespace: no networkd (the test gave the
    /// links their addresses; the daemon's networkd files go to a directory nobody reads)
    /// and no system bus (nothing of this machine's systemd is touched).
    fn start(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .unwrap();
        let d = &self.dir;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                env!("CARGO_BIN_EXE_routeros-watchdog"),
            ])
            .arg("--config")
            .arg(d.join("routeros.toml"))
            .arg("--state-dir")
            .arg(d.join("state"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--log-dir")
            .arg(d)
            .arg("--network-dir")
            .arg(d.join("network"))
            .args(["--dhcp-unit", ""])
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}", d.join("no-system-bus").display()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let ready = wait_until(Duration::from_secs(20), || {
            self.status()
                .is_some_and(|s| s["ok"] == true && !s["applied_at"].is_null())
        });
        assert!(
            ready,
            "[{}] daemon not ready:\n{}",
            self.name,
            self.log_tail()
        );
    }

    fn status(&self) -> Option<Value> {
        control::call(&self.socket(), &Request::Status).ok()
    }

    /// The role keepalived last told this box's daemon ("master", "backup", ...).
    fn role(&self) -> Option<String> {
        Some(self.status()?["ha"]["role"].as_str()?.to_string())
    }

    fn wait_role(&self, role: &str, limit: Duration) {
        assert!(
            wait_until(limit, || self.role().as_deref() == Some(role)),
            "[{}] never {role} (status {:?}):\n{}",
            self.name,
            self.status().map(|s| s["ha"].clone()),
            self.log_tail()
        );
    }

    /// Wait until the daemon has wan1 in service (its probes through it answered).
    fn wait_line_active(&self) {
        let active = |s: Value| {
            s["wans"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["name"] == "wan1" && w["active"] == true))
        };
        assert!(
            wait_until(Duration::from_secs(20), || self
                .status()
                .is_some_and(active)),
            "[{}] wan1 never in service: {:?}\n{}",
            self.name,
            self.status().map(|s| s["wans"].clone()),
            self.log_tail()
        );
    }

    /// conntrackd's external cache (the peer's connections) as it dumps it (`-e`).
    fn external_cache(&self) -> String {
        let conf = self.dir.join("state/ha/conntrackd.conf");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "conntrackd", "-C"])
            .arg(conf)
            .arg("-e")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// TCP connections to the internet host's echo port in the external cache.
    fn synced_tcp(&self) -> usize {
        self.external_cache()
            .lines()
            .filter(|l| {
                l.trim_start().starts_with("tcp") && l.contains(&format!("dport={TCP_PORT} "))
            })
            .count()
    }

    /// The kernel's TCP connections to the internet host's echo port that carry wan1's
    /// mark (0x100: the first WAN's, the same on both boxes).
    fn marked_tcp(&self) -> usize {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "conntrack", "-L", "-p", "tcp"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!("dport={TCP_PORT} ")) && l.contains("mark=256"))
            .count()
    }

    /// The box dies: every process in it killed (daemon, keepalived, conntrackd), its
    /// links down at once.
    fn crash(&mut self) {
        let ns = &self.ns;
        sh(&format!(
            "for p in $(ip netns pids {ns}); do kill -9 $p; done; \
             ip -n {ns} link set lan0 down && ip -n {ns} link set wan1 down && \
             ip -n {ns} link set sync0 down"
        ));
        if let Some(mut child) = self.daemon.take() {
            let _ = child.wait();
        }
    }

    /// The dead box boots again: no virtual address left on its links, an empty conntrack
    /// table (what a reboot gives), links up, the daemon started.
    fn reboot(&mut self) {
        let ns = &self.ns;
        for (addr, dev) in [
            (format!("{LAN_GATEWAY}/24"), "lan0"),
            (format!("{WAN_VIRTUAL}/29"), "wan1"),
        ] {
            let _ = Command::new("ip")
                .args(["-n", ns, "addr", "del", &addr, "dev", dev])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "exec", ns, "conntrack", "-F"])
            .stderr(Stdio::null())
            .status();
        sh(&format!(
            "ip -n {ns} link set lan0 up && ip -n {ns} link set wan1 up && ip -n {ns} link set sync0 up"
        ));
        self.start();
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for RouterBox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- box {} daemon log:\n{}", self.name, self.log_tail());
        }
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The echo server on the internet host and the LAN client's TCP connections and UDP stream
/// (ci/lib/udp_probe.py), their logs in `dir`.
struct Traffic {
    children: Vec<Child>,
    udp_log: PathBuf,
    tcp_log: PathBuf,
}

impl Traffic {
    fn start(t: &Topology, dir: &Path) -> Traffic {
        let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/lib/udp_probe.py");
        let run = |ns: &str, args: &[&str], out: &str| {
            Command::new("ip")
                .args(["netns", "exec", ns, "python3"])
                .arg(&probe)
                .args(args)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(dir.join(out)).unwrap())
                .stderr(std::fs::File::create(dir.join(format!("{out}.err"))).unwrap())
                .spawn()
                .unwrap()
        };
        let (udp_port, tcp_port) = (UDP_PORT.to_string(), TCP_PORT.to_string());
        let server = run(
            &t.ns("inet"),
            &[
                "server",
                "--addr",
                INET_HOST,
                "--udp-port",
                &udp_port,
                "--tcp-port",
                &tcp_port,
            ],
            "server.out",
        );
        let mut traffic = Traffic {
            children: vec![server],
            udp_log: dir.join("udp.log"),
            tcp_log: dir.join("tcp.log"),
        };
        assert!(
            wait_until(Duration::from_secs(5), || std::fs::read_to_string(
                dir.join("server.out")
            )
            .unwrap_or_default()
            .contains("ready")),
            "the echo server did not start"
        );
        let (tcp_log, udp_log) = (
            traffic.tcp_log.display().to_string(),
            traffic.udp_log.display().to_string(),
        );
        let conns = CONNS.to_string();
        let client = t.ns("c");
        traffic.children.push(run(
            &client,
            &[
                "tcp",
                "--server",
                INET_HOST,
                "--port",
                &tcp_port,
                "--conns",
                &conns,
                "--interval",
                "1",
                "--log",
                &tcp_log,
            ],
            "tcp.out",
        ));
        traffic.children.push(run(
            &client,
            &[
                "udp",
                "--server",
                INET_HOST,
                "--port",
                &udp_port,
                "--interval",
                "0.02",
                "--fresh-interval",
                "0",
                "--log",
                &udp_log,
            ],
            "udp.out",
        ));
        traffic
    }

    /// The longest time (ms) between two answered probes of the UDP stream (by send time)
    /// sent in `from..to` (both ends count as answers: a stream still dead at `to` shows).
    fn udp_outage(&self, from: f64, to: f64) -> f64 {
        let mut stamps = vec![from];
        stamps.extend(udp_answers(&read(&self.udp_log)).filter(|t| *t > from && *t < to));
        stamps.push(to);
        stamps.sort_by(f64::total_cmp);
        stamps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
    }

    /// The connections answered after `since` and not ended, and the addresses the internet
    /// host saw them from.
    fn tcp_alive(&self, since: f64) -> (usize, BTreeSet<String>) {
        tcp_alive(&read(&self.tcp_log), since)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Send times of the answered probes of the UDP stream (`m seq t_send t_recv addr`).
fn udp_answers(log: &str) -> impl Iterator<Item = f64> + '_ {
    log.lines().filter_map(|l| {
        let p: Vec<&str> = l.split_whitespace().collect();
        match p.as_slice() {
            ["m", _, sent, _, _] => sent.parse().ok(),
            _ => None,
        }
    })
}

/// From the TCP log (`r i t addr`, `E i t reason`): connections answered after `since` and
/// never ended, and the addresses seen in those answers.
fn tcp_alive(log: &str, since: f64) -> (usize, BTreeSet<String>) {
    let mut answered = BTreeSet::new();
    let mut ended = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for l in log.lines() {
        let p: Vec<&str> = l.split_whitespace().collect();
        match p.as_slice() {
            ["r", i, t, addr] if t.parse::<f64>().is_ok_and(|t| t > since) => {
                if let Ok(i) = i.parse::<usize>() {
                    answered.insert(i);
                    seen.insert((*addr).to_string());
                }
            }
            ["E", i, ..] => {
                if let Ok(i) = i.parse::<usize>() {
                    ended.insert(i);
                }
            }
            _ => {}
        }
    }
    let alive = answered.difference(&ended).count();
    (alive, seen)
}

/// Both boxes hold the LAN gateway.
fn both_masters(t: &Topology) -> bool {
    t.holds("a", LAN_GATEWAY) && t.holds("b", LAN_GATEWAY)
}

/// The whole scenario with adverts every `advert_ms`; asserts the targets. `tcp_loose`:
/// the boxes' `net.netfilter.nf_conntrack_tcp_loose`.
fn pair(name: &str, advert_ms: u32, target: Duration, tcp_loose: bool) {
    let t = Topology::up(name);
    let run = PathBuf::from(format!("/run/routeros-lab/{}", t.prefix));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let key = run.join("ha.key");
    std::fs::write(&key, "k3y-0001\n").unwrap();
    // Without loose pickup only conntrackd's entries carry a connection over.
    for b in ["a", "b"] {
        sh(&format!(
            "ip netns exec {} sysctl -qw net.netfilter.nf_conntrack_tcp_loose={}",
            t.ns(b),
            u8::from(tcp_loose)
        ));
    }
    let adverts = Duration::from_millis(u64::from(advert_ms));
    let mut a = RouterBox::new(
        &t,
        "a",
        &run,
        &box_config(true, advert_ms, &key.display().to_string()),
    );
    let mut b = RouterBox::new(
        &t,
        "b",
        &run,
        &box_config(false, advert_ms, &key.display().to_string()),
    );
    // A first: both start as backup, the first to hear nobody becomes master.
    a.start();
    a.wait_role("master", Duration::from_secs(15));
    assert!(t.holds("a", LAN_GATEWAY) && t.holds("a", WAN_VIRTUAL));
    b.start();
    b.wait_role("backup", Duration::from_secs(15));
    std::thread::sleep(adverts * 5);
    assert!(
        !t.holds("b", LAN_GATEWAY) && !t.holds("b", WAN_VIRTUAL),
        "B took an address while A was master"
    );
    assert_eq!(a.role().as_deref(), Some("master"));
    a.wait_line_active();
    b.wait_line_active();

    let traffic = Traffic::start(&t, &run);
    let t_start = now_ms();
    assert!(
        wait_until(Duration::from_secs(15), || traffic.tcp_alive(t_start).0
            == CONNS),
        "not all {CONNS} connections answered through the master: {:?}",
        traffic.tcp_alive(t_start)
    );
    let (_, seen) = traffic.tcp_alive(t_start);
    assert_eq!(
        seen,
        BTreeSet::from([WAN_VIRTUAL.to_string()]),
        "the internet host sees the virtual address"
    );
    // conntrackd on the backup holds the master's connections before it dies.
    assert!(
        wait_until(Duration::from_secs(10), || b.synced_tcp() >= CONNS),
        "B's conntrackd holds {} of the {CONNS} connections:\n{}",
        b.synced_tcp(),
        b.external_cache()
    );
    let synced = b.synced_tcp();
    // Each box hears the other's config beacon over the sync link: the same config.
    for (me, other) in [(&a, "B"), (&b, "A")] {
        assert!(
            wait_until(Duration::from_secs(10), || me
                .status()
                .is_some_and(|s| s["ha"]["peer_config"] == "same")),
            "[{}] does not see {other}'s config as the same: {:?}",
            me.name,
            me.status().map(|s| s["ha"].clone())
        );
    }
    std::thread::sleep(Duration::from_secs(2));

    // 1. The master dies.
    let t_kill = now_ms();
    let died = Instant::now();
    a.crash();
    assert!(
        wait_until(Duration::from_secs(10), || t.holds("b", LAN_GATEWAY)),
        "B never took the gateway:\n{}",
        b.log_tail()
    );
    let took = died.elapsed();
    b.wait_role("master", Duration::from_secs(5));
    assert!(
        t.holds("b", WAN_VIRTUAL),
        "B took the gateway but not the line's address"
    );
    let t_took = now_ms();
    // TCP's retransmissions back off while the path is dead: give them time.
    wait_until(Duration::from_secs(20), || {
        traffic.tcp_alive(t_took).0 == CONNS
    });
    let (survived, seen) = traffic.tcp_alive(t_took);
    let marked = b.marked_tcp();
    let outage = traffic.udp_outage(t_kill - 1000.0, now_ms());

    // 2. The old master comes back.
    let t_return = now_ms();
    a.reboot();
    a.wait_role("backup", Duration::from_secs(15));
    let resynced = wait_until(Duration::from_secs(15), || a.synced_tcp() >= CONNS);
    let resynced_count = a.synced_tcp();
    std::thread::sleep(Duration::from_secs(3));
    let return_outage = traffic.udp_outage(t_return - 1000.0, now_ms());
    let (alive_after_return, _) = traffic.tcp_alive(now_ms() - 2500.0);
    assert!(
        t.holds("b", LAN_GATEWAY) && !t.holds("a", LAN_GATEWAY),
        "the returning box took the gateway back"
    );

    // 3. The sync link alone breaks (A's cable to it), for 10 adverts or 5 s.
    let hold = (adverts * 10).max(Duration::from_secs(5));
    let port = t.port("a", "sync0");
    let t_cut = now_ms();
    sh(&format!("ip -n {} link set {port} down", t.ns("sw")));
    let mut dual = 0;
    let cut = Instant::now();
    while cut.elapsed() < hold {
        if both_masters(&t) {
            dual += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let roles_during_cut = (a.role(), b.role());
    sh(&format!("ip -n {} link set {port} up", t.ns("sw")));
    std::thread::sleep(adverts * 3);
    let cut_outage = traffic.udp_outage(t_cut - 1000.0, now_ms());
    let (alive_at_end, _) = traffic.tcp_alive(now_ms() - 2500.0);

    eprintln!(
        "[{name}] adverts every {advert_ms} ms: master killed: backup held the gateway after {:.2} s, \
         UDP outage {outage:.0} ms, TCP {survived}/{CONNS} survived (backup's conntrackd held {synced} before, \
         {marked} in its kernel with wan1's mark after; seen from {seen:?}); old master back: UDP outage {return_outage:.0} ms, TCP {alive_after_return}/{CONNS} alive, \
         it resynced {resynced_count} connections; sync link cut {:.1} s: both masters in {dual} polls, roles {roles_during_cut:?}, \
         UDP outage {cut_outage:.0} ms, TCP {alive_at_end}/{CONNS} alive",
        took.as_secs_f64(),
        hold.as_secs_f64(),
    );
    println!(
        "HA-FIGURES adverts_ms={advert_ms} tcp_loose={} takeover_ms={} udp_outage_ms={outage:.0} tcp_survived={survived}/{CONNS} \
         return_udp_outage_ms={return_outage:.0} return_tcp_alive={alive_after_return}/{CONNS} \
         sync_cut_dual_master_polls={dual} sync_cut_udp_outage_ms={cut_outage:.0} end_tcp_alive={alive_at_end}/{CONNS}",
        u8::from(tcp_loose),
        took.as_millis()
    );
    let target_ms = target.as_secs_f64() * 1000.0;
    assert!(
        outage < target_ms,
        "UDP outage {outage:.0} ms (target < {target_ms} ms)"
    );
    assert_eq!(survived, CONNS, "TCP connections surviving the failover");
    assert!(
        marked >= CONNS,
        "{marked} connections with wan1's mark on the new master"
    );
    assert_eq!(
        seen,
        BTreeSet::from([WAN_VIRTUAL.to_string()]),
        "after the failover the internet host still sees the virtual address"
    );
    assert!(
        resynced,
        "the returning box took only {resynced_count} connections from the master"
    );
    assert!(
        return_outage < target_ms,
        "UDP outage {return_outage:.0} ms when the old master came back"
    );
    assert_eq!(
        alive_after_return, CONNS,
        "TCP connections after the old master's return"
    );
    assert_eq!(
        dual, 0,
        "both boxes held the gateway while the sync link was cut"
    );
    assert_eq!(
        roles_during_cut,
        (Some("backup".to_string()), Some("master".to_string())),
        "roles while the sync link was cut"
    );
    assert!(
        cut_outage < target_ms,
        "UDP outage {cut_outage:.0} ms while the sync link was cut"
    );
    assert_eq!(alive_at_end, CONNS, "TCP connections at the end");
    drop(traffic);
}

#[test]
#[ignore = "needs root"]
fn the_pair_keeps_connections_when_the_master_dies_1s_adverts() {
    // VRRP: 3 missed adverts + skew ((256 - 253) / 256 s for the backup's priority 253), so
    // about 3.0 s after the last advert heard: the issue's 3 s, with room for a busy machine.
    pair("hp1", 1000, Duration::from_millis(3500), true);
}

#[test]
#[ignore = "needs root"]
fn the_pair_keeps_connections_when_the_master_dies_200ms_adverts() {
    pair("hp2", 200, Duration::from_secs(1), false);
}

#[test]
fn the_logs_are_read_as_udp_probe_writes_them() {
    let udp = "# main sport 1\nM 0 1000.0\nm 0 1000.0 1001.0 203.0.113.6\nM 1 1020.0\nM 2 1040.0\nm 2 1040.0 1041.0 203.0.113.6\n";
    assert_eq!(udp_answers(udp).collect::<Vec<_>>(), [1000.0, 1040.0]);
    let tcp = "C 0 1.0 5000\nC 1 1.0 5001\nr 0 10.0 203.0.113.6\nr 1 10.0 203.0.113.6\nr 1 20.0 203.0.113.6\nE 0 30.0 eof\n";
    assert_eq!(tcp_alive(tcp, 5.0).0, 1, "0 ended");
    assert_eq!(tcp_alive(tcp, 15.0).0, 1);
    assert_eq!(tcp_alive(tcp, 25.0).0, 0);
}
