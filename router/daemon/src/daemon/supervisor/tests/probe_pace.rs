//! Probe pacing (`failure_interval`, `recovery_interval`) and per-line targets.

use super::*;

const PACED: &str = r#"
[[wan_interfaces]]
name = "wan1"
gateway = "10.0.1.1"
health_targets = ["192.0.2.53", "2001:db8:53::1"]
[[wan_interfaces]]
name = "wan2"
gateway = "10.0.2.1"
[lan]
interface = "lan0"
address = "192.168.1.1/24"
[health_check]
check_interval = 5
failure_interval = 0.2
recovery_interval = 1
retry_count = 3
"#;

fn interval(lab: &Lab, wan: &str) -> Option<Duration> {
    lab.world
        .with(|w| w.intervals.get(&(wan.to_string(), Family::V4)).copied())
}

/// Healthy: every 5 s; a failed round: every 0.2 s until the line is judged; down and
/// recovering: every 1 s; back up: every 5 s again. The other line is not touched.
#[test]
fn a_failed_round_speeds_probing_up_until_the_line_is_judged() {
    let mut lab = Lab::start(PACED);
    lab.rounds("wan1", Family::V4, 1, true);
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_secs(5)));
    lab.lose_rounds("wan1", 1);
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_millis(200)));
    lab.lose_rounds("wan1", 2);
    assert!(!lab.sup.active_wans().contains(&"wan1".to_string()));
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_secs(1)));
    lab.rounds("wan1", Family::V4, 3, true);
    assert!(lab.sup.active_wans().contains(&"wan1".to_string()));
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_secs(5)));
    // One lost round that the next good one clears: back to the slow pace at once.
    lab.lose_rounds("wan1", 1);
    lab.rounds("wan1", Family::V4, 1, true);
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_secs(5)));
    assert_eq!(interval(&lab, "wan2"), None, "wan2 had no round");
}

/// A line's own targets replace the global ones for their family only.
#[test]
fn a_lines_own_targets_replace_the_global_ones_per_family() {
    let lab = Lab::start(PACED);
    let targets = |wan: &str, family| {
        lab.world.with(|w| {
            w.jobs
                .iter()
                .find(|j| j.wan == wan && j.family == family)
                .map(|j| {
                    j.targets
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                })
        })
    };
    assert_eq!(targets("wan1", Family::V4).unwrap(), ["192.0.2.53"]);
    assert_eq!(targets("wan1", Family::V6).unwrap(), ["2001:db8:53::1"]);
    assert_eq!(targets("wan2", Family::V4).unwrap(), ["1.1.1.1"]);
    assert_eq!(
        targets("wan2", Family::V6).unwrap(),
        ["2606:4700:4700::1111", "2001:4860:4860::8888"]
    );
}

fn set_counters(lab: &Lab, wan: u32, sent: u64, replies: u64) {
    lab.world.with(|w| {
        w.counters.insert(format!("sent_{wan}"), sent);
        w.counters.insert(format!("replies_{wan}"), replies);
    });
}

/// The passive signal: packets out through wan1 with no reply in between two readings make
/// it probed at once (interval zero until the round's verdict); wan2, answered, is left
/// alone, and so is wan1 once a reply comes in.
#[test]
fn unanswered_traffic_gets_a_slow_line_probed_at_once() {
    let mut lab = Lab::start(PACED);
    lab.rounds("wan1", Family::V4, 1, true);
    lab.rounds("wan2", Family::V4, 1, true);
    set_counters(&lab, 1, 100, 80);
    set_counters(&lab, 2, 50, 40);
    lab.rt.block_on(lab.sup.on_silence_tick());
    set_counters(&lab, 1, 130, 80);
    set_counters(&lab, 2, 60, 45);
    lab.rt.block_on(lab.sup.on_silence_tick());
    assert_eq!(
        interval(&lab, "wan1"),
        Some(Duration::ZERO),
        "probed at once"
    );
    assert_eq!(interval(&lab, "wan2"), Some(Duration::from_secs(5)));
    // The round fails: the fast pace until the line is judged.
    lab.lose_rounds("wan1", 1);
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_millis(200)));
    lab.rounds("wan1", Family::V4, 1, true);
    // Replies again: no signal.
    set_counters(&lab, 1, 140, 90);
    lab.rt.block_on(lab.sup.on_silence_tick());
    assert_eq!(interval(&lab, "wan1"), Some(Duration::from_secs(5)));
}

/// Without `failure_interval` the counters are not even read.
#[test]
fn no_passive_signal_without_a_failure_interval() {
    let mut lab = Lab::start(TWO_WANS);
    set_counters(&lab, 1, 100, 80);
    lab.rt.block_on(lab.sup.on_silence_tick());
    set_counters(&lab, 1, 200, 80);
    lab.rt.block_on(lab.sup.on_silence_tick());
    assert_eq!(interval(&lab, "wan1"), None);
}
