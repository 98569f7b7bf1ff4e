//! Splitting `numgen random mod TOTAL` into one contiguous slot range per WAN.

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
}
