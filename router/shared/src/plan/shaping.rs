//! Per-line shaping as the kernel should hold it, and the `ip`/`tc` commands that make it.
//!
//! Upload: CAKE as the root qdisc of the line's device. Download: packets arriving on the
//! device are redirected (ingress qdisc, a match-all `u32` filter, `mirred`) to the line's
//! ifb device, whose root CAKE (`ingress` mode) shapes them as they leave it. `u32` + `mirred`
//! rather than `matchall`: every kernel with ifb has them, some (this lab's) lack matchall.
//!
//! What is ours is marked so a restarted daemon adopts it and a removed line's shaping is
//! found again: the root qdisc's handle ([`SHAPER_HANDLE`]), the filter's preference
//! ([`REDIRECT_PREF`]) and the ifb's alias ([`ifb_alias`], naming the device it serves).

use crate::config::{ifb_device, Config};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Major handle of our root qdiscs (`6e78:`): a root qdisc with it is ours to change or delete.
pub const SHAPER_HANDLE: u16 = 0x6e78;

/// Preference of our redirect filter in a device's ingress qdisc.
pub const REDIRECT_PREF: u16 = 0x6e78;

/// Alias of our ifb devices, up to the device they take the download of.
pub const IFB_ALIAS_PREFIX: &str = "routeros shaping of ";

/// The alias that marks `ifb` as ours, taking `dev`'s download.
pub fn ifb_alias(dev: &str) -> String {
    format!("{IFB_ALIAS_PREFIX}{dev}")
}

/// One shaped line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapedLine {
    pub wan: String,
    /// The device its traffic uses (port, VLAN or ppp device): upload shaped here.
    pub dev: String,
    /// Its download is shaped leaving this ifb device.
    pub ifb: String,
    pub upload_kbit: u64,
    pub download_kbit: u64,
}

/// The qdisc that shapes. CAKE on routers; the token bucket exists for kernels without
/// CAKE, where the lab tests the redirect part with it (it has no tins, no fairness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shaper {
    #[default]
    Cake,
    Tbf,
}

impl Shaper {
    /// The qdisc kind as tc names it.
    pub fn kind(self) -> &'static str {
        match self {
            Shaper::Cake => "cake",
            Shaper::Tbf => "tbf",
        }
    }

    /// `tc qdisc` arguments after the kind, shaping to `kbit`; `ingress` for the download.
    fn options(self, kbit: u64, ingress: bool) -> Vec<String> {
        match self {
            // diffserv4: the tins our traffic classes' DSCP marks select (bulk, best
            // effort, video, voice). nat: CAKE looks the connection up in conntrack, so its
            // per-host fairness sees the LAN hosts behind our masquerade instead of one
            // public address (without it one host with many flows starves the others).
            // ingress: counts dropped packets as sent, right for shaping what arrives.
            Shaper::Cake => {
                let mut o = vec![
                    "bandwidth".into(),
                    format!("{kbit}kbit"),
                    "diffserv4".into(),
                    "nat".into(),
                ];
                if ingress {
                    o.push("ingress".into());
                }
                o
            }
            // A 10 ms bucket (at least a few full frames) and a 100 ms queue.
            Shaper::Tbf => vec![
                "rate".into(),
                format!("{kbit}kbit"),
                "burst".into(),
                format!("{}", (kbit * 1000 / 8 / 100).max(4 * 1514)),
                "latency".into(),
                "100ms".into(),
            ],
        }
    }
}

/// The lines `cfg` shapes, in config order.
pub fn shaped_lines(cfg: &Config) -> Vec<ShapedLine> {
    cfg.wan_interfaces
        .iter()
        .filter_map(|w| {
            let (download_kbit, upload_kbit) = w.shaped_kbit()?;
            Some(ShapedLine {
                wan: w.name.clone(),
                dev: w.device(),
                ifb: ifb_device(&w.name),
                upload_kbit,
                download_kbit,
            })
        })
        .collect()
}

/// One thing the kernel holds for a shaped line: the data the commands are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeStep {
    /// The ifb device, marked as ours and up.
    Ifb { ifb: String, of_dev: String },
    /// A root shaper on `dev` (`ingress`: it shapes a download).
    Root {
        dev: String,
        kbit: u64,
        ingress: bool,
    },
    /// The ingress qdisc that filters attach to.
    IngressQdisc { dev: String },
    /// Everything arriving on `dev` goes out of `ifb`.
    Redirect { dev: String, ifb: String },
}

