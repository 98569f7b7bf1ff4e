//! The HA pair's lab topology (lab_ha, lab_ha_pair): two router namespaces `a` and `b` whose
//! links are veths into bridges of a switch namespace, a LAN client, an ISP and an internet
//! host behind it. Deleted (with every process in it) on drop.
//!
//! ```text
//!   client 192.168.1.100 --- br-lan --- A lan0 .1 / B lan0 .2     (gateway .254, virtual)
//!   isp 203.0.113.1/29   --- br-wan --- A wan1 .2 / B wan1 .3     (virtual .6)
//!                            br-sync -- A sync0 10.99.0.1 / B sync0 10.99.0.2
//!   isp up0 198.51.100.1/24 --- inet 198.51.100.10 (the internet host)
//! ```

use super::sh;
use std::process::Command;
use std::time::{Duration, Instant};

pub const LAN_GATEWAY: &str = "192.168.1.254";
pub const WAN_VIRTUAL: &str = "203.0.113.6";
pub const INET_HOST: &str = "198.51.100.10";

/// Box `a` (priority 254) or `b` (253: the takeover skew of VRRP is then near zero) of the topology above, adverts every `advert_ms`,
/// its pair key in `key_file`.
pub fn box_config(is_a: bool, advert_ms: u32, key_file: &str) -> String {
    let (me, peer, prio) = if is_a { (1, 2, 254) } else { (2, 1, 253) };
    format!(
        r#"
[[wan_interfaces]]
name = "wan1"
mode = "static"
address = "203.0.113.{wan}/29"
gateway = "203.0.113.1"
virtual_address = "{WAN_VIRTUAL}/29"
ipv6 = "off"

[lan]
interface = "lan0"
address = "192.168.1.{me}/24"

[health_check]
targets = ["{INET_HOST}"]
targets6 = []

[ha]
enabled = true
priority = {prio}
peer = "10.99.0.{peer}"
sync_interface = "sync0"
lan_virtual_address = "{LAN_GATEWAY}/24"
auth_key_file = "{key_file}"
advert_interval_ms = {advert_ms}
"#,
        wan = me + 1,
    )
}

/// The switch ports (in the `sw` namespace) of each box's links, by (box, device).
const PORTS: [(&str, &str, &str, &str); 8] = [
    ("a", "lan0", "br-lan", "192.168.1.1/24"),
    ("a", "wan1", "br-wan", "203.0.113.2/29"),
    ("a", "sync0", "br-sync", "10.99.0.1/24"),
    ("b", "lan0", "br-lan", "192.168.1.2/24"),
    ("b", "wan1", "br-wan", "203.0.113.3/29"),
    ("b", "sync0", "br-sync", "10.99.0.2/24"),
    ("c", "eth0", "br-lan", "192.168.1.100/24"),
    ("isp", "eth0", "br-wan", "203.0.113.1/29"),
];

/// The namespaces of one run.
pub struct Topology {
    pub prefix: String,
}

impl Topology {
    /// Build it; `name` (after `LAB_TEST_TAG`) prefixes the namespaces.
    pub fn up(name: &str) -> Topology {
        super::require_root();
        let prefix = format!(
            "{}{name}",
            std::env::var("LAB_TEST_TAG").unwrap_or_default()
        );
        let t = Topology { prefix };
        t.down();
        let sw = t.ns("sw");
        for name in ["sw", "a", "b", "c", "isp", "inet"] {
            let ns = t.ns(name);
            sh(&format!("ip netns add {ns} && ip -n {ns} link set lo up"));
        }
        for br in ["br-lan", "br-wan", "br-sync"] {
            sh(&format!(
                "ip -n {sw} link add {br} type bridge && ip -n {sw} link set {br} up"
            ));
        }
        // Routers forward; rp_filter off as on the appliance (replies of a line may come
        // back by another).
        for ns in [t.ns("a"), t.ns("b"), t.ns("isp")] {
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1 \
                 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0"
            ));
        }
        for (i, (name, dev, br, addr)) in PORTS.iter().enumerate() {
            let ns = t.ns(name);
            sh(&format!(
                "ip -n {sw} link add p{i} type veth peer name {dev} netns {ns} && \
                 ip -n {sw} link set p{i} master {br} up && \
                 ip -n {ns} addr add {addr} dev {dev} && ip -n {ns} link set {dev} up"
            ));
        }
        let (client, isp, inet) = (t.ns("c"), t.ns("isp"), t.ns("inet"));
        sh(&format!(
            "ip -n {client} route add default via {LAN_GATEWAY} && \
             ip -n {isp} link add up0 type veth peer name eth0 netns {inet} && \
             ip -n {isp} addr add 198.51.100.1/24 dev up0 && ip -n {isp} link set up0 up && \
             ip -n {inet} addr add {INET_HOST}/24 dev eth0 && ip -n {inet} link set eth0 up && \
             ip -n {inet} route add default via 198.51.100.1"
        ));
        t
    }

    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The switch port of `dev` in box `name` (to cut one link without touching the box).
    pub fn port(&self, name: &str, dev: &str) -> String {
        let i = PORTS
            .iter()
            .position(|(n, d, _, _)| *n == name && *d == dev)
            .expect("a port of the topology");
        format!("p{i}")
    }

    pub fn down(&self) {
        for name in ["a", "b", "c", "isp", "inet", "sw"] {
            let ns = self.ns(name);
            // Processes left in the namespace (daemons, keepalived, conntrackd) go first.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "[ -e /run/netns/{ns} ] || exit 0; \
                     for p in $(ip netns pids {ns}); do kill -9 $p; done; ip netns del {ns}"
                ))
                .status();
        }
    }

    /// Whether namespace `name` has `addr` on one of its links.
    pub fn holds(&self, name: &str, addr: &str) -> bool {
        sh(&format!("ip -n {} -4 -o addr show", self.ns(name))).contains(&format!("inet {addr}/"))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.down();
    }
}

/// Poll `done` every 20 ms until it holds or `limit` passed; whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}
