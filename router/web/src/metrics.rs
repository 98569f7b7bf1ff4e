//! `GET /metrics`: Prometheus text exposition from the latest status snapshot.

use super::auth::Viewer;
use super::error::{ApiResult, ErrorBody};
use super::telemetry::StatusBody;
use super::telemetry::FRESH;
use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use routeros_shared::control::{HealthState, WanReport};
use std::fmt::Write;

/// A byte counter of a WAN's report.
type Counter = fn(&WanReport) -> Option<u64>;

const STATES: [HealthState; 4] = [
    HealthState::Up,
    HealthState::Degraded,
    HealthState::Down,
    HealthState::Recovering,
];

/// Prometheus metrics (viewer session or API key).
#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, content_type = "text/plain", description = "Prometheus text format"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, _who: Viewer) -> ApiResult<Response> {
    let snapshot = state.telemetry.current(FRESH).await?;
    let text = render(&snapshot.status, state.telemetry.failovers());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// A label value with `\`, `"` and newlines escaped.
fn label(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The exposition text of a status snapshot.
pub fn render(status: &StatusBody, failovers: u64) -> String {
    let wans: Vec<&WanReport> = status.wans.iter().map(|c| &c.wan).collect();
    let name = |w: &WanReport| label(&w.name);
    let mut out = String::with_capacity(2048);

    header(
        &mut out,
        "routeros_wan_up",
        "gauge",
        "1 when the WAN passes its health checks (up or degraded).",
    );
    for w in &wans {
        let up = w.state.is_some_and(HealthState::is_live);
        let _ = writeln!(
            out,
            "routeros_wan_up{{wan=\"{}\"}} {}",
            name(w),
            u8::from(up)
        );
    }
    header(
        &mut out,
        "routeros_wan_state",
        "gauge",
        "HealthVerdict state of the WAN: 1 for the current state.",
    );
    for w in &wans {
        for s in STATES {
            let _ = writeln!(
                out,
                "routeros_wan_state{{wan=\"{}\",state=\"{}\"}} {}",
                name(w),
                s.as_str(),
                u8::from(w.state == Some(s))
            );
        }
    }
    header(
        &mut out,
        "routeros_wan_latency_seconds",
        "gauge",
        "Mean probe round-trip time over the last minute.",
    );
    for w in &wans {
        if let Some(ms) = w.latency_ms {
            let _ = writeln!(
                out,
                "routeros_wan_latency_seconds{{wan=\"{}\"}} {}",
                name(w),
                ms / 1000.0
            );
        }
    }
    header(
        &mut out,
        "routeros_wan_loss_ratio",
        "gauge",
        "Lost probes / sent probes over the last minute.",
    );
    for w in &wans {
        if let Some(p) = w.loss_percent {
            let _ = writeln!(
                out,
                "routeros_wan_loss_ratio{{wan=\"{}\"}} {}",
                name(w),
                p / 100.0
            );
        }
    }
    let counters: [(&str, Counter, &str); 2] = [
        (
            "routeros_wan_rx_bytes_total",
            |w| w.rx_bytes,
            "Bytes received on the WAN interface.",
        ),
        (
            "routeros_wan_tx_bytes_total",
            |w| w.tx_bytes,
            "Bytes sent on the WAN interface.",
        ),
    ];
    for (metric, value, help) in counters {
        header(&mut out, metric, "counter", help);
        for w in &wans {
            if let Some(n) = value(w) {
                let _ = writeln!(out, "{metric}{{wan=\"{}\"}} {n}", name(w));
            }
        }
    }
    header(
        &mut out,
        "routeros_wan_speed_mbit",
        "gauge",
        "The line's speed in Mbit/s by direction, and where it came from (declared, learned from the counters, or the default).",
    );
    for w in &wans {
        for (direction, speed) in [("down", w.speed_down), ("up", w.speed_up)] {
            if let Some(s) = speed {
                let _ = writeln!(
                    out,
                    "routeros_wan_speed_mbit{{wan=\"{}\",direction=\"{direction}\",source=\"{}\"}} {}",
                    name(w),
                    s.source.as_str(),
                    s.kbit as f64 / 1000.0
                );
            }
        }
    }
    header(
        &mut out,
        "routeros_wan_shaping",
        "gauge",
        "1 when the line is shaped (CAKE) as configured, 0 when shaping is on in the config but not in place (see the status' shaping error) or off.",
    );
    for w in &wans {
        let on = w.shaping.as_ref().is_some_and(|s| s.active);
        let _ = writeln!(
            out,
            "routeros_wan_shaping{{wan=\"{}\"}} {}",
            name(w),
            u8::from(on)
        );
    }
    header(
        &mut out,
        "routeros_wan_shaping_mbit",
        "gauge",
        "The rate a shaped line is shaped to in Mbit/s by direction (declared speed less the overhead); absent when shaping is off.",
    );
    for w in &wans {
        if let Some(s) = &w.shaping {
            for (direction, kbit) in [("down", s.download_kbit), ("up", s.upload_kbit)] {
                let _ = writeln!(
                    out,
                    "routeros_wan_shaping_mbit{{wan=\"{}\",direction=\"{direction}\"}} {}",
                    name(w),
                    kbit as f64 / 1000.0
                );
            }
        }
    }
    header(
        &mut out,
        "routeros_wan_ipv6_usable",
        "gauge",
        "1 when the WAN's IPv6 side may carry traffic (address, gateway, healthy); absent when its ipv6 is off.",
    );
    for w in &wans {
        if let Some(v6) = &w.ipv6 {
            let _ = writeln!(
                out,
                "routeros_wan_ipv6_usable{{wan=\"{}\"}} {}",
                name(w),
                u8::from(v6.usable)
            );
        }
    }
    header(&mut out, "routeros_failovers_total", "counter", "Failover events seen by routeros-web since it started (including those in the daemon's log then).");
    let _ = writeln!(out, "routeros_failovers_total {failovers}");
    header(
        &mut out,
        "routeros_conntrack_entries",
        "gauge",
        "Connections tracked by the kernel.",
    );
    if let Some(n) = status.system.conntrack_count {
        let _ = writeln!(out, "routeros_conntrack_entries {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{SystemInfo, WanCard};
    use routeros_shared::capacity::{LineSpeed, SpeedSource};
    use routeros_shared::control::{RouterStatus, TakeOutEffect, WanRole};

    #[test]
    fn renders_every_metric() {
        let wan = WanReport {
            name: "wan1".into(),
            device: "wan1".into(),
            line: Default::default(),
            table: 100,
            mark: 0x100,
            weight: 1,
            priority: 1,
            gateway: None,
            address: None,
            present: true,
            carrier: true,
            state: Some(HealthState::Up),
            since_ms: None,
            latency_ms: Some(12.0),
            jitter_ms: None,
            loss_percent: Some(5.0),
            connections: Some(3),
            rx_bytes: Some(100),
            tx_bytes: Some(50),
            usable: true,
            role: WanRole::Active,
            take_out: TakeOutEffect::default(),
            disabled: false,
            maintenance_until: None,
            active: true,
            ipv6: Some(routeros_shared::control::Ipv6Report {
                address: None,
                gateway: None,
                usable: false,
                active: false,
                state: None,
                since_ms: None,
                latency_ms: None,
                loss_percent: None,
            }),
            speed_down: Some(LineSpeed {
                kbit: 100_000,
                source: SpeedSource::Declared,
            }),
            speed_up: Some(LineSpeed {
                kbit: 2_500,
                source: SpeedSource::Learned,
            }),
            share: Some(1),
            shaping: Some(routeros_shared::control::ShapingReport {
                active: true,
                upload_kbit: 19_000,
                download_kbit: 95_000,
                error: None,
            }),
        };
        let status = StatusBody {
            router: RouterStatus::default(),
            wans: vec![WanCard {
                wan,
                rx_bps: None,
                tx_bps: None,
            }],
            system: SystemInfo {
                uptime_s: 1,
                cpu_percent: 0.0,
                mem_used: 0,
                mem_total: 0,
                conntrack_count: Some(42),
                conntrack_max: None,
                version: "0".into(),
            },
            at_ms: 0,
        };
        let text = render(&status, 3);
        for line in [
            "routeros_wan_up{wan=\"wan1\"} 1",
            "routeros_wan_state{wan=\"wan1\",state=\"up\"} 1",
            "routeros_wan_state{wan=\"wan1\",state=\"down\"} 0",
            "routeros_wan_latency_seconds{wan=\"wan1\"} 0.012",
            "routeros_wan_loss_ratio{wan=\"wan1\"} 0.05",
            "routeros_wan_rx_bytes_total{wan=\"wan1\"} 100",
            "routeros_wan_tx_bytes_total{wan=\"wan1\"} 50",
            "routeros_wan_ipv6_usable{wan=\"wan1\"} 0",
            "routeros_wan_speed_mbit{wan=\"wan1\",direction=\"down\",source=\"declared\"} 100",
            "routeros_wan_speed_mbit{wan=\"wan1\",direction=\"up\",source=\"learned\"} 2.5",
            "routeros_wan_shaping{wan=\"wan1\"} 1",
            "routeros_wan_shaping_mbit{wan=\"wan1\",direction=\"down\"} 95",
            "routeros_wan_shaping_mbit{wan=\"wan1\",direction=\"up\"} 19",
            "routeros_failovers_total 3",
            "routeros_conntrack_entries 42",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert_eq!(label("a\"b\\"), "a\\\"b\\\\");
    }
}
