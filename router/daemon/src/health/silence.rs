//! The passive failure signal: a line that keeps carrying packets out for connections that
//! get no reply, while not one reply comes in, has probably gone silent upstream. Fed with the
//! table's per-WAN counters (`plan::silence`); the supervisor then probes that line at once
//! instead of waiting for its next slow round, and the probes decide.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Packets out since the last reading, with no reply in, that make a line suspect: a few, so
/// one stray packet (a late retransmission of a closed connection) does not start fast probing.
pub const MIN_SENT: u64 = 3;

/// A line whose traffic went unanswered without having been answered just before (one-way
/// traffic, or new connections on a line that was idle) is called silent at most this often:
/// a one-way stream on a healthy line must not keep it probed at every reading. A line that
/// was answering and stopped is called silent at once, every time.
pub const HOLDOFF: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Reading {
    sent: u64,
    replies: u64,
    /// Replies came in between the previous reading and this one.
    answered: bool,
    alarmed_at: Option<Instant>,
}

/// The last reading of each WAN's counters.
#[derive(Debug, Default)]
pub struct SilenceDetector {
    last: HashMap<String, Reading>,
}

impl SilenceDetector {
    /// Feed `wan`'s counters (packets out, reply packets in, both since the table was
    /// loaded) read at `now`; true when since the last reading at least [`MIN_SENT`] packets
    /// went out and no reply came in, and the line was answering until then or has not been
    /// called silent for [`HOLDOFF`]. Counters lower than before (a new table) start over
    /// without a verdict.
    pub fn silent(&mut self, wan: &str, sent: u64, replies: u64, now: Instant) -> bool {
        let fresh = Reading {
            sent,
            replies,
            answered: false,
            alarmed_at: None,
        };
        let Some(last) = self.last.get_mut(wan) else {
            self.last.insert(wan.to_string(), fresh);
            return false;
        };
        if sent < last.sent || replies < last.replies {
            *last = fresh;
            return false;
        }
        let (went_out, came_in) = (sent - last.sent, replies - last.replies);
        let was_answering = last.answered;
        (last.sent, last.replies, last.answered) = (sent, replies, came_in > 0);
        if went_out < MIN_SENT || came_in > 0 {
            return false;
        }
        let quiet_long = last
            .alarmed_at
            .is_none_or(|at| now.duration_since(at) >= HOLDOFF);
        if was_answering || quiet_long {
            last.alarmed_at = Some(now);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_packets_without_replies_are_silence() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = SilenceDetector::default();
        assert!(
            !d.silent("wan1", 10, 50, at(0)),
            "the first reading is a baseline"
        );
        assert!(
            !d.silent("wan1", 12, 50, at(200)),
            "two packets are not enough"
        );
        assert!(d.silent("wan1", 15, 50, at(400)), "three more, no reply");
        assert!(
            !d.silent("wan1", 40, 51, at(600)),
            "a reply came in: the line answers"
        );
        assert!(!d.silent("wan1", 40, 51, at(800)), "nothing sent");
        assert!(!d.silent("wan1", 2, 0, at(1000)), "a new table: start over");
        assert!(!d.silent("wan2", 100, 0, at(1000)), "per WAN");
    }

    #[test]
    fn one_way_traffic_is_called_silent_only_now_and_then() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = SilenceDetector::default();
        d.silent("wan1", 0, 0, at(0));
        // A stream nobody answers: once, then not again before the hold-off.
        assert!(d.silent("wan1", 10, 0, at(200)));
        assert!(!d.silent("wan1", 20, 0, at(400)));
        assert!(!d.silent("wan1", 30, 0, at(2000)));
        assert!(d.silent("wan1", 40, 0, at(2200)), "hold-off over");
        // Answered traffic that stops answering: at once, hold-off or not.
        assert!(!d.silent("wan1", 50, 5, at(2400)));
        assert!(d.silent("wan1", 60, 5, at(2600)));
        assert!(!d.silent("wan1", 70, 9, at(2800)));
        assert!(d.silent("wan1", 80, 9, at(3000)));
    }
}
