//! One task per PPPoE line: write its options file, run pppd, follow its session, restart
//! it with backoff, stop it when the line goes. Every state change is sent on a channel
//! for the daemon's event loop; a snapshot per line feeds the status report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use routeros_shared::events::now_ms;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::backoff::{Backoff, Retry};
use super::options::{render_options, validate_line, write_private, LineError};
use super::process::{PppdCommand, PppdEvent, PppdProcess, Spawn, DEFAULT_PPPD};
use super::session::{SessionState, SessionTracker};
use super::PppoeLine;

/// Where the options files go: under the daemon's RuntimeDirectory (tmpfs, so the copy of
/// the password there does not outlive a reboot).
pub const DEFAULT_RUN_DIR: &str = "/run/routeros/pppd";
/// pppd answers SIGTERM with an LCP Terminate-Request and a PADT, and waits a few seconds
/// for the ack; a pppd still there after this is killed.
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// How the supervisor runs pppd.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The pppd binary (the tests give a fake).
    pub pppd: PathBuf,
    /// Directory of the per-line options files (created mode 0700).
    pub run_dir: PathBuf,
    pub backoff: Backoff,
    /// SIGTERM to SIGKILL.
    pub stop_grace: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            pppd: DEFAULT_PPPD.into(),
            run_dir: DEFAULT_RUN_DIR.into(),
            backoff: Backoff::default(),
            stop_grace: DEFAULT_STOP_GRACE,
        }
    }
}

/// A line's session for the status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSnapshot {
    pub wan: String,
    pub ifname: String,
    pub state: SessionState,
    /// The latest failure, kept while the line reconnects (and after it is up again).
    pub last_error: Option<String>,
    /// Unix ms of the last state change.
    pub since_ms: u64,
    /// pppd runs started after the first one (since the line's config last changed).
    pub restarts: u32,
    /// Unix ms of the next attempt while waiting out a backoff.
    pub retry_at_ms: Option<u64>,
}

/// A state change of one line: what the daemon turns into an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionChange {
    pub wan: String,
    pub ifname: String,
    pub from: SessionState,
    pub to: SessionState,
    /// Unix ms.
    pub at_ms: u64,
    /// When `to` is Down or AuthFailed: the wait before the next attempt.
    pub retry_in_ms: Option<u64>,
}

impl SessionChange {
    /// One line for the event log.
    pub fn message(&self) -> String {
        let wan = &self.wan;
        let retry = match self.retry_in_ms {
            Some(ms) if ms >= 1000 => format!("; retrying in {} s", ms / 1000),
            Some(ms) => format!("; retrying in {ms} ms"),
            None => String::new(),
        };
        match &self.to {
            SessionState::Connecting => format!("PPPoE connecting on {wan}"),
            SessionState::Up { local, peer } => {
                let verb = if self.from.is_up() {
                    "renegotiated"
                } else {
                    "up"
                };
                match peer {
                    Some(peer) => format!("PPPoE session {verb} on {wan}: {local} peer {peer}"),
                    None => format!("PPPoE session {verb} on {wan}: {local}"),
                }
            }
            SessionState::Down { last_error } => {
                format!("PPPoE session down on {wan}: {last_error}{retry}")
            }
            SessionState::AuthFailed { last_error } => {
                format!("PPPoE {last_error} on {wan}{retry}")
            }
            SessionState::Stopped => format!("PPPoE line {wan} stopped"),
        }
    }
}

/// A set of lines refused as a whole (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    #[error(transparent)]
    Invalid(#[from] LineError),
    #[error("PPPoE lines: WAN {0} is given twice")]
    DuplicateWan(String),
    #[error("PPPoE lines: {first} and {second} both want ppp device {ifname}")]
    DuplicateIfname {
        ifname: String,
        first: String,
        second: String,
    },
}

/// What a line task is told.
#[derive(Debug)]
enum Command {
    /// The line's config changed: stop pppd and start it with this one at once.
    Replace(PppoeLine),
    Stop,
}

