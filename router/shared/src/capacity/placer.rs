//! Sharing new connections by spare capacity: each line's weight times the share of its
//! speed not in use right now, so a line saturated by one big download gets few of the new
//! connections and the idle line most of them. The shares become the planner's numgen
//! ranges; [`SparePlacer`] holds them still until they move by more than [`HYSTERESIS`], so
//! the kernel's table is not rewritten for rate noise.

use super::{weight_from, MAX_WEIGHT};
use std::time::Duration;

/// A full line still counts this much spare: rates are measured a second late and a busy
/// TCP flow yields to a new one, so a saturated line keeps an occasional connection
/// (and with it the measurement that shows when it frees up).
pub const MIN_SPARE: f64 = 0.05;
/// The plan changes when some line's share of new connections moves by more than this.
pub const HYSTERESIS: f64 = 0.05;
/// ...and at most this often (the nft table is replaced on every change).
pub const MIN_CHANGE_INTERVAL: Duration = Duration::from_millis(500);

/// One line as the placer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLoad {
    /// Download speed (see `effective_speed`) and what the line receives now, kbit/s.
    pub down: Use,
    /// Upload speed and what the line sends now, when the speed is known well enough (the
    /// daemon gives it only when declared: a learned upload speed is mostly learned from
    /// the ACKs of downloads, far below the line's). A line whose upload is full (a backup
    /// to the cloud) is a poor choice for new connections too.
    pub up: Option<Use>,
    /// Its weight (static or auto).
    pub weight: u32,
}

/// One direction of a line: its speed and its current rate, in kbit/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    pub speed_kbit: u64,
    pub rate_kbit: u64,
}

impl Use {
    fn used(&self) -> f64 {
        self.rate_kbit as f64 / self.speed_kbit.max(1) as f64
    }
}

impl LineLoad {
    /// Unused share of the line in its busier direction, in MIN_SPARE..=1.
    fn spare(&self) -> f64 {
        let used = self.up.map_or(0.0, |up| up.used()).max(self.down.used());
        (1.0 - used).clamp(MIN_SPARE, 1.0)
    }
}

/// Placement weights (weight × spare share), scaled so the largest is [`MAX_WEIGHT`] and none
/// is below 1. Idle lines get their weights' proportions back.
pub fn spare_weights(lines: &[LineLoad]) -> Vec<u32> {
    let raw: Vec<f64> = lines
        .iter()
        .map(|l| f64::from(l.weight) * l.spare())
        .collect();
    let top = raw.iter().copied().fold(0.0, f64::max);
    if top <= 0.0 {
        return lines.iter().map(|_| 1).collect();
    }
    raw.iter()
        .map(|r| weight_from(f64::from(MAX_WEIGHT) * r / top))
        .collect()
}

/// [`spare_weights`] with hysteresis: the weights last handed to the planner, changed only
/// when a line's share moves by more than [`HYSTERESIS`] (or the set of lines changes), and
/// not within [`MIN_CHANGE_INTERVAL`] of the last change.
#[derive(Debug, Clone, Default)]
pub struct SparePlacer {
    published: Vec<u32>,
    changed_at: Option<Duration>,
}

impl SparePlacer {
    /// Feed the lines at monotonic time `now`; `Some(weights)` when the plan should change.
    pub fn update(&mut self, now: Duration, lines: &[LineLoad]) -> Option<Vec<u32>> {
        let next = spare_weights(lines);
        let resized = next.len() != self.published.len();
        if !resized {
            // A clock set back (now before the last change) does not hold the plan still.
            let recent = |at: Duration| now >= at && now - at < MIN_CHANGE_INTERVAL;
            if self.changed_at.is_some_and(recent) {
                return None;
            }
            let moved = shares(&next)
                .zip(shares(&self.published))
                .any(|(a, b)| (a - b).abs() > HYSTERESIS);
            if !moved {
                return None;
            }
        }
        self.published.clone_from(&next);
        self.changed_at = Some(now);
        Some(next)
    }

    /// The weights in force (empty before the first update).
    pub fn current(&self) -> &[u32] {
        &self.published
    }
}

