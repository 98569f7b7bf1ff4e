//! `conntrack` (conntrack-tools) implementation of [`ConntrackDriver`]: the fallback for
//! machines where ctnetlink from Rust is not wanted. `conntrack -D -m MARK/MASK` dumps the
//! matching entries and deletes them one by one, both address families (checked with
//! conntrack-tools 1.4.7). The command runs in the network namespace of the thread that
//! spawns it, which on a multi-thread runtime is any worker: fine for the daemon (one
//! namespace), a trap for namespace tests (use a current-thread runtime there).

use tokio::process::Command;

use super::{check_filter, ConntrackDriver, ConntrackError, Purpose};
use crate::apply::ApplyError;
use routeros_shared::plan::Family;

/// Drives the `conntrack` binary.
#[derive(Debug, Clone)]
pub struct ConntrackCli {
    program: String,
}

impl Default for ConntrackCli {
    fn default() -> Self {
        Self::new()
    }
}

impl ConntrackCli {
    /// Use `conntrack` from `PATH`.
    pub fn new() -> Self {
        Self::with_program("conntrack")
    }

    /// Use another binary (a full path, or a wrapper).
    pub fn with_program(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// Run `conntrack COMMAND -m MARK/MASK` and return the N of its closing
    /// "N flow entries have been VERB." line. conntrack exits 1 when nothing matched, so
    /// the line, not the exit status, is the verdict.
    async fn run(
        &self,
        command: &str,
        mark: u32,
        mask: u32,
        family: Option<Family>,
        verb: &str,
    ) -> Result<usize, ApplyError> {
        let filter = format!("{mark:#x}/{mask:#x}");
        // One run per family, so one family can be flushed alone.
        let families: &[&str] = match family {
            None => &["ipv4", "ipv6"],
            Some(Family::V4) => &["ipv4"],
            Some(Family::V6) => &["ipv6"],
        };
        let mut total = 0;
        for f in families {
            total += self.run_one(command, &filter, f, verb).await?;
        }
        Ok(total)
    }

    async fn run_one(
        &self,
        command: &str,
        filter: &str,
        family: &str,
        verb: &str,
    ) -> Result<usize, ApplyError> {
        let out = Command::new(&self.program)
            .args([command, "-m", filter, "-f", family])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(ConntrackError::io(format!("spawn {}", self.program)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        parse_count(&stderr, verb).ok_or_else(|| {
            ConntrackError::Tool {
                command: format!("{} {command} -m {filter} -f {family}", self.program),
                status: out.status,
                stderr: stderr.trim().to_string(),
            }
            .into()
        })
    }
}

/// Find "N flow entries have been VERB." in conntrack's stderr.
fn parse_count(stderr: &str, verb: &str) -> Option<usize> {
    let tail = format!(" flow entries have been {verb}.");
    stderr.lines().find_map(|line| {
        let head = line.trim().strip_suffix(&tail)?;
        head.rsplit(' ').next()?.parse().ok()
    })
}

impl ConntrackDriver for ConntrackCli {
    async fn flush_mark(
        &mut self,
        mark: u32,
        mask: u32,
        family: Option<Family>,
    ) -> Result<usize, ApplyError> {
        check_filter(mark, mask, Purpose::Flush)?;
        self.run("-D", mark, mask, family, "deleted").await
    }

    async fn count_mark(&mut self, mark: u32, mask: u32) -> Result<usize, ApplyError> {
        check_filter(mark, mask, Purpose::Count)?;
        self.run("-L", mark, mask, None, "shown").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_closing_line() {
        let deleted = "conntrack v1.4.7 (conntrack-tools): 12 flow entries have been deleted.\n";
        assert_eq!(parse_count(deleted, "deleted"), Some(12));
        assert_eq!(parse_count(deleted, "shown"), None);
        let none = "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n";
        assert_eq!(parse_count(none, "deleted"), Some(0));
        let shown = "conntrack v1.4.8 (conntrack-tools): 3 flow entries have been shown.";
        assert_eq!(parse_count(shown, "shown"), Some(3));
        let err = "conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted\n";
        assert_eq!(parse_count(err, "deleted"), None);
    }
}
