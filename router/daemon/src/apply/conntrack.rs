//! Deleting the conntrack entries of one WAN, and only those.
//!
//! Every WAN owns a conntrack mark under [`MARK_MASK`](routeros_shared::plan::MARK_MASK) (0x100, 0x200,
//! ...). When a WAN fails, the connections carrying its mark are deleted so LAN clients
//! reconnect through a healthy WAN; connections of the other WANs are never touched (peers
//! flush the whole table on failover, which kills every healthy connection).
//!
//! # Mark semantics
//! An entry matches `(mark, mask)` when `(ctmark & mask) == mark`, the same rule as the
//! kernel's `CTA_MARK`/`CTA_MARK_MASK` filter and `conntrack -m MARK/MASK`. Bits outside the
//! mask are ignored: with `(0x100, 0xff00)`, ctmark 0x100 and 0x1_0142 match, 0x1100 and
//! 0x200 do not (0x1100 is WAN 0x11's mark, not WAN 0x1's with extra bits).
//!
//! # Refusals
//! Both drivers refuse, before talking to the kernel, a mask of 0 (it matches every entry),
//! a mark with bits outside the mask (it can never match, and is always a caller bug), and,
//! for [`ConntrackDriver::flush_mark`] only, mark 0 (no WAN owns it: it would delete every
//! unmarked connection, i.e. nearly a full flush). See [`check_filter`].
//!
//! Two implementations: [`ConntrackNetlink`] (ctnetlink through netlink-packet-netfilter,
//! the default) and [`ConntrackCli`] (the `conntrack` binary of conntrack-tools), which is a
//! fallback behind the same trait.

mod cli;
mod netlink;

pub use cli::ConntrackCli;
pub use netlink::ConntrackNetlink;

use super::ApplyError;
use routeros_shared::plan::Family;

/// The conntrack entries of one mark.
#[allow(async_fn_in_trait)]
pub trait ConntrackDriver {
    /// Delete every entry whose `(ctmark & mask) == mark`, of `family` (`None`: both), and
    /// return how many were deleted. Entries of any other mark are never touched. Refuses
    /// `mask == 0`, `mark & !mask != 0` and `mark == 0` without touching the kernel.
    async fn flush_mark(
        &mut self,
        mark: u32,
        mask: u32,
        family: Option<Family>,
    ) -> Result<usize, ApplyError>;

    /// How many entries have `(ctmark & mask) == mark` now, in both address families.
    /// Refuses `mask == 0` and `mark & !mask != 0`; mark 0 (unmarked entries) is allowed.
    async fn count_mark(&mut self, mark: u32, mask: u32) -> Result<usize, ApplyError>;
}

/// What a mark/mask pair is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Deleting: mark 0 is refused too.
    Flush,
    /// Counting: mark 0 is allowed.
    Count,
}

/// Refuse mark/mask pairs that would delete (or count) more than one WAN's entries, or
/// that can match nothing. Every driver calls this before it talks to the kernel.
pub fn check_filter(mark: u32, mask: u32, purpose: Purpose) -> Result<(), ApplyError> {
    let why = if mask == 0 {
        "mask 0 matches every entry"
    } else if mark & !mask != 0 {
        "the mark has bits outside the mask"
    } else if mark == 0 && purpose == Purpose::Flush {
        "mark 0 belongs to no WAN: it would delete every unmarked connection"
    } else {
        return Ok(());
    };
    Err(ConntrackError::Refused { mark, mask, why }.into())
}

/// True when an entry with conntrack mark `ctmark` belongs to `(mark, mask)`.
pub fn mark_matches(ctmark: u32, mark: u32, mask: u32) -> bool {
    ctmark & mask == mark
}

/// Why deleting or counting conntrack entries failed.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// A filter that could touch more than one WAN's entries (see [`check_filter`]).
    #[error("refusing mark {mark:#x}/{mask:#x}: {why}")]
    Refused {
        mark: u32,
        mask: u32,
        why: &'static str,
    },
    #[error("no tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// The socket, or the kernel's answer to a request: `source` holds the errno.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The `conntrack` tool ran and gave no count: its exit status and stderr (trimmed).
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// A message that does not parse, or an exchange that went wrong (short send, a
    /// truncated datagram).
    #[error("{0}")]
    Protocol(String),
}

impl ConntrackError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| ConntrackError::Io { what, source }
    }

    /// The kernel's error reply `errno` (positive) to `what`.
    fn errno(what: impl Into<String>, errno: i32) -> Self {
        Self::io(what)(std::io::Error::from_raw_os_error(errno))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_could_flush_more_than_one_wan() {
        for purpose in [Purpose::Flush, Purpose::Count] {
            assert!(check_filter(0x100, 0, purpose).is_err(), "mask 0");
            assert!(check_filter(0, 0, purpose).is_err(), "mask 0, mark 0");
            assert!(
                check_filter(0x101, 0xff00, purpose).is_err(),
                "bit below mask"
            );
            assert!(
                check_filter(0x1_0100, 0xff00, purpose).is_err(),
                "bit above mask"
            );
            assert!(check_filter(0x100, 0xff00, purpose).is_ok());
            assert!(check_filter(0xff00, 0xff00, purpose).is_ok());
            assert!(check_filter(1, u32::MAX, purpose).is_ok());
        }
        assert!(check_filter(0, 0xff00, Purpose::Flush).is_err());
        assert!(check_filter(0, 0xff00, Purpose::Count).is_ok());
        let err = check_filter(0x100, 0, Purpose::Flush).unwrap_err();
        assert!(matches!(
            err,
            ApplyError::Conntrack(ConntrackError::Refused {
                mark: 0x100,
                mask: 0,
                ..
            })
        ));
        let msg = err.to_string();
        assert!(msg.contains("refusing mark 0x100/0x0"), "{msg}");
    }

    #[test]
    fn mask_compares_only_the_bits_under_it() {
        assert!(mark_matches(0x100, 0x100, 0xff00));
        assert!(mark_matches(0x1_0142, 0x100, 0xff00));
        assert!(!mark_matches(0x1100, 0x100, 0xff00));
        assert!(!mark_matches(0x200, 0x100, 0xff00));
        assert!(!mark_matches(0, 0x100, 0xff00));
        assert!(mark_matches(0x42, 0, 0xff00));
    }
}
