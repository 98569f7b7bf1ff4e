//! Kill-switch controls per WAN: disable, enable, maintenance, and the impact figure the
//! confirmation dialog shows ("N connections on wan1 will be reset").

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientIp};
use crate::telemetry::FRESH;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use routeros_shared::control::{Request, MAX_MAINTENANCE_MINUTES};
use routeros_shared::events::{now_ms, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    /// 1 ..= 10080 (one week).
    pub minutes: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionAnswer {
    pub message: String,
    /// Disable and maintenance: connections the daemon reset because the WAN left service
    /// (0 when it was already out of service, or when no other WAN could take them over:
    /// then they keep running where they are).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_connections: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Impact {
    /// Connections currently carried by the WAN.
    pub connections: Option<u64>,
    /// Connections a disable (or maintenance) would reset now: the WAN's connections when it
    /// is in service and another WAN can take over, else 0 (the daemon resets nothing when
    /// there is nowhere to move to, and a WAN already out of service has nothing to reset).
    pub reset_connections: u64,
    /// The WAN is in service now (up or degraded, not disabled, not in maintenance).
    pub in_service: bool,
    /// The other WANs in service: they take over the WAN's new connections.
    pub takeover: Vec<String>,
}

/// Whether the daemon counts a WAN card as in service (`usable`; derived from the state
/// and the overrides for a daemon that does not send it).
fn usable(card: &Value) -> bool {
    if let Some(u) = card.get("usable").and_then(Value::as_bool) {
        return u;
    }
    let state_ok = matches!(
        card.get("state").and_then(Value::as_str),
        Some("up" | "degraded")
    );
    let disabled = card.get("disabled").and_then(Value::as_bool) == Some(true);
    let maintenance = !card
        .get("maintenance_until")
        .unwrap_or(&Value::Null)
        .is_null();
    state_ok && !disabled && !maintenance
}

/// What taking `wan` out of service does, from the status' WAN cards; None when there is no
/// such WAN.
pub fn impact_of(wans: &[Value], wan: &str) -> Option<Impact> {
    let card = wans
        .iter()
        .find(|w| w.get("name").and_then(Value::as_str) == Some(wan))?;
    let connections = card.get("connections").and_then(Value::as_u64);
    let in_service = usable(card);
    let takeover: Vec<String> = wans
        .iter()
        .filter(|w| w.get("name").and_then(Value::as_str) != Some(wan) && usable(w))
        .filter_map(|w| w.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let reset_connections = if in_service && !takeover.is_empty() {
        connections.unwrap_or(0)
    } else {
        0
    };
    Some(Impact {
        connections,
        reset_connections,
        in_service,
        takeover,
    })
}

/// The impact of taking `wan` out of service, from a status at most `max_age` old; 404 when
/// there is no such WAN.
async fn wan_impact(state: &AppState, wan: &str, max_age: Duration) -> ApiResult<Impact> {
    let snapshot = state.telemetry.current(max_age).await?;
    let wans = snapshot
        .status
        .get("wans")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    impact_of(wans, wan)
        .ok_or_else(|| ApiError::NotFound(format!("`{wan}` is not a WAN interface")))
}

/// Connections the daemon reset on `wan` since `since_ms`: the `reset_connections` of its
/// failover events (it emits one when it flushes a WAN's connections, before it answers).
async fn resets_since(state: &AppState, wan: &str, since_ms: u64) -> u64 {
    let req = Request::Events {
        since_ms: Some(since_ms),
        wan: Some(wan.to_string()),
        kind: Some(EventKind::Failover),
    };
    let Ok(answer) = state.daemon.ok(&req).await else {
        return 0;
    };
    answer
        .get("events")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .filter_map(|e| {
                    e.pointer("/details/reset_connections")
                        .and_then(Value::as_u64)
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Send a control request, then [`done`].
async fn act(
    state: &AppState,
    who: &Operator,
    ip: std::net::IpAddr,
    action: &str,
    req: Request,
    detail: Value,
) -> ApiResult<String> {
    let answer = state.daemon.ok(&req).await?;
    Ok(done(state, who, ip, action, &answer, detail).await)
}

/// After the daemon carried out a control request: push the new status to the streams,
/// audit, and return the daemon's message.
async fn done(
    state: &AppState,
    who: &Operator,
    ip: std::net::IpAddr,
    action: &str,
    answer: &Value,
    detail: Value,
) -> String {
    let message = answer
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("done")
        .to_string();
    let _ = state.telemetry.refresh().await;
    state.audit.record(who, ip, action, detail).await;
    message
}

/// Take a WAN out of service (its connections are reset and move to the others).
#[utoipa::path(post, path = "/api/v1/wans/{wan}/disable", tag = "wans",
    params(("wan" = String, Path, description = "WAN interface name")),
    responses((status = 200, body = ActionAnswer), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Operator,
    Path(wan): Path<String>,
) -> ApiResult<Json<ActionAnswer>> {
    let impact = wan_impact(&state, &wan, FRESH).await?;
    let detail = json!({ "wan": wan, "connections": impact.connections });
    let req = Request::Disable { wan: wan.clone() };
    take_out(&state, &who, ip, &wan, "wan.disable", req, detail).await
}

/// Disable or maintenance: ask the daemon, then audit with the connections it really reset
/// (read back from its failover events, since it resets nothing when no other WAN is up).
async fn take_out(
    state: &AppState,
    who: &Operator,
    ip: std::net::IpAddr,
    wan: &str,
    action: &str,
    req: Request,
    mut detail: Value,
) -> ApiResult<Json<ActionAnswer>> {
    let before = now_ms().saturating_sub(1);
    let answer = state.daemon.ok(&req).await?;
    let reset = resets_since(state, wan, before).await;
    detail["reset_connections"] = json!(reset);
    let message = done(state, who, ip, action, &answer, detail).await;
    Ok(Json(ActionAnswer {
        message,
        reset_connections: Some(reset),
    }))
}

/// Put a disabled or maintained WAN back into service.
#[utoipa::path(post, path = "/api/v1/wans/{wan}/enable", tag = "wans",
    params(("wan" = String, Path, description = "WAN interface name")),
    responses((status = 200, body = ActionAnswer), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Operator,
    Path(wan): Path<String>,
) -> ApiResult<Json<ActionAnswer>> {
    wan_impact(&state, &wan, FRESH).await?;
    let message = act(
        &state,
        &who,
        ip,
        "wan.enable",
        Request::Enable { wan: wan.clone() },
        json!({ "wan": wan }),
    )
    .await?;
    Ok(Json(ActionAnswer {
        message,
        reset_connections: None,
    }))
}

/// Take a WAN out of service for `minutes`, then back in by itself.
#[utoipa::path(post, path = "/api/v1/wans/{wan}/maintenance", tag = "wans",
    params(("wan" = String, Path, description = "WAN interface name")),
    request_body = MaintenanceBody,
    responses((status = 200, body = ActionAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn maintenance(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Operator,
    Path(wan): Path<String>,
    ApiJson(body): ApiJson<MaintenanceBody>,
) -> ApiResult<Json<ActionAnswer>> {
    if !(1..=MAX_MAINTENANCE_MINUTES).contains(&body.minutes) {
        return Err(ApiError::bad_field(
            "minutes",
            format!("{} is not in 1..={MAX_MAINTENANCE_MINUTES}", body.minutes),
        ));
    }
    wan_impact(&state, &wan, FRESH).await?;
    let detail = json!({ "wan": wan, "minutes": body.minutes });
    let req = Request::Maintenance {
        seconds: body.minutes * 60,
        wan: Some(wan.clone()),
    };
    take_out(&state, &who, ip, &wan, "wan.maintenance", req, detail).await
}

/// What a disable (or maintenance) would do now: connections reset, WANs taking over.
#[utoipa::path(get, path = "/api/v1/wans/{wan}/impact", tag = "wans",
    params(("wan" = String, Path, description = "WAN interface name")),
    responses((status = 200, body = Impact), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn impact(
    State(state): State<AppState>,
    _who: Operator,
    Path(wan): Path<String>,
) -> ApiResult<Json<Impact>> {
    Ok(Json(
        wan_impact(&state, &wan, Duration::from_secs(1)).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(name: &str, state: &str, usable: Option<bool>, connections: u64) -> Value {
        let mut c = json!({"name": name, "state": state, "connections": connections,
                           "disabled": false, "maintenance_until": null});
        if let Some(u) = usable {
            c["usable"] = json!(u);
        }
        c
    }

    #[test]
    fn resets_only_when_another_wan_takes_over() {
        let both = [
            card("wan1", "up", Some(true), 9),
            card("wan2", "up", Some(true), 4),
        ];
        let i = impact_of(&both, "wan1").unwrap();
        assert_eq!((i.reset_connections, i.in_service), (9, true));
        assert_eq!(i.takeover, ["wan2"]);

        // The last WAN in service: nowhere to move, the daemon keeps the connections.
        let one = [
            card("wan1", "up", Some(true), 9),
            card("wan2", "down", Some(false), 4),
        ];
        let i = impact_of(&one, "wan1").unwrap();
        assert_eq!((i.reset_connections, i.takeover.len()), (0, 0));
        // Already out of service: its connections were reset when it left.
        let i = impact_of(&one, "wan2").unwrap();
        assert_eq!((i.reset_connections, i.in_service), (0, false));
        assert!(impact_of(&one, "wan3").is_none());
    }

    #[test]
    fn usable_is_derived_when_the_daemon_does_not_say() {
        assert!(usable(&card("a", "degraded", None, 0)));
        assert!(!usable(&card("a", "recovering", None, 0)));
        let mut c = card("a", "up", None, 0);
        c["disabled"] = json!(true);
        assert!(!usable(&c));
        let mut c = card("a", "up", None, 0);
        c["maintenance_until"] = json!(1_800_000_000);
        assert!(!usable(&c));
    }
}
