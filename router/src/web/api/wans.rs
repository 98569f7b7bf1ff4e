//! Kill-switch controls per WAN: disable, enable, maintenance, and the impact figure the
//! confirmation dialog shows ("N connections on wan1 will be reset").

use crate::daemon::control::{Request, MAX_MAINTENANCE_MINUTES};
use crate::web::auth::Operator;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{ApiJson, ClientIp};
use crate::web::telemetry::FRESH;
use crate::web::AppState;
use axum::extract::{Path, State};
use axum::Json;
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
    /// Disable only: connections that were on the WAN and get reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_connections: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Impact {
    /// Connections currently carried by the WAN (reset if it is disabled).
    pub connections: Option<u64>,
}

/// The WAN's card from a status at most `max_age` old; 404 when there is no such WAN.
async fn wan_card(state: &AppState, wan: &str, max_age: Duration) -> ApiResult<Value> {
    let snapshot = state.telemetry.current(max_age).await?;
    snapshot
        .status
        .get("wans")
        .and_then(Value::as_array)
        .and_then(|wans| {
            wans.iter()
                .find(|w| w.get("name").and_then(Value::as_str) == Some(wan))
        })
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("`{wan}` is not a WAN interface")))
}

/// Send a control request, push the new status to the streams, audit.
async fn act(
    state: &AppState,
    who: &Operator,
    ip: std::net::IpAddr,
    action: &str,
    req: Request,
    detail: Value,
) -> ApiResult<String> {
    let answer = state.daemon.ok(&req).await?;
    let message = answer
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("done")
        .to_string();
    let _ = state.telemetry.refresh().await;
    state.audit.record(who, ip, action, detail).await;
    Ok(message)
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
    let card = wan_card(&state, &wan, FRESH).await?;
    let connections = card.get("connections").and_then(Value::as_u64);
    let message = act(
        &state,
        &who,
        ip,
        "wan.disable",
        Request::Disable { wan: wan.clone() },
        json!({ "wan": wan, "connections": connections }),
    )
    .await?;
    Ok(Json(ActionAnswer {
        message,
        reset_connections: Some(connections.unwrap_or(0)),
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
    wan_card(&state, &wan, FRESH).await?;
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
    wan_card(&state, &wan, FRESH).await?;
    let message = act(
        &state,
        &who,
        ip,
        "wan.maintenance",
        Request::Maintenance {
            seconds: body.minutes * 60,
            wan: Some(wan.clone()),
        },
        json!({ "wan": wan, "minutes": body.minutes }),
    )
    .await?;
    Ok(Json(ActionAnswer {
        message,
        reset_connections: None,
    }))
}

/// Connections a disable would reset.
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
    let card = wan_card(&state, &wan, Duration::from_secs(1)).await?;
    Ok(Json(Impact {
        connections: card.get("connections").and_then(Value::as_u64),
    }))
}
