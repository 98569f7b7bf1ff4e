//! rtnetlink implementation of [`RouteDriver`] and [`LinkObserver`].
//!
//! Ownership is the protocol number: every route and rule we install carries `ROUTE_PROTO`,
//! and only entries carrying it are ever replaced or deleted.

mod codec;
mod events;

pub use events::watch_links;

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use ipnet::{Ipv4Net, Ipv6Net};
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::RouteMessage;
use rtnetlink::packet_route::rule::RuleMessage;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};
use std::net::IpAddr;

use super::{ApplyError, LinkObserver, RouteDrift, RouteDriver};
use routeros_shared::plan::{Family, LinkInfo, RouteSpec, RuleSpec, MAIN_TABLE};

const ESRCH: i32 = 3;
const ENOENT: i32 = 2;

/// Talks rtnetlink to the network namespace of the thread that called [`NetlinkDriver::connect`].
#[derive(Debug, Clone)]
pub struct NetlinkDriver {
    handle: Handle,
}

/// One interface from a link dump.
struct Link {
    index: u32,
    name: String,
    carrier: bool,
    point_to_point: bool,
    /// (rx, tx) byte counters.
    bytes: Option<(u64, u64)>,
}

/// A route of ours from a dump, with the spec it decodes to (`None`: not a shape we install).
type OurRoute = (Option<RouteSpec>, RouteMessage);

fn netlink_err(what: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> ApplyError {
    move |source| ApplyError::Netlink {
        what: what.to_string(),
        source,
    }
}

/// The errno of a netlink error reply, as a positive number.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

impl NetlinkDriver {
    /// Open an rtnetlink socket and run its connection on the current tokio runtime.
    pub fn connect() -> Result<Self, ApplyError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| ApplyError::Socket {
                what: "open rtnetlink socket",
                source,
            })?;
        runtime.spawn(connection);
        Ok(Self { handle })
    }

    /// Send one change request and wait for the kernel's acknowledgement. rtnetlink's own
    /// add requests always set either NLM_F_EXCL or NLM_F_REPLACE; we need plain CREATE too.
    async fn change(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), rtnetlink::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut replies = self.handle.clone().request(req)?;
        while let Some(reply) = replies.next().await {
            if let NetlinkPayload::Error(e) = reply.payload {
                return Err(rtnetlink::Error::NetlinkError(e));
            }
        }
        Ok(())
    }

    /// Delete an entry; one that vanished meanwhile (the kernel drops routes of a link that
    /// goes down) answers `gone` and is already what we wanted.
    async fn delete(&self, msg: RouteNetlinkMessage, gone: i32) -> Result<(), rtnetlink::Error> {
        match self.change(msg, 0).await {
            Err(e) if errno(&e) == Some(gone) => Ok(()),
            result => result,
        }
    }

    async fn links(&self) -> Result<Vec<Link>, ApplyError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(netlink_err("dump links"))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let name = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })?;
                let bytes = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Stats64(s) => Some((s.rx_bytes, s.tx_bytes)),
                    _ => None,
                });
                Some(Link {
                    index: m.header.index,
                    name,
                    carrier: m.header.flags.contains(LinkFlags::LowerUp),
                    point_to_point: m.header.flags.contains(LinkFlags::Pointopoint),
                    bytes,
                })
            })
            .collect())
    }

    /// Every route of one family, in every table.
    async fn routes_of(&self, family: Family) -> Result<Vec<RouteMessage>, ApplyError> {
        // Without NETLINK_GET_STRICT_CHK the kernel ignores the table in the request and
        // dumps every table, which is what we want.
        let mut request = RouteMessageBuilder::<std::net::Ipv4Addr>::new().build();
        request.header.address_family = codec::address_family(family);
        let msgs: Vec<RouteMessage> = self
            .handle
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(netlink_err(format!("dump {family:?} routes")))?;
        Ok(msgs
            .into_iter()
            .filter(|m| codec::route_family(m) == Some(family))
            .collect())
    }

    /// Every IPv4 and IPv6 route.
    async fn all_routes(&self) -> Result<Vec<RouteMessage>, ApplyError> {
        let mut routes = self.routes_of(Family::V4).await?;
        routes.extend(self.routes_of(Family::V6).await?);
        Ok(routes)
    }

    async fn our_rules(&self) -> Result<Vec<RuleMessage>, ApplyError> {
        let mut ours = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let msgs: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(version)
                .execute()
                .try_collect()
                .await
                .map_err(netlink_err("dump rules"))?;
            ours.extend(msgs.into_iter().filter(codec::rule_is_ours));
        }
        Ok(ours)
    }

    async fn our_routes(&self, names: &HashMap<u32, String>) -> Result<Vec<OurRoute>, ApplyError> {
        let routes = self.all_routes().await?;
        Ok(routes
            .into_iter()
            .filter(codec::is_ours)
            .map(|m| (codec::decode_route(&m, names), m))
            .collect())
    }

    /// Add the wanted routes the kernel lacks. NLM_F_REPLACE swaps the first route with the
    /// same (table, metric) whatever its protocol, so it is only used when that slot holds
    /// ours alone; otherwise the route is created beside the others and ours is deleted later.
    async fn add_routes(
        &self,
        wanted: &[(RouteSpec, RouteMessage)],
        names: &HashMap<u32, String>,
    ) -> Result<(), ApplyError> {
        let routes = self.all_routes().await?;
        let key = |m: &RouteMessage| {
            (
                codec::route_family(m),
                codec::route_table(m),
                codec::route_metric(m),
            )
        };
        let foreign: HashSet<_> = routes
            .iter()
            .filter(|m| !codec::is_ours(m) && codec::is_default(m))
            .map(key)
            .collect();
        let ours: Vec<OurRoute> = routes
            .into_iter()
            .filter(codec::is_ours)
            .map(|m| (codec::decode_route(&m, names), m))
            .collect();
        for (spec, msg) in wanted {
            if ours.iter().any(|(have, _)| have.as_ref() == Some(spec)) {
                continue;
            }
            let slot = (Some(spec.family), spec.table, spec.metric);
            let ours_in_slot = ours
                .iter()
                .any(|(have, m)| have.is_some() && key(m) == slot);
            let flags = if ours_in_slot && !foreign.contains(&slot) {
                NLM_F_CREATE | NLM_F_REPLACE
            } else {
                NLM_F_CREATE
            };
            self.change(RouteNetlinkMessage::NewRoute(msg.clone()), flags)
                .await
                .map_err(netlink_err(format!("add route {spec:?}")))?;
        }
        Ok(())
    }

    /// Delete our routes that are not wanted (re-read, since a replace consumed some).
    async fn delete_stale_routes(
        &self,
        wanted: &[(RouteSpec, RouteMessage)],
        names: &HashMap<u32, String>,
    ) -> Result<(), ApplyError> {
        for (have, msg) in self.our_routes(names).await? {
            if have
                .as_ref()
                .is_some_and(|h| wanted.iter().any(|(w, _)| w == h))
            {
                continue;
            }
            // Deleting with the dumped message matches protocol and next hops exactly,
            // so a foreign route in the same slot is never hit.
            self.delete(RouteNetlinkMessage::DelRoute(msg), ESRCH)
                .await
                .map_err(netlink_err(format!("delete route {have:?}")))?;
        }
        Ok(())
    }
}

