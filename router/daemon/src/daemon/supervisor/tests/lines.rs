//! Lines the config gives a `mode`: their networkd files follow every config change, also
//! a change that is rolled back, and the status says how each line is brought up.

use super::*;

/// TWO_WANS with wan2 as a tagged DHCP line.
fn tagged_wan2() -> String {
    TWO_WANS.replacen(
        "gateway = \"10.0.2.1\"",
        "gateway = \"10.0.2.1\"\nmode = \"dhcp\"\nvlan = 7",
        1,
    )
}

fn files(lab: &Lab) -> Vec<String> {
    lab.world
        .with(|w| w.network_files.keys().cloned().collect())
}

fn apply(lab: &mut Lab, toml: &str) -> Value {
    lab.request(Request::ApplyConfig {
        toml: toml.into(),
        confirm_seconds: 30,
        by: "admin".into(),
    })
}

#[test]
fn files_follow_the_config_and_its_rollback() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(files(&lab).is_empty(), "no mode, no files");

    assert!(ok(&apply(&mut lab, &tagged_wan2())));
    assert_eq!(
        files(&lab),
        [
            "05-routeros-wan2.7.netdev",
            "05-routeros-wan2.7.network",
            "05-routeros-wan2.network"
        ]
    );
    let status = lab.request(Request::Status);
    let wan2 = &status["wans"][1];
    assert_eq!(wan2["device"], "wan2.7");
    assert_eq!(wan2["line"]["mode"], "dhcp");
    assert_eq!(wan2["line"]["vlan"], 7);
    assert_eq!(status["wans"][0]["line"]["mode"], Value::Null);

    // Not confirmed: the rollback takes the files away again.
    lab.advance_to(T0 + 31_000);
    lab.second();
    assert!(files(&lab).is_empty(), "rolled back: {:?}", files(&lab));
}

#[test]
fn a_refused_apply_puts_the_old_files_back() {
    let mut lab = Lab::start(&tagged_wan2());
    let before = files(&lab);
    assert_eq!(before.len(), 3);
    lab.world.with(|w| w.fail_routes = true);
    let static_wan2 = TWO_WANS.replacen(
        "gateway = \"10.0.2.1\"",
        "gateway = \"10.0.2.1\"\nmode = \"static\"\naddress = \"10.0.2.2/24\"",
        1,
    );
    let reply = apply(&mut lab, &static_wan2);
    assert!(!ok(&reply), "{reply}");
    assert_eq!(files(&lab), before);
}

/// networkd moves a static line's address on its own time: the routes through its gateway
/// are refused (ENETUNREACH) until it has; the change waits for that instead of failing.
#[test]
fn a_line_moving_its_address_is_waited_for() {
    let static_wan2 = |addr: &str| {
        TWO_WANS.replacen(
            "gateway = \"10.0.2.1\"",
            &format!("gateway = \"10.0.2.1\"\nmode = \"static\"\naddress = \"{addr}\""),
            1,
        )
    };
    let mut lab = Lab::start(&static_wan2("10.0.2.2/24"));
    lab.world.with(|w| w.unreachable_syncs = 3);
    let reply = apply(&mut lab, &static_wan2("10.0.2.3/24"));
    assert!(ok(&reply), "{reply}");
    let has = |lab: &Lab, text: &str| {
        lab.world
            .with(|w| w.network_files.values().any(|f| f.contains(text)))
    };
    assert!(has(&lab, "Address=10.0.2.3/24"));
    assert_eq!(
        lab.world.with(|w| w.unreachable_syncs),
        0,
        "tried until it took"
    );
    let id = lab.sup.confirm.pending().unwrap().id.clone();
    assert!(ok(&lab.request(Request::ConfirmConfig { id })));

    // Refused for longer than the lines take to settle: a failed apply, the old config back.
    lab.world.with(|w| w.unreachable_syncs = 1000);
    let reply = apply(&mut lab, &static_wan2("10.0.2.4/24"));
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("apply failed") && e.contains("unreachable")),
        "{reply}"
    );
    assert!(
        has(&lab, "Address=10.0.2.3/24"),
        "the old line files are back"
    );
}

/// TWO_WANS with wan2 as a PPPoE line whose account ends in `account`.
fn pppoe_wan2(account: &str) -> String {
    TWO_WANS.replacen(
        "gateway = \"10.0.2.1\"",
        &format!("mode = \"pppoe\"\n[wan_interfaces.pppoe]\nusername = \"u\"\n{account}"),
        1,
    )
}

