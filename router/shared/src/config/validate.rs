//! Semantic checks that serde cannot express. Every problem is collected, none stops the
//! others, so one `--check` run lists everything that is wrong.

use super::model::*;
use super::{FieldError, MAX_TARGETS, MAX_WANS};
use crate::plan::MARK_MASK;
use std::collections::HashMap;

/// All problems of a parsed config, each with its TOML path (the one check behind
/// [`Config::from_raw`](super::Config::from_raw)).
pub(super) fn validate(cfg: &RawConfig) -> Vec<FieldError> {
    let mut errs = Errors::default();
    check_wans(cfg, &mut errs);
    check_lan(cfg, &mut errs);
    check_health(&cfg.health_check, &mut errs);
    check_wan_targets(cfg, &mut errs);
    check_routing(cfg, &mut errs);
    check_policies(cfg, &mut errs);
    check_logging(&cfg.logging, &mut errs);
    check_alerts(&cfg.alerts, &mut errs);
    check_dhcp(cfg, &mut errs);
    check_port_forwards(cfg, &mut errs);
    errs.0.extend(super::ipv6::problems(cfg));
    errs.0.extend(super::ha::problems(cfg));
    errs.0.extend(super::classes::problems(cfg));
    errs.0.extend(super::shaping::problems(cfg));
    errs.0
}

/// DNS servers per WAN: dnsmasq forwards to them all; a handful is plenty.
const MAX_DNS: usize = 8;

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError::new(path, reason));
    }
}

