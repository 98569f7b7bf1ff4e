//! The router config: read it (TOML and its JSON form), change it (validated here first,
//! then commit-confirm through the daemon), confirm, list versions, roll back.

use crate::auth::{Admin, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{ApiJson, ClientIp};
use crate::pppoe_secret;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use routeros_shared::config::Config;
use routeros_shared::control::{
    Applied, ConfigReply, Done, PendingInfo, Request, VersionsReply, CONFIRM_SECONDS,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigView {
    /// The config file as saved, without any PPPoE `password` (write-only).
    pub toml: String,
    /// The same parsed into its JSON form (null if the file does not validate). Each
    /// `wan_interfaces[i].pppoe` has no `password` (write-only) but `password_set` (bool,
    /// read-only) and, once the daemon stored it, `password_file`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub version: Option<u64>,
    /// A change waiting for confirmation.
    pub pending: Option<PendingInfo>,
    /// Seconds a change stays live unconfirmed before it rolls back by itself.
    pub confirm_seconds: u32,
}

/// A change that is live and rolls back unless confirmed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingAnswer {
    pub pending: PendingInfo,
    pub version: Option<u64>,
    /// Seconds it stays live unconfirmed (`pending.rollback_at_ms` is the deadline).
    pub confirm_seconds: u32,
}

/// Either the JSON form (`config`) or the TOML text (`toml`). A WAN's `pppoe` section with
/// neither `password` nor `password_file` keeps the WAN's current password; `password` (write
/// only) sets a new one, which the daemon moves into a root-only file. `password_set` (as
/// GET shows it) is read-only and ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigPut {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default)]
    pub toml: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    pub version: u64,
}

/// The JSON form of a config into a validated [`Config`]: the same parser and checks as
/// the TOML file, so every problem is named by its TOML path with the same reason.
pub fn config_from_json(value: Value) -> Result<Config, Vec<FieldError>> {
    Config::from_json(value).map_err(|errors| errors.0)
}

/// Validate locally (nothing reaches the daemon if this fails).
pub fn validate_toml(text: &str) -> Result<Config, ApiError> {
    Config::from_toml(text).map_err(|errors| ApiError::InvalidConfig(errors.0))
}

/// Forward a validated text as `apply_config` (commit-confirm) and refresh the live status.
pub async fn apply_toml(
    state: &AppState,
    who: &Principal,
    toml: String,
) -> ApiResult<PendingAnswer> {
    let answer: Applied = state
        .daemon
        .ask(&Request::ApplyConfig {
            toml,
            confirm_seconds: CONFIRM_SECONDS,
            by: who.username.clone(),
        })
        .await?;
    refresh_later(state);
    Ok(pending_answer(answer))
}

fn pending_answer(answer: Applied) -> PendingAnswer {
    PendingAnswer {
        pending: answer.pending,
        version: answer.version,
        confirm_seconds: CONFIRM_SECONDS,
    }
}

/// Push a new status to the streams soon, without making the caller wait.
fn refresh_later(state: &AppState) {
    let telemetry = state.telemetry.clone();
    tokio::spawn(async move {
        let _ = telemetry.refresh().await;
    });
}

