//! The runner against a fake spawner: it records every start (engine, the file's text and
//! mode) and hands the test a handle to make that run print, exit, or see its reloads and
//! stops. Restart waits are milliseconds here.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[derive(Default)]
struct Run {
    engine: Option<Engine>,
    text: String,
    mode: u32,
    reloads: u32,
    stopped: bool,
    /// Makes the run exit with this status.
    exit: Option<mpsc::UnboundedSender<i32>>,
}

#[derive(Clone, Default)]
struct FakeSpawn {
    runs: Arc<Mutex<Vec<Run>>>,
    /// Starts fail while set.
    refuse: Arc<Mutex<bool>>,
}

struct FakeProcess {
    runs: Arc<Mutex<Vec<Run>>>,
    index: usize,
    exits: mpsc::UnboundedReceiver<i32>,
    exited: Option<i32>,
}

impl PppdProcess for FakeProcess {
    async fn next_event(&mut self) -> PppdEvent {
        if let Some(code) = self.exited {
            return PppdEvent::Exited(PppdExit::Code(code));
        }
        match self.exits.recv().await {
            Some(code) => {
                self.exited = Some(code);
                PppdEvent::Exited(PppdExit::Code(code))
            }
            None => std::future::pending().await,
        }
    }

    async fn stop(&mut self, _grace: Duration) -> PppdExit {
        self.runs.lock().unwrap()[self.index].stopped = true;
        PppdExit::Code(0)
    }
}

impl EngineProcess for FakeProcess {
    fn reload(&mut self) -> io::Result<()> {
        self.runs.lock().unwrap()[self.index].reloads += 1;
        Ok(())
    }
}

impl EngineSpawn for FakeSpawn {
    type Process = FakeProcess;

    fn spawn(&self, engine: Engine, conf: &Path, run_dir: &Path) -> io::Result<FakeProcess> {
        assert_eq!(conf.parent(), Some(run_dir));
        if *self.refuse.lock().unwrap() {
            return Err(io::Error::other("no such file"));
        }
        let (tx, exits) = mpsc::unbounded_channel();
        let mut runs = self.runs.lock().unwrap();
        runs.push(Run {
            engine: Some(engine),
            text: std::fs::read_to_string(conf).unwrap(),
            mode: std::fs::metadata(conf).unwrap().permissions().mode() & 0o777,
            exit: Some(tx),
            ..Run::default()
        });
        Ok(FakeProcess {
            runs: Arc::clone(&self.runs),
            index: runs.len() - 1,
            exits,
            exited: None,
        })
    }
}

fn files(k: &str, c: &str) -> Option<PairFiles> {
    Some(PairFiles {
        keepalived: k.into(),
        conntrackd: c.into(),
    })
}

struct Lab {
    dir: tempfile::TempDir,
    fake: FakeSpawn,
    runner: PairRunner<FakeSpawn>,
    changes: mpsc::UnboundedReceiver<EngineChange>,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeSpawn::default();
        let cfg = RunConfig {
            run_dir: dir.path().join("ha"),
            backoff: Backoff {
                base: Duration::from_millis(10),
                max: Duration::from_millis(40),
                stable_after: Duration::from_secs(60),
                ..Backoff::default()
            },
            stop_grace: Duration::from_millis(10),
        };
        let (runner, changes) = PairRunner::new(fake.clone(), cfg);
        Lab {
            dir,
            fake,
            runner,
            changes,
        }
    }

    /// (engine, text, mode, reloads, stopped) of every run so far.
    fn runs(&self) -> Vec<(Engine, String, u32, u32, bool)> {
        self.fake
            .runs
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.engine.unwrap(),
                    r.text.clone(),
                    r.mode,
                    r.reloads,
                    r.stopped,
                )
            })
            .collect()
    }

    async fn next(&mut self) -> (Engine, EngineState) {
        let c = tokio::time::timeout(Duration::from_secs(5), self.changes.recv())
            .await
            .expect("a change within 5 s")
            .unwrap();
        (c.engine, c.to)
    }

    /// The next changes until both engines reached `state` (in either order).
    async fn both(&mut self, state: &EngineState) {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let (engine, to) = self.next().await;
            if to == *state && !seen.contains(&engine) {
                seen.push(engine);
            }
        }
    }

    fn exit(&self, run: usize, code: i32) {
        let runs = self.fake.runs.lock().unwrap();
        runs[run].exit.as_ref().unwrap().send(code).unwrap();
    }

    fn run_index(&self, engine: Engine, nth: usize) -> usize {
        self.runs()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.0 == engine)
            .nth(nth)
            .unwrap()
            .0
    }
}

#[tokio::test]
async fn enabling_writes_both_files_0600_and_starts_both_engines() {
    let mut lab = Lab::new();
    lab.runner.set(files("K1", "C1")).await.unwrap();
    lab.both(&EngineState::Running).await;
    let mut runs = lab.runs();
    runs.sort();
    assert_eq!(
        runs,
        [
            (Engine::Keepalived, "K1".into(), 0o600, 0, false),
            (Engine::Conntrackd, "C1".into(), 0o600, 0, false),
        ]
    );
    let dir = lab.dir.path().join("ha");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let states: Vec<_> = lab.runner.snapshot().into_iter().map(|s| s.state).collect();
    assert_eq!(states, [EngineState::Running, EngineState::Running]);
}

