//! One probe round: every target pinged once, concurrently.

use std::net::IpAddr;
use std::time::Duration;

/// Outcome of one probe round through one WAN: one entry per target, in probe order,
/// with the echo-reply RTT or `None` when the target did not answer in time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Round {
    pub replies: Vec<(IpAddr, Option<Duration>)>,
}

impl Round {
    /// From (target, RTT) pairs of either family (one round probes one family).
    pub fn new<A: Into<IpAddr>>(replies: Vec<(A, Option<Duration>)>) -> Self {
        Self {
            replies: replies
                .into_iter()
                .map(|(a, rtt)| (a.into(), rtt))
                .collect(),
        }
    }

    /// A round in which no target answered (no socket, no interface).
    pub fn all_lost<A: Into<IpAddr> + Copy>(targets: &[A]) -> Self {
        Self::new(targets.iter().map(|&t| (t, None)).collect())
    }

    /// Probes sent (= targets).
    pub fn sent(&self) -> usize {
        self.replies.len()
    }

    /// Targets that answered.
    pub fn answered(&self) -> usize {
        self.replies.iter().filter(|(_, rtt)| rtt.is_some()).count()
    }

    /// Lost probes.
    pub fn lost(&self) -> usize {
        self.sent() - self.answered()
    }

    /// Mean RTT of the targets that answered, in milliseconds.
    pub fn mean_rtt_ms(&self) -> Option<f64> {
        let rtts: Vec<f64> = self
            .replies
            .iter()
            .filter_map(|(_, rtt)| rtt.map(|d| d.as_secs_f64() * 1000.0))
            .collect();
        (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64)
    }

    /// At least `reliability` targets answered (a round with no targets never succeeds).
    pub fn succeeded(&self, reliability: u32) -> bool {
        self.answered() >= reliability.max(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(203, 0, 113, last)
    }

    #[test]
    fn counts_mean_and_reliability() {
        let r = Round::new(vec![
            (ip(1), Some(Duration::from_millis(10))),
            (ip(2), None),
            (ip(3), Some(Duration::from_millis(30))),
        ]);
        assert_eq!((r.sent(), r.answered(), r.lost()), (3, 2, 1));
        assert_eq!(r.mean_rtt_ms(), Some(20.0));
        assert!(r.succeeded(2));
        assert!(!r.succeeded(3));
    }

    #[test]
    fn empty_and_lost_rounds_fail() {
        assert!(!Round::default().succeeded(1));
        let lost = Round::all_lost(&[ip(1), ip(2)]);
        assert_eq!((lost.sent(), lost.answered()), (2, 0));
        assert_eq!(lost.mean_rtt_ms(), None);
        assert!(!lost.succeeded(1));
    }
}
