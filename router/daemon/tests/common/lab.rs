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
//! carried a connection ([`wan_addr`], [`wan_index`]); for IPv6 the source's /64 does, as the
//! router's address on WAN `i` is SLAAC in [`wan_net6`]`(i)`.
//!
//! This file builds and tears down the lab; [`daemon`] talks to the daemon in it (control
//! socket, status, events, log), [`kernel`] reads the router's kernel state and emulates ISP
//! failures, [`traffic`] generates and counts traffic.

mod daemon;
mod kernel;
mod traffic;

// Each test binary uses a different subset.
#[allow(unused_imports)]
pub use {daemon::*, kernel::*, traffic::*};

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ipnet::Ipv6Net;

/// The LAN client, the router's LAN address and the internet hosts (see ci/lib/lab-common.sh).
pub const LAN_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
pub const LAN_ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
pub const INET_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const INET_HOST2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);

/// The IPv6 plan (LAB_IPV6=1, the default; see ci/lib/lab-common.sh): the internet hosts, the
/// router's LAN address (the LAN ULA's ::1, static) and the LAN client's SLAAC address (the
/// lab gives it the interface identifier ::100; match by [`LAN_NET6`] where a real client's
/// address would do).
pub const INET_HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf000, 0, 0, 0, 0, 0x10);
pub const INET_HOST6_2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf000, 0, 0, 0, 0, 0x11);
pub const LAN_ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd7a, 0x9e51, 0x5c34, 0, 0, 0, 0, 1);
pub const LAN_CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd7a, 0x9e51, 0x5c34, 0, 0, 0, 0, 0x100);
/// The LAN's /64 (its network address).
pub const LAN_NET6: Ipv6Addr = Ipv6Addr::new(0xfd7a, 0x9e51, 0x5c34, 0, 0, 0, 0, 0);

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

/// Which WAN (1-based) of a lab with `wans` WANs carried traffic with source `ip` as the
/// internet saw it: for IPv4 the router's exact WAN address, for IPv6 any address in the WAN's
/// /64 ([`wan_index6`]). An IPv4-mapped IPv6 address (a dual-stack listener) counts as IPv4.
pub fn wan_index(ip: IpAddr, wans: usize) -> Option<usize> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => (1..=wans).find(|&i| wan_addr(i) == v4),
        v6 @ IpAddr::V6(_) => wan_index6(v6, wans),
    }
}

/// WAN `i`'s link (1-based): 2001:db8:ffXX::/64, XX = `i` as two hex digits. The ISP is ::1
/// and sends RAs for it; the router's address in it comes by SLAAC.
pub fn wan_net6(i: usize) -> Ipv6Net {
    let xx = u16::try_from(i).expect("WAN index <= 16");
    Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0xff00 | xx, 0, 0, 0, 0, 0), 64)
        .expect("a /64 is a valid prefix length")
}

/// The ISP's address on WAN `i`'s link (::1).
pub fn wan_isp6(i: usize) -> Ipv6Addr {
    with_host(wan_net6(i), 1)
}

/// The router's SLAAC address on WAN `i` as the lab makes it (interface identifier ::2 by
/// `ip token`). With a daemon-managed line (networkd does SLAAC) it may differ: match by
/// [`wan_net6`] / [`wan_index6`] unless the exact address matters.
pub fn wan_addr6(i: usize) -> Ipv6Addr {
    with_host(wan_net6(i), 2)
}

/// ISP `i`'s prefix-delegation pool (DHCP lines only; Kea in the ISP): 2001:db8:1XX::/48, XX =
/// `i` as two hex digits. The first /56 from it goes to the router, whose line then has an
/// address in 2001:db8:1XX::/64 (networkd, SubnetId=0).
pub fn pd6_pool(i: usize) -> Ipv6Net {
    let xx = u16::try_from(i).expect("ISP index <= 16");
    Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0x100 | xx, 0, 0, 0, 0, 0), 48)
        .expect("a /48 is a valid prefix length")
}

