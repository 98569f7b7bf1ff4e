//! Resource limits of routeros-web, so that one LAN host or one account cannot take what
//! every other client needs: connection caps and timeouts ([`Limits`], enforced by
//! [`super::server`]), event streams per principal, and the counter behind the per-key caps.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The knobs, with the defaults of the appliance (`routeros-web --help` names the flags).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's headers must arrive within this time, counted from when the connection
    /// starts waiting for a request: so it is also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long fails (uploads and JSON alike).
    pub body_timeout: Duration,
    /// Connections open at once, both ports together. Well below the unit's LimitNOFILE.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_ip: usize,
    /// Event streams (`/api/v1/stream`) open at once, in all.
    pub max_streams: usize,
    /// Event streams open at once for one user or API key.
    pub max_streams_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_streams: 256,
            max_streams_per_principal: 8,
        }
    }
}

/// At most `max` holders per key (a client address, a principal); a permit gives its slot
/// back when dropped.
pub struct KeyedLimit<K: Hash + Eq> {
    max: usize,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for `key`, or `None` when it holds `max` already.
    pub fn try_acquire(&self, key: K) -> Option<KeyedPermit<K>> {
        let mut counts = self.counts.lock().expect("limit lock");
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(KeyedPermit {
            key,
            counts: self.counts.clone(),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Keys holding a slot now (entries go when their last permit does).
    pub fn keys(&self) -> usize {
        self.counts.lock().expect("limit lock").len()
    }
}

pub struct KeyedPermit<K: Hash + Eq> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq> Drop for KeyedPermit<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("limit lock");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_key_and_frees_on_drop() {
        let limit = KeyedLimit::new(2);
        let a1 = limit.try_acquire("a").unwrap();
        let _a2 = limit.try_acquire("a").unwrap();
        assert!(limit.try_acquire("a").is_none());
        let b = limit.try_acquire("b").unwrap();
        drop(a1);
        assert!(limit.try_acquire("a").is_some());
        drop(b);
        assert_eq!(limit.keys(), 1, "b's entry went with its last permit");
    }
}