/// Linux interface names: 1..=15 bytes, no whitespace, '/' or quotes (they end up in nft),
/// and not `.` or `..` (the kernel refuses them; in paths like /sys/class/net/<name> they
/// would name a directory, not an interface).
pub fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 15 {
        return Some(format!("`{name}` must be 1 to 15 characters long"));
    }
    if name == "." || name == ".." {
        return Some(format!("`{name}` is not an interface name"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Some(format!(
            "`{name}` may only hold letters, digits, '.', '-', '_' and '@'"
        ));
    }
    None
}

fn check_wans(cfg: &RawConfig, errs: &mut Errors) {
    if cfg.wan_interfaces.is_empty() {
        errs.add("wan_interfaces", "at least one WAN interface is needed");
    }
    if cfg.wan_interfaces.len() > MAX_WANS {
        errs.add(
            "wan_interfaces",
            format!("at most {MAX_WANS} WAN interfaces are supported"),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut tables: HashMap<u32, usize> = HashMap::new();
    let mut marks: HashMap<u32, usize> = HashMap::new();
    // Tables and marks set in the config; the others are allocated by name (WanIds) around them.
    for (i, wan) in cfg.wan_interfaces.iter().enumerate() {
        let at = |field: &str| format!("wan_interfaces[{i}].{field}");
        if let Some(p) = interface_name_problem(&wan.name) {
            errs.add(at("name"), p);
        }
        if let Some(first) = names.insert(&wan.name, i) {
            errs.add(
                at("name"),
                format!("`{}` is already wan_interfaces[{first}]", wan.name),
            );
        }
        if wan.name == cfg.lan.interface {
            errs.add(at("name"), format!("`{}` is the LAN interface", wan.name));
        }
        if !(1..=255).contains(&wan.weight) {
            errs.add(at("weight"), format!("{} is not in 1..=255", wan.weight));
        }
        for (field, speed) in [
            ("download_mbit", wan.download_mbit),
            ("upload_mbit", wan.upload_mbit),
        ] {
            if let Some(problem) = speed.and_then(speed_problem) {
                errs.add(at(field), problem);
            }
        }
        if !(1..=255).contains(&wan.priority) {
            errs.add(
                at("priority"),
                format!("{} is not in 1..=255", wan.priority),
            );
        }
        if let Some(gw) = wan.gateway {
            if gw.is_unspecified() || gw.is_broadcast() || gw.is_multicast() {
                errs.add(at("gateway"), format!("{gw} cannot be a gateway"));
            } else if cfg.lan.address.trunc().contains(&gw) {
                errs.add(
                    at("gateway"),
                    format!("{gw} lies inside the LAN {}", cfg.lan.address.trunc()),
                );
            }
        }
        let dev = wan.device();
        if dev != wan.name {
            if let Some(other) = cfg.wan_interfaces.iter().position(|o| o.name == dev) {
                errs.add(
                    at("name"),
                    format!("its device `{dev}` is the name of wan_interfaces[{other}]"),
                );
            }
        }
        for (field, reason) in super::access::access_problems(wan) {
            errs.add(at(field), reason);
        }
        if wan.dns.len() > MAX_DNS {
            errs.add(
                at("dns"),
                format!("{} servers; at most {MAX_DNS}", wan.dns.len()),
            );
        }
        for (j, d) in wan.dns.iter().enumerate() {
            if d.is_unspecified() || d.is_broadcast() || d.is_multicast() {
                errs.add(
                    format!("wan_interfaces[{i}].dns[{j}]"),
                    format!("{d} cannot be a DNS server"),
                );
            }
        }
        if let Some(table) = wan.table {
            if matches!(table, 0 | 253..=255) {
                errs.add(
                    at("table"),
                    format!("{table} is reserved (0, 253 default, 254 main, 255 local)"),
                );
            }
            if let Some(first) = tables.insert(table, i) {
                errs.add(
                    at("table"),
                    format!("table {table} is already used by wan_interfaces[{first}]"),
                );
            }
        }
        if let Some(mark) = wan.mark {
            if mark == 0 || mark & !MARK_MASK != 0 {
                errs.add(
                    at("mark"),
                    format!("{mark:#x} must be non-zero and use only the bits of {MARK_MASK:#x}"),
                );
            }
            if let Some(first) = marks.insert(mark, i) {
                errs.add(
                    at("mark"),
                    format!("mark {mark:#x} is already used by wan_interfaces[{first}]"),
                );
            }
        }
    }
}

/// Fastest line speed accepted, in Mbit/s (1 Tbit/s): far above any WAN, low enough that
/// rates and weights derived from it stay exact in f64 and u64 arithmetic.
pub const MAX_SPEED_MBIT: f64 = 1_000_000.0;

/// A declared line speed must be a positive, finite number of Mbit/s (fractions allowed:
/// 0.5 is a slow DSL upload).
fn speed_problem(mbit: f64) -> Option<String> {
    if mbit > 0.0 && mbit <= MAX_SPEED_MBIT {
        None
    } else {
        Some(format!(
            "{mbit} is not a line speed: give Mbit/s above 0 and at most {MAX_SPEED_MBIT}"
        ))
    }
}

fn check_lan(cfg: &RawConfig, errs: &mut Errors) {
    if let Some(p) = interface_name_problem(&cfg.lan.interface) {
        errs.add("lan.interface", p);
    }
    let net = cfg.lan.address;
    if !(8..=30).contains(&net.prefix_len()) {
        errs.add(
            "lan.address",
            format!("prefix /{} is not in /8../30", net.prefix_len()),
        );
    } else if net.addr() == net.network() || net.addr() == net.broadcast() {
        errs.add(
            "lan.address",
            format!(
                "{} is the network or broadcast address of {}; give the router's own address, e.g. {}/{}",
                net.addr(),
                net.trunc(),
                net.hosts().next().map(|a| a.to_string()).unwrap_or_default(),
                net.prefix_len()
            ),
        );
    }
}

fn check_health(h: &HealthCheckConfig, errs: &mut Errors) {
    // RangeInclusive::contains is false for NaN, so these also refuse NaN (and infinities).
    if !(0.1..=60.0).contains(&h.timeout_seconds) {
        errs.add(
            "health_check.timeout_seconds",
            format!("{} is not in [0.1, 60] seconds", h.timeout_seconds),
        );
    }
    if !(0.1..=3600.0).contains(&h.check_interval) {
        errs.add(
            "health_check.check_interval",
            format!("{} is not in [0.1, 3600] seconds", h.check_interval),
        );
    }
    for (key, v) in [
        ("failure_interval", h.failure_interval),
        ("recovery_interval", h.recovery_interval),
    ] {
        if let Some(v) = v.filter(|v| !(0.1..=3600.0).contains(v)) {
            errs.add(
                format!("health_check.{key}"),
                format!("{v} is not in [0.1, 3600] seconds"),
            );
        }
    }
    if !(1..=100).contains(&h.retry_count) {
        errs.add(
            "health_check.retry_count",
            format!("{} is not in 1..=100", h.retry_count),
        );
    }
    if !(1..=100).contains(&h.recovery_count) {
        errs.add(
            "health_check.recovery_count",
            format!("{} is not in 1..=100", h.recovery_count),
        );
    }
    if h.targets.len() > MAX_TARGETS {
        errs.add(
            "health_check.targets",
            format!(
                "{} targets; at most {MAX_TARGETS} (each is probed on every WAN every round)",
                h.targets.len()
            ),
        );
    }
    let n_targets = u32::try_from(h.targets.len().max(1)).unwrap_or(u32::MAX);
    if !(1..=n_targets).contains(&h.reliability) {
        errs.add(
            "health_check.reliability",
            format!(
                "{} is not in 1..={n_targets} (the number of targets)",
                h.reliability
            ),
        );
    }
    if !(1..=60_000).contains(&h.degraded_latency_ms) {
        errs.add(
            "health_check.degraded_latency_ms",
            format!("{} is not in 1..=60000", h.degraded_latency_ms),
        );
    }
    if h.degraded_loss_percent > 100 {
        errs.add(
            "health_check.degraded_loss_percent",
            format!("{} is not in 0..=100", h.degraded_loss_percent),
        );
    }
    for (i, t) in h.targets.iter().enumerate() {
        if t.is_unspecified() || t.is_broadcast() || t.is_multicast() {
            errs.add(
                format!("health_check.targets[{i}]"),
                format!("{t} cannot be probed"),
            );
        }
    }
}

/// A line's own probe targets: probe-able, at most [`MAX_TARGETS`], and enough IPv4 ones
/// for `reliability` when it names any (IPv6's reliability is capped at its list anyway).
fn check_wan_targets(cfg: &RawConfig, errs: &mut Errors) {
    for (i, w) in cfg.wan_interfaces.iter().enumerate() {
        let at = format!("wan_interfaces[{i}].health_targets");
        let t = &w.health_targets;
        if t.len() > MAX_TARGETS {
            errs.add(&at, format!("{} targets; at most {MAX_TARGETS}", t.len()));
        }
        for (j, a) in t.iter().enumerate() {
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                errs.add(format!("{at}[{j}]"), format!("{a} cannot be probed"));
            } else if t[..j].contains(a) {
                errs.add(format!("{at}[{j}]"), format!("{a} is listed twice"));
            }
        }
        let v4 = u32::try_from(t.iter().filter(|a| a.is_ipv4()).count()).unwrap_or(u32::MAX);
        if v4 > 0 && v4 < cfg.health_check.reliability {
            errs.add(
                &at,
                format!(
                    "{v4} IPv4 targets, fewer than health_check.reliability ({})",
                    cfg.health_check.reliability
                ),
            );
        }
    }
}

fn check_routing(cfg: &RawConfig, errs: &mut Errors) {
    let share = cfg.routing.degraded_share;
    if !(0.05..=1.0).contains(&share) {
        errs.add(
            "routing.degraded_share",
            format!("{share} is not in [0.05, 1] (the part of its share a degraded line keeps)"),
        );
    }
    if !cfg.routing.sticky_sessions {
        errs.add(
            "routing.sticky_sessions",
            "false is not supported: with NAT every connection must keep the WAN it started on",
        );
    }
    if !cfg.routing.packet_marking && !cfg.policies.is_empty() {
        errs.add(
            "routing.packet_marking",
            "policies are configured but packet_marking is false; set it to true or remove [[policies]]",
        );
    }
}

/// Names of policies and classes become nft chain names: short, no spaces or quotes.
pub(super) fn rule_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!ok).then(|| format!("`{name}` must be 1 to 24 letters, digits, '-' or '_'"))
}

