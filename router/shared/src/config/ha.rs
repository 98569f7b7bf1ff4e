//! `[ha]`: two routers as one pair (VRRP through keepalived, connection state through
//! conntrackd), and `[[wan_interfaces]] virtual_address`, with their checks.
//!
//! The checks here are pure (the document alone). The key file is a fact of the machine,
//! so it is checked where a config meets the machine: [`key_file_problems`], called by
//! [`Config::load`](super::Config::load) and by the daemon before it applies a change.

use super::model::{RawConfig, WanMode};
use super::FieldError;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// VRRP priorities a router may take: 0 means "I am leaving" and 255 "I own the address"
/// (RFC 5798 5.2.4); a pair whose addresses are virtual owns none.
pub const PRIORITY: std::ops::RangeInclusive<u8> = 1..=254;

/// Advertisement intervals: VRRPv3 counts in centiseconds (RFC 5798 5.2.7), so 10 ms steps
/// from 100 ms (below that a busy box misses adverts and flaps) to 40 s (12 bits).
pub const ADVERT_INTERVAL_MS: std::ops::RangeInclusive<u32> = 100..=40_950;

/// keepalived's VRRPv2 password authentication uses at most this many characters.
pub const MAX_KEY_CHARS: usize = 8;

/// `[ha]`. Absent or `enabled = false`: the box is a router on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HaConfig {
    pub enabled: bool,
    /// VRRP priority, 1..=254: the higher one is master when both start (give the boxes
    /// different ones, close together, e.g. 254 and 253: VRRP waits (256 - priority)/256 adverts
    /// more before the backup takes over).
    pub priority: u8,
    /// The other box's address on `sync_interface`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Ipv4Addr>,
    /// The link the boxes sync their connection state over (conntrackd): a dedicated
    /// cable, or the LAN interface. VRRP adverts always go over the LAN (to `peer` when
    /// this is the LAN, else to VRRP's multicast group), so a broken sync link alone does
    /// not make two masters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_interface: Option<String>,
    /// The gateway address the LAN uses, held by the master, e.g. "192.168.1.254/24".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lan_virtual_address: Option<Ipv4Net>,
    /// A file whose first line is the pair's shared key (both boxes hold the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_key_file: Option<PathBuf>,
    /// How often the master says it is alive; the backup takes over after about three
    /// missed adverts. Sub-second (e.g. 200) for a shorter outage.
    pub advert_interval_ms: u32,
    /// The VRRP router id of the pair's LAN instance, 1..=255; the WANs with a virtual
    /// address take the next ones. The same on both boxes, and different from any other
    /// VRRP pair on the same links.
    pub virtual_router_id: u8,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            priority: 100,
            peer: None,
            sync_interface: None,
            lan_virtual_address: None,
            auth_key_file: None,
            advert_interval_ms: 1000,
            virtual_router_id: 51,
        }
    }
}

impl HaConfig {
    pub fn is_default(&self) -> bool {
        *self == HaConfig::default()
    }
}

