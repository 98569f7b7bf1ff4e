//! argon2id hashing of passwords and API-key secrets, off the async threads and at most two
//! at a time (each hash holds its memory cost in RAM: a burst of logins must not blow up the
//! process on a small router).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};

/// How expensive new hashes are. Verification always uses the parameters stored in the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's argon2id setting for constrained hosts: 7 MiB, 5 passes, 1 lane.
    Standard,
    /// Cheap hashes for tests (never use in production).
    Insecure,
}

impl HashCost {
    fn params(self) -> Params {
        let (m, t) = match self {
            HashCost::Standard => (7 * 1024, 5),
            HashCost::Insecure => (Params::MIN_M_COST, 1),
        };
        Params::new(m, t, 1, None).expect("valid argon2 parameters")
    }
}

#[derive(Clone)]
pub struct Hasher {
    cost: HashCost,
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    pub fn new(cost: HashCost) -> Self {
        Self {
            cost,
            permits: Arc::new(Semaphore::new(2)),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    fn argon2(cost: HashCost) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params())
    }

    /// A PHC string `$argon2id$v=19$m=...,t=...,p=1$salt$hash` with a random salt.
    pub async fn hash(&self, secret: String) -> Result<String, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let cost = self.cost;
        tokio::task::spawn_blocking(move || {
            Self::argon2(cost)
                .hash_password(secret.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Whether `secret` matches the PHC string (false for malformed hashes).
    pub async fn verify(&self, secret: String, phc: String) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let cost = self.cost;
        tokio::task::spawn_blocking(move || {
            Self::argon2(cost)
                .verify_password(secret.as_bytes(), phc.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Spend about the time of a verification, for unknown user names (no timing oracle).
    pub async fn dummy_verify(&self) {
        let phc = self
            .dummy
            .get_or_init(|| async { self.hash("not a password".into()).await.unwrap_or_default() })
            .await
            .clone();
        let _ = self.verify("x".into(), phc).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::new(HashCost::Insecure);
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(h.verify("correct horse".into(), phc.clone()).await);
        assert!(!h.verify("wrong".into(), phc).await);
        assert!(!h.verify("x".into(), "garbage".into()).await);
    }

    #[test]
    fn standard_cost_is_argon2id_7mib() {
        let p = HashCost::Standard.params();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (7168, 5, 1));
    }
}
