//! What the web API tests share: the fake daemon, a harness driving routeros-web's routers
//! in-process (`tower::ServiceExt::oneshot`) and a request builder. No root needed.

#![allow(dead_code)] // each test file takes what it needs

pub mod fake_daemon;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
#[allow(unused_imports)]
pub use fake_daemon::{FakeDaemon, CONFIG_TOML};
use routeros_web::auth::HashCost;
use routeros_web::{api_routes, Options, WebApp};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tower::ServiceExt;

pub const HOST: &str = "192.168.1.1:8080";
pub const ORIGIN: &str = "http://192.168.1.1:8080";
pub const LAN_CLIENT: &str = "192.168.1.50:40000";
pub const NEW_PASSWORD: &str = "correct-horse-battery";

pub struct Harness {
    pub app: WebApp,
    pub api: Router,
    pub ui: Router,
    pub daemon: FakeDaemon,
    pub dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_daemon(true)
    }

    pub fn with_daemon(running: bool) -> Self {
        Self::build(running, |_, _| {})
    }

    /// As on the appliance image: an upgrade directory (with one line of history) and an
    /// os-release with IMAGE_VERSION 0.1.0.1.
    pub fn appliance() -> Self {
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

    pub fn build(running: bool, tweak: impl FnOnce(&std::path::Path, &mut Options)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let daemon = FakeDaemon::two_wans();
        if running {
            daemon.serve(&socket).unwrap();
        }
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
            dir,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn send_to(&self, router: &Router, req: Request<Body>) -> Answer {
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

    pub async fn send(&self, req: Request<Body>) -> Answer {
        self.send_to(&self.api, req).await
    }

    /// Admin session after replacing the default password (the fresh session that
    /// setting the password hands out).
    pub async fn setup(&self) -> String {
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

    pub async fn login(&self, user: &str, password: &str) -> String {
        let a = self
            .send(Req::post("/api/v1/login").json(json!({"username": user, "password": password})))
            .await;
        assert_eq!(a.status, StatusCode::OK, "login {user}: {}", a.text);
        new_cookie(&a)
    }

    /// Create a user with `role` and return its session cookie.
    pub async fn user(&self, admin: &str, name: &str, role: &str) -> String {
        let a = self
            .send(Req::post("/api/v1/users").cookie(admin).json(
                json!({"username": name, "password": format!("{name}-password-1"), "role": role}),
            ))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        self.login(name, &format!("{name}-password-1")).await
    }

    pub async fn key(&self, admin: &str, role: &str) -> String {
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
pub fn new_cookie(a: &Answer) -> String {
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
pub struct Req {
    builder: axum::http::request::Builder,
    from: SocketAddr,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            builder: Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, HOST),
            from: LAN_CLIENT.parse().unwrap(),
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }
    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path).origin(ORIGIN)
    }
    pub fn put(path: &str) -> Self {
        Self::new(Method::PUT, path).origin(ORIGIN)
    }
    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path).origin(ORIGIN)
    }
    pub fn origin(mut self, origin: &str) -> Self {
        self.builder = self.builder.header(header::ORIGIN, origin);
        self
    }
    /// The same request without any Origin header.
    pub fn no_origin(self) -> Self {
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
    pub fn cookie(mut self, cookie: &str) -> Self {
        self.builder = self.builder.header(header::COOKIE, cookie);
        self
    }
    pub fn bearer(mut self, key: &str) -> Self {
        self.builder = self
            .builder
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        self
    }
    pub fn from(mut self, addr: &str) -> Self {
        self.from = addr.parse().unwrap();
        self
    }
    pub fn finish(self, body: Body) -> Request<Body> {
        let mut req = self.builder.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.from));
        req
    }
    pub fn json(self, body: Value) -> Request<Body> {
        self.raw_json(&body.to_string())
    }
    pub fn raw_json(mut self, text: &str) -> Request<Body> {
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/json");
        self.finish(Body::from(text.to_string()))
    }
    pub fn empty(self) -> Request<Body> {
        self.finish(Body::empty())
    }
}

impl From<Req> for Request<Body> {
    fn from(r: Req) -> Self {
        r.empty()
    }
}

/// Every API route with its path parameters filled in.
pub fn concrete_routes() -> Vec<(Method, String)> {
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

pub const PUBLIC: [&str; 3] = ["/api/v1/login", "/api/v1/setup", "/api/v1/openapi.json"];

pub fn changes(m: &Method) -> bool {
    *m != Method::GET
}
