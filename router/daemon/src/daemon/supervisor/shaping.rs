//! The lines' shaping, owned like the routes: synced at start (adopting what a previous run
//! made), on config changes, when a line's device appears, and on the link poll (putting
//! back what another program removed). Apart from the routing plan on purpose: shaping that
//! cannot be applied (no CAKE in the kernel, a device missing, tc refusing) is an event and
//! a status line, never a reason to keep the routes from changing.

use super::drivers::Platform;
use super::Supervisor;
use crate::apply::ShapingDriver;
use routeros_shared::config::{any_shaped, shaping_kernel_problems, Config, FieldError};
use routeros_shared::control::ShapingReport;
use routeros_shared::events::{Event, EventKind};
use routeros_shared::plan::shaping::{shaped_lines, ShapedLine};
use serde_json::json;
use std::collections::BTreeMap;

/// The reason given for every shaped line when the kernel has no CAKE.
const NO_CAKE: &str = "this kernel has no sch_cake";

/// What the last sync wanted and what it could not do.
#[derive(Debug, Default)]
pub(super) struct ShapingState {
    /// The lines the config shapes (also the ones that failed).
    wanted: Vec<ShapedLine>,
    /// Lines not shaped as wanted, with why.
    failed: BTreeMap<String, String>,
    /// The failures already announced by an event (not repeated every poll).
    announced: BTreeMap<String, String>,
    /// Nothing is wanted and the last sync found nothing of ours: no sync (a few processes)
    /// on every link change of a router that shapes nothing.
    clean: bool,
}

impl ShapingState {
    /// Some line is to be shaped: the link poll checks the kernel still holds it.
    pub(super) fn wanted(&self) -> bool {
        !self.wanted.is_empty()
    }
}

impl<P: Platform> Supervisor<P> {
    /// Make the kernel shape the lines the config shapes, and nothing else of ours.
    pub(super) async fn shape(&mut self, why: &str) {
        let wanted = shaped_lines(&self.cfg);
        if wanted.is_empty() && self.shaping.wanted.is_empty() && self.shaping.clean {
            return;
        }
        let configured: Vec<String> = self.cfg.wan_interfaces.iter().map(|w| w.device()).collect();
        let mut failed = BTreeMap::new();
        // Without CAKE nothing is created (what a previous kernel left of ours goes).
        let lines = if wanted.is_empty() {
            Vec::new()
        } else {
            match self.shaper.has_cake().await {
                Ok(true) => wanted.clone(),
                Ok(false) => {
                    for l in &wanted {
                        failed.insert(l.wan.clone(), NO_CAKE.to_string());
                    }
                    Vec::new()
                }
                // Cannot tell: let tc try, its refusal says more.
                Err(e) => {
                    tracing::warn!("{e}");
                    wanted.clone()
                }
            }
        };
        let outcome = self.shaper.sync(&lines, &configured).await;
        if !outcome.ran.is_empty() {
            tracing::info!(why, commands = ?outcome.ran, "shaping updated");
        }
        for e in &outcome.removal_errors {
            tracing::warn!(why, "removing shaping no longer wanted failed: {e}");
        }
        self.shaping.clean =
            lines.is_empty() && outcome.ran.is_empty() && outcome.removal_errors.is_empty();
        failed.extend(outcome.failed);
        self.shaping.wanted = wanted;
        self.shaping.failed = failed;
        self.announce_shaping_failures();
    }

    /// An event for each line whose shaping newly failed (or failed differently).
    fn announce_shaping_failures(&mut self) {
        let new: Vec<(String, String)> = self
            .shaping
            .failed
            .iter()
            .filter(|(wan, why)| self.shaping.announced.get(*wan) != Some(*why))
            .map(|(w, e)| (w.clone(), e.clone()))
            .collect();
        self.shaping.announced = self.shaping.failed.clone();
        for (wan, why) in new {
            let msg = format!("{wan}: shaping not applied, routing unaffected: {why}");
            tracing::error!("{msg}");
            self.emit(
                Event::new(EventKind::ConfigChange, Some(&wan), msg)
                    .with(json!({ "shaping_error": why })),
            );
        }
    }

    /// What this kernel refuses of `cfg`: shaping where it has no CAKE (asked only when
    /// `cfg` shapes a line). When it cannot be found out, nothing is refused: the apply
    /// reports each line that fails.
    pub(super) async fn kernel_problems(&mut self, cfg: &Config) -> Vec<FieldError> {
        if !any_shaped(cfg) {
            return Vec::new();
        }
        match self.shaper.has_cake().await {
            Ok(has) => shaping_kernel_problems(cfg, has),
            Err(e) => {
                tracing::warn!("{e}");
                Vec::new()
            }
        }
    }

    /// `wan`'s shaping for the status (None when the config leaves it off).
    pub(super) fn shaping_report(&self, wan: &str) -> Option<ShapingReport> {
        let line = self.shaping.wanted.iter().find(|l| l.wan == wan)?;
        let error = self.shaping.failed.get(wan).cloned();
        Some(ShapingReport {
            active: error.is_none(),
            upload_kbit: line.upload_kbit,
            download_kbit: line.download_kbit,
            error,
        })
    }
}
