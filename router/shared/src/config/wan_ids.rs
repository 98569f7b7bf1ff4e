//! Stable WAN numbers. Every WAN owns a routing table and a conntrack mark; live connections
//! carry the mark, so the numbers must not change meaning while they exist. They are given
//! by name, not by list position, and kept between runs (the daemon stores them in
//! `<state-dir>/wan-ids.json`): reordering WANs changes nothing, a removed WAN's numbers are
//! held back until its connections have been flushed, and a new WAN never inherits a mark
//! that old connections still carry.
//!
//! The first allocation gives the numbers the position always gave (table 100 × n, mark
//! n << 8 for the n-th WAN), so an upgraded router keeps the marks its connections have.
//! `table`/`mark` set in the config win; a WAN whose kept number an explicit value takes
//! over is renumbered, and its old mark is released for flushing like a removed WAN's.
//! Pure: the daemon passes the result ([`Resolved`]) to the planner and does the I/O.

use super::model::WanConfig;
use super::Config;
use crate::plan::MARK_MASK;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One WAN's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanId {
    pub table: u32,
    pub mark: u32,
}

impl WanId {
    /// The numbers of slot `n` (1-based): table 100 × n, mark n << 8.
    fn slot(n: u32) -> Self {
        Self {
            table: 100 * n,
            mark: n << 8,
        }
    }
}

/// Numbers a WAN gave up (removed, or renumbered by an explicit value) while connections may
/// still carry its mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub wan: String,
    pub table: u32,
    pub mark: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WanIds {
    /// The numbers of every configured WAN, by interface name.
    #[serde(default)]
    pub wans: BTreeMap<String, WanId>,
    /// Held back from new WANs until the daemon has flushed these marks' connections.
    #[serde(default)]
    pub released: Vec<Released>,
}

/// Slots for automatic numbers: mark n << 8 must fit [`MARK_MASK`].
const MAX_SLOT: u32 = MARK_MASK >> 8;

/// A WAN's table and mark as far as known.
type Partial = (Option<u32>, Option<u32>);
/// Tables and marks taken or held back.
type Used = (BTreeSet<u32>, BTreeSet<u32>);

/// Slot `n` is free for what `need` still lacks.
fn fits(n: u32, need: &Partial, (tables, marks): &Used) -> bool {
    let s = WanId::slot(n);
    (need.0.is_some() || !tables.contains(&s.table))
        && (need.1.is_some() || !marks.contains(&s.mark))
}

/// Fill in what `need` lacks from slot `n` (checked with [`fits`]).
fn take(n: u32, need: &mut Partial, (tables, marks): &mut Used) {
    let s = WanId::slot(n);
    if need.0.is_none() && tables.insert(s.table) {
        need.0 = Some(s.table);
    }
    if need.1.is_none() && marks.insert(s.mark) {
        need.1 = Some(s.mark);
    }
}

/// Why no numbers could be given (both are refused by validation or cannot happen with at
/// most [`MAX_WANS`](super::MAX_WANS) WANs; kept typed so the daemon can say which WAN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WanIdsError {
    #[error("wan_interfaces[{index}]: table or mark already set on another WAN")]
    Clash { index: usize },
    #[error(
        "wan_interfaces[{index}]: no free table/mark left (numbers of removed WANs are held \
         until their connections are flushed)"
    )]
    Exhausted { index: usize },
}

/// What [`WanIds::allocate`] gives: the numbers to save, and the config resolved with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation<'a> {
    pub ids: WanIds,
    pub resolved: Resolved<'a>,
}

/// A validated config with every WAN's routing table and mark: what the planner decides
/// from. Only [`WanIds::allocate`] makes one, for exactly this config, so every WAN has
/// its numbers and nothing downstream handles a WAN without them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'a> {
    config: &'a Config,
    /// `ids[i]` belongs to `config.wan_interfaces[i]`.
    ids: Vec<WanId>,
}

/// One WAN with its numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedWan<'a> {
    pub config: &'a WanConfig,
    pub table: u32,
    pub mark: u32,
}

impl<'a> Resolved<'a> {
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// The WANs with their numbers, in config order.
    pub fn wans(&self) -> impl Iterator<Item = ResolvedWan<'a>> + '_ {
        self.config
            .wan_interfaces
            .iter()
            .zip(&self.ids)
            .map(|(config, id)| ResolvedWan {
                config,
                table: id.table,
                mark: id.mark,
            })
    }
}

