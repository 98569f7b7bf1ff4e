use crate::config::{key_file_problems, Config, HaConfig};
use std::io::Write;

/// A static line (203.0.113.2/29), a DHCP line and the LAN 192.168.1.1/24, then `ha`.
fn text(wan1_extra: &str, wan2_extra: &str, ha: &str) -> String {
    format!(
        r#"
[[wan_interfaces]]
name = "wan1"
mode = "static"
address = "203.0.113.2/29"
gateway = "203.0.113.1"
{wan1_extra}

[[wan_interfaces]]
name = "wan2"
mode = "dhcp"
{wan2_extra}

[lan]
interface = "lan0"
address = "192.168.1.1/24"

[ha]
{ha}
"#
    )
}

const PAIR: &str = r#"enabled = true
priority = 150
peer = "10.99.0.2"
sync_interface = "sync0"
lan_virtual_address = "192.168.1.254/24"
auth_key_file = "/etc/routeros/ha.key"
"#;

use crate::config::refusals as errors;

#[test]
fn a_pair_with_a_virtual_address_on_the_static_line_is_valid() {
    let cfg = Config::from_toml(&text("virtual_address = \"203.0.113.6/29\"", "", PAIR)).unwrap();
    assert!(cfg.ha.enabled);
    assert_eq!(cfg.ha.priority, 150);
    assert_eq!(cfg.ha.advert_interval_ms, 1000);
    assert_eq!(cfg.ha.virtual_router_id, 51);
    assert_eq!(
        cfg.wan_interfaces[0].virtual_address.unwrap().to_string(),
        "203.0.113.6/29"
    );
    // Sub-second adverts are allowed.
    let fast = format!("{PAIR}advert_interval_ms = 200\n");
    assert_eq!(errors(&text("", "", &fast)), Vec::<String>::new());
}

#[test]
fn no_ha_section_is_a_single_box_and_is_not_written_back() {
    let cfg = Config::from_toml(&text("", "", "")).unwrap();
    assert_eq!(cfg.ha, HaConfig::default());
    let back = toml::to_string(&*cfg).unwrap();
    assert!(!back.contains("[ha]"), "{back}");
    assert!(!back.contains("virtual_address"), "{back}");
}

#[test]
fn enabled_needs_peer_link_address_and_key() {
    assert_eq!(
        errors(&text("", "", "enabled = true")),
        [
            "ha.peer: required with enabled = true",
            "ha.sync_interface: required with enabled = true",
            "ha.lan_virtual_address: required with enabled = true",
            "ha.auth_key_file: required with enabled = true",
        ]
    );
}

#[test]
fn peer_equal_to_one_of_our_addresses_is_refused() {
    let peer = |addr: &str| {
        errors(&text(
            "virtual_address = \"203.0.113.6/29\"",
            "",
            &PAIR.replace("10.99.0.2", addr),
        ))
    };
    assert_eq!(
        peer("192.168.1.1"),
        ["ha.peer: 192.168.1.1 is the router's LAN address (lan.address): give the other box's address"]
    );
    assert_eq!(
        peer("192.168.1.254"),
        ["ha.peer: 192.168.1.254 is the pair's own ha.lan_virtual_address: give the other box's address"]
    );
    assert_eq!(
        peer("203.0.113.2"),
        ["ha.peer: 203.0.113.2 is our own wan_interfaces[0].address: give the other box's address"]
    );
    assert_eq!(
        peer("203.0.113.6"),
        ["ha.peer: 203.0.113.6 is the pair's own wan_interfaces[0].virtual_address: give the other box's address"]
    );
    assert_eq!(
        peer("127.0.0.1"),
        ["ha.peer: 127.0.0.1 cannot be the other box's address"]
    );
}

#[test]
fn peer_over_the_lan_must_be_in_the_lan() {
    let over_lan = PAIR.replace("\"sync0\"", "\"lan0\"");
    assert_eq!(
        errors(&text("", "", &over_lan)),
        ["ha.peer: 10.99.0.2 is not in the LAN 192.168.1.0/24 that sync_interface `lan0` is on"]
    );
    let ok = over_lan.replace("10.99.0.2", "192.168.1.2");
    assert_eq!(errors(&text("", "", &ok)), Vec::<String>::new());
}

#[test]
fn virtual_addresses_outside_their_subnet_are_refused() {
    assert_eq!(
        errors(&text(
            "virtual_address = \"203.0.113.9/29\"",
            "",
            &PAIR.replace("192.168.1.254/24", "192.168.2.254/24")
        )),
        [
            "wan_interfaces[0].virtual_address: 203.0.113.9/29 is not in 203.0.113.0/29, the line's subnet (give an address of it with /29)",
            "ha.lan_virtual_address: 192.168.2.254/24 is not in 192.168.1.0/24, the router's LAN subnet (give an address of it with /24)",
        ]
    );
    // Same subnet, other prefix: keepalived would add a second, different route.
    let e = errors(&text(
        "",
        "",
        &PAIR.replace("192.168.1.254/24", "192.168.1.254/25"),
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("ha.lan_virtual_address: 192.168.1.254/25 is not in 192.168.1.0/24"));
    assert_eq!(
        errors(&text(
            "virtual_address = \"203.0.113.2/29\"",
            "",
            &PAIR.replace("192.168.1.254/24", "192.168.1.255/24")
        )),
        [
            "wan_interfaces[0].virtual_address: 203.0.113.2 is the line's own address; the virtual one is a third address both boxes can hold",
            "ha.lan_virtual_address: 192.168.1.255 is the network or broadcast address of 192.168.1.0/24",
        ]
    );
}

#[test]
fn virtual_address_only_on_static_lines_with_the_reason() {
    let e = errors(&text("", "virtual_address = \"198.51.100.7/24\"", PAIR));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "wan_interfaces[1].virtual_address: only on a line with mode = \"static\" (this one is dhcp): "
        ),
        "{e:?}"
    );
}