/// Which WAN (1-based) of a lab with `wans` WANs has `ip` in its /64 or, for a DHCP line, in
/// its ISP's delegation pool (None for IPv4).
pub fn wan_index6(ip: IpAddr, wans: usize) -> Option<usize> {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            (1..=wans).find(|&i| wan_net6(i).contains(&v6) || pd6_pool(i).contains(&v6))
        }
        IpAddr::V4(_) => None,
    }
}

/// The internet namespace's address on ISP `i`'s uplink (2001:db8:feXX::2, the ISP's IPv6
/// default gateway; the ISP is ::1).
pub fn uplink_inet6(i: usize) -> Ipv6Addr {
    let xx = u16::try_from(i).expect("ISP index <= 16");
    Ipv6Addr::new(0x2001, 0xdb8, 0xfe00 | xx, 0, 0, 0, 0, 2)
}

/// `net`'s address with interface identifier `host` (a /64 and a small host part).
fn with_host(net: Ipv6Net, host: u16) -> Ipv6Addr {
    let mut segments = net.network().segments();
    segments[7] = host;
    Ipv6Addr::from(segments)
}

/// Knobs of `ci/lab.sh up`. The defaults are the script's own.
#[derive(Debug, Clone)]
pub struct LabOpts {
    /// LAB_WANS
    pub wans: usize,
    /// LAB_WEIGHTS, one per WAN
    pub weights: Vec<u32>,
    /// LAB_WAN_MODES: per WAN "-" (the lab addresses it), "dhcp" or "static" (the daemon
    /// brings the line up through the router's own networkd); empty = all "-".
    pub wan_modes: Vec<&'static str>,
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
    /// LAB_IPV6: the IPv6 plan (SLAAC on the lab's WANs and the LAN, IPv6 uplinks and
    /// internet hosts). On by default, as in the script; off for an IPv4-only lab.
    pub ipv6: bool,
}

impl Default for LabOpts {
    fn default() -> Self {
        Self {
            wans: 2,
            weights: vec![2, 1],
            wan_modes: Vec::new(),
            check_interval: 1.0,
            check_timeout: 1.0,
            retry_count: 3,
            targets: Vec::new(),
            health_toml: String::new(),
            routing_toml: String::new(),
            no_daemon: false,
            web: false,
            ipv6: true,
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
        self.script_args(&[sub])
    }

    /// `ci/lab.sh ARGS...` (a subcommand and its arguments), as [`Lab::script`].
    pub fn script_args(&self, args: &[&str]) -> Output {
        let sub = args.first().copied().unwrap_or_default();
        let mut cmd = Command::new("bash");
        cmd.arg(self.repo.join("ci/lab.sh")).args(args);
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
            .env("LAB_WAN_MODES", self.opts.wan_modes.join(" "))
            .env("LAB_CHECK_INTERVAL", self.opts.check_interval.to_string())
            .env("LAB_CHECK_TIMEOUT", self.opts.check_timeout.to_string())
            .env("LAB_RETRY_COUNT", self.opts.retry_count.to_string())
            .env("LAB_HEALTH_TOML", &self.opts.health_toml)
            .env("LAB_ROUTING_TOML", &self.opts.routing_toml)
            .env("LAB_NO_DAEMON", if self.opts.no_daemon { "1" } else { "0" })
            .env("LAB_WEB", if self.opts.web { "1" } else { "0" })
            .env("LAB_IPV6", if self.opts.ipv6 { "1" } else { "0" });
        if !self.opts.targets.is_empty() {
            let targets: Vec<String> = self.opts.targets.iter().map(|t| t.to_string()).collect();
            cmd.env("LAB_TARGETS", targets.join(" "));
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run ci/lab.sh {sub}: {e}"))
    }

    /// `ci/lab.sh SUB`, panicking with its output if it fails.
    pub fn script_ok(&self, sub: &str) -> String {
        self.script_args_ok(&[sub])
    }

    /// `ci/lab.sh ARGS...`, panicking with its output if it fails.
    pub fn script_args_ok(&self, args: &[&str]) -> String {
        let sub = args.join(" ");
        let out = self.script_args(args);
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

/// `text` with its one occurrence of `from` replaced (panics unless there is exactly one):
/// edits a lab config.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in:\n{text}");
    text.replacen(from, to, 1)
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
