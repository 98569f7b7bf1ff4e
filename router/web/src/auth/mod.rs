//! Who is asking and what they may do: users with argon2id password hashes, in-memory
//! sessions, API keys, roles, the Origin check for cookie-authenticated changes, the login
//! rate limit, and the first-boot default password.

mod extract;
mod keys;
mod limiter;
mod origin;
mod password;
mod sessions;
mod users;

pub use extract::{Admin, AnyUser, Auth, MinRole, Operator, SetupAdmin, Viewer};
pub use keys::{ApiKey, KeyStore};
pub use limiter::LoginLimiter;
pub use origin::origin_matches;
pub use password::{HashCost, Hasher};
pub use sessions::{Session, Sessions, COOKIE, SESSION_IDLE, SESSION_MAX};
pub use users::{User, UserStore, DEFAULT_PASSWORD, DEFAULT_USER};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Ordered: each role can do everything the ones below it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Read, and the controls: enable, disable, maintenance.
    Operator,
    /// Everything: config, users, keys, audit.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The `rsid` cookie (its token).
    Session(String),
    /// An API key (its id).
    Key(String),
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name, or `key:<id>` for an API key.
    pub username: String,
    pub role: Role,
    pub credential: Credential,
}
