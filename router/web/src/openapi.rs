//! The OpenAPI 3 document (JSON only; no bundled viewer that would load scripts from the
//! internet), generated from the handlers' annotations. A test checks that it lists exactly
//! the routes the router has.

use super::api;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
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
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        refine(&mut doc);
        serde_json::to_string(&doc).expect("the document serializes")
    })
}

/// What the annotations cannot say: the answers every operation can give, unsigned
/// integers, and the ranges, enums and patterns the handlers check. A client generated from
/// the document (or a property-based tester) then sends what the server takes.
fn refine(doc: &mut Value) {
    use super::api::{audit, keys, setup, status};
    use super::upgrade::MAX_URL;
    use routeros_shared::control::MAX_MAINTENANCE_MINUTES;
    let error = json!({"description": "error", "content": {"application/json":
        {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut().filter_map(Value::as_object_mut))
        {
            let public = op.get("security") == Some(&json!([{}]));
            let mut add = Vec::new();
            if op.contains_key("requestBody") {
                // bad JSON or fields, body over the limit, not application/json
                add.extend(["400", "413", "415"]);
            }
            if !public {
                // bad API keys count as failed logins (per address)
                add.extend(["401", "429"]);
            }
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            for code in add {
                if responses.get(code).is_none() {
                    responses[code] = error.clone();
                }
            }
        }
    }
    unsigned_integers(doc);
    let set = |doc: &mut Value, pointer: &str, extra: Value| {
        let target = doc
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("the OpenAPI document has no {pointer}"));
        for (k, v) in extra.as_object().expect("an object") {
            target[k] = v.clone();
        }
    };
    let schemas = "/components/schemas";
    set(
        doc,
        &format!("{schemas}/MaintenanceBody/properties/minutes"),
        json!({"minimum": 1, "maximum": MAX_MAINTENANCE_MINUTES}),
    );
    set(
        doc,
        &format!("{schemas}/NewKey/properties/label"),
        json!({"maxLength": keys::MAX_LABEL, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}),
    );
    set(
        doc,
        &format!("{schemas}/NewUser/properties/username"),
        json!({"pattern": "^[A-Za-z0-9._-]{1,32}$"}),
    );
    set(
        doc,
        &format!("{schemas}/NewUser/properties/password"),
        json!({"minLength": setup::MIN_PASSWORD}),
    );
    set(
        doc,
        &format!("{schemas}/NewPassword/properties/new_password"),
        json!({"minLength": setup::MIN_PASSWORD, "not": {"const": super::auth::DEFAULT_PASSWORD}}),
    );
    set(
        doc,
        &format!("{schemas}/UpgradeFromUrl/properties/url"),
        json!({"maxLength": MAX_URL, "pattern": "^https?://[^/\\s\\x00-\\x1f\\x7f-\\x9f][^\\s\\x00-\\x1f\\x7f-\\x9f]*$"}),
    );
    set(
        doc,
        &format!("{schemas}/WizardWan/properties/vlan"),
        json!({"minimum": 1, "maximum": 4094}),
    );
    let mut kinds = vec![json!("")];
    kinds.extend(status::KINDS.iter().map(|k| json!(k)));
    let param = |doc: &mut Value, path: &str, name: &str, schema: Value| {
        let params = doc["paths"][path]["get"]["parameters"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("{path} has no parameters"));
        let p = params
            .iter_mut()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no parameter {name}"));
        for (k, v) in schema.as_object().expect("an object") {
            p["schema"][k] = v.clone();
        }
    };
    param(doc, "/api/v1/events", "kind", json!({"enum": kinds}));
    param(
        doc,
        "/api/v1/history/{wan}",
        "seconds",
        json!({"minimum": 1, "maximum": status::MAX_HISTORY_SECONDS}),
    );
    param(
        doc,
        "/api/v1/audit",
        "limit",
        json!({"minimum": 1, "maximum": audit::MAX_LIMIT}),
    );
}

/// utoipa writes Rust's u32/u64 as int32/int64 with `minimum: 0`, whose upper ends are
/// those of the signed types: say the real range instead (no standard format fits).
fn unsigned_integers(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let unsigned = map.get("minimum") == Some(&json!(0));
            let max = match map.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(json!(u32::MAX)),
                Some("int64") if unsigned => Some(json!(u64::MAX)),
                _ => None,
            };
            if let Some(max) = max {
                map.remove("format");
                map.insert("maximum".into(), max);
            }
            map.values_mut().for_each(unsigned_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_integers),
        _ => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The gaps issue #10 (item 10) found: no 400/415, no ranges or enums, u64 as int64.
    #[test]
    fn document_states_errors_ranges_and_unsigned_types() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("requestBody").is_some() {
                    for code in ["400", "413", "415"] {
                        assert!(
                            op["responses"].get(code).is_some(),
                            "{method} {path} {code}"
                        );
                    }
                }
            }
        }
        let minutes = &doc["components"]["schemas"]["MaintenanceBody"]["properties"]["minutes"];
        assert_eq!(
            (&minutes["minimum"], &minutes["maximum"]),
            (&json!(1), &json!(10080))
        );
        let kind = doc["paths"]["/api/v1/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "kind")
            .unwrap();
        assert!(kind["schema"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("failover")));
        let text = document();
        assert!(
            !text.contains("\"int64\"") && !text.contains("\"int32\""),
            "{text}"
        );
        let version = &doc["components"]["schemas"]["RollbackBody"]["properties"]["version"];
        assert_eq!(version["maximum"], json!(u64::MAX));

        // The status body is the daemon's typed report (role and usability included).
        let status = &doc["paths"]["/api/v1/status"]["get"]["responses"]["200"];
        assert_eq!(
            status["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/StatusBody",
            "{status}"
        );
        let schemas = &doc["components"]["schemas"];
        let text = serde_json::to_string(&schemas["WanCard"]).unwrap();
        assert!(text.contains("WanReport"), "{text}");
        for field in [
            "usable",
            "role",
            "take_out",
            "connections",
            "speed_down",
            "speed_up",
            "share",
            "shaping",
        ] {
            assert!(
                schemas["WanReport"]["properties"].get(field).is_some(),
                "{field}"
            );
        }
        assert!(
            schemas["SpeedSource"]["enum"]
                .as_array()
                .is_some_and(|e| e.iter().any(|s| s == "learned")),
            "{}",
            schemas["SpeedSource"]
        );
        assert!(schemas["WanRole"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("maintenance")));
        assert!(schemas["PendingAnswer"]["properties"]
            .get("confirm_seconds")
            .is_some());

        // The PPPoE password is write-only; VLAN ids are 1..=4094.
        let pppoe = &schemas["WizardPppoe"]["properties"];
        assert_eq!(pppoe["password"]["writeOnly"], true, "{pppoe}");
        let vlan = &schemas["WizardWan"]["properties"]["vlan"];
        assert_eq!(
            (&vlan["minimum"], &vlan["maximum"]),
            (&json!(1), &json!(4094))
        );
    }
}
