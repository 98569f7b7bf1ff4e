//! How each WAN line reaches its ISP (`mode`, `address`, `vlan`, `mac`, `[pppoe]`): the
//! schema, the device names that follow from it, and its checks.
//!
//! A WAN is named after its Ethernet port (`name`). Its traffic runs on another device when
//! the line is tagged (`<port>.<vlan>`) or PPPoE (`ppp-<port>`, made by pppd); routes, rules,
//! NAT and probes use [`WanConfig::device`], the line itself is brought up on
//! [`WanConfig::link_device`].

use super::model::WanConfig;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// How the router brings a line up. Absent: the system's own network config (netplan,
/// cloud-init) does, as before the router managed lines; the daemon then only follows the
/// address the port has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WanMode {
    /// Address, gateway and DNS from the ISP's DHCP server.
    Dhcp,
    /// `address` and `gateway` as configured.
    Static,
    /// A PPPoE session (pppd) on the port; traffic runs on its ppp device.
    Pppoe,
}

impl WanMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WanMode::Dhcp => "dhcp",
            WanMode::Static => "static",
            WanMode::Pppoe => "pppoe",
        }
    }
}

/// `[wan_interfaces.pppoe]`: the PPPoE account. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PppoeConfig {
    pub username: String,
    /// The password itself; or keep it in `password_file` (one line, mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Only an access concentrator offering this service answers (some ISPs need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// MTU and MRU of the session: 1492 fits PPPoE's 8-byte header in an Ethernet frame.
    #[serde(default = "pppoe_mtu")]
    pub mtu: u16,
}

fn pppoe_mtu() -> u16 {
    1492
}

impl fmt::Debug for PppoeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeConfig")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_file", &self.password_file)
            .field("service_name", &self.service_name)
            .field("mtu", &self.mtu)
            .finish()
    }
}

/// An Ethernet address written `02:00:5e:10:00:01` (`mac = ...`: the port presents it to
/// the ISP, for lines bound to the MAC of the box they replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a MAC address like 02:00:5e:10:00:01");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What one line's settings are, once checked: the part of the config the line owner
/// (networkd files, pppd) renders.
impl WanConfig {
    /// The device the line is brought up on: the port, or its VLAN.
    pub fn link_device(&self) -> String {
        match self.vlan {
            Some(id) => format!("{}.{id}", self.name),
            None => self.name.clone(),
        }
    }

    /// The device the WAN's traffic uses (routes, rules, NAT, probes, counters).
    pub fn device(&self) -> String {
        match self.mode {
            Some(WanMode::Pppoe) => format!("ppp-{}", self.name),
            _ => self.link_device(),
        }
    }

    /// Whether the router brings this line up (else the system's network config does).
    pub fn is_managed(&self) -> bool {
        self.mode.is_some()
    }
}

/// The PPPoE session's MTU bounds: the IPv4 minimum, and a full Ethernet payload for ISPs
/// that carry "baby jumbo" frames (RFC 4638).
const PPPOE_MTU: std::ops::RangeInclusive<u16> = 576..=1500;

