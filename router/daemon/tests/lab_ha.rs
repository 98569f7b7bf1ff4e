//! Two router namespaces as an HA pair with the distribution's keepalived on the configs
//! `routeros_daemon::ha::keepalived` renders: when the master box dies (its keepalived
//! killed with SIGKILL and its links down at once), the backup takes the LAN gateway and
//! the line's virtual address, and a LAN client pinging the gateway every 20 ms sees an
//! outage within the target (1 s adverts: VRRP's 3 adverts + skew, < 4 s; 200 ms adverts:
//! < 1 s). Prints the measured outage.
//!
//! The pair with the real daemon in each box, traffic through it and a broken sync link:
//! lab_ha_pair. Topology: [`common::pair`].

mod common;

use common::pair::{box_config, wait_until, Topology, LAN_GATEWAY, WAN_VIRTUAL};
use common::sh;
use routeros_daemon::ha::{keepalived, Pair};
use routeros_shared::config::Config;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// keepalived (VRRP only, in the foreground, its own process group) in namespace `ns`.
struct Keepalived {
    child: Child,
    log: PathBuf,
}

impl Keepalived {
    fn start(ns: &str, dir: &Path, conf: &str) -> Keepalived {
        let file = dir.join(format!("{ns}.conf"));
        std::fs::write(&file, conf).unwrap();
        let log = dir.join(format!("{ns}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let pid = |what: &str| dir.join(format!("{ns}.{what}.pid"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "keepalived",
                "--dont-fork",
                "--vrrp",
                "-l",
                "-D",
            ])
            .arg("-f")
            .arg(&file)
            .arg("-p")
            .arg(pid("main"))
            .arg("-r")
            .arg(pid("vrrp"))
            .arg("-c")
            .arg(pid("checkers"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            // Its own group, so SIGKILL reaches the VRRP child too (a crash, not a stop:
            // a stopping keepalived would first tell the peer with priority 0).
            .process_group(0)
            .spawn()
            .expect("keepalived is installed (apt-get install keepalived)");
        Keepalived { child, log }
    }

    fn crash(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        if self.child.try_wait().unwrap().is_none() {
            nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
        }
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.crash();
    }
}

/// The longest time between two answers in `ping -D` output (timestamps in seconds).
fn longest_gap(ping_output: &str) -> Duration {
    let stamps: Vec<f64> = ping_output
        .lines()
        .filter(|l| l.contains("bytes from") && !l.contains("DUP!"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let gap = stamps
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0_f64, f64::max);
    Duration::from_secs_f64(gap)
}

/// Run the pair with `advert_ms`, kill the master box, return the client's outage.
fn failover(name: &str, advert_ms: u32) -> Duration {
    let t = Topology::up(name);
    let dir = tempfile::tempdir().unwrap();
    let render = |is_a| {
        let pair = Pair::of(
            &Config::from_toml(&box_config(is_a, advert_ms, "/etc/routeros/ha.key")).unwrap(),
        )
        .unwrap()
        .unwrap();
        keepalived::render(&pair, "k3y-0001", "/bin/true").unwrap()
    };
    // A first (priority 254): both start as backup, the first to hear nobody is master.
    let mut a = Keepalived::start(&t.ns("a"), dir.path(), &render(true));
    assert!(
        wait_until(Duration::from_secs(10), || t.holds("a", LAN_GATEWAY)),
        "A never became master:\n{}",
        a.log()
    );
    let b = Keepalived::start(&t.ns("b"), dir.path(), &render(false));
    // B hears A's adverts and stays backup (nopreempt, lower priority anyway).
    std::thread::sleep(Duration::from_millis(u64::from(advert_ms) * 5));
    assert!(
        t.holds("a", WAN_VIRTUAL),
        "the sync group moves both addresses"
    );
    assert!(
        !t.holds("b", LAN_GATEWAY) && !t.holds("b", WAN_VIRTUAL),
        "B took an address while A was master:\n{}",
        b.log()
    );

    let seconds = 3 + advert_ms * 6 / 1000;
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.ns("c"),
            "ping",
            "-D",
            "-n",
            "-i",
            "0.02",
        ])
        .args(["-w", &seconds.to_string(), LAN_GATEWAY])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // The master box dies: keepalived gone, links down (its stale addresses with it).
    let died = Instant::now();
    a.crash();
    sh(&format!(
        "ip -n {ns} link set lan0 down && ip -n {ns} link set wan1 down && ip -n {ns} link set sync0 down",
        ns = t.ns("a")
    ));
    assert!(
        wait_until(Duration::from_secs(10), || t.holds("b", LAN_GATEWAY)),
        "B never took the gateway:\n{}",
        b.log()
    );
    let took = died.elapsed();
    assert!(
        wait_until(Duration::from_secs(2), || t.holds("b", WAN_VIRTUAL)),
        "B took the gateway but not the line's address"
    );
    let out = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let outage = longest_gap(&text);
    eprintln!(
        "[{name}] adverts every {advert_ms} ms: backup held the gateway {:.2} s after the master died; LAN client's ping outage {:.2} s",
        took.as_secs_f64(),
        outage.as_secs_f64()
    );
    assert!(
        text.lines().filter(|l| l.contains("bytes from")).count() > 50,
        "the client was answered before and after: {text}"
    );
    drop(b);
    outage
}

#[test]
#[ignore = "needs root"]
fn the_backup_takes_the_addresses_when_the_master_dies_1s_adverts() {
    // VRRP: 3 missed adverts + skew ((256 - 100) / 256 s for the backup's priority 100).
    let outage = failover("ha1", 1000);
    assert!(outage < Duration::from_secs(4), "outage {outage:?}");
}

#[test]
#[ignore = "needs root"]
fn the_backup_takes_the_addresses_when_the_master_dies_200ms_adverts() {
    let outage = failover("ha2", 200);
    assert!(outage < Duration::from_secs(1), "outage {outage:?}");
}

#[test]
fn gaps_are_read_from_ping_timestamps() {
    let out =
        "PING x\n[100.000] 64 bytes from x: icmp_seq=1\n[100.020] 64 bytes from x: icmp_seq=2\n\
               [103.520] 64 bytes from x: icmp_seq=3\n[103.530] 64 bytes from x: icmp_seq=3 DUP!\n";
    assert_eq!(longest_gap(out).as_millis(), 3500);
}
