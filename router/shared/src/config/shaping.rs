//! `[wan_interfaces.shaping]`: CAKE on a line, at its declared speeds less an overhead, so
//! the queue builds in the router (where CAKE keeps it short and fair) instead of in the
//! ISP's modem (where a full buffer adds hundreds of milliseconds to every packet).

use super::model::{RawConfig, WanConfig};
use super::FieldError;
use serde::{Deserialize, Serialize};

/// One line's shaping settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShapingConfig {
    pub enabled: bool,
    /// Percent taken off the declared speeds: the line's framing (PPPoE, ATM/VDSL, DOCSIS)
    /// costs some of what was sold, and shaping just below the real rate keeps the queue here.
    pub overhead_percent: f64,
}

/// Default `overhead_percent`.
pub const DEFAULT_OVERHEAD_PERCENT: f64 = 5.0;

/// Valid `overhead_percent`: beyond half, the speeds declared are not the line's.
pub const MAX_OVERHEAD_PERCENT: f64 = 50.0;

impl Default for ShapingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            overhead_percent: DEFAULT_OVERHEAD_PERCENT,
        }
    }
}

impl ShapingConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl WanConfig {
    /// (download, upload) in kbit/s as shaped, when shaping is on (a validated config has
    /// both speeds then): the declared speeds less the overhead, at least 1 kbit/s.
    pub fn shaped_kbit(&self) -> Option<(u64, u64)> {
        if !self.shaping.enabled {
            return None;
        }
        let keep = 1.0 - self.shaping.overhead_percent / 100.0;
        let kbit =
            |mbit: f64| crate::capacity::round_clamped(mbit * 1000.0 * keep, u64::MAX).max(1);
        Some((kbit(self.download_mbit?), kbit(self.upload_mbit?)))
    }
}

/// Every shaping problem, by TOML path.
pub(super) fn problems(cfg: &RawConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, w) in cfg.wan_interfaces.iter().enumerate() {
        let at = |field: &str| format!("wan_interfaces[{i}].shaping.{field}");
        let overhead = w.shaping.overhead_percent;
        if !(0.0..=MAX_OVERHEAD_PERCENT).contains(&overhead) {
            errs.push(FieldError::new(
                at("overhead_percent"),
                format!("{overhead} is not in 0..=50 (percent taken off the line's speeds)"),
            ));
        }
        if w.shaping.enabled {
            let missing: Vec<&str> = [
                ("download_mbit", w.download_mbit),
                ("upload_mbit", w.upload_mbit),
            ]
            .into_iter()
            .filter_map(|(key, v)| v.is_none().then_some(key))
            .collect();
            if !missing.is_empty() {
                errs.push(FieldError::new(
                    at("enabled"),
                    format!(
                        "shaping needs the line's speeds: set wan_interfaces[{i}].{} (a learned speed is what the queue already lets through, too late to shape)",
                        missing.join(" and ")
                    ),
                ));
            }
            if let Some(p) = super::interface_name_problem(&ifb_device(&w.name)) {
                errs.push(FieldError::new(
                    at("enabled"),
                    format!("the line's ingress shaping device: {p}; give the port a shorter name"),
                ));
            }
        }
    }
    errs
}

/// The ifb device a line's download is shaped on: `ifb-<name>` (15 characters at most, as
/// the kernel allows; [`problems`] refuses a longer one).
pub fn ifb_device(wan: &str) -> String {
    format!("ifb-{wan}")
}

/// The refusal when the kernel lacks CAKE: every WAN with shaping on, by path. The caller
/// tells whether the kernel has it (the daemon probes it, see its `apply::qdisc`).
pub fn kernel_problems(cfg: &RawConfig, has_cake: bool) -> Vec<FieldError> {
    if has_cake {
        return Vec::new();
    }
    cfg.wan_interfaces
        .iter()
        .enumerate()
        .filter(|(_, w)| w.shaping.enabled)
        .map(|(i, _)| {
            FieldError::new(
                format!("wan_interfaces[{i}].shaping.enabled"),
                "this kernel has no sch_cake (CAKE qdisc): install the kernel's modules (e.g. linux-modules-extra) or turn shaping off",
            )
        })
        .collect()
}

/// Whether any line of `cfg` is shaped (only then does the kernel need CAKE).
pub fn any_shaped(cfg: &RawConfig) -> bool {
    cfg.wan_interfaces.iter().any(|w| w.shaping.enabled)
}
