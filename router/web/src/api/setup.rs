//! The first-boot wizard: its state, replacing the default password, and applying the
//! WAN/LAN answers as a config change.

use super::config::{apply_toml, PendingAnswer};
use super::session::session_cookie;
use crate::auth::{Admin, Credential, Role, SetupAdmin, DEFAULT_PASSWORD, DEFAULT_USER};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientIp};
use crate::wizard::{self, Wizard};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use routeros_shared::config::Config;
use routeros_shared::control::{ConfigReply, Done, Request};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

#[derive(Debug, Serialize, ToSchema)]
pub struct SetupState {
    /// The default password is still in force.
    pub setup_required: bool,
    /// The wizard was completed once.
    pub wizard_done: bool,
    /// Network interfaces on this box (for the WAN/LAN choice).
    pub interfaces: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub new_password: String,
}

/// Why a password is not acceptable.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD {
        return Some(format!("must be at least {MIN_PASSWORD} characters"));
    }
    if password == DEFAULT_PASSWORD {
        return Some("must not be the default password".into());
    }
    None
}

/// Whether setup is required, and the interfaces to choose from. No login needed.
#[utoipa::path(get, path = "/api/v1/setup", tag = "setup", security(()),
    responses((status = 200, body = SetupState)))]
pub async fn get_setup(State(state): State<AppState>) -> Json<SetupState> {
    Json(SetupState {
        setup_required: state.users.default_password_active(),
        wizard_done: state.wizard.done(),
        interfaces: wizard::interfaces(),
    })
}

/// Replace the default password (first boot only); then every route opens. Every other
/// session of `admin` ends (they were opened with the default password); a session caller
/// gets a fresh session cookie.
#[utoipa::path(post, path = "/api/v1/setup/password", tag = "setup",
    request_body = NewPassword,
    responses((status = 204, description = "password set; Set-Cookie: rsid (a new session)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: SetupAdmin,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<Response> {
    if !state.users.default_password_active() {
        return Err(ApiError::Conflict(
            "the default password was already changed".into(),
        ));
    }
    if let Some(p) = password_problem(&body.new_password) {
        return Err(ApiError::bad_field("new_password", p));
    }
    state
        .users
        .finish_setup(&body.new_password, &state.hasher)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    match &who.credential {
        Credential::Session(_) => {
            let token = state.sessions.restart_user(DEFAULT_USER, Role::Admin);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token)?);
        }
        Credential::Key(_) => state.sessions.remove_user(DEFAULT_USER),
    }
    state
        .audit
        .record(&who, ip, "setup.password", json!({}))
        .await;
    Ok(response)
}

/// The answer to `POST /setup/apply`: the pending config change, and the time zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupAnswer {
    #[serde(flatten)]
    pub applied: PendingAnswer,
    pub timezone: TimezoneOutcome,
}

/// Whether the system time zone was set (the rest of the setup applies either way).
#[derive(Debug, Serialize, ToSchema)]
pub struct TimezoneOutcome {
    pub name: String,
    pub set: bool,
    /// The daemon's answer, or why it could not set it (e.g. no systemd-timedated here).
    pub message: String,
}

/// Apply the wizard's WAN lines (mode, static address, VLAN, MAC, PPPoE account) and LAN as
/// a config change (commit-confirm, like PUT /config), set the system time zone, and mark
/// setup done. Nothing is applied when a field is refused. The PPPoE password is write-only.
#[utoipa::path(post, path = "/api/v1/setup/apply", tag = "setup",
    request_body = Wizard,
    responses((status = 200, body = SetupAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<Wizard>,
) -> ApiResult<Json<SetupAnswer>> {
    let problems = body.check();
    if !problems.is_empty() {
        return Err(ApiError::InvalidConfig(problems));
    }
    let current: ConfigReply = state.daemon.ask(&Request::GetConfig).await?;
    let base = Config::from_toml(&current.toml).map_err(|e| {
        ApiError::Conflict(format!(
            "the running config does not validate, fix it first: {e}"
        ))
    })?;
    let new = body.to_config(&base).map_err(ApiError::InvalidConfig)?;
    let toml = toml::to_string(&new).map_err(ApiError::internal)?;
    let answer = apply_toml(&state, &who, toml).await?;
    let timezone = set_timezone(&state, &body.timezone).await;
    state
        .wizard
        .mark_done(&body, &who.username, timezone.set)
        .map_err(|e| ApiError::Internal(format!("cannot save setup state: {e}")))?;
    let wans: Vec<_> = body
        .wans
        .iter()
        .map(|w| json!({ "name": w.name, "mode": w.mode, "vlan": w.vlan }))
        .collect();
    state
        .audit
        .record(
            &who,
            ip,
            "setup.apply",
            json!({ "wans": wans, "lan": body.lan.interface, "timezone": body.timezone,
                    "timezone_set": timezone.set, "pending": answer.pending }),
        )
        .await;
    Ok(Json(SetupAnswer {
        applied: answer,
        timezone,
    }))
}

/// Ask the daemon to set the system time zone; a refusal (no timedated here) is reported,
/// not an error: the config change is live already.
async fn set_timezone(state: &AppState, name: &str) -> TimezoneOutcome {
    let req = Request::SetTimezone { name: name.into() };
    let (set, message) = match state.daemon.ask::<Done>(&req).await {
        Ok(done) => (true, done.message),
        Err(e) => (false, e.into_body().message),
    };
    if !set {
        tracing::warn!(timezone = name, "time zone not set: {message}");
    }
    TimezoneOutcome {
        name: name.into(),
        set,
        message,
    }
}
