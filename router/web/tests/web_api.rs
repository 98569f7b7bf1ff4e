//! routeros-web in-process: a fake daemon answers on a temporary Unix socket (recording what
//! it was asked), the routers are driven with `tower::ServiceExt::oneshot`. No root needed.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use futures::StreamExt;
use routeros_shared::config::Config;
use routeros_web::auth::HashCost;
use routeros_web::{api_routes, openapi, Options, WebApp};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const HOST: &str = "192.168.1.1:8080";
const ORIGIN: &str = "http://192.168.1.1:8080";
const LAN_CLIENT: &str = "192.168.1.50:40000";
const NEW_PASSWORD: &str = "correct-horse-battery";

const CONFIG_TOML: &str = r#"[[wan_interfaces]]
name = "wan1"
weight = 2
gateway = "192.0.2.1"

[[wan_interfaces]]
name = "wan2"
gateway = "198.51.100.1"

[lan]
interface = "lan0"
address = "192.168.1.1/24"

[health_check]
targets = ["203.0.113.1"]
"#;

// ---------------------------------------------------------------- fake daemon

#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<Value>>>,
    extra_events: Arc<Mutex<Vec<Value>>>,
    counter: Arc<AtomicU64>,
}

impl Recorder {
    fn requests(&self, cmd: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["cmd"] == cmd)
            .cloned()
            .collect()
    }

    fn answer(&self, req: &Value) -> Value {
        let wan_ok = |w: &Value| matches!(w.as_str(), Some("wan1" | "wan2"));
        match req["cmd"].as_str().unwrap_or("") {
            "status" => {
                // Byte counters grow by 125 000 bytes (1 Mbit) per call.
                let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
                json!({
                    "ok": true, "mode": "ecmp", "active_wans": ["wan1"],
                    "wans": [
                        {"name": "wan1", "state": "up", "weight": 2, "priority": 1,
                         "address": "192.0.2.2", "gateway": "192.0.2.1", "latency_ms": 12.5,
                         "jitter_ms": 1.5, "loss_percent": 0.0, "connections": 17,
                         "since_ms": 1000, "rx_bytes": n * 125_000, "tx_bytes": n * 12_500,
                         "usable": true, "disabled": false, "active": true},
                        {"name": "wan2", "state": "down", "weight": 1, "priority": 1,
                         "address": null, "gateway": "198.51.100.1", "latency_ms": null,
                         "jitter_ms": null, "loss_percent": 100.0, "connections": 0,
                         "since_ms": 2000, "rx_bytes": 5, "tx_bytes": 5,
                         "usable": false, "disabled": false, "active": false}
                    ]
                })
            }
            "events" => {
                let since = req["since_ms"].as_u64().unwrap_or(0);
                let mut events = vec![json!({"at_ms": 1000, "kind": "failover", "wan": "wan2",
                                              "message": "wan2 down: traffic moved to wan1"})];
                events.extend(self.extra_events.lock().unwrap().iter().cloned());
                let events: Vec<Value> = events
                    .into_iter()
                    .filter(|e| e["at_ms"].as_u64().unwrap() > since)
                    .collect();
                json!({"ok": true, "events": events})
            }
            "history" if wan_ok(&req["wan"]) => json!({"ok": true, "wan": req["wan"], "points": [
                {"t_ms": 1000, "latency_ms": 10.0, "jitter_ms": 1.0, "loss_percent": 0.0}
            ]}),
            "disable" | "enable" | "maintenance" if wan_ok(&req["wan"]) => {
                json!({"ok": true, "message": format!("{} {} by the operator",
                                                      req["wan"].as_str().unwrap(), req["cmd"].as_str().unwrap())})
            }
            "get_config" => {
                json!({"ok": true, "toml": CONFIG_TOML, "version": 3, "pending": null})
            }
            "apply_config" => {
                json!({"ok": true, "version": 4, "pending": {"id": "19abc", "rollback_at_ms": 99_000}})
            }
            "confirm_config" if req["id"] == "19abc" => json!({"ok": true}),
            "confirm_config" => json!({"ok": false, "error": "id: not the pending change"}),
            "config_history" => json!({"ok": true, "versions": [
                {"version": 1, "saved_at_ms": 1000, "by": "install"},
                {"version": 3, "saved_at_ms": 3000, "by": "admin"}
            ]}),
            "rollback_config" => {
                json!({"ok": true, "version": 5, "pending": {"id": "19abd", "rollback_at_ms": 99_500}})
            }
            _ => json!({"ok": false, "error": "unknown request"}),
        }
    }
}

