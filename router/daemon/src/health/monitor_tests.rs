use super::*;
use routeros_shared::plan::HealthVerdict;
use std::net::Ipv4Addr;
use std::time::Duration;

const A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const B: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);

fn cfg(retry: u32, recovery: u32) -> HealthCheckConfig {
    HealthCheckConfig {
        targets: vec![A, B],
        retry_count: retry,
        recovery_count: recovery,
        reliability: 1,
        degraded_latency_ms: 500,
        degraded_loss_percent: 20,
        ..HealthCheckConfig::default()
    }
}

/// Both targets answer in `ms`.
fn ok(ms: u64) -> Round {
    let rtt = Some(Duration::from_millis(ms));
    Round::new(vec![(A, rtt), (B, rtt)])
}

fn fail() -> Round {
    Round::all_lost(&[A, B])
}

/// Feeds rounds one second apart; returns every transition.
struct Feeder {
    mon: WanMonitor,
    t0: Instant,
    n: u64,
}

impl Feeder {
    fn new(cfg: &HealthCheckConfig, start: HealthState) -> Self {
        let mon = WanMonitor::new(cfg, start);
        let t0 = mon.epoch.0;
        Self { mon, t0, n: 0 }
    }

    fn now(&mut self) -> Instant {
        self.n += 1;
        self.t0 + Duration::from_secs(self.n)
    }

    fn feed(&mut self, round: Round) -> Option<Transition> {
        let now = self.now();
        self.mon.record(round, now)
    }

    fn feed_all(&mut self, rounds: impl IntoIterator<Item = Round>) -> Vec<Transition> {
        rounds.into_iter().filter_map(|r| self.feed(r)).collect()
    }

    fn state(&self) -> HealthState {
        self.mon.state()
    }
}

fn edges(ts: &[Transition]) -> Vec<(HealthState, HealthState)> {
    ts.iter().map(|t| (t.from, t.to)).collect()
}

use HealthState::*;

#[test]
fn up_goes_down_after_retry_count_failed_rounds() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    assert_eq!(f.feed(fail()), None);
    assert_eq!(f.feed(fail()), None);
    assert_eq!(
        f.state(),
        Up,
        "two failures are not enough (loss alone is judged from 3 rounds)"
    );
    let t = f.feed(fail()).expect("third failure takes it down");
    assert_eq!((t.from, t.to), (Up, Down));
    assert_eq!(
        t.cause,
        "3 consecutive failed probe rounds (0/2 targets answered, 1 required)"
    );
    assert_eq!(t.latency_ms, None);
    assert_eq!(t.loss_percent, 100.0);
    assert_eq!(f.feed(fail()), None, "already down: no repeat event");
}

#[test]
fn a_success_resets_the_failure_count() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    let rounds = [fail(), fail(), ok(10), fail(), fail(), ok(10)];
    let ts = f.feed_all(rounds);
    assert!(ts.iter().all(|t| t.to != Down), "{ts:?}");
    assert!(f.state().is_live());
}

#[test]
fn alternating_success_and_failure_never_goes_down() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    let ts = f.feed_all((0..100).map(|i| if i % 2 == 0 { ok(20) } else { fail() }));
    assert!(f.state().is_live());
    // 50% loss is real degradation, reported once; it never flaps back and forth.
    assert_eq!(edges(&ts), vec![(Up, Degraded)]);
    assert_eq!(ts[0].cause, "loss 33% > 20%", "judged from the third round");
}

#[test]
fn starting_down_alternating_never_comes_up_and_logs_once() {
    let mut f = Feeder::new(&cfg(3, 3), Down);
    let mut seen = Vec::new();
    for i in 0..100 {
        let round = if i % 2 == 0 { ok(20) } else { fail() };
        seen.extend(f.feed(round));
        assert!(!f.state().is_live(), "round {i}: {:?}", f.state());
    }
    assert_eq!(edges(&seen), vec![(Down, Recovering)], "no event storm");
}

#[test]
fn down_recovers_after_recovery_count_successes() {
    let mut f = Feeder::new(&cfg(3, 3), Down);
    let t = f.feed(ok(20)).expect("first success starts recovering");
    assert_eq!((t.from, t.to), (Down, Recovering));
    assert_eq!(
        t.cause,
        "probe round succeeded (2/2 targets answered); 1 of 3 successful rounds needed"
    );
    assert_eq!(f.feed(ok(20)), None);
    assert_eq!(f.state(), Recovering);
    let t = f.feed(ok(20)).expect("third success");
    assert_eq!((t.from, t.to), (Recovering, Up));
    assert_eq!(
        t.cause,
        "3 consecutive successful probe rounds (2/2 targets answered)"
    );
    assert_eq!(t.latency_ms, Some(20.0));
    assert_eq!(
        t.loss_percent, 0.0,
        "the outage's losses do not count against the recovered link"
    );
}

