//! `routeros-kill-switch`: operator control of the WAN lines through the daemon's socket.

use clap::Parser;
use routeros::daemon::control::{self, Request, DEFAULT_SOCKET};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Show and control the WAN lines of routeros-watchdog")]
struct Args {
    /// Show every WAN's state.
    #[arg(long)]
    status: bool,
    /// Control socket of the daemon.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.status {
        eprintln!("routeros-kill-switch: nothing to do; try --status");
        return ExitCode::from(2);
    }
    match control::call(&args.socket, &Request::Status) {
        Ok(answer) if args.json => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            print_status(&answer);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("routeros-kill-switch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_status(s: &serde_json::Value) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    println!("mode: {}", text(&s["mode"]));
    println!(
        "{:<12} {:<9} {:<7} {:<6} {:<18} {:<16}",
        "WAN", "STATE", "WEIGHT", "TABLE", "ADDRESS", "GATEWAY"
    );
    for w in s["wans"].as_array().into_iter().flatten() {
        let state = if w["disabled"] == true {
            "disabled"
        } else if w["active"] == true {
            "active"
        } else if w["usable"] == true {
            "standby"
        } else {
            "down"
        };
        println!(
            "{:<12} {:<9} {:<7} {:<6} {:<18} {:<16}",
            text(&w["name"]),
            state,
            text(&w["weight"]),
            text(&w["table"]),
            text(&w["address"]),
            text(&w["gateway"])
        );
    }
    if let Some(e) = s["last_error"].as_str() {
        println!("last apply error: {e}");
    }
}