impl RouteDriver for NetlinkDriver {
    async fn sync(&mut self, routes: &[RouteSpec], rules: &[RuleSpec]) -> Result<(), ApplyError> {
        let links = self.links().await?;
        let index_of: HashMap<String, u32> =
            links.iter().map(|l| (l.name.clone(), l.index)).collect();
        let names: HashMap<u32, String> = links.into_iter().map(|l| (l.index, l.name)).collect();
        // Build every message before sending any, so a missing interface changes nothing.
        let wanted_routes = routes
            .iter()
            .map(|r| Ok((codec::canonical(r), codec::route_message(r, &index_of)?)))
            .collect::<Result<Vec<_>, ApplyError>>()?;
        let kernel_rules: Vec<(Option<RuleSpec>, RuleMessage)> = self
            .our_rules()
            .await?
            .into_iter()
            .map(|m| (codec::decode_rule(&m), m))
            .collect();

        // New routes first, then the rules pointing at them, then clean up: traffic always
        // has somewhere to go during the transition.
        self.add_routes(&wanted_routes, &names).await?;
        for rule in rules {
            if kernel_rules
                .iter()
                .any(|(have, _)| have.as_ref() == Some(rule))
            {
                continue;
            }
            let msg = codec::rule_message(rule);
            // Rules have no replace: an identical rule is the same rule (protocol included).
            self.change(RouteNetlinkMessage::NewRule(msg), NLM_F_CREATE | NLM_F_EXCL)
                .await
                .map_err(netlink_err(format!("add rule {rule:?}")))?;
        }
        for (have, msg) in kernel_rules {
            if have.as_ref().is_some_and(|h| rules.contains(h)) {
                continue;
            }
            self.delete(RouteNetlinkMessage::DelRule(msg), ENOENT)
                .await
                .map_err(netlink_err(format!("delete rule {have:?}")))?;
        }
        self.delete_stale_routes(&wanted_routes, &names).await
    }