/// Every `[ha]` and `virtual_address` problem of a config, by TOML path (the document
/// alone; see [`key_file_problems`] for the key file).
pub(super) fn problems(cfg: &RawConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ha = &cfg.ha;
    let mut add = |path: &str, reason: String| errs.push(FieldError::new(path, reason));
    let lan = cfg.lan.address;
    for (i, wan) in cfg.wan_interfaces.iter().enumerate() {
        let Some(vip) = wan.virtual_address else {
            continue;
        };
        let path = format!("wan_interfaces[{i}].virtual_address");
        match (wan.mode, wan.address) {
            (Some(WanMode::Static), Some(net)) => {
                if let Some(p) = virtual_problem(vip, net, "the line's") {
                    add(&path, p);
                }
            }
            (Some(WanMode::Static), None) => {} // `address` is reported missing
            (mode, _) => add(
                &path,
                format!(
                    "only on a line with mode = \"static\" (this one is {}): a virtual address must lie in a subnet the ISP routes to both boxes, which a single address from DHCP or PPPoE is not",
                    mode.map_or("not managed", WanMode::as_str)
                ),
            ),
        }
    }
    if let Some(vip) = ha.lan_virtual_address {
        if let Some(p) = virtual_problem(vip, lan, "the router's LAN") {
            add("ha.lan_virtual_address", p);
        }
    }
    if !PRIORITY.contains(&ha.priority) {
        add(
            "ha.priority",
            format!(
                "{} is not in {}..={} (0 and 255 have special meanings in VRRP)",
                ha.priority,
                PRIORITY.start(),
                PRIORITY.end()
            ),
        );
    }
    // One instance per virtual address, all advertised on the LAN, each with its own id.
    let instances = 1 + cfg
        .wan_interfaces
        .iter()
        .filter(|w| w.virtual_address.is_some())
        .count();
    let last = usize::from(ha.virtual_router_id) + instances - 1;
    if ha.virtual_router_id == 0 || last > 255 {
        add(
            "ha.virtual_router_id",
            format!(
                "{} is not in 1..={}: the pair's {instances} VRRP instances take the ids from it up, and ids end at 255",
                ha.virtual_router_id,
                256 - instances
            ),
        );
    }
    if !ADVERT_INTERVAL_MS.contains(&ha.advert_interval_ms) || ha.advert_interval_ms % 10 != 0 {
        add(
            "ha.advert_interval_ms",
            format!(
                "{} is not a multiple of 10 in {}..={} (VRRP counts in centiseconds)",
                ha.advert_interval_ms,
                ADVERT_INTERVAL_MS.start(),
                ADVERT_INTERVAL_MS.end()
            ),
        );
    }
    if let Some(dev) = &ha.sync_interface {
        if let Some(p) = super::interface_name_problem(dev) {
            add("ha.sync_interface", p);
        } else if let Some(i) = cfg
            .wan_interfaces
            .iter()
            .position(|w| w.name == *dev || w.device() == *dev)
        {
            add(
                "ha.sync_interface",
                format!("`{dev}` is wan_interfaces[{i}]: connection state would cross the ISP's network in the clear; use a dedicated link or the LAN"),
            );
        }
    }
    if let Some(peer) = ha.peer {
        if peer.is_unspecified()
            || peer.is_broadcast()
            || peer.is_multicast()
            || peer.is_loopback()
            || peer.is_link_local()
        {
            add(
                "ha.peer",
                format!("{peer} cannot be the other box's address"),
            );
        } else if let Some(whose) = own_address(cfg, peer) {
            add(
                "ha.peer",
                format!("{peer} is {whose}: give the other box's address"),
            );
        } else if ha.sync_interface.as_deref() == Some(cfg.lan.interface.as_str())
            && !lan.trunc().contains(&peer)
        {
            add(
                "ha.peer",
                format!(
                    "{peer} is not in the LAN {} that sync_interface `{}` is on",
                    lan.trunc(),
                    cfg.lan.interface
                ),
            );
        }
    }
    if let Some(file) = &ha.auth_key_file {
        if !file.is_absolute() {
            add(
                "ha.auth_key_file",
                format!("`{}` is not an absolute path", file.display()),
            );
        }
    }
    if ha.enabled {
        for (field, set) in [
            ("peer", ha.peer.is_some()),
            ("sync_interface", ha.sync_interface.is_some()),
            ("lan_virtual_address", ha.lan_virtual_address.is_some()),
            ("auth_key_file", ha.auth_key_file.is_some()),
        ] {
            if !set {
                add(
                    &format!("ha.{field}"),
                    "required with enabled = true".into(),
                );
            }
        }
    }
    errs
}