fn check_policies(cfg: &RawConfig, errs: &mut Errors) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, p) in cfg.policies.iter().enumerate() {
        let at = |field: &str| format!("policies[{i}].{field}");
        if let Some(reason) = rule_name_problem(&p.name) {
            errs.add(at("name"), reason);
        }
        if let Some(first) = names.insert(&p.name, i) {
            errs.add(
                at("name"),
                format!("`{}` is already policies[{first}]", p.name),
            );
        }
        for (field, reason) in p.traffic().problems("policy") {
            errs.add(at(field), reason);
        }
        if p.via.is_empty() {
            errs.add(at("via"), "name at least one WAN interface");
        }
        for (j, via) in p.via.iter().enumerate() {
            if !cfg.wan_interfaces.iter().any(|w| &w.name == via) {
                errs.add(
                    format!("policies[{i}].via[{j}]"),
                    format!("`{via}` is not one of wan_interfaces"),
                );
            } else if p.via[..j].contains(via) {
                errs.add(
                    format!("policies[{i}].via[{j}]"),
                    format!("`{via}` is listed twice"),
                );
            }
        }
        if let Some(t) = p.sticky_timeout {
            if !(1..=86400).contains(&t) {
                errs.add(
                    at("sticky_timeout"),
                    format!("{t} is not in 1..=86400 seconds"),
                );
            }
        }
    }
}

