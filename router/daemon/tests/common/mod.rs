//! Helpers for tests that need a real kernel. Every such test moves its own thread into a
//! fresh network namespace, so nothing it does is visible to the host or to other tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod delay;
pub mod failover;
pub mod lab;
pub mod pair;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use nix::sched::{unshare, CloneFlags};

/// Panic unless running as root. Tests that need root are `#[ignore = "needs root"]`, so a
/// plain `cargo test` as a normal user lists them as ignored instead of passing them unrun;
/// this turns `--include-ignored` without root into a clear failure, never a silent pass.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces, nftables, conntrack): run \
         `sudo cargo test -- --include-ignored` as ci/test.sh does"
    );
}

/// Move the calling thread into a new, empty network namespace and bring `lo` up.
///
/// libtest runs every test on its own thread and network namespaces are per thread, so
/// this isolates exactly one test; processes spawned from the thread afterwards (`sh`) and
/// sockets it opens (a current-thread tokio runtime) live in the same namespace. Needs root.
pub fn fresh_netns() {
    require_root();
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): are we root?");
    sh("ip link set lo up");
}

/// Run `cmd` with `sh -c`; panic with its stderr if it fails. Returns stdout.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap_or_else(|e| panic!("spawn sh for `{cmd}`: {e}"));
    assert!(
        out.status.success(),
        "`{cmd}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Parse the JSON printed by `ip -j ...`.
pub fn ip_json(args: &str) -> serde_json::Value {
    serde_json::from_str(&sh(&format!("ip -j {args}"))).expect("ip -j prints JSON")
}

/// `ip -4 monitor` running in the background, to prove which netlink changes happened.
/// IPv4 only: fresh links keep adding IPv6 link-local routes for a while.
pub struct Monitor {
    child: Child,
    lines: Receiver<String>,
}

/// A throwaway rule pulsed to synchronise with the monitor's output.
const PULSE: &str = "pref 9 lookup 4242";

impl Monitor {
    /// Start `ip -4 -o monitor OBJECTS` (e.g. "route rule"); returns once it is listening.
    pub fn start(objects: &str) -> Self {
        let mut child = Command::new("ip")
            .args(["-4", "-o", "monitor"])
            .args(objects.split_whitespace())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ip monitor");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let monitor = Self { child, lines };
        monitor.pulse();
        monitor
    }

    /// Add and delete the pulse rule until the monitor reports it; return what it printed
    /// before. Netlink events reach the monitor in order, so nothing earlier is missed.
    fn pulse(&self) -> Vec<String> {
        let mut before = Vec::new();
        for _ in 0..100 {
            sh(&format!("ip rule add {PULSE} && ip rule del {PULSE}"));
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                if !line.contains("lookup 4242") {
                    before.push(line);
                } else if line.starts_with("Deleted") {
                    return before;
                }
            }
        }
        panic!("ip monitor never reported the pulse rule");
    }

    /// Stop the monitor and return the events it printed since `start`, one per line.
    pub fn stop(mut self) -> Vec<String> {
        let events = self.pulse();
        self.child.kill().expect("kill ip monitor");
        self.child.wait().expect("reap ip monitor");
        events
    }
}
