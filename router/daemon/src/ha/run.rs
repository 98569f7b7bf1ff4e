//! Running the pair: the distribution's `keepalived` and `conntrackd` as the daemon's own
//! children, the way it runs pppd (same child handling: [`spawn_child`], same doubling
//! restart wait: [`doubled`]).
//!
//! Why children and not the distribution's systemd units: the daemon already knows when to
//! start, reload and stop them (from the config it applies), children behave the same in
//! the namespace labs (no systemd there) as on the image, their output lands in the
//! daemon's log with the engine's name, and there is no second copy of each file under
//! /etc for a package upgrade to meddle with. The units stay installed but disabled (a
//! unit-started keepalived on the distribution's default config would hold no addresses,
//! but a second conntrackd would fight ours for its lock).
//!
//! [`PairRunner::set`] takes the rendered files (or `None`: HA off). It writes them mode
//! 0600 under its run directory (keepalived.conf holds the pair's key), starts a missing
//! engine, and on a changed file reloads keepalived (SIGHUP: it re-reads its file and
//! keeps its role, where a restart would hand the addresses to the peer) and restarts
//! conntrackd (it has no reload; `StartupResync` refills its cache from the peer). An
//! engine that exits is started again after 1, 2, 4 ... 30 s; one that ran a minute
//! counts as a success.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use routeros_shared::events::now_ms;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::lines::pppd::backoff::doubled;
use crate::lines::pppd::options::write_private;
use crate::lines::pppd::{spawn_child, Backoff, PppdChild, PppdEvent, PppdExit, PppdProcess};

/// Where the files go by default: under the daemon's RuntimeDirectory (tmpfs: the key's copy
/// does not outlive a reboot).
pub const DEFAULT_RUN_DIR: &str = "/run/routeros/ha";

/// keepalived answers SIGTERM by sending priority 0 (the peer takes over at once) and
/// removing its addresses; one still there after this is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One of the pair's two programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Keepalived,
    Conntrackd,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Keepalived, Engine::Conntrackd];

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Keepalived => "keepalived",
            Engine::Conntrackd => "conntrackd",
        }
    }

    /// Its file's name in the run directory.
    pub fn file_name(self) -> String {
        format!("{}.conf", self.as_str())
    }

    /// A changed file: keepalived re-reads its own on SIGHUP, conntrackd must restart.
    fn reloads(self) -> bool {
        self == Engine::Keepalived
    }
}

/// The two rendered files ([`super::keepalived::render`], [`super::conntrackd::render`]).
#[derive(Clone, PartialEq, Eq)]
pub struct PairFiles {
    pub keepalived: String,
    pub conntrackd: String,
}

impl PairFiles {
    fn text(&self, engine: Engine) -> &str {
        match engine {
            Engine::Keepalived => &self.keepalived,
            Engine::Conntrackd => &self.conntrackd,
        }
    }
}

/// keepalived.conf holds the key: never in a log through `{:?}`.
impl std::fmt::Debug for PairFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairFiles { .. }")
    }
}

/// A running engine, as far as the runner needs one.
pub trait EngineProcess: PppdProcess {
    /// Have it re-read its file (keepalived: SIGHUP).
    fn reload(&mut self) -> io::Result<()>;
}

impl EngineProcess for PppdChild {
    fn reload(&mut self) -> io::Result<()> {
        self.signal(Signal::SIGHUP)
    }
}

/// Starts an engine on its file (the narrow process-facing part; the tests fake it).
pub trait EngineSpawn: Send + Sync + 'static {
    type Process: EngineProcess;
    /// Run `engine` in the foreground on `conf`; its pid and lock files go in `run_dir`.
    fn spawn(&self, engine: Engine, conf: &Path, run_dir: &Path) -> io::Result<Self::Process>;
}

/// The distribution's binaries (or others at these paths).
#[derive(Debug, Clone)]
pub struct EngineCommand {
    pub keepalived: PathBuf,
    pub conntrackd: PathBuf,
}

impl Default for EngineCommand {
    fn default() -> Self {
        Self {
            keepalived: "/usr/sbin/keepalived".into(),
            conntrackd: "/usr/sbin/conntrackd".into(),
        }
    }
}

impl EngineSpawn for EngineCommand {
    type Process = PppdChild;

