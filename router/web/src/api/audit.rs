//! The audit trail (admin only).

use crate::audit::AuditEntry;
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const DEFAULT_LIMIT: usize = 500;
pub(crate) const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

/// The newest entries (default 500), oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("limit" = Option<usize>, Query, description = "newest N entries (1..=10000, default 500)")),
    responses((status = 200, body = AuditList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _who: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field(
            "limit",
            format!("{limit} is not in 1..={MAX_LIMIT}"),
        ));
    }
    let entries = state
        .audit
        .read(limit)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the audit log: {e}")))?;
    Ok(Json(AuditList { entries }))
}
