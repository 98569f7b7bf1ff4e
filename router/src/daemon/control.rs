//! The control socket: newline-delimited JSON over a Unix stream socket, root-only (0600).
//! Each line is a [`Request`]; the daemon answers with one JSON line. The CLIs and the web
//! server are clients; the daemon stays the only process that changes the kernel.

use crate::events::EventKind;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Default socket path of the installed daemon.
pub const DEFAULT_SOCKET: &str = "/run/routeros/control.sock";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Everything the daemon knows about each WAN and the last apply.
    Status,
    /// Re-read and apply the config file; refused (state untouched) if it does not validate.
    Reload,
    /// Take a WAN out of service until enabled (its connections are moved off it).
    Disable { wan: String },
    /// Put a disabled or maintained WAN back into service.
    Enable { wan: String },
    /// For `seconds`: take `wan` out of service, or with no WAN pause failover router-wide.
    /// (The CLI speaks minutes; seconds let tests and the web UI use short windows.)
    Maintenance { seconds: u32, wan: Option<String> },
    /// Recent events, optionally after a time, of one WAN, of one kind.
    Events {
        #[serde(default)]
        since_ms: Option<u64>,
        #[serde(default)]
        wan: Option<String>,
        #[serde(default)]
        kind: Option<EventKind>,
    },
    /// Latency/jitter/loss points of one WAN over the last `seconds`.
    History { wan: String, seconds: u32 },
    /// The config file, its version and any change waiting for confirmation.
    GetConfig,
    /// Validate, save and apply a new config at once; it is rolled back by itself after
    /// `confirm_seconds` unless confirmed (commit-confirm), so a change that cuts the admin
    /// off undoes itself.
    ApplyConfig {
        toml: String,
        confirm_seconds: u32,
        #[serde(default)]
        by: String,
    },
    /// Keep the pending change.
    ConfirmConfig { id: String },
    /// Saved versions, oldest first.
    ConfigHistory,
    /// Apply a saved version (also commit-confirm).
    RollbackConfig {
        version: u64,
        #[serde(default)]
        by: String,
    },
}

/// Longest commit-confirm window accepted.
pub const MAX_CONFIRM_SECONDS: u32 = 3600;

/// Longest maintenance window accepted (one week).
pub const MAX_MAINTENANCE_MINUTES: u32 = 7 * 24 * 60;
pub const MAX_MAINTENANCE_SECONDS: u32 = MAX_MAINTENANCE_MINUTES * 60;

/// A request with the channel its answer goes back on.
pub type Envelope = (Request, oneshot::Sender<serde_json::Value>);

/// Bind the socket (replacing a stale one) and serve it until the daemon exits. Only root
/// may connect, plus members of `group` when given (the unprivileged web server's group).
pub fn serve(
    path: &Path,
    group: Option<&str>,
    to_daemon: mpsc::Sender<Envelope>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    let mode = match group {
        Some(name) => {
            let gid = nix::unistd::Group::from_name(name)
                .map_err(std::io::Error::other)?
                .ok_or_else(|| std::io::Error::other(format!("no group named {name}")))?
                .gid;
            nix::unistd::chown(path, None, Some(gid)).map_err(std::io::Error::other)?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(session(stream, to_daemon.clone()));
                }
                Err(e) => tracing::warn!("control socket accept: {e}"),
            }
        }
    });
    Ok(())
}

async fn session(stream: UnixStream, to_daemon: mpsc::Sender<Envelope>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if to_daemon.send((req, tx)).await.is_err() {
                    break;
                }
                rx.await
                    .unwrap_or_else(|_| error("daemon is shutting down"))
            }
            Err(e) => error(&format!("bad request: {e}")),
        };
        let mut text = answer.to_string();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// `{"ok": false, "error": msg}`
pub fn error(msg: &str) -> serde_json::Value {
    serde_json::json!({ "ok": false, "error": msg })
}

/// Send one request and wait for its answer (used by the CLIs).
pub fn call(path: &Path, req: &Request) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the routeros-watchdog daemon at {}: {e} (is it running? try: systemctl status routeros-watchdog)",
            path.display()
        )
    })?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from daemon: {e}"))
}
