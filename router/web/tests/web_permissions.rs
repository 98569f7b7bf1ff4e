//! Who may call what: one table of every API route with the least role it needs, checked
//! for every kind of caller (nobody, a forged cookie, viewer/operator/admin sessions and
//! API keys). A new route does not pass until it is in the table.

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;
use tower::ServiceExt;

mod common;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// No login needed.
    Public,
    Viewer,
    Operator,
    Admin,
}

/// (method, path with parameters filled in, least role).
fn table() -> Vec<(Method, &'static str, Role)> {
    use Role::*;
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    vec![
        (post.clone(), "/api/v1/login", Public),
        (post.clone(), "/api/v1/logout", Viewer),
        (get.clone(), "/api/v1/session", Viewer),
        (get.clone(), "/api/v1/setup", Public),
        (post.clone(), "/api/v1/setup/password", Admin),
        (post.clone(), "/api/v1/setup/apply", Admin),
        (get.clone(), "/api/v1/status", Viewer),
        (get.clone(), "/api/v1/events", Viewer),
        (get.clone(), "/api/v1/history/wan1", Viewer),
        (get.clone(), "/api/v1/stream", Viewer),
        (post.clone(), "/api/v1/wans/wan1/disable", Operator),
        (post.clone(), "/api/v1/wans/wan1/enable", Operator),
        (post.clone(), "/api/v1/wans/wan1/maintenance", Operator),
        (get.clone(), "/api/v1/wans/wan1/impact", Operator),
        (get.clone(), "/api/v1/config", Admin),
        (put.clone(), "/api/v1/config", Admin),
        (post.clone(), "/api/v1/config/confirm", Admin),
        (get.clone(), "/api/v1/config/history", Admin),
        (post.clone(), "/api/v1/config/rollback", Admin),
        (get.clone(), "/api/v1/users", Admin),
        (post.clone(), "/api/v1/users", Admin),
        (delete.clone(), "/api/v1/users/someone", Admin),
        (get.clone(), "/api/v1/keys", Admin),
        (post.clone(), "/api/v1/keys", Admin),
        (delete.clone(), "/api/v1/keys/0123456789abcdef", Admin),
        (get.clone(), "/api/v1/audit", Admin),
        (get.clone(), "/api/v1/system/upgrade", Viewer),
        (post.clone(), "/api/v1/system/upgrade", Admin),
        (post.clone(), "/api/v1/system/upgrade/bundle", Admin),
        (get.clone(), "/api/v1/openapi.json", Public),
        (get, "/metrics", Viewer),
    ]
}

/// How a caller authenticates.
enum Caller {
    Nobody,
    Forged,
    Cookie(Role, String),
    Key(Role, String),
}

/// The answer's status only (an admitted event stream never ends).
async fn status_of(h: &Harness, req: Req) -> StatusCode {
    let response = h.api.clone().oneshot(req.json(json!({}))).await.unwrap();
    response.status()
}

#[tokio::test]
async fn every_role_reaches_exactly_its_routes() {
    let mut listed: Vec<(String, String)> = table()
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        concrete_routes()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect::<Vec<_>>()
            .tap_sort(),
        "the table lists every route"
    );

    let h = Harness::new();
    let admin = h.setup().await;
    let mut callers = vec![Caller::Nobody, Caller::Forged];
    for (role, name) in [
        (Role::Viewer, "viewer"),
        (Role::Operator, "operator"),
        (Role::Admin, "admin"),
    ] {
        let cookie = h.user(&admin, &format!("{name}1"), name).await;
        callers.push(Caller::Cookie(role, cookie));
        callers.push(Caller::Key(role, h.key(&admin, name).await));
    }
    for (method, path, least) in table() {
        // Logging out would end the caller's session for the rows after it.
        if path == "/api/v1/logout" {
            continue;
        }
        for caller in &callers {
            let req = Req::new(method.clone(), path).origin(ORIGIN);
            let (req, role, who) = match caller {
                Caller::Nobody => (req, None, "nobody".to_string()),
                Caller::Forged => (req.cookie("rsid=0000"), None, "forged cookie".into()),
                Caller::Cookie(role, c) => (req.cookie(c), Some(*role), format!("{role:?} cookie")),
                Caller::Key(role, k) => (req.bearer(k), Some(*role), format!("{role:?} key")),
            };
            let status = status_of(&h, req).await;
            let expected = match role {
                _ if least == Role::Public => None,
                None => Some(StatusCode::UNAUTHORIZED),
                Some(role) if role < least => Some(StatusCode::FORBIDDEN),
                Some(_) => None,
            };
            match expected {
                Some(code) => assert_eq!(status, code, "{method} {path} as {who}"),
                None => assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {path} as {who}: {status}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn refused_callers_never_reach_the_daemon() {
    let h = Harness::new();
    let admin = h.setup().await;
    let viewer = h.user(&admin, "vera", "viewer").await;
    for (method, path, least) in table() {
        if least <= Role::Viewer {
            continue;
        }
        for req in [
            Req::new(method.clone(), path).origin(ORIGIN),
            Req::new(method.clone(), path)
                .origin(ORIGIN)
                .cookie(&viewer),
        ] {
            let status = status_of(&h, req).await;
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
                "{method} {path}: {status}"
            );
        }
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

trait TapSort {
    fn tap_sort(self) -> Self;
}

impl<T: Ord> TapSort for Vec<T> {
    fn tap_sort(mut self) -> Self {
        self.sort();
        self
    }
}
