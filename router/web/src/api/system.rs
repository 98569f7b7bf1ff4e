//! Image upgrades from the web UI: the page's state (any role), and a request from a URL or
//! an uploaded bundle (admin). The request is only written down here; the appliance's root
//! helper verifies the signature and installs it (see `web::upgrade`).

use crate::auth::{Admin, Principal, Viewer};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ClientIp};
use crate::store;
use crate::upgrade::{self, UpgradeRequest, UpgradeView, BUNDLE_FILE, MAX_BUNDLE};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use futures::StreamExt;
use routeros_shared::events::now_ms;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::path::Path;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeFromUrl {
    /// `http(s)://…/router_<version>.upgrade.tar`
    pub url: String,
}

fn view(state: &AppState) -> ApiResult<UpgradeView> {
    upgrade::read_view(&state.upgrade).map_err(ApiError::internal)
}

#[utoipa::path(get, path = "/api/v1/system/upgrade", tag = "system",
    responses((status = 200, body = UpgradeView), (status = 401, body = ErrorBody)))]
pub async fn get_upgrade(
    State(state): State<AppState>,
    _who: Viewer,
) -> ApiResult<Json<UpgradeView>> {
    view(&state).map(Json)
}

/// Install the bundle at a URL (the router downloads it).
#[utoipa::path(post, path = "/api/v1/system/upgrade", tag = "system",
    request_body = UpgradeFromUrl,
    responses((status = 202, body = UpgradeView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn upgrade_from_url(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    ApiJson(body): ApiJson<UpgradeFromUrl>,
) -> ApiResult<(StatusCode, Json<UpgradeView>)> {
    if let Some(problem) = upgrade::url_problem(&body.url) {
        return Err(ApiError::bad_field("url", problem));
    }
    submit(&state, &who, ip, Some(body.url), async { Ok(()) }).await
}

/// Install an uploaded bundle (the request body is the file, up to 4 GiB).
#[utoipa::path(post, path = "/api/v1/system/upgrade/bundle", tag = "system",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "router_<version>.upgrade.tar"),
    responses((status = 202, body = UpgradeView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn upgrade_from_upload(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Admin,
    body: Body,
) -> ApiResult<(StatusCode, Json<UpgradeView>)> {
    let target = state.upgrade.bundle();
    submit(&state, &who, ip, None, receive(body, &target)).await
}

/// Refuse when upgrades are unavailable or one is in flight; otherwise get the bundle ready
/// (`prepare`) and write the request, last, for the helper.
async fn submit(
    state: &AppState,
    who: &Principal,
    ip: IpAddr,
    url: Option<String>,
    prepare: impl std::future::Future<Output = ApiResult<()>>,
) -> ApiResult<(StatusCode, Json<UpgradeView>)> {
    let Ok(_one_at_a_time) = state.upgrade_submit.try_lock() else {
        return Err(ApiError::Conflict(
            "another upgrade request is being received".into(),
        ));
    };
    let current = view(state)?;
    if let Some(reason) = current.unavailable_reason {
        return Err(ApiError::Conflict(reason));
    }
    if current.busy() {
        return Err(ApiError::Conflict(format!(
            "an upgrade is already under way ({}): wait for it to finish",
            current.message
        )));
    }
    store::ensure_dir(&state.upgrade.request_dir).map_err(ApiError::internal)?;
    prepare.await?;
    let request = UpgradeRequest {
        id: store::random_hex(8),
        bundle: url.is_none().then(|| BUNDLE_FILE.to_string()),
        url,
        requested_by: who.username.clone(),
        at_ms: now_ms(),
    };
    store::write_json(&state.upgrade.request(), &request).map_err(ApiError::internal)?;
    state
        .audit
        .record(
            who,
            ip,
            "system.upgrade",
            json!({ "id": request.id, "source": request.source() }),
        )
        .await;
    Ok((StatusCode::ACCEPTED, Json(view(state)?)))
}

/// Stream the body into `target` (through a temporary name, so the helper never sees half a
/// bundle); nothing is left behind on failure.
async fn receive(body: Body, target: &Path) -> ApiResult<()> {
    let partial = target.with_extension("tar.part");
    let result = async {
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(ApiError::internal)?;
        let mut stream = body.into_data_stream();
        let mut size: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest {
                message: format!("upload interrupted: {e}"),
                fields: vec![],
            })?;
            size += chunk.len() as u64;
            if size > MAX_BUNDLE {
                return Err(ApiError::PayloadTooLarge);
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        if size == 0 {
            return Err(ApiError::BadRequest {
                message: "the body is empty: send the bundle file (router_<version>.upgrade.tar)"
                    .into(),
                fields: vec![],
            });
        }
        file.sync_all().await.map_err(ApiError::internal)?;
        tokio::fs::rename(&partial, target)
            .await
            .map_err(ApiError::internal)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}