    fn spawn(&self, engine: Engine, conf: &Path, run_dir: &Path) -> io::Result<PppdChild> {
        if engine == Engine::Conntrackd {
            // Its previous run has exited (the runner waits for that): a lock left by one
            // killed with SIGKILL would keep every new run from starting.
            match std::fs::remove_file(super::conntrackd::lock_path(run_dir)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let command = engine_command(self, engine, conf, run_dir);
        spawn_child(tokio::process::Command::from(command))
    }
}

/// The command line of `engine`: in the foreground, logging to its output (which the
/// daemon logs), its pid files in `run_dir` (two boxes in namespaces of one machine must
/// not share them).
pub fn engine_command(
    programs: &EngineCommand,
    engine: Engine,
    conf: &Path,
    run_dir: &Path,
) -> std::process::Command {
    let mut c;
    match engine {
        Engine::Keepalived => {
            c = std::process::Command::new(&programs.keepalived);
            c.args(["--dont-fork", "--vrrp", "--log-console", "--log-detail"])
                .arg("--use-file")
                .arg(conf)
                .arg("--pid")
                .arg(run_dir.join("keepalived.pid"))
                .arg("--vrrp_pid")
                .arg(run_dir.join("keepalived-vrrp.pid"))
                .arg("--checkers_pid")
                .arg(run_dir.join("keepalived-checkers.pid"));
        }
        Engine::Conntrackd => {
            // Without -d it stays in the foreground.
            c = std::process::Command::new(&programs.conntrackd);
            c.arg("-C").arg(conf);
        }
    }
    // The daemon's own unit is Type=notify: a child must not speak for it (conntrackd's
    // `Systemd on` would report "ready" on the daemon's socket).
    c.env_remove("NOTIFY_SOCKET");
    c
}

/// How the runner runs the engines.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Directory of the files (created mode 0700).
    pub run_dir: PathBuf,
    /// Restart waits (`base`, `max`, `stable_after`; the auth fields are not used).
    pub backoff: Backoff,
    pub stop_grace: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            run_dir: DEFAULT_RUN_DIR.into(),
            backoff: Backoff::default(),
            stop_grace: STOP_GRACE,
        }
    }
}

/// What an engine is doing, for the status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EngineState {
    Running,
    /// It exited (or could not start); started again at `retry_at_ms`.
    Exited {
        last_error: String,
        retry_at_ms: u64,
    },
    Stopped,
}

/// One engine for the status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    pub engine: Engine,
    #[serde(flatten)]
    pub state: EngineState,
    /// Unix ms of the last change.
    pub since_ms: u64,
    /// Runs started after the first.
    pub restarts: u32,
}

/// A change the daemon turns into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineChange {
    pub engine: Engine,
    pub to: EngineState,
    pub at_ms: u64,
}

impl EngineChange {
    pub fn message(&self) -> String {
        let name = self.engine.as_str();
        match &self.to {
            EngineState::Running => format!("HA: {name} running"),
            EngineState::Exited {
                last_error,
                retry_at_ms,
            } => format!(
                "HA: {name} {last_error}; starting it again in {} ms",
                retry_at_ms.saturating_sub(self.at_ms)
            ),
            EngineState::Stopped => format!("HA: {name} stopped"),
        }
    }
}

#[derive(Debug)]
enum Order {
    /// Its file changed (already written).
    Changed,
    Stop,
}

struct EngineHandle {
    orders: mpsc::UnboundedSender<Order>,
    snapshot: Arc<Mutex<EngineSnapshot>>,
    task: JoinHandle<()>,
}

/// Runs keepalived and conntrackd while HA is on. Call [`shutdown`](Self::shutdown) before
/// exiting: dropping it kills them without keepalived's priority-0 goodbye (the peer then
/// takes over only after its timeout).
pub struct PairRunner<S: EngineSpawn = EngineCommand> {
    spawner: Arc<S>,
    cfg: Arc<RunConfig>,
    changes: mpsc::UnboundedSender<EngineChange>,
    files: Option<PairFiles>,
    engines: BTreeMap<Engine, EngineHandle>,
}

