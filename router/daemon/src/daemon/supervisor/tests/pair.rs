//! The HA pair: its files are rendered from the config and handed to the line driver at
//! start and after a change; HA off stops it; a key that cannot be read runs nothing.
//! These tests switch the supervisor's config directly (no key file to load it from).

use super::*;
use routeros_shared::control::HaRole;
use routeros_shared::events::EventKind;

/// TWO_WANS as a pair over a dedicated sync link.
fn ha(key_file: &std::path::Path, priority: u8) -> Config {
    let text = format!(
        "{TWO_WANS}\n[ha]\nenabled = true\npriority = {priority}\npeer = \"10.99.0.2\"\nsync_interface = \"sync0\"\nlan_virtual_address = \"192.168.1.254/24\"\nauth_key_file = \"{}\"\n",
        key_file.display()
    );
    Config::from_toml(&text).unwrap()
}

fn calls(lab: &Lab) -> Vec<Option<(String, String)>> {
    lab.world.with(|w| w.pair.clone())
}

fn sync_link(lab: &Lab) {
    lab.world.with(|w| {
        w.links.insert(
            "sync0".into(),
            LinkInfo {
                present: true,
                carrier: true,
                address: Some("10.99.0.1/30".parse().unwrap()),
                ..LinkInfo::default()
            },
        );
    });
}

/// A lab whose config is a pair (priority 150, key "s3cret") with its sync link up, the pair
/// run once; and the key file.
fn pair_running() -> (Lab, std::path::PathBuf) {
    let mut lab = Lab::start(TWO_WANS);
    sync_link(&lab);
    let key = lab.dir.path().join("ha.key");
    std::fs::write(&key, "s3cret\n").unwrap();
    lab.sup.cfg = ha(&key, 150);
    lab.rt.block_on(lab.sup.run_pair());
    (lab, key)
}

#[test]
fn ha_off_runs_no_pair() {
    let lab = Lab::start(TWO_WANS);
    assert_eq!(calls(&lab), [None]);
}

#[test]
fn the_pair_runs_on_files_rendered_from_the_config_and_stops_when_off() {
    let (mut lab, _) = pair_running();
    let (k, c) = calls(&lab).last().cloned().flatten().expect("files");
    assert!(k.contains("priority 150"), "{k}");
    assert!(k.contains("auth_pass s3cret"), "{k}");
    let sock = lab.dir.path().join("control.sock");
    assert!(
        k.contains(&format!(
            "routeros-kill-switch --socket {} --ha-notify\"",
            sock.display()
        )),
        "{k}"
    );
    assert!(
        c.contains("IPv4_address 10.99.0.1\n"),
        "our sync address: {c}"
    );
    assert!(c.contains("IPv4_Destination_Address 10.99.0.2"), "{c}");

    lab.sup.cfg = Config::from_toml(TWO_WANS).unwrap();
    lab.rt.block_on(lab.sup.run_pair());
    assert_eq!(calls(&lab).last(), Some(&None));
}

#[test]
fn an_unreadable_key_or_a_sync_link_without_address_runs_nothing_and_says_why() {
    let mut lab = Lab::start(TWO_WANS);
    let key = lab.dir.path().join("missing.key");
    lab.sup.cfg = ha(&key, 100);
    lab.rt.block_on(lab.sup.run_pair());
    assert_eq!(calls(&lab), [None], "nothing handed over");
    let said = |lab: &Lab| {
        lab.sup
            .events
            .query(0, None, Some(EventKind::Ha))
            .into_iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        said(&lab).iter().any(|m| m.contains("ha.auth_key_file")),
        "{:?}",
        said(&lab)
    );
    std::fs::write(&key, "s3cret\n").unwrap();
    lab.rt.block_on(lab.sup.run_pair());
    assert!(
        said(&lab)
            .iter()
            .any(|m| m.contains("ha.sync_interface: `sync0` has no IPv4 address")),
        "{:?}",
        said(&lab)
    );
    sync_link(&lab);
    lab.rt.block_on(lab.sup.run_pair());
    assert!(calls(&lab).last().cloned().flatten().is_some());
}

