//! Conntrack drivers against the real kernel (root): flushing one WAN's mark deletes exactly
//! the connections carrying it and none of the others.
//!
//! Each test moves its thread into a fresh network namespace ("router") and creates a second,
//! named one ("peer", removed by a guard) joined to it by a veth pair. An nft table in the
//! router marks outgoing connections by destination port, the way the daemon marks them by
//! WAN; TCP connections to listeners in the peer stay open while the driver works.

mod common;

use std::fs::File;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{fresh_netns, sh};
use nix::sched::{setns, CloneFlags};
use routeros_daemon::apply::conntrack::{ConntrackCli, ConntrackDriver, ConntrackNetlink};
use routeros_daemon::apply::{ApplyError, ConntrackError};
use routeros_shared::plan::{Family, MARK_MASK};

/// Destination port, conntrack mark its connections get, IPv4 and IPv6 connections to open.
const PORTS: [(u16, Option<u32>, usize, usize); 5] = [
    // WAN 0x100: the one that fails.
    (7001, Some(0x100), 3, 2),
    // WAN 0x200: must survive.
    (7002, Some(0x200), 3, 1),
    // WAN 0x1100: shares the bit 0x100 but is another WAN under the mask: must survive.
    (7003, Some(0x1100), 2, 0),
    // WAN 0x100 plus bits outside the mask (someone else's): belongs to WAN 0x100.
    (7004, Some(0x1_01ab), 2, 0),
    // Unmarked (the router's own or not yet classified): must survive.
    (7005, None, 2, 0),
];
/// Entries of WAN 0x100 under MARK_MASK: ports 7001 and 7004.
const WAN1_ENTRIES: usize = 3 + 2 + 2;

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A named network namespace, deleted on drop.
struct PeerNs(String);

impl PeerNs {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "rtos-ct-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sh(&format!("ip netns add {name}"));
        Self(name)
    }
}

impl Drop for PeerNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Bind listeners inside the namespace `ns`, from a thread that joins it; the sockets stay
/// in that namespace whichever thread holds them.
fn listen_in(ns: &str, addrs: Vec<SocketAddr>) -> Vec<TcpListener> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the peer namespace");
        addrs
            .iter()
            .map(|a| TcpListener::bind(a).unwrap_or_else(|e| panic!("listen on {a}: {e}")))
            .collect()
    })
    .join()
    .expect("listener thread")
}

/// The router namespace (the test thread's), the peer, and the open connections.
struct Lab {
    _peer: PeerNs,
    _listeners: Vec<TcpListener>,
    _streams: Vec<TcpStream>,
}

impl Lab {
    fn new() -> Self {
        fresh_netns();
        let peer = PeerNs::new();
        let p = &peer.0;
        sh(&format!(
            "ip link add ct0 type veth peer name ct1 netns {p} && \
             ip addr add 192.0.2.1/24 dev ct0 && ip -6 addr add 2001:db8::1/64 dev ct0 nodad && \
             ip link set ct0 up && \
             ip -n {p} link set lo up && ip -n {p} addr add 192.0.2.2/24 dev ct1 && \
             ip -n {p} -6 addr add 2001:db8::2/64 dev ct1 nodad && ip -n {p} link set ct1 up"
        ));
        let mut rules = String::new();
        for (port, mark, _, _) in PORTS {
            if let Some(mark) = mark {
                rules += &format!("ct state new tcp dport {port} ct mark set {mark:#x}\n");
            }
        }
        sh(&format!(
            "nft -f - <<'EOF'\n\
             table inet cttest {{\n\
             chain out {{ type filter hook output priority 0; policy accept;\n{rules}}}\n\
             }}\nEOF"
        ));

        let v4: SocketAddr = "192.0.2.2:0".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::2]:0".parse().unwrap();
        let mut addrs = Vec::new();
        for (port, ..) in PORTS {
            addrs.push(SocketAddr::new(v4.ip(), port));
            addrs.push(SocketAddr::new(v6.ip(), port));
        }
        let listeners = listen_in(p, addrs);

