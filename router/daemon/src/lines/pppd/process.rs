//! Starting and stopping pppd, behind [`Spawn`] so the supervisor runs against any program
//! that behaves like pppd (the tests' fake is a shell script).

use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The distribution's pppd.
pub const DEFAULT_PPPD: &str = "/usr/sbin/pppd";
/// Output still buffered when pppd exits is read for at most this long (a script pppd
/// started could hold its stdout open).
const DRAIN: Duration = Duration::from_millis(200);

/// How pppd ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PppdExit {
    /// pppd(8) EXIT STATUS.
    Code(i32),
    /// Killed by this signal (it exits with 5 when it handles SIGTERM itself).
    Signal(i32),
    /// Waiting for it failed.
    Lost,
}

impl From<ExitStatus> for PppdExit {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signal(signal),
            (None, None) => Self::Lost,
        }
    }
}

/// What a running pppd did next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PppdEvent {
    /// A line of its output (stdout or stderr).
    Line(String),
    /// It exited (after its output was read).
    Exited(PppdExit),
}

/// Starts pppd for one line.
pub trait Spawn: Send + Sync + 'static {
    type Process: PppdProcess;
    /// Run pppd with the options in `options_file` (its whole command line is
    /// `file <options_file>`: nothing secret shows in `ps`).
    fn spawn(&self, options_file: &Path) -> io::Result<Self::Process>;
}

/// A running pppd.
pub trait PppdProcess: Send + 'static {
    /// Its next output line or its exit; after the exit, the exit again. Cancel-safe.
    fn next_event(&mut self) -> impl Future<Output = PppdEvent> + Send;
    /// SIGTERM (pppd ends the session cleanly: LCP terminate, PADT), SIGKILL after
    /// `grace`; returns how it ended.
    fn stop(&mut self, grace: Duration) -> impl Future<Output = PppdExit> + Send;
}

/// The real pppd (or any program given as its path).
#[derive(Debug, Clone)]
pub struct PppdCommand {
    program: PathBuf,
}

impl PppdCommand {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }
}

impl Default for PppdCommand {
    fn default() -> Self {
        Self::new(DEFAULT_PPPD)
    }
}

impl Spawn for PppdCommand {
    type Process = PppdChild;

    fn spawn(&self, options_file: &Path) -> io::Result<PppdChild> {
        let mut command = Command::new(&self.program);
        command.arg("file").arg(options_file);
        spawn_child(command)
    }
}

/// Start `command` as a supervised child: no stdin, its stdout and stderr read line by
/// line, killed when the handle is dropped. Also how the HA pair's keepalived and
/// conntrackd run (`crate::ha::run`).
pub fn spawn_child(mut command: Command) -> io::Result<PppdChild> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The fallback when the supervisor is dropped without `shutdown`.
        .kill_on_drop(true)
        .spawn()?;
    let (tx, lines) = mpsc::channel(64);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, tx));
    }
    Ok(PppdChild {
        child,
        lines,
        exit: None,
    })
}

/// Send each line of `pipe` until it closes (or nobody listens).
async fn forward_lines(pipe: impl AsyncRead + Unpin, tx: mpsc::Sender<String>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send(line).await.is_err() {
            break;
        }
    }
}

/// A child started by [`spawn_child`] (pppd, or one of the HA pair's engines).
#[derive(Debug)]
pub struct PppdChild {
    child: Child,
    /// Both output pipes, line by line; closed when both are.
    lines: mpsc::Receiver<String>,
    exit: Option<PppdExit>,
}

impl PppdChild {
    /// Send `signal` to it unless it has exited (e.g. SIGHUP: keepalived re-reads its file).
    pub fn signal(&mut self, signal: Signal) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        match self.child.id().and_then(|id| i32::try_from(id).ok()) {
            Some(pid) => kill(Pid::from_raw(pid), signal).map_err(io::Error::from),
            None => Ok(()),
        }
    }

    async fn wait(&mut self) -> PppdExit {
        match self.exit {
            Some(exit) => exit,
            None => {
                let exit = self
                    .child
                    .wait()
                    .await
                    .map_or(PppdExit::Lost, PppdExit::from);
                self.exit = Some(exit);
                exit
            }
        }
    }
}

impl PppdProcess for PppdChild {
    async fn next_event(&mut self) -> PppdEvent {
        if let Some(exit) = self.exit {
            return match tokio::time::timeout(DRAIN, self.lines.recv()).await {
                Ok(Some(line)) => PppdEvent::Line(line),
                _ => PppdEvent::Exited(exit),
            };
        }
        tokio::select! {
            // Lines first: the ones written before the exit belong before it.
            biased;
            Some(line) = self.lines.recv() => PppdEvent::Line(line),
            status = self.child.wait() => {
                let exit = status.map_or(PppdExit::Lost, PppdExit::from);
                self.exit = Some(exit);
                // What was written just before the exit may still be in the pipes.
                match tokio::time::timeout(DRAIN, self.lines.recv()).await {
                    Ok(Some(line)) => PppdEvent::Line(line),
                    _ => PppdEvent::Exited(exit),
                }
            }
        }
    }

    async fn stop(&mut self, grace: Duration) -> PppdExit {
        if let Some(exit) = self.exit {
            return exit;
        }
        let pid = self.child.id().and_then(|id| i32::try_from(id).ok());
        if let Some(pid) = pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if let Ok(exit) = tokio::time::timeout(grace, self.wait()).await {
            return exit;
        }
        tracing::warn!(pid, "child ignored SIGTERM for {grace:?}: killing it");
        let _ = self.child.start_kill();
        self.wait().await
    }
}
