//! The TOML schema. Names and defaults follow the seed (`wan_interfaces`, `health_check`,
//! `routing`, `logging`); everything a user may omit has a default here.
//!
//! [`RawConfig`] is the text as serde reads it, before any check; the sections are shared
//! with the validated [`Config`](super::Config), which only the validator makes.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub use super::classes::{ClassConfig, QosConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

pub use super::access::{MacAddr, PppoeConfig, WanMode};
pub use super::ha::HaConfig;
pub use super::ipv6::{Ipv6Mode, DEFAULT_LAN6, DEFAULT_TARGETS6};
pub use super::shaping::ShapingConfig;

/// A config document as written (TOML file or its JSON form), not yet validated. Turn it
/// into a [`Config`](super::Config) with [`Config::from_raw`](super::Config::from_raw).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub wan_interfaces: Vec<WanConfig>,
    pub lan: LanConfig,
    #[serde(default)]
    pub health_check: HealthCheckConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    #[serde(default)]
    pub port_forwards: Vec<PortForward>,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Two boxes as one pair (see [`HaConfig`]); absent: a router on its own.
    #[serde(default, skip_serializing_if = "HaConfig::is_default")]
    pub ha: HaConfig,
    /// Traffic classes: DSCP for matching connections (see [`ClassConfig`]).
    #[serde(default)]
    pub classes: Vec<ClassConfig>,
    #[serde(default)]
    pub qos: QosConfig,
}

/// Where events are sent besides the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertsConfig {
    /// JSON POST of every alert to this http(s) URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Attempts per alert before it is dropped (with backoff).
    pub retries: u32,
    /// The same alert (kind + WAN) is sent at most once per this many seconds.
    pub min_interval_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            retries: 3,
            min_interval_seconds: 60,
            smtp: None,
        }
    }
}

/// Mail alerts through an SMTP relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmtpConfig {
    pub server: String,
    #[serde(default = "smtp_port")]
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Upgrade the connection with STARTTLS (needed by most public relays).
    #[serde(default)]
    pub starttls: bool,
}