        // The handshake completes in the listener's backlog: no accept needed.
        let mut streams = Vec::new();
        for (port, _, n4, n6) in PORTS {
            for (ip, n) in [(v4.ip(), n4), (v6.ip(), n6)] {
                for _ in 0..n {
                    let addr = SocketAddr::new(ip, port);
                    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
                    streams.push(s);
                }
            }
        }
        Self {
            _peer: peer,
            _listeners: listeners,
            _streams: streams,
        }
    }
}

/// What `conntrack -L ARGS` shows: its entry lines, checked against its own count line.
fn cli_list(args: &str) -> Vec<String> {
    let out = Command::new("conntrack")
        .arg("-L")
        .args(args.split_whitespace())
        .output()
        .expect("run conntrack (apt-get install conntrack)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "conntrack -L {args}: {stderr}");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        stderr.contains(&format!(" {} flow entries have been shown.", lines.len())),
        "conntrack -L {args}: {stderr}"
    );
    lines
}

/// The entry lines of every TCP connection to `port`, without the ticking timeout.
fn entries_to(port: u16) -> Vec<String> {
    let mut lines: Vec<String> = cli_list(&format!("-p tcp --dport {port}"))
        .iter()
        .map(|l| {
            l.split_whitespace()
                .filter(|w| w.contains('='))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.sort();
    lines
}

/// Everything the lab opened, per port, as conntrack lists it.
fn snapshot() -> Vec<(u16, Vec<String>)> {
    PORTS
        .iter()
        .map(|&(port, _, n4, n6)| {
            let entries = entries_to(port);
            assert_eq!(entries.len(), n4 + n6, "port {port}: {entries:#?}");
            (port, entries)
        })
        .collect()
}

/// Flush WAN 0x100 with `driver`, then prove that exactly its entries are gone.
async fn flush_only_wan1(mut driver: impl ConntrackDriver) {
    let before = snapshot();
    assert_eq!(
        driver.count_mark(0x100, MARK_MASK).await.unwrap(),
        WAN1_ENTRIES
    );
    assert_eq!(driver.count_mark(0x200, MARK_MASK).await.unwrap(), 4);
    assert_eq!(driver.count_mark(0x1100, MARK_MASK).await.unwrap(), 2);
    // Exact match on the full mark: the entries with outside bits are not 0x100.
    assert_eq!(driver.count_mark(0x100, u32::MAX).await.unwrap(), 5);

    let deleted = driver
        .flush_mark(0x100, MARK_MASK, None)
        .await
        .expect("flush");
    assert_eq!(deleted, WAN1_ENTRIES);

    assert_eq!(driver.count_mark(0x100, MARK_MASK).await.unwrap(), 0);
    assert!(
        cli_list("-m 0x100/0xff00").is_empty(),
        "WAN 0x100 entries left"
    );
    assert_eq!(driver.count_mark(0x200, MARK_MASK).await.unwrap(), 4);
    assert_eq!(driver.count_mark(0x1100, MARK_MASK).await.unwrap(), 2);
    assert_eq!(cli_list("-m 0x200/0xff00").len(), 4);
    for (port, entries) in before {
        let now = entries_to(port);
        if port == 7001 || port == 7004 {
            assert!(now.is_empty(), "port {port} survived: {now:#?}");
        } else {
            // The very same connections (tuples, marks), not just as many.
            assert_eq!(now, entries, "port {port} was touched");
        }
    }

    // Nothing left to delete is success with 0, not an error.
    assert_eq!(
        driver
            .flush_mark(0x100, MARK_MASK, None)
            .await
            .expect("again"),
        0
    );
}

/// A WAN whose IPv6 side died loses its IPv6 connections only: flushing one family leaves
/// the other's entries of the same mark.
async fn flush_one_family(mut driver: impl ConntrackDriver) {
    let v6 = driver
        .flush_mark(0x100, MARK_MASK, Some(Family::V6))
        .await
        .expect("flush IPv6");
    assert_eq!(v6, 2, "port 7001's IPv6 connections");
    assert_eq!(
        driver.count_mark(0x100, MARK_MASK).await.unwrap(),
        WAN1_ENTRIES - 2
    );
    assert!(cli_list("-m 0x100/0xff00 -f ipv6").is_empty());
    assert_eq!(
        cli_list("-m 0x200/0xff00 -f ipv6").len(),
        1,
        "WAN 0x200's IPv6 kept"
    );
    let v4 = driver
        .flush_mark(0x100, MARK_MASK, Some(Family::V4))
        .await
        .expect("flush IPv4");
    assert_eq!(v4, WAN1_ENTRIES - 2);
}

/// Refused pairs must fail before the kernel is touched: every entry is still there.
async fn refuses_wide_filters(mut driver: impl ConntrackDriver) {
    let before = snapshot();
    for (mark, mask) in [
        (0x100, 0),
        (0, 0),
        (0x101, MARK_MASK),
        (0x1_0100, MARK_MASK),
        (0, MARK_MASK),
    ] {
        let err = driver
            .flush_mark(mark, mask, None)
            .await
            .expect_err(&format!("flush {mark:#x}/{mask:#x} must be refused"));
        assert!(
            matches!(err, ApplyError::Conntrack(ConntrackError::Refused { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("refusing"), "{err}");
    }
    for (mark, mask) in [(0x100, 0), (0x101, MARK_MASK)] {
        assert!(driver.count_mark(mark, mask).await.is_err());
    }
    // Counting unmarked entries is allowed: only port 7005 is unmarked here.
    assert_eq!(driver.count_mark(0, MARK_MASK).await.unwrap(), 2);
    assert_eq!(snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn netlink_flushes_only_the_wan_mark() {
    let _lab = Lab::new();
    run(async { flush_only_wan1(ConntrackNetlink::connect().expect("ctnetlink")).await });
}

#[test]
#[ignore = "needs root"]
fn cli_flushes_only_the_wan_mark() {
    let _lab = Lab::new();
    run(flush_only_wan1(ConntrackCli::new()));
}

#[test]
#[ignore = "needs root"]
fn netlink_flushes_one_family() {
    let _lab = Lab::new();
    run(async { flush_one_family(ConntrackNetlink::connect().expect("ctnetlink")).await });
}

#[test]
#[ignore = "needs root"]
fn cli_flushes_one_family() {
    let _lab = Lab::new();
    run(flush_one_family(ConntrackCli::new()));
}

#[test]
#[ignore = "needs root"]
fn netlink_refuses_mask_zero_and_stray_bits() {
    let _lab = Lab::new();
    run(async { refuses_wide_filters(ConntrackNetlink::connect().expect("ctnetlink")).await });
}

#[test]
#[ignore = "needs root"]
fn cli_refuses_mask_zero_and_stray_bits() {
    let _lab = Lab::new();
    run(refuses_wide_filters(ConntrackCli::new()));
}

/// The namespace is the one the socket was opened in: a driver connected in one lab does
/// not see another lab's entries.
#[test]
#[ignore = "needs root"]
fn netlink_sees_only_its_namespace() {
    let _lab = Lab::new();
    let peer = PeerNs::new();
    let path = format!("/run/netns/{}", peer.0);
    run(async {
        let mut here = ConntrackNetlink::connect().expect("ctnetlink");
        let runtime = tokio::runtime::Handle::current();
        let mut there = std::thread::spawn(move || {
            let file = File::open(&path).expect("open peer netns");
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            // Opened in the other namespace, registered with (and used from) this runtime.
            let _guard = runtime.enter();
            ConntrackNetlink::connect()
        })
        .join()
        .unwrap()
        .expect("ctnetlink in the other namespace");
        assert_eq!(there.count_mark(0x100, MARK_MASK).await.unwrap(), 0);
        assert_eq!(there.flush_mark(0x100, MARK_MASK, None).await.unwrap(), 0);
        assert_eq!(
            here.count_mark(0x100, MARK_MASK).await.unwrap(),
            WAN1_ENTRIES
        );
    });
}
