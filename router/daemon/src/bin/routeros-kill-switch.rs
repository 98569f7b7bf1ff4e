//! `routeros-kill-switch`: operator control of the WAN lines through the daemon's socket.
//!
//!   --status | --disable IF | --enable IF | --maintenance MINUTES [IF]   [--timeout SECONDS]

use clap::{ArgGroup, Parser};
use routeros_shared::control::{
    self, from_wire, Done, Request, StatusReport, WanRole, DEFAULT_SOCKET, MAX_MAINTENANCE_MINUTES,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "Show and control the WAN lines of routeros-watchdog")]
#[command(group(ArgGroup::new("action").required(true)
    .args(["status", "disable", "enable", "maintenance"])))]
struct Args {
    /// Show every WAN's state.
    #[arg(long)]
    status: bool,
    /// Take a WAN out of service; its connections move to the other lines.
    #[arg(long, value_name = "IF")]
    disable: Option<String>,
    /// Put a WAN back into service.
    #[arg(long, value_name = "IF")]
    enable: Option<String>,
    /// Take IF out of service for MINUTES, or without IF pause failover for MINUTES.
    #[arg(long, value_name = "MINUTES [IF]", num_args = 1..=2)]
    maintenance: Option<Vec<String>>,
    /// Control socket of the daemon.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    json: bool,
    /// Give up when the daemon has not accepted, taken or answered the request within
    /// SECONDS (each step).
    #[arg(long, value_name = "SECONDS", default_value_t = control::DEFAULT_CALL_TIMEOUT.as_secs_f64(),
          value_parser = timeout_seconds)]
    timeout: f64,
}

/// 0.1 s ..= 1 hour: a zero or negative limit would make every call fail at once.
fn timeout_seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.1..=3600.0).contains(s))
        .ok_or_else(|| format!("`{text}` is not a number of seconds in 0.1..=3600"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let request = match request(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("routeros-kill-switch: {e}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    let answer = match control::call_with_timeout(&args.socket, &request, timeout) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("routeros-kill-switch: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{answer}");
        return if answer["ok"] == true {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let shown = if matches!(request, Request::Status) {
        from_wire::<StatusReport>(answer).map(|r| r.map(|s| print_status(&s)))
    } else {
        from_wire::<Done>(answer).map(|r| r.map(|done| println!("{}", done.message)))
    };
    match shown {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(refusal)) => {
            eprintln!("routeros-kill-switch: {refusal}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("routeros-kill-switch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn request(args: &Args) -> Result<Request, String> {
    if let Some(wan) = &args.disable {
        return Ok(Request::Disable { wan: wan.clone() });
    }
    if let Some(wan) = &args.enable {
        return Ok(Request::Enable { wan: wan.clone() });
    }
    if let Some(m) = &args.maintenance {
        let minutes = m[0]
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_MAINTENANCE_MINUTES).contains(n))
            .ok_or_else(|| {
                format!(
                    "--maintenance: `{}` is not a number of minutes in 1..={MAX_MAINTENANCE_MINUTES}",
                    m[0]
                )
            })?;
        return Ok(Request::Maintenance {
            seconds: minutes * 60,
            wan: m.get(1).cloned(),
        });
    }
    Ok(Request::Status)
}

fn print_status(s: &StatusReport) {
    let text = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let num = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |x| format!("{x:.1}{unit}"));
    println!("mode: {}", s.router.mode);
    if let Some(until) = s.router.failover_paused_until {
        println!("failover paused (maintenance) until {}", clock(until));
    }
    println!(
        "{:<10} {:<10} {:<13} {:<6} {:<8} {:<6} {:<6} {:<18} {:<15}",
        "WAN", "STATE", "ROLE", "WEIGHT", "LATENCY", "LOSS", "CONNS", "ADDRESS", "GATEWAY"
    );
    for w in &s.wans {
        // The daemon names the role; a standby WAN that could not carry traffic is "out".
        let role = match w.role {
            WanRole::Disabled => "disabled".to_string(),
            WanRole::Maintenance => w.maintenance_until.map_or("maintenance".into(), |until| {
                format!("maint→{}", clock(until))
            }),
            WanRole::Active => "active".into(),
            WanRole::Standby if w.usable => "standby".into(),
            WanRole::Standby => "out".into(),
        };
        println!(
            "{:<10} {:<10} {:<13} {:<6} {:<8} {:<6} {:<6} {:<18} {:<15}",
            w.name,
            text(w.state.map(|s| s.as_str().to_string())),
            role,
            w.weight,
            num(w.latency_ms, "ms"),
            num(w.loss_percent, "%"),
            text(w.connections.map(|n| n.to_string())),
            text(w.address.map(|a| a.to_string())),
            text(w.gateway.map(|g| g.to_string()))
        );
    }
    if let Some(e) = &s.router.last_error {
        println!("last apply error: {e}");
    }
}

/// Unix time -> "HH:MM" UTC, enough to tell when a window ends.
fn clock(unix: u64) -> String {
    format!("{:02}:{:02}Z", unix / 3600 % 24, unix / 60 % 60)
}
