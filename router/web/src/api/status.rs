//! Read-only views: live status, events, per-WAN history (daemon latency/loss points merged
//! with this server's 1 s throughput points).

use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::telemetry::{Rate, StatusBody, FRESH};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use routeros_shared::control::{EventsReply, HealthPoint, HistoryReply, Request};
use routeros_shared::events::{now_ms, Event, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

/// Daemon status per WAN plus `rx_bps`/`tx_bps` (bits/s) and `system`.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, body = StatusBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn status(State(state): State<AppState>, _who: Viewer) -> ApiResult<Response> {
    let snapshot = state.telemetry.current(FRESH).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], snapshot.json).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub wan: Option<String>,
    /// Parsed by hand so that `kind=` (empty) means "any".
    pub kind: Option<String>,
    pub since_ms: Option<u64>,
}

/// Event kinds as the API names them (`EventKind` in snake case).
pub(crate) const KINDS: [&str; 7] = [
    "state_change",
    "high_latency",
    "failover",
    "config_change",
    "operator",
    "session",
    "ha",
];

fn event_kind(kind: Option<String>) -> ApiResult<Option<EventKind>> {
    match kind.filter(|k| !k.is_empty()) {
        None => Ok(None),
        Some(k) => serde_json::from_value(Value::String(k.clone()))
            .map(Some)
            .map_err(|_| {
                ApiError::bad_field("kind", format!("`{k}` is not one of {}", KINDS.join(", ")))
            }),
    }
}

/// Recent daemon events, oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "status",
    params(
        ("wan" = Option<String>, Query, description = "only this WAN"),
        ("kind" = Option<String>, Query, description = "one of state_change, high_latency, failover, config_change, operator, session"),
        ("since_ms" = Option<u64>, Query, description = "only events after this Unix time (ms)"),
    ),
    responses((status = 200, body = EventsBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    _who: Viewer,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventsBody>> {
    let answer: EventsReply = state
        .daemon
        .ask(&Request::Events {
            since_ms: q.since_ms,
            wan: q.wan.filter(|w| !w.is_empty()),
            kind: event_kind(q.kind)?,
        })
        .await?;
    Ok(Json(EventsBody {
        events: answer.events,
    }))
}

/// Daemon events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsBody {
    pub events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub seconds: Option<u32>,
}

/// Longest history window (the daemon keeps about an hour of rounds anyway).
pub(crate) const MAX_HISTORY_SECONDS: u32 = 86_400;

/// Graph points of one WAN: `{points:[{t_ms, latency_ms, jitter_ms, loss_percent, rx_bps, tx_bps}]}`.
#[utoipa::path(get, path = "/api/v1/history/{wan}", tag = "status",
    params(("wan" = String, Path, description = "WAN interface name"),
        ("seconds" = Option<u32>, Query, description = "window, default 3600")),
    responses((status = 200, body = Object, description = "{points:[...]}"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    _who: Viewer,
    Path(wan): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let seconds = q.seconds.unwrap_or(3600);
    if !(1..=MAX_HISTORY_SECONDS).contains(&seconds) {
        return Err(ApiError::bad_field(
            "seconds",
            format!("{seconds} is not in 1..={MAX_HISTORY_SECONDS}"),
        ));
    }
    let snapshot = state.telemetry.current(FRESH).await?;
    if snapshot.status.wan(&wan).is_none() {
        return Err(ApiError::NotFound(format!(
            "`{wan}` is not a WAN interface"
        )));
    }
    let answer: HistoryReply = state
        .daemon
        .ask(&Request::History {
            wan: wan.clone(),
            seconds,
        })
        .await?;
    let health = answer.points;
    let since = now_ms().saturating_sub(u64::from(seconds) * 1000);
    let rates = state.telemetry.throughput(&wan, since);
    Ok(Json(
        json!({ "wan": wan, "points": merge(&health, &rates) }),
    ))
}

/// One time axis for both series: every 1 s throughput point, with the latency/loss of the
/// probe round nearest to it (within 1 s); probe rounds without a throughput point nearby
/// become points of their own. Missing figures are null.
pub fn merge(health: &[HealthPoint], rates: &[Rate]) -> Vec<Value> {
    let mut points: Vec<Value> = rates
        .iter()
        .map(|r| {
            json!({ "t_ms": r.t_ms, "latency_ms": null, "jitter_ms": null,
                    "loss_percent": null, "rx_bps": r.rx_bps, "tx_bps": r.tx_bps })
        })
        .collect();
    let mut filled = vec![false; rates.len()];
    for h in health {
        let t = h.t_ms;
        let figures = json!(h);
        let field = |k: &str| figures.get(k).cloned().unwrap_or(Value::Null);
        let i = rates.partition_point(|r| r.t_ms < t);
        let nearest = [i.checked_sub(1), (i < rates.len()).then_some(i)]
            .into_iter()
            .flatten()
            .filter(|&j| !filled[j] && rates[j].t_ms.abs_diff(t) <= 1000)
            .min_by_key(|&j| rates[j].t_ms.abs_diff(t));
        match nearest {
            Some(j) => {
                filled[j] = true;
                for k in ["latency_ms", "jitter_ms", "loss_percent"] {
                    points[j][k] = field(k);
                }
            }
            None => points.push(json!({
                "t_ms": t, "latency_ms": field("latency_ms"), "jitter_ms": field("jitter_ms"),
                "loss_percent": field("loss_percent"), "rx_bps": null, "tx_bps": null,
            })),
        }
    }
    points.sort_by_key(|p| p.get("t_ms").and_then(Value::as_u64).unwrap_or(0));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_on_one_axis() {
        let rates: Vec<Rate> = (0..5)
            .map(|i| Rate {
                t_ms: 10_000 + i * 1000,
                rx_bps: 8.0 * i as f64,
                tx_bps: 1.0,
            })
            .collect();
        let point = |t_ms, latency_ms, jitter_ms, loss_percent| HealthPoint {
            t_ms,
            latency_ms,
            jitter_ms,
            loss_percent,
        };
        let health = vec![
            point(11_200, Some(12.5), Some(1.0), 0.0),
            point(30_000, None, None, 100.0),
        ];
        let points = merge(&health, &rates);
        assert_eq!(points.len(), 6);
        assert_eq!(points[1]["t_ms"], 11_000);
        assert_eq!(points[1]["latency_ms"], 12.5);
        assert_eq!(points[1]["rx_bps"], 8.0);
        assert_eq!(points[5]["t_ms"], 30_000);
        assert_eq!(points[5]["loss_percent"], 100.0);
        assert!(points[5]["rx_bps"].is_null());
    }
}
