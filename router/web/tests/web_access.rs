//! WAN access types through the web: the wizard writes each line's mode (DHCP, static,
//! PPPoE, VLAN, MAC) into the config and sets the time zone; bad lines are refused at their
//! body path with nothing applied; the PPPoE password is write-only (no answer and no log
//! shows it; a change without it keeps it); the status shows each line and its session.

use axum::http::StatusCode;
use common::fake_daemon::secret_file;
use common::*;
use routeros_shared::config::{Config, WanMode};
use serde_json::{json, Value};

mod common;

const NEW_SECRET: &str = "Wizard-PPPoE-Secret-1";

fn wizard() -> Value {
    json!({
        "wans": [
            {"name": "wan1", "mode": "static", "address": "192.0.2.2/29", "gateway": "192.0.2.1",
             "dns": ["192.0.2.1"], "weight": 2, "vlan": 10, "mac": "02:00:5e:10:00:01"},
            {"name": "wan2", "mode": "pppoe", "vlan": 7,
             "pppoe": {"username": "joe@isp.example", "password": NEW_SECRET, "service_name": "fiber"}},
            {"name": "wan3", "mode": "dhcp"}
        ],
        "lan": {"interface": "lan0", "address": "192.168.1.1/24",
                "dhcp_start": "192.168.1.100", "dhcp_end": "192.168.1.199"},
        "timezone": "UTC"
    })
}

