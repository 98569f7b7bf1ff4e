//! WAN health checks.
//!
//! - [`probe`] sends ICMP echo rounds through one WAN (socket bound to the interface; the
//!   planner's `oif` rules pick the WAN's table) and is the only part doing I/O.
//! - [`monitor`] turns rounds and carrier events into Up / Degraded / Down / Recovering
//!   with hysteresis (separate down and up counts) and reports the transitions.
//! - [`stats`] keeps an hour of rounds per WAN for summaries and graphs.
//! - [`silence`] tells from the table's counters that a line sends but hears nothing back
//!   (the passive signal that starts fast probing at once).
//!
//! The daemon feeds each WAN's rounds to its [`WanMonitor`] and [`WanStats`] and hands
//! [`HealthState::health`] to the planner.

pub mod monitor;
pub mod probe;
pub mod round;
pub mod silence;
pub mod stats;

pub use monitor::{HealthState, MonitorSnapshot, Transition, WanMonitor};
pub use probe::{client_for, probe_round, spawn_wan_prober, ProbeJob};
pub use round::Round;
pub use silence::SilenceDetector;
pub use stats::{Point, Sample, Summary, WanStats, MAX_SAMPLES};
