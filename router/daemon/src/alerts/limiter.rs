//! Dedupe / rate limit for alerts: pure, driven by explicit millisecond timestamps.
//!
//! Per key (the alerter uses `(EventKind, wan)`), at most one item is released per interval:
//! - the first item of a quiet key is released at once ("leading edge");
//! - items offered while the key's window is open are held back: only the newest is kept, the
//!   ones it replaces are counted as suppressed;
//! - when the window closes the held item is released ("trailing edge") with the count of the
//!   items that were never released, and a new window opens.
//!
//! The trailing release matters for alerts: "wan1 down" followed 20 s later by "wan1 up" is the
//! same `(StateChange, wan1)`; without it the recovery would never be reported.
//!
//! Timestamps must come from a monotonic clock (the alerter uses the time since it started),
//! never from the wall clock: routers often boot at 1970 and jump forward when NTP syncs.

use std::collections::HashMap;
use std::hash::Hash;

/// What the caller should send now: the item and how many similar ones were suppressed before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Release<K, T> {
    pub key: K,
    pub item: T,
    pub suppressed: u32,
}

#[derive(Debug)]
struct Slot<T> {
    /// When the last item of this key was released.
    last_sent_ms: u64,
    /// The newest item offered inside the window, released when it closes.
    held: Option<T>,
    /// Items offered inside the window that will never be released (replaced by a newer one).
    dropped: u32,
}

#[derive(Debug)]
pub struct RateLimiter<K, T> {
    interval_ms: u64,
    slots: HashMap<K, Slot<T>>,
}

/// Above this many keys, quiet ones are forgotten (they behave exactly like unknown keys).
const PRUNE_ABOVE: usize = 64;