fn start_fake_daemon(path: PathBuf) -> Recorder {
    let listener = UnixListener::bind(&path).unwrap();
    let recorder = Recorder::default();
    let rec = recorder.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let rec = rec.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let req: Value = serde_json::from_str(&line).unwrap();
                    rec.requests.lock().unwrap().push(req.clone());
                    let mut answer = rec.answer(&req).to_string();
                    answer.push('\n');
                    if writer.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    recorder
}

// ---------------------------------------------------------------- harness

struct Harness {
    app: WebApp,
    api: Router,
    ui: Router,
    daemon: Recorder,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Harness {
    fn new() -> Self {
        Self::with_daemon(true)
    }

    fn with_daemon(running: bool) -> Self {
        Self::build(running, |_, _| {})
    }

    /// As on the appliance image: an upgrade directory (with one line of history) and an
    /// os-release with IMAGE_VERSION 0.1.0.1.
    fn appliance() -> Self {
        Self::build(true, |dir, opts| {
            let upgrade = dir.join("upgrade-state");
            std::fs::create_dir(&upgrade).unwrap();
            std::fs::write(
                upgrade.join("history"),
                "2026-11-28T10:00:00Z installed 0.1.0.1 from 0.1.0.0 (3 tries)\n",
            )
            .unwrap();
            std::fs::write(dir.join("os-release"), "ID=ubuntu\nIMAGE_VERSION=0.1.0.1\n").unwrap();
            opts.upgrade_dir = Some(upgrade);
            opts.os_release = dir.join("os-release");
        })
    }

    fn build(running: bool, tweak: impl FnOnce(&std::path::Path, &mut Options)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let daemon = if running {
            start_fake_daemon(socket.clone())
        } else {
            Recorder::default()
        };
        let mut opts = Options::new(socket, dir.path().join("data"));
        opts.hash_cost = HashCost::Insecure;
        opts.daemon_timeout = Duration::from_secs(2);
        tweak(dir.path(), &mut opts);
        let app = WebApp::new(opts).unwrap();
        Self {
            api: app.api_router(),
            ui: app.ui_router(),
            app,
            daemon,
            _dir: dir,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    async fn send_to(&self, router: &Router, req: Request<Body>) -> Answer {
        let response = router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        self.send_to(&self.api, req).await
    }

    /// Admin session after replacing the default password (the fresh session that
    /// setting the password hands out).
    async fn setup(&self) -> String {
        let cookie = self.login("admin", "routeros123").await;
        let a = self
            .send(
                Req::post("/api/v1/setup/password")
                    .cookie(&cookie)
                    .json(json!({"new_password": NEW_PASSWORD})),
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);
        new_cookie(&a)
    }

    async fn login(&self, user: &str, password: &str) -> String {
        let a = self
            .send(Req::post("/api/v1/login").json(json!({"username": user, "password": password})))
            .await;
        assert_eq!(a.status, StatusCode::OK, "login {user}: {}", a.text);
        new_cookie(&a)
    }

    /// Create a user with `role` and return its session cookie.
    async fn user(&self, admin: &str, name: &str, role: &str) -> String {
        let a = self
            .send(Req::post("/api/v1/users").cookie(admin).json(
                json!({"username": name, "password": format!("{name}-password-1"), "role": role}),
            ))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        self.login(name, &format!("{name}-password-1")).await
    }

    async fn key(&self, admin: &str, role: &str) -> String {
        let a = self
            .send(
                Req::post("/api/v1/keys")
                    .cookie(admin)
                    .json(json!({"role": role, "label": "test"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["key"].as_str().unwrap().to_string()
    }
}

/// The `name=value` of the session cookie an answer sets.
fn new_cookie(a: &Answer) -> String {
    let set = a
        .headers
        .get(header::SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

/// Request builder: Host of the router, a LAN client address, optional cookie/key/origin.
struct Req {
    builder: axum::http::request::Builder,
    from: SocketAddr,
}

impl Req {
    fn new(method: Method, path: &str) -> Self {
        Self {
            builder: Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, HOST),
            from: LAN_CLIENT.parse().unwrap(),
        }
    }
    fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }
    fn post(path: &str) -> Self {
        Self::new(Method::POST, path).origin(ORIGIN)
    }
    fn put(path: &str) -> Self {
        Self::new(Method::PUT, path).origin(ORIGIN)
    }
    fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path).origin(ORIGIN)
    }
    fn origin(mut self, origin: &str) -> Self {
        self.builder = self.builder.header(header::ORIGIN, origin);
        self
    }
    /// The same request without any Origin header.
    fn no_origin(self) -> Self {
        let mut req = self.builder.body(Body::empty()).unwrap();
        req.headers_mut().remove(header::ORIGIN);
        let mut builder = Request::builder().method(req.method()).uri(req.uri());
        for (k, v) in req.headers() {
            builder = builder.header(k, v);
        }
        Self {
            builder,
            from: self.from,
        }
    }
    fn cookie(mut self, cookie: &str) -> Self {
        self.builder = self.builder.header(header::COOKIE, cookie);
        self
    }
    fn bearer(mut self, key: &str) -> Self {
        self.builder = self
            .builder
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        self
    }
    fn from(mut self, addr: &str) -> Self {
        self.from = addr.parse().unwrap();
        self
    }
    fn finish(self, body: Body) -> Request<Body> {
        let mut req = self.builder.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.from));
        req
    }
    fn json(self, body: Value) -> Request<Body> {
        self.raw_json(&body.to_string())
    }
    fn raw_json(mut self, text: &str) -> Request<Body> {
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/json");
        self.finish(Body::from(text.to_string()))
    }
    fn empty(self) -> Request<Body> {
        self.finish(Body::empty())
    }
}

impl From<Req> for Request<Body> {
    fn from(r: Req) -> Self {
        r.empty()
    }
}

/// Every API route with its path parameters filled in.
fn concrete_routes() -> Vec<(Method, String)> {
    api_routes()
        .routes
        .into_iter()
        .map(|(m, p)| {
            let p = p
                .replace("{wan}", "wan1")
                .replace("{name}", "someone")
                .replace("{id}", "0123456789abcdef");
            (m.parse().unwrap(), p)
        })
        .collect()
}

const PUBLIC: [&str; 3] = ["/api/v1/login", "/api/v1/setup", "/api/v1/openapi.json"];

fn changes(m: &Method) -> bool {
    *m != Method::GET
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn every_route_refuses_without_auth() {
    let h = Harness::new();
    for setup_done in [false, true] {
        if setup_done {
            h.setup().await;
        }
        for (method, path) in concrete_routes() {
            if PUBLIC.contains(&path.as_str()) {
                continue;
            }
            let a = h
                .send(
                    Req::new(method.clone(), &path)
                        .origin(ORIGIN)
                        .json(json!({})),
                )
                .await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {}",
                a.text
            );
            assert_eq!(a.body["error"], "unauthorized");
            // A forged cookie or key is no better.
            let a = h
                .send(
                    Req::new(method.clone(), &path)
                        .origin(ORIGIN)
                        .cookie("rsid=0000")
                        .empty(),
                )
                .await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path} cookie");
        }
    }
    // The public ones answer without auth.
    assert_eq!(
        h.send(Req::get("/api/v1/setup").empty()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.send(Req::get("/api/v1/openapi.json").empty())
            .await
            .status,
        StatusCode::OK
    );
    assert!(h.daemon.requests("disable").is_empty());
}

#[tokio::test]
async fn viewer_cannot_change_anything() {
    let h = Harness::new();
    let admin = h.setup().await;
    let viewer = h.user(&admin, "vera", "viewer").await;
    let viewer_key = h.key(&admin, "viewer").await;
    for (method, path) in concrete_routes() {
        if !changes(&method) || path == "/api/v1/login" || path == "/api/v1/logout" {
            continue;
        }
        for auth in ["cookie", "key"] {
            let req = Req::new(method.clone(), &path).origin(ORIGIN);
            let req = match auth {
                "cookie" => req.cookie(&viewer),
                _ => req.bearer(&viewer_key),
            };
            let a = h.send(req.json(json!({"minutes": 5}))).await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{method} {path} ({auth}): {}",
                a.text
            );
            assert_eq!(a.body["error"], "forbidden");
        }
    }
    for path in [
        "/api/v1/config",
        "/api/v1/users",
        "/api/v1/keys",
        "/api/v1/audit",
        "/api/v1/wans/wan1/impact",
    ] {
        let a = h.send(Req::get(path).cookie(&viewer).empty()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "GET {path}");
    }
    for path in [
        "/api/v1/status",
        "/api/v1/events",
        "/api/v1/history/wan1",
        "/metrics",
        "/api/v1/session",
    ] {
        let a = h.send(Req::get(path).cookie(&viewer).empty()).await;
        assert_eq!(a.status, StatusCode::OK, "GET {path}: {}", a.text);
    }
    for cmd in [
        "disable",
        "enable",
        "maintenance",
        "apply_config",
        "confirm_config",
        "rollback_config",
    ] {
        assert!(
            h.daemon.requests(cmd).is_empty(),
            "{cmd} reached the daemon"
        );
    }
}

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

    // The answer reports what the daemon did: its failover event for wan1 after the request.
    h.daemon.extra_events.lock().unwrap().push(json!({
        "at_ms": routeros_shared::events::now_ms() + 60_000, "kind": "failover", "wan": "wan1",
        "message": "wan1 left service: 17 connections reset to reconnect via wan2",
        "details": {"reset_connections": 17, "mark": 256}
    }));
    let a = h
        .send(Req::post("/api/v1/wans/wan1/disable").cookie(&op).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["reset_connections"], 17);
    let asked = h.daemon.requests("events");
    let last = asked.last().expect("events asked after the disable");
    assert_eq!(
        (&last["wan"], &last["kind"]),
        (&json!("wan1"), &json!("failover"))
    );
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
async fn cookie_changes_need_our_origin() {
    let h = Harness::new();
    let admin = h.setup().await;
    let path = "/api/v1/wans/wan1/disable";

    let a = h
        .send(Req::post(path).no_origin().cookie(&admin).empty())
        .await;
    assert_eq!(
        (a.status, a.body["error"].clone()),
        (StatusCode::FORBIDDEN, json!("origin"))
    );
    let a = h
        .send(
            Req::post(path)
                .no_origin()
                .origin("http://evil.example")
                .cookie(&admin)
                .empty(),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"].clone()),
        (StatusCode::FORBIDDEN, json!("origin"))
    );
    let a = h
        .send(
            Req::post(path)
                .no_origin()
                .origin("http://192.168.1.1:8081")
                .cookie(&admin)
                .empty(),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "another port is another origin"
    );
    assert!(h.daemon.requests("disable").is_empty());

    let a = h.send(Req::post(path).cookie(&admin).empty()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // Reads need no Origin; API keys need none either.
    let a = h
        .send(Req::get("/api/v1/status").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let key = h.key(&admin, "operator").await;
    let a = h
        .send(Req::post(path).no_origin().bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // A foreign-origin login is refused too (login CSRF).
    let a = h
        .send(
            Req::post("/api/v1/login")
                .no_origin()
                .origin("http://evil.example")
                .json(json!({"username": "admin", "password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn api_keys_authenticate_within_their_role() {
    let h = Harness::new();
    let admin = h.setup().await;
    let key = h.key(&admin, "operator").await;
    assert!(key.starts_with("rk_"), "{key}");

    let a = h
        .send(Req::get("/api/v1/status").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h
        .send(Req::post("/api/v1/wans/wan1/disable").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h
        .send(
            Req::put("/api/v1/config")
                .bearer(&key)
                .json(json!({"toml": CONFIG_TOML})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = h.send(Req::get("/api/v1/users").bearer(&key).empty()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Listed without the secret; stored hashed.
    let a = h
        .send(Req::get("/api/v1/keys").cookie(&admin).empty())
        .await;
    let id = a.body["keys"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(a.body["keys"][0]["role"], "operator");
    assert!(!a.text.contains(key.rsplit('_').next().unwrap()));
    let stored = std::fs::read_to_string(h.data_dir().join("keys.json")).unwrap();
    assert!(stored.contains("$argon2id$"));
    assert!(!stored.contains(key.rsplit('_').next().unwrap()));

    // A wrong secret for a real id fails.
    let forged = format!("rk_{id}_{}", "0".repeat(64));
    let a = h
        .send(Req::get("/api/v1/status").bearer(&forged).empty())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Deleted keys stop working at once.
    let a = h
        .send(
            Req::delete(&format!("/api/v1/keys/{id}"))
                .cookie(&admin)
                .empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = h
        .send(Req::get("/api/v1/status").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // An admin key can do admin things.
    let admin_key = h.key(&admin, "admin").await;
    let a = h
        .send(Req::get("/api/v1/config").bearer(&admin_key).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn login_is_rate_limited_per_address() {
    let h = Harness::new();
    h.setup().await;
    let attempt = |pw: &str, from: &str| {
        Req::post("/api/v1/login")
            .from(from)
            .json(json!({"username": "admin", "password": pw}))
    };
    for i in 0..5 {
        let a = h.send(attempt("wrong-password", "192.168.1.77:1000")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let a = h.send(attempt("wrong-password", "192.168.1.77:1000")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Even the right password waits; other addresses do not.
    let a = h.send(attempt(NEW_PASSWORD, "192.168.1.77:1001")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let a = h.send(attempt(NEW_PASSWORD, "192.168.1.78:1000")).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let h = Harness::new();
    let admin = h.setup().await;

    let a = h
        .send(
            Req::post("/api/v1/wans/wan1/maintenance")
                .cookie(&admin)
                .json(json!({"minutes": "ten"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"], "bad_request");
    assert_eq!(a.body["fields"][0]["path"], "minutes", "{}", a.text);

    let a = h
        .send(Req::post("/api/v1/login").json(json!({"password": "x"})))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["fields"][0]["path"], "username", "{}", a.text);

    let a = h
        .send(
            Req::post("/api/v1/wans/wan1/maintenance")
                .cookie(&admin)
                .json(json!({"minutes": 0})),
        )
        .await;
    assert_eq!(a.body["fields"][0]["path"], "minutes", "{}", a.text);

    let a = h
        .send(Req::post("/api/v1/login").raw_json("{\"username\": "))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = h
        .send(Req::post("/api/v1/login").finish(Body::from("username=admin")))
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Config: a type error and a range error both come back by TOML path, and nothing is
    // sent to the daemon.
    let mut form = serde_json::to_value(Config::from_toml(CONFIG_TOML).unwrap()).unwrap();
    for bad in [json!("heavy"), json!(0), json!(300)] {
        form["wan_interfaces"][0]["weight"] = bad.clone();
        let a = h
            .send(
                Req::put("/api/v1/config")
                    .cookie(&admin)
                    .json(json!({"config": form})),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.body["error"], "invalid_config");
        let paths: Vec<&str> = a.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&"wan_interfaces[0].weight"),
            "{bad}: {paths:?}"
        );
    }
    let bad_toml = CONFIG_TOML.replace("weight = 2", "weight = 0");
    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"toml": bad_toml})),
        )
        .await;
    assert_eq!(
        a.body["fields"][0]["path"], "wan_interfaces[0].weight",
        "{}",
        a.text
    );
    assert!(h.daemon.requests("apply_config").is_empty());
}

/// Ten LAN addresses together get 10 guesses a minute at one account, not 50 (issue #10,
/// item 3); other accounts are not affected.
#[tokio::test]
async fn login_is_rate_limited_per_account() {
    let h = Harness::new();
    let admin = h.setup().await;
    h.user(&admin, "carol", "viewer").await;
    let attempt = |user: &str, pw: &str, from: &str| {
        Req::post("/api/v1/login")
            .from(from)
            .json(json!({"username": user, "password": pw}))
    };
    let mut refused = 0;
    for host in 10..20 {
        for _ in 0..5 {
            let from = format!("192.168.1.{host}:1000");
            let a = h.send(attempt("admin", "wrong-password", &from)).await;
            match a.status {
                StatusCode::UNAUTHORIZED => {}
                StatusCode::TOO_MANY_REQUESTS => refused += 1,
                other => panic!("{other}: {}", a.text),
            }
        }
    }
    assert_eq!(refused, 50 - 10, "only 10 guesses at one account");
    // A fresh address waits too, even with the right password...
    let a = h
        .send(attempt("admin", NEW_PASSWORD, "192.168.1.99:1000"))
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert!(a.headers.contains_key(header::RETRY_AFTER));
    // ... and did not spend that address's own allowance; other accounts log in.
    let a = h
        .send(attempt("carol", "carol-password-1", "192.168.1.99:1000"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
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
async fn setup_flow_locks_everything_until_the_password_changes() {
    let h = Harness::new();
    let a = h.send(Req::get("/api/v1/setup").empty()).await;
    assert_eq!(a.body["setup_required"], true);

    // The default password only works from the LAN.
    let a = h
        .send(
            Req::post("/api/v1/login")
                .from("203.0.113.9:5000")
                .json(json!({"username": "admin", "password": "routeros123"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // ... and not through a public name (DNS rebinding from a LAN browser).
    let mut req =
        Req::post("/api/v1/login").json(json!({"username": "admin", "password": "routeros123"}));
    for (name, value) in [
        (header::HOST, "rebind.evil.example:8080"),
        (header::ORIGIN, "http://rebind.evil.example:8080"),
    ] {
        req.headers_mut().insert(name, value.parse().unwrap());
    }
    let a = h.send(req).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"], "forbidden", "{}", a.text);

    let cookie = h.login("admin", "routeros123").await;
    let a = h
        .send(Req::get("/api/v1/session").cookie(&cookie).empty())
        .await;
    assert_eq!(a.body["setup_required"], true);
    for (method, path) in concrete_routes() {
        let open = [
            "/api/v1/setup",
            "/api/v1/setup/password",
            "/api/v1/login",
            "/api/v1/logout",
            "/api/v1/session",
            "/api/v1/openapi.json",
        ];
        if open.contains(&path.as_str()) {
            continue;
        }
        let a = h
            .send(
                Req::new(method.clone(), &path)
                    .origin(ORIGIN)
                    .cookie(&cookie)
                    .json(json!({})),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(a.body["error"], "setup_required", "{method} {path}");
    }

    for bad in ["short", "routeros123"] {
        let a = h
            .send(
                Req::post("/api/v1/setup/password")
                    .cookie(&cookie)
                    .json(json!({"new_password": bad})),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.body["fields"][0]["path"], "new_password");
    }
    let a = h
        .send(
            Req::post("/api/v1/setup/password")
                .cookie(&cookie)
                .json(json!({"new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text);

    // Full access now, with the fresh session the answer set.
    let fresh = new_cookie(&a);
    let a = h
        .send(Req::get("/api/v1/status").cookie(&fresh).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h.send(Req::get("/api/v1/setup").empty()).await;
    assert_eq!(a.body["setup_required"], false);
    // The default is gone for good, also after a restart (users.json).
    let a = h
        .send(
            Req::post("/api/v1/login")
                .json(json!({"username": "admin", "password": "routeros123"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let users = std::fs::read_to_string(h.data_dir().join("users.json")).unwrap();
    assert!(users.contains("$argon2id$") && !users.contains(NEW_PASSWORD));
    let again = h.login("admin", NEW_PASSWORD).await;
    let a = h
        .send(
            Req::post("/api/v1/setup/password")
                .cookie(&again)
                .json(json!({"new_password": "yet-another-pass"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);

    // The wizard's answer becomes a config change.
    let wizard = json!({
        "wans": [
            {"name": "wan1", "mode": "static", "address": "192.0.2.2/24", "gateway": "192.0.2.1",
             "dns": ["192.0.2.53"], "weight": 3},
            {"name": "wan2", "mode": "dhcp", "weight": 1}
        ],
        "lan": {"interface": "lan0", "address": "192.168.1.1/24",
                "dhcp_start": "192.168.1.100", "dhcp_end": "192.168.1.199"},
        "timezone": "Europe/Berlin"
    });
    let mut bad = wizard.clone();
    bad["wans"][1]["weight"] = json!(0);
    let a = h
        .send(Req::post("/api/v1/setup/apply").cookie(&again).json(bad))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["fields"][0]["path"], "wans[1].weight", "{}", a.text);
    let a = h
        .send(Req::post("/api/v1/setup/apply").cookie(&again).json(wizard))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["pending"]["id"], "19abc");
    let applied = h.daemon.requests("apply_config");
    assert_eq!(applied.len(), 1);
    let cfg = Config::from_toml(applied[0]["toml"].as_str().unwrap()).unwrap();
    assert_eq!(cfg.wan_interfaces[0].weight, 3);
    assert_eq!(cfg.lan.dhcp.start, Some("192.168.1.100".parse().unwrap()));
    assert_eq!(
        cfg.health_check.targets,
        vec!["203.0.113.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let a = h.send(Req::get("/api/v1/setup").empty()).await;
    assert_eq!(a.body["wizard_done"], true);
}

/// A LAN device that logged in with the default password during first boot must not stay
/// an admin once the wizard sets the real password (issue #10, item 1).
#[tokio::test]
async fn setting_the_password_ends_the_other_sessions() {
    let h = Harness::new();
    let wizard = h.login("admin", "routeros123").await;
    let intruder = h.login("admin", "routeros123").await;
    let set = h
        .send(
            Req::post("/api/v1/setup/password")
                .cookie(&wizard)
                .json(json!({"new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);

    let a = h
        .send(Req::get("/api/v1/session").cookie(&intruder).empty())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    let a = h
        .send(
            Req::post("/api/v1/keys")
                .cookie(&intruder)
                .json(json!({"role": "admin", "label": "backdoor"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    // The caller's old token ended too: only the fresh one works.
    let a = h
        .send(Req::get("/api/v1/session").cookie(&wizard).empty())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);

    let fresh = new_cookie(&set);
    assert_ne!(fresh, wizard, "the caller gets a new session token");
    let a = h
        .send(Req::get("/api/v1/session").cookie(&fresh).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["setup_required"], false);
    let key = h.key(&fresh, "viewer").await;
    let a = h
        .send(Req::get("/api/v1/status").bearer(&key).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn config_changes_go_to_the_daemon() {
    let h = Harness::new();
    let admin = h.setup().await;

    let a = h
        .send(Req::get("/api/v1/config").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["toml"], CONFIG_TOML);
    assert_eq!(a.body["version"], 3);
    assert_eq!(a.body["config"]["wan_interfaces"][0]["name"], "wan1");

    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"toml": CONFIG_TOML})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["pending"]["id"], "19abc");
    let sent = h.daemon.requests("apply_config");
    assert_eq!(
        sent[0],
        json!({"cmd": "apply_config", "toml": CONFIG_TOML, "confirm_seconds": 60, "by": "admin"})
    );

    // The JSON form is turned into TOML that parses back to the same config.
    let mut form = a.body.clone();
    form = serde_json::to_value(Config::from_toml(CONFIG_TOML).unwrap()).unwrap_or(form);
    form["wan_interfaces"][1]["weight"] = json!(5);
    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"config": form})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let sent = h.daemon.requests("apply_config");
    let cfg = Config::from_toml(sent[1]["toml"].as_str().unwrap()).unwrap();
    assert_eq!(cfg.wan_interfaces[1].weight, 5);

    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"toml": CONFIG_TOML, "config": {}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let a = h
        .send(
            Req::post("/api/v1/config/confirm")
                .cookie(&admin)
                .json(json!({"id": "nope"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = h
        .send(
            Req::post("/api/v1/config/confirm")
                .cookie(&admin)
                .json(json!({"id": "19abc"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    let a = h
        .send(Req::get("/api/v1/config/history").cookie(&admin).empty())
        .await;
    assert_eq!(a.body["versions"][1]["version"], 3);
    let a = h
        .send(
            Req::post("/api/v1/config/rollback")
                .cookie(&admin)
                .json(json!({"version": 2})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = h
        .send(
            Req::post("/api/v1/config/rollback")
                .cookie(&admin)
                .json(json!({"version": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["pending"]["id"], "19abd");
    assert_eq!(
        h.daemon.requests("rollback_config"),
        vec![json!({"cmd": "rollback_config", "version": 1, "by": "admin"})]
    );
}

#[tokio::test]
async fn audit_log_records_who_did_what_from_where() {
    let h = Harness::new();
    let admin = h.setup().await;
    let op = h.user(&admin, "oper", "operator").await;
    let a = h
        .send(
            Req::post("/api/v1/wans/wan1/disable")
                .cookie(&op)
                .from("192.168.1.66:3333")
                .empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    h.send(
        Req::put("/api/v1/config")
            .cookie(&admin)
            .json(json!({"toml": CONFIG_TOML})),
    )
    .await;
    let a = h
        .send(Req::get("/api/v1/audit").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let entries = a.body["entries"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:?}"))
            .clone()
    };
    let e = find("wan.disable");
    assert_eq!(e["user"], "oper");
    assert_eq!(e["role"], "operator");
    assert_eq!(e["from"], "192.168.1.66");
    assert_eq!(e["detail"]["wan"], "wan1");
    assert!(e["at_ms"].as_u64().unwrap() > 0);
    assert_eq!(find("config.apply")["user"], "admin");
    for action in ["setup.password", "user.create", "login"] {
        find(action);
    }
    // Append-only JSON lines on disk.
    let text = std::fs::read_to_string(h.data_dir().join("audit.jsonl")).unwrap();
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
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
    h.app.state().telemetry.poll_events().await.unwrap();
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

#[tokio::test]
async fn stream_sends_status_and_new_events() {
    let h = Harness::new();
    let admin = h.setup().await;
    // The first poll only notes what the daemon's log holds already.
    h.app.state().telemetry.poll_events().await.unwrap();
    let poller = h.app.spawn_poller();
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
            h.daemon.extra_events.lock().unwrap().push(json!({
                "at_ms": routeros_shared::events::now_ms(), "kind": "operator", "wan": "wan1",
                "message": "wan1 disabled by the operator"}));
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
async fn users_are_managed_by_admins() {
    let h = Harness::new();
    let admin = h.setup().await;
    let bob = h.user(&admin, "bob", "viewer").await;
    let a = h
        .send(Req::get("/api/v1/users").cookie(&admin).empty())
        .await;
    let names: Vec<&str> = a.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
    let a = h
        .send(
            Req::post("/api/v1/users")
                .cookie(&admin)
                .json(json!({"username": "bob", "password": "another-long-one", "role": "admin"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = h
        .send(
            Req::post("/api/v1/users")
                .cookie(&admin)
                .json(json!({"username": "carol", "password": "long-enough-pw", "role": "root"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["fields"][0]["path"], "role");
    let a = h
        .send(Req::delete("/api/v1/users/admin").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "last admin stays");
    let a = h
        .send(Req::delete("/api/v1/users/bob").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = h
        .send(Req::get("/api/v1/session").cookie(&bob).empty())
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "deleted user's session ended"
    );

    let a = h
        .send(Req::post("/api/v1/logout").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = h
        .send(Req::get("/api/v1/session").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn security_headers_and_no_cors() {
    let h = Harness::new();
    let a = h
        .send(
            Req::get("/api/v1/setup")
                .origin("http://evil.example")
                .empty(),
        )
        .await;
    assert_eq!(
        a.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("default-src 'self'")
    );
    assert_eq!(a.headers["x-frame-options"], "DENY");
    assert_eq!(a.headers["x-content-type-options"], "nosniff");
    assert!(!a.headers.contains_key("access-control-allow-origin"));
    let a = h
        .send(
            Req::new(Method::OPTIONS, "/api/v1/status")
                .origin("http://evil.example")
                .empty(),
        )
        .await;
    assert!(!a.headers.contains_key("access-control-allow-origin"));
    assert_ne!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn ui_is_served_on_the_ui_port_only() {
    let h = Harness::new();
    let ui = h.send_to(&h.ui, Req::get("/").empty()).await;
    let api = h.send(Req::get("/").empty()).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    if routeros_web::ui::has_index() {
        assert_eq!(ui.status, StatusCode::OK);
        assert!(ui.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let etag = ui.headers[header::ETAG].to_str().unwrap().to_string();
        let again = h
            .send_to(
                &h.ui,
                Request::builder()
                    .uri("/")
                    .header(header::IF_NONE_MATCH, etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    }
    // The API answers on the UI port too.
    let a = h.send_to(&h.ui, Req::get("/api/v1/setup").empty()).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h.send_to(&h.ui, Req::get("/api/v1/nope").empty()).await;
    assert_eq!(a.body["error"], "not_found");
}

// ---------------------------------------------------------------- image upgrades

#[tokio::test]
async fn upgrade_is_refused_on_a_package_install() {
    let h = Harness::new();
    let admin = h.setup().await;
    let a = h
        .send(Req::get("/api/v1/system/upgrade").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["available"], false);
    assert!(a.body["unavailable_reason"]
        .as_str()
        .unwrap()
        .contains("apt"));
    let a = h
        .send(
            Req::post("/api/v1/system/upgrade")
                .cookie(&admin)
                .json(json!({"url": "http://192.168.1.10/router_2.upgrade.tar"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert!(!h.data_dir().join("upgrade/request.json").exists());
}

#[tokio::test]
async fn upgrade_requests_are_written_for_the_root_helper() {
    let h = Harness::appliance();
    let admin = h.setup().await;
    let operator = h.user(&admin, "olga", "operator").await;
    let state_dir = h._dir.path().join("upgrade-state");
    let request = h.data_dir().join("upgrade/request.json");
    let get = || async {
        let a = h
            .send(Req::get("/api/v1/system/upgrade").cookie(&operator).empty())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    };
    let v = get().await;
    assert_eq!(v["available"], true, "{v}");
    assert_eq!(v["running_version"], "0.1.0.1");
    assert_eq!(v["state"], "idle");
    assert_eq!(
        v["history"][0],
        "2026-11-28T10:00:00Z installed 0.1.0.1 from 0.1.0.0 (3 tries)"
    );

    // Only an admin asks; a bad URL names the field; nothing is written either way.
    let url_req = |cookie: &str, url: &str| {
        Req::post("/api/v1/system/upgrade")
            .cookie(cookie)
            .json(json!({ "url": url }))
    };
    let good = "http://192.168.1.10:8001/router_0.1.0.2.upgrade.tar";
    let a = h.send(url_req(&operator, good)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    for bad in ["ftp://h/x.tar", "http://h/a b.tar", ""] {
        let a = h.send(url_req(&admin, bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.body["fields"][0]["path"], "url", "{}", a.text);
    }
    assert!(!request.exists());

    let a = h.send(url_req(&admin, good)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["state"], "queued");
    let written: Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    assert_eq!(written["url"], good);
    assert_eq!(written["requested_by"], "admin");
    assert!(written.get("bundle").is_none(), "{written}");
    // One at a time.
    let a = h.send(url_req(&admin, good)).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    let audit = h
        .send(Req::get("/api/v1/audit").cookie(&admin).empty())
        .await;
    assert!(
        audit.text.contains("system.upgrade") && audit.text.contains(good),
        "{}",
        audit.text
    );

    // The helper took it and failed: its report and output show, and a new request is open.
    std::fs::remove_file(&request).unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(
        state_dir.join("web-status.json"),
        json!({"id": written["id"], "state": "failed", "boot_id": boot_id.trim(),
               "message": "SHA256SUMS.sig is not a valid signature by any trusted key",
               "source": good, "requested_by": "admin", "updated_ms": 5})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        state_dir.join("web-upgrade.log"),
        "routeros-upgrade: downloading\nrouteros-upgrade: ERROR: bad signature\n",
    )
    .unwrap();
    let v = get().await;
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["message"].as_str().unwrap().contains("signature"));
    assert_eq!(v["log"].as_array().unwrap().len(), 2);

    // An empty upload is refused and leaves nothing behind.
    let upload = |body: Vec<u8>| {
        Req::post("/api/v1/system/upgrade/bundle")
            .cookie(&admin)
            .finish(Body::from(body))
    };
    let a = h.send(upload(Vec::new())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(!request.exists());
    // A bundle larger than the 1 MiB limit of other bodies is streamed to disk whole.
    let bundle: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let a = h.send(upload(bundle.clone())).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["source"], "uploaded bundle");
    assert_eq!(
        std::fs::read(h.data_dir().join("upgrade/bundle.tar")).unwrap(),
        bundle
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    assert_eq!(written["bundle"], "bundle.tar");
    let leftovers: Vec<_> = std::fs::read_dir(h.data_dir().join("upgrade"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "bundle.tar" && n != "request.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