fn check_logging(l: &LoggingConfig, errs: &mut Errors) {
    const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
    if !LEVELS.contains(&l.level.to_ascii_uppercase().as_str()) {
        errs.add(
            "logging.level",
            format!("`{}` is not one of {}", l.level, LEVELS.join(", ")),
        );
    }
    match parse_size(&l.max_size) {
        Ok(n) if !(MIN_LOG_SIZE..=MAX_LOG_SIZE).contains(&n) => errs.add(
            "logging.max_size",
            format!("`{}` is not in 64KB..=4GB", l.max_size),
        ),
        Ok(_) => {}
        Err(e) => errs.add("logging.max_size", e),
    }
    if let Some(file) = &l.file {
        if let Some(p) = log_path_problem(file) {
            errs.add("logging.file", p);
        }
    }
}

/// Bounds of `[logging] max_size`: a file smaller than a few lines rotates the log away as
/// fast as it is written; a bigger one than this fills the disk before it rotates.
const MIN_LOG_SIZE: u64 = 64 << 10;
const MAX_LOG_SIZE: u64 = 4 << 30;

/// What the config alone can tell about a log file path: absolute, a file name, no `.` or
/// `..` (the daemon also requires it to lie in its log directory, see daemon::logging).
pub fn log_path_problem(path: &std::path::Path) -> Option<String> {
    use std::path::Component;
    let shown = path.display();
    if !path.is_absolute() {
        return Some(format!("`{shown}` is not an absolute path"));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || path
            .to_string_lossy()
            .split('/')
            .any(|c| c == "." || c == "..")
    {
        return Some(format!("`{shown}` may not contain `.` or `..`"));
    }
    if path.file_name().is_none() || path.to_string_lossy().ends_with('/') {
        return Some(format!("`{shown}` does not name a file"));
    }
    None
}

/// "10MB", "512KB", "1GB" or plain bytes -> bytes (sizes past u64 are refused, not wrapped).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (num, mult) = [
        ("GB", 1u64 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.trim().to_string(), *m)))
    .unwrap_or((t.clone(), 1));
    match num.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| format!("`{s}` is too large")),
        Ok(_) => Err(format!("`{s}` is not a size like 10MB")),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
            Err(format!("`{s}` is too large"))
        }
        Err(_) => Err(format!("`{s}` is not a size like 10MB")),
    }
}

fn check_alerts(a: &AlertsConfig, errs: &mut Errors) {
    if let Some(url) = &a.webhook_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errs.add(
                "alerts.webhook_url",
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
    }
    if !(1..=10).contains(&a.retries) {
        errs.add("alerts.retries", format!("{} is not in 1..=10", a.retries));
    }
    if let Some(smtp) = &a.smtp {
        if smtp.server.is_empty() {
            errs.add("alerts.smtp.server", "name the SMTP relay");
        }
        if smtp.port == 0 {
            errs.add("alerts.smtp.port", "0 is not a port");
        }
        if !smtp.from.contains('@') {
            errs.add(
                "alerts.smtp.from",
                format!("`{}` is not a mail address", smtp.from),
            );
        }
        if smtp.to.is_empty() {
            errs.add("alerts.smtp.to", "name at least one recipient");
        }
        for (i, to) in smtp.to.iter().enumerate() {
            if !to.contains('@') {
                errs.add(
                    format!("alerts.smtp.to[{i}]"),
                    format!("`{to}` is not a mail address"),
                );
            }
        }
        if smtp.username.is_some() != smtp.password.is_some() {
            errs.add("alerts.smtp.password", "username and password go together");
        }
    }
}

