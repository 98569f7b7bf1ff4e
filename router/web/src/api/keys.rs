//! API keys (admin only): list, create (the key is shown once), delete.

use crate::auth::{Admin, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientIp};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// Longest key label (characters).
pub(crate) const MAX_LABEL: usize = 64;

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub role: Role,
    pub label: String,
    pub created_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub role: Role,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    /// `rk_<id>_<secret>`: send as `Authorization: Bearer <key>`. Shown only now.
    pub key: String,
    pub role: Role,
    pub label: String,
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, _who: Admin) -> Json<KeyList> {
    let keys = state
        .keys
        .list()
        .into_iter()
        .map(|k| KeyView {
            id: k.id,
            role: k.role,
            label: k.label,
            created_ms: k.created_ms,
        })
        .collect();
    Json(KeyList { keys })
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys",
    request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    if body.label.chars().count() > MAX_LABEL || body.label.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            "label",
            "at most 64 characters, no control characters",
        ));
    }
    let (key, token) = state
        .keys
        .create(body.role, &body.label, &state.hasher)
        .await?;
    state
        .audit
        .record(
            &who,
            ip,
            "key.create",
            json!({ "id": key.id, "role": key.role, "label": key.label }),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: key.id,
            key: token,
            role: key.role,
            label: key.label,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "key id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.keys.delete(&id)?;
    state
        .audit
        .record(&who, ip, "key.delete", json!({ "id": id }))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
