//! End-to-end helpers around `ci/lab.sh`: a [`Lab`] (router, ISPs, internet host and LAN
//! client, each in its own network namespace, with the freshly built daemon running) that is
//! torn down on drop, and in-process traffic generators.
//!
//! Traffic needs no external tools: a network namespace is a property of each *thread*, so
//! [`in_ns`] runs a closure on a fresh thread that first `setns`es into the lab namespace.
//! A socket belongs to the namespace it was created in for its whole life, so sockets made by
//! [`in_ns`] can be returned and used from any thread afterwards.
//!
//! The router masquerades, so the source address the internet host sees tells which WAN
//! carried a connection ([`wan_addr`], [`wan_index`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use routeros_shared::control::{self, Request};
use routeros_shared::events::EventKind;
use serde_json::Value;

/// The LAN client, the router's LAN address and the internet hosts (see ci/lib/lab-common.sh).
pub const LAN_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
pub const LAN_ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
pub const INET_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const INET_HOST2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);

/// Time a connection attempt that should succeed may take in the lab (it takes < 1 ms).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Read timeout on test sockets: a lost answer fails the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// The router's address on WAN `i` (1-based), the address the internet sees (lab-common.sh).
pub fn wan_addr(i: usize) -> Ipv4Addr {
    match i {
        1 => Ipv4Addr::new(192, 0, 2, 2),
        2 => Ipv4Addr::new(198, 51, 100, 2),
        _ => Ipv4Addr::new(
            192,
            0,
            2,
            u8::try_from(8 * (i - 1) + 2).expect("WAN index <= 16"),
        ),
    }
}

/// Which WAN (1-based) of a lab with `wans` WANs has the router address `ip`.
pub fn wan_index(ip: IpAddr, wans: usize) -> Option<usize> {
    (1..=wans).find(|&i| IpAddr::V4(wan_addr(i)) == ip)
}

/// Knobs of `ci/lab.sh up`. The defaults are the script's own.
#[derive(Debug, Clone)]
pub struct LabOpts {
    /// LAB_WANS
    pub wans: usize,
    /// LAB_WEIGHTS, one per WAN
    pub weights: Vec<u32>,
    /// LAB_CHECK_INTERVAL: `[health_check] check_interval` in seconds.
    pub check_interval: f64,
    /// LAB_CHECK_TIMEOUT: `[health_check] timeout_seconds`.
    pub check_timeout: f64,
    /// LAB_RETRY_COUNT: `[health_check] retry_count`.
    pub retry_count: u32,
    /// LAB_TARGETS: `[health_check] targets`; empty = the lab's two internet hosts.
    pub targets: Vec<Ipv4Addr>,
    /// LAB_HEALTH_TOML: extra lines inside `[health_check]`, e.g. `recovery_count = 3`.
    pub health_toml: String,
    /// LAB_ROUTING_TOML: extra lines inside `[routing]`.
    pub routing_toml: String,
    /// LAB_NO_DAEMON: build the topology only; start the daemon with [`Lab::daemon_start`].
    pub no_daemon: bool,
    /// LAB_WEB: also start routeros-web on the router's LAN address (8080/8081). Off in tests
    /// by default: tests that check those ports bind them themselves.
    pub web: bool,
}

impl Default for LabOpts {
    fn default() -> Self {
        Self {
            wans: 2,
            weights: vec![2, 1],
            check_interval: 1.0,
            check_timeout: 1.0,
            retry_count: 3,
            targets: Vec::new(),
            health_toml: String::new(),
            routing_toml: String::new(),
            no_daemon: false,
            web: false,
        }
    }
}

impl LabOpts {
    /// Fast probing for failover tests: a round every `interval` s, each probe waiting
    /// `timeout` s, down after `retry_count` failed rounds, up after `recovery_count` good ones.
    pub fn fast_health(
        mut self,
        interval: f64,
        timeout: f64,
        retry_count: u32,
        recovery_count: u32,
    ) -> Self {
        self.check_interval = interval;
        self.check_timeout = timeout;
        self.retry_count = retry_count;
        self.health_toml = format!("{}recovery_count = {recovery_count}\n", self.health_toml);
        self
    }
}

