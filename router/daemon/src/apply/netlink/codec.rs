//! Translation between our plain specs and rtnetlink messages, free of I/O so it can be
//! unit-tested. Kernel quirks handled here:
//! - `ip route` prints a next hop's weight one higher than the kernel stores (`rtnh_hops`);
//! - a single-hop route has no weight in the kernel, so we treat it as weight 1;
//! - tables above 255 do not fit the u8 header field and travel in `RTA_TABLE`/`FRA_TABLE`;
//! - an IPv6 route added with metric 0 is stored with metric 1024 (`IP6_RT_PRIO_USER`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{RouteMessageBuilder, RouteNextHopBuilder};

use crate::apply::ApplyError;
use routeros_shared::plan::{Family, NextHop, RouteSpec, RuleSelector, RuleSpec, ROUTE_PROTO};

/// One next hop as the kernel reports it: (ifindex, gateway, printed weight).
pub(super) type KernelHop = (u32, Option<IpAddr>, u8);

/// The metric the kernel gives an IPv6 route asked for with metric 0.
const IP6_RT_PRIO_USER: u32 = 1024;

pub(super) fn address_family(family: Family) -> AddressFamily {
    match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn family_of(af: AddressFamily) -> Option<Family> {
    match af {
        AddressFamily::Inet => Some(Family::V4),
        AddressFamily::Inet6 => Some(Family::V6),
        _ => None,
    }
}

/// The family's "any" address, whose /0 is the default route.
fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Header table value for `table`: the id itself if it fits, else UNSPEC plus the attribute.
fn header_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

/// The comparable form of a route: single-hop weights do not exist in the kernel, and
/// IPv6 has no metric 0.
pub(super) fn canonical(spec: &RouteSpec) -> RouteSpec {
    let mut spec = spec.clone();
    if let [hop] = spec.hops.as_mut_slice() {
        hop.weight = 1;
    }
    if spec.family == Family::V6 && spec.metric == 0 {
        spec.metric = IP6_RT_PRIO_USER;
    }
    spec
}

/// Build the RTM_NEWROUTE body for `spec`, resolving device names through `index_of`.
pub(super) fn route_message(
    spec: &RouteSpec,
    index_of: &HashMap<String, u32>,
) -> Result<RouteMessage, ApplyError> {
    let index = |dev: &str| {
        index_of
            .get(dev)
            .copied()
            .ok_or_else(|| ApplyError::NoSuchInterface(dev.to_owned()))
    };
    // rtnetlink refuses an address of the wrong family (its error type is not exported).
    let unrepresentable = |e: &dyn std::fmt::Display| {
        ApplyError::Unrepresentable(format!(
            "route in table {} metric {}: {e}",
            spec.table, spec.metric
        ))
    };
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(unspecified(spec.family), 0)
        .map_err(|e| unrepresentable(&e))?
        .protocol(RouteProtocol::from(ROUTE_PROTO))
        .priority(spec.metric);
    builder = match spec.hops.as_slice() {
        [] => {
            return Err(ApplyError::Unrepresentable(format!(
                "route in table {} metric {} has no next hop",
                spec.table, spec.metric
            )))
        }
        [hop] => {
            let builder = builder.output_interface(index(&hop.dev)?);
            match hop.gateway {
                Some(gw) => builder.gateway(gw).map_err(|e| unrepresentable(&e))?,
                // Like `ip route add default dev ppp0`: a device route is link-scoped.
                None => builder.scope(RouteScope::Link),
            }
        }
        hops => {
            let mut nexthops = Vec::with_capacity(hops.len());
            for hop in hops {
                let mut nh = RouteNextHopBuilder::new(address_family(spec.family))
                    .interface(index(&hop.dev)?)
                    .weight(hop.weight.saturating_sub(1));
                if let Some(gw) = hop.gateway {
                    nh = nh.via(gw).map_err(|e| unrepresentable(&e))?;
                }
                nexthops.push(nh.build());
            }
            builder.multipath(nexthops)
        }
    };
    let mut msg = builder.build();
    msg.header.table = header_table(spec.table);
    msg.attributes.push(RouteAttribute::Table(spec.table));
    Ok(msg)
}

pub(super) fn route_family(msg: &RouteMessage) -> Option<Family> {
    family_of(msg.header.address_family)
}

pub(super) fn is_ours(msg: &RouteMessage) -> bool {
    route_family(msg).is_some() && u8::from(msg.header.protocol) == ROUTE_PROTO
}

/// A 0.0.0.0/0 or ::/0 route (any type, tos 0, no source prefix).
pub(super) fn is_default(msg: &RouteMessage) -> bool {
    route_family(msg).is_some()
        && msg.header.destination_prefix_length == 0
        && msg.header.source_prefix_length == 0
        && msg.header.tos == 0
}

pub(super) fn route_table(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}

pub(super) fn route_metric(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0)
}