fn check_dhcp(cfg: &RawConfig, errs: &mut Errors) {
    let d = &cfg.lan.dhcp;
    let lan = cfg.lan.address.trunc();
    let router = cfg.lan.address.addr();
    let usable =
        |a: std::net::Ipv4Addr| lan.contains(&a) && a != lan.network() && a != lan.broadcast();
    for (field, addr) in [("start", d.start), ("end", d.end)] {
        if let Some(a) = addr {
            if !usable(a) {
                errs.add(
                    format!("lan.dhcp.{field}"),
                    format!("{a} is not a host address of the LAN {lan}"),
                );
            } else if a == router {
                errs.add(
                    format!("lan.dhcp.{field}"),
                    format!("{a} is the router's own address"),
                );
            }
        }
    }
    if let (Some(s), Some(e)) = (d.start, d.end) {
        if s > e {
            errs.add("lan.dhcp.end", format!("{e} comes before start {s}"));
        }
    }
    if d.enabled && !(60..=31_536_000).contains(&d.lease_seconds) {
        errs.add(
            "lan.dhcp.lease_seconds",
            format!("{} is not in 60..=31536000", d.lease_seconds),
        );
    }
    for (i, l) in d.static_leases.iter().enumerate() {
        let is_mac = l.mac.len() == 17
            && l.mac
                .split(':')
                .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
        if !is_mac {
            errs.add(
                format!("lan.dhcp.static_leases[{i}].mac"),
                format!("`{}` is not a MAC like aa:bb:cc:dd:ee:ff", l.mac),
            );
        }
        if !usable(l.address) || l.address == router {
            errs.add(
                format!("lan.dhcp.static_leases[{i}].address"),
                format!("{} is not a free host address of the LAN {lan}", l.address),
            );
        }
    }
}

fn check_port_forwards(cfg: &RawConfig, errs: &mut Errors) {
    let lan = cfg.lan.address.trunc();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, f) in cfg.port_forwards.iter().enumerate() {
        let at = |field: &str| format!("port_forwards[{i}].{field}");
        if f.name.is_empty()
            || f.name.len() > 24
            || !f
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errs.add(
                at("name"),
                format!("`{}` must be 1 to 24 letters, digits, '-' or '_'", f.name),
            );
        }
        if let Some(first) = names.insert(&f.name, i) {
            errs.add(
                at("name"),
                format!("`{}` is already port_forwards[{first}]", f.name),
            );
        }
        if f.protocol == Protocol::Icmp {
            errs.add(at("protocol"), "must be \"tcp\" or \"udp\"");
        }
        match (f.family.has_ipv4(), f.to) {
            (true, None) => errs.add(at("to"), "required: the LAN host's IPv4 address"),
            (false, Some(_)) => errs.add(at("to"), "only with family \"ipv4\" or \"both\""),
            (true, Some(to)) => {
                if !lan.contains(&to)
                    || to == cfg.lan.address.addr()
                    || to == lan.network()
                    || to == lan.broadcast()
                {
                    errs.add(at("to"), format!("{to} is not a host of the LAN {lan}"));
                }
            }
            (false, None) => {}
        }
        if f.to_port.is_some() && f.wan_port.first != f.wan_port.last {
            errs.add(
                at("to_port"),
                "only a single wan_port can be mapped to another port",
            );
        }
        if f.to_port == Some(0) {
            errs.add(at("to_port"), "0 is not a port");
        }
        for (j, w) in f.wans.iter().enumerate() {
            if !cfg.wan_interfaces.iter().any(|x| &x.name == w) {
                errs.add(
                    format!("port_forwards[{i}].wans[{j}]"),
                    format!("`{w}` is not one of wan_interfaces"),
                );
            }
        }
        for (j, g) in cfg.port_forwards[..i].iter().enumerate() {
            let overlap = g.protocol == f.protocol
                && g.wan_port.first <= f.wan_port.last
                && f.wan_port.first <= g.wan_port.last
                && (g.wans.is_empty()
                    || f.wans.is_empty()
                    || g.wans.iter().any(|w| f.wans.contains(w)));
            if overlap {
                errs.add(
                    at("wan_port"),
                    format!(
                        "{} {} overlaps port_forwards[{j}]",
                        f.protocol.nft_name(),
                        f.wan_port
                    ),
                );
            }
        }
    }
}