#[test]
fn recovery_count_one_goes_straight_up() {
    let mut f = Feeder::new(&cfg(3, 1), Down);
    let t = f.feed(ok(20)).unwrap();
    assert_eq!((t.from, t.to), (Down, Up));
}

#[test]
fn a_failure_while_recovering_goes_back_down_quietly_and_restarts_the_count() {
    let mut f = Feeder::new(&cfg(3, 3), Down);
    let ts = f.feed_all([ok(20), ok(20)]);
    assert_eq!(edges(&ts), vec![(Down, Recovering)]);
    assert_eq!(f.feed(fail()), None);
    assert_eq!(f.state(), Down);
    assert_eq!(
        f.feed_all([ok(20), ok(20)]),
        vec![],
        "count restarted, no second Recovering event"
    );
    assert_eq!(f.state(), Recovering);
    let ts = f.feed_all([ok(20)]);
    assert_eq!(edges(&ts), vec![(Recovering, Up)]);
}

#[test]
fn recovering_with_slow_answers_comes_back_degraded() {
    let mut f = Feeder::new(&cfg(3, 3), Down);
    let ts = f.feed_all([ok(900), ok(900), ok(900)]);
    assert_eq!(edges(&ts), vec![(Down, Recovering), (Recovering, Degraded)]);
    assert_eq!(
        ts[1].cause,
        "3 consecutive successful probe rounds (2/2 targets answered); latency 900 ms > 500 ms"
    );
    assert_eq!(HealthState::Degraded.verdict(), HealthVerdict::Up);
}

#[test]
fn high_latency_degrades_and_clears_with_hysteresis() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    let ts = f.feed_all([ok(812), ok(812)]);
    assert!(ts.is_empty(), "two rounds are too few to judge");
    let t = f.feed(ok(812)).expect("degraded");
    assert_eq!((t.from, t.to), (Up, Degraded));
    assert_eq!(t.cause, "latency 812 ms > 500 ms");
    assert_eq!(t.latency_ms, Some(812.0));

    // 450 ms is under the threshold but not under 80% of it: still degraded.
    assert!(f.feed_all((0..10).map(|_| ok(450))).is_empty());
    assert_eq!(f.state(), Degraded);
    // Hovering across the threshold does not flap.
    assert!(f
        .feed_all((0..20).map(|i| ok(if i % 2 == 0 { 450 } else { 560 })))
        .is_empty());

    let ts = f.feed_all((0..10).map(|_| ok(100)));
    assert_eq!(edges(&ts), vec![(Degraded, Up)]);
    assert!(
        ts[0].cause.starts_with("quality back within limits"),
        "{}",
        ts[0].cause
    );
}

#[test]
fn partial_loss_degrades_without_failing_rounds() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    let half = Round::new(vec![(A, Some(Duration::from_millis(30))), (B, None)]);
    let ts = f.feed_all(std::iter::repeat_n(half, 5));
    assert_eq!(edges(&ts), vec![(Up, Degraded)]);
    assert_eq!(ts[0].loss_percent, 50.0);
    assert_eq!(ts[0].latency_ms, Some(30.0));
}

#[test]
fn reliability_counts_answering_targets() {
    let mut c = cfg(1, 1);
    c.reliability = 2;
    let mut f = Feeder::new(&c, Up);
    let half = Round::new(vec![(A, Some(Duration::from_millis(30))), (B, None)]);
    let t = f.feed(half).expect("one of two is not enough");
    assert_eq!(
        t.cause,
        "1 consecutive failed probe rounds (1/2 targets answered, 2 required)"
    );
}

#[test]
fn degraded_goes_down_after_retry_count_failures() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    f.feed_all([ok(900), ok(900), ok(900)]);
    assert_eq!(f.state(), Degraded);
    let ts = f.feed_all([fail(), fail(), fail()]);
    assert_eq!(edges(&ts), vec![(Degraded, Down)]);
}

