//! Splitting the numgen number space among the WANs: `numgen random mod TOTAL` gets one
//! contiguous slot range per WAN ([`slots`]); `numgen inc mod LEN` (spare-capacity placement)
//! gets a round-robin cycle in which the WANs take turns by weight ([`interleaved`]).

/// One WAN's share of the random number space: slots `first..=last` map to `mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub first: u32,
    pub last: u32,
    pub mark: u32,
}

/// `(mark, weight)` pairs -> ranges covering `0..total` exactly once, in input order.
/// Weights of zero get no slot (validation forbids them; this keeps the invariant anyway).
pub fn slots(weighted: &[(u32, u32)]) -> (u32, Vec<Slot>) {
    let mut next = 0;
    let slots = weighted
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|&(mark, weight)| {
            let slot = Slot {
                first: next,
                last: next + weight - 1,
                mark,
            };
            next += weight;
            slot
        })
        .collect();
    (next, slots)
}

/// The round-robin cycle: shares are kept to 1/64 (the placer's hysteresis is 5 %). Fixed,
/// so that the rule (`numgen inc mod 64`) never changes as the shares move: only the named
/// map's elements do, updated in place (the table, and with it the policies' host-affinity
/// sets, stays).
pub const MAX_CYCLE: u32 = 64;

/// `(mark, weight)` pairs -> a cycle of slots for `numgen inc mod TOTAL`, consecutive new
/// connections taking turns in proportion to the weights (smooth weighted round-robin), so
/// connections opened at the same instant (a download manager's 4 streams, placed before any
/// rate moved) are spread over the lines instead of landing on one by chance as with `numgen
/// random`. The counter lives in the kernel: placing each connection is still its work. Each
/// run of equal marks is one range. The cycle is [`MAX_CYCLE`] long (longer only with more
/// WANs than that: every WAN keeps at least one turn).
pub fn interleaved(weighted: &[(u32, u32)]) -> (u32, Vec<Slot>) {
    let weighted: Vec<(u32, u32)> = weighted.iter().copied().filter(|&(_, w)| w > 0).collect();
    let sum: u64 = weighted.iter().map(|&(_, w)| u64::from(w)).sum();
    let len = u64::from(MAX_CYCLE).max(weighted.len() as u64);
    let turns: Vec<u32> = turns_in(&weighted, sum, len)
        .into_iter()
        .map(|t| u32::try_from(t).unwrap_or(u32::MAX))
        .collect();
    let total: u32 = turns.iter().sum();
    let mut credit = vec![0i64; turns.len()];
    let mut slots: Vec<Slot> = Vec::new();
    for n in 0..total {
        for (c, &t) in credit.iter_mut().zip(&turns) {
            *c += i64::from(t);
        }
        // The WAN furthest behind its share goes next (the first of equals).
        let Some(i) = (0..credit.len()).reduce(|a, b| if credit[b] > credit[a] { b } else { a })
        else {
            break;
        };
        credit[i] -= i64::from(total);
        let mark = weighted[i].0;
        match slots.last_mut() {
            Some(last) if last.mark == mark => last.last = n,
            _ => slots.push(Slot {
                first: n,
                last: n,
                mark,
            }),
        }
    }
    (total, slots)
}

