//! Logging to stderr (journald under systemd) at the configured level.

use crate::config::LoggingConfig;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// `RUST_LOG` wins over `[logging] level` so a developer can turn on debug output ad hoc.
pub fn init(cfg: &LoggingConfig) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(cfg.level.to_ascii_lowercase()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
