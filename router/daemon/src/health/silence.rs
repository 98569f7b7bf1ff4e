//! The passive failure signal: a line that keeps carrying packets out for connections that
//! get no reply, while not one reply comes in, has probably gone silent upstream. Fed with the
//! table's per-WAN counters (`plan::silence`); the supervisor then probes that line at once
//! instead of waiting for its next slow round, and the probes decide.

use std::collections::HashMap;

/// Unanswered packets since the last reading that make a line suspect: a few, so one stray
/// packet (a late retransmission of a closed connection) does not start fast probing.
pub const MIN_UNREPLIED: u64 = 3;

/// The last reading of each WAN's counters.
#[derive(Debug, Default)]
pub struct SilenceDetector {
    last: HashMap<String, (u64, u64)>,
}

impl SilenceDetector {
    /// Feed `wan`'s counters (unreplied packets out, reply packets in, both since the table
    /// was loaded); true when since the last reading at least [`MIN_UNREPLIED`] packets went
    /// out unanswered and no reply came in. Counters lower than before (a new table) start
    /// over without a verdict.
    pub fn silent(&mut self, wan: &str, unreplied: u64, replies: u64) -> bool {
        let Some((u0, r0)) = self.last.insert(wan.to_string(), (unreplied, replies)) else {
            return false;
        };
        if unreplied < u0 || replies < r0 {
            return false;
        }
        unreplied - u0 >= MIN_UNREPLIED && replies == r0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_packets_without_replies_are_silence() {
        let mut d = SilenceDetector::default();
        assert!(!d.silent("wan1", 10, 50), "the first reading is a baseline");
        assert!(!d.silent("wan1", 12, 50), "two packets are not enough");
        assert!(d.silent("wan1", 15, 50), "three more, no reply");
        assert!(
            !d.silent("wan1", 40, 51),
            "a reply came in: the line answers"
        );
        assert!(!d.silent("wan1", 40, 51), "nothing sent");
        assert!(!d.silent("wan1", 2, 0), "a new table: start over");
        assert!(d.silent("wan1", 9, 0));
        assert!(!d.silent("wan2", 100, 0), "per WAN");
    }
}
