//! Start, and which connections a change of the WANs in service resets.

use super::*;

#[test]
fn start_applies_then_probes_and_resets_nothing() {
    let lab = Lab::start(TWO_WANS);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    lab.world.with(|w| {
        assert_eq!(w.nft.len(), 1, "one table load");
        assert!(!w.routes.is_empty() && !w.rules.is_empty());
        assert_eq!(
            w.probers,
            [wan_names(&["wan1", "wan2"])],
            "probers after the apply"
        );
        assert_eq!(w.units, ["lan-dnsmasq.service"], "dnsmasq.conf was written");
    });
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert!(lab.dir.path().join("state/plan.txt").exists());
    assert!(lab.dir.path().join("state/wan-ids.json").exists());
}

#[test]
fn nothing_changed_flushes_nothing() {
    let mut lab = Lab::start(TWO_WANS);
    lab.rt.block_on(lab.sup.on_link_event());
    lab.rt.block_on(lab.sup.on_link_poll());
    lab.second();
    assert!(ok(&lab.request(Request::Reload)));
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    lab.world.with(|w| {
        assert_eq!(w.nft.len(), 1, "same script: not reloaded");
        assert_eq!(w.units.len(), 1, "same dnsmasq.conf: not restarted");
    });
}

#[test]
fn carrier_loss_resets_that_wan_only_and_the_last_wan_keeps_its_routes() {
    let mut lab = Lab::start(TWO_WANS);
    let (m1, m2) = (lab.mark("wan1"), lab.mark("wan2"));
    lab.world.with(|w| {
        w.connections.insert(m1, 7);
        w.connections.insert(m2, 9);
    });
    lab.set_carrier("wan1", false);
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]));
    let msgs = lab.messages();
    assert!(
        msgs.iter()
            .any(|m| m == "wan1 left service: 7 connections reset to reconnect via wan2"),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m == "new connections now use: wan2"));

    // The last one goes too: nowhere to move to, so nothing is reset; routes stay.
    lab.set_carrier("wan2", false);
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("every WAN is down: keeping the last routes")));

    // Back: recovery alone resets nothing (move_back_on_recovery is off).
    lab.recover("wan1");
    lab.recover("wan2");
    assert_eq!(lab.take_flushed(), [] as [u32; 0]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
}

#[test]
fn recovery_moves_connections_back_when_configured() {
    let mut lab = Lab::start(MOVE_BACK);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
    lab.set_carrier("wan1", false);
    assert_eq!(lab.take_flushed(), [lab.mark("wan1")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan2"]));
    lab.set_carrier("wan1", true);
    assert_eq!(
        lab.take_flushed(),
        [] as [u32; 0],
        "carrier alone: still recovering"
    );
    lab.recover("wan1");
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")], "moved back to wan1");
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("wan2 moved back after recovery")));
}

#[test]
fn probe_failures_take_a_wan_out_and_reset_it() {
    let mut lab = Lab::start(TWO_WANS);
    lab.lose_rounds("wan2", 2);
    assert_eq!(
        lab.take_flushed(),
        [] as [u32; 0],
        "not down before retry_count"
    );
    lab.lose_rounds("wan2", 1);
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")]);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
}

/// Started with wan2 up but not configured yet (no address).
fn wan2_without_address() -> Lab {
    let world = Fake::default();
    world.with(|w| {
        w.links.insert("wan1".into(), link(1, true));
        let mut unconfigured = link(2, true);
        unconfigured.address = None;
        w.links.insert("wan2".into(), unconfigured);
    });
    Lab::start_with(tempfile::tempdir().unwrap(), TWO_WANS, world)
}

/// wan2's address comes (or goes), and the kernel says so.
fn set_wan2_address(lab: &mut Lab, address: Option<&str>) {
    let address = address.map(|a| a.parse().unwrap());
    lab.world
        .with(|w| w.links.get_mut("wan2").unwrap().address = address);
    lab.rt.block_on(lab.sup.on_link_event());
}

/// At boot the daemon may start before the network manager has configured a line (seen in
/// the image with its networkd files kept across boots): the rounds before the lease are
/// not an outage, and the line is in service as soon as it has its address.
#[test]
fn a_line_configured_after_the_start_is_waited_for_not_taken_down() {
    let mut lab = wan2_without_address();
    lab.lose_rounds("wan2", 5);
    assert!(
        !lab.messages().iter().any(|m| m.starts_with("wan2:")),
        "{:?}",
        lab.messages()
    );
    set_wan2_address(&mut lab, Some("10.0.2.2/24"));
    // Routed now: its first round (lost or not) puts it in service, quietly.
    lab.lose_rounds("wan2", 1);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    assert!(!lab.messages().iter().any(|m| m.starts_with("wan2:")));

    // From then on its address counts like its carrier: losing it is an outage at once.
    set_wan2_address(&mut lab, None);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
    assert!(lab
        .messages()
        .iter()
        .any(|m| m == "wan2: up -> down (no ipv4 address)"));
    set_wan2_address(&mut lab, Some("10.0.2.2/24"));
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("wan2: down -> recovering (ipv4 address back;")));
}

/// Once the line has its address and the plan routes its table, its rounds count.
#[test]
fn a_waited_for_line_is_probed_once_it_is_routed() {
    let mut lab = wan2_without_address();
    lab.lose_rounds("wan2", 3);
    assert_eq!(
        lab.sup.active_wans(),
        wan_names(&["wan1"]),
        "no address: not routed"
    );
    set_wan2_address(&mut lab, Some("10.0.2.2/24"));
    lab.lose_rounds("wan2", 3);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
    assert!(lab
        .messages()
        .iter()
        .any(|m| m.starts_with("wan2: up -> down (3 consecutive failed probe rounds")));
}
