//! The audit trail: one JSON line per change (and per login) in `audit.jsonl`, appended with
//! a single write on an O_APPEND descriptor and synced. At 4 MiB the file is moved to
//! `audit.jsonl.1` (one generation kept) so a small flash disk never fills up.

use super::auth::{Principal, Role};
use routeros_shared::events::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;

const ROTATE_AT: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// User name, or `key:<id>` for an API key.
    pub user: String,
    pub role: Option<Role>,
    /// Client address.
    pub from: String,
    /// e.g. `login`, `wan.disable`, `config.apply`, `user.create`.
    pub action: String,
    pub detail: Value,
}

#[derive(Clone)]
pub struct AuditLog {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl AuditLog {
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("audit.jsonl"),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Record what an authenticated caller did.
    pub async fn record(&self, who: &Principal, from: IpAddr, action: &str, detail: Value) {
        self.record_as(&who.username, Some(who.role), from, action, detail)
            .await;
    }

    /// Record an event without an authenticated caller (e.g. a failed login).
    pub async fn record_as(
        &self,
        user: &str,
        role: Option<Role>,
        from: IpAddr,
        action: &str,
        detail: Value,
    ) {
        let entry = AuditEntry {
            at_ms: now_ms(),
            user: user.to_string(),
            role,
            from: from.to_string(),
            action: action.to_string(),
            detail,
        };
        let this = self.clone();
        let written = tokio::task::spawn_blocking(move || this.append(&entry)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("audit log {}: {e}", self.path.display()),
            Err(e) => tracing::error!("audit log task: {e}"),
        }
    }

    fn append(&self, entry: &AuditEntry) -> io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if fs::metadata(&self.path).is_ok_and(|m| m.len() >= ROTATE_AT) {
            fs::rename(&self.path, self.path.with_extension("jsonl.1"))?;
        }
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()
    }

    /// The newest `limit` entries, oldest first (lines that do not parse are skipped).
    pub async fn read(&self, limit: usize) -> io::Result<Vec<AuditEntry>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = this.lock.lock().unwrap_or_else(|e| e.into_inner());
            let text = match fs::read_to_string(&this.path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e),
            };
            let mut entries: Vec<AuditEntry> = text
                .lines()
                .rev()
                .filter_map(|l| serde_json::from_str(l).ok())
                .take(limit)
                .collect();
            entries.reverse();
            Ok(entries)
        })
        .await
        .map_err(io::Error::other)?
    }
}
