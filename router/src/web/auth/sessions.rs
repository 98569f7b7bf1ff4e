//! Login sessions, in memory only (a restart logs everyone out): a random 256-bit token in
//! the `rsid` cookie, an idle timeout and an absolute lifetime.

use super::Role;
use crate::web::store::random_hex;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "rsid";
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);
/// No session lives longer than this.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 60 * 60);
/// Beyond this many live sessions the oldest is dropped.
const MAX_SESSIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub role: Role,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.created) < SESSION_MAX
            && now.duration_since(self.last_seen) < SESSION_IDLE
    }
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; returns its token.
    pub fn create(&self, username: &str, role: Role) -> String {
        let token = random_hex(32);
        let now = Instant::now();
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| s.alive(now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            token.clone(),
            Session {
                username: username.into(),
                role,
                created: now,
                last_seen: now,
            },
        );
        token
    }

    /// The live session of a token (and mark it used).
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().expect("sessions lock");
        match map.get_mut(token) {
            Some(s) if s.alive(now) => {
                s.last_seen = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        self.map.lock().expect("sessions lock").remove(token);
    }

    /// End every session of a user (deleted, or password changed).
    pub fn remove_user(&self, username: &str) {
        self.map
            .lock()
            .expect("sessions lock")
            .retain(|_, s| s.username != username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_remove() {
        let s = Sessions::default();
        let t = s.create("alice", Role::Operator);
        assert_eq!(t.len(), 64);
        assert_eq!(s.get(&t).unwrap().role, Role::Operator);
        assert!(s.get("nope").is_none());
        s.remove_user("alice");
        assert!(s.get(&t).is_none());
    }
}
