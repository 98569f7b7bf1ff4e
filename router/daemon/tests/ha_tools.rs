//! The HA pair's rendered configs are accepted by the distribution's keepalived
//! (`keepalived -t`, its config check) and conntrackd (started on the config, answering
//! `-s` on its control socket, the sync link up), in a namespace with the config's links;
//! and two conntrackds on them sync a forwarded connection with its mark and NAT, not the
//! router's own, and the backup commits it (`conntrackd -c`).
//! Catches what golden files cannot: keywords the installed versions refuse or ignore.
//! Needs root and the packages `keepalived` and `conntrackd`.

mod common;

use common::sh;
use routeros_daemon::ha::{conntrackd, keepalived, Pair};
use routeros_shared::config::Config;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The HA unit tests' pair (a dedicated sync link, a static line with a virtual address).
const PAIR: &str = include_str!("fixtures/pair.toml");

const OURS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// A fresh namespace with the links the config names, up and addressed.
fn links() {
    common::fresh_netns();
    for (dev, addr) in [
        ("sync0", "10.99.0.1/24"),
        ("lan0", "192.168.1.1/24"),
        ("wan1", "203.0.113.2/29"),
        ("wan2", "198.51.100.2/24"),
    ] {
        sh(&format!(
            "ip link add {dev} type veth peer name {dev}p && ip link set {dev} up && \
             ip link set {dev}p up && ip addr add {addr} dev {dev}"
        ));
    }
}

fn pair(text: &str) -> Pair {
    Pair::of(&Config::from_toml(text).unwrap())
        .unwrap()
        .unwrap()
}

/// `keepalived -t` on `text`: its exit status and everything it said.
fn keepalived_check(dir: &Path, text: &str) -> (bool, String) {
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("keepalived")
        .args(["-t", "-l", "-f"])
        .arg(&file)
        .output()
        .expect("keepalived is installed (apt-get install keepalived)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
#[ignore = "needs root"]
fn keepalived_accepts_the_rendered_configs_without_a_word() {
    links();
    let dir = tempfile::tempdir().unwrap();
    // The check itself: a broken file fails.
    assert!(!keepalived_check(dir.path(), "vrrp_instance x {\n").0);
    let lan_only = PAIR
        .replace("virtual_address = \"203.0.113.6/29\"\n", "")
        .replace("priority = 150", "priority = 100\nadvert_interval_ms = 200");
    for (what, text) in [("pair, v2", PAIR), ("lan only, v3", lan_only.as_str())] {
        let conf = keepalived::render(&pair(text), "k3y-0001", keepalived::NOTIFY).unwrap();
        let (ok, said) = keepalived_check(dir.path(), &conf);
        assert!(ok && said.trim().is_empty(), "{what}: {said}\n{conf}");
    }
}

#[test]
#[ignore = "needs root"]
fn conntrackd_runs_on_the_rendered_config_over_the_sync_link() {
    links();
    let dir = tempfile::tempdir().unwrap();
    // The lock and the control socket in the test's directory, not the system's.
    let conf = conntrackd::render(&pair(PAIR), OURS, dir.path()).unwrap();
    let file = dir.path().join("conntrackd.conf");
    std::fs::write(&file, &conf).unwrap();
    let mut daemon = Command::new("conntrackd")
        .arg("-C")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("conntrackd is installed (apt-get install conntrackd)");
    let started = Instant::now();
    let stats = loop {
        let out = Command::new("conntrackd")
            .arg("-C")
            .arg(&file)
            .arg("-s")
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if let Some(status) = daemon.try_wait().unwrap() {
            let err = daemon.wait_with_output().unwrap().stderr;
            panic!(
                "conntrackd exited ({status}): {}\n{conf}",
                String::from_utf8_lossy(&err)
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "conntrackd did not answer -s within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("conntrackd")
        .arg("-C")
        .arg(&file)
        .arg("-k")
        .status();
    if daemon.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_secs(1));
        let _ = daemon.kill();
    }
    let _ = daemon.wait();
    assert!(
        stats.contains("UDP traffic (active device=sync0)"),
        "{stats}"
    );
    assert!(
        stats.contains("cache external:"),
        "FTFW keeps the peer's entries: {stats}"
    );
}

/// Box B of [`PAIR`]: the same config but its own addresses and A as its peer.
fn pair_b() -> Pair {
    pair(
        &PAIR
            .replace("peer = \"10.99.0.2\"", "peer = \"10.99.0.1\"")
            .replace("192.168.1.1/24", "192.168.1.2/24")
            .replace("203.0.113.2/29", "203.0.113.3/29"),
    )
}

/// Named namespaces, deleted with everything in them on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn new(names: &[&str]) -> Namespaces {
        common::require_root();
        let tag = std::env::var("LAB_TEST_TAG").unwrap_or_default();
        let ns = Namespaces(names.iter().map(|n| format!("{tag}hact-{n}")).collect());
        ns.delete();
        for n in &ns.0 {
            sh(&format!("ip netns add {n} && ip -n {n} link set lo up"));
        }
        ns
    }

    fn delete(&self) {
        for n in &self.0 {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "[ -e /run/netns/{n} ] || exit 0; \
                     for p in $(ip netns pids {n}); do kill -9 $p; done; ip netns del {n}"
                ))
                .status();
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.delete();
    }
}

