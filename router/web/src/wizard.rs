//! The first-boot wizard: its answer (WAN lines, LAN, time zone) checked field by field and
//! turned into a [`Config`] on top of the running one, and the record that it was done
//! (`setup.json`: when and by whom, and the time zone; never a password). Each WAN's access
//! (mode, static address, VLAN, MAC, PPPoE account) goes into the config like every other
//! key; the time zone is set by the daemon (systemd-timedated), see `api::setup`.

use super::error::FieldError;
use super::pppoe_secret;
use super::store;
use ipnet::Ipv4Net;
use routeros_shared::config::{self, Config, LanConfig, MacAddr, PppoeConfig, WanConfig};
use routeros_shared::control::timezone_name_problem;
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

impl From<WanMode> for config::WanMode {
    fn from(m: WanMode) -> Self {
        match m {
            WanMode::Dhcp => config::WanMode::Dhcp,
            WanMode::Static => config::WanMode::Static,
            WanMode::Pppoe => config::WanMode::Pppoe,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WizardWan {
    pub name: String,
    pub mode: WanMode,
    /// Static mode: the WAN address with its prefix, e.g. "203.0.113.2/24".
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub address: Option<Ipv4Net>,
    /// Static mode: the ISP's gateway, inside `address`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub dns: Vec<Ipv4Addr>,
    #[serde(default = "one")]
    pub weight: u32,
    /// 802.1Q tag the ISP expects on the port (1..=4094), any mode.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// MAC address the port presents to the ISP (clone), e.g. "02:00:5e:10:00:01".
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mac: Option<MacAddr>,
    /// PPPoE mode: the account.
    #[serde(default)]
    pub pppoe: Option<WizardPppoe>,
}

/// The PPPoE account of a wizard WAN.
#[derive(Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WizardPppoe {
    #[serde(default)]
    pub username: String,
    /// Write-only: never shown back. Absent keeps the WAN's current password (a wizard run
    /// again); the daemon stores it in a root-only file.
    #[serde(default)]
    #[schema(write_only)]
    pub password: Option<String>,
    /// Only an access concentrator offering this service answers (some ISPs need it).
    #[serde(default)]
    pub service_name: Option<String>,
}

impl std::fmt::Debug for WizardPppoe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WizardPppoe")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("service_name", &self.service_name)
            .finish()
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
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

/// `POST /api/v1/setup/apply`. Read only (not `Serialize`): nothing writes the answer, with
/// its PPPoE password, anywhere.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Wizard {
    pub wans: Vec<WizardWan>,
    pub lan: WizardLan,
    /// IANA name, e.g. "Europe/Berlin": set as the system time zone.
    pub timezone: String,
}

impl Wizard {
    /// Problems the router config cannot see (the DHCP range against the router's own
    /// address, the time zone), by body path. Everything that goes into the config is
    /// checked by the config's own validation, in [`Wizard::to_config`].
    pub fn check(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
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
        if let Some(problem) = timezone_name_problem(&self.timezone) {
            errs.push(FieldError::new("timezone", problem));
        } else if zone_known(Path::new(ZONEINFO), &self.timezone) == Some(false) {
            errs.push(FieldError::new(
                "timezone",
                format!("`{}` is not a time zone this system knows", self.timezone),
            ));
        }
        errs
    }

