//! The daemon's side of the control socket, bounded so that no client can exhaust the root
//! daemon: each line is read up to [`MAX_LINE`], at most [`MAX_SESSIONS`] connections are
//! served at once (one more waits for a free session; after a second of all of them busy,
//! newcomers get a "busy" answer), an idle peer is dropped after [`IDLE_TIMEOUT`], and a
//! failing `accept` (EMFILE) backs off and logs once per burst.
//!
//! `status` is answered here from the published snapshot (the event loop is not asked);
//! `subscribe` turns the session into a stream of events, which has no idle limit but is
//! dropped when the peer closes, stops reading, or falls behind the live events.

use super::{
    parse_request, to_wire, Answer, Envelope, Refusal, RefusalCode, Reply, Request, IDLE_TIMEOUT,
    MAX_LINE, MAX_SESSIONS,
};
use crate::daemon::supervisor::StatusBoard;
use routeros_shared::events::Event;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, Semaphore};

/// A peer must take an answer within this long (one that never reads would hold its slot).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest pause after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long every session may stay busy before new connections are refused instead of
/// waiting for one to end.
const SATURATED_GRACE: Duration = Duration::from_secs(1);
/// While a burst of failures (or of refused connections) lasts, one reminder this often.
const BURST_LOG_EVERY: Duration = Duration::from_secs(60);

/// Bind the socket (replacing a stale one) and serve it until the daemon exits. Only root
/// may connect, plus members of `group` when given (the unprivileged web server's group).
pub async fn serve(path: &Path, group: Option<&str>, daemon: Daemon) -> std::io::Result<()> {
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
    tokio::spawn(accept_loop(listener, daemon));
    Ok(())
}

/// What sessions answer from: the event loop's request channel and the status snapshot.
#[derive(Clone)]
pub struct Daemon {
    pub requests: mpsc::Sender<Envelope>,
    pub status: StatusBoard,
}

/// Fail if a live process serves `path`, which [`serve`] would otherwise replace (a second
/// daemon with another state directory). A stale socket (its daemon died) refuses the
/// connection; a full backlog (EAGAIN, non-blocking) still means someone listens.
pub async fn refuse_if_served(path: &Path) -> std::io::Result<()> {
    let served = match UnixStream::connect(path).await {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    };
    if served {
        return Err(std::io::Error::other(format!(
            "{} is served by another process (another routeros-watchdog?); stop it first",
            path.display()
        )));
    }
    Ok(())
}

async fn accept_loop(listener: UnixListener, daemon: Daemon) {
    let slots = Arc::new(Semaphore::new(MAX_SESSIONS));
    let mut failing = Burst::default();
    let mut busy = Burst::default();
    // When every session became busy (None while one is free).
    let mut full_since: Option<Instant> = None;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: the listener stays readable, so retrying at once
                // would spin (and log) as fast as the CPU allows. Wait for fds to free up.
                if let Some(n) = failing.hit(Instant::now()) {
                    tracing::warn!(
                        "control socket: accept failed {n} time(s): {e}; retrying with backoff up to {} ms",
                        ACCEPT_BACKOFF_MAX.as_millis()
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF_MIN;
        if let Some((n, took)) = failing.settle(Instant::now()) {
            tracing::info!(
                "control socket: accepting again; {n} accept(s) had failed over {:.1} s",
                took.as_secs_f64()
            );
        }
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                // Every session is in use: a burst of quick requests (the web server's)
                // gets a slot within moments, so wait for one; once the sessions have all
                // been busy for SATURATED_GRACE (idle or hostile peers), refuse at once.
                let since = *full_since.get_or_insert_with(Instant::now);
                let wait = SATURATED_GRACE.saturating_sub(since.elapsed());
                tokio::time::timeout(wait, slots.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        let Some(slot) = slot else {
            if let Some(n) = busy.hit(Instant::now()) {
                tracing::warn!(
                    "control socket: all {MAX_SESSIONS} sessions busy for {} s; refused {n} connection(s)",
                    SATURATED_GRACE.as_secs()
                );
            }
            refuse_busy(&stream);
            continue;
        };
        full_since = None;
        if let Some((n, took)) = busy.settle(Instant::now()) {
            tracing::info!(
                "control socket: serving again; {n} connection(s) had been refused over {:.1} s",
                took.as_secs_f64()
            );
        }
        let daemon = daemon.clone();
        // The socket's group (routeros-web) may use it too; some requests are root's alone.
        let root = stream.peer_cred().is_ok_and(|c| c.uid() == 0);
        tokio::spawn(async move {
            let (read, write) = stream.into_split();
            session(read, write, daemon, root).await;
            drop(slot);
        });
    }
}

/// Best effort, never waits: a fresh socket's send buffer has room for one short line.
fn refuse_busy(stream: &UnixStream) {
    let mut text = refusal(Refusal::new(
        RefusalCode::Busy,
        format!("busy: {MAX_SESSIONS} control connections are open; try again shortly"),
    ))
    .to_string();
    text.push('\n');
    let _ = stream.try_write(text.as_bytes());
}

/// Answer request lines until the peer closes, stays idle past [`IDLE_TIMEOUT`], sends a
/// line longer than [`MAX_LINE`] (answered with an error, then closed), or stops reading.
/// `root`: the peer runs as root (only root may report an HA role: keepalived's notify).
pub(super) async fn session<R, W>(read: R, mut write: W, daemon: Daemon, root: bool)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        // One byte over the limit tells "too long" from "exactly MAX_LINE".
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let read = tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut line)).await;
        let (answer, last) = match read {
            Err(_) | Ok(Err(_)) | Ok(Ok(0)) => return,
            Ok(Ok(_)) if line.len() > MAX_LINE => (
                refusal(Refusal::bad_request(format!(
                    "request line longer than {MAX_LINE} bytes; connection closed"
                ))),
                true,
            ),
            Ok(Ok(_)) => match parse_request(&line) {
                Ok(Request::Status) => (
                    to_wire(&Ok(Reply::Status(Box::new(daemon.status.current().await)))),
                    false,
                ),
                Ok(Request::HaNotify { .. }) if !root => (
                    refusal(Refusal::bad_request(
                        "ha_notify: only root (keepalived's notify) may report the HA role",
                    )),
                    false,
                ),
                // Nothing of the routing state: answered here, off the event loop.
                Ok(Request::SetTimezone { name }) => {
                    (to_wire(&super::timezone::set(&name).await), false)
                }
                Ok(req) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    if daemon.requests.send((req, tx)).await.is_err() {
                        return;
                    }
                    match rx.await {
                        Ok(Answer::Line(result)) => (to_wire(&result), false),
                        Ok(Answer::Subscribed { backlog, events }) => {
                            let first = to_wire(&Ok(Reply::Subscribed(
                                routeros_shared::control::Subscribed { backlog },
                            )));
                            if write_line(&mut write, &first).await {
                                stream_events(reader, write, events).await;
                            }
                            return;
                        }
                        Err(_) => (
                            refusal(Refusal::new(RefusalCode::Busy, "daemon is shutting down")),
                            false,
                        ),
                    }
                }
                Err(e) => (refusal(e), false),
            },
        };
        if !write_line(&mut write, &answer).await || last {
            return;
        }
    }
}