impl<S: EngineSpawn> PairRunner<S> {
    pub fn new(spawner: S, cfg: RunConfig) -> (Self, mpsc::UnboundedReceiver<EngineChange>) {
        let (changes, rx) = mpsc::unbounded_channel();
        let runner = Self {
            spawner: Arc::new(spawner),
            cfg: Arc::new(cfg),
            changes,
            files: None,
            engines: BTreeMap::new(),
        };
        (runner, rx)
    }

    /// Run the pair on `files`, or stop it (`None`). Returns once the files are written;
    /// starts, reloads and stops go on in the engine tasks. Inside a tokio runtime.
    pub async fn set(&mut self, files: Option<PairFiles>) -> io::Result<()> {
        let Some(files) = files else {
            self.shutdown().await;
            return Ok(());
        };
        for engine in Engine::ALL {
            let text = files.text(engine);
            let changed = self.files.as_ref().map(|f| f.text(engine)) != Some(text);
            let path = self.cfg.run_dir.join(engine.file_name());
            if changed {
                write_private(&path, text)?;
            }
            match self.engines.get(&engine) {
                Some(handle) if !handle.task.is_finished() => {
                    if changed {
                        let _ = handle.orders.send(Order::Changed);
                    }
                }
                _ => {
                    let handle = self.start(engine, path);
                    self.engines.insert(engine, handle);
                }
            }
        }
        self.files = Some(files);
        Ok(())
    }

    /// Both engines (none while HA is off).
    pub fn snapshot(&self) -> Vec<EngineSnapshot> {
        self.engines
            .values()
            .map(|h| lock(&h.snapshot).clone())
            .collect()
    }

    /// The file `engine` runs on (for `conntrackd -C <file> -c` on a role change).
    pub fn conf_path(&self, engine: Engine) -> PathBuf {
        self.cfg.run_dir.join(engine.file_name())
    }

    /// Stop both (SIGTERM, SIGKILL after the grace), wait for them, remove the files.
    pub async fn shutdown(&mut self) {
        for handle in std::mem::take(&mut self.engines).into_values() {
            let _ = handle.orders.send(Order::Stop);
            let _ = handle.task.await;
        }
        if self.files.take().is_some() {
            for engine in Engine::ALL {
                let _ = std::fs::remove_file(self.conf_path(engine));
            }
        }
    }

    fn start(&self, engine: Engine, conf: PathBuf) -> EngineHandle {
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let snapshot = Arc::new(Mutex::new(EngineSnapshot {
            engine,
            state: EngineState::Stopped,
            since_ms: now_ms(),
            restarts: 0,
        }));
        let task = EngineTask {
            spawner: Arc::clone(&self.spawner),
            cfg: Arc::clone(&self.cfg),
            engine,
            conf,
            orders: orders_rx,
            changes: self.changes.clone(),
            snapshot: Arc::clone(&snapshot),
            failures: 0,
        };
        EngineHandle {
            orders,
            snapshot,
            task: tokio::spawn(task.run()),
        }
    }
}

impl<S: EngineSpawn> Drop for PairRunner<S> {
    /// Without `shutdown`: abort the tasks (their children are killed on drop) and remove
    /// the files, one of which holds the key.
    fn drop(&mut self) {
        for handle in self.engines.values() {
            handle.task.abort();
        }
        if self.files.is_some() {
            for engine in Engine::ALL {
                let _ = std::fs::remove_file(self.conf_path(engine));
            }
        }
    }
}

fn lock(s: &Mutex<EngineSnapshot>) -> std::sync::MutexGuard<'_, EngineSnapshot> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How one run ended.
enum RunEnd {
    Stop,
    /// Its file changed and it cannot reload: start again at once.
    Restart,
    /// It exited by itself: wait this long.
    Exited(Duration),
}

struct EngineTask<S: EngineSpawn> {
    spawner: Arc<S>,
    cfg: Arc<RunConfig>,
    engine: Engine,
    conf: PathBuf,
    orders: mpsc::UnboundedReceiver<Order>,
    changes: mpsc::UnboundedSender<EngineChange>,
    snapshot: Arc<Mutex<EngineSnapshot>>,
    /// Runs in a row that ended before `stable_after`.
    failures: u32,
}