fn gateway(attributes: &[RouteAttribute]) -> Option<IpAddr> {
    attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(gw)) => Some(IpAddr::V4(*gw)),
        RouteAttribute::Gateway(RouteAddress::Inet6(gw)) => Some(IpAddr::V6(*gw)),
        _ => None,
    })
}

/// The next hops of a route: the `RTA_MULTIPATH` list, or the single `RTA_OIF`/`RTA_GATEWAY`.
pub(super) fn route_hops(msg: &RouteMessage) -> Vec<KernelHop> {
    let multipath = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::MultiPath(hops) => Some(hops),
        _ => None,
    });
    match multipath {
        Some(hops) => hops
            .iter()
            .map(|h: &RouteNextHop| {
                (
                    h.interface_index,
                    gateway(&h.attributes),
                    h.hops.saturating_add(1),
                )
            })
            .collect(),
        None => msg
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Oif(index) => Some((*index, gateway(&msg.attributes), 1)),
                _ => None,
            })
            .into_iter()
            .collect(),
    }
}

/// Decode a route back into a spec; `None` if it has a shape we never install (so an
/// entry of ours in that shape is stale and gets deleted).
pub(super) fn decode_route(
    msg: &RouteMessage,
    name_of: &HashMap<u32, String>,
) -> Option<RouteSpec> {
    if !is_default(msg) || msg.header.kind != RouteType::Unicast {
        return None;
    }
    let hops: Vec<NextHop> = route_hops(msg)
        .into_iter()
        .map(|(index, gateway, weight)| NextHop {
            // An index we cannot name (link vanished mid-dump) never equals a wanted hop.
            dev: name_of
                .get(&index)
                .cloned()
                .unwrap_or_else(|| format!("#{index}")),
            gateway,
            weight,
        })
        .collect();
    if hops.is_empty() {
        return None;
    }
    Some(RouteSpec {
        family: route_family(msg)?,
        table: route_table(msg),
        metric: route_metric(msg),
        hops,
    })
}

/// Build the RTM_NEWRULE body for `spec`.
pub(super) fn rule_message(spec: &RuleSpec) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = address_family(spec.family);
    msg.header.action = RuleAction::ToTable;
    msg.header.table = header_table(spec.table);
    msg.attributes.extend([
        RuleAttribute::Priority(spec.priority),
        RuleAttribute::Table(spec.table),
        RuleAttribute::Protocol(RouteProtocol::from(ROUTE_PROTO)),
    ]);
    match &spec.selector {
        RuleSelector::SuppressMainDefault => {
            msg.attributes.push(RuleAttribute::SuppressPrefixLen(0));
        }
        // rtnetlink has no mask setter; without FRA_FWMASK the kernel assumes 0xffffffff.
        RuleSelector::FwMark { mark, mask } => msg
            .attributes
            .extend([RuleAttribute::FwMark(*mark), RuleAttribute::FwMask(*mask)]),
        RuleSelector::From(addr) => {
            msg.header.src_len = host_prefix_len(*addr);
            msg.attributes.push(RuleAttribute::Source(*addr));
        }
        RuleSelector::Oif(dev) => msg.attributes.push(RuleAttribute::Oifname(dev.clone())),
    }
    msg
}

/// 32 or 128: the prefix length of one address.
fn host_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

pub(super) fn rule_is_ours(msg: &RuleMessage) -> bool {
    family_of(msg.header.family).is_some()
        && msg
            .attributes
            .iter()
            .any(|a| matches!(a, RuleAttribute::Protocol(p) if u8::from(*p) == ROUTE_PROTO))
}

