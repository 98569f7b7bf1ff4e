//! The core daemon: owns the config, each WAN's health and link facts, and the operator
//! overrides; re-plans and applies whenever one of them changes (see [`supervisor`]).

mod config_store;
pub(crate) use config_store::write_atomic;
pub mod control;
mod counters;
mod dns;
mod instance_lock;
mod lan_services;
mod logging;
pub mod pppoe_secrets;
pub use logging::DEFAULT_LOG_DIR;
mod state_file;
mod supervisor;
mod systemd;

use crate::health::Round;
use control::Envelope;
use routeros_shared::config::Config;
use routeros_shared::plan::Family;
use std::path::PathBuf;
use std::time::Duration;
use supervisor::drivers::Drivers;
use supervisor::Supervisor;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Safety net besides kernel events: link facts are re-read, and our routes, rules and nft
/// table checked, this often anyway (a deleted nft table is noticed only here).
const LINK_POLL: Duration = Duration::from_secs(5);

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// Group allowed to use the control socket besides root (routeros-web's).
    pub socket_group: Option<String>,
    /// systemd unit serving LAN DHCP/DNS, restarted when its config changes.
    pub dhcp_unit: Option<String>,
    /// `[logging] file` must lie inside this directory.
    pub log_dir: PathBuf,
    /// systemd-networkd's directory for the lines the router brings up.
    pub network_dir: PathBuf,
}

/// Run until SIGTERM/SIGINT. On exit the kernel keeps the last plan (fail-static): routes,
/// rules and the nft table stay, so forwarding goes on while the daemon restarts.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(&opts.state_dir)?;
    // One daemon per state directory and per socket, checked before anything touches the
    // kernel or the socket; the lock is held until we exit.
    let _instance = instance_lock::acquire(&opts.state_dir).map_err(anyhow::Error::msg)?;
    control::refuse_if_served(&opts.socket).await?;
    logging::init(&cfg.logging, &opts.log_dir);
    let mut links = crate::apply::netlink::watch_links()?;
    let (probe_tx, mut rounds) = mpsc::channel::<(String, Family, Round)>(64);
    let (socket, socket_group) = (opts.socket.clone(), opts.socket_group.clone());
    // The HA pair's files hold its key: with the daemon's other state, mode 0700.
    let ha_dir = opts.state_dir.join("ha");
    let (drivers, mut changes) = Drivers::connect(probe_tx, &opts.network_dir, &ha_dir)?;
    let mut supervisor = Supervisor::new(opts, cfg, drivers);
    supervisor.start().await;

    supervisor.publish_status();
    let (tx, mut requests) = mpsc::channel::<Envelope>(16);
    let control = control::Daemon {
        requests: tx,
        status: supervisor.status_board(counters::spawn(), counters::ByteCounters::connect()),
    };
    control::serve(&socket, socket_group.as_deref(), control).await?;
    supervisor.start_pair().await;
    tracing::info!(socket = %socket.display(), "routeros-watchdog ready");
    let watchdog = systemd::ready();

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(LINK_POLL);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut silence = tokio::time::interval(supervisor::silence::SILENCE_TICK);
    loop {
        tokio::select! {
            Some((wan, family, round)) = rounds.recv() => {
                supervisor.on_round(&wan, family, round).await
            }
            Some(()) = links.recv() => supervisor.on_link_event().await,
            Some(change) = changes.sessions.recv() => supervisor.on_session_change(change).await,
            Some(change) = changes.engines.recv() => supervisor.on_engine_change(change),
            Some(digest) = changes.peers.recv() => supervisor.on_peer_beacon(digest),
            Some((req, reply)) = requests.recv() => {
                let answer = supervisor.answer(req).await;
                // Published before the answer, so a client that reads the status after its
                // change sees it; then the end-of-turn publish below would only repeat it.
                supervisor.publish_status();
                let _ = reply.send(answer);
                continue;
            }
            _ = hup.recv() => {
                // The answer as a control client would get it (tests read it in the log).
                let answer = control::to_wire(&supervisor.reload().await);
                tracing::info!("SIGHUP: {answer}");
            }
            _ = second.tick() => {
                // Pinged from the event loop itself: a wedged loop stops the pings and
                // systemd restarts us (the kernel keeps forwarding meanwhile).
                if watchdog {
                    systemd::alive(&supervisor.active_wans());
                }
                supervisor.on_second().await;
            }
            _ = tick.tick() => supervisor.on_link_poll().await,
            _ = silence.tick() => {
                supervisor.on_silence_tick().await;
                continue; // nothing of the status changed
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        // After every change (a probe round, a link event, the one-second tick), so that
        // `status` is answered from a snapshot at most a tick old.
        supervisor.publish_status();
    }
    tracing::info!("stopping; the kernel keeps the last applied routes and rules");
    supervisor.stop_lines().await;
    systemd::stopping();
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
