//! The live picture: one background task asks the daemon for its status every second (the
//! daemon answers from a snapshot, without work on its event loop), adds system figures
//! (uptime, CPU, memory, conntrack) and per-WAN throughput computed from successive byte
//! counters, keeps an hour of throughput points per WAN, and fans the result out to every
//! SSE client through one broadcast channel (no per-client polling). Daemon events arrive
//! on one `subscribe` connection that stays open; each is followed by a status at once.
//! `GET /status` and `/metrics` answer from the latest snapshot while it is fresh.

use super::daemon::DaemonClient;
use super::error::ApiError;
use bytes::Bytes;
use routeros_shared::control::{Request, RouterStatus, StatusReport, WanReport};
use routeros_shared::events::{now_ms, Event, EventKind};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

/// How often the poller takes a status.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Wait before subscribing again after the daemon closed the event stream.
const RESUBSCRIBE: Duration = Duration::from_secs(1);
/// A snapshot younger than this is served as is.
pub const FRESH: Duration = Duration::from_millis(1500);
/// Throughput points kept per WAN (an hour at 1 s).
const HISTORY_POINTS: usize = 3600;
const HISTORY_MS: u64 = 3_600_000;
const CONNTRACK_DIR: &str = "/proc/sys/net/netfilter";

/// `GET /api/v1/status`: the daemon's status with throughput and system figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusBody {
    #[serde(flatten)]
    pub router: RouterStatus,
    pub wans: Vec<WanCard>,
    pub system: SystemInfo,
    /// Unix ms when this snapshot was taken.
    pub at_ms: u64,
}

impl StatusBody {
    pub fn wan(&self, name: &str) -> Option<&WanCard> {
        self.wans.iter().find(|w| w.wan.name == name)
    }
}

/// One WAN: the daemon's report and its throughput.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WanCard {
    #[serde(flatten)]
    pub wan: WanReport,
    /// Bits per second from the last two byte-counter readings (null until there are two).
    pub rx_bps: Option<f64>,
    pub tx_bps: Option<f64>,
}

/// This machine, as the web server sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemInfo {
    pub uptime_s: u64,
    pub cpu_percent: f64,
    /// Bytes.
    pub mem_used: u64,
    pub mem_total: u64,
    pub conntrack_count: Option<u64>,
    pub conntrack_max: Option<u64>,
    pub version: String,
}

/// What the SSE clients receive.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// The status JSON.
    Status(Bytes),
    /// One new daemon event (JSON).
    Event(Bytes),
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken: Instant,
    pub status: Arc<StatusBody>,
    /// `status` serialized once for every reader.
    pub json: Bytes,
}

/// One throughput point, bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub t_ms: u64,
    pub rx_bps: f64,
    pub tx_bps: f64,
}

/// A WAN's last byte-counter reading (the daemon's clock) and the rate it gave.
struct Counter {
    at_ms: u64,
    rx: u64,
    tx: u64,
    rate: Option<(f64, f64)>,
}

/// State of the status refresh, one refresh at a time.
struct Sampler {
    counters: HashMap<String, Counter>,
    system: sysinfo::System,
}

pub struct Telemetry {
    daemon: DaemonClient,
    sampler: tokio::sync::Mutex<Sampler>,
    latest: RwLock<Option<Snapshot>>,
    series: Mutex<HashMap<String, VecDeque<Rate>>>,
    tx: broadcast::Sender<StreamItem>,
    failovers: AtomicU64,
    reachable: AtomicBool,
}

