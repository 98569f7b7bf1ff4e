//! The pppd options file of one PPPoE line.
//!
//! Checked against the `ppp` packages of Ubuntu 24.04 (noble, 2.4.9-1+1.1ubuntu4) and
//! Debian 12 (bookworm, 2.4.9-1+1.1): both ship the PPPoE plugin as
//! `/usr/lib/pppd/2.4.9/pppoe.so` with `rp-pppoe.so` as a compatibility symlink, and name
//! its options `pppoe-service`, `pppoe-ac`, ... with `rp_pppoe_*` kept as legacy aliases.
//! We name the plugin `pppoe.so` without a directory (pppd looks in its own versioned
//! plugin directory) and use the new option names: both are what ppp 2.5 keeps, so the
//! file survives the distribution's move to 2.5.
//!
//! The password goes into this file (pppd's `password` option, which pppd uses for PAP and
//! CHAP/MS-CHAP alike when it authenticates itself), not onto the command line (`ps` shows
//! that) nor into `/etc/ppp/{pap,chap}-secrets`: those are shared system files that the
//! administrator and other packages also write, one per protocol, so we would have to merge
//! and lock them; a file per line that only the daemon writes is replaced atomically and
//! removed with the line. It is written mode 0600 in a 0700 directory by the daemon (root).
//!
//! pppd also reads `/etc/ppp/options` first (Debian's sets `auth`, `lock`,
//! `lcp-echo-interval 30`, ...); everything here comes later and wins.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use routeros_shared::config::interface_name_problem;

use super::PppoeLine;

/// The kernel-mode PPPoE plugin of the distribution's pppd (2.4.9 and 2.5).
pub const PLUGIN: &str = "pppoe.so";
/// An LCP echo every second, three unanswered ones end the session: a dead line is noticed
/// within about 3 s even when the server never says goodbye (PADT).
pub const LCP_ECHO_INTERVAL_S: u32 = 1;
pub const LCP_ECHO_FAILURE: u32 = 3;
/// pppd keeps user names and passwords in 256-byte C buffers (MAXNAMELEN, MAXSECRETLEN)
/// and would cut longer ones silently.
const MAX_SECRET_BYTES: usize = 255;
/// pppd's smallest MRU; 1500 is the most an Ethernet frame carries (more needs RFC 4638).
const MTU_RANGE: std::ops::RangeInclusive<u16> = 128..=1500;

/// A line pppd could not be given as it is: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PPPoE line {wan}: {field}: {reason}")]
pub struct LineError {
    pub wan: String,
    pub field: &'static str,
    pub reason: String,
}

/// Everything [`render_options`] needs to hold: names the kernel and pppd accept, secrets
/// pppd does not cut, an MTU in range. The config's validation comes first; this guards the
/// file format whatever the caller passes.
pub fn validate_line(line: &PppoeLine) -> Result<(), LineError> {
    let err = |field, reason: String| LineError {
        wan: line.wan.clone(),
        field,
        reason,
    };
    for (field, name) in [
        ("wan", &line.wan),
        ("port", &line.port),
        ("ifname", &line.ifname),
    ] {
        if let Some(problem) = interface_name_problem(name) {
            return Err(err(field, problem));
        }
    }
    if line.ifname == line.port {
        return Err(err("ifname", "must differ from the port".into()));
    }
    let secrets = [
        ("username", Some(&line.username)),
        ("password", Some(&line.password)),
        ("service_name", line.service_name.as_ref()),
    ];
    for (field, value) in secrets {
        let Some(value) = value else { continue };
        if value.is_empty() && field != "service_name" {
            return Err(err(field, "must not be empty".into()));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(err(field, format!("longer than {MAX_SECRET_BYTES} bytes")));
        }
        if value.contains('\0') {
            return Err(err(field, "contains a NUL character".into()));
        }
    }
    if !MTU_RANGE.contains(&line.mtu) {
        let (lo, hi) = (MTU_RANGE.start(), MTU_RANGE.end());
        return Err(err("mtu", format!("{} is not in {lo}..={hi}", line.mtu)));
    }
    Ok(())
}