/// Every answer a user can read after a change, and the files the web keeps.
async fn everything_readable(h: &Harness, admin: &str) -> String {
    let mut all = String::new();
    for path in [
        "/api/v1/config",
        "/api/v1/config/history",
        "/api/v1/setup",
        "/api/v1/status",
        "/api/v1/audit",
        "/api/v1/session",
    ] {
        let a = h.send(Req::get(path).cookie(admin).empty()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        all.push_str(&a.text);
    }
    for file in ["audit.jsonl", "setup.json"] {
        all.push_str(&std::fs::read_to_string(h.data_dir().join(file)).unwrap_or_default());
    }
    all
}

#[tokio::test]
async fn the_wizard_writes_each_mode_into_the_config() {
    let h = Harness::new();
    let admin = h.setup().await;
    let a = h
        .send(
            Req::post("/api/v1/setup/apply")
                .cookie(&admin)
                .json(wizard()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.body["pending"]["id"], "19abc",
        "commit-confirm: {}",
        a.text
    );
    assert_eq!(a.body["confirm_seconds"], 60);
    assert_eq!(
        a.body["timezone"],
        json!({"name": "UTC", "set": true, "message": "time zone set to UTC"})
    );
    assert_eq!(
        h.daemon.requests("set_timezone"),
        vec![json!({"cmd": "set_timezone", "name": "UTC"})]
    );

    // The config the daemon got: each line's access, the new password passed on to it.
    let sent = h.daemon.requests("apply_config");
    assert_eq!(sent.len(), 1);
    let cfg = Config::from_toml(sent[0]["toml"].as_str().unwrap()).unwrap();
    let [w1, w2, w3] = &cfg.wan_interfaces[..] else {
        panic!("three WANs: {cfg:?}")
    };
    assert_eq!(w1.mode, Some(WanMode::Static));
    assert_eq!(w1.address, Some("192.0.2.2/29".parse().unwrap()));
    assert_eq!(w1.gateway, Some("192.0.2.1".parse().unwrap()));
    assert_eq!((w1.vlan, w1.weight), (Some(10), 2));
    assert_eq!(w1.mac.unwrap().to_string(), "02:00:5e:10:00:01");
    assert_eq!(w2.mode, Some(WanMode::Pppoe));
    assert_eq!(w2.device(), "ppp-wan2");
    let p = w2.pppoe.as_ref().unwrap();
    assert_eq!(p.username, "joe@isp.example");
    assert_eq!(p.password.as_deref(), Some(NEW_SECRET));
    assert_eq!(p.service_name.as_deref(), Some("fiber"));
    assert_eq!(w3.mode, Some(WanMode::Dhcp));
    assert_eq!(h.daemon.secret("wan2").as_deref(), Some(NEW_SECRET));

    // What anyone can read afterwards never holds the password.
    let all = everything_readable(&h, &admin).await;
    assert!(!all.contains(NEW_SECRET), "the password leaked: {all}");
    let a = h
        .send(Req::get("/api/v1/config").cookie(&admin).empty())
        .await;
    let pppoe = &a.body["config"]["wan_interfaces"][1]["pppoe"];
    assert_eq!(pppoe["password_set"], true, "{pppoe}");
    assert_eq!(pppoe["password_file"], secret_file("wan2"));
    assert!(pppoe.get("password").is_none(), "{pppoe}");
    // setup.json records the wizard and the time zone, nothing of the lines.
    let setup: Value =
        serde_json::from_slice(&std::fs::read(h.data_dir().join("setup.json")).unwrap()).unwrap();
    assert_eq!(setup["timezone"], "UTC");
    assert_eq!(setup["timezone_set"], true);
    assert!(setup.get("wizard").is_none(), "{setup}");

    // Run again without a password: the line keeps the one stored.
    let mut again = wizard();
    again["wans"][1]["pppoe"]
        .as_object_mut()
        .unwrap()
        .remove("password");
    let a = h
        .send(Req::post("/api/v1/setup/apply").cookie(&admin).json(again))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let sent = h.daemon.requests("apply_config");
    let cfg = Config::from_toml(sent[1]["toml"].as_str().unwrap()).unwrap();
    let p = cfg.wan_interfaces[1].pppoe.as_ref().unwrap();
    assert_eq!(p.password, None);
    assert_eq!(
        p.password_file.as_deref(),
        Some(std::path::Path::new(&secret_file("wan2")))
    );
}

#[tokio::test]
async fn bad_wizard_lines_are_refused_at_their_body_path_with_nothing_applied() {
    let h = Harness::new();
    let admin = h.setup().await;
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 9] = [
        (
            "static without gateway",
            |w| {
                w["wans"][0].as_object_mut().unwrap().remove("gateway");
            },
            "wans[0].gateway",
        ),
        (
            "gateway outside the prefix",
            |w| w["wans"][0]["gateway"] = json!("198.51.100.1"),
            "wans[0].gateway",
        ),
        (
            "PPPoE without username",
            |w| {
                w["wans"][1]["pppoe"]
                    .as_object_mut()
                    .unwrap()
                    .remove("username");
            },
            "wans[1].pppoe.username",
        ),
        (
            "PPPoE without account",
            |w| {
                w["wans"][1].as_object_mut().unwrap().remove("pppoe");
            },
            "wans[1].pppoe",
        ),
        (
            "VLAN 0",
            |w| w["wans"][0]["vlan"] = json!(0),
            "wans[0].vlan",
        ),
        (
            "VLAN 4095",
            |w| w["wans"][0]["vlan"] = json!(4095),
            "wans[0].vlan",
        ),
        (
            "VLAN \"x\"",
            |w| w["wans"][2]["vlan"] = json!("x"),
            "wans[2].vlan",
        ),
        (
            "multicast MAC",
            |w| w["wans"][0]["mac"] = json!("01:00:5e:00:00:01"),
            "wans[0].mac",
        ),
        (
            "unknown time zone",
            |w| w["timezone"] = json!("Mars/Olympus_Mons"),
            "timezone",
        ),
    ];
    for (what, edit, path) in cases {
        if path == "timezone" && !std::path::Path::new("/usr/share/zoneinfo").is_dir() {
            continue; // the daemon decides there (no zoneinfo for the web to look in)
        }
        let mut body = wizard();
        edit(&mut body);
        let a = h
            .send(Req::post("/api/v1/setup/apply").cookie(&admin).json(body))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.text);
        let paths: Vec<&str> = a.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&path), "{what}: {path} not in {paths:?}");
    }
    assert!(h.daemon.requests("apply_config").is_empty());
    assert!(h.daemon.requests("set_timezone").is_empty());
    let a = h.send(Req::get("/api/v1/setup").empty()).await;
    assert_eq!(a.body["wizard_done"], false);
}