/// Kernel state the daemon owns in the router namespace, as the tools print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelState {
    pub nft: String,
    pub routes: String,
    pub rules: String,
}

/// One lab, brought up by `ci/lab.sh up` and always brought down on drop (also on panic).
pub struct Lab {
    pub prefix: String,
    pub opts: LabOpts,
    /// LAB_DIR: config, control socket, daemon log.
    pub dir: PathBuf,
    repo: PathBuf,
    bin_dir: PathBuf,
}

impl Lab {
    /// Build the lab and start the daemon built for this test run. `prefix` must be unique
    /// among tests that may run at once and short (it prefixes namespace names).
    /// `LAB_TEST_TAG` (environment) is put in front of it, so two checkouts can run the same
    /// test at once on one machine.
    pub fn up(prefix: &str, opts: LabOpts) -> Lab {
        super::require_root();
        let prefix = &format!(
            "{}{prefix}",
            std::env::var("LAB_TEST_TAG").unwrap_or_default()
        );
        assert_eq!(opts.weights.len(), opts.wans, "one weight per WAN");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("crate lives in router/ of the workspace")
            .to_path_buf();
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_routeros-watchdog"))
            .parent()
            .expect("binary has a directory")
            .to_path_buf();
        let lab = Lab {
            prefix: prefix.to_owned(),
            opts,
            dir: PathBuf::from(format!("/run/routeros-lab/{prefix}")),
            repo,
            bin_dir,
        };
        // From here on Drop runs `down`, even if `up` fails half-way.
        let started = Instant::now();
        lab.script_ok("up");
        eprintln!(
            "[{prefix}] lab up in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        if !lab.opts.no_daemon {
            lab.wait_daemon_ready();
        }
        lab
    }

