//! A line's speed and where it came from, and the weights `weights = "auto"` derives.

use super::{round_clamped, weight_from, MAX_WEIGHT};
use crate::config::MAX_SPEED_MBIT;
use serde::{Deserialize, Serialize};

/// The speed assumed for a line nobody declared and that has not carried enough traffic
/// to learn from yet (100 Mbit/s): every such line starts equal, and a line's first busy
/// moments replace it.
pub const DEFAULT_SPEED_KBIT: u64 = 100_000;

/// Where a line's speed comes from, shown next to it (status, dashboard, /metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SpeedSource {
    /// `[[wan_interfaces]] download_mbit` / `upload_mbit`.
    Declared,
    /// The highest sustained rate the daemon saw on the interface counters.
    Learned,
    /// Neither: [`DEFAULT_SPEED_KBIT`].
    Default,
}

impl SpeedSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SpeedSource::Declared => "declared",
            SpeedSource::Learned => "learned",
            SpeedSource::Default => "default",
        }
    }
}

/// One direction of a line: its speed in kbit/s and where that number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineSpeed {
    pub kbit: u64,
    pub source: SpeedSource,
}

/// Declared speed (Mbit/s, validated positive) first, else the learned one, else the default.
pub fn effective_speed(declared_mbit: Option<f64>, learned_kbit: Option<u64>) -> LineSpeed {
    let max_kbit = round_clamped(MAX_SPEED_MBIT * 1000.0, u64::MAX);
    match (declared_mbit, learned_kbit) {
        (Some(mbit), _) => LineSpeed {
            // A declared 0.0004 Mbit/s still counts as a (very slow) line, not as none.
            kbit: round_clamped(mbit * 1000.0, max_kbit).max(1),
            source: SpeedSource::Declared,
        },
        (None, Some(kbit)) if kbit > 0 => LineSpeed {
            kbit: kbit.min(max_kbit),
            source: SpeedSource::Learned,
        },
        _ => LineSpeed {
            kbit: DEFAULT_SPEED_KBIT,
            source: SpeedSource::Default,
        },
    }
}

/// Weights in proportion to the speeds, the fastest line at [`MAX_WEIGHT`] and none below 1
/// (so a very slow line still gets an occasional connection, and learns its speed from it).
pub fn auto_weights(speeds: &[LineSpeed]) -> Vec<u32> {
    let fastest = speeds.iter().map(|s| s.kbit).max().unwrap_or(0).max(1);
    speeds
        .iter()
        .map(|s| weight_from(f64::from(MAX_WEIGHT) * s.kbit as f64 / fastest as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_beats_learned_beats_default() {
        let declared = effective_speed(Some(50.0), Some(80_000));
        assert_eq!(declared.kbit, 50_000);
        assert_eq!(declared.source, SpeedSource::Declared);
        let learned = effective_speed(None, Some(80_000));
        assert_eq!(
            (learned.kbit, learned.source),
            (80_000, SpeedSource::Learned)
        );
        let default = effective_speed(None, None);
        assert_eq!(
            (default.kbit, default.source),
            (DEFAULT_SPEED_KBIT, SpeedSource::Default)
        );
        // Nothing learned yet (zero) is no speed: the default, not a dead line.
        assert_eq!(effective_speed(None, Some(0)).source, SpeedSource::Default);
        assert_eq!(effective_speed(Some(0.5), None).kbit, 500);
        assert_eq!(effective_speed(Some(0.0001), None).kbit, 1);
    }

    #[test]
    fn weights_follow_speeds_with_the_fastest_at_the_top() {
        let s = |kbit| LineSpeed {
            kbit,
            source: SpeedSource::Declared,
        };
        assert_eq!(auto_weights(&[s(100_000), s(50_000)]), [255, 128]);
        assert_eq!(
            auto_weights(&[s(80_000), s(40_000), s(20_000)]),
            [255, 128, 64]
        );
        // Equal lines are equal; a line 1000x slower still gets weight 1, not 0.
        assert_eq!(auto_weights(&[s(7), s(7)]), [255, 255]);
        assert_eq!(auto_weights(&[s(1_000_000), s(1_000)]), [255, 1]);
        assert!(auto_weights(&[]).is_empty());
    }
}
