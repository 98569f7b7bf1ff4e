//! Users (admin only): list, create, delete.

use super::setup::password_problem;
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

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// Why a user name is not acceptable.
fn username_problem(name: &str) -> Option<&'static str> {
    let ok = (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with("key:");
    (!ok).then_some("1 to 32 letters, digits, '.', '_' or '-'")
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, _who: Admin) -> Json<UserList> {
    let users = state
        .users
        .list()
        .into_iter()
        .map(|(username, role)| UserView { username, role })
        .collect();
    Json(UserList { users })
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    if let Some(p) = username_problem(&body.username) {
        return Err(ApiError::bad_field("username", p));
    }
    if let Some(p) = password_problem(&body.password) {
        return Err(ApiError::bad_field("password", p));
    }
    state
        .users
        .create(&body.username, &body.password, body.role, &state.hasher)
        .await?;
    state
        .audit
        .record(
            &who,
            ip,
            "user.create",
            json!({ "username": body.username, "role": body.role }),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            username: body.username,
            role: body.role,
        }),
    ))
}

/// Delete a user and end their sessions (the last admin stays).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.users.delete(&name)?;
    state.sessions.remove_user(&name);
    state
        .audit
        .record(&who, ip, "user.delete", json!({ "username": name }))
        .await;
    Ok(StatusCode::NO_CONTENT)
}