/// The task of a removed line, until it has stopped its pppd.
struct Stopping {
    wan: String,
    done: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// A running line task.
struct LineHandle {
    line: PppoeLine,
    commands: mpsc::UnboundedSender<Command>,
    snapshot: Arc<Mutex<LineSnapshot>>,
    /// Becomes true when the task has stopped its pppd and removed its file.
    done: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// Runs one pppd per wanted PPPoE line. Call [`shutdown`](Self::shutdown) before exiting:
/// dropping it kills the pppds without a clean PPPoE goodbye (the ISP may then refuse a
/// new session until the old one times out on its side).
pub struct PppdSupervisor<S: Spawn = PppdCommand> {
    spawner: Arc<S>,
    cfg: Arc<SupervisorConfig>,
    changes: mpsc::UnboundedSender<SessionChange>,
    lines: BTreeMap<String, LineHandle>,
    /// Tasks of removed lines still stopping their pppd; new lines start after them, so a
    /// ppp device name or PPPoE session is free again when the new pppd asks for it.
    stopping: Vec<Stopping>,
}

impl PppdSupervisor<PppdCommand> {
    /// Runs `cfg.pppd`. The receiver gets every [`SessionChange`]; it is unbounded so that a
    /// line task never waits on the event loop (changes are few: one per state, at most
    /// one run per backoff wait).
    pub fn new(cfg: SupervisorConfig) -> (Self, mpsc::UnboundedReceiver<SessionChange>) {
        Self::with_spawner(PppdCommand::new(cfg.pppd.clone()), cfg)
    }
}

impl<S: Spawn> PppdSupervisor<S> {
    pub fn with_spawner(
        spawner: S,
        cfg: SupervisorConfig,
    ) -> (Self, mpsc::UnboundedReceiver<SessionChange>) {
        let (changes, rx) = mpsc::unbounded_channel();
        let supervisor = Self {
            spawner: Arc::new(spawner),
            cfg: Arc::new(cfg),
            changes,
            lines: BTreeMap::new(),
            stopping: Vec::new(),
        };
        (supervisor, rx)
    }

    /// Make the running lines these: start new ones, restart changed ones, stop removed
    /// ones, leave the others alone. Returns at once (stops and starts go on in the line
    /// tasks and show on the channel). Refuses the whole set, changing nothing, when a line
    /// is invalid or two share a WAN or ppp device. Must be called inside a tokio runtime.
    pub fn set_lines(&mut self, lines: Vec<PppoeLine>) -> Result<(), LinesError> {
        let wanted = check_lines(lines)?;
        let removed: Vec<String> = self
            .lines
            .keys()
            .filter(|wan| !wanted.contains_key(*wan))
            .cloned()
            .collect();
        for wan in removed {
            if let Some(handle) = self.lines.remove(&wan) {
                self.stop(wan, handle);
            }
        }
        self.stopping.retain(|s| !*s.done.borrow());
        for (wan, line) in wanted {
            match self.lines.get_mut(&wan) {
                Some(handle) if handle.line == line => {}
                Some(handle) => {
                    let _ = handle.commands.send(Command::Replace(line.clone()));
                    handle.line = line;
                }
                None => {
                    let handle = self.start(line);
                    self.lines.insert(wan, handle);
                }
            }
        }
        Ok(())
    }

    /// Every wanted line's session, by WAN name.
    pub fn snapshot(&self) -> Vec<LineSnapshot> {
        self.lines
            .values()
            .map(|h| lock(&h.snapshot).clone())
            .collect()
    }

    /// One line's session.
    pub fn line(&self, wan: &str) -> Option<LineSnapshot> {
        self.lines.get(wan).map(|h| lock(&h.snapshot).clone())
    }

    /// Stop every pppd (SIGTERM, SIGKILL after the grace) and wait until they are gone.
    pub async fn shutdown(&mut self) {
        for (wan, handle) in std::mem::take(&mut self.lines) {
            self.stop(wan, handle);
        }
        for stopping in std::mem::take(&mut self.stopping) {
            let _ = stopping.task.await;
        }
    }

    fn stop(&mut self, wan: String, handle: LineHandle) {
        let _ = handle.commands.send(Command::Stop);
        self.stopping.push(Stopping {
            wan,
            done: handle.done,
            task: handle.task,
        });
    }

