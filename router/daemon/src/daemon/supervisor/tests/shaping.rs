//! Shaping owned by the daemon: synced with the config and the links, refused by the
//! config check on a kernel without CAKE, and never in the way of routing.

use super::*;

/// TWO_WANS with wan1's speeds declared and shaping on.
fn shaped_wan1() -> String {
    TWO_WANS.replacen(
        "gateway = \"10.0.1.1\"",
        "gateway = \"10.0.1.1\"\ndownload_mbit = 100\nupload_mbit = 20\nshaping = { enabled = true }",
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

fn shaped(lab: &Lab) -> Vec<(String, u64, u64)> {
    lab.world.with(|w| {
        w.shaped
            .iter()
            .map(|l| (l.wan.clone(), l.upload_kbit, l.download_kbit))
            .collect()
    })
}

#[test]
fn shaping_follows_the_config_and_shows_in_the_status() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(shaped(&lab).is_empty());
    // The start looked once (for leftovers); shaping nothing, link changes cost nothing.
    assert_eq!(lab.world.with(|w| w.shaping_syncs), 1);
    lab.set_carrier("wan2", false);
    lab.rt.block_on(lab.sup.on_link_poll());
    assert_eq!(lab.world.with(|w| w.shaping_syncs), 1);
    lab.set_carrier("wan2", true);
    let status = lab.request(Request::Status);
    assert_eq!(status["wans"][0]["shaping"], Value::Null, "off: {status}");

    assert!(ok(&apply(&mut lab, &shaped_wan1())));
    assert_eq!(shaped(&lab), [("wan1".to_string(), 19_000, 95_000)]);
    let status = lab.request(Request::Status);
    let s = &status["wans"][0]["shaping"];
    assert_eq!(s["active"], true, "{status}");
    assert_eq!(
        (s["upload_kbit"].as_u64(), s["download_kbit"].as_u64()),
        (Some(19_000), Some(95_000))
    );
    assert_eq!(status["wans"][1]["shaping"], Value::Null);

    // Not confirmed: the rollback turns it off again.
    lab.advance_to(T0 + 31_000);
    lab.second();
    assert!(shaped(&lab).is_empty(), "rolled back");
}

#[test]
fn a_restart_syncs_at_once_and_the_poll_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let world = Fake::default();
    world.with(|w| {
        for (n, wan) in (1u8..).zip(["wan1", "wan2"]) {
            w.links.insert(wan.to_string(), link(n, true));
        }
    });
    let mut lab = Lab::start_with(dir, &shaped_wan1(), world);
    assert_eq!(
        shaped(&lab).len(),
        1,
        "the start syncs (adopting what is there)"
    );
    let syncs = lab.world.with(|w| w.shaping_syncs);
    lab.rt.block_on(lab.sup.on_link_poll());
    assert_eq!(lab.world.with(|w| w.shaping_syncs), syncs + 1);
}

#[test]
fn without_cake_shaping_is_refused_and_nothing_changes() {
    let mut lab = Lab::start(TWO_WANS);
    lab.world.with(|w| w.no_cake = true);
    let (nft, file) = (lab.world.with(|w| w.nft.len()), lab.config_file());

    let reply = apply(&mut lab, &shaped_wan1());
    assert!(!ok(&reply), "{reply}");
    assert_eq!(
        reply["errors"][0]["path"], "wan_interfaces[0].shaping.enabled",
        "{reply}"
    );
    assert!(
        reply["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("this kernel has no sch_cake"),
        "{reply}"
    );
    assert_eq!(lab.config_file(), file, "saved config untouched");
    assert_eq!(lab.world.with(|w| w.nft.len()), nft, "nothing applied");
    assert!(lab.sup.confirm.pending().is_none());

    // A reload of a file asking for it is refused the same way.
    std::fs::write(lab.dir.path().join("routeros.toml"), shaped_wan1()).unwrap();
    let reply = lab.request(Request::Reload);
    assert!(!ok(&reply), "{reply}");
    assert_eq!(
        reply["errors"][0]["path"],
        "wan_interfaces[0].shaping.enabled"
    );
    assert!(!lab.sup.cfg.wan_interfaces[0].shaping.enabled);
}

#[test]
fn a_config_shaping_on_a_kernel_without_cake_still_routes() {
    // Accepted before (another kernel): the daemon starts, routes, and says why it does not shape.
    let dir = tempfile::tempdir().unwrap();
    let world = Fake::default();
    world.with(|w| {
        w.no_cake = true;
        for (n, wan) in (1u8..).zip(["wan1", "wan2"]) {
            w.links.insert(wan.to_string(), link(n, true));
        }
    });
    let mut lab = Lab::start_with(dir, &shaped_wan1(), world);
    assert_eq!(lab.sup.active_wans(), ["wan1", "wan2"]);
    assert!(shaped(&lab).is_empty());
    let status = lab.request(Request::Status);
    let s = &status["wans"][0]["shaping"];
    assert_eq!(s["active"], false, "{status}");
    assert_eq!(s["error"], "this kernel has no sch_cake");
    assert!(
        lab.messages()
            .iter()
            .any(|m| m
                == "wan1: shaping not applied, routing unaffected: this kernel has no sch_cake"),
        "{:?}",
        lab.messages()
    );
    // Announced once, not at every poll.
    lab.rt.block_on(lab.sup.on_link_poll());
    let n = lab
        .messages()
        .iter()
        .filter(|m| m.contains("shaping not applied"))
        .count();
    assert_eq!(n, 1);
}

#[test]
fn a_missing_device_is_shaped_when_it_appears() {
    let mut lab = Lab::start(TWO_WANS);
    lab.world
        .with(|w| w.links.get_mut("wan1").unwrap().present = false);
    lab.rt.block_on(lab.sup.on_link_event());
    assert!(ok(&apply(&mut lab, &shaped_wan1())));
    assert!(shaped(&lab).is_empty());
    let status = lab.request(Request::Status);
    assert_eq!(
        status["wans"][0]["shaping"]["error"],
        "its device wan1 does not exist"
    );

    lab.world
        .with(|w| w.links.get_mut("wan1").unwrap().present = true);
    lab.rt.block_on(lab.sup.on_link_event());
    assert_eq!(shaped(&lab).len(), 1);
    let status = lab.request(Request::Status);
    assert_eq!(status["wans"][0]["shaping"]["active"], true);
}
