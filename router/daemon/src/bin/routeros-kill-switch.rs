//! `routeros-kill-switch`: operator control of the WAN lines through the daemon's socket.
//!
//!   --status | --disable IF | --enable IF | --maintenance MINUTES [IF]   [--timeout SECONDS]

use clap::{ArgGroup, Parser};
use routeros_shared::control::{self, Request, DEFAULT_SOCKET, MAX_MAINTENANCE_MINUTES};
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
    } else if answer["ok"] != true {
        eprintln!(
            "routeros-kill-switch: {}",
            answer["error"].as_str().unwrap_or("failed")
        );
    } else if matches!(request, Request::Status) {
        print_status(&answer);
    } else {
        println!("{}", answer["message"].as_str().unwrap_or("done"));
    }
    if answer["ok"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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

fn print_status(s: &serde_json::Value) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let num = |v: &serde_json::Value, unit: &str| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{x:.1}{unit}"))
    };
    println!("mode: {}", text(&s["mode"]));
    if let Some(until) = s["failover_paused_until"].as_u64() {
        println!("failover paused (maintenance) until {}", clock(until));
    }
    println!(
        "{:<10} {:<10} {:<13} {:<6} {:<8} {:<6} {:<6} {:<18} {:<15}",
        "WAN", "STATE", "ROLE", "WEIGHT", "LATENCY", "LOSS", "CONNS", "ADDRESS", "GATEWAY"
    );
    for w in s["wans"].as_array().into_iter().flatten() {
        let role = if w["disabled"] == true {
            "disabled".to_string()
        } else if let Some(until) = w["maintenance_until"].as_u64() {
            format!("maint→{}", clock(until))
        } else if w["active"] == true {
            "active".into()
        } else if w["usable"] == true {
            "standby".into()
        } else {
            "out".into()
        };
        println!(
            "{:<10} {:<10} {:<13} {:<6} {:<8} {:<6} {:<6} {:<18} {:<15}",
            text(&w["name"]),
            text(&w["state"]),
            role,
            text(&w["weight"]),
            num(&w["latency_ms"], "ms"),
            num(&w["loss_percent"], "%"),
            text(&w["connections"]),
            text(&w["address"]),
            text(&w["gateway"])
        );
    }
    if let Some(e) = s["last_error"].as_str() {
        println!("last apply error: {e}");
    }
}

/// Unix time -> "HH:MM" UTC, enough to tell when a window ends.
fn clock(unix: u64) -> String {
    format!("{:02}:{:02}Z", unix / 3600 % 24, unix / 60 % 60)
}
