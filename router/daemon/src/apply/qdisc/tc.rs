//! [`ShapingDriver`] through the `tc` and `ip` binaries. Not rtnetlink, as routes are: the
//! rtnetlink crate has no CAKE (or tbf) options and no tc actions (mirred), and tc's own
//! option parsing is the reference users compare with. A sync reads the state with a few
//! `-j` listings, then runs only the commands that change something.

use super::observe::{self, Observed};
use super::{ShapingDriver, ShapingOutcome};
use routeros_shared::plan::shaping::{shell_line, ShapedLine, Shaper};
use std::process::Stdio;
use tokio::process::Command;

/// `tc`/`ip` with the shaper this box uses (CAKE; tbf in the lab, whose kernel has no CAKE).
#[derive(Debug, Default)]
pub struct TcShaping {
    shaper: Shaper,
    /// The kernel was found to have CAKE (it does not lose it: asked once).
    cake_seen: bool,
}

impl TcShaping {
    pub fn new(shaper: Shaper) -> Self {
        Self {
            shaper,
            cake_seen: false,
        }
    }

    /// The kernel's shaping state on the devices a sync looks at.
    async fn observe(
        &self,
        lines: &[ShapedLine],
        configured: &[String],
    ) -> Result<Observed, String> {
        let links = observe::parse_links(&run(&["ip", "-j", "-d", "link", "show"]).await?);
        let mut obs = Observed::default();
        for dev in observe::devices_to_read(lines, configured, &links) {
            // A device that vanished between the listings (a PPPoE session ending) has
            // nothing of ours any more: read as empty.
            let q = observe::parse_qdiscs(
                &run(&["tc", "-j", "qdisc", "show", "dev", &dev])
                    .await
                    .unwrap_or_default(),
            );
            if q.ingress {
                let f = run(&["tc", "-j", "filter", "show", "dev", &dev, "parent", "ffff:"])
                    .await
                    .unwrap_or_default();
                obs.filters.insert(dev.clone(), observe::parse_filters(&f));
            }
            obs.qdiscs.insert(dev, q);
        }
        obs.links = links;
        Ok(obs)
    }
}

/// Run one command; its stdout, or why it failed (the command and its stderr).
async fn run(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

async fn run_all(cmds: &[Vec<String>], ran: &mut Vec<String>) -> Result<(), String> {
    for c in cmds {
        let argv: Vec<&str> = c.iter().map(String::as_str).collect();
        ran.push(shell_line(c));
        run(&argv).await?;
    }
    Ok(())
}

impl ShapingDriver for TcShaping {
    async fn sync(&mut self, lines: &[ShapedLine], configured: &[String]) -> ShapingOutcome {
        let mut out = ShapingOutcome::default();
        let obs = match self.observe(lines, configured).await {
            Ok(obs) => obs,
            Err(e) => {
                for l in lines {
                    out.failed.insert(l.wan.clone(), e.clone());
                }
                out.removal_errors.push(e);
                return out;
            }
        };
        let changes = observe::changes(lines, configured, &obs, self.shaper);
        // Removals first: a line whose device changed frees its ifb's redirect before the
        // new one is made.
        for c in &changes.removals {
            if let Err(e) = run_all(std::slice::from_ref(c), &mut out.ran).await {
                out.removal_errors.push(e);
            }
        }
        for line in changes.lines {
            if let Some(dev) = line.missing_device {
                out.failed
                    .insert(line.wan, format!("its device {dev} does not exist"));
                continue;
            }
            if let Err(e) = run_all(&line.commands, &mut out.ran).await {
                out.failed.insert(line.wan, e);
            }
        }
        out
    }

    async fn has_cake(&mut self) -> Result<bool, String> {
        if self.cake_seen {
            return Ok(true);
        }
        let found = probe_cake().await?;
        self.cake_seen = found;
        Ok(found)
    }
}

/// Ask the kernel itself, by creating a CAKE qdisc (module autoloading works as for a real
/// apply): on the loopback of a network namespace made for it and gone with the process, so
/// nothing of the box is touched; without root, in a user namespace of its own. Where no
/// namespace may be made (the daemon's systemd sandbox: RestrictNamespaces, no
/// CAP_SYS_ADMIN), on a throwaway ifb device here, deleted at once.
pub async fn probe_cake() -> Result<bool, String> {
    let ns: &[&str] = if nix::unistd::geteuid().is_root() {
        &["unshare", "--net"]
    } else {
        &["unshare", "--user", "--map-root-user", "--net"]
    };
    let argv: Vec<&str> = ns.iter().chain(&CAKE_ON_LO).copied().collect();
    match run(&argv).await {
        Ok(_) => Ok(true),
        Err(e) if says_no_cake(&e) => Ok(false),
        Err(ns_err) => probe_here()
            .await
            .map_err(|e| format!("cannot tell whether this kernel has CAKE: {ns_err}; {e}")),
    }
}

const CAKE_ON_LO: [&str; 9] = [
    "tc",
    "qdisc",
    "add",
    "dev",
    "lo",
    "root",
    "cake",
    "bandwidth",
    "1mbit",
];

/// The throwaway device of [`probe_here`] (a name no line or ifb of ours can have).
const PROBE_DEV: &str = "rtos-cakeprobe";

async fn probe_here() -> Result<bool, String> {
    // One left by a probe that was killed half-way goes first.
    let _ = run(&["ip", "link", "del", "dev", PROBE_DEV]).await;
    run(&["ip", "link", "add", "name", PROBE_DEV, "type", "ifb"]).await?;
    let made = run(&[
        "tc",
        "qdisc",
        "add",
        "dev",
        PROBE_DEV,
        "root",
        "cake",
        "bandwidth",
        "1mbit",
    ])
    .await;
    let _ = run(&["ip", "link", "del", "dev", PROBE_DEV]).await;
    match made {
        Ok(_) => Ok(true),
        Err(e) if says_no_cake(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// tc's answer when the kernel has no such qdisc (or tc itself does not know CAKE).
fn says_no_cake(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("qdisc kind is unknown")
        || s.contains("unknown qdisc")
        || s.contains("qdisc not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcs_refusals_of_an_unknown_qdisc_are_told_apart() {
        assert!(says_no_cake(
            "`unshare --net tc qdisc add dev lo root cake` failed: Error: Specified qdisc kind is unknown."
        ));
        assert!(says_no_cake(
            "Unknown qdisc \"cake\", hence option \"bandwidth\" is unparsable"
        ));
        assert!(!says_no_cake(
            "unshare: unshare failed: Operation not permitted"
        ));
    }
}