/// Which of our own addresses `ip` is, if it is one (the peer must be the other box).
fn own_address(cfg: &RawConfig, ip: Ipv4Addr) -> Option<String> {
    if ip == cfg.lan.address.addr() {
        return Some("the router's LAN address (lan.address)".into());
    }
    if cfg.ha.lan_virtual_address.map(|v| v.addr()) == Some(ip) {
        return Some("the pair's own ha.lan_virtual_address".into());
    }
    cfg.wan_interfaces.iter().enumerate().find_map(|(i, w)| {
        if w.address.map(|a| a.addr()) == Some(ip) {
            Some(format!("our own wan_interfaces[{i}].address"))
        } else if w.virtual_address.map(|a| a.addr()) == Some(ip) {
            Some(format!(
                "the pair's own wan_interfaces[{i}].virtual_address"
            ))
        } else {
            None
        }
    })
}

/// Why `vip` cannot be a virtual address on the subnet of `own` (whose address is
/// `owner`'s), if it cannot: it must be another host of the same subnet, same prefix.
fn virtual_problem(vip: Ipv4Net, own: Ipv4Net, owner: &str) -> Option<String> {
    let net = own.trunc();
    let ip = vip.addr();
    if vip.prefix_len() != own.prefix_len() || !net.contains(&ip) {
        return Some(format!(
            "{vip} is not in {net}, {owner} subnet (give an address of it with /{})",
            own.prefix_len()
        ));
    }
    if ip == own.addr() {
        return Some(format!(
            "{ip} is {owner} own address; the virtual one is a third address both boxes can hold"
        ));
    }
    if own.prefix_len() < 31 && (ip == net.network() || ip == net.broadcast()) {
        return Some(format!("{ip} is the network or broadcast address of {net}"));
    }
    None
}

/// Problems of the key file of an enabled `[ha]`, read from this machine: it must exist
/// and hold a key [`read_key`] accepts. Empty when HA is off or no file is named (the
/// pure checks report that).
pub fn key_file_problems(cfg: &RawConfig) -> Vec<FieldError> {
    match (&cfg.ha.auth_key_file, cfg.ha.enabled) {
        (Some(file), true) if file.is_absolute() => match read_key(file) {
            Ok(_) => Vec::new(),
            Err(reason) => vec![FieldError::new("ha.auth_key_file", reason)],
        },
        _ => Vec::new(),
    }
}

/// The pair's key: the first line of `file`, 1 to 8 printable ASCII characters without
/// spaces or quotes (it is written into keepalived.conf, which uses at most 8). The
/// reason never quotes the key.
pub fn read_key(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    let key = text.lines().next().unwrap_or_default().trim();
    key_problem(key).map_or(Ok(key.to_string()), |p| {
        Err(format!("`{}`: {p}", file.display()))
    })
}

/// Why `key` cannot be the pair's key, if it cannot.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("the first line is empty; it should hold the pair's key".into());
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Some(format!(
            "the key is longer than {MAX_KEY_CHARS} characters, which is all keepalived uses (e.g. `openssl rand -hex 4`)"
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        return Some(
            "the key may only hold printable ASCII characters other than quotes and backslashes"
                .into(),
        );
    }
    None
}

/// The config as both boxes of a pair should hold it, as canonical JSON: everything but what
/// is each box's own (its `priority` and `peer`, the host part of its LAN addresses and of its
/// lines' static addresses, their MACs). Two boxes whose views differ were not edited alike:
/// after a failover the other box would route by another config.
pub fn pair_shared_view(cfg: &RawConfig) -> String {
    let mut raw = cfg.clone();
    raw.ha.priority = 0;
    raw.ha.peer = None;
    raw.lan.address = raw.lan.address.trunc();
    raw.lan.address6 = raw.lan.address6.trunc();
    for w in &mut raw.wan_interfaces {
        w.address = w.address.map(|a| a.trunc());
        w.address6 = w.address6.map(|a| a.trunc());
        w.mac = None;
    }
    serde_json::to_string(&raw).unwrap_or_default()
}

#[cfg(test)]
#[path = "ha_tests.rs"]
mod tests;