fn refusal(r: Refusal) -> serde_json::Value {
    to_wire::<Reply>(&Err(r))
}

/// Write one JSON line within [`WRITE_TIMEOUT`]; false when the peer did not take it.
async fn write_line<W: AsyncWrite + Unpin>(write: &mut W, value: &impl serde::Serialize) -> bool {
    let mut text = match serde_json::to_string(value) {
        Ok(text) => text,
        Err(_) => return false,
    };
    text.push('\n');
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, write.write_all(text.as_bytes())).await,
        Ok(Ok(()))
    )
}

/// A subscriber's session: each new event as a line, until the peer closes, stops reading
/// for [`WRITE_TIMEOUT`], or falls so far behind that events were lost (then it is dropped
/// with a logged reason and reconnects; the daemon never waits for it).
async fn stream_events<R, W>(mut reader: R, mut write: W, mut events: broadcast::Receiver<Event>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    if !write_line(&mut write, &event).await {
                        tracing::warn!("control socket: dropped an event subscriber that stopped reading");
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("control socket: dropped an event subscriber {n} events behind");
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            // A subscriber sends nothing more: EOF (or an error) means it is gone.
            read = reader.read(&mut scratch) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
            }
        }
    }
}

/// A run of repeated failures (failed accepts, refused connections): logged when it
/// starts, then at most once per [`BURST_LOG_EVERY`] while it lasts, and summed up once it
/// has been quiet for [`BURST_QUIET`]. Successes in between (an fd freed for a moment) do
/// not end it, so a flood costs a few log lines, not one per event.
#[derive(Default)]
struct Burst {
    current: Option<BurstState>,
}

struct BurstState {
    start: Instant,
    last: Instant,
    count: u64,
    logged: Instant,
}

/// A burst ends this long after its last failure.
const BURST_QUIET: Duration = Duration::from_secs(5);

impl Burst {
    /// Count one failure at `now`; `Some(count so far)` when it should be logged.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        match &mut self.current {
            Some(b) if now.duration_since(b.last) < BURST_QUIET => {
                b.count += 1;
                b.last = now;
                if now.duration_since(b.logged) >= BURST_LOG_EVERY {
                    b.logged = now;
                    Some(b.count)
                } else {
                    None
                }
            }
            _ => {
                self.current = Some(BurstState {
                    start: now,
                    last: now,
                    count: 1,
                    logged: now,
                });
                Some(1)
            }
        }
    }

    /// At a success: if the burst has been quiet long enough, end it and return its count
    /// and how long it lasted (first to last failure).
    fn settle(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let b = self.current.as_ref()?;
        if now.duration_since(b.last) < BURST_QUIET {
            return None;
        }
        let b = self.current.take()?;
        Some((b.count, b.last.duration_since(b.start)))
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