impl ShapedLine {
    /// Everything this line needs, in the order it is created.
    pub fn steps(&self) -> Vec<ShapeStep> {
        vec![
            ShapeStep::Root {
                dev: self.dev.clone(),
                kbit: self.upload_kbit,
                ingress: false,
            },
            ShapeStep::Ifb {
                ifb: self.ifb.clone(),
                of_dev: self.dev.clone(),
            },
            ShapeStep::Root {
                dev: self.ifb.clone(),
                kbit: self.download_kbit,
                ingress: true,
            },
            ShapeStep::IngressQdisc {
                dev: self.dev.clone(),
            },
            ShapeStep::Redirect {
                dev: self.dev.clone(),
                ifb: self.ifb.clone(),
            },
        ]
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

impl ShapeStep {
    /// The commands that create (or, for a root shaper, change) it: program first.
    /// `tc qdisc replace` with our handle changes our shaper in place, or replaces
    /// whatever root qdisc the device had.
    pub fn commands(&self, shaper: Shaper) -> Vec<Vec<String>> {
        match self {
            ShapeStep::Ifb { ifb, of_dev } => vec![
                argv(&["ip", "link", "add", "name", ifb, "type", "ifb"]),
                argv(&["ip", "link", "set", "dev", ifb, "alias", &ifb_alias(of_dev)]),
                argv(&["ip", "link", "set", "dev", ifb, "up"]),
            ],
            ShapeStep::Root { dev, kbit, ingress } => {
                let handle = format!("{SHAPER_HANDLE:x}:");
                let mut c = argv(&[
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    dev,
                    "root",
                    "handle",
                    &handle,
                    shaper.kind(),
                ]);
                c.extend(shaper.options(*kbit, *ingress));
                vec![c]
            }
            ShapeStep::IngressQdisc { dev } => {
                vec![argv(&[
                    "tc", "qdisc", "add", "dev", dev, "handle", "ffff:", "ingress",
                ])]
            }
            ShapeStep::Redirect { dev, ifb } => vec![argv(&[
                "tc",
                "filter",
                "add",
                "dev",
                dev,
                "parent",
                "ffff:",
                "pref",
                &REDIRECT_PREF.to_string(),
                "protocol",
                "all",
                "u32",
                "match",
                "u32",
                "0",
                "0",
                "action",
                "mirred",
                "egress",
                "redirect",
                "dev",
                ifb,
            ])],
        }
    }

    /// The commands that remove it (the ingress qdisc only when our filter was its last).
    pub fn undo(&self) -> Vec<Vec<String>> {
        match self {
            ShapeStep::Ifb { ifb, .. } => vec![argv(&["ip", "link", "del", "dev", ifb])],
            ShapeStep::Root { dev, .. } => {
                vec![argv(&["tc", "qdisc", "del", "dev", dev, "root"])]
            }
            ShapeStep::IngressQdisc { dev } => {
                vec![argv(&[
                    "tc", "qdisc", "del", "dev", dev, "handle", "ffff:", "ingress",
                ])]
            }
            ShapeStep::Redirect { dev, .. } => vec![argv(&[
                "tc",
                "filter",
                "del",
                "dev",
                dev,
                "parent",
                "ffff:",
                "pref",
                &REDIRECT_PREF.to_string(),
            ])],
        }
    }
}

/// A command line as a shell would take it (for logs, errors and golden tests).
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for ShapedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: up {} kbit/s on {}, down {} kbit/s on {}",
            self.wan, self.upload_kbit, self.dev, self.download_kbit, self.ifb
        )
    }
}

/// Every line's commands, as `--print-plan` shows them and the golden test holds them.
pub fn render(lines: &[ShapedLine], shaper: Shaper) -> String {
    let mut out = String::new();
    for line in lines {
        out += &format!("# {line}\n");
        for step in line.steps() {
            for c in step.commands(shaper) {
                out += &shell_line(&c);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra_wan1: &str) -> Config {
        Config::from_toml(&format!(
            r#"
[[wan_interfaces]]
name = "wan1"
gateway = "192.0.2.1"
download_mbit = 100
upload_mbit = 20
{extra_wan1}

[[wan_interfaces]]
name = "eth9"
mode = "pppoe"
vlan = 7
download_mbit = 16
upload_mbit = 1.5
shaping = {{ enabled = true, overhead_percent = 10 }}
[wan_interfaces.pppoe]
username = "u"
password = "p"

[[wan_interfaces]]
name = "wan3"
gateway = "203.0.113.1"

[lan]
interface = "lan0"
address = "192.168.1.1/24"
"#
        ))
        .unwrap()
    }

    #[test]
    fn shaped_lines_follow_the_config() {
        let lines = shaped_lines(&cfg(""));
        assert_eq!(
            lines,
            [ShapedLine {
                wan: "eth9".into(),
                dev: "ppp-eth9".into(),
                ifb: "ifb-eth9".into(),
                upload_kbit: 1350,
                download_kbit: 14_400,
            }],
            "only the shaped line, on the device its traffic uses"
        );
        let both = shaped_lines(&cfg("shaping = { enabled = true }"));
        assert_eq!(both.len(), 2);
        assert_eq!(
            (both[0].upload_kbit, both[0].download_kbit),
            (19_000, 95_000)
        );
    }

    #[test]
    fn golden_cake_commands() {
        let lines = shaped_lines(&cfg("shaping = { enabled = true }"));
        insta::assert_snapshot!(render(&lines, Shaper::Cake));
    }

    #[test]
    fn tbf_shapes_the_same_way_for_kernels_without_cake() {
        let lines = shaped_lines(&cfg("shaping = { enabled = true }"));
        let root = &lines[0].steps()[0].commands(Shaper::Tbf)[0];
        assert_eq!(
            shell_line(root),
            "tc qdisc replace dev wan1 root handle 6e78: tbf rate 19000kbit burst 23750 latency 100ms"
        );
    }

    #[test]
    fn undo_removes_what_the_steps_made() {
        let line = &shaped_lines(&cfg(""))[0];
        let undo: Vec<String> = line
            .steps()
            .iter()
            .rev()
            .flat_map(|s| s.undo())
            .map(|c| shell_line(&c))
            .collect();
        assert_eq!(
            undo,
            [
                "tc filter del dev ppp-eth9 parent ffff: pref 28280",
                "tc qdisc del dev ppp-eth9 handle ffff: ingress",
                "tc qdisc del dev ifb-eth9 root",
                "ip link del dev ifb-eth9",
                "tc qdisc del dev ppp-eth9 root",
            ]
        );
    }
}
