//! How long a line waits before pppd is started again.
//!
//! Failures in a row double the wait (1, 2, 4, ... 30 s). A refused login waits much
//! longer and doubles too (1, 2, 4 ... 15 min): ISPs lock accounts that retry a bad
//! password quickly, and a wrong password does not fix itself (a config change restarts
//! the line at once). A session that stayed up a while was a success: the count restarts.

use std::time::Duration;

use super::session::SessionState;

/// The retry policy (durations are parameters so tests run in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure; doubled for each further one in a row.
    pub base: Duration,
    pub max: Duration,
    /// Wait after the first refused login; doubled for each further one in a row.
    pub auth_failed: Duration,
    pub auth_failed_max: Duration,
    /// A session up at least this long resets the failure count.
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            auth_failed: Duration::from_secs(60),
            auth_failed_max: Duration::from_secs(15 * 60),
            stable_after: Duration::from_secs(60),
        }
    }
}

/// Failures in a row of one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retry {
    failures: u32,
    auth_failures: u32,
}

impl Retry {
    /// A run ended in `outcome` after its session was up for `up_for` (None: never up);
    /// returns the wait before the next run.
    pub fn after_exit(
        &mut self,
        policy: &Backoff,
        outcome: &SessionState,
        up_for: Option<Duration>,
    ) -> Duration {
        if let Some(up_for) = up_for {
            // Logged in: the password is good.
            self.auth_failures = 0;
            if up_for >= policy.stable_after {
                self.failures = 0;
            }
        }
        self.failures = self.failures.saturating_add(1);
        if matches!(outcome, SessionState::AuthFailed { .. }) {
            self.auth_failures = self.auth_failures.saturating_add(1);
            doubled(
                policy.auth_failed,
                self.auth_failures,
                policy.auth_failed_max,
            )
        } else {
            doubled(policy.base, self.failures, policy.max)
        }
    }
}

/// `first * 2^(n-1)`, at most `max` (also the HA engines' restart wait).
pub fn doubled(first: Duration, n: u32, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> SessionState {
        SessionState::Down {
            last_error: "x".into(),
        }
    }

    fn auth() -> SessionState {
        SessionState::AuthFailed {
            last_error: "authentication failed".into(),
        }
    }

    fn secs(waits: &[Duration]) -> Vec<u64> {
        waits.iter().map(Duration::as_secs).collect()
    }

    #[test]
    fn failures_double_up_to_the_cap() {
        let (p, mut r) = (Backoff::default(), Retry::default());
        let waits: Vec<_> = (0..8).map(|_| r.after_exit(&p, &down(), None)).collect();
        assert_eq!(secs(&waits), [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn refused_logins_wait_long_and_double_to_fifteen_minutes() {
        let (p, mut r) = (Backoff::default(), Retry::default());
        let waits: Vec<_> = (0..6).map(|_| r.after_exit(&p, &auth(), None)).collect();
        assert_eq!(secs(&waits), [60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn a_stable_session_starts_the_count_over() {
        let (p, mut r) = (Backoff::default(), Retry::default());
        for _ in 0..4 {
            r.after_exit(&p, &down(), None);
        }
        let short = Some(Duration::from_secs(5));
        assert_eq!(r.after_exit(&p, &down(), short), Duration::from_secs(16));
        let long = Some(Duration::from_secs(3600));
        assert_eq!(r.after_exit(&p, &down(), long), Duration::from_secs(1));
    }

    #[test]
    fn a_session_that_came_up_clears_refused_logins() {
        let (p, mut r) = (Backoff::default(), Retry::default());
        r.after_exit(&p, &auth(), None);
        r.after_exit(&p, &auth(), None);
        r.after_exit(&p, &down(), Some(Duration::from_secs(1)));
        assert_eq!(r.after_exit(&p, &auth(), None), Duration::from_secs(60));
    }

    #[test]
    fn huge_counts_saturate() {
        assert_eq!(
            doubled(Duration::from_secs(1), 200, Duration::from_secs(30)),
            Duration::from_secs(30)
        );
    }
}