#[test]
fn keepalived_reports_drive_the_role_conntrackd_and_the_status() {
    let (mut lab, _) = pair_running();
    let notify = |lab: &mut Lab, role| {
        lab.request(Request::HaNotify {
            name: "routeros".into(),
            role,
            priority: 150,
        })
    };
    let answer = notify(&mut lab, HaRole::Master);
    assert!(ok(&answer), "{answer}");
    let conf = "/fake/conntrackd.conf";
    let cmds = |lab: &Lab| {
        lab.world.with(|w| {
            w.pair_commands
                .iter()
                .map(|c| {
                    assert_eq!(c[..2], ["-C".to_string(), conf.to_string()]);
                    c[2].clone()
                })
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(cmds(&lab), ["-c", "-f", "-R", "-B"]);
    // The master's plan translates the LAN's traffic, the backup's does not.
    let nft = |lab: &Lab| lab.world.with(|w| w.nft.last().cloned().unwrap());
    assert!(nft(&lab).contains("oifname \"wan1\" masquerade"));
    let ha = lab.sup.status_report().router.ha.unwrap();
    assert_eq!(ha.role, Some(HaRole::Master));
    assert_eq!(ha.previous, None);
    assert_eq!(ha.peer, Some(Ipv4Addr::new(10, 99, 0, 2)));
    assert_eq!(ha.since_ms, Some(T0));

    // The same role again: nothing more.
    assert!(ok(&notify(&mut lab, HaRole::Master)));
    assert_eq!(cmds(&lab).len(), 4);

    assert!(ok(&notify(&mut lab, HaRole::Backup)));
    assert_eq!(cmds(&lab)[4..], ["-t", "-n"]);
    assert!(
        !nft(&lab).contains("meta nfproto ipv4 oifname"),
        "{}",
        nft(&lab)
    );
    let ha = lab.sup.status_report().router.ha.unwrap();
    assert_eq!(
        (ha.role, ha.previous),
        (Some(HaRole::Backup), Some(HaRole::Master))
    );
    let roles: Vec<_> = lab
        .sup
        .events
        .query(0, None, Some(EventKind::Ha))
        .into_iter()
        .map(|e| e.message.clone())
        .collect();
    assert!(
        roles
            .iter()
            .any(|m| m.starts_with("HA: this box is now backup (was master")),
        "{roles:?}"
    );
}

#[test]
fn a_notify_without_ha_is_refused() {
    let mut lab = Lab::start(TWO_WANS);
    let answer = lab.request(Request::HaNotify {
        name: "routeros".into(),
        role: HaRole::Master,
        priority: 150,
    });
    assert!(!ok(&answer), "{answer}");
    assert!(lab.sup.status_report().router.ha.is_none());
}

/// The config beacon: runs from our sync address to the peer's with our digest; the peer's
/// digest makes the status say same or differs (and an event when they differ), and a peer
/// not heard for a while is not heard.
#[test]
fn the_peers_beacon_says_whether_the_two_configs_agree() {
    let (mut lab, key) = pair_running();
    let target = lab.world.with(|w| w.beacon.clone()).expect("a beacon");
    assert_eq!(target.bind.to_string(), "10.99.0.1:3781");
    assert_eq!(target.peer.to_string(), "10.99.0.2:3781");
    // The other box: its own priority, the same config otherwise.
    let other = crate::ha::beacon::digest(
        "s3cret",
        &routeros_shared::config::pair_shared_view(&ha(&key, 100).to_raw()),
    );
    assert_eq!(other, target.digest, "priority is each box's own");
    let peer_config = |lab: &mut Lab| {
        let status = lab.request(Request::Status);
        status["ha"]["peer_config"].as_str().unwrap().to_string()
    };
    assert_eq!(peer_config(&mut lab), "not_heard");
    lab.advance_to(10_000);
    lab.sup.on_peer_beacon(other);
    assert_eq!(peer_config(&mut lab), "same");
    lab.sup.on_peer_beacon("0".repeat(64));
    assert_eq!(peer_config(&mut lab), "differs");
    let events = lab.sup.events.query(0, None, Some(EventKind::Ha));
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("edit both boxes alike")),
        "{events:?}"
    );
    lab.advance_to(30_000);
    lab.rt.block_on(lab.sup.on_second());
    assert_eq!(peer_config(&mut lab), "not_heard");
    // HA off: no beacon.
    lab.sup.cfg = Config::from_toml(TWO_WANS).unwrap();
    lab.rt.block_on(lab.sup.run_pair());
    assert_eq!(lab.world.with(|w| w.beacon.clone()), None);
}
