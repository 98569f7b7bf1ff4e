//! IPv6 keys: `[[wan_interfaces]] ipv6`, `address6`, `gateway6`, `prefix6`, `[lan] address6`
//! and `[health_check] targets6`, with their checks.

use super::model::RawConfig;
use super::{FieldError, MAX_TARGETS};
use serde::{Deserialize, Serialize};
use std::net::Ipv6Addr;

/// The LAN's prefix unless configured: a unique local prefix (RFC 4193; the 40-bit global ID
/// drawn at random once, as the RFC asks, so two networks merged over a VPN rarely clash).
pub const DEFAULT_LAN6: &str = "fd7a:9e51:5c34::1/64";

/// IPv6 probe targets unless configured: Cloudflare's and Google's resolvers, the IPv6
/// counterparts of the seed's 1.1.1.1.
pub const DEFAULT_TARGETS6: [&str; 2] = ["2606:4700:4700::1111", "2001:4860:4860::8888"];

/// How a WAN gets IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Ipv6Mode {
    /// Router advertisements (SLAAC) and DHCPv6 from the ISP, when it offers them.
    #[default]
    Auto,
    /// No IPv6 on this line: it carries no IPv6 connections.
    Off,
    /// `address6` and `gateway6` as configured.
    Static,
}

impl Ipv6Mode {
    pub fn is_default(&self) -> bool {
        *self == Ipv6Mode::Auto
    }
}

/// Every IPv6 problem of a config, by TOML path.
pub(super) fn problems(cfg: &RawConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, wan) in cfg.wan_interfaces.iter().enumerate() {
        let mut add = |field: &str, reason: String| {
            errs.push(FieldError::new(
                format!("wan_interfaces[{i}].{field}"),
                reason,
            ))
        };
        if wan.ipv6 != Ipv6Mode::Static {
            let mode = if wan.ipv6 == Ipv6Mode::Off {
                "off"
            } else {
                "auto"
            };
            for (field, set) in [
                ("address6", wan.address6.is_some()),
                ("gateway6", wan.gateway6.is_some()),
                ("prefix6", wan.prefix6.is_some()),
            ] {
                if set {
                    add(
                        field,
                        format!("only with ipv6 = \"static\" (ipv6 is \"{mode}\")"),
                    );
                }
            }
            continue;
        }
        match wan.address6 {
            None => add("address6", "required with ipv6 = \"static\"".into()),
            Some(net) => {
                if let Some(p) = host_problem(net.addr()) {
                    add("address6", p);
                } else if net.prefix_len() > 127 {
                    add(
                        "address6",
                        format!("/{} leaves no room for a gateway", net.prefix_len()),
                    );
                } else if net.addr() == net.network() && net.prefix_len() < 127 {
                    add(
                        "address6",
                        format!(
                            "{} is the subnet-router anycast address of {}; give the line's own address",
                            net.addr(),
                            net.trunc()
                        ),
                    );
                }
            }
        }
        match (wan.gateway6, wan.address6) {
            (None, _) => add("gateway6", "required with ipv6 = \"static\"".into()),
            (Some(gw), net) => {
                if let Some(p) = host_problem(gw).filter(|_| !is_link_local(gw)) {
                    add("gateway6", p);
                } else if Some(gw) == net.map(|n| n.addr()) {
                    add("gateway6", format!("{gw} is the line's own address"));
                } else if let Some(net) = net.filter(|n| !is_link_local(gw) && !n.contains(&gw)) {
                    add(
                        "gateway6",
                        format!(
                            "{gw} is neither link-local (fe80::/10) nor in {}",
                            net.trunc()
                        ),
                    );
                }
            }
        }
        if let Some(p) = wan.prefix6 {
            if !(48..=64).contains(&p.prefix_len()) {
                add("prefix6", format!("/{} is not in /48../64", p.prefix_len()));
            } else if p != p.trunc() {
                add(
                    "prefix6",
                    format!("{p} has host bits set; the prefix is {}", p.trunc()),
                );
            } else if let Some(reason) = host_problem(p.network()) {
                add("prefix6", reason.replace("an address", "a prefix"));
            }
        }
    }
    let lan = cfg.lan.address6;
    if lan.prefix_len() != 64 {
        errs.push(FieldError::new(
            "lan.address6",
            format!(
                "/{} is not /64, the only length SLAAC clients take",
                lan.prefix_len()
            ),
        ));
    } else if let Some(p) = host_problem(lan.addr()) {
        errs.push(FieldError::new("lan.address6", p));
    } else if lan.addr() == lan.network() {
        errs.push(FieldError::new(
            "lan.address6",
            format!(
                "{} is the subnet-router anycast address; give the router's own, e.g. {}1/64",
                lan.addr(),
                lan.network()
            ),
        ));
    }
    for (i, f) in cfg.port_forwards.iter().enumerate() {
        let at = |field: &str| format!("port_forwards[{i}].{field}");
        match (f.family.has_ipv6(), f.to6) {
            (true, None) => errs.push(FieldError::new(
                at("to6"),
                "required with family \"ipv6\" or \"both\": the LAN host's IPv6 address",
            )),
            (false, Some(_)) => errs.push(FieldError::new(
                at("to6"),
                "only with family \"ipv6\" or \"both\"",
            )),
            (true, Some(to6)) => {
                let net = lan.trunc();
                if !net.contains(&to6) || to6 == lan.addr() || to6 == net.network() {
                    errs.push(FieldError::new(
                        at("to6"),
                        format!("{to6} is not a host of the LAN's {net}"),
                    ));
                }
            }
            (false, None) => {}
        }
    }
    let targets = &cfg.health_check.targets6;
    if targets.len() > MAX_TARGETS {
        errs.push(FieldError::new(
            "health_check.targets6",
            format!("{} targets; at most {MAX_TARGETS}", targets.len()),
        ));
    }
    for (i, t) in targets.iter().enumerate() {
        if let Some(p) = host_problem(*t) {
            errs.push(FieldError::new(format!("health_check.targets6[{i}]"), p));
        }
    }
    errs
}