#[test]
fn pppoe_passwords_are_stored_apart_and_never_read_back() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = apply(&mut lab, &pppoe_wan2("password = \"s3cret\""));
    let id = reply["pending"]["id"].as_str().unwrap().to_string();
    assert!(ok(&lab.request(Request::ConfirmConfig { id })));
    let saved = lab.config_file();
    assert!(
        !saved.contains("s3cret"),
        "saved config holds the password:\n{saved}"
    );
    let got = lab.request(Request::GetConfig);
    assert!(!got.to_string().contains("s3cret"), "{got}");
    let history = lab.request(Request::ConfigHistory);
    assert!(!history.to_string().contains("s3cret"), "{history}");
    let p = lab.sup.cfg.wan_interfaces[1].pppoe.clone().unwrap();
    let file = p.password_file.clone().unwrap();
    assert!(
        file.starts_with(lab.dir.path().join("secrets")),
        "{}",
        file.display()
    );
    assert_eq!(
        crate::daemon::pppoe_secrets::read_password(&p).unwrap(),
        "s3cret"
    );

    // pppd gets the line with the password read back from its file.
    let asked = lab.world.with(|w| w.pppoe.clone());
    assert_eq!(
        asked.get("wan2"),
        Some(&(
            "wan2".into(),
            "ppp-wan2".into(),
            "u".into(),
            "s3cret".into()
        ))
    );
    // Its session state is in the status.
    lab.world.with(|w| {
        w.sessions = vec![LineSnapshot {
            wan: "wan2".into(),
            ifname: "ppp-wan2".into(),
            state: crate::lines::pppd::SessionState::AuthFailed {
                last_error: "authentication failed".into(),
            },
            last_error: Some("authentication failed".into()),
            since_ms: T0,
            restarts: 2,
            retry_at_ms: None,
        }]
    });
    let status = lab.request(Request::Status);
    let session = &status["wans"][1]["line"]["session"];
    assert_eq!(session["state"], "auth_failed", "{status}");
    assert_eq!(session["last_error"], "authentication failed");
    assert_eq!(status["wans"][1]["device"], "ppp-wan2");

    // Over the socket, password_file may only name the router's own secret files.
    let reply = apply(&mut lab, &pppoe_wan2("password_file = \"/etc/shadow\""));
    assert!(!ok(&reply), "{reply}");
    assert_eq!(
        reply["errors"][0]["path"], "wan_interfaces[1].pppoe.password_file",
        "{reply}"
    );
}

fn session(lab: &Lab, state: crate::lines::pppd::SessionState) {
    lab.world.with(|w| {
        w.sessions = vec![LineSnapshot {
            wan: "wan2".into(),
            ifname: "ppp-wan2".into(),
            state,
            last_error: None,
            since_ms: T0,
            restarts: 0,
            retry_at_ms: None,
        }]
    });
}

fn change(
    from: crate::lines::pppd::SessionState,
    to: crate::lines::pppd::SessionState,
) -> SessionChange {
    SessionChange {
        wan: "wan2".into(),
        ifname: "ppp-wan2".into(),
        from,
        to,
        at_ms: T0,
        retry_in_ms: Some(1000),
    }
}

/// pppd says the session ended while its device is still there (it runs its ip-down scripts
/// first): the WAN leaves service at once, as on carrier loss, not when the device goes.
#[test]
fn an_ended_pppoe_session_takes_its_wan_down_before_its_device_goes() {
    use crate::lines::pppd::SessionState as S;
    let up = S::Up {
        local: Ipv4Addr::new(192, 0, 2, 18),
        peer: Some(Ipv4Addr::new(192, 0, 2, 17)),
    };
    let dir = tempfile::tempdir().unwrap();
    let toml = pppoe_wan2("password = \"x\"");
    let world = Fake::default();
    world.with(|w| {
        w.links.insert("wan1".into(), link(1, true));
        let mut ppp = link(2, true);
        ppp.point_to_point = true;
        w.links.insert("ppp-wan2".into(), ppp);
    });
    let mut lab = Lab::start_with(dir, &toml, world);
    session(&lab, up.clone());
    lab.rt.block_on(lab.sup.on_link_event());
    // Its first round on the routed session puts it in service (it was waited for).
    lab.rounds("wan2", Family::V4, 1, true);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));

    let down = S::Down {
        last_error: "session dropped: Modem hangup".into(),
    };
    session(&lab, down.clone());
    lab.rt
        .block_on(lab.sup.on_session_change(change(up.clone(), down.clone())));
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
    // Nor does any route name the device any more: it may vanish while a plan is applied.
    let routes = lab.world.with(|w| w.routes.clone());
    assert!(
        routes
            .iter()
            .flat_map(|r| &r.hops)
            .all(|h| h.dev != "ppp-wan2"),
        "{routes:?}"
    );
    let msgs = lab.messages();
    assert!(
        msgs.iter().any(|m| m.contains("session dropped")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with("wan2: up -> down")),
        "{msgs:?}"
    );

    // The device goes: nothing more to say about wan2.
    lab.world.with(|w| w.links.remove("ppp-wan2"));
    let before = lab.messages().len();
    lab.rt.block_on(lab.sup.on_link_event());
    assert!(
        !lab.messages()[before..]
            .iter()
            .any(|m| m.starts_with("wan2:")),
        "{:?}",
        &lab.messages()[before..]
    );

    // A new session: the device is back with its address, and the WAN recovers as after
    // a carrier loss (probes decide).
    lab.world.with(|w| {
        let mut ppp = link(2, true);
        ppp.point_to_point = true;
        w.links.insert("ppp-wan2".into(), ppp);
    });
    session(&lab, up.clone());
    lab.rt
        .block_on(lab.sup.on_session_change(change(S::Connecting, up)));
    assert!(
        lab.messages()
            .iter()
            .any(|m| m.starts_with("wan2: down -> recovering")),
        "{:?}",
        lab.messages()
    );
}