    async fn current(&mut self) -> Result<(Vec<RouteSpec>, Vec<RuleSpec>), ApplyError> {
        let names: HashMap<u32, String> = self
            .links()
            .await?
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect();
        let mut routes: Vec<RouteSpec> = self
            .our_routes(&names)
            .await?
            .into_iter()
            .filter_map(|(spec, _)| spec)
            .collect();
        let mut rules: Vec<RuleSpec> = self
            .our_rules()
            .await?
            .iter()
            .filter_map(codec::decode_rule)
            .collect();
        routes.sort();
        rules.sort();
        Ok((routes, rules))
    }

    async fn drift(
        &mut self,
        routes: &[RouteSpec],
        rules: &[RuleSpec],
    ) -> Result<RouteDrift, ApplyError> {
        let wanted: Vec<RouteSpec> = routes.iter().map(codec::canonical).collect();
        let (have_routes, have_rules) = self.current().await?;
        Ok(RouteDrift::between(
            (&wanted, rules),
            (&have_routes, &have_rules),
        ))
    }
}

/// The gateway DHCP, netplan or a router advertisement configured: a foreign default route
/// of `family` through the link, the main table first, then the lowest metric.
fn learned_gateway(routes: &[RouteMessage], link: u32, family: Family) -> Option<IpAddr> {
    routes
        .iter()
        .filter(|m| {
            codec::route_family(m) == Some(family) && codec::is_default(m) && !codec::is_ours(m)
        })
        .filter_map(|m| {
            let gw = codec::route_hops(m)
                .into_iter()
                .find_map(|(index, gw, _)| gw.filter(|_| index == link))?;
            Some((
                codec::route_table(m) != MAIN_TABLE,
                codec::route_metric(m),
                gw,
            ))
        })
        .min()
        .map(|(_, _, gw)| gw)
}

impl NetlinkDriver {
    /// The link's first usable global IPv6 address: not link-local, not still in duplicate
    /// address detection (tentative, failed) and not deprecated (its lifetime ran out).
    async fn global_address6(
        &self,
        index: u32,
        ifname: &str,
    ) -> Result<Option<Ipv6Net>, ApplyError> {
        let mut request = self.handle.address().get().set_link_index_filter(index);
        request.message_mut().header.family = AddressFamily::Inet6;
        let addrs: Vec<AddressMessage> = request
            .execute()
            .try_collect()
            .await
            .map_err(netlink_err(format!("dump IPv6 addresses of {ifname}")))?;
        let unusable = AddressFlags::Tentative | AddressFlags::Dadfailed | AddressFlags::Deprecated;
        Ok(addrs.iter().find_map(|m| {
            if m.header.family != AddressFamily::Inet6 || m.header.scope != AddressScope::Universe {
                return None;
            }
            let flags = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Flags(f) => Some(*f),
                _ => None,
            });
            if flags.is_some_and(|f| f.intersects(unusable)) {
                return None;
            }
            let addr = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V6(ip)) => Some(*ip),
                _ => None,
            })?;
            Ipv6Net::new(addr, m.header.prefix_len).ok()
        }))
    }
}

impl LinkObserver for NetlinkDriver {
    async fn byte_counters(&mut self) -> Result<HashMap<String, (u64, u64)>, ApplyError> {
        Ok(self
            .links()
            .await?
            .into_iter()
            .filter_map(|l| Some((l.name, l.bytes?)))
            .collect())
    }

    async fn observe(&mut self, ifname: &str) -> Result<LinkInfo, ApplyError> {
        let Some(link) = self.links().await?.into_iter().find(|l| l.name == ifname) else {
            return Ok(LinkInfo::default());
        };

        let mut request = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index);
        request.message_mut().header.family = AddressFamily::Inet;
        let addrs: Vec<AddressMessage> = request
            .execute()
            .try_collect()
            .await
            .map_err(netlink_err(format!("dump addresses of {ifname}")))?;
        let address = addrs.iter().find_map(|m| {
            // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is always ours.
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(std::net::IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })
            })?;
            Ipv4Net::new(addr, m.header.prefix_len).ok()
        });

        let routes = self.all_routes().await?;
        let gateway = match learned_gateway(&routes, link.index, Family::V4) {
            Some(IpAddr::V4(gw)) => Some(gw),
            _ => None,
        };
        let gateway6 = match learned_gateway(&routes, link.index, Family::V6) {
            Some(IpAddr::V6(gw)) => Some(gw),
            _ => None,
        };
        Ok(LinkInfo {
            present: true,
            carrier: link.carrier,
            address,
            gateway,
            point_to_point: link.point_to_point,
            address6: self.global_address6(link.index, ifname).await?,
            gateway6,
        })
    }
}
