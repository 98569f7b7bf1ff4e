//! Counters for the passive failure signal: per WAN, the packets its users' connections send
//! out by it, and the reply packets that come in by it. A line that keeps sending while
//! nothing comes back has gone silent upstream (new connections left unanswered, and as much
//! an established call or download whose other end fell silent); the daemon reads these
//! counters (`nft list counters`) and probes that line at once instead of at its next slow
//! round. Only with `[health_check] failure_interval` set: the signal only helps a line that
//! is probed slowly while healthy.

use super::decide::PlannedWan;

/// The two counters of the WAN with `mark`: (sent, replies), named by the mark's
/// number, so they follow the WAN's stable number like its table and mark.
pub fn counter_names(mark: u32) -> (String, String) {
    let n = mark >> 8;
    (format!("sent_{n}"), format!("replies_{n}"))
}

/// Whether the table carries the counters.
pub(super) fn enabled(cfg: &crate::config::Config) -> bool {
    cfg.health_check.failure_interval.is_some()
}

/// Rules for the `egress` chain (after the probes' accept: the router's own pings are not
/// counted): packets leaving by the WAN in their connection's original direction. Not only
/// connections without a reply yet: a silent upstream under an established flow (a call, a
/// stream) is noticed as fast, and a false alarm (one-way traffic) costs a few probes.
pub(super) fn egress_rules(views: &[PlannedWan]) -> Vec<String> {
    views
        .iter()
        .map(|w| {
            format!(
                "oifname \"{}\" ct direction original counter name \"{}\"",
                w.dev,
                counter_names(w.mark).0
            )
        })
        .collect()
}

/// Rules for the `prerouting` chain: reply packets arriving by the WAN.
pub(super) fn prerouting_rules(views: &[PlannedWan]) -> Vec<String> {
    views
        .iter()
        .map(|w| {
            format!(
                "iifname \"{}\" ct direction reply counter name \"{}\"",
                w.dev,
                counter_names(w.mark).1
            )
        })
        .collect()
}
