//! Which WANs' connections a change of the usable and active sets resets: one pure rule,
//! used when a re-plan moves connections and to tell the operator beforehand what taking
//! a WAN out would do.

use std::collections::BTreeSet;

/// The WANs whose connections to reset, with why, when the usable set goes from
/// `prev_usable` to `usable` and `active` carry new connections now. WANs that left
/// service are reset so clients reconnect through the survivors; with `move_back`
/// (`move_back_on_recovery`), once a WAN comes back, also those left on WANs that no longer
/// carry new connections. When nothing is usable there is nowhere to move to: no reset.
pub fn resets(
    prev_usable: &BTreeSet<String>,
    usable: &BTreeSet<String>,
    active: &[String],
    move_back: bool,
) -> Vec<(String, &'static str)> {
    let mut reset: Vec<(String, &'static str)> = Vec::new();
    if !usable.is_empty() {
        reset.extend(
            prev_usable
                .difference(usable)
                .map(|w| (w.clone(), "left service")),
        );
    }
    let recovered = usable.difference(prev_usable).next().is_some();
    if recovered && move_back {
        reset.extend(
            usable
                .iter()
                .filter(|w| !active.contains(w))
                .map(|w| (w.clone(), "moved back after recovery")),
        );
    }
    reset
}

/// Whether taking `wan` out of service now would reset its connections.
pub fn take_out_resets(usable: &BTreeSet<String>, wan: &str) -> bool {
    let mut after = usable.clone();
    after.remove(wan);
    resets(usable, &after, &[], false)
        .iter()
        .any(|(w, _)| w == wan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_wan_leaving_is_reset_only_when_another_takes_over() {
        let both = set(&["wan1", "wan2"]);
        assert_eq!(
            resets(&both, &set(&["wan2"]), &["wan2".into()], false),
            [("wan1".to_string(), "left service")]
        );
        assert!(resets(&set(&["wan1"]), &set(&[]), &[], false).is_empty());
        assert!(take_out_resets(&both, "wan1"));
        assert!(!take_out_resets(&set(&["wan1"]), "wan1"), "nowhere to move");
        assert!(!take_out_resets(&set(&["wan2"]), "wan1"), "already out");
    }

    #[test]
    fn recovery_moves_back_only_when_asked() {
        let before = set(&["wan2"]);
        let after = set(&["wan1", "wan2"]);
        let active = ["wan1".to_string()];
        assert!(resets(&before, &after, &active, false).is_empty());
        assert_eq!(
            resets(&before, &after, &active, true),
            [("wan2".to_string(), "moved back after recovery")]
        );
    }
}
