//! Bringing up the lines the config gives a `mode`: at start and whenever the WANs change.

use super::drivers::{LineDriver, Platform};
use super::Supervisor;
use crate::lines::networkd;
use routeros_shared::events::{Event, EventKind};
use serde_json::json;

impl<P: Platform> Supervisor<P> {
    /// Render the networkd files for the config's lines and put them in place. A failure
    /// (no networkd, a full disk) leaves routing as it is: those lines just do not come up,
    /// which the status and an event say.
    pub(super) async fn bring_up_lines(&mut self) {
        let files = networkd::render(&self.cfg);
        match self.lines.set_network_files(&files).await {
            Ok(changed) if changed.is_empty() => self.line_error = None,
            Ok(changed) => {
                self.line_error = None;
                tracing::info!(written = ?changed.written, removed = ?changed.removed, "network files updated; systemd-networkd reloaded");
            }
            Err(e) => {
                let msg = format!("WAN lines not brought up: {e}");
                tracing::error!("{msg}");
                if self.line_error.as_deref() != Some(msg.as_str()) {
                    self.emit(
                        Event::new(EventKind::ConfigChange, None, msg.clone())
                            .with(json!({ "error": e.to_string() })),
                    );
                }
                self.line_error = Some(msg);
            }
        }
    }
}