    fn start(&self, line: PppoeLine) -> LineHandle {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(false);
        let snapshot = Arc::new(Mutex::new(LineSnapshot {
            wan: line.wan.clone(),
            ifname: line.ifname.clone(),
            // Until its task runs (after the stops it waits for): its first change is
            // Stopped -> Connecting, its last Connecting/Up/... -> Stopped.
            state: SessionState::Stopped,
            last_error: None,
            since_ms: now_ms(),
            restarts: 0,
            retry_at_ms: None,
        }));
        let task = LineTask {
            spawner: Arc::clone(&self.spawner),
            cfg: Arc::clone(&self.cfg),
            line: line.clone(),
            commands: commands_rx,
            changes: self.changes.clone(),
            snapshot: Arc::clone(&snapshot),
            retry: Retry::default(),
            restarts: 0,
        };
        let after: Vec<_> = self.stopping.iter().map(|s| s.done.clone()).collect();
        let task = tokio::spawn(task.run(after, done_tx));
        LineHandle {
            line,
            commands,
            snapshot,
            done,
            task,
        }
    }
}

impl<S: Spawn> Drop for PppdSupervisor<S> {
    /// Without `shutdown`: abort the tasks (their pppds are killed on drop) and remove the
    /// options files, which hold passwords.
    fn drop(&mut self) {
        for handle in self.lines.values() {
            handle.task.abort();
            let _ = std::fs::remove_file(options_path(&self.cfg, &handle.line.wan));
        }
        for stopping in &self.stopping {
            stopping.task.abort();
            let _ = std::fs::remove_file(options_path(&self.cfg, &stopping.wan));
        }
    }
}

/// The lines by WAN, or why the set is refused.
fn check_lines(lines: Vec<PppoeLine>) -> Result<BTreeMap<String, PppoeLine>, LinesError> {
    let mut by_wan = BTreeMap::new();
    let mut ifnames: BTreeMap<String, String> = BTreeMap::new();
    for line in lines {
        validate_line(&line)?;
        if by_wan.contains_key(&line.wan) {
            return Err(LinesError::DuplicateWan(line.wan));
        }
        if let Some(first) = ifnames.insert(line.ifname.clone(), line.wan.clone()) {
            return Err(LinesError::DuplicateIfname {
                ifname: line.ifname,
                first,
                second: line.wan,
            });
        }
        by_wan.insert(line.wan.clone(), line);
    }
    Ok(by_wan)
}

fn options_path(cfg: &SupervisorConfig, wan: &str) -> PathBuf {
    cfg.run_dir.join(format!("{wan}.options"))
}

fn lock(snapshot: &Mutex<LineSnapshot>) -> std::sync::MutexGuard<'_, LineSnapshot> {
    // A panic while holding it leaves a consistent snapshot (plain field writes).
    snapshot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `text` with every occurrence of the password hidden: pppd does not print it (the
/// options say `hide-password` and no `debug`), this is the second lock.
fn redact(text: &str, password: &str) -> String {
    if password.is_empty() {
        text.to_string()
    } else {
        text.replace(password, "<hidden>")
    }
}

/// How one pppd run ended.
enum RunEnd {
    /// Stop wanted (or the supervisor is gone).
    Stop,
    /// New config: start again at once.
    Replaced,
    /// pppd ended by itself; wait this long before the next run.
    Exited(Duration),
}

struct LineTask<S: Spawn> {
    spawner: Arc<S>,
    cfg: Arc<SupervisorConfig>,
    line: PppoeLine,
    commands: mpsc::UnboundedReceiver<Command>,
    changes: mpsc::UnboundedSender<SessionChange>,
    snapshot: Arc<Mutex<LineSnapshot>>,
    retry: Retry,
    restarts: u32,
}

impl<S: Spawn> LineTask<S> {
    /// Runs the line until it is stopped; `after` are the stops to wait for first.
    async fn run(mut self, after: Vec<watch::Receiver<bool>>, done: watch::Sender<bool>) {
        for mut other in after {
            // An error means that task is gone, which is what we wait for too.
            let _ = other.wait_for(|done| *done).await;
        }
        loop {
            match self.run_once().await {
                RunEnd::Stop => break,
                RunEnd::Replaced => {}
                RunEnd::Exited(wait) => match self.wait_out(wait).await {
                    None => self.restarts = self.restarts.saturating_add(1),
                    Some(RunEnd::Stop) => break,
                    // New config: its run starts at once.
                    Some(_) => {}
                },
            }
        }
        let _ = std::fs::remove_file(options_path(&self.cfg, &self.line.wan));
        self.publish(SessionState::Stopped, None);
        let _ = done.send(true);
    }

    /// Sleep out the backoff (None when it elapsed), unless a command comes first.
    async fn wait_out(&mut self, wait: Duration) -> Option<RunEnd> {
        tokio::select! {
            () = tokio::time::sleep(wait) => None,
            command = self.commands.recv() => Some(self.obey(command)),
        }
    }

    /// Apply a command that ended a run or a wait. A new config restarts the count.
    fn obey(&mut self, command: Option<Command>) -> RunEnd {
        match command {
            Some(Command::Replace(line)) => {
                self.line = line;
                self.retry = Retry::default();
                self.restarts = 0;
                lock(&self.snapshot).ifname = self.line.ifname.clone();
                RunEnd::Replaced
            }
            // None: the supervisor is gone.
            Some(Command::Stop) | None => RunEnd::Stop,
        }
    }

    /// One pppd run, from writing its options to its exit (or our stop).
    async fn run_once(&mut self) -> RunEnd {
        // Commands sent while this task waited for other lines to stop: the last config
        // counts, and a stop means no run at all.
        while let Ok(command) = self.commands.try_recv() {
            if let RunEnd::Stop = self.obey(Some(command)) {
                return RunEnd::Stop;
            }
        }
        self.publish(SessionState::Connecting, None);
        let path = options_path(&self.cfg, &self.line.wan);
        let started = render_options(&self.line)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                write_private(&path, &text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            })
            .and_then(|()| {
                self.spawner
                    .spawn(&path)
                    .map_err(|e| format!("cannot start {}: {e}", self.cfg.pppd.display()))
            });
        let mut pppd = match started {
            Ok(pppd) => pppd,
            Err(last_error) => {
                let state = SessionState::Down { last_error };
                return RunEnd::Exited(self.ended(state, None));
            }
        };
        let wan = self.line.wan.clone();
        let mut tracker = SessionTracker::new();
        let mut up_since: Option<Instant> = None;
        loop {
            tokio::select! {
                event = pppd.next_event() => match event {
                    PppdEvent::Line(line) => {
                        let line = redact(&line, &self.line.password);
                        tracing::info!(wan = %wan, "pppd: {line}");
                        for state in tracker.on_line(&line) {
                            if state.is_up() {
                                up_since.get_or_insert_with(Instant::now);
                            }
                            self.publish(state, None);
                        }
                    }
                    PppdEvent::Exited(exit) => {
                        tracing::info!(wan = %wan, "pppd exited: {exit:?}");
                        let state = tracker.on_exit(exit);
                        let up_for = up_since.map(|t| t.elapsed());
                        return RunEnd::Exited(self.ended(state, up_for));
                    }
                },
                command = self.commands.recv() => {
                    let exit = pppd.stop(self.cfg.stop_grace).await;
                    tracing::info!(wan = %wan, "pppd stopped: {exit:?}");
                    return self.obey(command);
                }
            }
        }
    }

    /// A run ended in `state`: report it with the wait before the next run.
    fn ended(&mut self, state: SessionState, up_for: Option<Duration>) -> Duration {
        let wait = self.retry.after_exit(&self.cfg.backoff, &state, up_for);
        self.publish(state, Some(wait));
        wait
    }

    /// Record a new state and send the change (nothing when it is the same state).
    fn publish(&self, to: SessionState, retry_in: Option<Duration>) {
        let now = now_ms();
        let retry_in_ms = retry_in.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let change = {
            let mut snap = lock(&self.snapshot);
            snap.restarts = self.restarts;
            snap.retry_at_ms = retry_in_ms.map(|ms| now.saturating_add(ms));
            if snap.state == to {
                return;
            }
            if let Some(error) = to.last_error() {
                snap.last_error = Some(error.to_string());
            }
            snap.since_ms = now;
            let from = std::mem::replace(&mut snap.state, to.clone());
            SessionChange {
                wan: self.line.wan.clone(),
                ifname: self.line.ifname.clone(),
                from,
                to,
                at_ms: now,
                retry_in_ms,
            }
        };
        tracing::info!(wan = %change.wan, "{}", change.message());
        // The receiver is gone only when the daemon is exiting.
        let _ = self.changes.send(change);
    }
}
