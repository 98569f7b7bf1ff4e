//! A stand-in for routeros-watchdog's control socket, for benchmarks of routeros-web
//! (ci/bench-web.sh): the web tests' fake daemon, built from the protocol's types, serving
//! `n` WANs that are all up.
//!
//!   fake_daemon --socket PATH [--wans N]

#[path = "../tests/common/fake_daemon.rs"]
mod fake_daemon;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "A canned routeros-watchdog control socket for benchmarks")]
struct Args {
    #[arg(long)]
    socket: PathBuf,
    #[arg(long, default_value_t = 2)]
    wans: usize,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_file(&args.socket);
    fake_daemon::FakeDaemon::all_up(args.wans.max(1)).serve(&args.socket)?;
    loop {
        std::thread::park();
    }
}
