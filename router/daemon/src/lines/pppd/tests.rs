//! The supervisor against a fake pppd: a shell script, given as the pppd path, that records
//! how it was started (argv, options file and its mode, signals) and then prints what pppd
//! prints and exits as pppd would. Backoffs are milliseconds here.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// A session coming up; run N gets 100.64.0.(N+1).
const UP: &str = "up; stay";
/// The server refuses the login.
const AUTH_FAILS: &str = "\
echo 'Remote message: Login incorrect'
echo 'PAP authentication failed'
echo 'Connection terminated.'
exit 19";
/// The first session is hung up by the server (PADT), the next one stays.
const DROPS_ONCE: &str = "\
up
if [ $n -eq 1 ]; then
  sleep 0.05; echo 'Modem hangup'; echo 'Connection terminated.'; exit 16
fi
stay";
/// No access concentrator answers.
const NO_SERVER: &str = "\
echo 'Timeout waiting for PADO packets'
echo 'Unable to complete PPPoE Discovery'
exit 8";
/// Comes up, then ignores SIGTERM.
const DEAF: &str = "trap '' TERM; up; stay";
/// Prints its password (as a pppd with `debug` and no `hide-password` could) on stderr.
const LEAKS: &str = "\
pw=$(sed -n 's/^password \"\\(.*\\)\"$/\\1/p' \"$opts\")
echo \"CHAP authentication failed: bad password $pw\" >&2
exit 19";

/// The fake pppd and everything it records, in one temporary directory.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(scenario: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let script = format!(
            r#"#!/bin/sh
