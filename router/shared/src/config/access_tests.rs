//! Access settings: the examples the README shows are valid, every bad value is refused
//! at its TOML path, and the devices follow from port, VLAN and mode.

use super::super::Config;

const LAN: &str = "[lan]\ninterface = \"lan\"\naddress = \"192.168.1.1/24\"\n";

fn config(wans: &str) -> Result<Config, Vec<String>> {
    Config::from_toml(&format!("{wans}\n{LAN}"))
        .map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
}

fn refused(wans: &str) -> Vec<String> {
    config(wans).expect_err("should be refused")
}

const EVERY_MODE: &str = r#"
[[wan_interfaces]]
name = "wan1"
mode = "static"
address = "203.0.113.5/29"
gateway = "203.0.113.1"

[[wan_interfaces]]
name = "wan2"
mode = "dhcp"
vlan = 7
mac = "02:00:5e:10:00:01"

[[wan_interfaces]]
name = "wan3"
mode = "pppoe"
[wan_interfaces.pppoe]
username = "user@isp.example"
password = "secret"

[[wan_interfaces]]
name = "wan4"
mode = "pppoe"
vlan = 35
[wan_interfaces.pppoe]
username = "u"
password_file = "/opt/routeros/config/secrets/wan4.pppoe"
service_name = "fiber"
mtu = 1500

[[wan_interfaces]]
name = "wan5"
"#;

#[test]
fn every_mode_parses_and_names_its_devices() {
    let cfg = config(EVERY_MODE).unwrap();
    let devs: Vec<(String, String, bool)> = cfg
        .wan_interfaces
        .iter()
        .map(|w| (w.link_device(), w.device(), w.is_managed()))
        .collect();
    let want = [
        ("wan1", "wan1", true),
        ("wan2.7", "wan2.7", true),
        ("wan3", "ppp-wan3", true),
        ("wan4.35", "ppp-wan4", true),
        ("wan5", "wan5", false),
    ];
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(l, d, m)| (l.to_string(), d.to_string(), *m))
        .collect();
    assert_eq!(devs, want);
    assert_eq!(cfg.wan_interfaces[2].pppoe.as_ref().unwrap().mtu, 1492);
    let dbg = format!("{:?}", cfg.wan_interfaces[2]);
    assert!(!dbg.contains("secret"), "Debug shows the password: {dbg}");
}

#[test]
fn a_written_config_reads_back_the_same() {
    let cfg = config(EVERY_MODE).unwrap();
    let text = toml::to_string(&cfg.to_raw()).unwrap();
    let again = Config::from_toml(&text).unwrap();
    assert_eq!(again.to_raw(), cfg.to_raw(), "{text}");
}

#[test]
fn bad_vlan_ids_are_refused_at_their_path() {
    for (vlan, reason) in [
        ("0", "0 is not a VLAN id in 1..=4094"),
        ("4095", "4095 is not a VLAN id in 1..=4094"),
    ] {
        let errs = refused(&format!(
            "[[wan_interfaces]]\nname = \"wan1\"\nmode = \"dhcp\"\nvlan = {vlan}\n"
        ));
        assert_eq!(errs, [format!("wan_interfaces[0].vlan: {reason}")]);
    }
    let errs = refused("[[wan_interfaces]]\nname = \"wan1\"\nmode = \"dhcp\"\nvlan = \"x\"\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("wan_interfaces[0].vlan: invalid type: string \"x\""),
        "{errs:?}"
    );
    let errs = refused("[[wan_interfaces]]\nname = \"wan1\"\nvlan = 7\n");
    assert!(
        errs[0].starts_with("wan_interfaces[0].vlan: needs `mode`"),
        "{errs:?}"
    );
}

