//! Login, logout and "who am I".

use crate::auth::{
    origin_matches, AnyUser, Credential, Role, COOKIE, DEFAULT_PASSWORD, DEFAULT_USER, SESSION_MAX,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{is_lan_address, ApiJson, ClientIp};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_password_needs_a_local_host_name() {
        for (host, ok) in [
            ("192.168.1.1:8080", true),
            ("router.lan", true),
            ("routeros:8080", true),
            ("localhost:8080", true),
            ("[fd00::1]:8080", true),
            ("gw.home.arpa", true),
            ("rebind.evil.example:8080", false),
            ("192.168.1.1.nip.io", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static(host));
            assert_eq!(local_host_name(&h), ok, "{host}");
        }
        assert!(!local_host_name(&HeaderMap::new()));
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub username: String,
    pub role: Role,
    /// The default password is still in force: only the setup routes are open.
    pub setup_required: bool,
    /// The setup wizard (`POST /api/v1/setup/apply`) was completed once.
    pub wizard_done: bool,
}

fn session_info(state: &AppState, username: &str, role: Role) -> SessionInfo {
    SessionInfo {
        username: username.into(),
        role,
        setup_required: state.users.default_password_active(),
        wizard_done: state.wizard.done(),
    }
}

/// Whether the Host the browser used is the router's address or a local name (an IP
/// literal, `localhost`, a single label, or a name under .lan/.local/.home.arpa/.internal).
/// A public DNS name pointing at the router can only come from DNS rebinding: a web page on
/// a LAN machine must not be able to log in with the default password.
pub fn local_host_name(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(v6) = host.strip_prefix('[') {
        return v6
            .split(']')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)
    };
    let name = name.trim_end_matches('.');
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || (!name.is_empty() && !name.contains('.'))
        || [".lan", ".local", ".home.arpa", ".internal"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Audit entries name at most this much of a user name someone typed.
fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Log in with a password; sets the `rsid` session cookie.
#[utoipa::path(post, path = "/api/v1/login", tag = "auth", security(()),
    request_body = LoginBody,
    responses(
        (status = 200, body = SessionInfo, description = "logged in; Set-Cookie: rsid"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "5 failures per minute per address, 10 per account"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    // A browser always sends Origin on POST: a foreign one is a login-CSRF attempt.
    if headers.contains_key(header::ORIGIN) && !origin_matches(&headers) {
        return Err(ApiError::Origin);
    }
    // Counted as a failure until it succeeds: parallel guesses cannot overrun the limit.
    // Per address, and per account: many LAN addresses still get few guesses at one account.
    let mark = state
        .limiter
        .begin(ip)
        .map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })?;
    let account = shorten(&body.username);
    let account_mark = match state.account_limiter.begin(account.clone()) {
        Ok(m) => m,
        Err(retry_after_s) => {
            // Not tried, so not counted against the address.
            state.limiter.forgive(&ip, mark);
            return Err(ApiError::RateLimited { retry_after_s });
        }
    };
    let default_login = state.users.default_password_active()
        && body.username == DEFAULT_USER
        && body.password == DEFAULT_PASSWORD;
    if default_login {
        let refusal = if !is_lan_address(ip) {
            Some("the default password only works from the LAN")
        } else if !local_host_name(&headers) {
            Some("the default password only works with the router's address or a local name in the URL")
        } else {
            None
        };
        if let Some(reason) = refusal {
            state
                .audit
                .record_as(
                    DEFAULT_USER,
                    None,
                    ip,
                    "login_refused",
                    json!({ "reason": reason }),
                )
                .await;
            return Err(ApiError::Forbidden(reason.into()));
        }
    }
    let Some(role) = state
        .users
        .check(&body.username, &body.password, &state.hasher)
        .await
    else {
        state
            .audit
            .record_as(
                &shorten(&body.username),
                None,
                ip,
                "login_failed",
                json!({}),
            )
            .await;
        return Err(ApiError::Unauthorized);
    };
    state.limiter.forgive(&ip, mark);
    state.account_limiter.forgive(&account, account_mark);
    let token = state.sessions.create(&body.username, role);
    state
        .audit
        .record_as(&body.username, Some(role), ip, "login", json!({}))
        .await;
    let mut response = Json(session_info(&state, &body.username, role)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&token)?);
    Ok(response)
}

/// The `Set-Cookie` value that hands a session token to the browser.
pub fn session_cookie(token: &str) -> ApiResult<HeaderValue> {
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_MAX.as_secs()
    );
    HeaderValue::from_str(&cookie).map_err(ApiError::internal)
}

/// End the session (clears the cookie).
#[utoipa::path(post, path = "/api/v1/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: AnyUser,
) -> Response {
    if let Credential::Session(token) = &who.credential {
        state.sessions.remove(token);
    }
    state.audit.record(&who, ip, "logout", json!({})).await;
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Who is logged in, with which role, and whether setup is still required.
#[utoipa::path(get, path = "/api/v1/session", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn session(State(state): State<AppState>, who: AnyUser) -> Json<SessionInfo> {
    Json(session_info(&state, &who.username, who.role))
}
