//! The OpenAPI 3 document (JSON only; no bundled viewer that would load scripts from the
//! internet), generated from the handlers' annotations. A test checks that it lists exactly
//! the routes the router has.

use super::api;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "routeros-web",
        description = "Management API of the Phoenix Nexus multi-WAN router. Authenticate with \
            the `rsid` session cookie (POST /api/v1/login; changes then need this server's \
            Origin header) or `Authorization: Bearer rk_<id>_<secret>`. Errors are \
            `{error, message, fields}`."
    ),
    paths(
        api::session::login,
        api::session::logout,
        api::session::session,
        api::setup::get_setup,
        api::setup::set_password,
        api::setup::apply,
        api::status::status,
        api::status::events,
        api::status::history,
        api::stream::stream,
        api::wans::disable,
        api::wans::enable,
        api::wans::maintenance,
        api::wans::impact,
        api::config::get_config,
        api::config::put_config,
        api::config::confirm,
        api::config::history,
        api::config::rollback,
        api::users::list,
        api::users::create,
        api::users::delete,
        api::keys::list,
        api::keys::create,
        api::keys::delete,
        api::audit::list,
        api::system::get_upgrade,
        api::system::upgrade_from_url,
        api::system::upgrade_from_upload,
        openapi_json,
        super::metrics::metrics,
    ),
    modifiers(&Security),
    security(("session" = []), ("api_key" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("rsid"))),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text (built once).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `(METHOD, path)` of every operation in the document, sorted.
pub fn operations() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(document()).expect("valid JSON");
    let mut ops = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    ops.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    ops.sort();
    ops
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, content_type = "application/json", description = "OpenAPI 3 document")))]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
