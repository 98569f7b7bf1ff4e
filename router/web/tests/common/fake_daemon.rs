//! A stand-in for routeros-watchdog's control socket, built from the protocol's own types
//! (`routeros_shared::control`): the web API tests drive it in-process (recording what it
//! was asked), and `examples/fake_daemon.rs` serves it to ci/bench-web.sh. It answers at
//! once with canned but plausible figures; byte counters grow with every status. Like the
//! daemon, it keeps the config it was last given, with any inline PPPoE password moved out
//! into a "secret file" (`password_file`; here the secret stays in memory).

#![allow(dead_code)] // each user takes what it needs

use routeros_shared::config::{Config, WanMode};
use routeros_shared::control::{
    parse_request, to_wire, Applied, ConfigReply, Done, EventsReply, HealthPoint, HealthState,
    HistoryReply, Ipv6Report, LineReport, PendingInfo, Refusal, RefusalCode, Reply, Request,
    RouterStatus, SessionReport, SessionState, StatusReport, Subscribed, TakeOutEffect, TakenOut,
    VersionInfo, VersionsReply, WanReport, WanRole, CONFIRM_SECONDS,
};
use routeros_shared::events::{now_ms, Event, EventKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

pub const CONFIG_TOML: &str = r#"[[wan_interfaces]]
name = "wan1"
weight = 2
gateway = "192.0.2.1"

[[wan_interfaces]]
name = "wan2"
mode = "pppoe"

[wan_interfaces.pppoe]
username = "customer@isp.example"
password_file = "/opt/routeros/config/secrets/wan2.pppoe"

[lan]
interface = "lan0"
address = "192.168.1.1/24"

[health_check]
targets = ["203.0.113.1"]
"#;

/// The fake's state, shared by its connections and the test that drives it.
#[derive(Clone)]
pub struct FakeDaemon {
    inner: Arc<Inner>,
}

struct Inner {
    /// The WANs as the status reports them (counters aside).
    wans: Vec<WanReport>,
    /// Bytes per second of each WAN's rx counter (tx is a tenth).
    rates: Vec<u64>,
    requests: Mutex<Vec<Value>>,
    events: Mutex<Vec<Event>>,
    subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
    statuses: AtomicU64,
    /// What the next disable or maintenance reports as reset.
    resets: AtomicU64,
    /// The config as saved (GetConfig answers it; ApplyConfig replaces it).
    config: Mutex<String>,
    /// PPPoE passwords by WAN, as the daemon's secret files would hold them.
    secrets: Mutex<BTreeMap<String, String>>,
    /// Answer set_timezone as a system without systemd-timedated does.
    no_timedated: AtomicBool,
}

/// Where the fake says it keeps a WAN's PPPoE password (the daemon's secret file).
pub fn secret_file(wan: &str) -> String {
    format!("/opt/routeros/config/secrets/{wan}.pppoe")
}

fn wan(i: u32, name: &str, up: bool, active: bool, connections: u64) -> WanReport {
    WanReport {
        name: name.into(),
        device: name.into(),
        line: Default::default(),
        table: 100 * (i + 1),
        mark: (i + 1) << 8,
        weight: if i == 0 { 2 } else { 1 },
        priority: 1,
        gateway: Some(format!("192.0.2.{}", i + 1).parse().unwrap()),
        address: up.then(|| format!("192.0.2.{}/24", 100 + i).parse().unwrap()),
        present: true,
        carrier: up,
        state: Some(if up {
            HealthState::Up
        } else {
            HealthState::Down
        }),
        since_ms: Some(1000 * u64::from(i + 1)),
        latency_ms: up.then_some(12.5 + f64::from(i)),
        jitter_ms: up.then_some(1.5),
        loss_percent: Some(if up { 0.0 } else { 100.0 }),
        connections: Some(connections),
        rx_bytes: None,
        tx_bytes: None,
        usable: up,
        role: if active {
            WanRole::Active
        } else {
            WanRole::Standby
        },
        take_out: TakeOutEffect::default(),
        disabled: false,
        maintenance_until: None,
        active,
        ipv6: Some(Ipv6Report {
            address: up.then(|| format!("2001:db8:ff0{}::2/64", i + 1).parse().unwrap()),
            gateway: Some("fe80::1".parse().unwrap()),
            usable: up,
            active,
            state: Some(if up {
                HealthState::Up
            } else {
                HealthState::Down
            }),
            since_ms: Some(1000),
            latency_ms: up.then_some(14.0),
            loss_percent: Some(if up { 0.0 } else { 100.0 }),
        }),
        speed_down: None,
        speed_up: None,
        share: None,
        shaping: None,
    }
}

impl FakeDaemon {
    /// The web tests' router: wan1 up and active with 17 connections, wan2 down; one
    /// failover in the log.
    pub fn two_wans() -> Self {
        let mut wans = vec![
            wan(0, "wan1", true, true, 17),
            wan(1, "wan2", false, false, 0),
        ];
        // What the daemon's rule says: wan1 is the last WAN in service (nothing to move its
        // connections to); wan2 is out already.
        wans[1].take_out.takeover = vec!["wan1".into()];
        // wan2 is a PPPoE line whose ISP refused the password: no ppp device, no address.
        wans[1].device = "ppp-wan2".into();
        wans[1].present = false;
        wans[1].gateway = None;
        wans[1].line = LineReport {
            mode: Some(WanMode::Pppoe),
            vlan: None,
            session: Some(SessionReport {
                state: SessionState::AuthFailed,
                last_error: Some("authentication failed".into()),
                since_ms: Some(2000),
                restarts: 3,
            }),
        };
        Self::new(wans, vec![125_000, 0])
    }

    /// `n` WANs, all up and active (the benchmark's router).
    pub fn all_up(n: usize) -> Self {
        let names: Vec<String> = (1..=n).map(|i| format!("wan{i}")).collect();
        let wans = (0u32..)
            .zip(&names)
            .map(|(i, name)| {
                let mut w = wan(i, name, true, true, 100 * u64::from(i + 1));
                w.take_out = TakeOutEffect {
                    resets_connections: n > 1,
                    takeover: names.iter().filter(|o| *o != name).cloned().collect(),
                };
                w
            })
            .collect();
        // 100 Mbit/s, 50 Mbit/s, ...
        let rates = (1u64..).take(n).map(|i| 12_500_000 / i).collect();
        Self::new(wans, rates)
    }

    fn new(wans: Vec<WanReport>, rates: Vec<u64>) -> Self {
        let first = Event::new(
            EventKind::Failover,
            Some("wan2"),
            "wan2 down: traffic moved to wan1",
        );
        let first = Event {
            at_ms: 1000,
            ..first
        };
        Self {
            inner: Arc::new(Inner {
                wans,
                rates,
                requests: Mutex::default(),
                events: Mutex::new(vec![first]),
                subscribers: Mutex::default(),
                statuses: AtomicU64::new(0),
                resets: AtomicU64::new(0),
                config: Mutex::new(CONFIG_TOML.into()),
                secrets: Mutex::new(BTreeMap::from([(
                    "wan2".to_string(),
                    "old-pppoe-secret".to_string(),
                )])),
                no_timedated: AtomicBool::new(false),
            }),
        }
    }

    /// Serve `path` on background threads (for as long as the process runs).
    pub fn serve(&self, path: &Path) -> std::io::Result<()> {
        let listener = UnixListener::bind(path)?;
        let fake = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let fake = fake.clone();
                std::thread::spawn(move || fake.session(stream));
            }
        });
        Ok(())
    }

    /// The requests received with this `cmd`, as sent.
    pub fn requests(&self, cmd: &str) -> Vec<Value> {
        self.inner
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["cmd"] == cmd)
            .cloned()
            .collect()
    }

    /// Log an event and push it to the subscribers, as the daemon does.
    pub fn push_event(&self, event: Event) {
        self.inner.events.lock().unwrap().push(event.clone());
        self.inner
            .subscribers
            .lock()
            .unwrap()
            .retain(|s| s.send(event.clone()).is_ok());
    }

    /// The config as the fake saved it.
    pub fn config_text(&self) -> String {
        self.inner.config.lock().unwrap().clone()
    }

    /// Replace the saved config as if edited by hand on the router (nothing moved).
    pub fn set_config_text(&self, text: &str) {
        *self.inner.config.lock().unwrap() = text.into();
    }

    /// The PPPoE password the fake holds for `wan` (its "secret file").
    pub fn secret(&self, wan: &str) -> Option<String> {
        self.inner.secrets.lock().unwrap().get(wan).cloned()
    }

    /// Refuse set_timezone as a system without systemd-timedated (the namespace lab) does.
    pub fn without_timedated(&self) {
        self.inner.no_timedated.store(true, Ordering::SeqCst);
    }

    /// Save an applied config as the daemon does: an inline PPPoE password goes into the
    /// WAN's secret file and the saved text points there.
    fn save_config(&self, text: &str) {
        let Ok(cfg) = Config::from_toml(text) else {
            *self.inner.config.lock().unwrap() = text.into();
            return;
        };
        let mut raw = cfg.to_raw();
        for wan in &mut raw.wan_interfaces {
            if let Some(p) = wan.pppoe.as_mut() {
                if let Some(pw) = p.password.take() {
                    self.inner
                        .secrets
                        .lock()
                        .unwrap()
                        .insert(wan.name.clone(), pw);
                    p.password_file = Some(secret_file(&wan.name).into());
                }
            }
        }
        let saved = Config::from_raw(raw).expect("still valid");
        *self.inner.config.lock().unwrap() = toml::to_string(&saved).unwrap();
    }

    /// Connections the next disable or maintenance says it reset.
    pub fn set_resets(&self, n: u64) {
        self.inner.resets.store(n, Ordering::SeqCst);
    }

    fn session(&self, stream: UnixStream) {
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(raw) = serde_json::from_str::<Value>(&line) {
                self.inner.requests.lock().unwrap().push(raw);
            }
            let answer = match parse_request(line.as_bytes()) {
                Ok(Request::Subscribe { since_ms }) => {
                    return self.stream_events(writer, since_ms.unwrap_or(0));
                }
                Ok(req) => self.answer(req),
                Err(refusal) => Err(refusal),
            };
            if writeln!(writer, "{}", to_wire(&answer)).is_err() {
                break;
            }
        }
    }

    fn stream_events(&self, mut writer: UnixStream, since_ms: u64) {
        let (tx, rx) = mpsc::channel();
        let backlog = {
            // Under the log's lock: no event falls between the backlog and the live ones.
            let events = self.inner.events.lock().unwrap();
            self.inner.subscribers.lock().unwrap().push(tx);
            events
                .iter()
                .filter(|e| e.at_ms > since_ms)
                .cloned()
                .collect()
        };
        let first = Ok(Reply::Subscribed(Subscribed { backlog }));
        if writeln!(writer, "{}", to_wire(&first)).is_err() {
            return;
        }
        for event in rx {
            let Ok(line) = serde_json::to_string(&event) else {
                continue;
            };
            if writeln!(writer, "{line}").is_err() {
                return;
            }
        }
    }

    fn status(&self) -> StatusReport {
        let n = self.inner.statuses.fetch_add(1, Ordering::SeqCst) + 1;
        let wans: Vec<WanReport> = self
            .inner
            .wans
            .iter()
            .zip(&self.inner.rates)
            .map(|(w, rate)| WanReport {
                rx_bytes: Some(5 + n * rate),
                tx_bytes: Some(5 + n * rate / 10),
                ..w.clone()
            })
            .collect();
        StatusReport {
            router: RouterStatus {
                config: "/opt/routeros/config/routeros.toml".into(),
                mode: "ecmp".into(),
                active_wans: wans
                    .iter()
                    .filter(|w| w.active)
                    .map(|w| w.name.clone())
                    .collect(),
                active_wans6: wans
                    .iter()
                    .filter(|w| w.ipv6.as_ref().is_some_and(|v6| v6.active))
                    .map(|w| w.name.clone())
                    .collect(),
                failover_paused_until: None,
                applied_at: Some(1000),
                last_apply_ms: Some(3.0),
                last_error: None,
                kernel_restores: 0,
                ha: None,
                bytes_at_ms: Some(now_ms()),
            },
            wans,
        }
    }

    fn known(&self, wan: &str) -> Result<(), Refusal> {
        if self.inner.wans.iter().any(|w| w.name == wan) {
            Ok(())
        } else {
            Err(Refusal::not_found(format!(
                "`{wan}` is not a WAN interface"
            )))
        }
    }

    fn answer(&self, req: Request) -> Result<Reply, Refusal> {
        let done = |message: String| {
            Reply::Done(Done {
                message,
                apply_ms: None,
            })
        };
        let taken_out = |message: String| {
            Reply::TakenOut(TakenOut {
                message,
                reset_connections: self.inner.resets.load(Ordering::SeqCst),
            })
        };
        let applied = |id: &str, rollback_at_ms, version| {
            Reply::Applied(Applied {
                pending: PendingInfo {
                    id: id.into(),
                    rollback_at_ms,
                    by: None,
                },
                version: Some(version),
                apply_ms: Some(3.0),
            })
        };
        Ok(match req {
            Request::Status => Reply::Status(Box::new(self.status())),
            Request::Reload => done("configuration reloaded from file".into()),
            Request::Disable { wan } => {
                self.known(&wan)?;
                taken_out(format!("{wan} disable by the operator"))
            }
            Request::Enable { wan } => {
                self.known(&wan)?;
                done(format!("{wan} enable by the operator"))
            }
            Request::Maintenance { wan: Some(wan), .. } => {
                self.known(&wan)?;
                taken_out(format!("{wan} maintenance by the operator"))
            }
            Request::Maintenance { wan: None, .. } => done("failover paused".into()),
            Request::Events {
                since_ms,
                wan,
                kind,
            } => Reply::Events(EventsReply {
                events: self
                    .inner
                    .events
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|e| e.at_ms > since_ms.unwrap_or(0))
                    .filter(|e| wan.is_none() || e.wan == wan)
                    .filter(|e| kind.is_none_or(|k| e.kind == k))
                    .cloned()
                    .collect(),
            }),
            Request::History { wan, seconds } => {
                self.known(&wan)?;
                let now = now_ms();
                let mut points: Vec<HealthPoint> = (0..(seconds / 5).clamp(1, 720))
                    .map(|k| HealthPoint {
                        t_ms: now - 5000 * u64::from(k),
                        latency_ms: Some(10.0),
                        jitter_ms: Some(1.0),
                        loss_percent: 0.0,
                    })
                    .collect();
                points.reverse();
                Reply::History(HistoryReply { wan, points })
            }
            Request::GetConfig => Reply::Config(ConfigReply {
                toml: self.config_text(),
                version: Some(3),
                pending: None,
                confirm_seconds: CONFIRM_SECONDS,
            }),
            Request::ApplyConfig { toml, .. } => {
                self.save_config(&toml);
                applied("19abc", 99_000, 4)
            }
            Request::RollbackConfig { .. } => applied("19abd", 99_500, 5),
            Request::ConfirmConfig { id } if id == "19abc" => done("change confirmed".into()),
            Request::ConfirmConfig { .. } => {
                return Err(Refusal::field(
                    RefusalCode::Conflict,
                    "id",
                    "not the pending change",
                ))
            }
            Request::ConfigHistory => Reply::Versions(VersionsReply {
                versions: vec![
                    VersionInfo {
                        version: 1,
                        saved_at_ms: 1000,
                        by: "install".into(),
                    },
                    VersionInfo {
                        version: 3,
                        saved_at_ms: 3000,
                        by: "admin".into(),
                    },
                ],
            }),
            Request::SetTimezone { .. } if self.inner.no_timedated.load(Ordering::SeqCst) => {
                return Err(Refusal::new(
                    RefusalCode::Unsupported,
                    "time zone not set: systemd-timedated is not available here",
                ))
            }
            Request::SetTimezone { name } => done(format!("time zone set to {name}")),
            // keepalived's, never the web's.
            Request::HaNotify { .. } => {
                return Err(Refusal::new(
                    RefusalCode::BadRequest,
                    "ha-notify: [ha] is not enabled on this box",
                ))
            }
            Request::Subscribe { .. } => unreachable!("answered by the session"),
        })
    }
}
