//! The `classify` chain: a DSCP value on the packets that leave by a WAN, from the first
//! traffic class (`[[classes]]`, then the built-in ones) their connection matches, so a
//! shaper's tins (CAKE diffserv4) can tell voice from bulk. Each rule counts its packets:
//! `nft list chain inet routeros classify` shows what each class caught.

use super::decide::{Lane, PlannedWan};
use super::nft::{ip, lanes, quoted_set, traffic_match};
use crate::config::{default_classes, Config};

/// The chain's rules (none without WANs or classes). Before source NAT (mangle priority),
/// so `src` still sees the LAN host's address.
pub(super) fn rules(cfg: &Config, views: &[PlannedWan]) -> Vec<String> {
    if views.is_empty() {
        return Vec::new();
    }
    let wans = quoted_set(views.iter().map(|w| w.dev.as_str()));
    let defaults = if cfg.qos.default_classes {
        default_classes()
    } else {
        Vec::new()
    };
    cfg.classes
        .iter()
        .chain(defaults.iter())
        .flat_map(|c| lanes(&c.traffic()).map(move |lane| (c, lane)))
        .map(|(c, lane)| {
            let family = match lane {
                Lane::V4 => "ipv4",
                Lane::V6 => "ipv6",
            };
            let matcher = traffic_match(&c.traffic(), lane);
            let sep = if matcher.is_empty() { "" } else { " " };
            // `return`: the first class that matches decides.
            format!(
                "oifname {wans} meta nfproto {family} {matcher}{sep}counter {} dscp set {} return",
                ip(lane),
                c.dscp.value()
            )
        })
        .collect()
}