/// Each weight as a share of their sum.
fn shares(weights: &[u32]) -> impl Iterator<Item = f64> + '_ {
    let total = f64::from(weights.iter().sum::<u32>().max(1));
    weights.iter().map(move |&w| f64::from(w) / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line with `speed_mbit` down and a tenth of it up, receiving `rate_mbit`, idle up.
    fn line(speed_mbit: u64, rate_mbit: u64, weight: u32) -> LineLoad {
        LineLoad {
            down: Use {
                speed_kbit: speed_mbit * 1000,
                rate_kbit: rate_mbit * 1000,
            },
            up: Some(Use {
                speed_kbit: speed_mbit * 100,
                rate_kbit: 0,
            }),
            weight,
        }
    }

    fn share_of_first(w: &[u32]) -> f64 {
        f64::from(w[0]) / f64::from(w.iter().sum::<u32>())
    }

    #[test]
    fn idle_lines_share_by_weight() {
        assert_eq!(
            spare_weights(&[line(100, 0, 2), line(50, 0, 1)]),
            [255, 128]
        );
        assert_eq!(
            spare_weights(&[line(100, 0, 1), line(50, 0, 1)]),
            [255, 255]
        );
    }

    /// The case (b): wan1 (100 Mbit/s, weight 2) saturated by one download, wan2
    /// (50 Mbit/s, weight 1) idle: wan2 must get at least 80 % of new connections.
    #[test]
    fn a_saturated_line_gets_few_new_connections() {
        let w = spare_weights(&[line(100, 98, 2), line(50, 0, 1)]);
        let wan2 = 1.0 - share_of_first(&w);
        assert!(wan2 >= 0.8, "{w:?}: wan2 gets {wan2}");
        // Over-full (rate above the speed, e.g. a declared speed below the real one):
        // still the floor, never zero or negative.
        let w = spare_weights(&[line(100, 150, 2), line(50, 0, 1)]);
        assert!(w[0] >= 1 && share_of_first(&w) < 0.1, "{w:?}");
    }

    #[test]
    fn a_full_upload_counts_like_a_full_download() {
        let mut uploading = line(100, 0, 2);
        let up = uploading.up.as_mut().unwrap();
        up.rate_kbit = up.speed_kbit;
        let w = spare_weights(&[uploading, line(50, 0, 1)]);
        assert!(share_of_first(&w) < 0.1, "{w:?}");
        // Upload speed unknown: only the download counts.
        uploading.up = None;
        assert_eq!(spare_weights(&[uploading, line(50, 0, 1)]), [255, 128]);
    }

    #[test]
    fn half_used_lines_count_their_free_half() {
        // 100 Mbit/s half used and 50 Mbit/s idle, auto weights 255:128 -> spare 50 and 50 Mbit/s.
        let w = spare_weights(&[line(100, 50, 255), line(50, 0, 128)]);
        assert!((share_of_first(&w) - 0.5).abs() < 0.01, "{w:?}");
    }

    #[test]
    fn every_line_keeps_a_weight_of_at_least_one() {
        let w = spare_weights(&[line(1000, 1000, 1), line(1000, 0, 255)]);
        assert_eq!(w, [1, 255]);
        assert_eq!(spare_weights(&[line(1, 1, 1)]), [255]);
        assert!(spare_weights(&[]).is_empty());
    }

    #[test]
    fn small_rate_changes_do_not_change_the_plan() {
        let mut p = SparePlacer::default();
        let s = Duration::from_secs;
        let first = p.update(s(0), &[line(100, 10, 1), line(100, 10, 1)]);
        assert_eq!(first, Some(vec![255, 255]));
        // Rates wobble by a few Mbit/s, second after second: no new plan.
        for (t, a, b) in [(1, 13, 9), (2, 8, 12), (3, 15, 10), (4, 10, 16)] {
            assert_eq!(p.update(s(t), &[line(100, a, 1), line(100, b, 1)]), None);
        }
        assert_eq!(p.current(), [255, 255]);
        // The first line fills up: a new plan that sends most new connections elsewhere.
        let w = p
            .update(s(5), &[line(100, 95, 1), line(100, 10, 1)])
            .expect("replanned");
        assert!(share_of_first(&w) < 0.1, "{w:?}");
    }

    #[test]
    fn changes_are_rate_limited_and_a_new_line_set_replans_at_once() {
        let mut p = SparePlacer::default();
        let ms = Duration::from_millis;
        assert!(p
            .update(ms(0), &[line(100, 0, 1), line(100, 0, 1)])
            .is_some());
        // A big move 100 ms later waits for the interval...
        let busy = [line(100, 100, 1), line(100, 0, 1)];
        assert_eq!(p.update(ms(100), &busy), None);
        // ...and is taken at the first update after it.
        assert!(p.update(ms(600), &busy).is_some());
        // A line added (config change) is not held back.
        let three = [line(100, 100, 1), line(100, 0, 1), line(10, 0, 1)];
        assert_eq!(p.update(ms(700), &three).map(|w| w.len()), Some(3));
        // The clock set back: the next real move is not held for an hour.
        let two = [line(100, 0, 1), line(100, 100, 1)];
        assert!(p.update(ms(0), &two).is_some());
    }
}