#[tokio::test]
async fn the_same_files_again_change_nothing() {
    let mut lab = Lab::new();
    lab.runner.set(files("K1", "C1")).await.unwrap();
    lab.both(&EngineState::Running).await;
    lab.runner.set(files("K1", "C1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(lab.runs().len(), 2);
    assert!(lab.runs().iter().all(|r| r.3 == 0 && !r.4));
}

#[tokio::test]
async fn a_changed_keepalived_file_reloads_it_a_changed_conntrackd_file_restarts_it() {
    let mut lab = Lab::new();
    lab.runner.set(files("K1", "C1")).await.unwrap();
    lab.both(&EngineState::Running).await;
    lab.runner.set(files("K2", "C1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let k = lab.run_index(Engine::Keepalived, 0);
    assert_eq!(
        lab.runs()[k].3,
        1,
        "keepalived reloaded (SIGHUP), not restarted"
    );
    assert!(!lab.runs()[k].4);
    let path = lab.runner.conf_path(Engine::Keepalived);
    assert_eq!(std::fs::read_to_string(path).unwrap(), "K2");

    lab.runner.set(files("K2", "C2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c0 = lab.run_index(Engine::Conntrackd, 0);
    assert!(lab.runs()[c0].4, "the old conntrackd stopped");
    let c1 = lab.run_index(Engine::Conntrackd, 1);
    assert_eq!(lab.runs()[c1].1, "C2");
    assert_eq!(lab.runs().len(), 3);
}

#[tokio::test]
async fn an_engine_that_exits_is_started_again_after_a_doubling_wait() {
    let mut lab = Lab::new();
    lab.runner.set(files("K1", "C1")).await.unwrap();
    lab.both(&EngineState::Running).await;
    let c = lab.run_index(Engine::Conntrackd, 0);
    lab.exit(c, 1);
    let (engine, state) = lab.next().await;
    assert_eq!(engine, Engine::Conntrackd);
    assert!(
        matches!(&state, EngineState::Exited { last_error, .. } if last_error == "exited with status 1"),
        "{state:?}"
    );
    assert_eq!(lab.next().await, (Engine::Conntrackd, EngineState::Running));
    let c1 = lab.run_index(Engine::Conntrackd, 1);
    lab.exit(c1, 1);
    let _ = lab.next().await;
    let started = Instant::now();
    assert_eq!(lab.next().await, (Engine::Conntrackd, EngineState::Running));
    // The second failure in a row waits 20 ms (10, then doubled).
    assert!(started.elapsed() >= Duration::from_millis(15));
    let snap = lab.runner.snapshot();
    let conntrackd = snap
        .iter()
        .find(|s| s.engine == Engine::Conntrackd)
        .unwrap();
    assert_eq!(conntrackd.restarts, 2);
}

#[tokio::test]
async fn a_missing_binary_is_retried_and_reported() {
    let mut lab = Lab::new();
    *lab.fake.refuse.lock().unwrap() = true;
    lab.runner.set(files("K1", "C1")).await.unwrap();
    let (_, state) = lab.next().await;
    assert!(
        matches!(&state, EngineState::Exited { last_error, .. } if last_error.contains("cannot be started: no such file")),
        "{state:?}"
    );
    *lab.fake.refuse.lock().unwrap() = false;
    lab.both(&EngineState::Running).await;
}

#[tokio::test]
async fn disabling_stops_both_and_removes_the_files() {
    let mut lab = Lab::new();
    lab.runner.set(files("K1", "C1")).await.unwrap();
    lab.both(&EngineState::Running).await;
    lab.runner.set(None).await.unwrap();
    assert!(lab.runs().iter().all(|r| r.4), "both stopped");
    lab.both(&EngineState::Stopped).await;
    assert!(lab.runner.snapshot().is_empty());
    for engine in Engine::ALL {
        assert!(!lab.runner.conf_path(engine).exists());
    }
    // And on again.
    lab.runner.set(files("K3", "C3")).await.unwrap();
    lab.both(&EngineState::Running).await;
    assert_eq!(lab.runs().len(), 4);
}

#[test]
fn command_lines_run_in_the_foreground_with_pid_files_in_the_run_dir() {
    let p = EngineCommand::default();
    let args = |e| {
        let c = engine_command(&p, e, Path::new("/r/x.conf"), Path::new("/r"));
        let mut words = vec![c.get_program().to_string_lossy().into_owned()];
        words.extend(c.get_args().map(|a| a.to_string_lossy().into_owned()));
        let notify_removed = c
            .get_envs()
            .any(|(k, v)| k == "NOTIFY_SOCKET" && v.is_none());
        assert!(notify_removed);
        words.join(" ")
    };
    assert_eq!(
        args(Engine::Keepalived),
        "/usr/sbin/keepalived --dont-fork --vrrp --log-console --log-detail --use-file /r/x.conf \
         --pid /r/keepalived.pid --vrrp_pid /r/keepalived-vrrp.pid --checkers_pid /r/keepalived-checkers.pid"
    );
    assert_eq!(
        args(Engine::Conntrackd),
        "/usr/sbin/conntrackd -C /r/x.conf"
    );
}