#[tokio::test]
async fn without_timedated_the_rest_of_the_wizard_applies() {
    let h = Harness::new();
    h.daemon.without_timedated();
    let admin = h.setup().await;
    let a = h
        .send(
            Req::post("/api/v1/setup/apply")
                .cookie(&admin)
                .json(wizard()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["pending"]["id"], "19abc");
    assert_eq!(a.body["timezone"]["set"], false);
    let message = a.body["timezone"]["message"].as_str().unwrap();
    assert!(message.contains("timedated"), "{message}");
    assert_eq!(h.daemon.requests("apply_config").len(), 1);
    let setup: Value =
        serde_json::from_slice(&std::fs::read(h.data_dir().join("setup.json")).unwrap()).unwrap();
    assert_eq!(setup["timezone_set"], false);
}

#[tokio::test]
async fn the_config_api_never_shows_the_password_and_keeps_it_when_not_sent() {
    let h = Harness::new();
    let admin = h.setup().await;
    let get = || async {
        let a = h
            .send(Req::get("/api/v1/config").cookie(&admin).empty())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    };
    let put = |body: Value| {
        let admin = admin.clone();
        let h = &h;
        async move {
            let a = h
                .send(Req::put("/api/v1/config").cookie(&admin).json(body))
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        }
    };
    let last_applied = || {
        let sent = h.daemon.requests("apply_config");
        Config::from_toml(sent.last().unwrap()["toml"].as_str().unwrap()).unwrap()
    };
    let kept_file = |cfg: &Config| {
        let p = cfg.wan_interfaces[1].pppoe.clone().unwrap();
        (p.password, p.password_file.map(|f| f.display().to_string()))
    };

    // The JSON form as GET shows it, sent back changed elsewhere: the password stays.
    let view = get().await;
    let mut form = view["config"].clone();
    assert_eq!(form["wan_interfaces"][1]["pppoe"]["password_set"], true);
    form["wan_interfaces"][0]["weight"] = json!(4);
    put(json!({ "config": form.clone() })).await;
    assert_eq!(
        kept_file(&last_applied()),
        (None, Some(secret_file("wan2")))
    );

    // Without password_file either (as the UI's editor sends an untouched password field).
    let pppoe = form["wan_interfaces"][1]["pppoe"].as_object_mut().unwrap();
    pppoe.remove("password_file");
    pppoe.remove("password_set");
    put(json!({ "config": form.clone() })).await;
    assert_eq!(
        kept_file(&last_applied()),
        (None, Some(secret_file("wan2")))
    );

    // TOML: a [pppoe] table without password lines keeps it too, comments and all.
    let text = get().await["toml"].as_str().unwrap().to_string();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("password_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    put(json!({ "toml": format!("# edited by hand\n{without}") })).await;
    let sent = h.daemon.requests("apply_config");
    let last_text = sent.last().unwrap()["toml"].as_str().unwrap().to_string();
    assert!(last_text.starts_with("# edited by hand\n"), "{last_text}");
    assert_eq!(
        kept_file(&last_applied()),
        (None, Some(secret_file("wan2")))
    );

    // A new password goes to the daemon, which stores it; nothing shows it back.
    form["wan_interfaces"][1]["pppoe"]["password"] = json!(NEW_SECRET);
    put(json!({ "config": form })).await;
    assert_eq!(
        kept_file(&last_applied()),
        (Some(NEW_SECRET.to_string()), None)
    );
    assert_eq!(h.daemon.secret("wan2").as_deref(), Some(NEW_SECRET));
    let all = everything_readable(&h, &admin).await;
    assert!(!all.contains(NEW_SECRET), "the password leaked: {all}");
    assert!(!all.contains("old-pppoe-secret"));
}

#[tokio::test]
async fn an_inline_password_in_the_saved_file_is_not_shown() {
    let h = Harness::new();
    let admin = h.setup().await;
    // A file written by hand with the password inline (the daemon moves it on its next
    // apply; until then the web must not show it).
    let text = CONFIG_TOML.replace(
        "password_file = \"/opt/routeros/config/secrets/wan2.pppoe\"",
        "password = \"typed-by-hand\"",
    );
    h.daemon.set_config_text(&text);
    let a = h
        .send(Req::get("/api/v1/config").cookie(&admin).empty())
        .await;
    assert_eq!(
        a.body["config"]["wan_interfaces"][1]["pppoe"]["password_set"], true,
        "{}",
        a.text
    );
    // Sent back as shown, the inline password is kept (the daemon then moves it).
    let shown = a.body["toml"].as_str().unwrap().to_string();
    let a = h
        .send(
            Req::put("/api/v1/config")
                .cookie(&admin)
                .json(json!({ "toml": shown })),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let sent = h.daemon.requests("apply_config");
    let cfg = Config::from_toml(sent[0]["toml"].as_str().unwrap()).unwrap();
    assert_eq!(
        cfg.wan_interfaces[1]
            .pppoe
            .as_ref()
            .unwrap()
            .password
            .as_deref(),
        Some("typed-by-hand")
    );
    h.daemon.set_config_text(&text);
    let all = everything_readable(&h, &admin).await;
    assert!(!all.contains("typed-by-hand"), "{all}");
}

#[tokio::test]
async fn the_status_shows_each_line_and_its_session() {
    let h = Harness::new();
    let admin = h.setup().await;
    let a = h
        .send(Req::get("/api/v1/status").cookie(&admin).empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let wan2 = &a.body["wans"][1];
    assert_eq!(wan2["device"], "ppp-wan2");
    assert_eq!(wan2["line"]["mode"], "pppoe");
    assert_eq!(wan2["line"]["session"]["state"], "auth_failed");
    assert_eq!(
        wan2["line"]["session"]["last_error"],
        "authentication failed"
    );
    assert_eq!(a.body["wans"][0]["line"]["session"], Value::Null);
}
