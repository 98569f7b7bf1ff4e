//! What the kernel holds of our shaping, read from `ip -j -d link show`, `tc -j qdisc show`
//! and `tc -j filter show` (parsed here, pure), and what to run to make it the wanted one
//! ([`changes`]): only what differs, so applying twice runs nothing the second time, and a
//! restarted daemon adopts what the previous one made.

use routeros_shared::plan::shaping::{
    ifb_alias, ShapeStep, ShapedLine, Shaper, IFB_ALIAS_PREFIX, REDIRECT_PREF, SHAPER_HANDLE,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One network device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    pub up: bool,
    pub ifb: bool,
    pub alias: Option<String>,
}

/// A device's root qdisc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootQdisc {
    /// It has our handle.
    pub ours: bool,
    pub kind: String,
    /// Its shaping rate in bytes/s (CAKE's `bandwidth`, tbf's `rate`).
    pub rate_bytes: Option<u64>,
}

/// A device's qdiscs as far as shaping cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevQdiscs {
    pub root: Option<RootQdisc>,
    pub ingress: bool,
}

/// One filter of a device's ingress qdisc: its preference and where it redirects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub pref: u16,
    pub to_dev: Option<String>,
}

/// Everything read, by device name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub links: BTreeMap<String, LinkState>,
    pub qdiscs: BTreeMap<String, DevQdiscs>,
    pub filters: BTreeMap<String, Vec<Filter>>,
}

fn array(json: &str) -> Vec<Value> {
    match serde_json::from_str(json) {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

/// `ip -j -d link show`.
pub fn parse_links(json: &str) -> BTreeMap<String, LinkState> {
    array(json)
        .iter()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_string();
            let flags = l["flags"].as_array().cloned().unwrap_or_default();
            Some((
                name,
                LinkState {
                    up: flags.iter().any(|f| f == "UP"),
                    ifb: l["linkinfo"]["info_kind"] == "ifb",
                    alias: l["ifalias"].as_str().map(str::to_string),
                },
            ))
        })
        .collect()
}

/// `tc -j qdisc show dev X`.
pub fn parse_qdiscs(json: &str) -> DevQdiscs {
    let ours = format!("{SHAPER_HANDLE:x}:");
    let mut d = DevQdiscs::default();
    for q in array(json) {
        let kind = q["kind"].as_str().unwrap_or_default();
        if kind == "ingress" {
            d.ingress = true;
        } else if q["root"] == true {
            let opts = &q["options"];
            d.root = Some(RootQdisc {
                ours: q["handle"].as_str() == Some(&ours),
                kind: kind.to_string(),
                rate_bytes: opts["bandwidth"].as_u64().or(opts["rate"].as_u64()),
            });
        }
    }
    d
}

/// `tc -j filter show dev X parent ffff:`: one entry per filter preference (tc lists a
/// u32 filter's hash table and its key as more entries of the same preference).
pub fn parse_filters(json: &str) -> Vec<Filter> {
    let mut by_pref: BTreeMap<u16, Option<String>> = BTreeMap::new();
    for f in array(json) {
        let Some(pref) = f["pref"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        let to = f["options"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|a| a["to_dev"].as_str().map(str::to_string));
        let slot = by_pref.entry(pref).or_default();
        if slot.is_none() {
            *slot = to;
        }
    }
    by_pref
        .into_iter()
        .map(|(pref, to_dev)| Filter { pref, to_dev })
        .collect()
}

/// The devices whose qdiscs [`changes`] needs: the wanted lines' devices and ifbs, the
/// configured lines' devices, and the devices our ifbs were made for.
pub fn devices_to_read(
    lines: &[ShapedLine],
    configured: &[String],
    links: &BTreeMap<String, LinkState>,
) -> BTreeSet<String> {
    let mut devs: BTreeSet<String> = configured.iter().cloned().collect();
    for l in lines {
        devs.insert(l.dev.clone());
        devs.insert(l.ifb.clone());
    }
    for (name, link) in links {
        if let Some(dev) = our_ifb_dev(link) {
            devs.insert(name.clone());
            devs.insert(dev.to_string());
        }
    }
    devs.retain(|d| links.contains_key(d));
    devs
}

/// The device an ifb of ours serves (its alias says), None if it is not ours.
fn our_ifb_dev(link: &LinkState) -> Option<&str> {
    link.alias
        .as_deref()
        .filter(|_| link.ifb)
        .and_then(|a| a.strip_prefix(IFB_ALIAS_PREFIX))
}

/// What one wanted line needs run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineChange {
    pub wan: String,
    /// Its device does not exist (yet: a PPPoE session not up): nothing can be done.
    pub missing_device: Option<String>,
    pub commands: Vec<Vec<String>>,
}

