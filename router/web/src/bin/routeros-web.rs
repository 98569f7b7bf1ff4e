//! `routeros-web`: the management UI and REST API. Runs unprivileged; every change goes
//! through the daemon's control socket. See docs/web-api.md.

use clap::builder::RangedU64ValueParser;
use clap::Parser;
use routeros_shared::control::DEFAULT_SOCKET;
use routeros_web::limits::Limits;
use routeros_web::{self as web, Options};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "Phoenix Nexus router: web UI and REST API")]
struct Args {
    /// Address of the UI (and API) listener.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen_ui: SocketAddr,
    /// Address of the API-only listener.
    #[arg(long, default_value = "0.0.0.0:8081")]
    listen_api: SocketAddr,
    /// Control socket of routeros-watchdog.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Users, API keys, audit log and setup state.
    #[arg(long, default_value = "/var/lib/routeros-web")]
    data_dir: PathBuf,
    /// The appliance image's upgrade directory (/data/routeros/upgrade): enables the web
    /// upgrade page. Upgrade requests go to <data-dir>/upgrade/ for the image's root helper.
    #[arg(long, env = "ROUTEROS_UPGRADE_DIR")]
    upgrade_dir: Option<PathBuf>,
    /// Where the running image's IMAGE_VERSION is read from.
    #[arg(long, default_value = "/etc/os-release")]
    os_release: PathBuf,
    /// Seconds a client has to send a request's headers, counted from when the connection
    /// waits for one (so also the idle keep-alive timeout).
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a request body (an upload) may send nothing before it fails.
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Connections open at once, both ports together (keep well below LimitNOFILE).
    #[arg(long, default_value_t = Limits::default().max_connections, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections: usize,
    /// Connections open at once from one client address.
    #[arg(long, default_value_t = Limits::default().max_connections_per_ip, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections_per_ip: usize,
    /// Event streams open at once, in all.
    #[arg(long, default_value_t = Limits::default().max_streams, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    max_streams: usize,
    /// Event streams open at once for one user or API key.
    #[arg(long, default_value_t = Limits::default().max_streams_per_principal, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    max_streams_per_principal: usize,
}

/// Large allocations (argon2's 7 MiB work area per login or key check) are mmap'd and
/// unmapped on free. Left alone, glibc raises its mmap threshold after the first such free
/// and keeps the area in the arena of whichever blocking thread ran the hash, for good.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations_to_the_os() {
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations_to_the_os() {}

fn main() -> ExitCode {
    return_large_allocations_to_the_os();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut opts = Options::new(args.socket, args.data_dir);
    opts.upgrade_dir = args.upgrade_dir;
    opts.os_release = args.os_release;
    opts.limits = Limits {
        header_timeout: Duration::from_secs(args.header_timeout),
        body_timeout: Duration::from_secs(args.body_timeout),
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        max_streams: args.max_streams,
        max_streams_per_principal: args.max_streams_per_principal,
    };
    match runtime.block_on(web::serve(opts, args.listen_ui, args.listen_api)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routeros-web: {e:#}");
            ExitCode::FAILURE
        }
    }
}
