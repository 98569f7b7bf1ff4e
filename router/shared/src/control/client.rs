//! Synchronous client (the CLIs, tests): one request, one answer, on a fresh connection.
//! Every step has a time limit, so a hung or overloaded daemon gives a clear error instead
//! of a CLI that never returns.

use super::Request;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How long [`call`] waits for each step (connecting, sending, the answer).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest answer read (an event list or config history is far smaller).
const MAX_ANSWER: u64 = 8 << 20;

/// Send one request and wait for its raw answer, [`DEFAULT_CALL_TIMEOUT`] per step.
pub fn call(path: &Path, req: &Request) -> Result<serde_json::Value, String> {
    call_with_timeout(path, req, DEFAULT_CALL_TIMEOUT)
}

/// [`call`] with another limit per step (connect, send, answer).
pub fn call_with_timeout(
    path: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let silent = || {
        format!(
            "routeros-watchdog at {} did not answer within {} s (is it hung or overloaded? try: systemctl status routeros-watchdog)",
            path.display(),
            timeout.as_secs_f64()
        )
    };
    let stream = connect(path, timeout).map_err(|e| match e {
        ConnectError::TimedOut => format!(
            "routeros-watchdog at {} did not accept the connection within {} s (its backlog is full: is it hung?)",
            path.display(),
            timeout.as_secs_f64()
        ),
        ConnectError::Io(e) => format!(
            "cannot reach the routeros-watchdog daemon at {}: {e} (is it running? try: systemctl status routeros-watchdog)",
            path.display()
        ),
    })?;
    let io_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => silent(),
        _ => format!("routeros-watchdog at {}: {e}", path.display()),
    };
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.set_read_timeout(Some(timeout)))
        .map_err(io_error)?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    // A daemon with every session busy answers "busy" and closes without reading: the
    // write may then fail, but its answer is there to read.
    let sent = (&stream).write_all(line.as_bytes());
    let mut answer = String::new();
    let read = BufReader::new((&stream).take(MAX_ANSWER)).read_line(&mut answer);
    match (sent, read) {
        (_, Ok(n)) if n > 0 => {}
        (Err(e), _) | (Ok(()), Err(e)) => return Err(io_error(e)),
        (Ok(()), Ok(_)) => {
            return Err(format!(
                "routeros-watchdog at {} closed the connection without answering",
                path.display()
            ))
        }
    }
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from daemon: {e}"))
}

enum ConnectError {
    TimedOut,
    Io(std::io::Error),
}

/// `connect` on a Unix socket blocks while the listener's backlog is full (a daemon that
/// stopped accepting) and std offers no timeout for it: connect on a helper thread and stop
/// waiting after `timeout` (the thread ends when the connect does, or with the process).
fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, ConnectError> {
    let (tx, rx) = mpsc::channel();
    let path: PathBuf = path.to_path_buf();
    std::thread::Builder::new()
        .name("control-connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(path));
        })
        .map_err(ConnectError::Io)?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(ConnectError::Io),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ConnectError::TimedOut),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ConnectError::Io(std::io::Error::other(
            "the connecting thread ended without a result",
        ))),
    }
}
