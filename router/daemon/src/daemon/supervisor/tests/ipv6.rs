//! Each family on its own: a WAN's IPv6 side is probed, failed over and reset apart from
//! its IPv4.

use super::*;

/// Both WANs dual-stack: a global IPv6 address and a router advertisement's gateway.
fn dual_stack() -> Lab {
    let world = Fake::default();
    world.with(|w| {
        for (n, wan) in (1u8..).zip(["wan1", "wan2"]) {
            let mut l = link(n, true);
            l.address6 = Some(format!("2001:db8:ff0{n}::2/64").parse().unwrap());
            l.gateway6 = Some("fe80::1".parse().unwrap());
            w.links.insert(wan.to_string(), l);
        }
    });
    Lab::start_with(tempfile::tempdir().unwrap(), TWO_WANS, world)
}

fn active6(lab: &Lab) -> Vec<String> {
    lab.sup
        .applier
        .applied()
        .map(|p| p.active_wans6.clone())
        .unwrap_or_default()
}

#[test]
fn every_wan_with_ipv6_gets_an_ipv6_prober_unless_off_or_without_targets() {
    let lab = dual_stack();
    lab.world.with(|w| {
        assert_eq!(w.probers, [wan_names(&["wan1", "wan2"])]);
        assert_eq!(w.probers6, [wan_names(&["wan1", "wan2"])]);
    });
    assert_eq!(active6(&lab), wan_names(&["wan1", "wan2"]));

    let off = TWO_WANS.replacen("name = \"wan2\"\n", "name = \"wan2\"\nipv6 = \"off\"\n", 1)
        + "[health_check]\ntargets6 = [\"2001:db8::1\"]\n";
    let lab = Lab::start(&off);
    lab.world
        .with(|w| assert_eq!(w.probers6, [wan_names(&["wan1"])]));
    let none = TWO_WANS.to_string() + "[health_check]\ntargets6 = []\n";
    let lab = Lab::start(&none);
    lab.world
        .with(|w| assert_eq!(w.probers6, [Vec::<String>::new()]));
}

#[test]
fn ipv6_down_moves_only_ipv6_and_resets_only_ipv6_connections() {
    let mut lab = dual_stack();
    let m1 = lab.mark("wan1");
    lab.world.with(|w| {
        w.connections.insert(m1, 5);
        w.connections6.insert(m1, 3);
    });
    // retry_count (3) failed IPv6 rounds; IPv4 keeps answering.
    lab.rounds("wan1", Family::V4, 3, true);
    lab.rounds("wan1", Family::V6, 3, false);
    assert_eq!(active6(&lab), wan_names(&["wan2"]));
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1", "wan2"]));
    assert_eq!(lab.take_flushed(), [] as [u32; 0], "IPv4 untouched");
    assert_eq!(lab.world.with(|w| w.flushed6.clone()), [m1]);
    let msgs = lab.messages();
    for want in [
        "wan1 ipv6: up -> down (3 consecutive failed probe rounds (0/1 targets answered, 1 required))",
        "wan1 IPv6 left service: 3 IPv6 connections reset to reconnect via wan2",
    ] {
        assert!(msgs.iter().any(|m| m == want), "{want:?} in {msgs:#?}");
    }
    let status = lab.sup.status_report();
    let wan1 = status.wans.iter().find(|w| w.name == "wan1").unwrap();
    assert!(wan1.usable && wan1.active, "IPv4 side still in service");
    let v6 = wan1.ipv6.as_ref().unwrap();
    assert!(!v6.usable && !v6.active);
    assert_eq!(v6.state, Some(crate::health::HealthState::Down));
    assert_eq!(v6.loss_percent, Some(100.0));
    assert_eq!(status.router.active_wans6, wan_names(&["wan2"]));

    // recovery_count (3) good IPv6 rounds bring it back, resetting nothing.
    lab.rounds("wan1", Family::V6, 3, true);
    assert_eq!(active6(&lab), wan_names(&["wan1", "wan2"]));
    assert_eq!(lab.world.with(|w| w.flushed6.len()), 1);
}

/// An ISP that offers no IPv6: the line's IPv6 probes cannot be answered, and must not
/// raise an alarm or touch anything.
#[test]
fn a_line_without_ipv6_raises_no_ipv6_alarm() {
    let mut lab = Lab::start(TWO_WANS);
    lab.rounds("wan1", Family::V6, 10, false);
    let msgs = lab.messages();
    assert!(!msgs.iter().any(|m| m.contains("ipv6")), "{msgs:#?}");
    let status = lab.sup.status_report();
    let v6 = status.wans[0].ipv6.as_ref().unwrap();
    assert!(!v6.usable && v6.address.is_none());
    assert_eq!((v6.state, v6.latency_ms), (None, None), "no rounds counted");
}

#[test]
fn carrier_loss_takes_both_families_down() {
    let mut lab = dual_stack();
    lab.set_carrier("wan2", false);
    assert_eq!(lab.sup.active_wans(), wan_names(&["wan1"]));
    assert_eq!(active6(&lab), wan_names(&["wan1"]));
    assert_eq!(lab.take_flushed(), [lab.mark("wan2")]);
    assert_eq!(lab.world.with(|w| w.flushed6.clone()), [lab.mark("wan2")]);
}
