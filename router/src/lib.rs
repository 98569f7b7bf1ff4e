//! Phoenix Nexus Router: multi-WAN routing core.
//!
//! `config` parses and validates the TOML; `plan` decides (pure); `apply` talks to the kernel;
//! `daemon` ties them together behind the control socket.

pub mod alerts;
pub mod apply;
pub mod config;
pub mod daemon;
pub mod events;
pub mod health;
pub mod plan;
pub mod web;
