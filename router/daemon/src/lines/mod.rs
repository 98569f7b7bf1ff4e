//! The WAN lines the router brings up itself (`mode` set in the config): systemd-networkd
//! files for DHCP, static and VLAN lines ([`networkd`]), pppd for PPPoE sessions.
//!
//! The files are rendered from the config alone (pure, golden-tested); [`SystemLines`] puts
//! them in networkd's runtime directory and has it reload, and keeps one pppd per PPPoE
//! line ([`pppd::PppdSupervisor`]). Lines without `mode` are left to the system's own
//! network config, as before.

pub mod networkd;
pub mod pppd;

use crate::ha::beacon::Beacon;
use crate::ha::run::{
    EngineChange, EngineCommand, EngineSnapshot, PairFiles, PairRunner, RunConfig,
};
use futures::TryStreamExt;
use networkd::{UnitFile, FILE_PREFIX};
use pppd::{LineSnapshot, PppdSupervisor, PppoeLine, SessionChange, SupervisorConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// networkd's runtime directory: rebuilt from the config at every start, so a removed WAN
/// leaves nothing behind across reboots.
pub const NETWORKD_DIR: &str = "/run/systemd/network";

/// How long a reload over D-Bus may take before the daemon gives up on it (networkd
/// answers in milliseconds; a wedged bus must not stall routing decisions for long).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot have systemd-networkd reload its files: {0}")]
    Reload(String),
}

/// What changed in networkd's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesChanged {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

impl FilesChanged {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

/// Brings the managed lines up.
#[allow(async_fn_in_trait)]
pub trait LineDriver {
    /// Make our files in networkd's directory exactly `files` and, when that changed
    /// anything, have networkd apply them.
    async fn set_network_files(&mut self, files: &[UnitFile]) -> Result<FilesChanged, LineError>;
    /// Run exactly these PPPoE sessions (started, restarted when changed, stopped when gone).
    fn set_pppoe(&mut self, lines: Vec<PppoeLine>) -> Result<(), String>;
    /// Every PPPoE line's session.
    fn sessions(&self) -> Vec<LineSnapshot>;
    /// Run the HA pair's keepalived and conntrackd on these files, or stop them (`None`).
    async fn set_pair(&mut self, files: Option<PairFiles>) -> Result<(), String>;
    /// The pair's engines (none while HA is off).
    fn pair_engines(&self) -> Vec<EngineSnapshot>;
    /// Run these `conntrackd` command lines one after the other, in the background (a role
    /// change must not wait for them); failures are logged.
    fn pair_commands(&mut self, commands: Vec<Vec<String>>);
    /// The file an engine of the pair runs on.
    fn pair_conf(&self, engine: crate::ha::run::Engine) -> PathBuf;
    /// Run the pair's config beacon on this target, or stop it (`None`).
    fn set_beacon(&mut self, target: Option<crate::ha::beacon::BeaconTarget>);
    /// End the PPPoE sessions and the pair's engines (daemon exit).
    async fn stop(&mut self);
}

/// The real driver: files in [`NETWORKD_DIR`] (or another directory, for tests), reload
/// over the system bus, VLAN devices of removed `.netdev` files deleted (networkd never
/// deletes a device whose file went away); pppd for PPPoE.
pub struct SystemLines {
    pub network_dir: PathBuf,
    pub pppd: PppdSupervisor,
    /// The HA pair's engines: processes the daemon owns, like pppd.
    pub pair: PairRunner,
    /// The pair's config beacon on the sync link.
    beacon: Beacon,
    /// Files changed but networkd was not told (its reload failed): tell it next time,
    /// even if the files do not change again.
    reload_pending: bool,
}

impl SystemLines {
    /// The driver and the channels of its PPPoE session changes, HA engine changes and the
    /// peer's config digests (for the event loop); the pair's files go in `ha_dir`.
    pub fn new(
        network_dir: PathBuf,
        ha_dir: PathBuf,
    ) -> (
        Self,
        UnboundedReceiver<SessionChange>,
        UnboundedReceiver<EngineChange>,
        UnboundedReceiver<String>,
    ) {
        let (pppd, changes) = PppdSupervisor::new(SupervisorConfig::default());
        let run = RunConfig {
            run_dir: ha_dir,
            ..RunConfig::default()
        };
        let (pair, engines) = PairRunner::new(EngineCommand::default(), run);
        let (beacon, peers) = Beacon::new();
        let lines = Self {
            network_dir,
            pppd,
            pair,
            beacon,
            reload_pending: false,
        };
        (lines, changes, engines, peers)
    }
}

impl LineDriver for SystemLines {
    fn set_pppoe(&mut self, lines: Vec<PppoeLine>) -> Result<(), String> {
        self.pppd.set_lines(lines).map_err(|e| e.to_string())
    }

