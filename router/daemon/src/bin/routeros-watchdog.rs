//! `routeros-watchdog`: the core daemon (routing, health, failover) and its config checker.

use clap::Parser;
use routeros_daemon::daemon::{self, control::DEFAULT_SOCKET};
use routeros_shared::config::{any_shaped, shaping_kernel_problems, Config, ConfigErrors, WanIds};
use routeros_shared::plan::shaping::{self, Shaper};
use routeros_shared::plan::{self, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Phoenix Nexus multi-WAN routing daemon")]
struct Args {
    /// Configuration file.
    #[arg(long, default_value = "/opt/routeros/config/routeros.toml")]
    config: PathBuf,
    /// Where runtime state (overrides, last plan) is kept.
    #[arg(long, default_value = "/var/lib/routeros")]
    state_dir: PathBuf,
    /// Control socket for routeros-kill-switch and routeros-web.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Let members of this group use the control socket too (the web server's group).
    #[arg(long)]
    socket_group: Option<String>,
    /// systemd unit of the LAN DHCP/DNS server (dnsmasq reading <state-dir>/dnsmasq.conf),
    /// restarted when the DHCP settings change; "" for none.
    #[arg(long, default_value = "routeros-dnsmasq.service")]
    dhcp_unit: String,
    /// The only directory `[logging] file` may be in (the daemon runs as root: the config
    /// must not make it write elsewhere).
    #[arg(long, default_value = daemon::DEFAULT_LOG_DIR)]
    log_dir: PathBuf,
    /// Where the systemd-networkd files of the lines with a `mode` are written (the image
    /// keeps them in /etc/systemd/network, so networkd has them from the start of a boot).
    #[arg(long, env = "ROUTEROS_NETWORK_DIR", default_value = routeros_daemon::lines::NETWORKD_DIR)]
    network_dir: PathBuf,
    /// Validate the configuration, list every error, and exit.
    #[arg(long)]
    check: bool,
    /// Print the routes, rules and nft table the config gives with every WAN up, and exit.
    #[arg(long, conflicts_with = "check")]
    print_plan: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check || args.print_plan {
        return match Config::load(&args.config) {
            // Numbers as a first run gives them (the daemon keeps its own in the state dir).
            Ok(cfg) if args.print_plan => match WanIds::allocate(&cfg, &WanIds::default()) {
                Ok(a) => {
                    let states = plan::all_up(&cfg);
                    print!(
                        "{}",
                        plan::plan(&a.resolved, &states, &Overrides::default())
                    );
                    let shaped = shaping::shaped_lines(&cfg);
                    if !shaped.is_empty() {
                        print!("# tc\n{}", shaping::render(&shaped, Shaper::Cake));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", args.config.display());
                    ExitCode::from(2)
                }
            },
            Ok(cfg) => match kernel_check(&cfg) {
                Ok(()) => {
                    println!("{}: configuration is valid", args.config.display());
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{}: {errors}", args.config.display());
                    ExitCode::from(2)
                }
            },
            Err(errors) => {
                eprintln!("{}: {errors}", args.config.display());
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = daemon::Options {
        config: args.config,
        state_dir: args.state_dir,
        socket: args.socket,
        socket_group: args.socket_group,
        dhcp_unit: Some(args.dhcp_unit).filter(|u| !u.is_empty()),
        log_dir: args.log_dir,
        network_dir: args.network_dir,
    };
    match runtime.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("routeros-watchdog: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What this machine's kernel refuses of `cfg`, as the daemon checks it before applying a
/// change: shaping without CAKE (the kernel is asked only when a line is shaped). When that
/// cannot be found out, a warning and no refusal: the daemon reports a failed shaping.
fn kernel_check(cfg: &Config) -> Result<(), ConfigErrors> {
    if !any_shaped(cfg) {
        return Ok(());
    }
    let has_cake = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(routeros_daemon::apply::qdisc::tc::probe_cake()));
    match has_cake {
        Ok(has) => {
            let problems = shaping_kernel_problems(cfg, has);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(ConfigErrors(problems))
            }
        }
        Err(e) => {
            eprintln!("warning: {e}");
            Ok(())
        }
    }
}
