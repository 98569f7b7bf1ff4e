//! Connection and byte counts for the status, read on a timer by a task of their own (its
//! own netlink sockets): one conntrack dump bucketed by mark and one link dump per tick,
//! however many WANs and however many clients ask for the status. The event loop never
//! waits for them.

use crate::apply::conntrack::ConntrackNetlink;
use crate::apply::{LinkObserver, NetlinkDriver};
use routeros_shared::control::StatusReport;
use routeros_shared::events::now_ms;
use routeros_shared::plan::MARK_MASK;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the counts are read (the web's throughput points are 1 s apart).
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// One reading of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Unix ms of the reading (None before the first).
    pub at_ms: Option<u64>,
    /// Conntrack entries by `ctmark & MARK_MASK` (None when the dump failed).
    pub connections: Option<BTreeMap<u32, u64>>,
    /// Interface name -> (rx, tx) bytes.
    pub bytes: HashMap<String, (u64, u64)>,
}

impl Counters {
    /// Fill each WAN's `connections`, `rx_bytes` and `tx_bytes`.
    pub fn fill(&self, report: &mut StatusReport) {
        report.router.counters_at_ms = self.at_ms;
        for w in &mut report.wans {
            w.connections = self
                .connections
                .as_ref()
                .map(|by_mark| by_mark.get(&w.mark).copied().unwrap_or(0));
            let bytes = self.bytes.get(&w.name);
            w.rx_bytes = bytes.map(|b| b.0);
            w.tx_bytes = bytes.map(|b| b.1);
        }
    }
}

/// Start the counter task; its readings arrive on the returned channel. Failing to open
/// a socket is not fatal: the status then shows no counts (null), as a failed count did.
pub fn spawn() -> watch::Receiver<Arc<Counters>> {
    let (tx, rx) = watch::channel(Arc::new(Counters::default()));
    let mut conntrack = ConntrackNetlink::connect()
        .map_err(|e| tracing::warn!("connection counts unavailable: {e}"))
        .ok();
    let mut links = NetlinkDriver::connect()
        .map_err(|e| tracing::warn!("byte counters unavailable: {e}"))
        .ok();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COUNT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut failing = false;
        loop {
            tick.tick().await;
            let connections = match &mut conntrack {
                Some(ct) => match ct.count_by_mark(MARK_MASK).await {
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
                },
                None => None,
            };
            let bytes = match &mut links {
                Some(l) => l.byte_counters().await.unwrap_or_default(),
                None => HashMap::new(),
            };
            let reading = Counters {
                at_ms: Some(now_ms()),
                connections,
                bytes,
            };
            if tx.send(Arc::new(reading)).is_err() {
                return;
            }
        }
    });
    rx
}