/// Why `ip` cannot be a unicast host address reached through a WAN, if it cannot.
fn host_problem(ip: Ipv6Addr) -> Option<String> {
    let why = if ip.is_unspecified() {
        "is the unspecified address"
    } else if ip.is_loopback() {
        "is the loopback address"
    } else if ip.is_multicast() {
        "is a multicast address"
    } else if is_link_local(ip) {
        "is link-local (fe80::/10)"
    } else if ip.to_ipv4_mapped().is_some() {
        "is an IPv4-mapped address"
    } else {
        return None;
    };
    Some(format!("{ip} {why}, not an address"))
}

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const LAN: &str = "[lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n";

    fn errors(wan_extra: &str, rest: &str) -> Vec<String> {
        let text = format!(
            "[[wan_interfaces]]\nname = \"wan1\"\ngateway = \"192.0.2.1\"\n{wan_extra}\n{LAN}{rest}"
        );
        match Config::from_toml(&text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_are_auto_with_a_ula_lan_and_two_targets() {
        let c = Config::from_toml(&format!("[[wan_interfaces]]\nname = \"wan1\"\n{LAN}")).unwrap();
        assert_eq!(c.wan_interfaces[0].ipv6, super::Ipv6Mode::Auto);
        assert_eq!(c.lan.address6.to_string(), super::DEFAULT_LAN6);
        assert_eq!(c.health_check.targets6.len(), 2);
    }

    #[test]
    fn static_needs_address_and_gateway_in_reach() {
        let ok = "ipv6 = \"static\"\naddress6 = \"2001:db8:ff01::2/64\"\ngateway6 = \"fe80::1\"\nprefix6 = \"2001:db8:100::/56\"";
        assert_eq!(errors(ok, ""), Vec::<String>::new());
        let ok_global = "ipv6 = \"static\"\naddress6 = \"2001:db8:ff01::2/64\"\ngateway6 = \"2001:db8:ff01::1\"";
        assert_eq!(errors(ok_global, ""), Vec::<String>::new());
        assert_eq!(
            errors("ipv6 = \"static\"", ""),
            [
                "wan_interfaces[0].address6: required with ipv6 = \"static\"",
                "wan_interfaces[0].gateway6: required with ipv6 = \"static\""
            ]
        );
        assert_eq!(
            errors(
                "ipv6 = \"static\"\naddress6 = \"2001:db8:ff01::2/64\"\ngateway6 = \"2001:db8:ff02::1\"",
                ""
            ),
            ["wan_interfaces[0].gateway6: 2001:db8:ff02::1 is neither link-local (fe80::/10) nor in 2001:db8:ff01::/64"]
        );
    }

    #[test]
    fn bad_addresses_and_prefixes_are_refused_with_their_path() {
        let e = errors(
            "ipv6 = \"static\"\naddress6 = \"fe80::2/64\"\ngateway6 = \"ff02::1\"\nprefix6 = \"2001:db8:100::1/56\"",
            "",
        );
        assert_eq!(
            e,
            [
                "wan_interfaces[0].address6: fe80::2 is link-local (fe80::/10), not an address",
                "wan_interfaces[0].gateway6: ff02::1 is a multicast address, not an address",
                "wan_interfaces[0].prefix6: 2001:db8:100::1/56 has host bits set; the prefix is 2001:db8:100::/56"
            ]
        );
        let e = errors(
            "ipv6 = \"static\"\naddress6 = \"2001:db8:ff01::/64\"\ngateway6 = \"fe80::1\"\nprefix6 = \"2001:db8:100::/72\"",
            "",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with(
            "wan_interfaces[0].address6: 2001:db8:ff01:: is the subnet-router anycast"
        ));
        assert_eq!(e[1], "wan_interfaces[0].prefix6: /72 is not in /48../64");
    }

    #[test]
    fn static_keys_are_refused_unless_static() {
        assert_eq!(
            errors("ipv6 = \"off\"\naddress6 = \"2001:db8:ff01::2/64\"", ""),
            ["wan_interfaces[0].address6: only with ipv6 = \"static\" (ipv6 is \"off\")"]
        );
        assert_eq!(
            errors("gateway6 = \"fe80::1\"", ""),
            ["wan_interfaces[0].gateway6: only with ipv6 = \"static\" (ipv6 is \"auto\")"]
        );
        let e = errors("ipv6 = \"sometimes\"", "");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("wan_interfaces[0].ipv6: "), "{e:?}");
    }

    #[test]
    fn ipv6_port_forwards_need_a_lan_host_of_their_family() {
        let fwd = |extra: &str| {
            errors(
                "",
                &format!(
                    "[[port_forwards]]\nname = \"f\"\nprotocol = \"tcp\"\nwan_port = 80\n{extra}"
                ),
            )
        };
        assert_eq!(
            fwd("family = \"ipv6\"\nto6 = \"fd7a:9e51:5c34::5\""),
            Vec::<String>::new()
        );
        assert_eq!(
            fwd("family = \"ipv6\""),
            ["port_forwards[0].to6: required with family \"ipv6\" or \"both\": the LAN host's IPv6 address"]
        );
        assert_eq!(
            fwd("to = \"192.168.1.5\"\nto6 = \"fd7a:9e51:5c34::5\""),
            ["port_forwards[0].to6: only with family \"ipv6\" or \"both\""]
        );
        assert_eq!(
            fwd("family = \"both\"\nto6 = \"fd00::5\""),
            [
                "port_forwards[0].to: required: the LAN host's IPv4 address",
                "port_forwards[0].to6: fd00::5 is not a host of the LAN's fd7a:9e51:5c34::/64"
            ]
        );
        assert_eq!(
            fwd("family = \"ipv6\"\nto = \"192.168.1.5\"\nto6 = \"fd7a:9e51:5c34::1\""),
            [
                "port_forwards[0].to: only with family \"ipv4\" or \"both\"",
                "port_forwards[0].to6: fd7a:9e51:5c34::1 is not a host of the LAN's fd7a:9e51:5c34::/64"
            ]
        );
    }

    #[test]
    fn lan_prefix_must_be_a_64_with_a_host_and_targets_hosts() {
        let lan = |a: &str| {
            let text = format!(
                "[[wan_interfaces]]\nname = \"wan1\"\n[lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\naddress6 = \"{a}\"\n[health_check]\ntargets6 = [\"2001:db8::1\", \"::\"]\n"
            );
            Config::from_toml(&text)
                .unwrap_err()
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lan("fd00::1/56"),
            [
                "lan.address6: /56 is not /64, the only length SLAAC clients take",
                "health_check.targets6[1]: :: is the unspecified address, not an address"
            ]
        );
        assert!(
            lan("fd00::/64")[0].starts_with("lan.address6: fd00:: is the subnet-router anycast")
        );
    }
}
