//! What happened and when: WAN state changes, failovers, operator actions, config changes.
//! The daemon keeps recent events for the dashboard and hands each to the alert sinks.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A WAN changed health state (up, degraded, down, recovering).
    StateChange,
    /// Latency above the configured threshold.
    HighLatency,
    /// The set of WANs carrying new connections changed.
    Failover,
    /// The configuration was reloaded (or a reload was refused).
    ConfigChange,
    /// Kill-switch or maintenance action.
    Operator,
    /// A PPPoE session came up, went down or was refused.
    Session,
    /// The HA pair: this box's role changed, or keepalived/conntrackd stopped or started.
    Ha,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    pub kind: EventKind,
    /// The WAN concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wan: Option<String>,
    /// One line for people: what happened and why.
    pub message: String,
    /// Figures behind it (latency, loss, flushed connections, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(kind: EventKind, wan: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            at_ms: now_ms(),
            kind,
            wan: wan.map(str::to_string),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The most recent events, oldest first, bounded.
#[derive(Debug, Clone)]
pub struct EventLog {
    events: VecDeque<Event>,
    capacity: usize,
}

impl EventLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn push(&mut self, e: Event) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Events after `since_ms`, optionally of one WAN and/or kind, oldest first.
    pub fn query(&self, since_ms: u64, wan: Option<&str>, kind: Option<EventKind>) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.at_ms > since_ms)
            .filter(|e| wan.is_none() || e.wan.as_deref() == wan)
            .filter(|e| kind.is_none() || Some(e.kind) == kind)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_filtered() {
        let mut log = EventLog::new(3);
        for i in 0..5 {
            let mut e = Event::new(
                EventKind::StateChange,
                Some(if i % 2 == 0 { "wan1" } else { "wan2" }),
                format!("e{i}"),
            );
            e.at_ms = i;
            log.push(e);
        }
        let all: Vec<_> = log
            .query(0, None, None)
            .iter()
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(all, ["e2", "e3", "e4"]);
        let wan1: Vec<_> = log
            .query(0, Some("wan1"), None)
            .iter()
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(wan1, ["e2", "e4"]);
        assert!(log.query(0, None, Some(EventKind::Failover)).is_empty());
    }
}
