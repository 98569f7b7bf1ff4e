//! Operator overrides: disable/enable, maintenance per WAN and router-wide, expiry.

use super::*;

#[test]
fn disable_and_enable_persist_and_reset_only_on_the_way_out() {
    let mut lab = Lab::start(TWO_WANS);
    lab.world
        .with(|w| w.connections.insert(lab.mark("wan2"), 5));
    let reply = lab.request(Request::Disable { wan: "wan2".into() });
    assert!(ok(&reply), "{reply}");
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));

    // Survives a restart of the daemon.
    let again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    assert!(again.overrides.disabled.contains("wan2"));

    assert!(ok(&lab.request(Request::Enable { wan: "wan2".into() })));
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    let again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    assert!(again.overrides.disabled.is_empty());
}

#[test]
fn unknown_wan_or_window_changes_nothing() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = lab.request(Request::Disable { wan: "wan9".into() });
    assert!(!ok(&reply));
    assert_eq!(
        error(&reply),
        "`wan9` is not a WAN interface (WANs: wan1, wan2)"
    );
    for seconds in [0, crate::daemon::control::MAX_MAINTENANCE_SECONDS + 1] {
        let reply = lab.request(Request::Maintenance { seconds, wan: None });
        assert!(error(&reply).starts_with("seconds: "), "{reply}");
    }
    assert_eq!(lab.sup.overrides, Default::default());
    assert!(!lab.dir.path().join("state/overrides.json").exists());
}

#[test]
fn wan_maintenance_ends_at_its_time() {
    let mut lab = Lab::start(TWO_WANS);
    let reply = lab.request(Request::Maintenance {
        seconds: 60,
        wan: Some("wan1".into()),
    });
    assert!(ok(&reply), "{reply}");
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]));

    lab.advance_to(T0 + 59_999);
    lab.second();
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]), "not yet");

    lab.advance_to(T0 + 60_000);
    lab.second();
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    assert!(lab.sup.overrides.maintenance.is_empty());
    assert!(lab
        .messages()
        .contains(&"maintenance of wan1 ended: back in service".to_string()));
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    let again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    assert!(again.overrides.maintenance.is_empty(), "saved");
}

#[test]
fn router_wide_maintenance_holds_failover_until_it_ends() {
    let mut lab = Lab::start(TWO_WANS);
    assert!(ok(&lab.request(Request::Maintenance {
        seconds: 120,
        wan: None
    })));
    lab.lose_rounds("wan1", 3);
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("wan1: up -> down")));
    assert_eq!(
        lab.sup.active_wans(),
        wan_names(&["wan1", "wan2"]),
        "logged, not acted on"
    );
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);

    lab.advance_to(T0 + 120_000);
    lab.second();
    assert_eq!(lab.sup.overrides.paused_until, None);
    assert!(lab
        .messages()
        .contains(&"maintenance ended: failover decisions resume".to_string()));
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]), "caught up");
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
}
