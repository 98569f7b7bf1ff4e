//! The `Auth<R>` extractor: authenticates the request (API key or session cookie), applies
//! the Origin check to cookie-authenticated changes, the first-boot setup gate and the
//! minimum role `R`. Handlers name what they need: `Viewer`, `Operator`, `Admin`, or the
//! setup-time variants `AnyUser` and `SetupAdmin`.

use super::{origin_matches, Credential, Principal, Role, COOKIE};
use crate::error::ApiError;
use crate::extract::client_ip;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use std::marker::PhantomData;
use std::ops::Deref;

/// The least role a route needs, and whether it stays open while the default password is
/// in force.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
    const DURING_SETUP: bool = false;
}

pub struct ViewerRole;
pub struct OperatorRole;
pub struct AdminRole;
pub struct AnyRoleDuringSetup;
pub struct AdminDuringSetup;

impl MinRole for ViewerRole {
    const ROLE: Role = Role::Viewer;
}
impl MinRole for OperatorRole {
    const ROLE: Role = Role::Operator;
}
impl MinRole for AdminRole {
    const ROLE: Role = Role::Admin;
}
impl MinRole for AnyRoleDuringSetup {
    const ROLE: Role = Role::Viewer;
    const DURING_SETUP: bool = true;
}
impl MinRole for AdminDuringSetup {
    const ROLE: Role = Role::Admin;
    const DURING_SETUP: bool = true;
}

pub type Viewer = Auth<ViewerRole>;
pub type Operator = Auth<OperatorRole>;
pub type Admin = Auth<AdminRole>;
/// Any logged-in caller, also while only the setup wizard is open (session, logout).
pub type AnyUser = Auth<AnyRoleDuringSetup>;
/// An admin, also while only the setup wizard is open (changing the default password).
pub type SetupAdmin = Auth<AdminDuringSetup>;

pub struct Auth<R: MinRole> {
    pub principal: Principal,
    _role: PhantomData<R>,
}

impl<R: MinRole> Deref for Auth<R> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<R: MinRole> FromRequestParts<AppState> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state).await?;
        if !R::DURING_SETUP && state.users.default_password_active() {
            return Err(ApiError::SetupRequired);
        }
        if principal.role < R::ROLE {
            return Err(ApiError::Forbidden(format!(
                "this needs the {} role; {} has {}",
                R::ROLE.as_str(),
                principal.username,
                principal.role.as_str()
            )));
        }
        Ok(Auth {
            principal,
            _role: PhantomData,
        })
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let key = match state.keys.lookup_cached(token) {
            Some(key) => key,
            None => {
                // Each uncached key costs an argon2 run: bad keys count as failed logins.
                let ip = client_ip(parts);
                let mark = state
                    .limiter
                    .begin(ip)
                    .map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })?;
                let key = state
                    .keys
                    .authenticate(token, &state.hasher)
                    .await
                    .ok_or(ApiError::Unauthorized)?;
                state.limiter.forgive(&ip, mark);
                key
            }
        };
        return Ok(Principal {
            username: format!("key:{}", key.id),
            role: key.role,
            credential: Credential::Key(key.id),
        });
    }
    let token = cookie(&parts.headers, COOKIE).ok_or(ApiError::Unauthorized)?;
    let session = state.sessions.get(&token).ok_or(ApiError::Unauthorized)?;
    if changes_state(&parts.method) && !origin_matches(&parts.headers) {
        return Err(ApiError::Origin);
    }
    Ok(Principal {
        username: session.username,
        role: session.role,
        credential: Credential::Session(token),
    })
}

/// Methods that may change something (everything but GET/HEAD/OPTIONS).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of cookie `name` from the Cookie header(s).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}