    pub fn rtr(&self) -> String {
        format!("{}-rtr", self.prefix)
    }
    pub fn lan(&self) -> String {
        format!("{}-lan", self.prefix)
    }
    pub fn inet(&self) -> String {
        format!("{}-inet", self.prefix)
    }
    pub fn isp(&self, i: usize) -> String {
        format!("{}-isp{i}", self.prefix)
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("routeros.toml")
    }
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    pub fn daemon_log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// `ci/lab.sh SUB` with this lab's environment (and no LAB_* knobs from the caller's).
    pub fn script(&self, sub: &str) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(self.repo.join("ci/lab.sh")).arg(sub);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LAB_") {
                cmd.env_remove(key);
            }
        }
        let weights: Vec<String> = self.opts.weights.iter().map(u32::to_string).collect();
        cmd.env("LAB_PREFIX", &self.prefix)
            .env("LAB_BIN", &self.bin_dir)
            .env("LAB_DIR", &self.dir)
            .env("LAB_WANS", self.opts.wans.to_string())
            .env("LAB_WEIGHTS", weights.join(" "))
            .env("LAB_CHECK_INTERVAL", self.opts.check_interval.to_string())
            .env("LAB_CHECK_TIMEOUT", self.opts.check_timeout.to_string())
            .env("LAB_RETRY_COUNT", self.opts.retry_count.to_string())
            .env("LAB_HEALTH_TOML", &self.opts.health_toml)
            .env("LAB_ROUTING_TOML", &self.opts.routing_toml)
            .env("LAB_NO_DAEMON", if self.opts.no_daemon { "1" } else { "0" })
            .env("LAB_WEB", if self.opts.web { "1" } else { "0" });
        if !self.opts.targets.is_empty() {
            let targets: Vec<String> = self.opts.targets.iter().map(|t| t.to_string()).collect();
            cmd.env("LAB_TARGETS", targets.join(" "));
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run ci/lab.sh {sub}: {e}"))
    }

    /// `ci/lab.sh SUB`, panicking with its output if it fails.
    pub fn script_ok(&self, sub: &str) -> String {
        let out = self.script(sub);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ci/lab.sh {sub} (LAB_PREFIX={}) failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
            self.prefix,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn daemon_stop(&self) {
        self.script_ok("daemon-stop");
    }

    /// `daemon-start`, then wait until the daemon answers and has applied its plan.
    pub fn daemon_start(&self) {
        self.script_ok("daemon-start");
        self.wait_daemon_ready();
    }

    /// The running daemon's pid (`ci/lab.sh` writes it to `daemon.pid`).
    pub fn daemon_pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.join("daemon.pid"))
            .expect("daemon pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    /// One request over the control socket.
    pub fn control(&self, req: &Request) -> Result<Value, String> {
        control::call(&self.socket_path(), req)
    }

    /// Poll `status` until the daemon answers `ok` with a successful apply behind it.
    pub fn wait_daemon_ready(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let last = self.control(&Request::Status);
            if let Ok(status) = &last {
                if status["ok"] == true && !status["applied_at"].is_null() {
                    return status.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "[{}] daemon not ready within 15 s; last status: {last:?}\n{}",
                self.prefix,
                self.daemon_log_tail(40)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nft -s list table inet routeros` in the router namespace. Stateless (no counter
    /// values): whatever the WAN input drops, stray IPv6 multicast of the ISPs included,
    /// changes a counter at any time without changing the table.
    pub fn nft_table(&self) -> String {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.rtr(),
                "nft",
                "-s",
                "list",
                "table",
                "inet",
                "routeros",
            ],
        )
    }

    /// Routes (IPv4; IPv6 link-local autoconfiguration would make the dump drift), all tables.
    pub fn routes(&self) -> String {
        run_ok(
            "ip",
            &["-4", "-n", &self.rtr(), "route", "show", "table", "all"],
        )
    }

    pub fn rules(&self) -> String {
        run_ok("ip", &["-n", &self.rtr(), "rule"])
    }

    pub fn kernel_state(&self) -> KernelState {
        KernelState {
            nft: self.nft_table(),
            routes: self.routes(),
            rules: self.rules(),
        }
    }

    /// The last `n` lines of the daemon's log, for failure messages.
    pub fn daemon_log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.daemon_log_path())
            .unwrap_or_else(|e| format!("(no daemon log: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "----- {} (last {n} lines)\n{}\n-----",
            self.daemon_log_path().display(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    /// Poll the daemon log until a line after byte `from` contains `needle`; returns that line.
    pub fn wait_log_line(&self, from: usize, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(self.daemon_log_path()).unwrap_or_default();
            if let Some(line) = text
                .get(from..)
                .unwrap_or("")
                .lines()
                .find(|l| l.contains(needle))
            {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "[{}] no daemon log line containing {needle:?} within {timeout:?}\n{}",
                self.prefix,
                self.daemon_log_tail(30)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Current size of the daemon log (a position for [`Lab::wait_log_line`]).
    pub fn daemon_log_len(&self) -> usize {
        std::fs::metadata(self.daemon_log_path()).map_or(0, |m| m.len() as usize)
    }
}

// --- daemon state, kernel state and emulated failures ---------------------------------------

/// One TCP entry of `conntrack -L` in the router namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtEntry {
    /// Original tuple's source port (the LAN client's port, see [`EchoClient::local_port`]).
    pub sport: u16,
    /// Original tuple's destination port.
    pub dport: u16,
    /// The reply tuple's destination: the WAN address the connection was masqueraded to.
    pub reply_dst: Option<Ipv4Addr>,
    /// The conntrack mark (the WAN's mark under 0xff00).
    pub mark: u32,
    pub line: String,
}

impl Lab {
    /// `status`, panicking (with the daemon log) unless the daemon answers `ok`.
    pub fn status(&self) -> Value {
        match self.control(&Request::Status) {
            Ok(s) if s["ok"] == true => s,
            other => panic!(
                "[{}] status failed: {other:?}\n{}",
                self.prefix,
                self.daemon_log_tail(30)
            ),
        }
    }

    /// Poll `status` every 50 ms until `check` returns `Some`; returns it and how long it
    /// took. On timeout panics naming `what`, with the last status of every WAN.
    pub fn wait_status<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> (T, Duration) {
        let start = Instant::now();
        loop {
            let status = self.status();
            if let Some(found) = check(&status) {
                return (found, start.elapsed());
            }
            assert!(
                start.elapsed() < timeout,
                "[{}] not within {timeout:?}: {what}\nlast status:\n{}\n{}",
                self.prefix,
                status_summary(&status),
                self.daemon_log_tail(40)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Events after `since_ms` (Unix ms), oldest first, optionally of one kind and/or WAN.
    pub fn events(&self, since_ms: u64, kind: Option<EventKind>, wan: Option<&str>) -> Vec<Value> {
        let req = Request::Events {
            since_ms: Some(since_ms),
            wan: wan.map(str::to_string),
            kind,
        };
        let answer = self
            .control(&req)
            .unwrap_or_else(|e| panic!("[{}] events: {e}", self.prefix));
        answer["events"]
            .as_array()
            .unwrap_or_else(|| panic!("events answer without `events`: {answer}"))
            .clone()
    }

    /// The TCP conntrack entries in the router namespace whose original destination port
    /// is `dport`.
    pub fn conntrack_tcp(&self, dport: u16) -> Vec<CtEntry> {
        let port = dport.to_string();
        let out = run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.rtr(),
                "conntrack",
                "-L",
                "-p",
                "tcp",
                "--dport",
                &port,
            ],
        );
        out.lines().filter_map(parse_ct_line).collect()
    }

    /// `nft list chain inet routeros CHAIN` in the router namespace.
    pub fn nft_chain(&self, chain: &str) -> String {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.rtr(),
                "nft",
                "list",
                "chain",
                "inet",
                "routeros",
                chain,
            ],
        )
    }

    /// `ip -4 route show table TABLE` in the router namespace.
    pub fn route_table(&self, table: &str) -> String {
        run_ok(
            "ip",
            &["-4", "-n", &self.rtr(), "route", "show", "table", table],
        )
    }

    /// ISP `i` loses its uplink (`ip link set dev up down` in its namespace): it still
    /// answers ARP and pings to itself, and the router's WAN keeps carrier, but it forwards
    /// nothing to the internet (it answers "network unreachable", as a router without an
    /// upstream does). `false` brings the uplink back with its default route.
    pub fn isp_uplink(&self, i: usize, up: bool) {
        let isp = self.isp(i);
        let state = if up { "up" } else { "down" };
        run_ok("ip", &["-n", &isp, "link", "set", "dev", "up", state]);
        if up {
            // Setting a link down deletes the routes through it.
            let gw = Ipv4Addr::new(203, 0, 113, u8::try_from(129 + 2 * i).expect("i <= 16"));
            run_ok(
                "ip",
                &[
                    "-n",
                    &isp,
                    "route",
                    "replace",
                    "default",
                    "via",
                    &gw.to_string(),
                ],
            );
        }
    }

    /// ISP `i` silently drops everything it would forward (an nft `policy drop` forward
    /// chain in its namespace), in both directions; no carrier change, no ICMP errors.
    /// `false` removes the rule.
    pub fn isp_blackhole(&self, i: usize, on: bool) {
        let script = if on {
            "table ip lab_fault {\n\tchain forward {\n\t\ttype filter hook forward priority -10; policy drop;\n\t}\n}\n"
        } else {
            "delete table ip lab_fault\n"
        };
        nft_in(&self.isp(i), script);
    }

    /// The veth peer of the router's `wan<i>` (`down` in ISP `i`) goes down or up: the
    /// router's WAN loses or regains carrier.
    pub fn isp_carrier(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        run_ok(
            "ip",
            &["-n", &self.isp(i), "link", "set", "dev", "down", state],
        );
    }
}

fn parse_ct_line(line: &str) -> Option<CtEntry> {
    let field = |key: &str, nth: usize| -> Option<&str> {
        line.split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .nth(nth)
    };
    Some(CtEntry {
        sport: field("sport=", 0)?.parse().ok()?,
        dport: field("dport=", 0)?.parse().ok()?,
        reply_dst: field("dst=", 1).and_then(|a| a.parse().ok()),
        mark: field("mark=", 0).and_then(|m| m.parse().ok()).unwrap_or(0),
        line: line.to_string(),
    })
}

/// The entry of WAN `name` in a status answer (panics if there is none).
pub fn wan<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["wans"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no WAN {name} in status: {status}"))
}

/// One line per WAN with what failover tests look at, for failure messages.
pub fn status_summary(status: &Value) -> String {
    let mut lines = vec![format!("active_wans={}", status["active_wans"])];
    for w in status["wans"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  {} state={} active={} usable={} carrier={} disabled={} gateway={} latency_ms={} loss%={} connections={}",
            w["name"].as_str().unwrap_or("?"),
            w["state"],
            w["active"],
            w["usable"],
            w["carrier"],
            w["disabled"],
            w["gateway"],
            w["latency_ms"],
            w["loss_percent"],
            w["connections"]
        ));
    }
    lines.join("\n")
}

/// Load an nft script (`nft -f -`) in namespace `ns`.
pub fn nft_in(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nft");
    child
        .stdin
        .take()
        .expect("nft stdin")
        .write_all(script.as_bytes())
        .expect("write nft script");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft -f in {ns} failed ({}): {}\nscript:\n{script}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Lab {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "[{}] test failed; daemon log:\n{}",
                self.prefix,
                self.daemon_log_tail(60)
            );
        }
        let out = self.script("down");
        if !out.status.success() {
            eprintln!(
                "[{}] ci/lab.sh down failed ({}): {}",
                self.prefix,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Run a program, panic with its stderr if it fails, return its stdout.
pub fn run_ok(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "`{prog} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

// --- namespaces --------------------------------------------------------------------------

/// Move the calling thread into the named network namespace (`/run/netns/NAME`).
fn enter_ns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns({path}): {e}"));
}

/// Run `f` on a fresh thread inside namespace `ns` and return its result (panics propagate).
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| {
        s.spawn(|| {
            enter_ns(ns);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Connect from namespace `ns`; the stream stays in `ns` and can be used from any thread.
pub fn tcp_connect(ns: &str, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    in_ns(ns, || TcpStream::connect_timeout(&to, timeout))
}

// --- TCP echo server ---------------------------------------------------------------------

/// A TCP server that records the peer address of every connection it accepts. Per connection
/// it first sends `PEER <ip>\n`, then answers every line `L` with `<ip> L\n`, so a client
/// learns which WAN carried it and can check it on every exchange.
pub struct TcpEchoServer {
    pub addr: SocketAddr,
    peers: Arc<Mutex<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpEchoServer {
    pub fn start(ns: &str, addr: SocketAddr) -> Self {
        let listener = in_ns(ns, || TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"));
        // Non-blocking accept polled with a stop flag, so Drop can end the acceptor.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (peers, stop) = (peers.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            peers.lock().unwrap().push(peer.ip());
                            thread::spawn(move || serve_echo(stream, peer.ip()));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => {
                            eprintln!("echo server {addr}: accept: {e}");
                            thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            })
        };
        Self {
            addr,
            peers,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Peer address of every connection accepted so far, in order.
    pub fn peers(&self) -> Vec<IpAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn serve_echo(stream: TcpStream, peer: IpAddr) {
    let run = || -> io::Result<()> {
        stream.set_nonblocking(false)?;
        // Long enough for the slowest test (a daemon restart while connections idle).
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut out = stream.try_clone()?;
        out.write_all(format!("PEER {peer}\n").as_bytes())?;
        for line in BufReader::new(stream).lines() {
            out.write_all(format!("{peer} {}\n", line?).as_bytes())?;
        }
        Ok(())
    };
    let _ = run();
}

/// A client of [`TcpEchoServer`].
pub struct EchoClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    /// The source address the server saw (the WAN's address).
    pub peer: IpAddr,
}

impl EchoClient {
    /// The client's own port (the original tuple's source port in conntrack).
    pub fn local_port(&self) -> u16 {
        self.writer
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Wrap a connected stream and read the server's `PEER` greeting.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let peer = line
            .trim_end()
            .strip_prefix("PEER ")
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| bad_data(format!("greeting {line:?} is not `PEER <ip>`")))?;
        Ok(Self {
            writer,
            reader,
            peer,
        })
    }

    /// Connect from namespace `ns` and read the greeting.
    pub fn connect(ns: &str, to: SocketAddr) -> io::Result<Self> {
        Self::new(tcp_connect(ns, to, CONNECT_TIMEOUT)?)
    }

    /// Open `n` connections from `ns` (on one namespace thread); they stay open.
    pub fn connect_many(ns: &str, to: SocketAddr, n: usize) -> io::Result<Vec<Self>> {
        in_ns(ns, || {
            (0..n)
                .map(|i| {
                    TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
                        .and_then(Self::new)
                        .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))
                })
                .collect()
        })
    }

    /// Send one line; returns the peer address the server reports for it.
    pub fn echo(&mut self, msg: &str) -> io::Result<IpAddr> {
        self.writer.write_all(format!("{msg}\n").as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        let (ip, echoed) = line
            .trim_end()
            .split_once(' ')
            .ok_or_else(|| bad_data(format!("answer {line:?} is not `<ip> <msg>`")))?;
        if echoed != msg {
            return Err(bad_data(format!("sent {msg:?}, got back {echoed:?}")));
        }
        ip.parse()
            .map_err(|_| bad_data(format!("answer {line:?} has no peer address")))
    }
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Open `n` short connections from `ns` one after the other and return the source address
/// the server saw for each (each connection is closed once its greeting arrived).
pub fn probe_sources(ns: &str, to: SocketAddr, n: usize) -> io::Result<Vec<IpAddr>> {
    in_ns(ns, || {
        (0..n)
            .map(|i| {
                TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
                    .and_then(EchoClient::new)
                    .map(|c| c.peer)
                    .map_err(|e| io::Error::new(e.kind(), format!("connection {i} of {n}: {e}")))
            })
            .collect()
    })
}

// --- UDP recorder ------------------------------------------------------------------------

/// A UDP server that records `(source, payload)` of every datagram and echoes it back.
pub struct UdpRecorder {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<(SocketAddr, String)>>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl UdpRecorder {
    pub fn start(ns: &str, addr: SocketAddr) -> Self {
        let socket = in_ns(ns, || UdpSocket::bind(addr))
            .unwrap_or_else(|e| panic!("bind udp {addr} in {ns}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("udp read timeout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (log, stop) = (log.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    match socket.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
                            let _ = socket.send_to(&buf[..n], from);
                            log.lock().unwrap().push((from, payload));
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => eprintln!("udp recorder {addr}: {e}"),
                    }
                }
            })
        };
        Self {
            addr,
            log,
            stop,
            worker: Some(worker),
        }
    }

    /// Every datagram received so far: (source, payload).
    pub fn received(&self) -> Vec<(SocketAddr, String)> {
        self.log.lock().unwrap().clone()
    }

    /// Poll until at least `n` datagrams arrived or `timeout` passed; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<(SocketAddr, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for UdpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

// --- statistics --------------------------------------------------------------------------

/// Count sources per WAN (1-based index; 0 = an address that is no WAN of the lab).
pub fn count_by_wan(sources: &[IpAddr], wans: usize) -> BTreeMap<usize, usize> {
    let mut counts: BTreeMap<usize, usize> = (0..=wans).map(|i| (i, 0)).collect();
    for ip in sources {
        *counts.entry(wan_index(*ip, wans).unwrap_or(0)).or_default() += 1;
    }
    counts
}

/// Assert that `n` independent picks split over the WANs as the weights say: each WAN's count
/// lies within 4 standard deviations of the binomial mean (a false alarm about 1 in 16 000
/// per WAN). Returns a printable summary.
pub fn assert_weighted_split(sources: &[IpAddr], weights: &[u32]) -> String {
    let wans = weights.len();
    let n = sources.len();
    let counts = count_by_wan(sources, wans);
    let total: u32 = weights.iter().sum();
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        let p = f64::from(w) / f64::from(total);
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        let tol = 4.0 * sd;
        let got = counts[&(i + 1)];
        let line = format!(
            "wan{} ({}): {got} of {n}, expected {mean:.1} ± {tol:.1} (weight {w}/{total}, sd {sd:.2})",
            i + 1,
            wan_addr(i + 1)
        );
        if (got as f64 - mean).abs() > tol {
            failures.push(line.clone());
        }
        summary.push(line);
    }
    let summary = summary.join("\n");
    assert_eq!(
        counts[&0], 0,
        "{} connections came from an address that is no WAN:\n{summary}\nsources: {sources:?}",
        counts[&0]
    );
    assert!(
        failures.is_empty(),
        "split outside the binomial tolerance: {}\nall counts:\n{summary}",
        failures.join("; ")
    );
    summary
}
