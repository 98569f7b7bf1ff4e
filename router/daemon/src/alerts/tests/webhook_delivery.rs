//! Webhook delivery: retries, give-up, rate limiting, reconfiguration, never blocking.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_event_json() {
    let srv = FakeHttp::start(0);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    assert!(alerter.is_active());
    let ev = down("wan1");
    alerter.notify(&ev);
    assert!(wait_until(3.0, || srv.reqs().len() == 1).await);
    let req = &srv.reqs()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook/s3cret-token");
    assert_eq!(req.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["event"], serde_json::to_value(&ev).unwrap());
    assert_eq!(body["event"]["kind"], "state_change");
    assert_eq!(body["event"]["wan"], "wan1");
    assert_eq!(body["suppressed"], 0);
    assert!(!body["host"].as_str().unwrap().is_empty());
    assert_eq!(body["text"], "wan1 down: wan1 lost 3 of 3 probes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_500_then_200_is_retried_and_delivered_once() {
    let srv = FakeHttp::start(1);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(200)).await; // no extra attempt after success
    let statuses: Vec<u16> = srv.reqs().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200]);
    assert_eq!(
        srv.reqs()[0].body,
        srv.reqs()[1].body,
        "same payload retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gives_up_after_retries() {
    let srv = FakeHttp::start(usize::MAX);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(srv.reqs().len(), 3, "retries = 3 attempts in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_kind_and_wan_within_interval_is_sent_once_other_wan_is_not_suppressed() {
    let srv = FakeHttp::start(0);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 60), fast());
    alerter.notify(&down("wan1"));
    alerter.notify(&down("wan1"));
    alerter.notify(&down("wan2"));
    assert!(wait_until(3.0, || srv.reqs().len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = srv.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let mut wans: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"]["wan"].as_str().unwrap())
        .collect();
    wans.sort();
    assert_eq!(wans, ["wan1", "wan2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_repeat_is_sent_when_window_closes_with_suppressed_count() {
    let srv = FakeHttp::start(0);
    let alerter = Alerter::with_tuning(&webhook_cfg(srv.url(), 1), fast());
    alerter.notify(&down("wan1"));
    alerter.notify(&Event::new(EventKind::StateChange, Some("wan1"), "flap"));
    let up = Event::new(EventKind::StateChange, Some("wan1"), "wan1 answers again")
        .with(serde_json::json!({"state": "up"}));
    alerter.notify(&up);
    assert!(wait_until(1.0, || srv.reqs().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        srv.reqs().len(),
        1,
        "the repeats are held inside the window"
    );
    assert!(wait_until(2.0, || srv.reqs().len() == 2).await);
    let last = srv.bodies().pop().unwrap();
    assert_eq!(last["event"]["message"], "wan1 answers again");
    assert_eq!(last["suppressed"], 1, "the flap in between");
    assert_eq!(last["text"], "wan1 up: wan1 answers again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_same_config_keeps_state_new_url_switches() {
    let (a, b) = (FakeHttp::start(0), FakeHttp::start(0));
    let mut alerter = Alerter::with_tuning(&webhook_cfg(a.url(), 60), fast());
    alerter.notify(&down("wan1"));
    alerter.reconfigure(&webhook_cfg(a.url(), 60));
    alerter.notify(&down("wan1")); // still deduplicated: same alerter
    assert!(wait_until(3.0, || a.reqs().len() == 1).await);
    alerter.reconfigure(&webhook_cfg(b.url(), 60));
    alerter.notify(&down("wan3"));
    assert!(wait_until(3.0, || b.reqs().len() == 1).await);
    // The replaced alerter flushed the repeat it was holding to the old URL before stopping.
    assert!(wait_until(3.0, || a.reqs().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.reqs().len(), 2);
    assert_eq!(a.bodies()[1]["event"]["wan"], "wan1");
    assert_eq!(b.reqs().len(), 1);
    assert_eq!(b.bodies()[0]["event"]["wan"], "wan3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_never_blocks_even_when_the_sink_hangs() {
    // Accepts connections (kernel backlog) but never answers: every POST waits for its timeout.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", hang.local_addr().unwrap());
    let tuning = Tuning {
        http_timeout: Duration::from_millis(300),
        queue: 4,
        ..fast()
    };
    let alerter = Alerter::with_tuning(&webhook_cfg(url, 0), tuning);
    let started = std::time::Instant::now();
    for i in 0..1_000 {
        alerter.notify(&down(&format!("wan{i}")));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "notify took {took:?}");
    drop(alerter);
    drop(hang);
}

#[test]
fn outside_a_runtime_or_unconfigured_it_is_a_noop() {
    let cfg = webhook_cfg("http://127.0.0.1:9/".into(), 60);
    let a = Alerter::new(&cfg);
    assert!(!a.is_active());
    a.notify(&down("wan1"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let none = Alerter::new(&AlertsConfig::default());
        assert!(!none.is_active());
        none.notify(&down("wan1"));
        assert!(!Alerter::disabled().is_active());
    });
}

#[test]
fn debug_output_hides_secrets() {
    let mut cfg = webhook_cfg("https://hooks.example.org/services/T0/B0/s3cret".into(), 60);
    cfg.smtp = Some(SmtpConfig {
        server: "mail.example.org".into(),
        port: 587,
        from: "r@example.org".into(),
        to: vec!["ops@example.org".into()],
        username: Some("r".into()),
        password: Some("hunter2".into()),
        starttls: true,
    });
    let a = Alerter {
        tx: None,
        cfg,
        tuning: fast(),
    };
    let shown = format!("{a:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(shown.contains("hooks.example.org"), "{shown}");
}

#[test]
fn backoff_doubles_and_caps() {
    let t = Tuning {
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(30),
        ..Tuning::default()
    };
    let got: Vec<u64> = (1..=7).map(|a| backoff(&t, a).as_secs()).collect();
    assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(backoff(&t, 1_000), Duration::from_secs(30));
}

#[test]
fn summary_is_one_short_line() {
    let alert = |event| Alert {
        event,
        host: Arc::from("gw"),
        suppressed: 0,
    };
    let e = Event::new(EventKind::Failover, None, "now via wan2\nwan1 out");
    assert_eq!(summary(&alert(e)), "failover: now via wan2 wan1 out");
    let e = Event::new(EventKind::HighLatency, Some("wan2"), "x".repeat(500));
    let s = summary(&alert(e));
    assert!(
        s.starts_with("wan2 high latency: xxx") && s.ends_with('…'),
        "{s}"
    );
    assert!(s.chars().count() < 200);
    let e = Event::new(EventKind::StateChange, Some("wan1"), "changed");
    assert_eq!(summary(&alert(e)), "wan1 state change: changed");
    // The health monitor's Transition as details: {"from": "up", "to": "down", ...}.
    let e = Event::new(
        EventKind::StateChange,
        Some("wan1"),
        "wan1: up -> down (carrier lost)",
    )
    .with(serde_json::json!({"from": "up", "to": "down", "cause": "carrier lost"}));
    assert_eq!(
        summary(&alert(e)),
        "wan1 down: wan1: up -> down (carrier lost)"
    );
}
