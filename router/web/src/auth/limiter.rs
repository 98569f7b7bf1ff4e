//! Failed-login limits: after `max` failures within `window`, further attempts answer 429
//! until the oldest failure leaves the window. Kept per client address (bad API keys count
//! there too: each costs an argon2 run) and per account name, so that many LAN addresses
//! together still get only a few guesses a minute at one account.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; past this, keys without recent failures are forgotten.
const MAX_TRACKED: usize = 10_000;
/// Failed logins per minute from one address.
pub const FAILURES_PER_ADDRESS: usize = 5;
/// Failed logins per minute at one account, from all addresses together.
pub const FAILURES_PER_ACCOUNT: usize = 10;

pub struct LoginLimiter<K = IpAddr> {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl Default for LoginLimiter<IpAddr> {
    /// 5 failures per minute.
    fn default() -> Self {
        Self::new(FAILURES_PER_ADDRESS, Duration::from_secs(60))
    }
}

impl Default for LoginLimiter<String> {
    /// 10 failures per minute.
    fn default() -> Self {
        Self::new(FAILURES_PER_ACCOUNT, Duration::from_secs(60))
    }
}

impl<K: Hash + Eq + Clone> LoginLimiter<K> {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when this address (account) may not try now.
    pub fn check(&self, ip: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("limiter lock");
        let Some(times) = map.get_mut(ip) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.max {
            return Ok(());
        }
        let oldest = *times.front().expect("non-empty");
        let wait = self.window.saturating_sub(now.duration_since(oldest));
        Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
    }

    /// Count an attempt as a failure before it is checked (so concurrent guesses cannot
    /// overrun the limit); `Err(seconds to wait)` when the address is at its limit. Call
    /// [`LoginLimiter::forgive`] with the returned mark when the attempt succeeds.
    pub fn begin(&self, ip: K) -> Result<Instant, u64> {
        self.check(&ip)?;
        let mark = Instant::now();
        self.record(ip, mark);
        Ok(mark)
    }

    /// Undo [`LoginLimiter::begin`] for an attempt that succeeded.
    pub fn forgive(&self, ip: &K, mark: Instant) {
        let mut map = self.failures.lock().expect("limiter lock");
        if let Some(times) = map.get_mut(ip) {
            if let Some(i) = times.iter().position(|t| *t == mark) {
                times.remove(i);
            }
            if times.is_empty() {
                map.remove(ip);
            }
        }
    }

    pub fn fail(&self, ip: K) {
        self.record(ip, Instant::now());
    }

    fn record(&self, ip: K, now: Instant) {
        let mut map = self.failures.lock().expect("limiter lock");
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let window = self.window;
            map.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let times = map.entry(ip).or_default();
        times.push_back(now);
        while times.len() > self.max {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_then_wait() {
        let l = LoginLimiter::<IpAddr>::default();
        let a: IpAddr = "192.168.1.10".parse().unwrap();
        let b: IpAddr = "192.168.1.11".parse().unwrap();
        for _ in 0..5 {
            assert!(l.check(&a).is_ok());
            l.fail(a);
        }
        let wait = l.check(&a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(l.check(&b).is_ok(), "other addresses are not affected");
    }

    #[test]
    fn begin_counts_until_forgiven() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let a: IpAddr = "192.168.1.10".parse().unwrap();
        let m1 = l.begin(a).unwrap();
        let _m2 = l.begin(a).unwrap();
        assert!(
            l.begin(a).is_err(),
            "two attempts in flight use up the limit"
        );
        l.forgive(&a, m1);
        assert!(l.begin(a).is_ok());
    }

    #[test]
    fn window_expires() {
        let l = LoginLimiter::new(1, Duration::from_millis(20));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        l.fail(a);
        assert!(l.check(&a).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(l.check(&a).is_ok());
    }
}
