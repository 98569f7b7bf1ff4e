//! Kill-switch controls per WAN: disable, enable, maintenance, and the impact figure the
//! confirmation dialog shows ("N connections on wan1 will be reset").

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientIp};
use crate::telemetry::{StatusBody, FRESH};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use routeros_shared::control::{Done, Request, TakenOut, MAX_MAINTENANCE_MINUTES};
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

/// What taking `wan` out of service does, from the daemon's report of it (the daemon
/// decides, by the rule it resets connections with); None when there is no such WAN.
pub fn impact_of(status: &StatusBody, wan: &str) -> Option<Impact> {
    let card = &status.wan(wan)?.wan;
    let effect = &card.take_out;
    Some(Impact {
        connections: card.connections,
        reset_connections: if effect.resets_connections {
            card.connections.unwrap_or(0)
        } else {
            0
        },
        in_service: card.usable,
        takeover: effect.takeover.clone(),
    })
}

/// The impact of taking `wan` out of service, from a status at most `max_age` old; 404 when
/// there is no such WAN.
async fn wan_impact(state: &AppState, wan: &str, max_age: Duration) -> ApiResult<Impact> {
    let snapshot = state.telemetry.current(max_age).await?;
    impact_of(&snapshot.status, wan)
        .ok_or_else(|| ApiError::NotFound(format!("`{wan}` is not a WAN interface")))
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
    let answer: Done = state.daemon.ask(&req).await?;
    done(state, who, ip, action, detail).await;
    Ok(answer.message)
}

/// After the daemon carried out a control request: push the new status to the streams
/// and audit.
async fn done(state: &AppState, who: &Operator, ip: std::net::IpAddr, action: &str, detail: Value) {
    let _ = state.telemetry.refresh().await;
    state.audit.record(who, ip, action, detail).await;
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
    take_out(&state, &who, ip, "wan.disable", req, detail).await
}

/// Disable or maintenance: ask the daemon, then audit with the connections it says it
/// reset (none when no other WAN could take them over).
async fn take_out(
    state: &AppState,
    who: &Operator,
    ip: std::net::IpAddr,
    action: &str,
    req: Request,
    mut detail: Value,
) -> ApiResult<Json<ActionAnswer>> {
    let answer: TakenOut = state.daemon.ask(&req).await?;
    detail["reset_connections"] = json!(answer.reset_connections);
    done(state, who, ip, action, detail).await;
    Ok(Json(ActionAnswer {
        message: answer.message,
        reset_connections: Some(answer.reset_connections),
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
    take_out(&state, &who, ip, "wan.maintenance", req, detail).await
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
