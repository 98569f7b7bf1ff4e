//! `routeros-kill-switch`: operator control of the WAN lines through the daemon's socket.
//!
//!   --status | --disable IF | --enable IF | --maintenance MINUTES [IF]   [--timeout SECONDS]
//!   --ha-notify GROUP|INSTANCE NAME STATE PRIORITY   (keepalived's notify: the HA pair)

use clap::{ArgGroup, Parser};
use routeros_shared::capacity::LineSpeed;
use routeros_shared::config::WanMode;
use routeros_shared::control::{
    self, from_wire, Done, HaReport, HaRole, LineReport, Request, SessionState, StatusReport,
    WanReport, WanRole, DEFAULT_SOCKET, MAX_MAINTENANCE_MINUTES,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "Show and control the WAN lines of routeros-watchdog")]
#[command(group(ArgGroup::new("action").required(true)
    .args(["status", "disable", "enable", "maintenance", "ha_notify"])))]
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
    /// keepalived's notify (its words appended): tell the daemon this box's new HA role.
    #[arg(
        long,
        value_name = "GROUP|INSTANCE NAME STATE PRIORITY",
        num_args = 4,
        allow_hyphen_values = true
    )]
    ha_notify: Option<Vec<String>>,
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
    if let Some(words) = &args.ha_notify {
        let (name, role, priority) = control::parse_notify(words)?;
        return Ok(Request::HaNotify {
            name,
            role,
            priority,
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
        "{:<10} {:<10} {:<13} {:<13} {:<12} {:<6} {:<8} {:<6} {:<6} {:<18} {:<15}",
        "WAN",
        "STATE",
        "ROLE",
        "LINE",
        "DEVICE",
        "WEIGHT",
        "LATENCY",
        "LOSS",
        "CONNS",
        "ADDRESS",
        "GATEWAY"
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
            "{:<10} {:<10} {:<13} {:<13} {:<12} {:<6} {:<8} {:<6} {:<6} {:<18} {:<15}",
            w.name,
            text(w.state.map(|s| s.as_str().to_string())),
            role,
            line_text(&w.line),
            w.device,
            w.weight,
            num(w.latency_ms, "ms"),
            num(w.loss_percent, "%"),
            text(w.connections.map(|n| n.to_string())),
            text(w.address.map(|a| a.to_string())),
            text(w.gateway.map(|g| g.to_string()))
        );
    }
    for w in &s.wans {
        if let Some(session) = session_text(w) {
            println!("{}: {session}", w.name);
        }
    }
    for w in &s.wans {
        if let Some(speed) = speed_text(w) {
            println!("{}: {speed}", w.name);
        }
        println!("{}: {}", w.name, shaping_text(w));
    }
    for w in &s.wans {
        if let Some(v6) = &w.ipv6 {
            let role = match (v6.active, v6.usable) {
                (true, _) => "active",
                (false, true) => "standby",
                (false, false) => "out",
            };
            println!(
                "{} IPv6: {}, {role}, latency {}, loss {}, address {}, gateway {}",
                w.name,
                text(v6.state.map(|s| s.as_str().to_string())),
                num(v6.latency_ms, "ms"),
                num(v6.loss_percent, "%"),
                text(v6.address.map(|a| a.to_string())),
                text(v6.gateway.map(|g| g.to_string()))
            );
        }
    }
    if let Some(ha) = &s.router.ha {
        println!("{}", ha_text(ha));
    }
    if let Some(e) = &s.router.last_error {
        println!("last apply error: {e}");
    }
}

/// How the line is brought up: `dhcp`, `static`, `pppoe`, with `/vlan7` when tagged;
/// `system` when the system's own network config brings it up.
fn line_text(line: &LineReport) -> String {
    let mode = line.mode.map_or("system", WanMode::as_str);
    match line.vlan {
        Some(id) => format!("{mode}/vlan{id}"),
        None => mode.to_string(),
    }
}