/// The options file for one line (pppd is started as `pppd file <this file>`).
pub fn render_options(line: &PppoeLine) -> Result<String, LineError> {
    validate_line(line)?;
    let mut out = String::new();
    let mut opt = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    opt(&format!(
        "# PPPoE line of WAN {}, written by routeros-watchdog: do not edit.",
        line.wan
    ));
    opt("# Mode 0600: it holds the password. Routes, DNS and restarts are the daemon's,");
    opt("# so no defaultroute, usepeerdns or persist.");
    opt(&format!("plugin {PLUGIN}"));
    // "nic-" tells the plugin the word is a network interface, not a tty.
    opt(&format!("nic-{}", line.port));
    opt(&format!("ifname {}", line.ifname));
    opt(&format!("user {}", quoted(&line.username)));
    opt(&format!("password {}", quoted(&line.password)));
    opt("hide-password");
    if let Some(service) = &line.service_name {
        opt(&format!("pppoe-service {}", quoted(service)));
    }
    // We do not ask the ISP to authenticate itself.
    opt("noauth");
    // Stay in the foreground, log to stdout (the supervisor reads it), one attempt per run.
    opt("nodetach");
    opt("logfd 1");
    opt("maxfail 1");
    opt("noipdefault");
    opt("nodefaultroute");
    // IPv6CP gives the session its link-local addresses; networkd does the rest of IPv6 over
    // it (router advertisements, DHCPv6: lines::networkd). An ISP without IPv6 rejects the
    // protocol and the session carries on with IPv4.
    opt(if line.ipv6 { "+ipv6" } else { "noipv6" });
    opt(&format!("mtu {}", line.mtu));
    opt(&format!("mru {}", line.mtu));
    opt(&format!("lcp-echo-interval {LCP_ECHO_INTERVAL_S}"));
    opt(&format!("lcp-echo-failure {LCP_ECHO_FAILURE}"));
    // Echo only when the peer has been silent: a busy line is alive, whatever echo
    // replies a loaded access concentrator drops.
    opt("lcp-echo-adaptive");
    Ok(out)
}

/// A word for pppd's option reader: in double quotes, `"` and `\` escaped with a backslash
/// and control characters as three-digit octal escapes (`\012`), which it decodes.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write `text` to `path` readable by its owner only (the daemon: root), replacing any
/// previous file atomically; `path`'s directory is created mode 0700.
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no directory", path.display())))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // `create` keeps the mode of a directory that was already there.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let tmp = path.with_extension("tmp");
    // A leftover from a crash may have other permissions: never write into it.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn line() -> PppoeLine {
        PppoeLine {
            wan: "wan1".into(),
            port: "eth1".into(),
            ifname: "ppp-wan1".into(),
            username: "alice@isp.example".into(),
            password: "s3cret pass".into(),
            service_name: None,
            mtu: 1492,
            ipv6: true,
        }
    }

    #[test]
    fn golden_options() {
        insta::assert_snapshot!(render_options(&line()).unwrap());
    }

    #[test]
    fn golden_options_with_service_vlan_and_awkward_secrets() {
        let l = PppoeLine {
            wan: "wan2".into(),
            port: "eth2.7".into(),
            ifname: "ppp-wan2".into(),
            username: "user \"quoted\" #1".into(),
            password: "back\\slash\ttab\nnewline".into(),
            service_name: Some("fiber 7".into()),
            mtu: 1480,
            ipv6: false,
        };
        insta::assert_snapshot!(render_options(&l).unwrap());
    }

    #[test]
    fn quoting_escapes_what_pppd_decodes() {
        assert_eq!(quoted("plain"), "\"plain\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted("x\ny"), "\"x\\012y\"");
        // Octal escapes are always three digits, so a digit after one stays a digit.
        assert_eq!(quoted("\u{1}7"), "\"\\0017\"");
        assert_eq!(quoted("mot de passe é"), "\"mot de passe é\"");
    }

    #[test]
    fn no_option_the_daemon_owns() {
        let text = render_options(&line()).unwrap();
        let options: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for banned in [
            "defaultroute",
            "usepeerdns",
            "persist",
            "replacedefaultroute",
        ] {
            assert!(!options.contains(&banned), "{banned} rendered");
        }
        for wanted in [
            "nodetach",
            "noauth",
            "maxfail",
            "noipdefault",
            "hide-password",
        ] {
            assert!(options.contains(&wanted), "{wanted} missing");
        }
    }

    #[test]
    fn bad_lines_are_refused_naming_the_field() {
        type Breaker = fn(&mut PppoeLine);
        let cases: Vec<(Breaker, &str)> = vec![
            (|l| l.port = "eth 1".into(), "port"),
            (|l| l.port = String::new(), "port"),
            (|l| l.ifname = "ppp-a-very-long-name".into(), "ifname"),
            (|l| l.ifname = "eth1".into(), "ifname"),
            (|l| l.wan = "../x".into(), "wan"),
            (|l| l.username = String::new(), "username"),
            (|l| l.password = String::new(), "password"),
            (|l| l.password = "x".repeat(256), "password"),
            (|l| l.username = "a\0b".into(), "username"),
            (|l| l.service_name = Some("s\0".into()), "service_name"),
            (|l| l.mtu = 1501, "mtu"),
            (|l| l.mtu = 100, "mtu"),
        ];
        for (break_it, field) in cases {
            let mut l = line();
            break_it(&mut l);
            let err = render_options(&l).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().starts_with("PPPoE line "), "{err}");
        }
    }

    #[test]
    fn errors_never_quote_the_password() {
        let mut l = line();
        l.password = format!("{}\0", "p".repeat(10));
        let err = render_options(&l).unwrap_err();
        assert!(!err.to_string().contains("pppppppppp"), "{err}");
    }

    #[test]
    fn private_file_is_0600_in_a_0700_directory_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pppd").join("wan1.options");
        write_private(&path, "first\n").unwrap();
        write_private(&path, "second\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(!path.with_extension("tmp").exists());
    }
}
