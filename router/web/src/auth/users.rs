//! Users and their argon2id password hashes in `users.json`. Until that file exists (first
//! boot) the only user is `admin` / `routeros123`, good for the setup wizard only; setting
//! the new password writes the file and the default stops working for good.

use super::{Hasher, Role};
use crate::error::ApiError;
use crate::store;
use routeros_shared::events::now_ms;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub const DEFAULT_USER: &str = "admin";
pub const DEFAULT_PASSWORD: &str = "routeros123";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
    pub created_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    users: Vec<User>,
}

pub struct UserStore {
    path: PathBuf,
    /// `None` while the default password is in force (no `users.json` yet).
    users: RwLock<Option<Vec<User>>>,
}

impl UserStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("users.json");
        let users = store::read_json::<UsersFile>(&path)?.map(|f| f.users);
        Ok(Self {
            path,
            users: RwLock::new(users),
        })
    }

    /// First boot: only `admin`/`routeros123`, only for the wizard.
    pub fn default_password_active(&self) -> bool {
        self.users.read().expect("users lock").is_none()
    }

    /// The user's role when the password is right.
    pub async fn check(&self, username: &str, password: &str, hasher: &Hasher) -> Option<Role> {
        let stored = {
            let users = self.users.read().expect("users lock");
            match users.as_ref() {
                None => {
                    let ok = username == DEFAULT_USER && password == DEFAULT_PASSWORD;
                    return ok.then_some(Role::Admin);
                }
                Some(users) => users
                    .iter()
                    .find(|u| u.username == username)
                    .map(|u| (u.hash.clone(), u.role)),
            }
        };
        match stored {
            Some((hash, role)) => hasher
                .verify(password.to_string(), hash)
                .await
                .then_some(role),
            None => {
                hasher.dummy_verify().await;
                None
            }
        }
    }

    /// Replace the default password: writes `users.json` with `admin` and the new hash.
    pub async fn finish_setup(&self, new_password: &str, hasher: &Hasher) -> Result<(), ApiError> {
        if !self.default_password_active() {
            return Err(ApiError::Conflict(
                "the default password was already changed".into(),
            ));
        }
        let hash = hasher
            .hash(new_password.to_string())
            .await
            .map_err(ApiError::internal)?;
        let mut users = self.users.write().expect("users lock");
        if users.is_some() {
            return Err(ApiError::Conflict(
                "the default password was already changed".into(),
            ));
        }
        let list = vec![User {
            username: DEFAULT_USER.into(),
            role: Role::Admin,
            hash,
            created_ms: now_ms(),
        }];
        self.save(&list)?;
        *users = Some(list);
        Ok(())
    }

    /// `(username, role)` of every user.
    pub fn list(&self) -> Vec<(String, Role)> {
        match self.users.read().expect("users lock").as_ref() {
            None => vec![(DEFAULT_USER.into(), Role::Admin)],
            Some(users) => users.iter().map(|u| (u.username.clone(), u.role)).collect(),
        }
    }

    pub fn role_of(&self, username: &str) -> Option<Role> {
        self.list()
            .into_iter()
            .find(|(name, _)| name == username)
            .map(|(_, role)| role)
    }

    pub async fn create(
        &self,
        username: &str,
        password: &str,
        role: Role,
        hasher: &Hasher,
    ) -> Result<(), ApiError> {
        if self.role_of(username).is_some() {
            return Err(ApiError::Conflict(format!("user `{username}` exists")));
        }
        let hash = hasher
            .hash(password.to_string())
            .await
            .map_err(ApiError::internal)?;
        let mut guard = self.users.write().expect("users lock");
        let Some(users) = guard.as_ref() else {
            return Err(ApiError::SetupRequired);
        };
        if users.iter().any(|u| u.username == username) {
            return Err(ApiError::Conflict(format!("user `{username}` exists")));
        }
        let mut next = users.clone();
        next.push(User {
            username: username.into(),
            role,
            hash,
            created_ms: now_ms(),
        });
        self.save(&next)?;
        *guard = Some(next);
        Ok(())
    }

    /// Remove a user; the last admin cannot be removed.
    pub fn delete(&self, username: &str) -> Result<(), ApiError> {
        let mut guard = self.users.write().expect("users lock");
        let Some(users) = guard.as_ref() else {
            return Err(ApiError::SetupRequired);
        };
        let Some(user) = users.iter().find(|u| u.username == username) else {
            return Err(ApiError::NotFound(format!("no user `{username}`")));
        };
        let admins = users.iter().filter(|u| u.role == Role::Admin).count();
        if user.role == Role::Admin && admins == 1 {
            return Err(ApiError::Conflict("cannot delete the last admin".into()));
        }
        let next: Vec<User> = users
            .iter()
            .filter(|u| u.username != username)
            .cloned()
            .collect();
        self.save(&next)?;
        *guard = Some(next);
        Ok(())
    }

    fn save(&self, users: &[User]) -> Result<(), ApiError> {
        let file = UsersFile {
            users: users.to_vec(),
        };
        store::write_json(&self.path, &file)
            .map_err(|e| ApiError::Internal(format!("cannot save users: {e}")))
    }
}