/// The config: TOML, JSON form, version, pending change.
#[utoipa::path(get, path = "/api/v1/config", tag = "config",
    responses((status = 200, body = ConfigView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn get_config(State(state): State<AppState>, _who: Admin) -> ApiResult<Json<ConfigView>> {
    let answer: ConfigReply = state.daemon.ask(&Request::GetConfig).await?;
    let config = Config::from_toml(&answer.toml)
        .ok()
        .and_then(|c| serde_json::to_value(c).ok())
        .map_or(Value::Null, |mut v| {
            pppoe_secret::redact_json(&mut v);
            v
        });
    Ok(Json(ConfigView {
        toml: pppoe_secret::redact_toml(&answer.toml),
        config,
        version: answer.version,
        pending: answer.pending,
        confirm_seconds: answer.confirm_seconds,
    }))
}

/// Change the config: validated here (400 with every field), then live at once and rolled
/// back after 60 s unless confirmed.
#[utoipa::path(put, path = "/api/v1/config", tag = "config",
    request_body = ConfigPut,
    responses((status = 200, body = PendingAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn put_config(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<ConfigPut>,
) -> ApiResult<Json<PendingAnswer>> {
    let (toml, source) = match (body.config, body.toml) {
        (Some(mut value), None) => {
            let running = if pppoe_secret::json_needs_running(&value) {
                running_config(&state).await?
            } else {
                None
            };
            pppoe_secret::keep_json(&mut value, running.as_ref());
            let cfg = config_from_json(value).map_err(ApiError::InvalidConfig)?;
            (toml::to_string(&cfg).map_err(ApiError::internal)?, "json")
        }
        (None, Some(text)) => match running_config_for(&state, &text).await? {
            Some(running) => (pppoe_secret::keep_toml(&text, &running), "toml"),
            None => (text, "toml"),
        },
        _ => {
            return Err(ApiError::bad_field(
                "config",
                "send exactly one of `config` (JSON form) or `toml`",
            ))
        }
    };
    validate_toml(&toml)?;
    let answer = apply_toml(&state, &who, toml).await?;
    state
        .audit
        .record(
            &who,
            ip,
            "config.apply",
            json!({ "source": source, "version": answer.version, "pending": answer.pending }),
        )
        .await;
    Ok(Json(answer))
}

/// The running config, when it validates (else there is nothing to keep passwords from).
async fn running_config(state: &AppState) -> ApiResult<Option<Config>> {
    let current: ConfigReply = state.daemon.ask(&Request::GetConfig).await?;
    Ok(Config::from_toml(&current.toml).ok())
}

/// The running config when `text` has a PPPoE section that keeps the current password.
async fn running_config_for(state: &AppState, text: &str) -> ApiResult<Option<Config>> {
    if pppoe_secret::toml_needs_running(text) {
        running_config(state).await
    } else {
        Ok(None)
    }
}

/// Keep the pending change (must be a new request after the change).
#[utoipa::path(post, path = "/api/v1/config/confirm", tag = "config",
    request_body = ConfirmBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> ApiResult<StatusCode> {
    let _: Done = state
        .daemon
        .ask(&Request::ConfirmConfig {
            id: body.id.clone(),
        })
        .await?;
    state
        .audit
        .record(&who, ip, "config.confirm", json!({ "id": body.id }))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Saved versions, oldest first.
#[utoipa::path(get, path = "/api/v1/config/history", tag = "config",
    responses((status = 200, body = VersionsReply),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn history(State(state): State<AppState>, _who: Admin) -> ApiResult<Json<VersionsReply>> {
    Ok(Json(state.daemon.ask(&Request::ConfigHistory).await?))
}

/// Apply a saved version (commit-confirm, like PUT).
#[utoipa::path(post, path = "/api/v1/config/rollback", tag = "config",
    request_body = RollbackBody,
    responses((status = 200, body = PendingAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<Json<PendingAnswer>> {
    let versions: VersionsReply = state.daemon.ask(&Request::ConfigHistory).await?;
    if !versions.versions.iter().any(|v| v.version == body.version) {
        return Err(ApiError::NotFound(format!(
            "no saved config version {}",
            body.version
        )));
    }
    let answer: Applied = state
        .daemon
        .ask(&Request::RollbackConfig {
            version: body.version,
            by: who.username.clone(),
        })
        .await?;
    refresh_later(&state);
    let answer = pending_answer(answer);
    state
        .audit
        .record(
            &who,
            ip,
            "config.rollback",
            json!({ "to_version": body.version, "version": answer.version, "pending": answer.pending }),
        )
        .await;
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "wan_interfaces": [{"name": "wan1", "weight": 2}, {"name": "wan2"}],
            "lan": {"interface": "lan0", "address": "192.168.1.1/24"},
            "health_check": {"targets": ["192.0.2.1"]},
        })
    }

    #[test]
    fn json_form_round_trips_through_toml() {
        let cfg = config_from_json(sample()).unwrap();
        let text = toml::to_string(&cfg).unwrap();
        let back = validate_toml(&text).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn json_form_errors_have_toml_paths() {
        let mut v = sample();
        v["wan_interfaces"][0]["weight"] = json!("heavy");
        v["lan"]["colour"] = json!("blue");
        let errs = config_from_json(v).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"wan_interfaces[0].weight"), "{errs:?}");

        let mut v = sample();
        v["lan"]["colour"] = json!("blue");
        let errs = config_from_json(v).unwrap_err();
        assert_eq!(errs, vec![FieldError::new("lan.colour", "unknown key")]);

        let mut v = sample();
        v["lan"].as_object_mut().unwrap().remove("interface");
        let errs = config_from_json(v).unwrap_err();
        assert_eq!(errs[0].path, "lan.interface", "{errs:?}");
    }
}
