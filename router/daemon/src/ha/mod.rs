//! The HA pair (`[ha]`): two boxes share the LAN's gateway address and the WANs' virtual
//! addresses through VRRP (keepalived), and their connection tracking tables through
//! conntrackd, both the distribution's. This module renders their configuration files from
//! the config (pure, golden-tested) and runs both as the daemon's children ([`run`]);
//! acting on a change of role is the supervisor's (see `notify` in [`keepalived`]).
//!
//! The connection state runs over `sync_interface` to `peer`; the VRRP adverts run over the
//! LAN (see [`keepalived`]: a broken sync link must not make two masters), never over the
//! ISP's segment.

pub mod beacon;
pub mod conntrackd;
pub mod keepalived;
pub mod run;

use ipnet::Ipv4Net;
use routeros_shared::config::Config;
use std::net::Ipv4Addr;

/// Text of a config file in nested blocks: `line(indent, text)` writes `text` after
/// `indent` levels of four spaces (keepalived.conf and conntrackd.conf alike).
#[derive(Default)]
pub(crate) struct Blocks(pub(crate) String);

impl Blocks {
    pub(crate) fn line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.0.push_str("    ");
        }
        self.0.push_str(text);
        self.0.push('\n');
    }
}

/// A pair's config could not be rendered: the config field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ha: {field}: {reason}")]
pub struct HaError {
    pub field: String,
    pub reason: String,
}

impl HaError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One address the master holds: a VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// keepalived's name for it: `lan`, or `wan_<name>`.
    pub name: String,
    /// The device the address goes on.
    pub device: String,
    pub address: Ipv4Net,
    pub virtual_router_id: u8,
}

/// What both files are rendered from: the `[ha]` of a validated config, its fields present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub priority: u8,
    pub peer: Ipv4Addr,
    pub sync_interface: String,
    pub advert_interval_ms: u32,
    /// The LAN's first, then each WAN with a virtual address, in config order.
    pub instances: Vec<Instance>,
    /// The router's own addresses the config names (LAN, static WANs): their traffic is
    /// the box's own, not a connection to hand over.
    pub own_addresses: Vec<Ipv4Addr>,
}

impl Pair {
    /// The pair of `cfg`, `None` when HA is off. The validator requires every field when
    /// `enabled`; a missing one is an error here rather than a panic.
    pub fn of(cfg: &Config) -> Result<Option<Pair>, HaError> {
        let ha = &cfg.ha;
        if !ha.enabled {
            return Ok(None);
        }
        let missing = |field: &str| HaError::new(format!("ha.{field}"), "missing");
        let lan_address = ha
            .lan_virtual_address
            .ok_or_else(|| missing("lan_virtual_address"))?;
        let mut instances = vec![Instance {
            name: "lan".into(),
            device: cfg.lan.interface.clone(),
            address: lan_address,
            virtual_router_id: ha.virtual_router_id,
        }];
        for (i, wan) in cfg.wan_interfaces.iter().enumerate() {
            let Some(address) = wan.virtual_address else {
                continue;
            };
            let id = u8::try_from(usize::from(ha.virtual_router_id) + instances.len()).map_err(
                |_| {
                    HaError::new(
                        format!("wan_interfaces[{i}].virtual_address"),
                        "no VRRP router id left (they end at 255)",
                    )
                },
            )?;
            instances.push(Instance {
                name: format!("wan_{}", wan.name),
                device: wan.device(),
                address,
                virtual_router_id: id,
            });
        }
        let mut own_addresses = vec![cfg.lan.address.addr()];
        own_addresses.extend(
            cfg.wan_interfaces
                .iter()
                .filter_map(|w| w.address)
                .map(|a| a.addr()),
        );
        Ok(Some(Pair {
            priority: ha.priority,
            peer: ha.peer.ok_or_else(|| missing("peer"))?,
            sync_interface: ha
                .sync_interface
                .clone()
                .ok_or_else(|| missing("sync_interface"))?,
            advert_interval_ms: ha.advert_interval_ms,
            instances,
            own_addresses,
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pair over a dedicated link, a static line with a virtual address, a DHCP line.
    pub(crate) const PAIR: &str = include_str!("../../tests/fixtures/pair.toml");

    pub(crate) fn pair(text: &str) -> Pair {
        Pair::of(&Config::from_toml(text).unwrap())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn instances_are_the_lan_then_each_virtual_wan_with_the_next_ids() {
        let p = pair(PAIR);
        let got: Vec<_> = p
            .instances
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.device.as_str(),
                    i.address.to_string(),
                    i.virtual_router_id,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("lan", "lan0", "192.168.1.254/24".to_string(), 51),
                ("wan_wan1", "wan1", "203.0.113.6/29".to_string(), 52),
            ]
        );
        assert_eq!(p.peer, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(
            p.own_addresses,
            [Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(203, 0, 113, 2)]
        );
    }

    #[test]
    fn ha_off_is_no_pair() {
        let off = PAIR.replace("enabled = true", "enabled = false");
        assert_eq!(Pair::of(&Config::from_toml(&off).unwrap()).unwrap(), None);
    }
}
