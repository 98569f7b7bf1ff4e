//! Smart traffic, the pure part: how fast each line is (declared, else learned from its
//! byte counters, else a default), the weights that follow from it (`weights = "auto"`),
//! and how new connections are shared by spare capacity (`placement = "spare_capacity"`).
//!
//! Nothing here reads a clock or the kernel: the daemon samples the interface counters and
//! passes `(time, bytes)`; what it learns reaches the planner as [`WanFacts`] fields
//! (`learned_down_kbit`, `placement_weight`), so the plan stays a function of its inputs.
//! Speeds and rates are whole kbit/s (exact, comparable, and fine-grained enough for a
//! 0.5 Mbit/s DSL upload).
//!
//! [`WanFacts`]: crate::plan::WanFacts

mod learner;
mod placer;
mod speed;

pub use learner::{LineLearner, RateLearner};
pub use placer::{spare_weights, LineLoad, SparePlacer, Use};
pub use speed::{auto_weights, effective_speed, LineSpeed, SpeedSource, DEFAULT_SPEED_KBIT};

/// The largest weight (the planner's range, as `[[wan_interfaces]] weight`): computed
/// weights are scaled into 1..=MAX_WEIGHT so the main table's multipath route can carry
/// them too.
pub const MAX_WEIGHT: u32 = 255;

/// `x` rounded to a whole number in `0..=max` (NaN and negatives give 0). Every rate and
/// speed here is non-negative and below 2^53, so the cast after the clamp loses nothing.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn round_clamped(x: f64, max: u64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    x.round().min(max as f64) as u64
}

/// A weight in 1..=MAX_WEIGHT from `x` (a value already scaled to that range).
fn weight_from(x: f64) -> u32 {
    let w = round_clamped(x, u64::from(MAX_WEIGHT)).max(1);
    u32::try_from(w).unwrap_or(MAX_WEIGHT)
}