#[test]
fn static_lines_need_an_address_and_a_gateway_inside_it() {
    let wan =
        |rest: &str| format!("[[wan_interfaces]]\nname = \"wan1\"\nmode = \"static\"\n{rest}");
    assert_eq!(
        refused(&wan("address = \"203.0.113.5/29\"\n")),
        ["wan_interfaces[0].gateway: required with mode = \"static\""]
    );
    assert_eq!(
        refused(&wan("gateway = \"203.0.113.1\"\n")),
        ["wan_interfaces[0].address: required with mode = \"static\""]
    );
    assert_eq!(
        refused(&wan(
            "address = \"203.0.113.5/29\"\ngateway = \"198.51.100.1\"\n"
        )),
        ["wan_interfaces[0].gateway: 198.51.100.1 is not in 203.0.113.0/29"]
    );
    assert_eq!(
        refused(&wan("address = \"203.0.113.0/29\"\ngateway = \"203.0.113.1\"\n")),
        ["wan_interfaces[0].address: 203.0.113.0 is the network or broadcast address of 203.0.113.0/29"]
    );
    assert_eq!(
        refused("[[wan_interfaces]]\nname = \"wan1\"\naddress = \"203.0.113.5/29\"\n"),
        ["wan_interfaces[0].address: only with mode = \"static\""]
    );
}

#[test]
fn pppoe_needs_one_account() {
    let wan = |rest: &str| {
        format!(
            "[[wan_interfaces]]\nname = \"wan1\"\nmode = \"pppoe\"\n[wan_interfaces.pppoe]\n{rest}"
        )
    };
    let errs = refused(&wan("password = \"p\"\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("wan_interfaces[0].pppoe.username: required but missing"),
        "{errs:?}"
    );
    assert_eq!(
        refused(&wan(
            "username = \"u\"\npassword = \"p\"\npassword_file = \"/etc/p\"\n"
        )),
        ["wan_interfaces[0].pppoe.password_file: set either password or password_file, not both"]
    );
    assert_eq!(
        refused(&wan("username = \"u\"\n")),
        ["wan_interfaces[0].pppoe.password: required (or password_file, a file holding it)"]
    );
    assert_eq!(
        refused(&wan("username = \"\"\npassword = \"p\"\nmtu = 9000\n")),
        [
            "wan_interfaces[0].pppoe.username: must not be empty",
            "wan_interfaces[0].pppoe.mtu: 9000 is not in 576..=1500"
        ]
    );
    assert_eq!(
        refused("[[wan_interfaces]]\nname = \"wan1\"\nmode = \"pppoe\"\n"),
        ["wan_interfaces[0].pppoe: required with mode = \"pppoe\" (username, password)"]
    );
    assert_eq!(
        refused("[[wan_interfaces]]\nname = \"wan1\"\nmode = \"pppoe\"\ngateway = \"192.0.2.1\"\n[wan_interfaces.pppoe]\nusername = \"u\"\npassword = \"p\"\n"),
        ["wan_interfaces[0].gateway: not with mode = \"pppoe\": the session's peer is the next hop"]
    );
}

#[test]
fn macs_and_derived_device_names_are_checked() {
    let errs = refused(
        "[[wan_interfaces]]\nname = \"wan1\"\nmode = \"dhcp\"\nmac = \"01:00:5e:00:00:01\"\n",
    );
    assert_eq!(
        errs,
        ["wan_interfaces[0].mac: 01:00:5e:00:00:01 is not a unicast address"]
    );
    let errs = refused("[[wan_interfaces]]\nname = \"wan1\"\nmode = \"dhcp\"\nmac = \"02:00\"\n");
    assert!(errs[0].contains("is not a MAC address"), "{errs:?}");
    let errs = refused(
        "[[wan_interfaces]]\nname = \"enp3s0f1long\"\nmode = \"pppoe\"\n[wan_interfaces.pppoe]\nusername = \"u\"\npassword = \"p\"\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("wan_interfaces[0].name: the line's device `ppp-enp3s0f1long`"),
        "{errs:?}"
    );
    let errs =
        refused("[[wan_interfaces]]\nname = \"enp3s0f1lon\"\nmode = \"dhcp\"\nvlan = 4000\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("wan_interfaces[0].vlan: the line's device"),
        "{errs:?}"
    );
}