/// Decode a rule back into a spec; `None` if it matches on anything we never set.
pub(super) fn decode_rule(msg: &RuleMessage) -> Option<RuleSpec> {
    let h = &msg.header;
    let family = family_of(h.family)?;
    if h.action != RuleAction::ToTable
        || h.dst_len != 0
        || h.tos != 0
        || h.flags.contains(RuleFlags::Invert)
    {
        return None;
    }
    let (mut priority, mut table) = (0, u32::from(h.table));
    let (mut suppress, mut mark, mut mask, mut from, mut oif) = (None, None, u32::MAX, None, None);
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Table(t) => table = *t,
            // The kernel dumps FRA_SUPPRESS_PREFIXLEN on every rule; -1 means "not set".
            RuleAttribute::SuppressPrefixLen(u32::MAX) => {}
            RuleAttribute::SuppressPrefixLen(len) => suppress = Some(*len),
            RuleAttribute::FwMark(m) => mark = Some(*m),
            RuleAttribute::FwMask(m) => mask = *m,
            RuleAttribute::Source(a) => from = Some(*a),
            RuleAttribute::Oifname(name) => oif = Some(name.clone()),
            // Attributes the kernel echoes or that this crate does not know: not selectors.
            RuleAttribute::Protocol(_) | RuleAttribute::Other(_) => {}
            _ => return None,
        }
    }
    let selector = match (suppress, mark, from, oif) {
        (Some(0), None, None, None) if h.src_len == 0 => RuleSelector::SuppressMainDefault,
        (None, Some(mark), None, None) if h.src_len == 0 => RuleSelector::FwMark { mark, mask },
        (None, None, Some(addr), None) if h.src_len == host_prefix_len(addr) => {
            RuleSelector::From(addr)
        }
        (None, None, None, Some(dev)) if h.src_len == 0 => RuleSelector::Oif(dev),
        _ => return None,
    };
    Some(RuleSpec {
        family,
        priority,
        selector,
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(dev: &str, gw: Option<[u8; 4]>, weight: u8) -> NextHop {
        NextHop {
            dev: dev.into(),
            gateway: gw.map(|g| IpAddr::V4(Ipv4Addr::from(g))),
            weight,
        }
    }

    fn links() -> (HashMap<String, u32>, HashMap<u32, String>) {
        let by_name: HashMap<String, u32> = [("wan1".to_owned(), 7), ("wan2".to_owned(), 9)].into();
        let by_index = by_name.iter().map(|(n, i)| (*i, n.clone())).collect();
        (by_name, by_index)
    }

    #[test]
    fn routes_round_trip_through_messages() {
        let (by_name, by_index) = links();
        for spec in [
            RouteSpec {
                family: Family::V4,
                table: 254,
                metric: 10,
                hops: vec![hop("wan1", Some([192, 0, 2, 1]), 3), hop("wan2", None, 255)],
            },
            RouteSpec {
                family: Family::V4,
                table: 1000,
                metric: 0,
                hops: vec![hop("wan2", Some([198, 51, 100, 1]), 1)],
            },
        ] {
            let msg = route_message(&spec, &by_name).unwrap();
            assert_eq!(decode_route(&msg, &by_index), Some(spec));
        }
    }

    #[test]
    fn multipath_weight_is_stored_minus_one_and_big_tables_use_the_attribute() {
        let (by_name, _) = links();
        let spec = RouteSpec {
            family: Family::V4,
            table: 300,
            metric: 0,
            hops: vec![hop("wan1", None, 2), hop("wan2", None, 1)],
        };
        let msg = route_message(&spec, &by_name).unwrap();
        assert_eq!(msg.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert!(msg.attributes.contains(&RouteAttribute::Table(300)));
        let Some(RouteAttribute::MultiPath(hops)) = msg
            .attributes
            .iter()
            .find(|a| matches!(a, RouteAttribute::MultiPath(_)))
        else {
            panic!("no multipath attribute");
        };
        assert_eq!(hops.iter().map(|h| h.hops).collect::<Vec<_>>(), [1, 0]);
    }

    #[test]
    fn unknown_interface_is_reported_by_name() {
        let (by_name, _) = links();
        let spec = RouteSpec {
            family: Family::V4,
            table: 100,
            metric: 0,
            hops: vec![hop("wan9", None, 1)],
        };
        let err = route_message(&spec, &by_name).unwrap_err();
        assert!(matches!(err, ApplyError::NoSuchInterface(dev) if dev == "wan9"));
    }

    #[test]
    fn single_hop_weight_is_not_compared() {
        let spec = RouteSpec {
            family: Family::V4,
            table: 100,
            metric: 0,
            hops: vec![hop("wan1", None, 7)],
        };
        assert_eq!(canonical(&spec).hops[0].weight, 1);
    }

    #[test]
    fn rules_round_trip_through_messages() {
        for (priority, selector, table) in [
            (1000, RuleSelector::SuppressMainDefault, 254),
            (
                1100,
                RuleSelector::FwMark {
                    mark: 0x100,
                    mask: 0xff00,
                },
                100,
            ),
            (
                1200,
                RuleSelector::From(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))),
                200,
            ),
            (1300, RuleSelector::Oif("wan1".into()), 1000),
        ] {
            let spec = RuleSpec {
                family: Family::V4,
                priority,
                selector,
                table,
            };
            let msg = rule_message(&spec);
            assert!(rule_is_ours(&msg));
            assert_eq!(decode_rule(&msg), Some(spec));
        }
    }

    #[test]
    fn rules_decode_as_the_kernel_dumps_them() {
        // The kernel echoes FRA_SUPPRESS_PREFIXLEN = -1 on rules that do not use it.
        let mut msg = rule_message(&RuleSpec {
            family: Family::V4,
            priority: 1100,
            selector: RuleSelector::FwMark {
                mark: 0x100,
                mask: 0xff00,
            },
            table: 100,
        });
        msg.attributes
            .push(RuleAttribute::SuppressPrefixLen(u32::MAX));
        assert!(decode_rule(&msg).is_some());
        // Anything we never set makes the rule stale.
        msg.attributes.push(RuleAttribute::Iifname("lan0".into()));
        assert_eq!(decode_rule(&msg), None);
    }
}