# A stand-in for pppd: records how it was started, then plays the scenario.
D='{d}'
opts="$2"
wan=$(basename "$opts" .options)
echo "$*" >> "$D/$wan.argv"
n=$(( $(cat "$D/$wan.runs" 2>/dev/null || echo 0) + 1 ))
echo $n > "$D/$wan.runs"
cp "$opts" "$D/$wan.options.$n"
stat -c %a "$opts" > "$D/$wan.mode"
# pppd ends the session and exits 5 on SIGTERM; set before any output, so a stop that
# follows the first lines at once finds it.
trap 'echo term >> "$D/$wan.signals"; echo "Terminating on signal 15"; echo "Connection terminated."; exit 5' TERM
up() {{
  echo 'Plugin pppoe.so loaded.'
  echo "PPP session is $n"
  echo "Using interface ppp-$wan"
  echo "Connect: ppp-$wan <--> eth1"
  echo 'PAP authentication succeeded'
  echo "local  IP address 100.64.0.$((n + 1))"
  echo 'remote IP address 100.64.0.1'
}}
stay() {{
  while :; do sleep 0.02; done
}}
{scenario}
"#
        );
        let path = dir.path().join("pppd");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn cfg(&self) -> SupervisorConfig {
        SupervisorConfig {
            pppd: self.dir.path().join("pppd"),
            run_dir: self.run_dir(),
            backoff: Backoff {
                base: Duration::from_millis(20),
                max: Duration::from_millis(80),
                auth_failed: Duration::from_millis(300),
                auth_failed_max: Duration::from_millis(600),
                stable_after: Duration::from_secs(10),
            },
            stop_grace: Duration::from_millis(300),
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn runs(&self, wan: &str) -> u32 {
        self.read(&format!("{wan}.runs"))
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

fn line(wan: &str) -> PppoeLine {
    PppoeLine {
        wan: wan.into(),
        port: "eth1".into(),
        ifname: format!("ppp-{wan}"),
        username: "user@isp.example".into(),
        password: format!("pw-{wan}-Secret"),
        service_name: None,
        mtu: 1492,
        ipv6: true,
    }
}

fn up(local: &str) -> SessionState {
    SessionState::Up {
        local: local.parse().unwrap(),
        peer: Some("100.64.0.1".parse().unwrap()),
    }
}

/// The supervisor's changes, taken per WAN (the others are kept for their turn).
struct Changes {
    rx: UnboundedReceiver<SessionChange>,
    held: Vec<SessionChange>,
}

impl Changes {
    fn new(rx: UnboundedReceiver<SessionChange>) -> Self {
        Self {
            rx,
            held: Vec::new(),
        }
    }

    /// The next change of `wan`, within 5 s.
    async fn next(&mut self, wan: &str) -> SessionChange {
        if let Some(i) = self.held.iter().position(|c| c.wan == wan) {
            return self.held.remove(i);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let change = tokio::time::timeout(left, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no change of {wan} within 5 s"))
                .expect("change channel closed");
            if change.wan == wan {
                return change;
            }
            self.held.push(change);
        }
    }

    /// The line's task runs: its first change.
    async fn started(&mut self, wan: &str) {
        let change = self.next(wan).await;
        assert_eq!(
            (change.from, change.to),
            (SessionState::Stopped, SessionState::Connecting)
        );
        assert_eq!(change.retry_in_ms, None);
    }

    /// Nothing else arrived.
    fn assert_quiet(&mut self) {
        assert!(self.held.is_empty(), "{:?}", self.held);
        assert!(self.rx.try_recv().is_err(), "unexpected change");
    }
}

/// Everything logged while the guard lives (this thread: tokio tests run their tasks on it).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Keep the returned pair alive for the capture.
    fn capture(&self) -> (tracing::subscriber::DefaultGuard, tracing::Dispatch) {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        // The trap alerts/tests/mail_delivery.rs describes: with one registered dispatcher a
        // parallel test without a subscriber can cache "never" for our callsites; a second
        // live one makes tracing ask per event.
        let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        (guard, second)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

#[tokio::test]
async fn session_up_then_clean_shutdown() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let fake = Fake::new(UP);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;

    let change = rx.next("wan1").await;
    assert_eq!(
        (change.from.clone(), change.to.clone()),
        (SessionState::Connecting, up("100.64.0.2"))
    );
    assert_eq!(
        change.message(),
        "PPPoE session up on wan1: 100.64.0.2 peer 100.64.0.1"
    );
    assert_eq!(change.ifname, "ppp-wan1");
    let snap = sup.line("wan1").unwrap();
    assert_eq!(
        (snap.state, snap.restarts, snap.last_error, snap.retry_at_ms),
        (up("100.64.0.2"), 0, None, None)
    );

    // pppd's command line names the options file only; the file is private.
    let options = fake.run_dir().join("wan1.options");
    assert_eq!(
        fake.read("wan1.argv").trim(),
        format!("file {}", options.display())
    );
    assert_eq!(fake.read("wan1.mode").trim(), "600");
    assert!(fake
        .read("wan1.options.1")
        .contains("password \"pw-wan1-Secret\"\n"));

    sup.shutdown().await;
    let change = rx.next("wan1").await;
    assert_eq!(change.to, SessionState::Stopped);
    assert_eq!(change.message(), "PPPoE line wan1 stopped");
    assert_eq!(fake.read("wan1.signals"), "term\n", "stopped with SIGTERM");
    assert!(!options.exists(), "options file (password) left behind");
    assert!(sup.snapshot().is_empty());

    let logs = logs.text();
    assert!(
        logs.contains("pppd: PAP authentication succeeded"),
        "{logs}"
    );
    assert!(!logs.contains("Secret"), "password logged:\n{logs}");
}

#[tokio::test]
async fn refused_login_is_auth_failed_and_waits_the_long_backoff() {
    let fake = Fake::new(AUTH_FAILS);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;

    let failed = rx.next("wan1").await;
    let seen_at = Instant::now();
    let auth_failed = SessionState::AuthFailed {
        last_error: "authentication failed: Login incorrect".into(),
    };
    assert_eq!(failed.to, auth_failed);
    assert_eq!(failed.retry_in_ms, Some(300));
    assert_eq!(
        failed.message(),
        "PPPoE authentication failed: Login incorrect on wan1; retrying in 300 ms"
    );
    let snap = sup.line("wan1").unwrap();
    assert_eq!(snap.last_error.as_deref(), auth_failed.last_error());
    assert!(snap.retry_at_ms.is_some());

    // Not the 20 ms of an ordinary failure: nothing happens for the 300 ms.
    let retry = rx.next("wan1").await;
    assert_eq!(retry.to, SessionState::Connecting);
    assert!(
        seen_at.elapsed() >= Duration::from_millis(250),
        "{:?}",
        seen_at.elapsed()
    );
    let snap = sup.line("wan1").unwrap();
    assert_eq!(snap.restarts, 1);
    assert_eq!(
        snap.last_error.as_deref(),
        auth_failed.last_error(),
        "kept while retrying"
    );

    // A second refusal in a row doubles the wait.
    assert_eq!(rx.next("wan1").await.retry_in_ms, Some(600));
    assert_eq!(fake.runs("wan1"), 2);
    sup.shutdown().await;
}

#[tokio::test]
async fn a_new_password_retries_at_once_instead_of_waiting() {
    let fake = Fake::new(AUTH_FAILS);
    let mut cfg = fake.cfg();
    cfg.backoff.auth_failed = Duration::from_secs(60);
    let (mut sup, rx) = PppdSupervisor::new(cfg);
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;
    assert!(matches!(
        rx.next("wan1").await.to,
        SessionState::AuthFailed { .. }
    ));

    let mut fixed = line("wan1");
    fixed.password = "new-Secret".into();
    sup.set_lines(vec![fixed]).unwrap();
    assert_eq!(rx.next("wan1").await.to, SessionState::Connecting);
    assert!(matches!(
        rx.next("wan1").await.to,
        SessionState::AuthFailed { .. }
    ));
    assert!(fake
        .read("wan1.options.2")
        .contains("password \"new-Secret\""));
    assert_eq!(sup.line("wan1").unwrap().restarts, 0, "count starts over");
    sup.shutdown().await;
}

#[tokio::test]
async fn dropped_session_is_down_at_once_and_restarts() {
    let fake = Fake::new(DROPS_ONCE);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;

    assert_eq!(rx.next("wan1").await.to, up("100.64.0.2"));
    let down = rx.next("wan1").await;
    assert_eq!(
        down.to,
        SessionState::Down {
            last_error: "session dropped: Modem hangup".into()
        }
    );
    assert_eq!(
        down.message(),
        "PPPoE session down on wan1: session dropped: Modem hangup"
    );
    assert_eq!(rx.next("wan1").await.to, SessionState::Connecting);
    let back = rx.next("wan1").await;
    assert_eq!(back.to, up("100.64.0.3"));
    let snap = sup.line("wan1").unwrap();
    assert_eq!(snap.restarts, 1);
    assert_eq!(
        snap.last_error.as_deref(),
        Some("session dropped: Modem hangup")
    );
    sup.shutdown().await;
}

#[tokio::test]
async fn failures_back_off_exponentially_with_the_cause() {
    let fake = Fake::new(NO_SERVER);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;

    let mut waits = Vec::new();
    while waits.len() < 4 {
        let change = rx.next("wan1").await;
        if let SessionState::Down { last_error } = &change.to {
            assert_eq!(
                last_error,
                "PPPoE discovery failed: Timeout waiting for PADO packets"
            );
            waits.push(change.retry_in_ms.unwrap());
        }
    }
    assert_eq!(waits, [20, 40, 80, 80]);
    sup.shutdown().await;
}

#[tokio::test]
async fn changed_line_restarts_unchanged_stays_removed_stops() {
    let fake = Fake::new(UP);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1"), line("wan2")]).unwrap();
    rx.started("wan1").await;
    rx.started("wan2").await;
    assert_eq!(rx.next("wan1").await.to, up("100.64.0.2"));
    assert_eq!(rx.next("wan2").await.to, up("100.64.0.2"));

    // wan1's MTU changes: its pppd is stopped and started with the new file.
    let mut changed = line("wan1");
    changed.mtu = 1480;
    sup.set_lines(vec![changed.clone(), line("wan2")]).unwrap();
    let change = rx.next("wan1").await;
    assert_eq!(
        (change.from, change.to),
        (up("100.64.0.2"), SessionState::Connecting)
    );
    assert_eq!(rx.next("wan1").await.to, up("100.64.0.3"));
    assert_eq!(fake.read("wan1.signals"), "term\n");
    assert!(fake.read("wan1.options.2").contains("mtu 1480\n"));
    assert_eq!(fake.runs("wan2"), 1, "unchanged line restarted");

    // The same set again changes nothing.
    sup.set_lines(vec![changed.clone(), line("wan2")]).unwrap();

    // wan2 goes: stopped, its file removed; wan1 keeps running.
    sup.set_lines(vec![changed]).unwrap();
    assert_eq!(rx.next("wan2").await.to, SessionState::Stopped);
    assert_eq!(fake.read("wan2.signals"), "term\n");
    assert!(!fake.run_dir().join("wan2.options").exists());
    assert_eq!((fake.runs("wan1"), fake.runs("wan2")), (2, 1));
    let wans: Vec<_> = sup.snapshot().into_iter().map(|s| s.wan).collect();
    assert_eq!(wans, ["wan1"]);
    rx.assert_quiet();
    sup.shutdown().await;
}

#[tokio::test]
async fn readded_line_starts_after_the_old_pppd_is_gone() {
    let fake = Fake::new(DEAF);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;
    assert_eq!(rx.next("wan1").await.to, up("100.64.0.2"));
    let removed_at = Instant::now();
    sup.set_lines(vec![]).unwrap();
    let mut moved = line("wan2");
    moved.ifname = "ppp-wan1".into();
    sup.set_lines(vec![moved]).unwrap();
    // wan1's deaf pppd holds ppp-wan1 for the whole grace; wan2 starts only after it.
    let stopped = rx.next("wan1").await;
    assert_eq!(stopped.to, SessionState::Stopped);
    let started = rx.next("wan2").await;
    assert_eq!(started.to, SessionState::Connecting);
    assert!(started.at_ms >= stopped.at_ms);
    assert_eq!(rx.next("wan2").await.to, up("100.64.0.2"));
    let took = removed_at.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    sup.shutdown().await;
}

#[tokio::test]
async fn pppd_ignoring_sigterm_is_killed_after_the_grace() {
    let fake = Fake::new(DEAF);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;
    assert_eq!(rx.next("wan1").await.to, up("100.64.0.2"));
    let start = Instant::now();
    sup.shutdown().await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(rx.next("wan1").await.to, SessionState::Stopped);
}

#[tokio::test]
async fn password_stays_out_of_argv_logs_and_errors() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let fake = Fake::new(LEAKS);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    let l = line("wan1");
    sup.set_lines(vec![l.clone()]).unwrap();
    rx.started("wan1").await;

    let change = rx.next("wan1").await;
    assert_eq!(
        change.to,
        SessionState::AuthFailed {
            last_error: "authentication failed: bad password <hidden>".into()
        }
    );
    sup.shutdown().await;
    assert!(
        fake.read("wan1.options.1").contains(&l.password),
        "fake saw it"
    );
    assert!(!fake.read("wan1.argv").contains(&l.password));
    let logs = logs.text();
    assert!(
        logs.contains("bad password <hidden>"),
        "stderr read:\n{logs}"
    );
    assert!(!logs.contains(&l.password), "password logged:\n{logs}");
    let debug = format!("{l:?} {:?}", sup.snapshot());
    assert!(!debug.contains(&l.password), "{debug}");
    let json = serde_json::to_string(&change).unwrap();
    assert!(!json.contains(&l.password), "{json}");
}

#[tokio::test]
async fn missing_pppd_is_down_and_retried() {
    let fake = Fake::new(UP);
    let mut cfg = fake.cfg();
    cfg.pppd = fake.dir.path().join("no-such-pppd");
    let (mut sup, rx) = PppdSupervisor::new(cfg);
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;
    let change = rx.next("wan1").await;
    let error = change.to.last_error().unwrap().to_string();
    assert!(error.starts_with("cannot start "), "{error}");
    assert!(error.contains("no-such-pppd"), "{error}");
    assert_eq!(change.retry_in_ms, Some(20));
    assert_eq!(rx.next("wan1").await.to, SessionState::Connecting);
    sup.shutdown().await;
}

#[tokio::test]
async fn bad_sets_are_refused_whole() {
    let fake = Fake::new(UP);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    let mut same_ifname = line("wan2");
    same_ifname.ifname = "ppp-wan1".into();
    let mut bad_port = line("wan2");
    bad_port.port = "eth 2".into();
    let cases = [
        (
            vec![line("wan1"), line("wan1")],
            "PPPoE lines: WAN wan1 is given twice",
        ),
        (
            vec![line("wan1"), same_ifname],
            "PPPoE lines: wan1 and wan2 both want ppp device ppp-wan1",
        ),
        (
            vec![line("wan1"), bad_port],
            "PPPoE line wan2: port: `eth 2` may only hold letters, digits, '.', '-', '_' and '@'",
        ),
    ];
    for (lines, error) in cases {
        assert_eq!(sup.set_lines(lines).unwrap_err().to_string(), error);
    }
    assert!(sup.snapshot().is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    rx.assert_quiet();
    assert_eq!(fake.runs("wan1"), 0);
}

#[tokio::test]
async fn dropping_the_supervisor_kills_pppd_and_removes_the_file() {
    let fake = Fake::new(UP);
    let (mut sup, rx) = PppdSupervisor::new(fake.cfg());
    let mut rx = Changes::new(rx);
    sup.set_lines(vec![line("wan1")]).unwrap();
    rx.started("wan1").await;
    assert_eq!(rx.next("wan1").await.to, up("100.64.0.2"));
    drop(sup);
    assert!(!fake.run_dir().join("wan1.options").exists());
}

#[test]
fn the_change_channel_item_serialises_for_the_event_details() {
    let change = SessionChange {
        wan: "wan1".into(),
        ifname: "ppp-wan1".into(),
        from: SessionState::Connecting,
        to: up("100.64.0.2"),
        at_ms: 1,
        retry_in_ms: None,
    };
    assert_eq!(
        serde_json::to_value(&change).unwrap(),
        serde_json::json!({
            "wan": "wan1", "ifname": "ppp-wan1",
            "from": {"kind": "connecting"},
            "to": {"kind": "up", "local": "100.64.0.2", "peer": "100.64.0.1"},
            "at_ms": 1, "retry_in_ms": null
        })
    );
}