    /// The running config with the wizard's WANs (their access: mode, address, gateway,
    /// VLAN, MAC, PPPoE account), LAN and DHCP range (WANs keep the table, mark and priority
    /// they had under the same name, and a PPPoE account sent without a password keeps the
    /// current one; the other DHCP settings stay), validated; problems are named by the
    /// wizard's body paths (see [`wizard_path`]).
    pub fn to_config(&self, base: &Config) -> Result<Config, Vec<FieldError>> {
        let mut raw = base.to_raw();
        let old = std::mem::take(&mut raw.wan_interfaces);
        raw.wan_interfaces = self
            .wans
            .iter()
            .map(|w| {
                let prev = old.iter().find(|o| o.name == w.name);
                let mut wan = WanConfig {
                    name: w.name.clone(),
                    weight: w.weight,
                    gateway: w.gateway,
                    dns: w.dns.clone(),
                    table: prev.and_then(|p| p.table),
                    mark: prev.and_then(|p| p.mark),
                    priority: prev.map_or(1, |p| p.priority),
                    mode: Some(w.mode.into()),
                    address: w.address,
                    vlan: w.vlan,
                    mac: w.mac,
                    pppoe: w.pppoe.as_ref().map(|p| PppoeConfig {
                        username: p.username.clone(),
                        password: p.password.clone(),
                        password_file: None,
                        service_name: p.service_name.clone(),
                        // The MTU is not asked: keep a hand-set one, else the default.
                        mtu: prev
                            .and_then(|o| o.pppoe.as_ref())
                            .map_or(PPPOE_MTU, |o| o.mtu),
                    }),
                    // IPv6 is not asked (auto suits nearly every ISP): keep what was set.
                    ipv6: prev.map(|p| p.ipv6).unwrap_or_default(),
                    address6: prev.and_then(|p| p.address6),
                    gateway6: prev.and_then(|p| p.gateway6),
                    prefix6: prev.and_then(|p| p.prefix6),
                    // Not asked either (an HA pair's setting): keep what was set.
                    virtual_address: prev.and_then(|p| p.virtual_address),
                    // Speeds are not asked: keep what was set.
                    download_mbit: prev.and_then(|p| p.download_mbit),
                    upload_mbit: prev.and_then(|p| p.upload_mbit),
                    shaping: prev.map(|p| p.shaping.clone()).unwrap_or_default(),
                    health_targets: prev.map(|p| p.health_targets.clone()).unwrap_or_default(),
                };
                pppoe_secret::keep_typed(&mut wan, base);
                wan
            })
            .collect();
        let mut dhcp = raw.lan.dhcp.clone();
        dhcp.enabled = true;
        dhcp.start = Some(self.lan.dhcp_start);
        dhcp.end = Some(self.lan.dhcp_end);
        raw.lan = LanConfig {
            interface: self.lan.interface.clone(),
            address: self.lan.address,
            address6: raw.lan.address6,
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

/// The PPPoE MTU a new account gets (the config's default).
const PPPOE_MTU: u16 = 1492;

/// Where the system's time zones are.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// Whether `zoneinfo` has the zone `name`; None when there is no zoneinfo here to ask
/// (the daemon then decides).
fn zone_known(zoneinfo: &Path, name: &str) -> Option<bool> {
    zoneinfo.is_dir().then(|| zoneinfo.join(name).is_file())
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

/// `setup.json`: that the wizard was done, and its time zone. WAN and LAN answers live in
/// the router config only (and so does the PPPoE account, its password in the daemon's
/// secret file): nothing here is a second copy of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SetupFile {
    wizard_done_ms: Option<u64>,
    by: Option<String>,
    timezone: Option<String>,
    /// Whether the daemon set the time zone (false: e.g. no systemd-timedated).
    timezone_set: Option<bool>,
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

    pub fn mark_done(&self, wizard: &Wizard, by: &str, timezone_set: bool) -> io::Result<()> {
        let mut state = self.state.write().expect("setup lock");
        let next = SetupFile {
            wizard_done_ms: Some(now_ms()),
            by: Some(by.into()),
            timezone: Some(wizard.timezone.clone()),
            timezone_set: Some(timezone_set),
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
    use serde_json::json;

    const BASE: &str = r#"
[[wan_interfaces]]
name = "wan1"
priority = 3

[[wan_interfaces]]
name = "wan3"
mode = "pppoe"
[wan_interfaces.pppoe]
username = "old"
password_file = "/opt/routeros/config/secrets/wan3.pppoe"
mtu = 1480

[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#;

    fn wizard() -> Wizard {
        serde_json::from_value(json!({
            "wans": [
                {"name": "wan1", "mode": "static", "address": "203.0.113.2/24",
                 "gateway": "203.0.113.1", "dns": ["203.0.113.53"], "weight": 2},
                {"name": "wan2", "mode": "dhcp", "vlan": 7, "mac": "02:00:5e:10:00:01"},
                {"name": "wan3", "mode": "pppoe", "vlan": 35,
                 "pppoe": {"username": "joe@isp", "password": "s3cret", "service_name": "fiber"}}
            ],
            "lan": {"interface": "lan0", "address": "192.168.1.1/24",
                    "dhcp_start": "192.168.1.100", "dhcp_end": "192.168.1.200"},
            "timezone": "UTC"
        }))
        .unwrap()
    }

    fn base() -> Config {
        Config::from_toml(BASE).unwrap()
    }

    fn paths(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn good_wizard_has_no_problems() {
        assert_eq!(wizard().check(), vec![]);
    }

    #[test]
    fn each_mode_goes_into_the_config() {
        let cfg = wizard().to_config(&base()).unwrap();
        let [w1, w2, w3] = &cfg.wan_interfaces[..] else {
            panic!("three WANs: {cfg:?}")
        };
        assert_eq!(w1.mode, Some(config::WanMode::Static));
        assert_eq!(w1.address, Some("203.0.113.2/24".parse().unwrap()));
        assert_eq!(w1.gateway, Some("203.0.113.1".parse().unwrap()));
        assert_eq!(w1.priority, 3, "kept from the running WAN of that name");
        assert_eq!(w2.mode, Some(config::WanMode::Dhcp));
        assert_eq!((w2.vlan, w2.device()), (Some(7), "wan2.7".into()));
        assert_eq!(w2.mac.unwrap().to_string(), "02:00:5e:10:00:01");
        assert_eq!(w3.mode, Some(config::WanMode::Pppoe));
        assert_eq!(w3.device(), "ppp-wan3");
        let p = w3.pppoe.as_ref().unwrap();
        assert_eq!(p.username, "joe@isp");
        assert_eq!(p.password.as_deref(), Some("s3cret"));
        assert_eq!(p.password_file, None, "a new password replaces the file");
        assert_eq!(p.service_name.as_deref(), Some("fiber"));
        assert_eq!(p.mtu, 1480, "a hand-set MTU stays");
        // The TOML the daemon gets.
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("mode = \"pppoe\""), "{text}");
        assert!(text.contains("vlan = 35"), "{text}");
    }

    #[test]
    fn a_pppoe_account_without_password_keeps_the_current_one() {
        let mut w = wizard();
        w.wans[2].pppoe.as_mut().unwrap().password = None;
        let cfg = w.to_config(&base()).unwrap();
        let p = cfg.wan_interfaces[2].pppoe.as_ref().unwrap();
        assert_eq!(p.password, None);
        assert_eq!(
            p.password_file.as_deref(),
            Some(Path::new("/opt/routeros/config/secrets/wan3.pppoe"))
        );
        // A new line has no password to keep: the config's check names the field.
        w.wans[2].name = "wan4".into();
        let errs = paths(w.to_config(&base()).unwrap_err());
        assert_eq!(errs, ["wans[2].pppoe.password"]);
    }

    #[test]
    fn bad_lines_are_named_by_body_path() {
        let mut w = wizard();
        w.wans[0].gateway = None; // static without gateway
        w.wans[1].vlan = Some(0);
        w.wans[2].pppoe.as_mut().unwrap().username = String::new();
        assert_eq!(
            paths(w.to_config(&base()).unwrap_err()),
            ["wans[0].gateway", "wans[1].vlan", "wans[2].pppoe.username"]
        );
        let mut w = wizard();
        w.wans[0].gateway = Some("198.51.100.1".parse().unwrap()); // outside the prefix
        w.wans[1].vlan = Some(4095);
        w.wans[2].pppoe = None;
        assert_eq!(
            paths(w.to_config(&base()).unwrap_err()),
            ["wans[0].gateway", "wans[1].vlan", "wans[2].pppoe"]
        );
    }

    #[test]
    fn problems_are_named_by_body_path() {
        let mut w = wizard();
        w.lan.dhcp_end = "10.0.0.9".parse().unwrap();
        w.timezone = "../etc/passwd".into();
        assert_eq!(
            paths(w.check()),
            ["lan.dhcp_end", "lan.dhcp_end", "timezone"]
        );
        assert_eq!(wizard_path("wan_interfaces[1].weight"), "wans[1].weight");
        assert_eq!(
            wizard_path("wan_interfaces[1].pppoe.username"),
            "wans[1].pppoe.username"
        );
    }

    #[test]
    fn zones_are_looked_up_in_zoneinfo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("Europe")).unwrap();
        std::fs::write(dir.path().join("Europe/Berlin"), b"TZif").unwrap();
        assert_eq!(zone_known(dir.path(), "Europe/Berlin"), Some(true));
        assert_eq!(zone_known(dir.path(), "Europe"), Some(false));
        assert_eq!(zone_known(dir.path(), "Mars/Olympus"), Some(false));
        assert_eq!(zone_known(&dir.path().join("none"), "UTC"), None);
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        assert!(!format!("{:?}", wizard()).contains("s3cret"));
    }
}
