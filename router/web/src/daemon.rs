//! Async client of the daemon's control socket: one JSON line out, one JSON line back, on a
//! fresh connection, within a timeout. An unreachable or silent daemon is a 502; a refusal
//! (`{"ok": false, ...}`) is a 400 with fields when it lists config errors, else a 409.

use super::error::{ApiError, FieldError};
use routeros_shared::control::Request;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Longest answer accepted (a config history or event list is far smaller).
const MAX_ANSWER: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct DaemonClient {
    path: PathBuf,
    timeout: Duration,
}

impl DaemonClient {
    pub fn new(path: &Path, timeout: Duration) -> Self {
        Self {
            path: path.to_path_buf(),
            timeout,
        }
    }

    /// The raw answer, `ok: false` included.
    pub async fn call(&self, req: &Request) -> Result<Value, ApiError> {
        let line = serde_json::to_string(req).map_err(ApiError::internal)?;
        match tokio::time::timeout(self.timeout, self.exchange(line)).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::DaemonUnreachable(format!(
                "routeros-watchdog did not answer within {} s",
                self.timeout.as_secs_f64()
            ))),
        }
    }

    /// The answer of a request the daemon carried out; refusals become errors.
    pub async fn ok(&self, req: &Request) -> Result<Value, ApiError> {
        let answer = self.call(req).await?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        Err(refusal(&answer))
    }

    async fn exchange(&self, mut line: String) -> Result<Value, ApiError> {
        let unreachable = |e: std::io::Error| {
            ApiError::DaemonUnreachable(format!(
                "cannot reach routeros-watchdog at {}: {e}",
                self.path.display()
            ))
        };
        let stream = UnixStream::connect(&self.path).await.map_err(unreachable)?;
        let (read, mut write) = stream.into_split();
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(unreachable)?;
        let mut answer = String::new();
        let n = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_ANSWER))
            .read_line(&mut answer)
            .await
            .map_err(unreachable)?;
        if n == 0 {
            return Err(ApiError::DaemonUnreachable(
                "routeros-watchdog closed the connection without answering".into(),
            ));
        }
        serde_json::from_str(&answer)
            .map_err(|e| ApiError::DaemonUnreachable(format!("bad answer from the daemon: {e}")))
    }
}

/// `{"ok": false, "errors": [{path, reason}]}` -> 400 invalid_config; `{"error": msg}` -> 409.
pub fn refusal(answer: &Value) -> ApiError {
    if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
        let fields: Vec<FieldError> = errors
            .iter()
            .map(|e| {
                let s = |k| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                FieldError::new(s("path"), s("reason"))
            })
            .collect();
        if !fields.is_empty() {
            return ApiError::InvalidConfig(fields);
        }
    }
    let message = answer
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("the daemon refused the request");
    ApiError::Conflict(message.to_string())
}
