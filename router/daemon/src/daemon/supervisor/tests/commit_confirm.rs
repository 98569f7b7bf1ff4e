//! Config changes with commit-confirm: confirm, timeout and rollback, reload while pending, refusals.

use super::*;

/// TWO_WANS with wan1 carrying twice the share.
fn heavier_wan1() -> String {
    TWO_WANS.replacen(
        "gateway = \"10.0.1.1\"",
        "gateway = \"10.0.1.1\"\nweight = 2",
        1,
    )
}

fn apply(lab: &mut Lab, toml: &str) -> Value {
    lab.request(Request::ApplyConfig {
        toml: toml.into(),
        confirm_seconds: 30,
        by: "admin".into(),
    })
}

fn pending_id(reply: &Value) -> String {
    reply["pending"]["id"].as_str().unwrap().to_string()
}

fn weight(lab: &Lab, wan: &str) -> u32 {
    lab.sup
        .cfg
        .wan_interfaces
        .iter()
        .find(|w| w.name == wan)
        .unwrap()
        .weight
}

#[test]
fn confirmed_change_stays() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = apply(&mut lab, &heavier_wan1());
    assert!(ok(&reply), "{reply}");
    assert_eq!(reply["pending"]["rollback_at_ms"], T0 + 30_000);
    let reply_id = pending_id(&reply);
    assert_eq!(weight(&lab, "wan1"), 2);
    assert_eq!(lab.config_file(), heavier_wan1());

    let wrong = lab.request(Request::ConfirmConfig { id: "nope".into() });
    assert_eq!(error(&wrong), "id: not the pending change");
    let id = lab.sup.confirm.pending().unwrap().id.clone();
    assert_eq!(reply_id, id);
    assert_eq!(pending_id(&lab.request(Request::GetConfig)), id);
    assert!(ok(&lab.request(Request::ConfirmConfig { id })));
    assert!(lab.sup.confirm.pending().is_none());

    lab.advance_to(T0 + 31_000);
    lab.second();
    assert_eq!(weight(&lab, "wan1"), 2, "no rollback after confirming");
    assert_eq!(lab.config_file(), heavier_wan1());
    let by: Vec<String> = lab
        .sup
        .config_store
        .versions()
        .into_iter()
        .map(|v| v.by)
        .collect();
    assert_eq!(by, ["file", "admin"]);
}

#[test]
fn unconfirmed_change_rolls_back_when_its_time_is_up() {
    let mut lab = Lab::start(TWO_WANS);
    let first_script = lab.world.with(|w| w.nft[0].clone());
    let first_routes = lab.world.with(|w| w.routes.clone());
    assert!(ok(&apply(&mut lab, &heavier_wan1())));
    assert_ne!(
        lab.world.with(|w| w.routes.clone()),
        first_routes,
        "applied at once"
    );

    lab.advance_to(T0 + 29_999);
    lab.second();
    assert!(lab.sup.confirm.pending().is_some(), "not yet");

    lab.advance_to(T0 + 30_000);
    lab.second();
    assert!(lab.sup.confirm.pending().is_none());
    assert_eq!(weight(&lab, "wan1"), 1);
    assert_eq!(lab.config_file(), TWO_WANS);
    lab.world.with(|w| {
        assert_eq!(w.routes, first_routes, "kernel back to the first plan");
        assert_eq!(w.nft.last(), Some(&first_script));
    });
    assert!(lab
        .messages()
        .contains(&"change by admin not confirmed: rolled back".to_string()));
    let by: Vec<String> = lab
        .sup
        .config_store
        .versions()
        .into_iter()
        .map(|v| v.by)
        .collect();
    assert_eq!(by, ["file", "admin", "rollback"]);
    assert_eq!(
        error(&lab.request(Request::ConfirmConfig { id: "x".into() })),
        "no change is waiting for confirmation"
    );
}

#[test]
fn one_change_at_a_time() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(ok(&apply(&mut lab, &heavier_wan1())));
    let reply = apply(&mut lab, TWO_WANS);
    assert!(error(&reply).starts_with("a change by admin is waiting for confirmation"));
    assert_eq!(weight(&lab, "wan1"), 2, "second change not applied");
    assert_eq!(lab.config_file(), heavier_wan1());
}

/// Today's behaviour, kept: a reload re-reads the file (which holds the pending text) and
/// leaves the change pending; the rollback still comes when its time is up.
#[test]
fn reload_while_a_change_is_pending_keeps_it_pending() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(ok(&apply(&mut lab, &heavier_wan1())));
    let id = lab.sup.confirm.pending().unwrap().id.clone();
    assert!(ok(&lab.request(Request::Reload)));
    assert_eq!(weight(&lab, "wan1"), 2, "the file holds the pending text");
    assert_eq!(lab.sup.confirm.pending().map(|p| p.id.clone()), Some(id));

    lab.advance_to(T0 + 30_000);
    lab.second();
    assert_eq!(weight(&lab, "wan1"), 1);
    assert_eq!(lab.config_file(), TWO_WANS);
}

#[test]
fn failed_apply_keeps_the_running_config_and_the_file() {
    let mut lab = Lab::start(TWO_WANS);
    lab.world.with(|w| w.fail_routes = true);
    let reply = apply(&mut lab, &heavier_wan1());
    assert!(
        error(&reply).starts_with("apply failed, previous config kept"),
        "{reply}"
    );
    assert_eq!(weight(&lab, "wan1"), 1);
    assert_eq!(lab.config_file(), TWO_WANS);
    assert!(lab.sup.confirm.pending().is_none());

    // The once-a-second retry re-applies once the kernel takes it again.
    lab.world.with(|w| w.fail_routes = false);
    lab.second();
    assert!(lab.sup.last_error.is_none());
}

#[test]
fn invalid_change_is_refused_before_anything_moves() {
    let mut lab = Lab::start(TWO_WANS);
    let scripts = lab.world.with(|w| w.nft.len());
    let reply = apply(&mut lab, "[[wan_interfaces]]\nname = \"\"\n");
    assert_eq!(error(&reply), "config invalid; nothing changed");
    assert_eq!(lab.config_file(), TWO_WANS);
    assert_eq!(lab.world.with(|w| w.nft.len()), scripts);
    assert!(lab.sup.confirm.pending().is_none());
    let reply = lab.request(Request::ApplyConfig {
        toml: heavier_wan1(),
        confirm_seconds: 5,
        by: "admin".into(),
    });
    assert!(error(&reply).starts_with("confirm_seconds: 5"), "{reply}");
}