/// conntrackd on `conf` (rendered with its lock and socket in a directory of its own) in
/// namespace `ns`; returns the config file, once it answers on its socket.
fn start_conntrackd(ns: &str, dir: &Path, conf: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{ns}.conf"));
    std::fs::write(&file, conf).unwrap();
    let conf_arg = file.display().to_string();
    sh(&format!("ip netns exec {ns} conntrackd -C {conf_arg} -d"));
    let started = Instant::now();
    while !Command::new("ip")
        .args(["netns", "exec", ns, "conntrackd", "-C", &conf_arg, "-s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "conntrackd in {ns} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    file
}

#[test]
#[ignore = "needs root"]
fn conntrackd_syncs_forwarded_connections_with_mark_and_nat_but_not_the_routers_own() {
    let ns = Namespaces::new(&["a", "b", "c", "isp"]);
    let [a, b, c, isp] = [&ns.0[0], &ns.0[1], &ns.0[2], &ns.0[3]];
    sh(&format!(
        "ip -n {a} link add sync0 type veth peer name sync0 netns {b} && \
         ip -n {a} addr add 10.99.0.1/24 dev sync0 && ip -n {a} link set sync0 up && \
         ip -n {b} addr add 10.99.0.2/24 dev sync0 && ip -n {b} link set sync0 up && \
         ip -n {a} link add lan0 type veth peer name eth0 netns {c} && \
         ip -n {a} addr add 192.168.1.1/24 dev lan0 && ip -n {a} link set lan0 up && \
         ip -n {c} addr add 192.168.1.100/24 dev eth0 && ip -n {c} link set eth0 up && \
         ip -n {c} route add default via 192.168.1.1 && \
         ip -n {a} link add wan1 type veth peer name eth0 netns {isp} && \
         ip -n {a} addr add 203.0.113.2/29 dev wan1 && ip -n {a} link set wan1 up && \
         ip -n {isp} addr add 203.0.113.1/29 dev eth0 && ip -n {isp} link set eth0 up && \
         ip netns exec {a} sysctl -qw net.ipv4.ip_forward=1"
    ));
    // A forwards like the master: the WAN's mark on the connection, masqueraded to the
    // line's virtual address.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("a.nft");
    std::fs::write(
        &rules,
        "table ip ha {\n\
           chain marks { type filter hook forward priority 0; ct mark set 0x200; }\n\
           chain masq { type nat hook postrouting priority 100; oifname \"wan1\" snat to 203.0.113.6; }\n\
         }\n",
    )
    .unwrap();
    sh(&format!("ip netns exec {a} nft -f {}", rules.display()));
    let conf_a = start_conntrackd(
        a,
        dir.path(),
        &conntrackd::render(&pair(PAIR), OURS, &own_dir(dir.path(), a)).unwrap(),
    );
    let conf_b = start_conntrackd(
        b,
        dir.path(),
        &conntrackd::render(
            &pair_b(),
            Ipv4Addr::new(10, 99, 0, 2),
            &own_dir(dir.path(), b),
        )
        .unwrap(),
    );
    // A's own flow (from its line address), then a LAN host's through A: events reach B in
    // order, so once B has the second, it would have had the first.
    sh(&format!(
        "ip netns exec {a} bash -c 'echo x > /dev/udp/203.0.113.1/5353' && \
         ip netns exec {c} bash -c 'echo x > /dev/udp/203.0.113.1/5001'"
    ));
    let cmd = |ns: &str, args: &str| sh(&format!("ip netns exec {ns} {args} 2>&1"));
    let mut external = String::new();
    let started = Instant::now();
    while !external.contains("dport=5001") && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        external = cmd(b, &format!("conntrackd -C {} -e", conf_b.display()));
    }
    let table_a = cmd(a, "conntrack -L");
    assert!(
        table_a.contains("dport=5353"),
        "A tracks its own flow: {table_a}"
    );
    assert!(
        external.contains("dport=5001") && external.contains("mark=512"),
        "B holds the LAN host's flow with its mark: {external}"
    );
    assert!(
        !external.contains("dport=5353"),
        "the router's own flow is not synced: {external}"
    );
    // B becomes master: it commits the external cache to its kernel, NAT included.
    cmd(b, &format!("conntrackd -C {} -c", conf_b.display()));
    let table_b = cmd(b, "conntrack -L");
    let flow = table_b
        .lines()
        .find(|l| l.contains("dport=5001"))
        .unwrap_or_else(|| panic!("committed to B's kernel: {table_b}"));
    assert!(
        flow.contains("dst=203.0.113.6") && flow.contains("mark=512"),
        "masqueraded to the virtual address, with its mark: {flow}"
    );
    for (n, conf) in [(a, &conf_a), (b, &conf_b)] {
        let _ = Command::new("ip")
            .args(["netns", "exec", n, "conntrackd", "-C"])
            .arg(conf)
            .arg("-k")
            .status();
    }
}

/// The daemon's runner (`ha::run::PairRunner`) on the distribution's binaries: both engines
/// start on the files it writes, keepalived (alone, its peer absent) becomes master, puts
/// the virtual addresses on their links and runs the notify command with keepalived's four
/// words (a group's priority is given as 0); conntrackd answers on its socket; disabling stops both, keepalived taking its
/// addresses away, and removes the files.
#[test]
#[ignore = "needs root"]
fn the_runner_runs_both_engines_and_stops_them() {
    use routeros_daemon::ha::run::{
        Engine, EngineCommand, EngineState, PairFiles, PairRunner, RunConfig,
    };
    use std::os::unix::fs::PermissionsExt;

    links();
    // Not under /tmp: keepalived refuses a notify script in a directory others may write.
    let dir = tempfile::Builder::new()
        .prefix("routeros-ha-test")
        .tempdir_in("/run")
        .unwrap();
    let notified = dir.path().join("notified");
    let script = dir.path().join("notify");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notified.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = PAIR.replace("priority = 150", "priority = 150\nadvert_interval_ms = 200");
    let p = pair(&text);
    let files = PairFiles {
        keepalived: keepalived::render(&p, "k3y-0001", &script.display().to_string()).unwrap(),
        conntrackd: conntrackd::render(&p, OURS, &dir.path().join("ha")).unwrap(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = RunConfig {
        run_dir: dir.path().join("ha"),
        ..RunConfig::default()
    };
    let has = |dev: &str, ip: &str| sh(&format!("ip -4 -o addr show dev {dev}")).contains(ip);
    rt.block_on(async {
        // A lock left by a conntrackd killed with SIGKILL: the runner removes it.
        std::fs::create_dir_all(dir.path().join("ha")).unwrap();
        std::fs::write(conntrackd::lock_path(&dir.path().join("ha")), "").unwrap();
        let (mut runner, mut changes) = PairRunner::new(EngineCommand::default(), run);
        runner.set(Some(files)).await.unwrap();
        let started = Instant::now();
        let mut running = Vec::new();
        while running.len() < 2 {
            let change = tokio::time::timeout(Duration::from_secs(10), changes.recv())
                .await
                .expect("both engines start within 10 s")
                .unwrap();
            assert_eq!(change.to, EngineState::Running, "{change:?}");
            running.push(change.engine);
        }
        let conf = runner.conf_path(Engine::Conntrackd);
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Master after three missed adverts of the absent peer (plus skew): about 0.7 s.
        while !(has("lan0", "192.168.1.254/24")
            && has("wan1", "203.0.113.6/29")
            && std::fs::read_to_string(&notified)
                .unwrap_or_default()
                .contains("GROUP routeros MASTER "))
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "keepalived master with both addresses within 10 s; notified: {:?}",
                std::fs::read_to_string(&notified)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("master with both addresses after {:?}", started.elapsed());
        let stats = Command::new("conntrackd")
            .arg("-C")
            .arg(&conf)
            .arg("-s")
            .output()
            .unwrap();
        assert!(
            stats.status.success(),
            "conntrackd answers -s: {}",
            String::from_utf8_lossy(&stats.stderr)
        );
        assert!(runner
            .snapshot()
            .iter()
            .all(|s| s.state == EngineState::Running));

        runner.set(None).await.unwrap();
        assert!(
            !has("lan0", "192.168.1.254"),
            "keepalived took its address away"
        );
        assert!(!has("wan1", "203.0.113.6"));
        assert!(!conf.exists() && !runner.conf_path(Engine::Keepalived).exists());
        assert!(runner.snapshot().is_empty());
    });
}

/// A directory of its own for box `ns`'s conntrackd lock and socket, under `dir`.
fn own_dir(dir: &Path, ns: &str) -> std::path::PathBuf {
    let own = dir.join(ns);
    std::fs::create_dir_all(&own).unwrap();
    own
}
