//! API keys `rk_<id>_<secret>`: a random id and a 256-bit random secret, shown once at
//! creation; `keys.json` keeps only an argon2id hash of the secret, and each key is scoped
//! to a role. After the first successful argon2 check of a key, a BLAKE2b digest of its
//! secret is kept in memory so that each later request costs microseconds, not an argon2 run.

use super::{Hasher, Role};
use crate::error::ApiError;
use crate::store::{self, random_hex};
use blake2::{Blake2b256, Digest};
use routeros_shared::events::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const PREFIX: &str = "rk_";
const MAX_KEYS: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub role: Role,
    pub label: String,
    pub created_ms: u64,
    /// argon2id PHC string of the secret.
    pub hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<ApiKey>,
}

pub struct KeyStore {
    path: PathBuf,
    keys: RwLock<Vec<ApiKey>>,
    /// id -> BLAKE2b-256 of the secret, for keys already verified with argon2.
    verified: Mutex<HashMap<String, [u8; 32]>>,
}

impl KeyStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("keys.json");
        let keys = store::read_json::<KeysFile>(&path)?
            .map(|f| f.keys)
            .unwrap_or_default();
        Ok(Self {
            path,
            keys: RwLock::new(keys),
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn list(&self) -> Vec<ApiKey> {
        self.keys.read().expect("keys lock").clone()
    }

    /// A new key; the returned token is the only time the secret is seen.
    pub async fn create(
        &self,
        role: Role,
        label: &str,
        hasher: &Hasher,
    ) -> Result<(ApiKey, String), ApiError> {
        let id = random_hex(8);
        let secret = random_hex(32);
        let hash = hasher
            .hash(secret.clone())
            .await
            .map_err(ApiError::internal)?;
        let key = ApiKey {
            id: id.clone(),
            role,
            label: label.into(),
            created_ms: now_ms(),
            hash,
        };
        let mut keys = self.keys.write().expect("keys lock");
        if keys.len() >= MAX_KEYS {
            return Err(ApiError::Conflict(format!(
                "at most {MAX_KEYS} API keys; delete one first"
            )));
        }
        let mut next = keys.clone();
        next.push(key.clone());
        self.save(&next)?;
        *keys = next;
        Ok((key, format!("{PREFIX}{id}_{secret}")))
    }

    pub fn delete(&self, id: &str) -> Result<(), ApiError> {
        let mut keys = self.keys.write().expect("keys lock");
        if !keys.iter().any(|k| k.id == id) {
            return Err(ApiError::NotFound(format!("no API key `{id}`")));
        }
        let next: Vec<ApiKey> = keys.iter().filter(|k| k.id != id).cloned().collect();
        self.save(&next)?;
        *keys = next;
        self.verified.lock().expect("keys cache lock").remove(id);
        Ok(())
    }

    /// The key of a token already verified once (no argon2 run), else `None`.
    pub fn lookup_cached(&self, token: &str) -> Option<ApiKey> {
        let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
        let digest: [u8; 32] = Blake2b256::digest(secret.as_bytes()).into();
        if self.verified.lock().expect("keys cache lock").get(id) != Some(&digest) {
            return None;
        }
        self.keys
            .read()
            .expect("keys lock")
            .iter()
            .find(|k| k.id == id)
            .cloned()
    }

    /// The key a bearer token belongs to, if the token is valid.
    pub async fn authenticate(&self, token: &str, hasher: &Hasher) -> Option<ApiKey> {
        let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
        let key = self
            .keys
            .read()
            .expect("keys lock")
            .iter()
            .find(|k| k.id == id)
            .cloned();
        let Some(key) = key else {
            hasher.dummy_verify().await;
            return None;
        };
        let digest: [u8; 32] = Blake2b256::digest(secret.as_bytes()).into();
        if !hasher.verify(secret.to_string(), key.hash.clone()).await {
            return None;
        }
        // Only cache if the key was not deleted while we were verifying.
        let still_there = self
            .keys
            .read()
            .expect("keys lock")
            .iter()
            .any(|k| k.id == id);
        if still_there {
            self.verified
                .lock()
                .expect("keys cache lock")
                .insert(id.to_string(), digest);
            Some(key)
        } else {
            None
        }
    }

    fn save(&self, keys: &[ApiKey]) -> Result<(), ApiError> {
        let file = KeysFile {
            keys: keys.to_vec(),
        };
        store::write_json(&self.path, &file)
            .map_err(|e| ApiError::Internal(format!("cannot save API keys: {e}")))
    }
}