#[test]
fn carrier_loss_is_down_at_once_and_probes_cannot_undo_it() {
    let mut f = Feeder::new(&cfg(3, 1), Up);
    let now = f.now();
    let t = f.mon.link_lost(now, "carrier lost").expect("down at once");
    assert_eq!((t.from, t.to, t.cause.as_str()), (Up, Down, "carrier lost"));
    let now = f.now();
    assert_eq!(f.mon.link_lost(now, "carrier lost"), None, "already down");
    assert!(
        f.feed_all([ok(10), ok(10)]).is_empty(),
        "stray answers without carrier"
    );
    assert_eq!(f.state(), Down);
    assert!(!f.mon.status().carrier);

    let now = f.now();
    let t = f
        .mon
        .link_restored(now, "carrier restored")
        .expect("recovering");
    assert_eq!((t.from, t.to), (Down, Recovering));
    assert_eq!(
        t.cause,
        "carrier restored; 1 successful probe rounds needed"
    );
    let now = f.now();
    assert_eq!(
        f.mon.link_restored(now, "carrier restored"),
        None,
        "carrier was already up"
    );
    let ts = f.feed_all([ok(10)]);
    assert_eq!(edges(&ts), vec![(Recovering, Up)]);
}

#[test]
fn a_link_not_ready_at_start_is_waited_for_without_an_outage() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    f.mon.await_link();
    assert_eq!(f.state(), Down, "not usable meanwhile");
    assert!(
        f.feed_all([ok(5), fail(), fail(), fail()]).is_empty(),
        "rounds before the link is ready do not count"
    );
    let now = f.now();
    assert_eq!(f.mon.link_restored(now, "carrier restored"), None);
    assert_eq!(f.state(), Up, "back to the start state, quietly");
    let ts = f.feed_all([fail(), fail(), fail()]);
    assert_eq!(edges(&ts), vec![(Up, Down)], "from then on rounds count");
}

#[test]
fn a_link_lost_before_it_was_ever_ready_recovers_as_usual() {
    let mut f = Feeder::new(&cfg(3, 1), Up);
    f.mon.await_link();
    let now = f.now();
    assert_eq!(
        f.mon.link_lost(now, "no IPv4 address"),
        None,
        "down already"
    );
    let now = f.now();
    let t = f
        .mon
        .link_restored(now, "IPv4 address back")
        .expect("recovering");
    assert_eq!(
        t.cause,
        "IPv4 address back; 1 successful probe rounds needed"
    );
}

#[test]
fn a_rebuilt_monitor_keeps_what_was_known_of_the_link() {
    let mut f = Feeder::new(&cfg(3, 1), Up);
    let now = f.now();
    f.mon.link_lost(now, "carrier lost");
    let mut rebuilt = WanMonitor::new(&cfg(3, 1), f.state());
    rebuilt.keep_link(&f.mon);
    assert!(!rebuilt.status().carrier);
    let now = f.now();
    let t = rebuilt
        .link_restored(now, "carrier restored")
        .expect("recovering");
    assert_eq!((t.from, t.to), (Down, Recovering));
}

#[test]
fn carrier_loss_while_recovering_is_reported() {
    let mut f = Feeder::new(&cfg(3, 3), Recovering);
    let now = f.now();
    let t = f.mon.link_lost(now, "carrier lost").unwrap();
    assert_eq!((t.from, t.to), (Recovering, Down));
}

#[test]
fn a_restored_link_that_keeps_failing_stays_down_quietly() {
    let mut f = Feeder::new(&cfg(3, 3), Up);
    let now = f.now();
    f.mon.link_lost(now, "carrier lost");
    let now = f.now();
    f.mon.link_restored(now, "carrier restored");
    assert!(f.feed_all([fail(), ok(5), fail(), ok(5)]).is_empty());
    assert_eq!(f.state(), Recovering);
}

#[test]
fn transitions_serialise_for_the_event_log() {
    let mut f = Feeder::new(&cfg(1, 1), Up);
    let t = f.feed(fail()).unwrap();
    let expected_ms = u64::try_from(
        (f.mon.epoch.1 + Duration::from_secs(1))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["from"], "up");
    assert_eq!(json["to"], "down");
    assert_eq!(json["at"], expected_ms);
    assert_eq!(json["latency_ms"], serde_json::Value::Null);
    assert_eq!(json["loss_percent"], 100.0);
    let back: Transition = serde_json::from_value(json).unwrap();
    assert_eq!((back.from, back.to, back.cause), (t.from, t.to, t.cause));
}

#[test]
fn states_map_onto_the_planners_health() {
    assert_eq!(Up.verdict(), HealthVerdict::Up);
    assert_eq!(Degraded.verdict(), HealthVerdict::Up);
    assert_eq!(Down.verdict(), HealthVerdict::Down);
    assert_eq!(Recovering.verdict(), HealthVerdict::Down);
}
