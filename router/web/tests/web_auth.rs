//! routeros-web sessions, API keys, login limits, the setup flow and users.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use routeros_shared::config::Config;
use serde_json::json;

mod common;

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
