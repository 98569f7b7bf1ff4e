//! routeros-web's live views and WAN controls against the fake daemon: status, metrics,
//! the event stream, disable/enable/maintenance and their impact.

use axum::http::{header, StatusCode};
use common::*;
use futures::StreamExt;
use routeros_shared::events::{Event, EventKind};
use routeros_web::{api_routes, openapi};
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

mod common;

#[tokio::test]
async fn operator_controls_wans_but_not_config() {
    let h = Harness::new();
    let admin = h.setup().await;
    let op = h.user(&admin, "oper", "operator").await;

    // wan2 is down: nothing could take wan1's connections over, so the daemon would keep
    // them (it resets nothing when there is nowhere to move to).
    let a = h
        .send(Req::get("/api/v1/wans/wan1/impact").cookie(&op).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.body,
        json!({"connections": 17, "reset_connections": 0, "in_service": true, "takeover": []})
    );
    let a = h
        .send(Req::get("/api/v1/wans/wan2/impact").cookie(&op).empty())
        .await;
    assert_eq!(
        a.body,
        json!({"connections": 0, "reset_connections": 0, "in_service": false, "takeover": ["wan1"]})
    );

    // The answer reports what the daemon says it did (its take-out answer), and the web
    // reads nothing back to learn it.
    h.daemon.set_resets(17);
    let a = h
        .send(Req::post("/api/v1/wans/wan1/disable").cookie(&op).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["reset_connections"], 17);
    assert!(h.daemon.requests("events").is_empty());
    assert!(a.body["message"].as_str().unwrap().contains("wan1"));
    assert_eq!(
        h.daemon.requests("disable"),
        vec![json!({"cmd": "disable", "wan": "wan1"})]
    );

    let a = h
        .send(Req::post("/api/v1/wans/wan1/enable").cookie(&op).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h
        .send(
            Req::post("/api/v1/wans/wan2/maintenance")
                .cookie(&op)
                .json(json!({"minutes": 5})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        h.daemon.requests("maintenance"),
        vec![json!({"cmd": "maintenance", "seconds": 300, "wan": "wan2"})]
    );
    let a = h
        .send(Req::post("/api/v1/wans/wan9/disable").cookie(&op).empty())
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&op)
                .json(json!({"toml": CONFIG_TOML})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = h.send(Req::get("/api/v1/config").cookie(&op).empty()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(h.daemon.requests("apply_config").is_empty());
}

#[tokio::test]
async fn status_combines_daemon_system_and_throughput() {
    let h = Harness::new();
    let admin = h.setup().await;
    let key = h.key(&admin, "viewer").await;
    h.app.state().telemetry.refresh().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.app.state().telemetry.refresh().await.unwrap();
    let a = h
        .send(Req::get("/api/v1/status").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let wan1 = &a.body["wans"][0];
    assert_eq!(wan1["name"], "wan1");
    assert_eq!(wan1["latency_ms"], 12.5);
    // 1 Mbit per sample over ~0.2 s.
    let rx = wan1["rx_bps"].as_f64().unwrap();
    assert!(rx > 1e5 && rx < 1e8, "{rx}");
    let system = &a.body["system"];
    assert!(system["mem_total"].as_u64().unwrap() > 0);
    assert!(system["uptime_s"].as_u64().unwrap() > 0);
    assert!(system.get("conntrack_count").is_some() && system.get("version").is_some());

    let a = h
        .send(
            Req::get("/api/v1/history/wan1?seconds=600")
                .bearer(&key)
                .empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let points = a.body["points"].as_array().unwrap();
    assert!(points.iter().any(|p| p["latency_ms"] == 10.0));
    assert!(points.iter().any(|p| p["rx_bps"].is_number()));
    let a = h
        .send(
            Req::get("/api/v1/history/wan1?seconds=abc")
                .bearer(&key)
                .empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["fields"][0]["path"], "seconds");
    let a = h
        .send(Req::get("/api/v1/history/nope").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = h
        .send(
            Req::get("/api/v1/events?kind=failover")
                .bearer(&key)
                .empty(),
        )
        .await;
    assert_eq!(a.body["events"][0]["kind"], "failover");
    let a = h
        .send(Req::get("/api/v1/events?kind=bogus").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["fields"][0]["path"], "kind");
}

#[tokio::test]
async fn metrics_expose_the_documented_names() {
    let h = Harness::new();
    let admin = h.setup().await;
    let key = h.key(&admin, "viewer").await;
    let poller = h.app.spawn_poller();
    wait_for_history(&h).await;
    let a = h.send(Req::get("/metrics").bearer(&key).empty()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for name in [
        "routeros_wan_up{wan=\"wan1\"} 1",
        "routeros_wan_up{wan=\"wan2\"} 0",
        "routeros_wan_state{wan=\"wan2\",state=\"down\"} 1",
        "routeros_wan_latency_seconds{wan=\"wan1\"} 0.0125",
        "routeros_wan_loss_ratio{wan=\"wan2\"} 1",
        "routeros_wan_rx_bytes_total{wan=\"wan1\"}",
        "routeros_wan_tx_bytes_total{wan=\"wan1\"}",
        "routeros_failovers_total 1",
        "# TYPE routeros_conntrack_entries gauge",
    ] {
        assert!(a.text.contains(name), "missing {name}:\n{}", a.text);
    }
    h.app.shutdown();
    poller.await.unwrap();
}

/// Until the poller has subscribed and taken note of the daemon's log (one failover).
async fn wait_for_history(h: &Harness) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.app.state().telemetry.failovers() < 1 {
        assert!(tokio::time::Instant::now() < deadline, "no subscription");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn stream_sends_status_and_new_events() {
    let h = Harness::new();
    let admin = h.setup().await;
    let poller = h.app.spawn_poller();
    // The subscription's backlog is history: noted, not streamed.
    wait_for_history(&h).await;
    let response = h
        .api
        .clone()
        .oneshot(Req::get("/api/v1/stream").cookie(&admin).empty())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    let mut pushed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(seen.contains("event: status") && seen.contains("event: event")) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("stream timed out")
            .expect("stream ended")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: status") && !pushed {
            // A new daemon event appears: the poller forwards it.
            h.daemon.push_event(Event::new(
                EventKind::Operator,
                Some("wan1"),
                "wan1 disabled by the operator",
            ));
            pushed = true;
        }
    }
    let status_line = seen
        .lines()
        .skip_while(|l| *l != "event: status")
        .nth(1)
        .unwrap();
    let status: Value = serde_json::from_str(status_line.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(status["wans"][0]["name"], "wan1");
    assert!(seen.contains("wan1 disabled by the operator"));
    h.app.shutdown();
    poller.await.unwrap();
    // The old event was not replayed as new.
    assert!(!seen.contains("traffic moved to wan1"));
}

/// One principal cannot hold every event-stream slot (issue #10, item 3).
#[tokio::test]
async fn streams_are_capped_per_principal() {
    let h = Harness::new();
    let admin = h.setup().await;
    let key = h.key(&admin, "viewer").await;
    let per_principal = routeros_web::limits::Limits::default().max_streams_per_principal;
    let mut open = Vec::new();
    for i in 0..per_principal {
        let response = h
            .api
            .clone()
            .oneshot(Req::get("/api/v1/stream").bearer(&key).empty())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "stream {i}");
        open.push(response);
    }
    // (oneshot: an admitted stream's body would never end)
    let refused = h
        .api
        .clone()
        .oneshot(Req::get("/api/v1/stream").bearer(&key).empty())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = axum::body::to_bytes(refused.into_body(), 1 << 16)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("key:"), "{text}");
    // Someone else still gets one.
    let other = h
        .api
        .clone()
        .oneshot(Req::get("/api/v1/stream").cookie(&admin).empty())
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    // A closed stream gives its slot back.
    open.pop();
    let again = h
        .api
        .clone()
        .oneshot(Req::get("/api/v1/stream").bearer(&key).empty())
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn daemon_down_is_502() {
    let h = Harness::with_daemon(false);
    let admin = h.setup().await;
    let a = h
        .send(Req::get("/api/v1/status").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert_eq!(a.body["error"], "daemon_unreachable");
    let a = h
        .send(Req::post("/api/v1/wans/wan1/enable").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes() {
    let mut routes = api_routes().routes;
    routes.sort();
    assert_eq!(openapi::operations(), routes);
    let h = Harness::new();
    let a = h.send(Req::get("/api/v1/openapi.json").empty()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body["openapi"].as_str().unwrap().starts_with("3."));
    // Every listed route exists on the router (no 404/405 for it).
    for (method, path) in concrete_routes() {
        let a = h
            .send(Req::new(method.clone(), &path).json(json!({})))
            .await;
        assert!(
            a.status != StatusCode::NOT_FOUND || a.body["error"] != "not_found",
            "{method} {path}"
        );
        assert_ne!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    let a = h.send(Req::get("/api/v1/nothing-here").empty()).await;
    assert_eq!(
        (a.status, a.body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}