impl WanIds {
    /// The numbers of `cfg`'s WANs, keeping every number `prev` gave to the same name.
    /// New WANs get slot (position + 1) when it is free, else the lowest free slot; numbers
    /// in `prev` that nobody keeps are held back (listed in `released`). Fails only when no
    /// slot is left (255 of them, and at most 32 WANs) or explicit values clash, which
    /// validation already refuses.
    pub fn allocate<'a>(cfg: &'a Config, prev: &WanIds) -> Result<Allocation<'a>, WanIdsError> {
        let wans = &cfg.wan_interfaces;
        let mut tables: BTreeSet<u32> = BTreeSet::new();
        let mut marks: BTreeSet<u32> = BTreeSet::new();
        for (index, w) in wans.iter().enumerate() {
            if w.table.is_some_and(|t| !tables.insert(t))
                || w.mark.is_some_and(|m| !marks.insert(m))
            {
                return Err(WanIdsError::Clash { index });
            }
        }
        // What each WAN had before: its entry, or numbers it gave up and now takes back
        // (unless another WAN holds that mark now or its old connections carry it too: a
        // WAN that comes back must not take a live WAN's numbers from it).
        let before = |name: &str| {
            prev.wans.get(name).copied().or_else(|| {
                prev.released
                    .iter()
                    .find(|r| {
                        r.wan == name
                            && !prev
                                .released
                                .iter()
                                .any(|o| o.wan != name && o.mark == r.mark)
                            && !prev.wans.iter().any(|(o, id)| {
                                o != name && (id.mark == r.mark || id.table == r.table)
                            })
                    })
                    .map(|r| WanId {
                        table: r.table,
                        mark: r.mark,
                    })
            })
        };

        // Explicit values, then kept ones; None where a number is still to be found.
        let mut got: Vec<Partial> = Vec::with_capacity(wans.len());
        for w in wans {
            let old = before(&w.name);
            let table = w
                .table
                .or_else(|| old.map(|o| o.table).filter(|t| tables.insert(*t)));
            let mark = w
                .mark
                .or_else(|| old.map(|o| o.mark).filter(|m| marks.insert(*m)));
            got.push((table, mark));
        }
        // Held back: every number known before that nobody kept.
        for id in prev
            .wans
            .values()
            .copied()
            .chain(prev.released.iter().map(|r| WanId {
                table: r.table,
                mark: r.mark,
            }))
        {
            tables.insert(id.table);
            marks.insert(id.mark);
        }

        // The slot of its position first (today's numbers on a first run), then the lowest.
        let mut used = (tables, marks);
        for (n, need) in (1u32..).zip(got.iter_mut()) {
            if n <= MAX_SLOT && fits(n, need, &used) {
                take(n, need, &mut used);
            }
        }
        for (i, need) in got.iter_mut().enumerate() {
            if need.0.is_some() && need.1.is_some() {
                continue;
            }
            let n = (1..=MAX_SLOT)
                .find(|&n| fits(n, need, &used))
                .ok_or(WanIdsError::Exhausted { index: i })?;
            take(n, need, &mut used);
        }

        // Every need is filled now: the loop above found a slot or returned.
        let numbers: Vec<WanId> = got
            .iter()
            .enumerate()
            .map(|(index, g)| match *g {
                (Some(table), Some(mark)) => Ok(WanId { table, mark }),
                _ => Err(WanIdsError::Exhausted { index }),
            })
            .collect::<Result<_, _>>()?;
        let ids: BTreeMap<String, WanId> = wans
            .iter()
            .zip(&numbers)
            .map(|(w, id)| (w.name.clone(), *id))
            .collect();
        let mut released: Vec<Released> = prev
            .released
            .iter()
            .filter(|r| ids.get(&r.wan).map(|id| id.mark) != Some(r.mark))
            .cloned()
            .collect();
        for (name, old) in &prev.wans {
            if ids.get(name).map(|id| id.mark) != Some(old.mark) {
                released.push(Released {
                    wan: name.clone(),
                    table: old.table,
                    mark: old.mark,
                });
            }
        }
        Ok(Allocation {
            ids: WanIds {
                wans: ids,
                released,
            },
            resolved: Resolved {
                config: cfg,
                ids: numbers,
            },
        })
    }

    /// The numbers of `wan`, if it has any.
    pub fn get(&self, wan: &str) -> Option<WanId> {
        self.wans.get(wan).copied()
    }

    /// The connections of a released mark are gone: its numbers may be given out again.
    pub fn flushed(&mut self, mark: u32) {
        self.released.retain(|r| r.mark != mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid config with these WANs: (name, explicit table, explicit mark).
    fn config(wans: &[(&str, Option<u32>, Option<u32>)]) -> Config {
        let mut text = String::new();
        for (i, (name, table, mark)) in wans.iter().enumerate() {
            text += &format!(
                "[[wan_interfaces]]\nname = \"{name}\"\ngateway = \"192.0.2.{}\"\n",
                8 * i + 1
            );
            if let Some(t) = table {
                text += &format!("table = {t}\n");
            }
            if let Some(m) = mark {
                text += &format!("mark = {m}\n");
            }
        }
        text += "[lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n";
        Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn auto(names: &[&'static str]) -> Config {
        let wans: Vec<_> = names.iter().map(|n| (*n, None, None)).collect();
        config(&wans)
    }

    fn next(cfg: &Config, prev: &WanIds) -> WanIds {
        WanIds::allocate(cfg, prev).unwrap().ids
    }

    fn id(table: u32, mark: u32) -> WanId {
        WanId { table, mark }
    }

    /// (name, table, mark) in config order.
    fn numbers(resolved: &Resolved) -> Vec<(String, u32, u32)> {
        resolved
            .wans()
            .map(|w| (w.config.name.clone(), w.table, w.mark))
            .collect()
    }

    #[test]
    fn first_allocation_gives_the_positional_numbers() {
        let cfg = auto(&["eth0", "eth1", "eth2"]);
        let Allocation { ids, resolved } = WanIds::allocate(&cfg, &WanIds::default()).unwrap();
        assert_eq!(
            numbers(&resolved),
            [
                ("eth0".into(), 100, 0x100),
                ("eth1".into(), 200, 0x200),
                ("eth2".into(), 300, 0x300)
            ]
        );
        assert!(ids.released.is_empty());
        assert_eq!(next(&cfg, &ids), ids, "stable");
    }

    #[test]
    fn reordering_keeps_every_number() {
        let ids = next(&auto(&["a", "b", "c"]), &WanIds::default());
        let reordered = next(&auto(&["c", "a", "b"]), &ids);
        assert_eq!(reordered, ids);
        assert_eq!(reordered.get("c"), Some(id(300, 0x300)));
    }

    #[test]
    fn removed_wan_is_held_back_until_flushed() {
        let ids = next(&auto(&["a", "b", "c"]), &WanIds::default());
        let removed = next(&auto(&["a", "c"]), &ids);
        assert_eq!(
            removed.get("c"),
            Some(id(300, 0x300)),
            "c keeps its numbers"
        );
        assert_eq!(
            removed.released,
            [Released {
                wan: "b".into(),
                table: 200,
                mark: 0x200
            }]
        );
        // A new WAN, even in b's old position, does not get b's mark while it is held.
        let added = next(&auto(&["a", "d", "c"]), &removed);
        assert_eq!(added.get("d"), Some(id(400, 0x400)));
        assert_eq!(added.released.len(), 1, "still held: {added:?}");
        // Once flushed, the numbers are free again.
        let mut flushed = removed.clone();
        flushed.flushed(0x200);
        assert!(flushed.released.is_empty());
        let added = next(&auto(&["a", "d", "c"]), &flushed);
        assert_eq!(added.get("d"), Some(id(200, 0x200)));
    }

    #[test]
    fn a_wan_back_before_the_flush_takes_its_numbers_back() {
        let ids = next(&auto(&["a", "b"]), &WanIds::default());
        let removed = next(&auto(&["a"]), &ids);
        let back = next(&auto(&["b", "a"]), &removed);
        assert_eq!(back, ids, "nothing left to flush: {back:?}");
    }

    #[test]
    fn explicit_values_win_and_automatic_ones_go_around_them() {
        // wan2 asks for what position would give wan1.
        let cfg = config(&[("wan1", None, None), ("wan2", Some(100), Some(0x100))]);
        let ids = next(&cfg, &WanIds::default());
        assert_eq!(ids.get("wan2"), Some(id(100, 0x100)));
        assert_eq!(ids.get("wan1"), Some(id(200, 0x200)));
        // Only a table: the mark still comes from the position.
        let cfg = config(&[("wan1", Some(7), None), ("wan2", None, None)]);
        let ids = next(&cfg, &WanIds::default());
        assert_eq!(ids.get("wan1"), Some(id(7, 0x100)));
        assert_eq!(ids.get("wan2"), Some(id(200, 0x200)));
    }

    #[test]
    fn an_explicit_value_taking_a_kept_mark_renumbers_and_releases_it() {
        let ids = next(&auto(&["a", "b"]), &WanIds::default());
        let cfg = config(&[
            ("a", None, None),
            ("b", None, None),
            ("c", None, Some(0x100)),
        ]);
        let after = next(&cfg, &ids);
        assert_eq!(after.get("c").map(|i| i.mark), Some(0x100));
        let a = after.get("a").unwrap();
        assert_eq!(a.table, 100, "a keeps its table");
        assert_ne!(a.mark, 0x100);
        assert_ne!(a.mark, 0x200);
        assert_eq!(after.get("b"), Some(id(200, 0x200)));
        assert_eq!(
            after.released,
            [Released {
                wan: "a".into(),
                table: 100,
                mark: 0x100
            }],
            "a's connections still carry 0x100"
        );
        // Dropping the explicit value later does not move a again.
        let again = next(&auto(&["a", "b"]), &after);
        assert_eq!(again.get("a"), Some(a));
    }

    #[test]
    fn running_out_of_slots_is_an_error_not_a_collision() {
        let cfg = auto(&["a"]);
        let held = WanIds {
            wans: BTreeMap::new(),
            released: (1..=MAX_SLOT)
                .map(|n| Released {
                    wan: format!("old{n}"),
                    table: 100 * n,
                    mark: n << 8,
                })
                .collect(),
        };
        let err = WanIds::allocate(&cfg, &held).unwrap_err();
        assert_eq!(err, WanIdsError::Exhausted { index: 0 });
        assert!(err.to_string().contains("no free table/mark left"), "{err}");
    }

    proptest! {
        /// Any sequence of configs (WANs added, removed, reordered, some explicit values):
        /// numbers never collide, a WAN keeps its numbers while its explicit values do not
        /// change, and no WAN gets a mark that is held back for another.
        #[test]
        fn numbers_stay_unique_and_stable(
            steps in proptest::collection::vec(
                proptest::collection::vec((0usize..8, proptest::option::weighted(0.2, 1u32..4)), 1..6),
                1..12,
            )
        ) {
            let mut ids = WanIds::default();
            let mut prev_cfg: Option<Config> = None;
            for step in steps {
                let mut seen = BTreeSet::new();
                let mut wans: Vec<(String, Option<u32>, Option<u32>)> = Vec::new();
                let mut explicit = BTreeSet::new();
                for (n, x) in step {
                    // Explicit mark x << 12 (0x1000..0x3000), unique within a config.
                    let mark = x.map(|x| x << 12).filter(|m| explicit.insert(*m));
                    if seen.insert(n) {
                        wans.push((format!("w{n}"), None, mark));
                    }
                }
                let refs: Vec<(&str, Option<u32>, Option<u32>)> =
                    wans.iter().map(|(n, t, m)| (n.as_str(), *t, *m)).collect();
                let cfg = config(&refs);
                let after = WanIds::allocate(&cfg, &ids).unwrap().ids;
                let tables: BTreeSet<u32> = after.wans.values().map(|i| i.table).collect();
                let marks: BTreeSet<u32> = after.wans.values().map(|i| i.mark).collect();
                prop_assert_eq!(tables.len(), after.wans.len());
                prop_assert_eq!(marks.len(), after.wans.len());
                for (name, _, mark) in &wans {
                    let now = after.get(name).unwrap();
                    if let Some(m) = mark {
                        prop_assert_eq!(now.mark, *m);
                    }
                    let same_explicit = prev_cfg.as_ref().and_then(|c| {
                        c.wan_interfaces.iter().find(|w| &w.name == name)
                    }).is_some_and(|w| w.mark == *mark);
                    let taken = ids.get(name).is_some_and(|old| explicit.contains(&old.mark));
                    if same_explicit && mark.is_none() && !taken {
                        prop_assert_eq!(Some(now), ids.get(name), "{} moved", name);
                    }
                    // New automatic marks avoid every mark still held for another WAN.
                    let had = ids.get(name).map(|i| i.mark);
                    if mark.is_none() && had != Some(now.mark) {
                        prop_assert!(!ids.released.iter().any(|r| &r.wan != name && r.mark == now.mark));
                    }
                }
                // Whatever some WAN had and no longer has is released.
                for (name, old) in &ids.wans {
                    if after.get(name).map(|i| i.mark) != Some(old.mark) {
                        prop_assert!(after.released.iter().any(|r| &r.wan == name && r.mark == old.mark));
                    }
                }
                ids = after;
                // Half the time the daemon has flushed everything before the next change.
                if ids.released.len() % 2 == 0 {
                    for m in ids.released.iter().map(|r| r.mark).collect::<Vec<_>>() {
                        ids.flushed(m);
                    }
                }
                prev_cfg = Some(cfg);
            }
        }
    }
}