/// A PPPoE line's session, one line under the table: its state, since when, restarts and
/// why the last session ended (`PPPoE session auth_failed since 10:02Z, 3 restarts:
/// authentication failed`). None for the other modes.
fn session_text(w: &WanReport) -> Option<String> {
    if w.line.mode != Some(WanMode::Pppoe) {
        return None;
    }
    let Some(s) = &w.line.session else {
        return Some("PPPoE session not started yet".into());
    };
    let state = match s.state {
        SessionState::Connecting => "connecting",
        SessionState::Up => "up",
        SessionState::Down => "down",
        SessionState::AuthFailed => "auth_failed",
        SessionState::Stopped => "stopped",
    };
    let mut out = format!("PPPoE session {state}");
    if let Some(ms) = s.since_ms {
        out.push_str(&format!(" since {}", clock(ms / 1000)));
    }
    if s.restarts > 0 {
        out.push_str(&format!(", {} restarts", s.restarts));
    }
    if let Some(e) = &s.last_error {
        out.push_str(&format!(": {e}"));
    }
    Some(out)
}

/// A line's speeds with where they came from and its share of new connections, one line
/// under the table (`speed down 100 Mbit/s (declared), up 2.5 Mbit/s (learned), share 255`).
/// None from a daemon that reports no speeds.
fn speed_text(w: &WanReport) -> Option<String> {
    let one = |s: LineSpeed| format!("{} Mbit/s ({})", s.kbit as f64 / 1000.0, s.source.as_str());
    let (down, up) = (w.speed_down?, w.speed_up?);
    let mut out = format!("speed down {}, up {}", one(down), one(up));
    if let Some(share) = w.share {
        out.push_str(&format!(", share {share}"));
    }
    Some(out)
}

/// A line's shaping, one line under the table: `shaping off`, `shaping on: down 95 Mbit/s,
/// up 19 Mbit/s (CAKE)`, or `shaping failed (...): why`.
fn shaping_text(w: &WanReport) -> String {
    let Some(s) = &w.shaping else {
        return "shaping off".into();
    };
    let rates = format!(
        "down {} Mbit/s, up {} Mbit/s",
        s.download_kbit as f64 / 1000.0,
        s.upload_kbit as f64 / 1000.0
    );
    match &s.error {
        None => format!("shaping on: {rates} (CAKE)"),
        Some(e) => format!("shaping failed ({rates}): {e}"),
    }
}

/// Unix time -> "HH:MM" UTC, enough to tell when a window ends.
/// "HA: master (was backup) since 10:02Z, peer 10.99.0.2 (its config: same); keepalived
/// running, conntrackd running"
fn ha_text(ha: &HaReport) -> String {
    let role = ha
        .role
        .map_or("unknown (no report from keepalived yet)", HaRole::as_str);
    let mut text = format!("HA: {role}");
    if let Some(previous) = ha.previous {
        text.push_str(&format!(" (was {})", previous.as_str()));
    }
    if let Some(ms) = ha.since_ms {
        text.push_str(&format!(" since {}", clock(ms / 1000)));
    }
    if let Some(peer) = ha.peer {
        text.push_str(&format!(
            ", peer {peer} (its config: {})",
            ha.peer_config.as_str()
        ));
    }
    let engines: Vec<String> = ha
        .engines
        .iter()
        .map(|e| match &e.last_error {
            Some(err) => format!("{} {} ({err})", e.engine, e.state),
            None => format!("{} {}", e.engine, e.state),
        })
        .collect();
    if !engines.is_empty() {
        text.push_str(&format!("; {}", engines.join(", ")));
    }
    text
}

