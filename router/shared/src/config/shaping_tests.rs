use super::*;

const TWO_WANS: &str = r#"
[[wan_interfaces]]
name = "wan1"
gateway = "192.0.2.1"
download_mbit = 100
upload_mbit = 20

[[wan_interfaces]]
name = "wan2"
gateway = "198.51.100.1"

[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#;

use crate::config::refusals as errors;

/// `TWO_WANS` with `table` appended to wan`n`'s (1-based) entry.
fn with_shaping(n: usize, table: &str) -> String {
    let marker = format!("name = \"wan{n}\"\n");
    TWO_WANS.replace(&marker, &format!("{marker}{table}\n"))
}

#[test]
fn off_by_default_with_five_percent_overhead() {
    let cfg = Config::from_toml(TWO_WANS).unwrap();
    let s = &cfg.wan_interfaces[0].shaping;
    assert!(!s.enabled);
    assert_eq!(s.overhead_percent, DEFAULT_OVERHEAD_PERCENT);
    assert_eq!(cfg.wan_interfaces[0].shaped_kbit(), None);
    // Not written out while default: saved configs stay as they were.
    let json = serde_json::to_value(&cfg).unwrap();
    assert!(json["wan_interfaces"][0].get("shaping").is_none(), "{json}");
}

#[test]
fn shaped_rates_are_the_declared_speeds_less_the_overhead() {
    let text = with_shaping(1, "shaping = { enabled = true }");
    let cfg = Config::from_toml(&text).unwrap();
    assert_eq!(cfg.wan_interfaces[0].shaped_kbit(), Some((95_000, 19_000)));

    let text = with_shaping(1, "shaping = { enabled = true, overhead_percent = 12.5 }");
    let cfg = Config::from_toml(&text).unwrap();
    assert_eq!(cfg.wan_interfaces[0].shaped_kbit(), Some((87_500, 17_500)));
    // The written form reads back the same.
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(Config::from_json(json).unwrap(), cfg);
    // Bounds are allowed; a tiny line is never shaped to 0.
    for bound in ["0", "50"] {
        let text = with_shaping(
            1,
            &format!("shaping = {{ enabled = true, overhead_percent = {bound} }}"),
        );
        assert!(Config::from_toml(&text).is_ok(), "{bound}");
    }
    let slow = with_shaping(1, "shaping = { enabled = true, overhead_percent = 50 }")
        .replace("upload_mbit = 20", "upload_mbit = 0.001");
    let cfg = Config::from_toml(&slow).unwrap();
    assert_eq!(cfg.wan_interfaces[0].shaped_kbit(), Some((50_000, 1)));
}

#[test]
fn shaping_without_both_speeds_is_refused_by_path() {
    let errs = errors(&with_shaping(2, "shaping.enabled = true"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("wan_interfaces[1].shaping.enabled: shaping needs the line's speeds: set wan_interfaces[1].download_mbit and upload_mbit"),
        "{errs:#?}"
    );
    let one_missing =
        with_shaping(1, "shaping = { enabled = true }").replace("upload_mbit = 20\n", "");
    let errs = errors(&one_missing);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("set wan_interfaces[0].upload_mbit ("),
        "{errs:#?}"
    );
    // Off, the speeds are not needed.
    assert!(Config::from_toml(&with_shaping(2, "shaping = { enabled = false }")).is_ok());
}

#[test]
fn overhead_outside_0_to_50_is_refused_by_path() {
    for (value, shown) in [("-1", "-1"), ("50.5", "50.5"), ("nan", "NaN"), ("90", "90")] {
        let text = with_shaping(1, &format!("shaping = {{ overhead_percent = {value} }}"));
        let errs = errors(&text);
        assert_eq!(
            errs,
            [format!(
                "wan_interfaces[0].shaping.overhead_percent: {shown} is not in 0..=50 (percent taken off the line's speeds)"
            )],
            "{value}"
        );
    }
}

#[test]
fn unknown_shaping_keys_and_long_ifb_names_are_refused() {
    let errs = errors(&with_shaping(1, "shaping = { enabled = true, rate = 5 }"));
    assert_eq!(errs, ["wan_interfaces[0].shaping.rate: unknown key"]);

    // `ifb-` plus a 12-character port is longer than the kernel allows.
    let long = with_shaping(1, "shaping = { enabled = true }").replace("wan1", "enp0s31f6abc");
    let errs = errors(&long);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("wan_interfaces[0].shaping.enabled: the line's ingress shaping device: `ifb-enp0s31f6abc` must be 1 to 15 characters long"),
        "{errs:#?}"
    );
    assert_eq!(ifb_device("enp0s31f6ab"), "ifb-enp0s31f6ab");
}

#[test]
fn a_kernel_without_cake_refuses_only_the_shaped_lines() {
    let cfg = Config::from_toml(&with_shaping(1, "shaping = { enabled = true }")).unwrap();
    assert!(any_shaped(&cfg));
    assert!(shaping_kernel_problems(&cfg, true).is_empty());
    let errs = shaping_kernel_problems(&cfg, false);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "wan_interfaces[0].shaping.enabled");
    assert!(errs[0].reason.starts_with("this kernel has no sch_cake"));

    let plain = Config::from_toml(TWO_WANS).unwrap();
    assert!(!any_shaped(&plain));
    assert!(shaping_kernel_problems(&plain, false).is_empty());
}