impl<K: Hash + Eq + Clone, T> RateLimiter<K, T> {
    /// `interval_ms == 0` disables limiting: every item is released at once.
    pub fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            slots: HashMap::new(),
        }
    }

    /// Offer an item at `now_ms`. Returns it (with the suppressed count) when it is to be sent
    /// now, or `None` when it is held back for the end of the key's window.
    pub fn offer(&mut self, key: K, item: T, now_ms: u64) -> Option<Release<K, T>> {
        if self.interval_ms == 0 {
            return Some(Release {
                key,
                item,
                suppressed: 0,
            });
        }
        if self.slots.len() > PRUNE_ABOVE {
            self.prune(now_ms);
        }
        let interval = self.interval_ms;
        match self.slots.get_mut(&key) {
            Some(slot) if now_ms < slot.last_sent_ms.saturating_add(interval) => {
                if slot.held.replace(item).is_some() {
                    slot.dropped = slot.dropped.saturating_add(1);
                }
                None
            }
            Some(slot) => {
                // Window over (the trailing release may not have run yet): the new item is the
                // latest news, a still-held older one is dropped and counted.
                let mut suppressed = slot.dropped;
                if slot.held.take().is_some() {
                    suppressed = suppressed.saturating_add(1);
                }
                slot.dropped = 0;
                slot.last_sent_ms = now_ms;
                Some(Release {
                    key,
                    item,
                    suppressed,
                })
            }
            None => {
                self.slots.insert(
                    key.clone(),
                    Slot {
                        last_sent_ms: now_ms,
                        held: None,
                        dropped: 0,
                    },
                );
                Some(Release {
                    key,
                    item,
                    suppressed: 0,
                })
            }
        }
    }

    /// When the earliest held item becomes due, if any is held.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.slots
            .values()
            .filter(|s| s.held.is_some())
            .map(|s| s.last_sent_ms.saturating_add(self.interval_ms))
            .min()
    }

    /// Release every held item whose window has closed at `now_ms` (opening a new window).
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Release<K, T>> {
        let interval = self.interval_ms;
        let mut out = Vec::new();
        for (key, slot) in &mut self.slots {
            if now_ms >= slot.last_sent_ms.saturating_add(interval) {
                if let Some(item) = slot.held.take() {
                    out.push(Release {
                        key: key.clone(),
                        item,
                        suppressed: std::mem::take(&mut slot.dropped),
                    });
                    slot.last_sent_ms = now_ms;
                }
            }
        }
        out
    }

    /// Release every held item regardless of its window (on shutdown or reconfiguration).
    pub fn drain(&mut self) -> Vec<Release<K, T>> {
        self.slots
            .drain()
            .filter_map(|(key, slot)| {
                slot.held.map(|item| Release {
                    key,
                    item,
                    suppressed: slot.dropped,
                })
            })
            .collect()
    }

    /// Keys currently tracked (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.slots.len()
    }

    fn prune(&mut self, now_ms: u64) {
        let interval = self.interval_ms;
        self.slots
            .retain(|_, s| s.held.is_some() || now_ms < s.last_sent_ms.saturating_add(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl() -> RateLimiter<(&'static str, &'static str), &'static str> {
        RateLimiter::new(60_000)
    }

    #[test]
    fn first_is_sent_repeat_within_interval_is_held() {
        let mut rl = rl();
        let r = rl.offer(("state", "wan1"), "down", 1_000).unwrap();
        assert_eq!((r.item, r.suppressed), ("down", 0));
        assert!(rl.offer(("state", "wan1"), "down again", 30_000).is_none());
        assert_eq!(rl.next_due_ms(), Some(61_000));
        assert!(rl.take_due(60_999).is_empty());
    }

    #[test]
    fn other_wan_or_kind_is_not_suppressed() {
        let mut rl = rl();
        assert!(rl.offer(("state", "wan1"), "a", 0).is_some());
        assert!(rl.offer(("state", "wan2"), "b", 1).is_some());
        assert!(rl.offer(("latency", "wan1"), "c", 2).is_some());
        assert!(rl.offer(("state", "wan1"), "d", 3).is_none());
    }

    #[test]
    fn trailing_release_carries_latest_and_count() {
        let mut rl = rl();
        rl.offer(("state", "wan1"), "down", 0).unwrap();
        assert!(rl.offer(("state", "wan1"), "up", 10_000).is_none());
        assert!(rl.offer(("state", "wan1"), "down", 20_000).is_none());
        assert!(rl.offer(("state", "wan1"), "up", 30_000).is_none());
        let due = rl.take_due(60_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].item, "up");
        assert_eq!(due[0].suppressed, 2, "the two replaced in between");
        assert_eq!(rl.next_due_ms(), None);
        // The release opened a new window.
        assert!(rl.offer(("state", "wan1"), "down", 100_000).is_none());
        assert_eq!(rl.next_due_ms(), Some(120_000));
        let due = rl.take_due(120_000);
        assert_eq!((due[0].item, due[0].suppressed), ("down", 0));
    }

    #[test]
    fn late_offer_after_window_counts_unreleased_held() {
        let mut rl = rl();
        rl.offer(("state", "wan1"), "a", 0).unwrap();
        assert!(rl.offer(("state", "wan1"), "b", 1_000).is_none());
        assert!(rl.offer(("state", "wan1"), "c", 2_000).is_none());
        // take_due was not called in time; a new item arrives after the window.
        let r = rl.offer(("state", "wan1"), "d", 61_000).unwrap();
        assert_eq!((r.item, r.suppressed), ("d", 2));
        assert_eq!(rl.next_due_ms(), None);
        // Next window starts at 61 s.
        assert!(rl.offer(("state", "wan1"), "e", 120_999).is_none());
        assert!(rl.offer(("state", "wan1"), "f", 121_000).is_some());
    }

    #[test]
    fn window_boundary_is_exclusive() {
        let mut rl = rl();
        rl.offer(("k", "w"), "a", 5).unwrap();
        assert!(rl.offer(("k", "w"), "b", 60_004).is_none());
        let mut rl = RateLimiter::new(60_000);
        rl.offer(("k", "w"), "a", 5).unwrap();
        assert!(rl.offer(("k", "w"), "b", 60_005).is_some());
    }

    #[test]
    fn zero_interval_releases_everything() {
        let mut rl = RateLimiter::new(0);
        for i in 0..5 {
            let r = rl.offer("k", i, 0).unwrap();
            assert_eq!((r.item, r.suppressed), (i, 0));
        }
        assert_eq!(rl.tracked(), 0);
        assert_eq!(rl.next_due_ms(), None);
    }

    #[test]
    fn drain_releases_held_items() {
        let mut rl = rl();
        rl.offer(("state", "wan1"), "a", 0).unwrap();
        assert!(rl.offer(("state", "wan1"), "b", 1).is_none());
        assert!(rl.offer(("state", "wan1"), "c", 2).is_none());
        rl.offer(("state", "wan2"), "x", 3).unwrap();
        let out = rl.drain();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].key, out[0].item, out[0].suppressed),
            (("state", "wan1"), "c", 1)
        );
        assert_eq!(rl.tracked(), 0);
    }

    #[test]
    fn quiet_keys_are_pruned() {
        let mut rl = RateLimiter::new(1_000);
        for i in 0..=u32::try_from(PRUNE_ABOVE).unwrap() {
            rl.offer(i, (), 0).unwrap();
        }
        assert!(rl.offer(0, (), 0).is_none()); // still in window: held, so never pruned
        assert_eq!(rl.tracked(), PRUNE_ABOVE + 1);
        rl.offer(1_000, (), 5_000).unwrap();
        // Everything quiet is gone except the key with a held item and the new one.
        assert_eq!(rl.tracked(), 2);
    }
}