/// Everything to run: per wanted line, then the removal of what is ours but no longer wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub lines: Vec<LineChange>,
    pub removals: Vec<Vec<String>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.removals.is_empty()
            && self
                .lines
                .iter()
                .all(|l| l.commands.is_empty() && l.missing_device.is_none())
    }
}

/// The commands that make `obs` hold exactly `lines` (shaped with `shaper`), given the
/// devices of every configured line (where shaping of a line turned off is looked for).
pub fn changes(
    lines: &[ShapedLine],
    configured: &[String],
    obs: &Observed,
    shaper: Shaper,
) -> Changes {
    let no_qdiscs = DevQdiscs::default();
    let qdiscs = |dev: &str| obs.qdiscs.get(dev).unwrap_or(&no_qdiscs);
    let filters = |dev: &str| obs.filters.get(dev).map(Vec::as_slice).unwrap_or(&[]);
    let our_filter = |dev: &str| {
        filters(dev)
            .iter()
            .find(|f| f.pref == REDIRECT_PREF)
            .cloned()
    };
    let root_ok = |dev: &str, kbit: u64| {
        qdiscs(dev).root.as_ref().is_some_and(|r| {
            r.ours && r.kind == shaper.kind() && r.rate_bytes == Some(kbit * 1000 / 8)
        })
    };

    let mut out = Changes::default();
    for line in lines {
        let mut change = LineChange {
            wan: line.wan.clone(),
            ..LineChange::default()
        };
        if !obs.links.contains_key(&line.dev) {
            change.missing_device = Some(line.dev.clone());
            out.lines.push(change);
            continue;
        }
        for step in line.steps() {
            let cmds = step.commands(shaper);
            let needed: Vec<Vec<String>> = match &step {
                ShapeStep::Root { dev, kbit, .. } => {
                    if root_ok(dev, *kbit) {
                        vec![]
                    } else {
                        cmds
                    }
                }
                ShapeStep::Ifb { ifb, of_dev } => match obs.links.get(ifb) {
                    None => cmds,
                    // [add, alias, up]: what an existing one lacks.
                    Some(l) => {
                        let mut c = Vec::new();
                        if l.alias.as_deref() != Some(&ifb_alias(of_dev)) {
                            c.push(cmds[1].clone());
                        }
                        if !l.up {
                            c.push(cmds[2].clone());
                        }
                        c
                    }
                },
                ShapeStep::IngressQdisc { dev } => {
                    if qdiscs(dev).ingress {
                        vec![]
                    } else {
                        cmds
                    }
                }
                ShapeStep::Redirect { dev, ifb } => match our_filter(dev) {
                    Some(f) if f.to_dev.as_deref() == Some(ifb) => vec![],
                    Some(_) => [step.undo(), cmds].concat(),
                    None => cmds,
                },
            };
            change.commands.extend(needed);
        }
        out.lines.push(change);
    }

    // Ours, no longer wanted: on the configured lines' devices and the devices our ifbs
    // name (a line removed from the config, or whose device changed).
    let wanted_devs: BTreeSet<&str> = lines.iter().map(|l| l.dev.as_str()).collect();
    let wanted_ifbs: BTreeSet<&str> = lines.iter().map(|l| l.ifb.as_str()).collect();
    let mut stale: BTreeSet<String> = configured.iter().cloned().collect();
    stale.extend(
        obs.links
            .values()
            .filter_map(our_ifb_dev)
            .map(str::to_string),
    );
    for dev in stale
        .iter()
        .filter(|d| !wanted_devs.contains(d.as_str()) && obs.links.contains_key(*d))
    {
        let redirect = ShapeStep::Redirect {
            dev: dev.clone(),
            ifb: String::new(),
        };
        if our_filter(dev).is_some() {
            out.removals.extend(redirect.undo());
            if filters(dev).iter().all(|f| f.pref == REDIRECT_PREF) && qdiscs(dev).ingress {
                out.removals
                    .extend(ShapeStep::IngressQdisc { dev: dev.clone() }.undo());
            }
        }
        if qdiscs(dev).root.as_ref().is_some_and(|r| r.ours) {
            let root = ShapeStep::Root {
                dev: dev.clone(),
                kbit: 0,
                ingress: false,
            };
            out.removals.extend(root.undo());
        }
    }
    for (name, link) in &obs.links {
        if our_ifb_dev(link).is_some() && !wanted_ifbs.contains(name.as_str()) {
            let ifb = ShapeStep::Ifb {
                ifb: name.clone(),
                of_dev: String::new(),
            };
            out.removals.extend(ifb.undo());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::plan::shaping::shell_line;

    const LINKS: &str = r#"[
        {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"linkinfo":null},
        {"ifindex":2,"ifname":"wan1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
         "linkinfo":{"info_kind":"veth"}},
        {"ifindex":3,"ifname":"wan2","flags":["BROADCAST","UP"]},
        {"ifindex":9,"ifname":"ifb-wan1","flags":["BROADCAST","NOARP","UP","LOWER_UP"],
         "ifalias":"routeros shaping of wan1","linkinfo":{"info_kind":"ifb"}},
        {"ifindex":10,"ifname":"ifb-old","flags":["BROADCAST","NOARP"],
         "ifalias":"routeros shaping of wan2","linkinfo":{"info_kind":"ifb"}},
        {"ifindex":11,"ifname":"ifb0","flags":["BROADCAST","NOARP"],"linkinfo":{"info_kind":"ifb"}}
    ]"#;

    const CAKE_ROOT: &str = r#"[{"kind":"cake","handle":"6e78:","root":true,"refcnt":2,
        "options":{"bandwidth":2375000,"diffserv":"diffserv4","flowmode":"triple-isolate",
        "nat":true,"wash":false,"ingress":false,"ack-filter":"disabled","split_gso":true,
        "rtt":100000,"raw":true,"overhead":0,"fwmark":"0"}},
        {"kind":"ingress","handle":"ffff:","parent":"ffff:fff1","options":{}}]"#;

    const IFB_CAKE: &str = r#"[{"kind":"cake","handle":"6e78:","root":true,"refcnt":2,
        "options":{"bandwidth":11875000,"diffserv":"diffserv4","nat":true,"ingress":true}}]"#;

    /// As tc 6.1 lists a u32 filter: the hash table, then the key with its action.
    const REDIRECT: &str = r#"[{"protocol":"all","pref":28280,"kind":"u32","chain":0},
        {"protocol":"all","pref":28280,"kind":"u32","chain":0,"options":{"fh":"800:","ht_divisor":1}},
        {"protocol":"all","pref":28280,"kind":"u32","chain":0,"options":{"fh":"800::800",
         "order":2048,"key_ht":"800","bkt":0,"terminal":true,"match":{"value":"0","mask":"0",
         "offmask":"","off":0},"actions":[{"order":1,"kind":"mirred","mirred_action":"redirect",
         "direction":"egress","to_dev":"ifb-wan1","control_action":{"type":"stolen"},
         "index":1,"ref":1,"bind":1}]}}]"#;

    fn line() -> ShapedLine {
        ShapedLine {
            wan: "wan1".into(),
            dev: "wan1".into(),
            ifb: "ifb-wan1".into(),
            upload_kbit: 19_000,
            download_kbit: 95_000,
        }
    }

    fn shown(cmds: &[Vec<String>]) -> Vec<String> {
        cmds.iter().map(|c| shell_line(c)).collect()
    }

    /// The kernel after our first apply of [`line`] (and a stale ifb for wan2).
    fn applied() -> Observed {
        let links = parse_links(LINKS);
        Observed {
            qdiscs: [
                ("wan1".to_string(), parse_qdiscs(CAKE_ROOT)),
                ("ifb-wan1".to_string(), parse_qdiscs(IFB_CAKE)),
            ]
            .into(),
            filters: [("wan1".to_string(), parse_filters(REDIRECT))].into(),
            links,
        }
    }

    #[test]
    fn tc_json_is_read() {
        let links = parse_links(LINKS);
        assert_eq!(
            links["ifb-wan1"],
            LinkState {
                up: true,
                ifb: true,
                alias: Some("routeros shaping of wan1".into())
            }
        );
        assert!(!links["wan1"].ifb && links["wan1"].up);
        let q = parse_qdiscs(CAKE_ROOT);
        assert!(q.ingress);
        assert_eq!(
            q.root,
            Some(RootQdisc {
                ours: true,
                kind: "cake".into(),
                rate_bytes: Some(2_375_000)
            })
        );
        assert_eq!(
            parse_filters(REDIRECT),
            [Filter {
                pref: REDIRECT_PREF,
                to_dev: Some("ifb-wan1".into())
            }]
        );
        let tbf = r#"[{"kind":"tbf","handle":"6e78:","root":true,"refcnt":2,
            "options":{"rate":125000,"burst":6056,"lat":100000}}]"#;
        assert_eq!(parse_qdiscs(tbf).root.unwrap().rate_bytes, Some(125_000));
        assert_eq!(parse_qdiscs("").root, None);
    }

    #[test]
    fn a_bare_kernel_gets_every_step_and_leftovers_go() {
        let obs = Observed {
            links: parse_links(LINKS),
            ..Observed::default()
        };
        let mut obs = obs;
        obs.links.remove("ifb-wan1");
        let c = changes(
            &[line()],
            &["wan1".into(), "wan2".into()],
            &obs,
            Shaper::Cake,
        );
        assert_eq!(c.lines.len(), 1);
        assert_eq!(
            shown(&c.lines[0].commands),
            [
                "tc qdisc replace dev wan1 root handle 6e78: cake bandwidth 19000kbit diffserv4 nat",
                "ip link add name ifb-wan1 type ifb",
                "ip link set dev ifb-wan1 alias \"routeros shaping of wan1\"",
                "ip link set dev ifb-wan1 up",
                "tc qdisc replace dev ifb-wan1 root handle 6e78: cake bandwidth 95000kbit diffserv4 nat ingress",
                "tc qdisc add dev wan1 handle ffff: ingress",
                "tc filter add dev wan1 parent ffff: pref 28280 protocol all u32 match u32 0 0 action mirred egress redirect dev ifb-wan1",
            ]
        );
        // ifb-old is ours (its alias) and unwanted; ifb0 is somebody else's.
        assert_eq!(shown(&c.removals), ["ip link del dev ifb-old"]);
    }

    #[test]
    fn what_is_in_place_is_adopted_and_only_a_changed_rate_is_rewritten() {
        let mut obs = applied();
        obs.links.remove("ifb-old");
        let c = changes(&[line()], &["wan1".into()], &obs, Shaper::Cake);
        assert!(c.is_empty(), "{c:#?}");

        let mut faster = line();
        faster.download_kbit = 200_000;
        let c = changes(&[faster], &["wan1".into()], &obs, Shaper::Cake);
        assert_eq!(
            shown(&c.lines[0].commands),
            ["tc qdisc replace dev ifb-wan1 root handle 6e78: cake bandwidth 200000kbit diffserv4 nat ingress"]
        );
        // Another shaper kind (the lab's tbf) replaces it too.
        let c = changes(&[line()], &["wan1".into()], &obs, Shaper::Tbf);
        assert_eq!(c.lines[0].commands.len(), 2, "{c:#?}");
    }

    #[test]
    fn turned_off_or_removed_lines_lose_only_what_is_ours() {
        let obs = applied();
        // Shaping off for wan1 (still configured): its shaper, filter, ingress qdisc, ifb go.
        let c = changes(&[], &["wan1".into(), "wan2".into()], &obs, Shaper::Cake);
        assert_eq!(
            shown(&c.removals),
            [
                "tc filter del dev wan1 parent ffff: pref 28280",
                "tc qdisc del dev wan1 handle ffff: ingress",
                "tc qdisc del dev wan1 root",
                "ip link del dev ifb-old",
                "ip link del dev ifb-wan1",
            ]
        );
        // The WAN removed from the config: found by its ifb's alias all the same.
        let c2 = changes(&[], &[], &obs, Shaper::Cake);
        assert_eq!(c2.removals, c.removals);

        // Somebody else's root qdisc and another filter in the ingress qdisc stay.
        let mut obs = applied();
        obs.qdiscs
            .get_mut("wan1")
            .unwrap()
            .root
            .as_mut()
            .unwrap()
            .ours = false;
        obs.filters.get_mut("wan1").unwrap().push(Filter {
            pref: 1,
            to_dev: None,
        });
        let c = changes(&[], &["wan1".into()], &obs, Shaper::Cake);
        assert_eq!(
            shown(&c.removals),
            [
                "tc filter del dev wan1 parent ffff: pref 28280",
                "ip link del dev ifb-old",
                "ip link del dev ifb-wan1",
            ]
        );
    }

    #[test]
    fn a_missing_device_is_reported_not_touched() {
        let obs = Observed::default();
        let mut ppp = line();
        ppp.dev = "ppp-wan1".into();
        let c = changes(&[ppp], &["ppp-wan1".into()], &obs, Shaper::Cake);
        assert_eq!(c.lines[0].missing_device.as_deref(), Some("ppp-wan1"));
        assert!(c.lines[0].commands.is_empty() && c.removals.is_empty());
        assert!(!c.is_empty());
    }

    #[test]
    fn a_redirect_to_another_ifb_is_replaced() {
        let mut obs = applied();
        obs.filters.get_mut("wan1").unwrap()[0].to_dev = Some("ifb-x".into());
        let c = changes(&[line()], &["wan1".into()], &obs, Shaper::Cake);
        assert_eq!(
            shown(&c.lines[0].commands),
            [
                "tc filter del dev wan1 parent ffff: pref 28280",
                "tc filter add dev wan1 parent ffff: pref 28280 protocol all u32 match u32 0 0 action mirred egress redirect dev ifb-wan1",
            ]
        );
    }

    #[test]
    fn devices_read_are_the_wanted_configured_and_ours_that_exist() {
        let links = parse_links(LINKS);
        let devs = devices_to_read(&[line()], &["wan1".into(), "ppp-x".into()], &links);
        let want: BTreeSet<String> = ["ifb-old", "ifb-wan1", "wan1", "wan2"]
            .map(String::from)
            .into();
        assert_eq!(devs, want);
    }
}
