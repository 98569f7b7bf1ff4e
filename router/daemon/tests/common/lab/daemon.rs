//! Talking to the lab's daemon: start/stop, control requests, status and events, its log.

use std::thread;
use std::time::{Duration, Instant};

use routeros_shared::control::{self, Request};
use routeros_shared::events::EventKind;
use serde_json::Value;

use super::Lab;

impl Lab {
    pub fn daemon_stop(&self) {
        self.script_ok("daemon-stop");
    }

    /// `daemon-start`, then wait until the daemon answers and has applied its plan.
    pub fn daemon_start(&self) {
        self.script_ok("daemon-start");
        self.wait_daemon_ready();
    }

    /// The running daemon's pid (`ci/lab.sh` writes it to `daemon.pid`).
    pub fn daemon_pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.join("daemon.pid"))
            .expect("daemon pid file")
            .trim()
            .parse()
            .expect("pid")
    }

    /// One request over the control socket.
    pub fn control(&self, req: &Request) -> Result<Value, String> {
        control::call(&self.socket_path(), req)
    }

    /// Poll `status` until the daemon answers `ok` with a successful apply behind it.
    pub fn wait_daemon_ready(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let last = self.control(&Request::Status);
            if let Ok(status) = &last {
                if status["ok"] == true && !status["applied_at"].is_null() {
                    return status.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "[{}] daemon not ready within 15 s; last status: {last:?}\n{}",
                self.prefix,
                self.daemon_log_tail(40)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `status`, panicking (with the daemon log) unless the daemon answers `ok`.
    pub fn status(&self) -> Value {
        match self.control(&Request::Status) {
            Ok(s) if s["ok"] == true => s,
            other => panic!(
                "[{}] status failed: {other:?}\n{}",
                self.prefix,
                self.daemon_log_tail(30)
            ),
        }
    }

    /// Poll `status` every 50 ms until `check` returns `Some`; returns it and how long it
    /// took. On timeout panics naming `what`, with the last status of every WAN.
    pub fn wait_status<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> (T, Duration) {
        let start = Instant::now();
        loop {
            let status = self.status();
            if let Some(found) = check(&status) {
                return (found, start.elapsed());
            }
            assert!(
                start.elapsed() < timeout,
                "[{}] not within {timeout:?}: {what}\nlast status:\n{}\n{}",
                self.prefix,
                status_summary(&status),
                self.daemon_log_tail(40)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Events after `since_ms` (Unix ms), oldest first, optionally of one kind and/or WAN.
    pub fn events(&self, since_ms: u64, kind: Option<EventKind>, wan: Option<&str>) -> Vec<Value> {
        let req = Request::Events {
            since_ms: Some(since_ms),
            wan: wan.map(str::to_string),
            kind,
        };
        let answer = self
            .control(&req)
            .unwrap_or_else(|e| panic!("[{}] events: {e}", self.prefix));
        answer["events"]
            .as_array()
            .unwrap_or_else(|| panic!("events answer without `events`: {answer}"))
            .clone()
    }

    /// The last `n` lines of the daemon's log, for failure messages.
    pub fn daemon_log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.daemon_log_path())
            .unwrap_or_else(|e| format!("(no daemon log: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "----- {} (last {n} lines)\n{}\n-----",
            self.daemon_log_path().display(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    /// Poll the daemon log until a line after byte `from` contains `needle`; returns that line.
    pub fn wait_log_line(&self, from: usize, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(self.daemon_log_path()).unwrap_or_default();
            if let Some(line) = text
                .get(from..)
                .unwrap_or("")
                .lines()
                .find(|l| l.contains(needle))
            {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "[{}] no daemon log line containing {needle:?} within {timeout:?}\n{}",
                self.prefix,
                self.daemon_log_tail(30)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Current size of the daemon log (a position for [`Lab::wait_log_line`]).
    pub fn daemon_log_len(&self) -> usize {
        std::fs::metadata(self.daemon_log_path()).map_or(0, |m| usize::try_from(m.len()).unwrap())
    }
}

/// The entry of WAN `name` in a status answer (panics if there is none).
pub fn wan<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["wans"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no WAN {name} in status: {status}"))
}

/// One line per WAN with what failover tests look at, for failure messages.
pub fn status_summary(status: &Value) -> String {
    let mut lines = vec![format!("active_wans={}", status["active_wans"])];
    for w in status["wans"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  {} state={} active={} usable={} carrier={} disabled={} gateway={} latency_ms={} loss%={} connections={}",
            w["name"].as_str().unwrap_or("?"),
            w["state"],
            w["active"],
            w["usable"],
            w["carrier"],
            w["disabled"],
            w["gateway"],
            w["latency_ms"],
            w["loss_percent"],
            w["connections"]
        ));
    }
    lines.join("\n")
}
