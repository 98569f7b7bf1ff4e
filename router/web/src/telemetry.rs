//! The live picture: one background task asks the daemon for its status every second, adds
//! system figures (uptime, CPU, memory, conntrack) and per-WAN throughput computed from
//! successive byte counters, keeps an hour of 1 s throughput points per WAN, and fans the
//! result out to every SSE client through one broadcast channel (no per-client polling).
//! New daemon events are fetched the same way (`events{since_ms}`).
//! `GET /status` and `/metrics` answer from the latest snapshot while it is fresh.

use super::daemon::DaemonClient;
use super::error::ApiError;
use bytes::Bytes;
use routeros_shared::control::Request;
use routeros_shared::events::now_ms;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// How often the poller takes a status.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often it asks for new daemon events in between; a new event (a WAN went down, a
/// failover, an operator action) is followed by a status at once, so the cards change
/// within this much of the daemon, not up to a whole status interval later.
pub const EVENT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// A snapshot younger than this is served as is.
pub const FRESH: Duration = Duration::from_millis(1500);
/// Throughput points kept per WAN (an hour at 1 s).
const HISTORY_POINTS: usize = 3600;
const HISTORY_MS: u64 = 3_600_000;
const CONNTRACK_DIR: &str = "/proc/sys/net/netfilter";

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
    pub status: Arc<Value>,
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

struct Counter {
    at: Instant,
    rx: u64,
    tx: u64,
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
    events_since: tokio::sync::Mutex<Option<u64>>,
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
            events_since: tokio::sync::Mutex::new(None),
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
        let mut status = self.daemon.ok(&Request::Status).await?;
        let now = Instant::now();
        let t_ms = now_ms();
        if let Some(obj) = status.as_object_mut() {
            obj.remove("ok");
        }
        let mut seen = Vec::new();
        if let Some(wans) = status.get_mut("wans").and_then(Value::as_array_mut) {
            for wan in wans.iter_mut() {
                let Some(name) = wan.get("name").and_then(Value::as_str).map(str::to_string) else {
                    continue;
                };
                let rate = sampler.rate(&name, wan, now);
                if let Some((rx, tx)) = rate {
                    self.push_rate(
                        &name,
                        Rate {
                            t_ms,
                            rx_bps: rx,
                            tx_bps: tx,
                        },
                    );
                }
                if let Some(obj) = wan.as_object_mut() {
                    obj.insert("rx_bps".into(), json!(rate.map(|r| r.0)));
                    obj.insert("tx_bps".into(), json!(rate.map(|r| r.1)));
                }
                seen.push(name);
            }
        }
        sampler.counters.retain(|k, _| seen.contains(k));
        self.series
            .lock()
            .expect("series lock")
            .retain(|k, _| seen.contains(k));
        if let Some(obj) = status.as_object_mut() {
            obj.insert("system".into(), sampler.system_info());
            obj.insert("at_ms".into(), json!(t_ms));
        }
        let json = Bytes::from(serde_json::to_vec(&status).map_err(ApiError::internal)?);
        let snapshot = Snapshot {
            taken: now,
            status: Arc::new(status),
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

    /// Fetch events newer than the last seen and broadcast them; returns how many. The first
    /// call only takes note of what is already in the daemon's log (and counts its
    /// failovers).
    pub async fn poll_events(&self) -> Result<usize, ApiError> {
        let mut since = self.events_since.lock().await;
        let answer = self
            .daemon
            .ok(&Request::Events {
                since_ms: Some(since.unwrap_or(0)),
                wan: None,
                kind: None,
            })
            .await?;
        let events = answer
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut newest = since.unwrap_or(0);
        let mut new = 0;
        for event in &events {
            let at = event.get("at_ms").and_then(Value::as_u64).unwrap_or(0);
            if since.is_some_and(|s| at <= s) {
                continue;
            }
            newest = newest.max(at);
            if event.get("kind").and_then(Value::as_str) == Some("failover") {
                self.failovers.fetch_add(1, Ordering::Relaxed);
            }
            if since.is_some() {
                new += 1;
                if let Ok(bytes) = serde_json::to_vec(event) {
                    let _ = self.tx.send(StreamItem::Event(Bytes::from(bytes)));
                }
            }
        }
        *since = Some(newest);
        Ok(new)
    }

    /// The poller, until `shutdown` turns true: every second status then events; in between,
    /// events every [`EVENT_POLL_INTERVAL`], and a status at once when there are new ones.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut events_tick = tokio::time::interval(EVENT_POLL_INTERVAL);
        events_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let full = tokio::select! {
                _ = tick.tick() => true,
                _ = events_tick.tick() => false,
                _ = shutdown.changed() => break,
            };
            if *shutdown.borrow() {
                break;
            }
            if !full {
                // Only while the daemon answers; the full poll reports when it does not.
                if self.reachable.load(Ordering::Relaxed)
                    && matches!(self.poll_events().await, Ok(n) if n > 0)
                {
                    let _ = self.refresh().await;
                }
                continue;
            }
            let result = match self.refresh().await {
                Ok(_) => self.poll_events().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let ok = result.is_ok();
            if self.reachable.swap(ok, Ordering::Relaxed) != ok {
                match result {
                    Ok(()) => tracing::info!("daemon reachable again"),
                    Err(e) => tracing::warn!("status poll failed: {e:?}"),
                }
            }
        }
    }
}

impl Sampler {
    /// Bits per second since the previous sample of this WAN's byte counters.
    fn rate(&mut self, wan: &str, status: &Value, now: Instant) -> Option<(f64, f64)> {
        let rx = status.get("rx_bytes").and_then(Value::as_u64)?;
        let tx = status.get("tx_bytes").and_then(Value::as_u64)?;
        let prev = self
            .counters
            .insert(wan.to_string(), Counter { at: now, rx, tx })?;
        let dt = now.duration_since(prev.at).as_secs_f64();
        // Counters reset (link re-created) or samples too close together: no figure.
        if dt < 0.05 || rx < prev.rx || tx < prev.tx {
            return None;
        }
        Some((
            (rx - prev.rx) as f64 * 8.0 / dt,
            (tx - prev.tx) as f64 * 8.0 / dt,
        ))
    }

    fn system_info(&mut self) -> Value {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let read = |name: &str| {
            std::fs::read_to_string(format!("{CONNTRACK_DIR}/{name}"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        json!({
            "uptime_s": sysinfo::System::uptime(),
            "cpu_percent": (f64::from(self.system.global_cpu_usage()) * 10.0).round() / 10.0,
            "mem_used": self.system.used_memory(),
            "mem_total": self.system.total_memory(),
            "conntrack_count": read("nf_conntrack_count"),
            "conntrack_max": read("nf_conntrack_max"),
            "version": env!("CARGO_PKG_VERSION"),
        })
    }
}
