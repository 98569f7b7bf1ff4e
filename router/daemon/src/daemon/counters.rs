//! Counts for the status, read off the event loop. Connections: one conntrack dump
//! bucketed by mark per tick, on a task of its own, however many WANs and however many
//! clients ask. Bytes: one link dump when a status is answered (cheap, and current to the
//! moment, as byte counts are expected to be), on the control server's own netlink socket.

use crate::apply::conntrack::ConntrackNetlink;
use crate::apply::{LinkObserver, NetlinkDriver};
use routeros_shared::control::StatusReport;
use routeros_shared::events::now_ms;
use routeros_shared::plan::MARK_MASK;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// How often connections are counted.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// One count of the connections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Conntrack entries by `ctmark & MARK_MASK` (None before the first count, or when
    /// the dump failed).
    pub connections: Option<BTreeMap<u32, u64>>,
}

impl Counters {
    /// Fill each WAN's `connections`.
    pub fn fill(&self, report: &mut StatusReport) {
        for w in &mut report.wans {
            w.connections = self
                .connections
                .as_ref()
                .map(|by_mark| by_mark.get(&w.mark).copied().unwrap_or(0));
        }
    }
}

/// Start the counting task; its counts arrive on the returned channel. Failing to open the
/// socket is not fatal: the status then shows no counts (null), as a failed count did.
pub fn spawn() -> watch::Receiver<Arc<Counters>> {
    let (tx, rx) = watch::channel(Arc::new(Counters::default()));
    let Some(mut conntrack) = ConntrackNetlink::connect()
        .map_err(|e| tracing::warn!("connection counts unavailable: {e}"))
        .ok()
    else {
        return rx;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COUNT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut failing = false;
        loop {
            tick.tick().await;
            let connections = match conntrack.count_by_mark(MARK_MASK).await {
                Ok(by_mark) => {
                    failing = false;
                    Some(by_mark)
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!("counting connections failed: {e}");
                    }
                    None
                }
            };
            if tx.send(Arc::new(Counters { connections })).is_err() {
                return;
            }
        }
    });
    rx
}

/// Interface byte counters, read on demand through a netlink socket of their own.
#[derive(Default)]
pub struct ByteCounters {
    links: Mutex<Option<NetlinkDriver>>,
}

impl ByteCounters {
    pub fn connect() -> Self {
        let links = NetlinkDriver::connect()
            .map_err(|e| tracing::warn!("byte counters unavailable: {e}"))
            .ok();
        Self {
            links: Mutex::new(links),
        }
    }

    /// Fill each WAN's `rx_bytes`/`tx_bytes` and `bytes_at_ms` with a reading taken now.
    pub async fn fill(&self, report: &mut StatusReport) {
        let mut links = self.links.lock().await;
        let Some(links) = links.as_mut() else {
            return;
        };
        let bytes: HashMap<String, (u64, u64)> = links.byte_counters().await.unwrap_or_default();
        report.router.bytes_at_ms = Some(now_ms());
        for w in &mut report.wans {
            let b = bytes.get(&w.device);
            w.rx_bytes = b.map(|b| b.0);
            w.tx_bytes = b.map(|b| b.1);
        }
    }
}
