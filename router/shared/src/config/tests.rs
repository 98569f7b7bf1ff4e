use super::*;

const MINIMAL: &str = r#"
[[wan_interfaces]]
name = "wan1"
weight = 2
gateway = "192.0.2.1"

[[wan_interfaces]]
name = "wan2"
gateway = "198.51.100.1"

[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#;

use crate::config::refusals as errors;

#[test]
fn shipped_example_is_valid_and_has_seed_defaults() {
    let cfg = Config::from_toml(include_str!("../../../../config/routeros.toml")).unwrap();
    let allocation = WanIds::allocate(&cfg, &WanIds::default()).unwrap();
    let wans: Vec<_> = allocation
        .resolved
        .wans()
        .map(|w| (w.config.name.as_str(), w.config.weight, w.table, w.mark))
        .collect();
    assert_eq!(wans, [("eth0", 2, 100, 0x100), ("eth1", 1, 200, 0x200)]);
    assert_eq!(cfg.health_check, HealthCheckConfig::default());
    assert_eq!(cfg.health_check.timeout_seconds, 2.0);
    assert_eq!(cfg.health_check.retry_count, 3);
    assert_eq!(cfg.health_check.check_interval, 5.0);
    assert_eq!(
        cfg.health_targets(),
        ["1.1.1.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(cfg.routing, RoutingConfig::default());
    assert_eq!(cfg.logging.max_size, "10MB");
}

#[test]
fn omitted_sections_take_defaults() {
    let cfg = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(cfg.wan_interfaces[1].weight, 1);
    assert_eq!(cfg.routing.load_balancing, BalanceMode::Ecmp);
    assert!(cfg.policies.is_empty());
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let text = r#"
[[wan_interfaces]]
name = "wan1"
weight = 0
gateway = "192.168.1.7"
colour = "red"

[[wan_interfaces]]
name = "wan1"
weight = 300
table = 254
mark = 0x101

[lan]
interface = "lan0"
address = "192.168.1.0/24"

[routing]
sticky_sessions = false
"#;
    let errs = errors(text);
    let expect = [
        "wan_interfaces[0].colour: unknown key",
        "wan_interfaces[0].weight: 0 is not in 1..=255",
        "wan_interfaces[0].gateway: 192.168.1.7 lies inside the LAN 192.168.1.0/24",
        "wan_interfaces[1].name: `wan1` is already wan_interfaces[0]",
        "wan_interfaces[1].weight: 300 is not in 1..=255",
        "wan_interfaces[1].table: 254 is reserved",
        "wan_interfaces[1].mark: 0x101 must be non-zero",
        "lan.address: 192.168.1.0 is the network or broadcast address",
        "routing.sticky_sessions: false is not supported",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing `{want}` in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

#[test]
fn clashing_tables_and_marks_name_the_first_user() {
    let text = MINIMAL
        .replace("weight = 2", "weight = 2\ntable = 100\nmark = 0x100")
        .replace(
            "gateway = \"198.51.100.1\"",
            "gateway = \"198.51.100.1\"\ntable = 100\nmark = 0x100",
        );
    let errs = errors(&text);
    assert!(
        errs.contains(
            &"wan_interfaces[1].table: table 100 is already used by wan_interfaces[0]".to_string()
        ),
        "{errs:?}"
    );
    assert!(
        errs.contains(
            &"wan_interfaces[1].mark: mark 0x100 is already used by wan_interfaces[0]".to_string()
        ),
        "{errs:?}"
    );
}

#[test]
fn type_errors_name_the_field_and_line() {
    let errs = errors(&MINIMAL.replace("weight = 2", "weight = \"heavy\""));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("wan_interfaces[0].weight: invalid type"),
        "{errs:?}"
    );
    assert!(errs[0].contains("(line 4)"), "{errs:?}");

    let errs = errors(&MINIMAL.replace("192.168.1.1/24", "192.168.1.1/33"));
    assert!(errs[0].starts_with("lan.address: "), "{errs:?}");
}

#[test]
fn missing_lan_and_no_wans() {
    let errs = errors("");
    assert_eq!(errs, ["lan: required but missing (line 1)"]);
    let errs = errors("[lan]\naddress = \"10.0.0.1/24\"\n");
    assert_eq!(errs, ["lan.interface: required but missing (line 1)"]);
    let errs = errors("[lan]\ninterface = \"lan0\"\naddress = \"10.0.0.1/24\"\n");
    assert_eq!(
        errs,
        ["wan_interfaces: at least one WAN interface is needed"]
    );
}

#[test]
fn policies_are_checked_against_wans() {
    let text = format!(
        "{MINIMAL}
[[policies]]
name = \"bank\"
dst = \"203.0.113.0/24\"
dst_port = 443
via = [\"wan1\", \"wan9\", \"wan1\"]

[[policies]]
name = \"bad name\"
src = \"192.168.1.500\"
via = []
"
    );
    let errs = errors(&text);
    let expect = ["policies[1].src: `192.168.1.500` is not an IPv4 or IPv6 address or CIDR"];
    // A type error stops parsing: fix it and the semantic errors appear.
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with(expect[0]), "{errs:?}");

    let errs = errors(&text.replace("192.168.1.500\"", "192.168.1.50\"\ndst = \"2001:db8::/32\""));
    let expect = [
        "policies[1].dst: is not of src's family",
        "policies[0].via[1]: `wan9` is not one of wan_interfaces",
        "policies[0].via[2]: `wan1` is listed twice",
        "policies[0].dst_port: ports need protocol",
        "policies[1].name: `bad name` must be",
        "policies[1].via: name at least one WAN interface",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing `{want}` in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

#[test]
fn policy_fields_parse() {
    let text = format!(
        "{MINIMAL}
[[policies]]
name = \"games\"
src = \"192.168.1.50\"
protocol = \"udp\"
dst_port = \"27000-27100\"
via = [\"wan1\"]
last_resort = \"drop\"
sticky_timeout = 600
"
    );
    let cfg = Config::from_toml(&text).unwrap();
    let p = &cfg.policies[0];
    assert_eq!(p.src.unwrap().to_string(), "192.168.1.50");
    assert_eq!(
        p.dst_port.unwrap(),
        PortRange {
            first: 27000,
            last: 27100
        }
    );
    assert_eq!(p.last_resort, LastResort::Drop);
    // Round trip through TOML keeps the meaning (the web UI writes configs this way).
    let again = Config::from_toml(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn port_ranges_and_sizes() {
    assert!("0".parse::<PortRange>().is_err());
    assert!("20-10".parse::<PortRange>().is_err());
    assert_eq!("80".parse::<PortRange>().unwrap().to_string(), "80");
    assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
    assert_eq!(parse_size("512kb").unwrap(), 512 << 10);
    assert!(parse_size("ten").is_err());
}

#[test]
fn dhcp_and_port_forwards_are_checked() {
    let text = format!(
        "{MINIMAL}
[lan.dhcp]
start = \"192.168.2.10\"
end = \"192.168.1.1\"
static_leases = [{{ mac = \"aa:bb\", address = \"192.168.1.20\" }}]

[[port_forwards]]
name = \"web\"
protocol = \"tcp\"
wan_port = \"8000-8100\"
to = \"192.168.1.10\"
to_port = 80

[[port_forwards]]
name = \"web2\"
protocol = \"tcp\"
wan_port = 8080
to = \"10.0.0.5\"
wans = [\"wan7\"]
"
    );
    let errs = errors(&text);
    let expect = [
        "lan.dhcp.start: 192.168.2.10 is not a host address of the LAN",
        "lan.dhcp.end: 192.168.1.1 is the router's own address",
        "lan.dhcp.end: 192.168.1.1 comes before start",
        "lan.dhcp.static_leases[0].mac: `aa:bb` is not a MAC",
        "port_forwards[0].to_port: only a single wan_port",
        "port_forwards[1].to: 10.0.0.5 is not a host of the LAN",
        "port_forwards[1].wans[0]: `wan7` is not one of wan_interfaces",
        "port_forwards[1].wan_port: tcp 8080 overlaps port_forwards[0]",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing `{want}` in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

#[test]
fn dot_and_dotdot_are_not_interface_names() {
    for name in [".", ".."] {
        let errs = errors(&MINIMAL.replace("\"lan0\"", &format!("\"{name}\"")));
        assert_eq!(
            errs,
            [format!("lan.interface: `{name}` is not an interface name")]
        );
        let errs = errors(&MINIMAL.replace("\"wan2\"", &format!("\"{name}\"")));
        assert_eq!(
            errs,
            [format!(
                "wan_interfaces[1].name: `{name}` is not an interface name"
            )]
        );
    }
    // Dots inside a name stay valid (VLANs: eth0.100).
    Config::from_toml(&MINIMAL.replace("\"lan0\"", "\"eth0.100\"")).unwrap();
}

#[test]
fn sizes_past_u64_are_refused_not_wrapped() {
    // 17179869184 GB = 2^34 * 2^30 = 2^64 bytes: used to wrap to 0.
    assert_eq!(
        parse_size("17179869184GB"),
        Err("`17179869184GB` is too large".into())
    );
    assert_eq!(
        parse_size("99999999999999999999999"),
        Err("`99999999999999999999999` is too large".into())
    );
    assert_eq!(parse_size("16EB").map_err(|_| ()), Err(()));
    assert_eq!(parse_size("4GB").unwrap(), 4 << 30);
    let errs = errors(&format!(
        "{MINIMAL}\n[logging]\nmax_size = \"17179869184GB\"\n"
    ));
    assert_eq!(errs, ["logging.max_size: `17179869184GB` is too large"]);
}

#[test]
fn log_size_and_path_have_sane_bounds() {
    let with = |logging: &str| format!("{MINIMAL}\n[logging]\n{logging}\n");
    assert_eq!(
        errors(&with("max_size = \"1B\"")),
        ["logging.max_size: `1B` is not in 64KB..=4GB"]
    );
    assert_eq!(
        errors(&with("max_size = \"5GB\"")),
        ["logging.max_size: `5GB` is not in 64KB..=4GB"]
    );
    Config::from_toml(&with("max_size = \"64KB\"")).unwrap();
    for (file, why) in [
        ("routeros.log", "is not an absolute path"),
        ("/var/log/../../etc/passwd", "may not contain `.` or `..`"),
        ("/var/log/./routeros.log", "may not contain `.` or `..`"),
        ("/var/log/", "does not name a file"),
        ("/", "does not name a file"),
    ] {
        let errs = errors(&with(&format!("file = \"{file}\"")));
        assert_eq!(errs, [format!("logging.file: `{file}` {why}")], "{file}");
    }
}

#[test]
fn probe_targets_and_timeouts_are_bounded() {
    let with = |health: &str| format!("{MINIMAL}\n[health_check]\n{health}\n");
    let many: Vec<String> = (1..=17).map(|i| format!("\"203.0.113.{i}\"")).collect();
    assert_eq!(
        errors(&with(&format!("targets = [{}]", many.join(", ")))),
        ["health_check.targets: 17 targets; at most 16 (each is probed on every WAN every round)"]
    );
    Config::from_toml(&with(&format!("targets = [{}]", many[..16].join(", ")))).unwrap();
    for bad in ["1e-300", "0.0", "-1.0", "61.0", "inf", "nan"] {
        let errs = errors(&with(&format!("timeout_seconds = {bad}")));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert!(
            errs[0].starts_with("health_check.timeout_seconds: ")
                && errs[0].ends_with("is not in [0.1, 60] seconds"),
            "{bad}: {errs:?}"
        );
    }
    Config::from_toml(&with("timeout_seconds = 0.1")).unwrap();
    Config::from_toml(&with("timeout_seconds = 60")).unwrap();
}

#[test]
fn dns_servers_and_smtp_port_are_checked() {
    let servers: Vec<String> = (1..=9).map(|i| format!("\"198.51.100.{i}\"")).collect();
    let text = MINIMAL.replace(
        "weight = 2",
        &format!("weight = 2\ndns = [{}]", servers.join(", ")),
    );
    assert_eq!(
        errors(&text),
        ["wan_interfaces[0].dns: 9 servers; at most 8"]
    );
    let text = MINIMAL.replace("weight = 2", "weight = 2\ndns = [\"0.0.0.0\", \"8.8.8.8\"]");
    assert_eq!(
        errors(&text),
        ["wan_interfaces[0].dns[0]: 0.0.0.0 cannot be a DNS server"]
    );
    let text = format!(
        "{MINIMAL}\n[alerts.smtp]\nserver = \"mail.example\"\nport = 0\nfrom = \"r@example.net\"\nto = [\"a@example.net\"]\n"
    );
    assert_eq!(errors(&text), ["alerts.smtp.port: 0 is not a port"]);
}

/// The TOML file and its JSON form go through one parser: the same document gives the same
/// located errors (TOML adds the line number to type errors).
#[test]
fn toml_and_json_forms_give_the_same_located_errors() {
    let without_line = |errors: ConfigErrors| -> Vec<(String, String)> {
        errors
            .0
            .into_iter()
            .map(|e| {
                let reason = match e.reason.rfind(" (line ") {
                    Some(i) => e.reason[..i].to_string(),
                    None => e.reason,
                };
                (e.path, reason)
            })
            .collect()
    };
    let cases = [
        // An unknown key and a range error: both reported.
        (
            "[[wan_interfaces]]\nname = \"wan1\"\nweight = 0\ncolour = \"blue\"\n\
             [lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n",
            serde_json::json!({
                "wan_interfaces": [{"name": "wan1", "weight": 0, "colour": "blue"}],
                "lan": {"interface": "lan0", "address": "192.168.1.1/24"},
            }),
        ),
        // A missing key is named by its own path.
        (
            "[[wan_interfaces]]\nname = \"wan1\"\n[lan]\naddress = \"192.168.1.1/24\"\n",
            serde_json::json!({
                "wan_interfaces": [{"name": "wan1"}],
                "lan": {"address": "192.168.1.1/24"},
            }),
        ),
        // A type error.
        (
            "[[wan_interfaces]]\nname = \"wan1\"\nweight = \"heavy\"\n\
             [lan]\ninterface = \"lan0\"\naddress = \"192.168.1.1/24\"\n",
            serde_json::json!({
                "wan_interfaces": [{"name": "wan1", "weight": "heavy"}],
                "lan": {"interface": "lan0", "address": "192.168.1.1/24"},
            }),
        ),
    ];
    for (toml_text, json) in cases.clone() {
        let from_toml = without_line(Config::from_toml(toml_text).unwrap_err());
        let from_json = without_line(Config::from_json(json).unwrap_err());
        assert_eq!(from_toml, from_json, "{toml_text}");
    }
    let paths = |text: &str| -> Vec<String> {
        Config::from_toml(text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect()
    };
    assert_eq!(
        paths(cases[0].0),
        ["wan_interfaces[0].colour", "wan_interfaces[0].weight"]
    );
    assert_eq!(paths(cases[1].0), ["lan.interface"]);
    assert_eq!(paths(cases[2].0), ["wan_interfaces[0].weight"]);
}

/// Editing goes through the raw form and the same validator.
#[test]
fn an_edited_config_is_validated_again() {
    let cfg = Config::from_toml(MINIMAL).unwrap();
    let mut raw = cfg.to_raw();
    raw.wan_interfaces[1].weight = 300;
    let errs = Config::from_raw(raw).unwrap_err();
    assert_eq!(
        errs.0,
        [FieldError::new(
            "wan_interfaces[1].weight",
            "300 is not in 1..=255"
        )]
    );
    assert_eq!(Config::from_raw(cfg.to_raw()).unwrap(), cfg);
}

#[test]
fn line_speeds_and_smart_routing_parse_with_static_defaults() {
    let cfg = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(cfg.routing.weights, WeightMode::Static);
    assert_eq!(cfg.routing.placement, Placement::Weight);
    assert_eq!(cfg.wan_interfaces[0].download_mbit, None);

    let text = MINIMAL.replace(
        "weight = 2",
        "weight = 2\ndownload_mbit = 100\nupload_mbit = 0.5",
    ) + "\n[routing]\nweights = \"auto\"\nplacement = \"spare_capacity\"\n";
    let cfg = Config::from_toml(&text).unwrap();
    assert_eq!(cfg.wan_interfaces[0].download_mbit, Some(100.0));
    assert_eq!(cfg.wan_interfaces[0].upload_mbit, Some(0.5));
    assert_eq!(cfg.routing.weights, WeightMode::Auto);
    assert_eq!(cfg.routing.placement, Placement::SpareCapacity);
    // The written form reads back the same (the web and the daemon save it).
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(Config::from_json(json).unwrap(), cfg);
}

#[test]
fn zero_negative_and_absurd_speeds_are_refused_by_path() {
    let text = MINIMAL
        .replace(
            "weight = 2",
            "weight = 2\ndownload_mbit = 0\nupload_mbit = -5",
        )
        .replace(
            "gateway = \"198.51.100.1\"",
            "gateway = \"198.51.100.1\"\ndownload_mbit = nan\nupload_mbit = 2e6",
        );
    let errs = errors(&text);
    let expect = [
        "wan_interfaces[0].download_mbit: 0 is not a line speed",
        "wan_interfaces[0].upload_mbit: -5 is not a line speed",
        "wan_interfaces[1].download_mbit: NaN is not a line speed",
        "wan_interfaces[1].upload_mbit: 2000000 is not a line speed",
    ];
    for want in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing `{want}` in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    // Whole numbers are accepted as well as fractions, and the bound itself.
    let ok = MINIMAL.replace("weight = 2", "weight = 2\ndownload_mbit = 1000000");
    assert!(Config::from_toml(&ok).is_ok());
}

#[test]
fn unknown_weight_and_placement_modes_name_the_key() {
    for (key, value) in [("weights", "\"learned\""), ("placement", "\"fastest\"")] {
        let errs = errors(&format!("{MINIMAL}\n[routing]\n{key} = {value}\n"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with(&format!("routing.{key}: unknown variant")),
            "{errs:#?}"
        );
    }
}

#[test]
fn spare_capacity_goes_with_sticky_policies() {
    // The shares live in named maps rewritten in place, so the host-affinity sets survive.
    let policy = "\n[[policies]]\nname = \"bank\"\nvia = [\"wan1\"]\nsticky_timeout = 600\n";
    let spare = "\n[routing]\nplacement = \"spare_capacity\"\n";
    assert!(Config::from_toml(&format!("{MINIMAL}{spare}{policy}")).is_ok());
}

#[test]
fn classes_take_names_or_values_and_bad_ones_are_refused_by_path() {
    let cfg = Config::from_toml(&format!(
        "{MINIMAL}\n[[classes]]\nname = \"game\"\nprotocol = \"udp\"\ndst_port = \"27015-27030\"\ndscp = \"voice\"\n\n[[classes]]\nname = \"nas\"\nsrc = \"fd7a:9e51:5c34::50\"\ndscp = 10\n\n[qos]\ndefault_classes = false\n"
    ))
    .unwrap();
    assert_eq!(cfg.classes[0].dscp.value(), 46);
    assert_eq!(cfg.classes[1].dscp.value(), 10);
    assert!(!cfg.qos.default_classes);
    // Written back as given: a name stays a name, a number a number.
    let text = toml::to_string(&cfg.to_raw()).unwrap();
    assert!(
        text.contains("dscp = \"voice\"") && text.contains("dscp = 10"),
        "{text}"
    );

    let errs = errors(&format!(
        "{MINIMAL}\n[[classes]]\nname = \"x\"\ndscp = 64\n"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("classes[0].dscp: `64` is not a DSCP value (0-63)"),
        "{errs:?}"
    );
    let errs = errors(&format!(
        "{MINIMAL}\n[[classes]]\nname = \"x\"\ndscp = \"fast\"\n"
    ));
    assert!(
        errs[0].starts_with("classes[0].dscp: `fast` is not"),
        "{errs:?}"
    );

    let errs = errors(&format!(
        "{MINIMAL}\n[[classes]]\nname = \"a b\"\ndst_port = 80\nsrc = \"192.168.1.5\"\ndst = \"2001:db8::1\"\ndscp = 0\n\n[[classes]]\nname = \"a b\"\ndscp = 0\n"
    ));
    for want in [
        "classes[0].name: `a b` must be",
        "classes[0].dst: is not of src's family: a class matches",
        "classes[0].dst_port: ports need protocol",
        "classes[1].name: `a b` is already classes[0]",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want} in {errs:?}"
        );
    }
}

#[test]
fn probe_paces_and_line_targets_are_checked_by_path() {
    let cfg = Config::from_toml(&format!(
        "{MINIMAL}\n[health_check]\nfailure_interval = 0.2\n"
    ))
    .unwrap();
    use crate::config::ProbePace;
    assert_eq!(cfg.health_check.interval_at(ProbePace::Failing), 0.2);
    assert_eq!(
        cfg.health_check.interval_at(ProbePace::Recovering),
        5.0,
        "unset: check_interval"
    );

    let text = MINIMAL.replacen(
        "name = \"wan1\"",
        "name = \"wan1\"\nhealth_targets = [\"192.0.2.53\", \"0.0.0.0\", \"192.0.2.53\"]",
        1,
    );
    let errs = errors(&format!(
        "{text}\n[health_check]\nfailure_interval = 0\nrecovery_interval = 7200\nreliability = 1\n"
    ));
    for want in [
        "health_check.failure_interval: 0 is not in [0.1, 3600] seconds",
        "health_check.recovery_interval: 7200 is not in [0.1, 3600] seconds",
        "wan_interfaces[0].health_targets[1]: 0.0.0.0 cannot be probed",
        "wan_interfaces[0].health_targets[2]: 192.0.2.53 is listed twice",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want} in {errs:?}"
        );
    }
    let text = MINIMAL.replacen(
        "name = \"wan1\"",
        "name = \"wan1\"\nhealth_targets = [\"192.0.2.53\"]",
        1,
    );
    let errs = errors(&format!(
        "{text}\n[health_check]\ntargets = [\"1.1.1.1\", \"9.9.9.9\"]\nreliability = 2\n"
    ));
    assert!(
        errs.iter().any(|e| e.starts_with("wan_interfaces[0].health_targets: 1 IPv4 targets, fewer than health_check.reliability (2)")),
        "{errs:?}"
    );
}

#[test]
fn degraded_share_is_a_part_of_one() {
    let errs = errors(&format!("{MINIMAL}\n[routing]\ndegraded_share = 0\n"));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("routing.degraded_share: 0 is not in [0.05, 1]")),
        "{errs:?}"
    );
    assert!(Config::from_toml(&format!("{MINIMAL}\n[routing]\ndegraded_share = 1\n")).is_ok());
}

#[test]
fn keys_that_are_not_bare_are_quoted_in_the_path() {
    let errs = errors(&format!("''=''\n{MINIMAL}\"a.b\" = 1\n"));
    assert!(errs.contains(&r#""": unknown key"#.to_string()), "{errs:?}");
    assert!(
        errs.contains(&"lan.\"a.b\": unknown key".to_string()),
        "{errs:?}"
    );
}