fn smtp_port() -> u16 {
    25
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WanConfig {
    /// Interface name, e.g. "eth0".
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    /// Next hop; learned from the interface's default route (DHCP) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    /// Failover mode: lower is preferred.
    #[serde(default = "one")]
    pub priority: u32,
    /// How the router brings the line up (see [`WanMode`]); absent: the system does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WanMode>,
    /// Static mode: the line's address with the ISP subnet's prefix, e.g. "203.0.113.5/29".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Net>,
    /// 802.1Q tag the ISP expects on the port (e.g. 7), in any mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// MAC address the port presents to the ISP (clone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pppoe: Option<PppoeConfig>,
    /// How the line gets IPv6: from the ISP's router advertisements and DHCPv6 (auto), not
    /// at all (off), or as `address6`/`gateway6` say (static).
    #[serde(default, skip_serializing_if = "Ipv6Mode::is_default")]
    pub ipv6: Ipv6Mode,
    /// Static IPv6: the line's address with its prefix, e.g. "2001:db8:ff01::2/64".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Net>,
    /// Static IPv6: the next hop, link-local (fe80::1) or inside `address6`'s prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// Static IPv6: the prefix the ISP routes to the line (what DHCPv6-PD would delegate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix6: Option<Ipv6Net>,
    /// Probe targets of this line (IPv4 and/or IPv6); each family's list replaces the
    /// `[health_check]` one for this line (ISP-local targets, a line that cannot reach 1.1.1.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_targets: Vec<IpAddr>,
    /// HA pair: the address the master holds on this line, in `address`'s subnet (static
    /// lines only), so connections masqueraded to it survive a change of master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_address: Option<Ipv4Net>,
    /// The line's download speed in Mbit/s (as sold or measured). With `[routing] weights =
    /// "auto"` the weight follows it; absent, the speed is learned from the counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_mbit: Option<f64>,
    /// The line's upload speed in Mbit/s; absent: learned like the download speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_mbit: Option<f64>,
    /// CAKE on the line at its declared speeds (see [`ShapingConfig`]).
    #[serde(default, skip_serializing_if = "ShapingConfig::is_default")]
    pub shaping: ShapingConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanConfig {
    pub interface: String,
    /// Router address with the LAN prefix length, e.g. "192.168.1.1/24".
    pub address: Ipv4Net,
    /// The LAN's one IPv6 prefix, announced by router advertisements, with the router's
    /// address in it (a /64, default a unique local prefix). Each WAN translates it to its
    /// own address, so a connection keeps working through its WAN (see README, IPv6).
    #[serde(default = "default_lan6")]
    pub address6: Ipv6Net,
    #[serde(default)]
    pub dhcp: DhcpConfig,
}

fn default_lan6() -> Ipv6Net {
    DEFAULT_LAN6.parse().expect("valid default")
}

/// The LAN's DHCP server (and DNS forwarder, which follows the live WANs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DhcpConfig {
    pub enabled: bool,
    /// First and last address handed out; default .100 to .200 of the LAN (clipped to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Ipv4Addr>,
    pub lease_seconds: u32,
    pub static_leases: Vec<StaticLease>,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            start: None,
            end: None,
            lease_seconds: 43200,
            static_leases: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticLease {
    /// "aa:bb:cc:dd:ee:ff"
    pub mac: String,
    pub address: Ipv4Addr,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A port forward (DNAT) from the WAN side to a LAN host, with hairpin NAT so LAN clients
/// can use the public address too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortForward {
    pub name: String,
    pub protocol: Protocol,
    /// Port or range on the WAN side.
    pub wan_port: PortRange,
    /// The LAN host (IPv4), for `family` "ipv4" (the default) or "both".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Ipv4Addr>,
    /// Port on the LAN host (single WAN ports only); default the same port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<u16>,
    /// WANs it listens on; empty = all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wans: Vec<String>,
    /// Which family it forwards: IPv4 to `to` (default), IPv6 to `to6`, or both.
    #[serde(default, skip_serializing_if = "ForwardFamily::is_default")]
    pub family: ForwardFamily,
    /// The LAN host's IPv6 address (in `[lan] address6`), for `family` "ipv6" or "both".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to6: Option<Ipv6Addr>,
}

/// The families a port forward opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardFamily {
    #[default]
    Ipv4,
    Ipv6,
    Both,
}

impl ForwardFamily {
    pub fn is_default(&self) -> bool {
        *self == ForwardFamily::Ipv4
    }

    pub fn has_ipv4(self) -> bool {
        self != ForwardFamily::Ipv6
    }

    pub fn has_ipv6(self) -> bool {
        self != ForwardFamily::Ipv4
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckConfig {
    pub timeout_seconds: f64,
    pub retry_count: u32,
    pub check_interval: f64,
    pub target_host: Ipv4Addr,
    /// Several targets; when set they replace `target_host`.
    pub targets: Vec<Ipv4Addr>,
    /// IPv6 targets, probed on every WAN with IPv6 (same rounds and thresholds).
    pub targets6: Vec<Ipv6Addr>,
    /// How many targets must answer for a probe round to count as a success.
    pub reliability: u32,
    /// Consecutive successful rounds before a down WAN is trusted again (hysteresis).
    pub recovery_count: u32,
    /// Average latency above this marks the WAN degraded (still used).
    pub degraded_latency_ms: u32,
    /// Loss over the recent rounds above this marks the WAN degraded.
    pub degraded_loss_percent: u32,
    /// Seconds between rounds after a failed one, until the line is up or down again
    /// (mwan3's `failure_interval`): probe slowly while healthy, fast once in doubt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_interval: Option<f64>,
    /// Seconds between rounds while the line is down or recovering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_interval: Option<f64>,
}

/// How fast a line is probed, by what its last rounds said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbePace {
    /// Healthy: `check_interval`.
    Normal,
    /// A round failed while the line is in service: `failure_interval`.
    Failing,
    /// Down or recovering: `recovery_interval`.
    Recovering,
}

impl HealthCheckConfig {
    /// Seconds between rounds at `pace` (each unset interval is `check_interval`).
    pub fn interval_at(&self, pace: ProbePace) -> f64 {
        match pace {
            ProbePace::Normal => None,
            ProbePace::Failing => self.failure_interval,
            ProbePace::Recovering => self.recovery_interval,
        }
        .unwrap_or(self.check_interval)
    }
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: 2.0,
            retry_count: 3,
            check_interval: 5.0,
            target_host: Ipv4Addr::new(1, 1, 1, 1),
            targets: Vec::new(),
            targets6: DEFAULT_TARGETS6
                .iter()
                .map(|t| t.parse().expect("valid default"))
                .collect(),
            reliability: 1,
            recovery_count: 3,
            degraded_latency_ms: 500,
            degraded_loss_percent: 20,
            failure_interval: None,
            recovery_interval: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BalanceMode {
    /// Weighted per-connection balancing over every live WAN.
    #[default]
    Ecmp,
    /// Only the live WANs with the lowest priority value carry traffic.
    Failover,
}

/// Where each WAN's weight comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMode {
    /// `[[wan_interfaces]] weight` as written.
    #[default]
    Static,
    /// From the line's download speed: declared (`download_mbit`), else learned from the
    /// interface counters, else a default (see `capacity::effective_speed`).
    Auto,
}

/// How a new connection's WAN is picked among the active ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// In proportion to the weights.
    #[default]
    Weight,
    /// In proportion to weight × the share of the line's speed not in use right now, so a
    /// saturated line gets few new connections (still chosen in the kernel, per connection).
    SpareCapacity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutingConfig {
    pub load_balancing: BalanceMode,
    pub weights: WeightMode,
    pub placement: Placement,
    pub sticky_sessions: bool,
    pub packet_marking: bool,
    /// When a better WAN recovers, reset the connections left on WANs that no longer carry
    /// new traffic (failover mode: move everything back off a metered backup).
    pub move_back_on_recovery: bool,
    /// The part of its share of new connections a degraded line (latency or loss over the
    /// health check's limits) keeps: 1 keeps it all.
    pub degraded_share: f64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            load_balancing: BalanceMode::Ecmp,
            weights: WeightMode::Static,
            placement: Placement::Weight,
            sticky_sessions: true,
            packet_marking: true,
            move_back_on_recovery: false,
            degraded_share: 0.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    pub fn nft_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastResort {
    /// Fall back to the normal weighted balancing.
    #[default]
    Default,
    /// Drop the connection rather than use another WAN.
    Drop,
}

/// A traffic policy (mwan3 rule + policy): matching new LAN connections leave through `via`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Subnet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Subnet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<PortRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<PortRange>,
    pub via: Vec<String>,
    #[serde(default)]
    pub last_resort: LastResort,
    /// Seconds a LAN host keeps the WAN it was given first (source affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_timeout: Option<u32>,
}

impl PolicyConfig {
    pub fn traffic(&self) -> TrafficMatch {
        TrafficMatch {
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            src_port: self.src_port,
            dst_port: self.dst_port,
        }
    }
}

/// The connection fields a policy or a class matches on; absent ones match anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficMatch {
    pub src: Option<Subnet>,
    pub dst: Option<Subnet>,
    pub protocol: Option<Protocol>,
    pub src_port: Option<PortRange>,
    pub dst_port: Option<PortRange>,
}

impl TrafficMatch {
    /// Whether it matches (IPv4, IPv6) connections: the family of its addresses, or both
    /// when it names none (like mwan3's rules, `family any`).
    pub fn families(&self) -> (bool, bool) {
        match self.src.or(self.dst) {
            Some(a) => (!a.is_ipv6(), a.is_ipv6()),
            None => (true, true),
        }
    }

    /// (field, reason) of every inconsistency; `what` names the rule ("policy", "class").
    pub fn problems(&self, what: &str) -> Vec<(&'static str, String)> {
        let mut errs = Vec::new();
        if let (Some(src), Some(dst)) = (self.src, self.dst) {
            if src.is_ipv6() != dst.is_ipv6() {
                errs.push((
                    "dst",
                    format!("is not of src's family: a {what} matches IPv4 or IPv6 (both when it names no address)"),
                ));
            }
        }
        let port_ok = matches!(self.protocol, Some(Protocol::Tcp | Protocol::Udp));
        for (field, port) in [("src_port", self.src_port), ("dst_port", self.dst_port)] {
            if port.is_some() && !port_ok {
                errs.push((field, "ports need protocol = \"tcp\" or \"udp\"".into()));
            }
        }
        errs
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    pub level: String,
    pub file: Option<PathBuf>,
    pub max_size: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "INFO".into(),
            file: Some(PathBuf::from("/var/log/routeros.log")),
            max_size: "10MB".into(),
        }
    }
}

fn one() -> u32 {
    1
}

/// A host ("192.168.1.50", "fd7a:9e51:5c34::20") or network ("203.0.113.0/24",
/// "2001:db8::/32"), IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet(pub IpNet);

impl Subnet {
    pub fn is_ipv6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Subnet(net));
        }
        s.parse::<IpAddr>()
            .map(|a| Subnet(IpNet::from(a)))
            .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address or CIDR"))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// A port or an inclusive range "1000-2000"; written as a number or a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("`{s}` is not a port (1-65535) or a range like 1000-2000"))
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(s)?, port(s)?),
        };
        if first > last {
            return Err(format!("`{s}`: range runs backwards"));
        }
        Ok(PortRange { first, last })
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Deserialise from a string via `FromStr`, or (for ports) from an integer.
macro_rules! string_serde {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Str(String),
                    Int(i64),
                }
                let text = match Raw::deserialize(d)? {
                    Raw::Str(s) => s,
                    Raw::Int(i) => i.to_string(),
                };
                text.parse().map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
string_serde!(Subnet);
string_serde!(PortRange);