impl Telemetry {
    pub fn new(daemon: DaemonClient) -> Self {
        let (tx, _) = broadcast::channel(64);
        Self {
            daemon,
            sampler: tokio::sync::Mutex::new(Sampler {
                counters: HashMap::new(),
                system: sysinfo::System::new(),
            }),
            latest: RwLock::new(None),
            series: Mutex::new(HashMap::new()),
            tx,
            failovers: AtomicU64::new(0),
            reachable: AtomicBool::new(true),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StreamItem> {
        self.tx.subscribe()
    }

    /// Failover events seen (those in the daemon's log at start, then every new one).
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// The latest snapshot if younger than `max_age`, else a fresh one.
    pub async fn current(&self, max_age: Duration) -> Result<Snapshot, ApiError> {
        if let Some(s) = self.fresh(max_age) {
            return Ok(s);
        }
        let mut sampler = self.sampler.lock().await;
        // Another request may have refreshed while we waited for the lock.
        if let Some(s) = self.fresh(max_age) {
            return Ok(s);
        }
        self.take(&mut sampler).await
    }

    /// A new snapshot now (after a change), broadcast to the streams.
    pub async fn refresh(&self) -> Result<Snapshot, ApiError> {
        let mut sampler = self.sampler.lock().await;
        self.take(&mut sampler).await
    }

    fn fresh(&self, max_age: Duration) -> Option<Snapshot> {
        self.latest
            .read()
            .expect("snapshot lock")
            .as_ref()
            .filter(|s| s.taken.elapsed() < max_age)
            .cloned()
    }

    async fn take(&self, sampler: &mut Sampler) -> Result<Snapshot, ApiError> {
        let status: StatusReport = self.daemon.ask(&Request::Status).await?;
        let now = Instant::now();
        let t_ms = now_ms();
        let at_ms = status.router.bytes_at_ms;
        let wans: Vec<WanCard> = status
            .wans
            .into_iter()
            .map(|wan| {
                let (rate, new) = sampler.rate(&wan, at_ms);
                if let (Some((rx, tx)), true) = (rate, new) {
                    self.push_rate(
                        &wan.name,
                        Rate {
                            t_ms,
                            rx_bps: rx,
                            tx_bps: tx,
                        },
                    );
                }
                WanCard {
                    wan,
                    rx_bps: rate.map(|r| r.0),
                    tx_bps: rate.map(|r| r.1),
                }
            })
            .collect();
        let seen: Vec<&str> = wans.iter().map(|w| w.wan.name.as_str()).collect();
        sampler.counters.retain(|k, _| seen.contains(&k.as_str()));
        self.series
            .lock()
            .expect("series lock")
            .retain(|k, _| seen.contains(&k.as_str()));
        let body = StatusBody {
            router: status.router,
            wans,
            system: sampler.system_info(),
            at_ms: t_ms,
        };
        let json = Bytes::from(serde_json::to_vec(&body).map_err(ApiError::internal)?);
        let snapshot = Snapshot {
            taken: now,
            status: Arc::new(body),
            json: json.clone(),
        };
        *self.latest.write().expect("snapshot lock") = Some(snapshot.clone());
        let _ = self.tx.send(StreamItem::Status(json));
        Ok(snapshot)
    }

    fn push_rate(&self, wan: &str, rate: Rate) {
        let mut series = self.series.lock().expect("series lock");
        let points = series.entry(wan.to_string()).or_default();
        points.push_back(rate);
        while points.len() > HISTORY_POINTS
            || points
                .front()
                .is_some_and(|p| p.t_ms + HISTORY_MS < rate.t_ms)
        {
            points.pop_front();
        }
    }

    /// Throughput points of a WAN at or after `since_ms`.
    pub fn throughput(&self, wan: &str, since_ms: u64) -> Vec<Rate> {
        self.series
            .lock()
            .expect("series lock")
            .get(wan)
            .map(|p| p.iter().filter(|r| r.t_ms >= since_ms).copied().collect())
            .unwrap_or_default()
    }

    /// Take note of a daemon event: count failovers, and pass it to the streams unless
    /// it is from the log as it was when we first subscribed.
    fn note(&self, event: &Event, new: bool) {
        if event.kind == EventKind::Failover {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
        if new {
            if let Ok(bytes) = serde_json::to_vec(event) {
                let _ = self.tx.send(StreamItem::Event(Bytes::from(bytes)));
            }
        }
    }

    /// Follow the daemon's events until `shutdown`: subscribe, forward each new event and
    /// refresh the status after it; when the daemon closes the stream (a restart), subscribe
    /// again for what was missed meanwhile.
    async fn follow_events(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut newest: Option<u64> = None;
        loop {
            if let Ok(mut sub) = self.daemon.subscribe(newest).await {
                // The first backlog is history; after a reconnect it is what we missed.
                let missed = newest.is_some();
                for event in &sub.backlog {
                    self.note(event, missed);
                }
                newest = Some(sub.backlog.iter().map(|e| e.at_ms).max().unwrap_or(0));
                if missed && !sub.backlog.is_empty() {
                    let _ = self.refresh().await;
                }
                loop {
                    tokio::select! {
                        event = sub.next() => match event {
                            Ok(event) => {
                                newest = newest.max(Some(event.at_ms));
                                self.note(&event, true);
                                let _ = self.refresh().await;
                            }
                            Err(_) => break,
                        },
                        _ = shutdown.changed() => return,
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RESUBSCRIBE) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// The poller, until `shutdown` turns true: a status every [`POLL_INTERVAL`], and the
    /// event subscription beside it.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let events = tokio::spawn(self.clone().follow_events(shutdown.clone()));
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            let result = self.refresh().await.map(|_| ());
            let ok = result.is_ok();
            if self.reachable.swap(ok, Ordering::Relaxed) != ok {
                match result {
                    Ok(()) => tracing::info!("daemon reachable again"),
                    Err(e) => tracing::warn!("status poll failed: {e:?}"),
                }
            }
        }
        events.abort();
    }
}

impl Sampler {
    /// Bits per second between the daemon's last two byte-counter readings of this WAN,
    /// and whether it is a new figure (false: the same reading as last time).
    fn rate(&mut self, wan: &WanReport, at_ms: Option<u64>) -> (Option<(f64, f64)>, bool) {
        let (Some(at_ms), Some(rx), Some(tx)) = (at_ms, wan.rx_bytes, wan.tx_bytes) else {
            return (None, false);
        };
        let prev = self.counters.get(&wan.name);
        if let Some(prev) = prev.filter(|p| p.at_ms == at_ms) {
            return (prev.rate, false);
        }
        let rate = prev.and_then(|prev| {
            let dt = at_ms.saturating_sub(prev.at_ms) as f64 / 1000.0;
            // Counters reset (link re-created) or readings too close together: no figure.
            if dt < 0.05 || rx < prev.rx || tx < prev.tx {
                return None;
            }
            Some((
                (rx - prev.rx) as f64 * 8.0 / dt,
                (tx - prev.tx) as f64 * 8.0 / dt,
            ))
        });
        self.counters.insert(
            wan.name.clone(),
            Counter {
                at_ms,
                rx,
                tx,
                rate,
            },
        );
        (rate, rate.is_some())
    }

    fn system_info(&mut self) -> SystemInfo {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let read = |name: &str| {
            std::fs::read_to_string(format!("{CONNTRACK_DIR}/{name}"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        SystemInfo {
            uptime_s: sysinfo::System::uptime(),
            cpu_percent: (f64::from(self.system.global_cpu_usage()) * 10.0).round() / 10.0,
            mem_used: self.system.used_memory(),
            mem_total: self.system.total_memory(),
            conntrack_count: read("nf_conntrack_count"),
            conntrack_max: read("nf_conntrack_max"),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