fn clock(unix: u64) -> String {
    format!("{:02}:{:02}Z", unix / 3600 % 24, unix / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::capacity::SpeedSource;
    use routeros_shared::control::{SessionReport, ShapingReport};

    fn wan(line: LineReport) -> WanReport {
        serde_json::from_value(serde_json::json!({
            "name": "wan3", "device": "ppp-wan3", "line": line, "table": 300, "mark": 768,
            "weight": 1, "priority": 1, "gateway": null, "address": null, "present": false,
            "carrier": false, "state": null, "since_ms": null, "latency_ms": null,
            "jitter_ms": null, "loss_percent": null, "connections": null, "rx_bytes": null,
            "tx_bytes": null, "usable": false, "role": "standby", "take_out": {"resets_connections": false, "takeover": []},
            "disabled": false, "maintenance_until": null, "active": false
        }))
        .unwrap()
    }

    #[test]
    fn line_and_session_are_spelt_out() {
        let mut line = LineReport {
            mode: Some(WanMode::Pppoe),
            vlan: Some(7),
            session: None,
        };
        assert_eq!(line_text(&line), "pppoe/vlan7");
        assert_eq!(
            session_text(&wan(line.clone())).unwrap(),
            "PPPoE session not started yet"
        );
        line.session = Some(SessionReport {
            state: SessionState::AuthFailed,
            last_error: Some("authentication failed".into()),
            since_ms: Some(3_600_000 * 10 + 120_000),
            restarts: 3,
        });
        assert_eq!(
            session_text(&wan(line)).unwrap(),
            "PPPoE session auth_failed since 10:02Z, 3 restarts: authentication failed"
        );
        let system = LineReport::default();
        assert_eq!(line_text(&system), "system");
        assert_eq!(session_text(&wan(system)), None);
        let stat = LineReport {
            mode: Some(WanMode::Static),
            ..LineReport::default()
        };
        assert_eq!(line_text(&stat), "static");
    }

    #[test]
    fn speeds_are_spelt_out_with_their_source() {
        let mut w = wan(LineReport::default());
        assert_eq!(speed_text(&w), None);
        w.speed_down = Some(LineSpeed {
            kbit: 100_000,
            source: SpeedSource::Declared,
        });
        w.speed_up = Some(LineSpeed {
            kbit: 2_500,
            source: SpeedSource::Learned,
        });
        w.share = Some(26);
        assert_eq!(
            speed_text(&w).unwrap(),
            "speed down 100 Mbit/s (declared), up 2.5 Mbit/s (learned), share 26"
        );
    }

    #[test]
    fn shaping_is_spelt_out_on_or_off() {
        let mut w = wan(LineReport::default());
        assert_eq!(shaping_text(&w), "shaping off");
        w.shaping = Some(ShapingReport {
            active: true,
            upload_kbit: 19_000,
            download_kbit: 95_000,
            error: None,
        });
        assert_eq!(
            shaping_text(&w),
            "shaping on: down 95 Mbit/s, up 19 Mbit/s (CAKE)"
        );
        w.shaping = Some(ShapingReport {
            active: false,
            upload_kbit: 1_350,
            download_kbit: 14_400,
            error: Some("this kernel has no sch_cake".into()),
        });
        assert_eq!(
            shaping_text(&w),
            "shaping failed (down 14.4 Mbit/s, up 1.35 Mbit/s): this kernel has no sch_cake"
        );
    }

    #[test]
    fn keepalived_notify_words_become_the_request() {
        let args = Args::try_parse_from([
            "routeros-kill-switch",
            "--ha-notify",
            "GROUP",
            "routeros",
            "MASTER",
            "150",
        ])
        .unwrap();
        assert_eq!(
            request(&args).unwrap(),
            Request::HaNotify {
                name: "routeros".into(),
                role: HaRole::Master,
                priority: 150
            }
        );
        let bad = Args::try_parse_from([
            "routeros-kill-switch",
            "--ha-notify",
            "GROUP",
            "routeros",
            "BOSS",
            "150",
        ])
        .unwrap();
        assert!(request(&bad).unwrap_err().contains("`BOSS`"));
    }

    #[test]
    fn the_pair_is_spelt_out() {
        let ha = HaReport {
            role: Some(HaRole::Master),
            peer: Some("10.99.0.2".parse().unwrap()),
            since_ms: Some(36_120_000),
            previous: Some(HaRole::Backup),
            engines: vec![
                routeros_shared::control::HaEngineReport {
                    engine: "keepalived".into(),
                    state: "running".into(),
                    last_error: None,
                    restarts: 0,
                },
                routeros_shared::control::HaEngineReport {
                    engine: "conntrackd".into(),
                    state: "exited".into(),
                    last_error: Some("exited with status 1".into()),
                    restarts: 2,
                },
            ],
            peer_config: routeros_shared::control::PeerConfig::Differs,
            peer_heard_ms: Some(36_119_000),
        };
        assert_eq!(
            ha_text(&ha),
            "HA: master (was backup) since 10:02Z, peer 10.99.0.2 (its config: differs); keepalived running, conntrackd exited (exited with status 1)"
        );
    }
}
