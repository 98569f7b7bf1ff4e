//! routeros-web's config changes (commit-confirm through the daemon), request-body
//! errors, the audit log and image upgrades.

use axum::body::Body;
use axum::http::StatusCode;
use common::*;
use routeros_shared::config::Config;
use serde_json::{json, Value};

mod common;

#[tokio::test]
async fn config_changes_go_to_the_daemon() {
    let h = Harness::new();
    let admin = h.setup().await;

    let a = h
        .send(Req::get("/api/v1/config").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["toml"], CONFIG_TOML);
    assert_eq!(a.body["version"], 3);
    assert_eq!(a.body["config"]["wan_interfaces"][0]["name"], "wan1");

    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"toml": CONFIG_TOML})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["pending"]["id"], "19abc");
    let sent = h.daemon.requests("apply_config");
    assert_eq!(
        sent[0],
        json!({"cmd": "apply_config", "toml": CONFIG_TOML, "confirm_seconds": 60, "by": "admin"})
    );

    // The JSON form is turned into TOML that parses back to the same config.
    let mut form = a.body.clone();
    form = serde_json::to_value(Config::from_toml(CONFIG_TOML).unwrap()).unwrap_or(form);
    form["wan_interfaces"][1]["weight"] = json!(5);
    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"config": form})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let sent = h.daemon.requests("apply_config");
    let cfg = Config::from_toml(sent[1]["toml"].as_str().unwrap()).unwrap();
    assert_eq!(cfg.wan_interfaces[1].weight, 5);

    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"toml": CONFIG_TOML, "config": {}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let a = h
        .send(
            Req::post("/api/v1/config/confirm")
                .cookie(&admin)
                .json(json!({"id": "nope"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = h
        .send(
            Req::post("/api/v1/config/confirm")
                .cookie(&admin)
                .json(json!({"id": "19abc"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    let a = h
        .send(Req::get("/api/v1/config/history").cookie(&admin).empty())
        .await;
    assert_eq!(a.body["versions"][1]["version"], 3);
    let a = h
        .send(
            Req::post("/api/v1/config/rollback")
                .cookie(&admin)
                .json(json!({"version": 2})),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = h
        .send(
            Req::post("/api/v1/config/rollback")
                .cookie(&admin)
                .json(json!({"version": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["pending"]["id"], "19abd");
    assert_eq!(
        h.daemon.requests("rollback_config"),
        vec![json!({"cmd": "rollback_config", "version": 1, "by": "admin"})]
    );
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let h = Harness::new();
    let admin = h.setup().await;

    let a = h
        .send(
            Req::post("/api/v1/wans/wan1/maintenance")
                .cookie(&admin)
                .json(json!({"minutes": "ten"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"], "bad_request");
    assert_eq!(a.body["fields"][0]["path"], "minutes", "{}", a.text);

    let a = h
        .send(Req::post("/api/v1/login").json(json!({"password": "x"})))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["fields"][0]["path"], "username", "{}", a.text);

    let a = h
        .send(
            Req::post("/api/v1/wans/wan1/maintenance")
                .cookie(&admin)
                .json(json!({"minutes": 0})),
        )
        .await;
    assert_eq!(a.body["fields"][0]["path"], "minutes", "{}", a.text);

    let a = h
        .send(Req::post("/api/v1/login").raw_json("{\"username\": "))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = h
        .send(Req::post("/api/v1/login").finish(Body::from("username=admin")))
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Config: a type error and a range error both come back by TOML path, and nothing is
    // sent to the daemon.
    let mut form = serde_json::to_value(Config::from_toml(CONFIG_TOML).unwrap()).unwrap();
    for bad in [json!("heavy"), json!(0), json!(300)] {
        form["wan_interfaces"][0]["weight"] = bad.clone();
        let a = h
            .send(
                Req::put("/api/v1/config")
                    .cookie(&admin)
                    .json(json!({"config": form})),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.body["error"], "invalid_config");
        let paths: Vec<&str> = a.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&"wan_interfaces[0].weight"),
            "{bad}: {paths:?}"
        );
    }
    let bad_toml = CONFIG_TOML.replace("weight = 2", "weight = 0");
    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({"toml": bad_toml})),
        )
        .await;
    assert_eq!(
        a.body["fields"][0]["path"], "wan_interfaces[0].weight",
        "{}",
        a.text
    );
    assert!(h.daemon.requests("apply_config").is_empty());
}

#[tokio::test]
async fn audit_log_records_who_did_what_from_where() {
    let h = Harness::new();
    let admin = h.setup().await;
    let op = h.user(&admin, "oper", "operator").await;
    let a = h
        .send(
            Req::post("/api/v1/wans/wan1/disable")
                .cookie(&op)
                .from("192.168.1.66:3333")
                .empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    h.send(
        Req::put("/api/v1/config")
            .cookie(&admin)
            .json(json!({"toml": CONFIG_TOML})),
    )
    .await;
    let a = h
        .send(Req::get("/api/v1/audit").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let entries = a.body["entries"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:?}"))
            .clone()
    };
    let e = find("wan.disable");
    assert_eq!(e["user"], "oper");
    assert_eq!(e["role"], "operator");
    assert_eq!(e["from"], "192.168.1.66");
    assert_eq!(e["detail"]["wan"], "wan1");
    assert!(e["at_ms"].as_u64().unwrap() > 0);
    assert_eq!(find("config.apply")["user"], "admin");
    for action in ["setup.password", "user.create", "login"] {
        find(action);
    }
    // Append-only JSON lines on disk.
    let text = std::fs::read_to_string(h.data_dir().join("audit.jsonl")).unwrap();
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

#[tokio::test]
async fn upgrade_is_refused_on_a_package_install() {
    let h = Harness::new();
    let admin = h.setup().await;
    let a = h
        .send(Req::get("/api/v1/system/upgrade").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["available"], false);
    assert!(a.body["unavailable_reason"]
        .as_str()
        .unwrap()
        .contains("apt"));
    let a = h
        .send(
            Req::post("/api/v1/system/upgrade")
                .cookie(&admin)
                .json(json!({"url": "http://192.168.1.10/router_2.upgrade.tar"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert!(!h.data_dir().join("upgrade/request.json").exists());
}

#[tokio::test]
async fn upgrade_requests_are_written_for_the_root_helper() {
    let h = Harness::appliance();
    let admin = h.setup().await;
    let operator = h.user(&admin, "olga", "operator").await;
    let state_dir = h.dir.path().join("upgrade-state");
    let request = h.data_dir().join("upgrade/request.json");
    let get = || async {
        let a = h
            .send(Req::get("/api/v1/system/upgrade").cookie(&operator).empty())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    };
    let v = get().await;
    assert_eq!(v["available"], true, "{v}");
    assert_eq!(v["running_version"], "0.1.0.1");
    assert_eq!(v["state"], "idle");
    assert_eq!(
        v["history"][0],
        "2026-11-28T10:00:00Z installed 0.1.0.1 from 0.1.0.0 (3 tries)"
    );

    // Only an admin asks; a bad URL names the field; nothing is written either way.
    let url_req = |cookie: &str, url: &str| {
        Req::post("/api/v1/system/upgrade")
            .cookie(cookie)
            .json(json!({ "url": url }))
    };
    let good = "http://192.168.1.10:8001/router_0.1.0.2.upgrade.tar";
    let a = h.send(url_req(&operator, good)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    for bad in ["ftp://h/x.tar", "http://h/a b.tar", ""] {
        let a = h.send(url_req(&admin, bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert_eq!(a.body["fields"][0]["path"], "url", "{}", a.text);
    }
    assert!(!request.exists());

    let a = h.send(url_req(&admin, good)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["state"], "queued");
    let written: Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    assert_eq!(written["url"], good);
    assert_eq!(written["requested_by"], "admin");
    assert!(written.get("bundle").is_none(), "{written}");
    // One at a time.
    let a = h.send(url_req(&admin, good)).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    let audit = h
        .send(Req::get("/api/v1/audit").cookie(&admin).empty())
        .await;
    assert!(
        audit.text.contains("system.upgrade") && audit.text.contains(good),
        "{}",
        audit.text
    );

    // The helper took it and failed: its report and output show, and a new request is open.
    std::fs::remove_file(&request).unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(
        state_dir.join("web-status.json"),
        json!({"id": written["id"], "state": "failed", "boot_id": boot_id.trim(),
               "message": "SHA256SUMS.sig is not a valid signature by any trusted key",
               "source": good, "requested_by": "admin", "updated_ms": 5})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        state_dir.join("web-upgrade.log"),
        "routeros-upgrade: downloading\nrouteros-upgrade: ERROR: bad signature\n",
    )
    .unwrap();
    let v = get().await;
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["message"].as_str().unwrap().contains("signature"));
    assert_eq!(v["log"].as_array().unwrap().len(), 2);

    // An empty upload is refused and leaves nothing behind.
    let upload = |body: Vec<u8>| {
        Req::post("/api/v1/system/upgrade/bundle")
            .cookie(&admin)
            .finish(Body::from(body))
    };
    let a = h.send(upload(Vec::new())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(!request.exists());
    // A bundle larger than the 1 MiB limit of other bodies is streamed to disk whole.
    let bundle: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let a = h.send(upload(bundle.clone())).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert_eq!(a.body["source"], "uploaded bundle");
    assert_eq!(
        std::fs::read(h.data_dir().join("upgrade/bundle.tar")).unwrap(),
        bundle
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    assert_eq!(written["bundle"], "bundle.tar");
    let leftovers: Vec<_> = std::fs::read_dir(h.data_dir().join("upgrade"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "bundle.tar" && n != "request.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
