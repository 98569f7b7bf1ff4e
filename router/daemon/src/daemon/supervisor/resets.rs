//! Which connections an apply must reset, decided from what the previous and the new plan
//! put in service. Pure: the supervisor flushes the marks this returns and logs the notice.

use routeros_shared::config::WanIds;
use std::collections::BTreeSet;

/// What one successful apply put in service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InService {
    /// WANs that may carry traffic (routable, carrier, healthy, not taken out).
    pub usable: BTreeSet<String>,
    /// WANs new connections go to, in plan order.
    pub active: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The WAN stopped being usable: its clients reconnect through the survivors.
    LeftService,
    /// `move_back_on_recovery`: a WAN came back, and this one no longer takes new connections.
    MovedBack,
}

impl ResetReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeftService => "left service",
            Self::MovedBack => "moved back after recovery",
        }
    }
}

/// The connections of one WAN to reset: the conntrack entries carrying its mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    pub wan: String,
    pub mark: u32,
    pub why: ResetReason,
}

/// The WANs whose connections to reset after going from `prev` to `next`: those that left
/// service and, with `move_back_on_recovery`, once any WAN recovered, the usable ones that
/// no longer carry new connections. Nothing when no WAN is usable any more (there is
/// nowhere to move to). A WAN without numbers in `ids` (removed from the config) is left
/// out: its released mark is flushed separately.
pub fn connections_to_reset(
    prev: &InService,
    next: &InService,
    move_back_on_recovery: bool,
    ids: &WanIds,
) -> Vec<Reset> {
    let mut reset: Vec<(&String, ResetReason)> = Vec::new();
    if !next.usable.is_empty() {
        reset.extend(
            prev.usable
                .difference(&next.usable)
                .map(|w| (w, ResetReason::LeftService)),
        );
    }
    let recovered = next.usable.difference(&prev.usable).next().is_some();
    if recovered && move_back_on_recovery {
        reset.extend(
            next.usable
                .iter()
                .filter(|w| !next.active.contains(w))
                .map(|w| (w, ResetReason::MovedBack)),
        );
    }
    reset
        .into_iter()
        .filter_map(|(wan, why)| {
            let mark = ids.get(wan)?.mark;
            Some(Reset {
                wan: wan.clone(),
                mark,
                why,
            })
        })
        .collect()
}

/// Whether taking `wan` out of service now would reset its connections (what the dashboard
/// tells the operator before a disable): the same rule, asked about the change that would
/// follow.
pub fn take_out_resets(now: &InService, wan: &str, ids: &WanIds) -> bool {
    let mut after = now.clone();
    after.usable.remove(wan);
    after.active.retain(|w| w != wan);
    connections_to_reset(now, &after, false, ids)
        .iter()
        .any(|r| r.wan == wan)
}

/// The router-wide failover notice for this change, if it deserves one: new connections
/// go elsewhere, or every WAN just went down (fail-static: the last routes are kept).
pub fn failover_notice(prev: &InService, next: &InService) -> Option<String> {
    let all_down = next.usable.is_empty();
    let just_all_down = all_down && !prev.usable.is_empty();
    if prev.active == next.active && !just_all_down {
        return None;
    }
    Some(if all_down {
        format!(
            "every WAN is down: keeping the last routes ({}) until one comes back",
            if next.active.is_empty() {
                "none".to_string()
            } else {
                next.active.join(", ")
            }
        )
    } else {
        format!("new connections now use: {}", next.active.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::config::Config;

    fn ids() -> WanIds {
        let cfg = Config::from_toml(
            "[[wan_interfaces]]\nname = \"a\"\n[[wan_interfaces]]\nname = \"b\"\n[[wan_interfaces]]\nname = \"c\"\n[lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n",
        )
        .unwrap();
        WanIds::allocate(&cfg, &WanIds::default()).unwrap().ids
    }

    fn state(usable: &[&str], active: &[&str]) -> InService {
        InService {
            usable: usable.iter().map(|s| s.to_string()).collect(),
            active: active.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn marks(resets: &[Reset]) -> Vec<(&str, u32, ResetReason)> {
        resets
            .iter()
            .map(|r| (r.wan.as_str(), r.mark, r.why))
            .collect()
    }

    #[test]
    fn nothing_changed_resets_nothing() {
        let s = state(&["a", "b"], &["a", "b"]);
        for move_back in [false, true] {
            assert_eq!(connections_to_reset(&s, &s, move_back, &ids()), []);
        }
        assert_eq!(failover_notice(&s, &s), None);
    }

    #[test]
    fn a_wan_leaving_service_resets_only_its_mark() {
        let ids = ids();
        let prev = state(&["a", "b", "c"], &["a", "b", "c"]);
        let next = state(&["a", "c"], &["a", "c"]);
        let b = ids.get("b").unwrap().mark;
        assert_eq!(
            marks(&connections_to_reset(&prev, &next, false, &ids)),
            [("b", b, ResetReason::LeftService)]
        );
        assert_eq!(
            failover_notice(&prev, &next).as_deref(),
            Some("new connections now use: a, c")
        );
    }

    #[test]
    fn losing_the_last_wan_resets_nothing_and_keeps_the_routes() {
        let prev = state(&["a"], &["a"]);
        let next = state(&[], &["a"]);
        assert_eq!(connections_to_reset(&prev, &next, true, &ids()), []);
        assert_eq!(
            failover_notice(&prev, &next).as_deref(),
            Some("every WAN is down: keeping the last routes (a) until one comes back")
        );
        // Still all down on the next apply: said once only.
        assert_eq!(failover_notice(&next, &next), None);
    }

    #[test]
    fn recovery_moves_back_only_when_configured() {
        let ids = ids();
        // Failover mode: b carried everything while a was down; a is back and active again.
        let prev = state(&["b"], &["b"]);
        let next = state(&["a", "b"], &["a"]);
        assert_eq!(connections_to_reset(&prev, &next, false, &ids), []);
        let b = ids.get("b").unwrap().mark;
        assert_eq!(
            marks(&connections_to_reset(&prev, &next, true, &ids)),
            [("b", b, ResetReason::MovedBack)]
        );
        // No recovery (a WAN left instead): nothing moved back, only the leaver reset.
        let prev = state(&["a", "b", "c"], &["a"]);
        let next = state(&["a", "b"], &["a"]);
        let c = ids.get("c").unwrap().mark;
        assert_eq!(
            marks(&connections_to_reset(&prev, &next, true, &ids)),
            [("c", c, ResetReason::LeftService)]
        );
    }

    #[test]
    fn a_wan_without_numbers_is_left_to_the_released_flush() {
        let prev = state(&["a", "gone"], &["a", "gone"]);
        let next = state(&["a"], &["a"]);
        assert_eq!(connections_to_reset(&prev, &next, false, &ids()), []);
    }

    #[test]
    fn take_out_resets_only_when_another_wan_takes_over() {
        let ids = ids();
        assert!(take_out_resets(&state(&["a", "b"], &["a"]), "a", &ids));
        assert!(
            !take_out_resets(&state(&["a"], &["a"]), "a", &ids),
            "nowhere to move"
        );
        assert!(
            !take_out_resets(&state(&["a"], &["a"]), "b", &ids),
            "already out"
        );
    }
}