    fn sessions(&self) -> Vec<LineSnapshot> {
        self.pppd.snapshot()
    }

    async fn set_pair(&mut self, files: Option<PairFiles>) -> Result<(), String> {
        self.pair.set(files).await.map_err(|e| {
            format!(
                "cannot write the HA pair's files in {}: {e}",
                self.pair
                    .conf_path(crate::ha::run::Engine::Keepalived)
                    .display()
            )
        })
    }

    fn pair_engines(&self) -> Vec<EngineSnapshot> {
        self.pair.snapshot()
    }

    fn pair_conf(&self, engine: crate::ha::run::Engine) -> PathBuf {
        self.pair.conf_path(engine)
    }

    fn pair_commands(&mut self, commands: Vec<Vec<String>>) {
        tokio::spawn(crate::ha::run::run_commands(
            EngineCommand::default().conntrackd,
            commands,
        ));
    }

    fn set_beacon(&mut self, target: Option<crate::ha::beacon::BeaconTarget>) {
        self.beacon.set(target);
    }

    async fn stop(&mut self) {
        self.pppd.shutdown().await;
        self.beacon.set(None);
        self.pair.shutdown().await;
    }

    async fn set_network_files(&mut self, files: &[UnitFile]) -> Result<FilesChanged, LineError> {
        let changed = sync_dir(&self.network_dir, files)?;
        if changed.is_empty() && !self.reload_pending {
            return Ok(changed);
        }
        self.reload_pending = true;
        reload_networkd().await?;
        self.reload_pending = false;
        for name in &changed.removed {
            if let Some(dev) = name
                .strip_prefix(FILE_PREFIX)
                .and_then(|n| n.strip_suffix(".netdev"))
            {
                if let Err(e) = delete_link(dev).await {
                    tracing::warn!(dev, "cannot delete the VLAN device of a removed line: {e}");
                }
            }
        }
        Ok(changed)
    }
}

/// Write the files whose content differs, remove our files that are no longer wanted.
pub fn sync_dir(dir: &Path, files: &[UnitFile]) -> Result<FilesChanged, LineError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LineError::Write { path, source }
    };
    let mut changed = FilesChanged::default();
    if files.is_empty() && !dir.exists() {
        return Ok(changed);
    }
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    for f in files {
        let path = dir.join(&f.name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(f.text.as_str()) {
            crate::daemon::write_atomic(&path, f.text.as_bytes()).map_err(err(&path))?;
            changed.written.push(f.name.clone());
        }
    }
    let entries = std::fs::read_dir(dir).map_err(err(dir))?;
    let mut stale: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(FILE_PREFIX) && !files.iter().any(|f| &f.name == n))
        .collect();
    stale.sort();
    for name in stale {
        let path = dir.join(&name);
        std::fs::remove_file(&path).map_err(err(&path))?;
        changed.removed.push(name);
    }
    Ok(changed)
}

/// `networkctl reload`: networkd re-reads its files and reconfigures every link whose
/// matching file changed (also a port that netplan's file matched before ours).
async fn reload_networkd() -> Result<(), LineError> {
    let call = async {
        let bus = zbus::Connection::system().await?;
        bus.call_method(
            Some("org.freedesktop.network1"),
            "/org/freedesktop/network1",
            Some("org.freedesktop.network1.Manager"),
            "Reload",
            &(),
        )
        .await?;
        Ok::<(), zbus::Error>(())
    };
    match tokio::time::timeout(RELOAD_TIMEOUT, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LineError::Reload(e.to_string())),
        Err(_) => Err(LineError::Reload(format!(
            "no answer within {} s",
            RELOAD_TIMEOUT.as_secs()
        ))),
    }
}

async fn delete_link(name: &str) -> Result<(), String> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let found = handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await;
    match found {
        Ok(Some(link)) => handle
            .link()
            .del(link.header.index)
            .execute()
            .await
            .map_err(|e| e.to_string()),
        // Already gone (ENODEV): nothing to do.
        Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
