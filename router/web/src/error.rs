//! The one error type of the web API: each variant has a status code and a stable `error`
//! code; the body is always `{"error", "message", "fields"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use routeros_shared::control::{Refusal, RefusalCode};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem located by its path: a TOML path (`wan_interfaces[0].weight`) for config
/// errors, a body path (`minutes`) for request bodies. The control protocol's type: the
/// daemon's field errors pass through unchanged.
pub use routeros_shared::control::FieldError;

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_config`, `origin`, `setup_required`.
    pub error: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
}

#[derive(Debug)]
pub enum ApiError {
    /// 400: unreadable body or query, or a value out of range.
    BadRequest {
        message: String,
        fields: Vec<FieldError>,
    },
    /// 400: the configuration does not validate (fields carry TOML paths).
    InvalidConfig(Vec<FieldError>),
    /// 401: no valid session cookie or API key.
    Unauthorized,
    /// 403 `forbidden`: the role is too low.
    Forbidden(String),
    /// 403 `origin`: a cookie-authenticated change without our own Origin.
    Origin,
    /// 403 `setup_required`: only the setup wizard is open until the password is changed.
    SetupRequired,
    /// 404.
    NotFound(String),
    /// 405.
    MethodNotAllowed,
    /// 409: refused in the current state (also: the daemon refused the request).
    Conflict(String),
    /// 413.
    PayloadTooLarge,
    /// 415: a JSON body without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 429 with Retry-After (seconds).
    RateLimited { retry_after_s: u64 },
    /// 502: the daemon's control socket did not answer.
    DaemonUnreachable(String),
    /// 503: a resource limit (e.g. too many event streams).
    Unavailable(String),
    /// 500.
    Internal(String),
}

impl ApiError {
    pub fn bad_field(path: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = FieldError::new(path, reason);
        ApiError::BadRequest {
            message: format!("{}: {}", field.path, field.reason),
            fields: vec![field],
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::InvalidConfig(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Origin | ApiError::SetupRequired => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::DaemonUnreachable(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::InvalidConfig(_) => "invalid_config",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Origin => "origin",
            ApiError::SetupRequired => "setup_required",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::DaemonUnreachable(_) => "daemon_unreachable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn into_body(self) -> ErrorBody {
        let error = self.code();
        let (message, fields) = match self {
            ApiError::BadRequest { message, fields } => (message, fields),
            ApiError::InvalidConfig(fields) => (
                format!(
                    "{} error{} in configuration; nothing changed",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
                fields,
            ),
            ApiError::Unauthorized => ("log in or send an API key".into(), vec![]),
            ApiError::Origin => (
                "cookie-authenticated changes must carry this server's Origin".into(),
                vec![],
            ),
            ApiError::SetupRequired => (
                "change the default password first (POST /api/v1/setup/password)".into(),
                vec![],
            ),
            ApiError::MethodNotAllowed => ("method not allowed on this path".into(), vec![]),
            ApiError::PayloadTooLarge => ("request body too large".into(), vec![]),
            ApiError::UnsupportedMediaType => {
                ("expected Content-Type: application/json".into(), vec![])
            }
            ApiError::RateLimited { retry_after_s } => (
                format!("too many failed attempts; retry in {retry_after_s} s"),
                vec![],
            ),
            ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::DaemonUnreachable(m)
            | ApiError::Unavailable(m) => (m, vec![]),
            ApiError::Internal(m) => {
                tracing::error!("internal error: {m}");
                ("internal error".into(), vec![])
            }
        };
        ErrorBody {
            error,
            message,
            fields,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.status())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = match &self {
            ApiError::RateLimited { retry_after_s } => Some(*retry_after_s),
            _ => None,
        };
        let mut response = (status, axum::Json(self.into_body())).into_response();
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// A daemon refusal by its code: 400 for bad requests and invalid configs (with their
/// fields), 404, 503 while the daemon is busy, 409 for everything else it refused.
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r.code {
            RefusalCode::BadRequest => ApiError::BadRequest {
                message: r.message,
                fields: r.fields,
            },
            RefusalCode::InvalidConfig => ApiError::InvalidConfig(r.fields),
            RefusalCode::NotFound => ApiError::NotFound(r.message),
            RefusalCode::Busy => ApiError::Unavailable(r.message),
            RefusalCode::Conflict
            | RefusalCode::NoPending
            | RefusalCode::ApplyFailed
            | RefusalCode::Internal
            | RefusalCode::Unsupported
            | RefusalCode::Unknown => ApiError::Conflict(r.message),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
