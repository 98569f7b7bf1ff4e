//! The core daemon: owns the config, the runtime view of each WAN and the operator
//! overrides; re-plans and applies whenever one of them changes.

pub mod control;
mod logging;
mod overrides;

use crate::apply::{Applier, ApplyError, LinkObserver, NetlinkDriver, NftDriver};
use crate::config::{Config, ConfigErrors};
use crate::plan::{self, Overrides, WanStates};
use control::{Envelope, Request, MAX_MAINTENANCE_MINUTES};
use overrides::OverrideStore;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// How often link facts (carrier, address, DHCP gateway) are re-read.
const LINK_POLL: Duration = Duration::from_secs(1);

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
}

/// Everything the daemon decides from, plus the kernel it applies to.
struct Router {
    opts: Options,
    cfg: Config,
    states: WanStates,
    overrides: Overrides,
    store: OverrideStore,
    applier: Applier<NetlinkDriver, NftDriver>,
    last_apply_ms: Option<f64>,
    last_error: Option<String>,
    applied_at: Option<u64>,
}

/// Run until SIGTERM/SIGINT. On exit the kernel keeps the last plan (fail-static): routes,
/// rules and the nft table stay, so forwarding goes on while the daemon restarts.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    logging::init(&cfg.logging);
    std::fs::create_dir_all(&opts.state_dir)?;
    let driver = NetlinkDriver::connect()?;
    let store = OverrideStore::new(&opts.state_dir);
    let mut router = Router {
        opts,
        cfg,
        states: WanStates::new(),
        overrides: store.load(),
        store,
        applier: Applier::new(driver, NftDriver),
        last_apply_ms: None,
        last_error: None,
        applied_at: None,
    };
    router.refresh_links().await;
    if let Err(e) = router.replan("start").await {
        tracing::error!("initial apply failed, retrying every second: {e}");
    }

    let (tx, mut requests) = mpsc::channel::<Envelope>(16);
    control::serve(&router.opts.socket, tx)?;
    tracing::info!(socket = %router.opts.socket.display(), "routeros-watchdog ready");

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(LINK_POLL);
    loop {
        tokio::select! {
            Some((req, reply)) = requests.recv() => {
                let answer = router.handle(req).await;
                let _ = reply.send(answer);
            }
            _ = hup.recv() => {
                let answer = router.reload().await;
                tracing::info!("SIGHUP: {answer}");
            }
            _ = tick.tick() => {
                let expired = router.expire_overrides();
                let changed = router.refresh_links().await;
                if changed || expired || router.last_error.is_some() {
                    let _ = router.replan("link change").await;
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping; the kernel keeps the last applied routes and rules");
    let _ = std::fs::remove_file(&router.opts.socket);
    Ok(())
}

impl Router {
    async fn handle(&mut self, req: Request) -> serde_json::Value {
        match req {
            Request::Status => self.status(),
            Request::Reload => self.reload().await,
            Request::Disable { wan } => {
                self.set_override(
                    &wan,
                    |ov| {
                        ov.disabled.insert(wan.clone());
                    },
                    format!("{wan} disabled"),
                )
                .await
            }
            Request::Enable { wan } => {
                self.set_override(
                    &wan,
                    |ov| {
                        ov.disabled.remove(&wan);
                        ov.maintenance.remove(&wan);
                    },
                    format!("{wan} enabled"),
                )
                .await
            }
            Request::Maintenance { minutes, wan } => self.maintenance(minutes, wan).await,
        }
    }

    async fn maintenance(&mut self, minutes: u32, wan: Option<String>) -> serde_json::Value {
        if !(1..=MAX_MAINTENANCE_MINUTES).contains(&minutes) {
            return control::error(&format!(
                "minutes: {minutes} is not in 1..={MAX_MAINTENANCE_MINUTES}"
            ));
        }
        let until = now() + u64::from(minutes) * 60;
        match wan {
            Some(wan) => {
                let msg = format!("{wan} in maintenance for {minutes} min");
                self.set_override(
                    &wan,
                    |ov| {
                        ov.maintenance.insert(wan.clone(), until);
                    },
                    msg,
                )
                .await
            }
            None => {
                let msg = format!("failover paused for {minutes} min");
                self.set_override("", |ov| ov.paused_until = Some(until), msg)
                    .await
            }
        }
    }

    /// Change the overrides (for a known WAN, or router-wide with ""), persist, re-plan.
    /// Nothing changes if the WAN is unknown or the state cannot be saved.
    async fn set_override(
        &mut self,
        wan: &str,
        change: impl FnOnce(&mut Overrides),
        message: String,
    ) -> serde_json::Value {
        if !wan.is_empty() && !self.cfg.wan_interfaces.iter().any(|w| w.name == wan) {
            let known: Vec<&str> = self
                .cfg
                .wan_interfaces
                .iter()
                .map(|w| w.name.as_str())
                .collect();
            return control::error(&format!(
                "`{wan}` is not a WAN interface (WANs: {})",
                known.join(", ")
            ));
        }
        let mut next = self.overrides.clone();
        change(&mut next);
        if let Err(e) = self.store.save(&next) {
            return control::error(&format!("cannot save overrides: {e}"));
        }
        self.overrides = next;
        tracing::info!(wan, "{message}");
        match self.replan("operator").await {
            Ok(()) => json!({ "ok": true, "message": message }),
            Err(e) => control::error(&format!("{message}, but applying failed: {e}")),
        }
    }

    /// End maintenance windows whose time is up; true if any ended.
    fn expire_overrides(&mut self) -> bool {
        if !self.overrides.expire(now()) {
            return false;
        }
        tracing::info!("maintenance window ended");
        if let Err(e) = self.store.save(&self.overrides) {
            tracing::warn!("cannot save overrides: {e}");
        }
        true
    }

    /// Re-read every WAN's link facts; true if anything changed.
    async fn refresh_links(&mut self) -> bool {
        let mut changed = false;
        for wan in &self.cfg.wan_interfaces {
            let link = match self.applier.routes().observe(&wan.name).await {
                Ok(link) => link,
                Err(e) => {
                    tracing::warn!(wan = %wan.name, "cannot read link state: {e}");
                    continue;
                }
            };
            let entry = self.states.entry(wan.name.clone()).or_default();
            if entry.link != link {
                tracing::info!(wan = %wan.name, ?link, "link changed");
                entry.link = link;
                changed = true;
            }
        }
        changed
    }

    /// Plan from the current inputs and apply it.
    async fn replan(&mut self, why: &str) -> Result<(), ApplyError> {
        let plan = plan::plan(&self.cfg, &self.states, &self.overrides);
        match self.applier.apply(&plan).await {
            Ok(outcome) => {
                let ms = outcome.elapsed.as_secs_f64() * 1000.0;
                self.last_apply_ms = Some(ms);
                self.last_error = None;
                self.applied_at = Some(now());
                tracing::info!(why, active = ?plan.active_wans, apply_ms = ms, nft_replaced = outcome.firewall_replaced, "plan applied");
                self.save_plan(&plan);
                Ok(())
            }
            Err(e) => {
                tracing::error!(why, "apply failed, previous state kept: {e}");
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Validate the file, then apply; on any failure the old config and kernel state stay.
    async fn reload(&mut self) -> serde_json::Value {
        let new = match Config::load(&self.opts.config) {
            Ok(cfg) => cfg,
            Err(ConfigErrors(errors)) => {
                tracing::warn!(count = errors.len(), "reload refused: config invalid");
                return json!({ "ok": false, "error": "config invalid; nothing changed", "errors": errors });
            }
        };
        let old = std::mem::replace(&mut self.cfg, new);
        self.refresh_links().await;
        match self.replan("reload").await {
            Ok(()) => json!({ "ok": true, "apply_ms": self.last_apply_ms }),
            Err(e) => {
                self.cfg = old;
                let _ = self.replan("revert").await;
                json!({ "ok": false, "error": format!("apply failed, previous config kept: {e}") })
            }
        }
    }

    fn status(&self) -> serde_json::Value {
        let views = plan::wan_views(&self.cfg, &self.states, &self.overrides);
        let active = self
            .applier
            .applied()
            .map(|p| p.active_wans.clone())
            .unwrap_or_default();
        let wans: Vec<_> = views
            .iter()
            .map(|w| {
                let link = self
                    .states
                    .get(&w.name)
                    .map(|s| s.link.clone())
                    .unwrap_or_default();
                json!({
                    "name": w.name, "table": w.table, "mark": w.mark, "weight": w.weight,
                    "priority": w.priority, "gateway": w.gateway, "address": link.address,
                    "present": link.present, "carrier": link.carrier,
                    "health": self.states.get(&w.name).map(|s| s.health).unwrap_or_default(),
                    "usable": w.usable, "disabled": self.overrides.disabled.contains(&w.name),
                    "maintenance_until": self.overrides.maintenance.get(&w.name),
                    "active": active.contains(&w.name),
                })
            })
            .collect();
        json!({
            "ok": true,
            "config": self.opts.config,
            "mode": self.cfg.routing.load_balancing,
            "active_wans": active,
            "failover_paused_until": self.overrides.paused_until,
            "wans": wans,
            "applied_at": self.applied_at,
            "last_apply_ms": self.last_apply_ms,
            "last_error": self.last_error,
        })
    }

    /// Keep the applied plan on disk for diagnosis (`cat /var/lib/routeros/plan.txt`).
    fn save_plan(&self, plan: &plan::Plan) {
        let path = self.opts.state_dir.join("plan.txt");
        if let Err(e) = std::fs::write(&path, plan.to_string()) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