impl<S: EngineSpawn> EngineTask<S> {
    async fn run(mut self) {
        let mut runs = 0u32;
        loop {
            if runs > 0 {
                lock(&self.snapshot).restarts = runs;
            }
            runs = runs.saturating_add(1);
            match self.run_once().await {
                RunEnd::Stop => break,
                RunEnd::Restart => {}
                RunEnd::Exited(wait) => {
                    let stop = tokio::select! {
                        () = tokio::time::sleep(wait) => false,
                        // A changed file while waiting: its run is the next one anyway.
                        order = self.orders.recv() => !matches!(order, Some(Order::Changed)),
                    };
                    if stop {
                        break;
                    }
                }
            }
        }
        self.publish(EngineState::Stopped);
    }

    async fn run_once(&mut self) -> RunEnd {
        let name = self.engine.as_str();
        let started = Instant::now();
        let mut child = match self
            .spawner
            .spawn(self.engine, &self.conf, &self.cfg.run_dir)
        {
            Ok(child) => child,
            Err(e) => return self.exited(format!("cannot be started: {e}"), started),
        };
        self.publish(EngineState::Running);
        loop {
            tokio::select! {
                event = child.next_event() => match event {
                    PppdEvent::Line(line) => tracing::info!(engine = name, "{name}: {line}"),
                    PppdEvent::Exited(exit) => {
                        return self.exited(describe(exit), started);
                    }
                },
                order = self.orders.recv() => match order {
                    Some(Order::Changed) if self.engine.reloads() => {
                        tracing::info!(engine = name, "{name}: its file changed: reloading it");
                        if let Err(e) = child.reload() {
                            tracing::warn!(engine = name, "cannot reload {name}: {e}");
                        }
                    }
                    Some(Order::Changed) => {
                        tracing::info!(engine = name, "{name}: its file changed: restarting it");
                        child.stop(self.cfg.stop_grace).await;
                        return RunEnd::Restart;
                    }
                    Some(Order::Stop) | None => {
                        let exit = child.stop(self.cfg.stop_grace).await;
                        tracing::info!(engine = name, "{name} stopped: {exit:?}");
                        return RunEnd::Stop;
                    }
                },
            }
        }
    }

    /// A run ended by itself after starting at `started`: report it, return the wait.
    fn exited(&mut self, last_error: String, started: Instant) -> RunEnd {
        let policy = &self.cfg.backoff;
        if started.elapsed() >= policy.stable_after {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let wait = doubled(policy.base, self.failures, policy.max);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.publish(EngineState::Exited {
            last_error,
            retry_at_ms: now_ms().saturating_add(wait_ms),
        });
        RunEnd::Exited(wait)
    }

    fn publish(&self, to: EngineState) {
        let at_ms = now_ms();
        {
            let mut snap = lock(&self.snapshot);
            if snap.state == to {
                return;
            }
            snap.state = to.clone();
            snap.since_ms = at_ms;
        }
        let change = EngineChange {
            engine: self.engine,
            to,
            at_ms,
        };
        tracing::info!(engine = self.engine.as_str(), "{}", change.message());
        let _ = self.changes.send(change);
    }
}

/// How long one `conntrackd -c` (or `-n`, ...) may take: a commit of a large table takes
/// a while, a conntrackd that does not answer must not hold the next command forever.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Run `program` with each of `commands` in turn (conntrackd's role-change requests to the
/// running conntrackd), logging each outcome.
pub async fn run_commands(program: PathBuf, commands: Vec<Vec<String>>) {
    for args in commands {
        let shown = format!("{} {}", program.display(), args.join(" "));
        let mut command = tokio::process::Command::new(&program);
        command.args(&args).kill_on_drop(true);
        match tokio::time::timeout(COMMAND_TIMEOUT, command.output()).await {
            Ok(Ok(out)) if out.status.success() => tracing::info!("HA: {shown}: done"),
            Ok(Ok(out)) => tracing::warn!(
                "HA: {shown}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Ok(Err(e)) => tracing::warn!("HA: {shown}: cannot run it: {e}"),
            Err(_) => tracing::warn!("HA: {shown}: no answer within {COMMAND_TIMEOUT:?}"),
        }
    }
}

fn describe(exit: PppdExit) -> String {
    match exit {
        PppdExit::Code(code) => format!("exited with status {code}"),
        PppdExit::Signal(signal) => format!("was killed by signal {signal}"),
        PppdExit::Lost => "was lost (waiting for it failed)".into(),
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
