//! The first-boot wizard: its answer (WANs, LAN, time zone) checked field by field and turned
//! into a [`Config`] on top of the running one, and the record that it was done
//! (`setup.json`). Parts the router config has no place for yet (WAN mode, static WAN
//! address, time zone) are checked and kept in `setup.json` only.

use super::error::FieldError;
use super::store;
use ipnet::Ipv4Net;
use routeros_shared::config::{Config, LanConfig, WanConfig};
use routeros_shared::events::now_ms;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WanMode {
    Dhcp,
    Static,
    Pppoe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WizardWan {
    pub name: String,
    pub mode: WanMode,
    /// Static mode: the WAN address with its prefix, e.g. "203.0.113.2/24".
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub address: Option<Ipv4Net>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub dns: Vec<Ipv4Addr>,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WizardLan {
    pub interface: String,
    /// Router address with the LAN prefix, e.g. "192.168.1.1/24".
    #[schema(value_type = String)]
    pub address: Ipv4Net,
    #[schema(value_type = String)]
    pub dhcp_start: Ipv4Addr,
    #[schema(value_type = String)]
    pub dhcp_end: Ipv4Addr,
}

/// `POST /api/v1/setup/apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Wizard {
    pub wans: Vec<WizardWan>,
    pub lan: WizardLan,
    /// IANA name, e.g. "Europe/Berlin".
    pub timezone: String,
}

impl Wizard {
    /// Problems the router config cannot see (modes, DHCP range, time zone), by body path.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, w) in self.wans.iter().enumerate() {
            let at = |f: &str| format!("wans[{i}].{f}");
            match w.mode {
                WanMode::Static => {
                    if w.address.is_none() {
                        errs.push(FieldError::new(at("address"), "required in static mode"));
                    }
                    match (w.gateway, w.address) {
                        (None, _) => {
                            errs.push(FieldError::new(at("gateway"), "required in static mode"))
                        }
                        (Some(gw), Some(net)) if !net.contains(&gw) => errs.push(FieldError::new(
                            at("gateway"),
                            format!("{gw} is not in {}", net.trunc()),
                        )),
                        _ => {}
                    }
                }
                WanMode::Dhcp | WanMode::Pppoe => {
                    if w.address.is_some() {
                        errs.push(FieldError::new(at("address"), "only for static mode"));
                    }
                }
            }
        }
        let lan = &self.lan;
        for (name, addr) in [("dhcp_start", lan.dhcp_start), ("dhcp_end", lan.dhcp_end)] {
            if !lan.address.contains(&addr) {
                errs.push(FieldError::new(
                    format!("lan.{name}"),
                    format!("{addr} is not in {}", lan.address.trunc()),
                ));
            } else if addr == lan.address.addr() {
                errs.push(FieldError::new(
                    format!("lan.{name}"),
                    "is the router's own address",
                ));
            }
        }
        if lan.dhcp_start > lan.dhcp_end {
            errs.push(FieldError::new(
                "lan.dhcp_end",
                format!("{} is before dhcp_start {}", lan.dhcp_end, lan.dhcp_start),
            ));
        }
        let tz = &self.timezone;
        let tz_ok = !tz.is_empty()
            && tz.len() <= 64
            && !tz.contains("..")
            && tz
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
        if !tz_ok {
            errs.push(FieldError::new(
                "timezone",
                format!("`{tz}` is not a time zone name like Europe/Berlin"),
            ));
        }
        errs
    }

    /// The running config with the wizard's WANs, LAN and DHCP range (WANs keep the table,
    /// mark and priority they had under the same name; the other DHCP settings stay),
    /// validated; problems are named by the wizard's body paths (see [`wizard_path`]).
    pub fn to_config(&self, base: &Config) -> Result<Config, Vec<FieldError>> {
        let mut raw = base.to_raw();
        let old = std::mem::take(&mut raw.wan_interfaces);
        raw.wan_interfaces = self
            .wans
            .iter()
            .map(|w| {
                let prev = old.iter().find(|o| o.name == w.name);
                WanConfig {
                    name: w.name.clone(),
                    weight: w.weight,
                    gateway: w.gateway,
                    dns: w.dns.clone(),
                    table: prev.and_then(|p| p.table),
                    mark: prev.and_then(|p| p.mark),
                    priority: prev.map_or(1, |p| p.priority),
                    mode: prev.and_then(|p| p.mode),
                    address: prev.and_then(|p| p.address),
                    vlan: prev.and_then(|p| p.vlan),
                    mac: prev.and_then(|p| p.mac),
                    pppoe: prev.and_then(|p| p.pppoe.clone()),
                }
            })
            .collect();
        let mut dhcp = raw.lan.dhcp.clone();
        dhcp.enabled = true;
        dhcp.start = Some(self.lan.dhcp_start);
        dhcp.end = Some(self.lan.dhcp_end);
        raw.lan = LanConfig {
            interface: self.lan.interface.clone(),
            address: self.lan.address,
            dhcp,
        };
        Config::from_raw(raw).map_err(|errors| {
            errors
                .0
                .into_iter()
                .map(|e| FieldError::new(wizard_path(&e.path), e.reason))
                .collect()
        })
    }
}