/// Problems of one WAN's access settings, as (field under `wan_interfaces[i]`, reason).
pub(super) fn access_problems(wan: &WanConfig) -> Vec<(&'static str, String)> {
    let mut errs = Vec::new();
    let mut add = |field: &'static str, reason: String| errs.push((field, reason));
    if let Some(id) = wan.vlan {
        if !(1..=4094).contains(&id) {
            add("vlan", format!("{id} is not a VLAN id in 1..=4094"));
        }
        if wan.mode.is_none() {
            add(
                "vlan",
                "needs `mode` (dhcp, static or pppoe): the router tags only lines it brings up"
                    .into(),
            );
        }
    }
    if let Some(mac) = wan.mac {
        if mac.0[0] & 1 == 1 || mac.0 == [0; 6] {
            add("mac", format!("{mac} is not a unicast address"));
        }
        if wan.mode.is_none() {
            add(
                "mac",
                "needs `mode` (dhcp, static or pppoe): the router sets it only on lines it brings up"
                    .into(),
            );
        }
    }
    let (link, dev) = (wan.link_device(), wan.device());
    let derived = [("vlan", &link), ("name", &dev)];
    for (field, dev) in derived
        .into_iter()
        .filter(|(f, d)| *f == "vlan" || *d != &link)
    {
        if *dev != wan.name && dev.len() > 15 {
            add(
                field,
                format!(
                    "the line's device `{dev}` would be longer than 15 characters; give the port a shorter name"
                ),
            );
        }
    }
    match wan.mode {
        Some(WanMode::Static) => match (wan.address, wan.gateway) {
            (None, _) => add("address", "required with mode = \"static\"".into()),
            (Some(net), gateway) => {
                if let Some(p) = static_address_problem(net) {
                    add("address", p);
                }
                match gateway {
                    None => add("gateway", "required with mode = \"static\"".into()),
                    Some(gw) if gw == net.addr() => {
                        add("gateway", format!("{gw} is the line's own address"))
                    }
                    Some(gw) if !net.contains(&gw) => {
                        add("gateway", format!("{gw} is not in {}", net.trunc()))
                    }
                    Some(_) => {}
                }
            }
        },
        Some(WanMode::Pppoe) => {
            if wan.address.is_some() {
                add(
                    "address",
                    "only with mode = \"static\" (PPPoE negotiates it)".into(),
                );
            }
            if wan.gateway.is_some() {
                add(
                    "gateway",
                    "not with mode = \"pppoe\": the session's peer is the next hop".into(),
                );
            }
            match &wan.pppoe {
                None => add(
                    "pppoe",
                    "required with mode = \"pppoe\" (username, password)".into(),
                ),
                Some(p) => pppoe_problems(p, &mut add),
            }
        }
        Some(WanMode::Dhcp) | None => {
            if wan.address.is_some() {
                add("address", "only with mode = \"static\"".into());
            }
        }
    }
    if wan.pppoe.is_some() && wan.mode != Some(WanMode::Pppoe) {
        add("pppoe", "only with mode = \"pppoe\"".into());
    }
    errs
}

fn static_address_problem(net: Ipv4Net) -> Option<String> {
    let ip = net.addr();
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Some(format!("{ip} cannot be the line's address"));
    }
    if net.prefix_len() < 31 && (ip == net.network() || ip == net.broadcast()) {
        return Some(format!(
            "{ip} is the network or broadcast address of {}",
            net.trunc()
        ));
    }
    None
}

fn pppoe_problems(p: &PppoeConfig, add: &mut impl FnMut(&'static str, String)) {
    // The strings go into pppd's options file, quoted: no line breaks or control characters.
    let printable = |s: &str| !s.chars().any(char::is_control);
    if p.username.is_empty() {
        add("pppoe.username", "must not be empty".into());
    } else if !printable(&p.username) || p.username.len() > 255 {
        add(
            "pppoe.username",
            "at most 255 characters, without control characters".into(),
        );
    }
    match (&p.password, &p.password_file) {
        (Some(_), Some(_)) => add(
            "pppoe.password_file",
            "set either password or password_file, not both".into(),
        ),
        (None, None) => add(
            "pppoe.password",
            "required (or password_file, a file holding it)".into(),
        ),
        (Some(pw), None) if !printable(pw) || pw.len() > 255 => add(
            "pppoe.password",
            "at most 255 characters, without control characters".into(),
        ),
        (None, Some(f)) if !f.is_absolute() => add(
            "pppoe.password_file",
            format!("`{}` must be an absolute path", f.display()),
        ),
        _ => {}
    }
    if let Some(s) = &p.service_name {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/@".contains(c));
        if !ok {
            add(
                "pppoe.service_name",
                format!("`{s}`: 1 to 64 letters, digits or . _ - / @"),
            );
        }
    }
    if !PPPOE_MTU.contains(&p.mtu) {
        add(
            "pppoe.mtu",
            format!(
                "{} is not in {}..={}",
                p.mtu,
                PPPOE_MTU.start(),
                PPPOE_MTU.end()
            ),
        );
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