#[test]
fn bounds_and_names_are_checked() {
    let bad = r#"priority = 255
advert_interval_ms = 205
virtual_router_id = 0
sync_interface = "wan1"
auth_key_file = "ha.key"
"#;
    assert_eq!(
        errors(&text("", "", bad)),
        [
            "ha.priority: 255 is not in 1..=254 (0 and 255 have special meanings in VRRP)",
            "ha.virtual_router_id: 0 is not in 1..=255: the pair's 1 VRRP instances take the ids from it up, and ids end at 255",
            "ha.advert_interval_ms: 205 is not a multiple of 10 in 100..=40950 (VRRP counts in centiseconds)",
            "ha.sync_interface: `wan1` is wan_interfaces[0]: connection state would cross the ISP's network in the clear; use a dedicated link or the LAN",
            "ha.auth_key_file: `ha.key` is not an absolute path",
        ]
    );
    let e = errors(&text(
        "",
        "",
        "advert_interval_ms = 50\nsync_interface = \"a b\"",
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    let e = errors(&text(
        "virtual_address = \"203.0.113.6/29\"",
        "",
        &format!("{PAIR}virtual_router_id = 255"),
    ));
    assert_eq!(
        e,
        ["ha.virtual_router_id: 255 is not in 1..=254: the pair's 2 VRRP instances take the ids from it up, and ids end at 255"]
    );
    let e = errors(&text("", "", "priority = 300"));
    assert!(e[0].starts_with("ha.priority: "), "{e:?}");
}

#[test]
fn the_json_form_gives_the_same_paths() {
    let toml_text = text("", "", "enabled = true\npriority = 0");
    let value: toml::Value = toml::from_str(&toml_text).unwrap();
    let json = serde_json::to_value(value).unwrap();
    let from_json: Vec<String> = Config::from_json(json)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(from_json, errors(&toml_text));
}

#[test]
fn the_key_file_is_checked_when_the_config_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ha.key");
    let config = dir.path().join("routeros.toml");
    let pair = PAIR.replace("/etc/routeros/ha.key", &key.display().to_string());
    std::fs::write(&config, text("", "", &pair)).unwrap();
    // Valid text, but no key file on this machine: refused by `load`, not by the parser.
    assert!(Config::from_toml(&text("", "", &pair)).is_ok());
    let e = Config::load(&config).unwrap_err().0;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "ha.auth_key_file");
    assert!(e[0].reason.starts_with("cannot read `"), "{e:?}");

    let mut f = std::fs::File::create(&key).unwrap();
    writeln!(f, "s3cr3tK3y").unwrap();
    let e = Config::load(&config).unwrap_err().0;
    assert!(e[0].reason.contains("longer than 8 characters"), "{e:?}");
    assert!(
        !e[0].reason.contains("s3cr3tK3y"),
        "the key is never quoted: {e:?}"
    );

    std::fs::write(&key, "s3cr3tK\n").unwrap();
    let cfg = Config::load(&config).expect("a readable key: the pair's config loads");
    assert!(cfg.ha.enabled);
    assert_eq!(crate::config::read_key(&key).unwrap(), "s3cr3tK");
    // HA off: the file is not needed.
    let mut raw = Config::from_toml(&text("", "", &pair)).unwrap().to_raw();
    raw.ha.enabled = false;
    std::fs::remove_file(&key).unwrap();
    assert_eq!(key_file_problems(&raw), Vec::new());
    raw.ha.enabled = true;
    assert_eq!(key_file_problems(&raw).len(), 1);
}

#[test]
fn keys_keepalived_cannot_take_are_refused() {
    use crate::config::key_problem;
    assert_eq!(key_problem("abcd1234"), None);
    assert!(key_problem("").is_some());
    assert!(key_problem("a b").is_some());
    assert!(key_problem("a\"b").is_some());
    assert!(key_problem("clé").is_some());
}

/// What a pair's boxes compare: the same config edited for the other box (its priority, peer,
/// own addresses) is the same view; a policy added on one box only is not.
#[test]
fn the_shared_view_leaves_out_what_is_each_boxs_own() {
    let a = text("virtual_address = \"203.0.113.6/29\"", "", PAIR);
    let b = a
        .replace("priority = 150", "priority = 100")
        .replace("peer = \"10.99.0.2\"", "peer = \"10.99.0.1\"")
        .replace("192.168.1.1/24", "192.168.1.2/24")
        .replace("203.0.113.2/29", "203.0.113.3/29");
    let view = |t: &str| crate::config::pair_shared_view(&Config::from_toml(t).unwrap().to_raw());
    assert_ne!(a, b, "the test edits something");
    assert_eq!(view(&a), view(&b));
    let c = format!("{a}\n[[policies]]\nname = \"nas\"\nsrc = \"192.168.1.9\"\nvia = [\"wan1\"]\n");
    assert_ne!(view(&a), view(&c));
}