/// A config error path as the wizard's body names it (`wan_interfaces[1].weight` ->
/// `wans[1].weight`, `lan.dhcp.start` -> `lan.dhcp_start`).
pub fn wizard_path(toml_path: &str) -> String {
    if let Some(rest) = toml_path.strip_prefix("wan_interfaces") {
        return format!("wans{rest}");
    }
    match toml_path {
        "lan.dhcp.start" => "lan.dhcp_start".into(),
        "lan.dhcp.end" => "lan.dhcp_end".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SetupFile {
    wizard_done_ms: Option<u64>,
    by: Option<String>,
    wizard: Option<Wizard>,
}

/// Whether (and how) the wizard was completed: `setup.json`.
pub struct WizardStore {
    path: PathBuf,
    state: RwLock<SetupFile>,
}

impl WizardStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("setup.json");
        let state = store::read_json(&path)?.unwrap_or_default();
        Ok(Self {
            path,
            state: RwLock::new(state),
        })
    }

    pub fn done(&self) -> bool {
        self.state
            .read()
            .expect("setup lock")
            .wizard_done_ms
            .is_some()
    }

    pub fn mark_done(&self, wizard: &Wizard, by: &str) -> io::Result<()> {
        let mut state = self.state.write().expect("setup lock");
        let next = SetupFile {
            wizard_done_ms: Some(now_ms()),
            by: Some(by.into()),
            wizard: Some(wizard.clone()),
        };
        store::write_json(&self.path, &next)?;
        *state = next;
        Ok(())
    }
}

/// Network interfaces of this box (from /sys/class/net), loopback excluded, sorted.
pub fn interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n != "lo")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wizard() -> Wizard {
        serde_json::from_value(serde_json::json!({
            "wans": [
                {"name": "wan1", "mode": "static", "address": "203.0.113.2/24",
                 "gateway": "203.0.113.1", "dns": ["203.0.113.53"], "weight": 2},
                {"name": "wan2", "mode": "dhcp"}
            ],
            "lan": {"interface": "lan0", "address": "192.168.1.1/24",
                    "dhcp_start": "192.168.1.100", "dhcp_end": "192.168.1.200"},
            "timezone": "Europe/Berlin"
        }))
        .unwrap()
    }

    #[test]
    fn good_wizard_has_no_problems() {
        assert_eq!(wizard().check(), vec![]);
    }

    #[test]
    fn problems_are_named_by_body_path() {
        let mut w = wizard();
        w.wans[0].gateway = Some("198.51.100.1".parse().unwrap());
        w.wans[1].address = Some("10.0.0.2/24".parse().unwrap());
        w.lan.dhcp_end = "10.0.0.9".parse().unwrap();
        w.timezone = "../etc/passwd".into();
        let paths: Vec<_> = w.check().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "wans[0].gateway",
                "wans[1].address",
                "lan.dhcp_end",
                "lan.dhcp_end",
                "timezone"
            ]
        );
        assert_eq!(wizard_path("wan_interfaces[1].weight"), "wans[1].weight");
    }
}