/// The weights (summing to `sum`) as `len` whole turns, at least one each: largest remainder
/// first, so each share is within one turn of the weight's (plus one for each WAN raised to
/// its one turn).
fn turns_in(weighted: &[(u32, u32)], sum: u64, len: u64) -> Vec<u64> {
    let exact: Vec<(u64, u64)> = weighted
        .iter()
        .map(|&(_, w)| (u64::from(w) * len / sum, u64::from(w) * len % sum))
        .collect();
    let mut turns: Vec<u64> = exact.iter().map(|&(q, _)| q.max(1)).collect();
    let mut by_remainder: Vec<usize> = (0..turns.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(exact[i].1));
    for &i in by_remainder.iter().cycle().take(turns.len() * 2) {
        if turns.iter().sum::<u64>() >= len {
            break;
        }
        turns[i] += 1;
    }
    // A WAN raised to its one turn takes it from the largest.
    while turns.iter().sum::<u64>() > len {
        let Some(big) = (0..turns.len()).max_by_key(|&i| (turns[i], std::cmp::Reverse(i))) else {
            break;
        };
        turns[big] -= 1;
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The property a peer got wrong with three or more WANs: every number the
        /// generator can produce belongs to exactly one WAN, in proportion to its weight.
        #[test]
        fn slots_cover_the_range_once(weights in prop::collection::vec(1u32..=255, 1..=32)) {
            let input: Vec<(u32, u32)> = (1u32..).zip(&weights).map(|(n, &w)| (n << 8, w)).collect();
            let (total, slots) = slots(&input);
            prop_assert_eq!(total, weights.iter().sum::<u32>());
            let mut owner = vec![0u32; total as usize];
            for s in &slots {
                for n in s.first..=s.last {
                    owner[n as usize] += 1;
                }
            }
            prop_assert!(owner.iter().all(|&c| c == 1), "every slot owned exactly once");
            for (s, (mark, w)) in slots.iter().zip(&input) {
                prop_assert_eq!(s.mark, *mark);
                prop_assert_eq!(s.last - s.first + 1, *w);
            }
        }
    }

    #[test]
    fn three_unequal_wans() {
        let (total, s) = slots(&[(0x100, 3), (0x200, 2), (0x300, 1)]);
        assert_eq!(total, 6);
        assert_eq!(
            s.iter().map(|s| (s.first, s.last)).collect::<Vec<_>>(),
            [(0, 2), (3, 4), (5, 5)]
        );
    }

    /// The marks of a cycle, slot by slot.
    fn cycle(slots: &[Slot]) -> Vec<u32> {
        slots
            .iter()
            .flat_map(|s| (s.first..=s.last).map(move |_| s.mark))
            .collect()
    }

    proptest! {
        /// Round-robin: every number of the cycle owned once, every WAN at least one turn,
        /// each share within one turn of its weight's.
        #[test]
        fn the_cycle_shares_by_weight(weights in prop::collection::vec(1u32..=255, 1..=32)) {
            let input: Vec<(u32, u32)> = (1u32..).zip(&weights).map(|(n, &w)| (n << 8, w)).collect();
            let (total, slots) = interleaved(&input);
            let marks = cycle(&slots);
            prop_assert_eq!(marks.len(), total as usize);
            let sum: u32 = weights.iter().sum();
            prop_assert_eq!(total, MAX_CYCLE.max(u32::try_from(weights.len()).unwrap()));
            let mut first = 0;
            for s in &slots {
                prop_assert_eq!(s.first, first);
                first = s.last + 1;
            }
            let want = |w: u32| f64::from(w) * f64::from(total) / f64::from(sum);
            // Each WAN raised to its one turn may take one from another.
            let raised = weights.iter().filter(|&&w| want(w) < 1.0).count() as f64;
            for &(mark, w) in &input {
                let got = marks.iter().filter(|&&m| m == mark).count() as f64;
                prop_assert!(got >= 1.0, "{mark:#x}: no turn");
                prop_assert!((got - want(w)).abs() < 1.0 + raised,
                    "{mark:#x}: {got} turns for {}", want(w));
            }
        }
    }

    /// Gap (a) of the placement benchmark: 4 flows opened at once over lines of 100 and
    /// 50 Mbit/s (auto weights 255:128) all landed on one line one time in five with `numgen
    /// random`; taking turns, any 4 consecutive connections use both lines, about 2:1.
    #[test]
    fn simultaneous_connections_are_spread_by_weight() {
        for weights in [(2, 1), (255, 128)] {
            let (total, slots) = interleaved(&[(0x100, weights.0), (0x200, weights.1)]);
            let marks = cycle(&slots);
            for start in 0..marks.len() {
                let four: Vec<u32> = (0..4).map(|k| marks[(start + k) % marks.len()]).collect();
                let on_wan2 = four.iter().filter(|&&m| m == 0x200).count();
                assert!(
                    (1..=2).contains(&on_wan2),
                    "{weights:?} mod {total}: {four:x?}"
                );
            }
        }
        let (total, slots) = interleaved(&[(0x100, 2), (0x200, 1)]);
        assert_eq!(total, MAX_CYCLE);
        assert_eq!(
            cycle(&slots)[..6],
            [0x100, 0x200, 0x100, 0x100, 0x200, 0x100]
        );
    }

    #[test]
    fn a_nearly_full_line_keeps_a_turn_and_the_cycle_is_fixed() {
        let on = |slots: &[Slot], mark| cycle(slots).iter().filter(|&&m| m == mark).count();
        // The placer's floor: a saturated line at 13 against 255 (4.9 %): 3 turns in 64.
        let (total, slots) = interleaved(&[(0x100, 13), (0x200, 255)]);
        assert_eq!((total, on(&slots, 0x100)), (MAX_CYCLE, 3));
        // Finer than 1/64 is not kept: one turn.
        let (total, slots) = interleaved(&[(0x100, 1), (0x200, 254)]);
        assert_eq!((total, on(&slots, 0x100)), (MAX_CYCLE, 1));
        // Many WANs, tiny weights: each keeps one turn, the cycle grows to fit them.
        let many: Vec<(u32, u32)> = (1..=70)
            .map(|n| (n << 8, if n == 1 { 1000 } else { 1 }))
            .collect();
        let (total, slots) = interleaved(&many);
        assert_eq!(total, 70);
        assert_eq!(cycle(&slots).len(), 70);
    }
}
