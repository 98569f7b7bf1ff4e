//! `GET /metrics`: Prometheus text exposition from the latest status snapshot.

use super::auth::Viewer;
use super::error::{ApiResult, ErrorBody};
use super::telemetry::FRESH;
use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::fmt::Write;

const STATES: [&str; 4] = ["up", "degraded", "down", "recovering"];

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
pub fn render(status: &Value, failovers: u64) -> String {
    let wans: Vec<&Value> = status
        .get("wans")
        .and_then(Value::as_array)
        .map(|w| w.iter().collect())
        .unwrap_or_default();
    let name = |w: &Value| label(w.get("name").and_then(Value::as_str).unwrap_or(""));
    let wan_state = |w: &Value| {
        w.get("state")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()
    };
    let mut out = String::with_capacity(2048);

    header(
        &mut out,
        "routeros_wan_up",
        "gauge",
        "1 when the WAN passes its health checks (up or degraded).",
    );
    for w in &wans {
        let up = matches!(wan_state(w).as_str(), "up" | "degraded");
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
        "Health state of the WAN: 1 for the current state.",
    );
    for w in &wans {
        let current = wan_state(w);
        for s in STATES {
            let _ = writeln!(
                out,
                "routeros_wan_state{{wan=\"{}\",state=\"{s}\"}} {}",
                name(w),
                u8::from(current == s)
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
        if let Some(ms) = w.get("latency_ms").and_then(Value::as_f64) {
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
        if let Some(p) = w.get("loss_percent").and_then(Value::as_f64) {
            let _ = writeln!(
                out,
                "routeros_wan_loss_ratio{{wan=\"{}\"}} {}",
                name(w),
                p / 100.0
            );
        }
    }
    for (metric, key, help) in [
        (
            "routeros_wan_rx_bytes_total",
            "rx_bytes",
            "Bytes received on the WAN interface.",
        ),
        (
            "routeros_wan_tx_bytes_total",
            "tx_bytes",
            "Bytes sent on the WAN interface.",
        ),
    ] {
        header(&mut out, metric, "counter", help);
        for w in &wans {
            if let Some(n) = w.get(key).and_then(Value::as_u64) {
                let _ = writeln!(out, "{metric}{{wan=\"{}\"}} {n}", name(w));
            }
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
    if let Some(n) = status
        .pointer("/system/conntrack_count")
        .and_then(Value::as_u64)
    {
        let _ = writeln!(out, "routeros_conntrack_entries {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_every_metric() {
        let status = json!({
            "wans": [{"name": "wan1", "state": "up", "latency_ms": 12.0, "loss_percent": 5.0,
                      "rx_bytes": 100, "tx_bytes": 50}],
            "system": {"conntrack_count": 42}
        });
        let text = render(&status, 3);
        for line in [
            "routeros_wan_up{wan=\"wan1\"} 1",
            "routeros_wan_state{wan=\"wan1\",state=\"up\"} 1",
            "routeros_wan_state{wan=\"wan1\",state=\"down\"} 0",
            "routeros_wan_latency_seconds{wan=\"wan1\"} 0.012",
            "routeros_wan_loss_ratio{wan=\"wan1\"} 0.05",
            "routeros_wan_rx_bytes_total{wan=\"wan1\"} 100",
            "routeros_wan_tx_bytes_total{wan=\"wan1\"} 50",
            "routeros_failovers_total 3",
            "routeros_conntrack_entries 42",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert_eq!(label("a\"b\\"), "a\\\"b\\\\");
    }
}
