//! Login sessions, in memory only (a restart logs everyone out): a random 256-bit token in
//! the `rsid` cookie, an idle timeout and an absolute lifetime.

use super::Role;
use crate::store::random_hex;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "rsid";
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);
/// No session lives longer than this.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 60 * 60);
/// Beyond this many live sessions the least recently used is dropped.
const MAX_SESSIONS: usize = 1024;
/// Beyond this many live sessions of one user, that user's least recently used one is
/// dropped: one account logging in over and over cannot push anyone else out.
pub const MAX_SESSIONS_PER_USER: usize = 32;

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
        let of_user = map.values().filter(|s| s.username == username).count();
        if of_user >= MAX_SESSIONS_PER_USER {
            remove_least_recent(&mut map, |s| s.username == username);
        } else if map.len() >= MAX_SESSIONS {
            remove_least_recent(&mut map, |_| true);
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

    /// A password was set: end every session of the user and give the caller a fresh one,
    /// so a session opened with the old password (or the default one) keeps nothing.
    pub fn restart_user(&self, username: &str, role: Role) -> String {
        self.remove_user(username);
        self.create(username, role)
    }
}

/// Drop the least recently used session among those `which` selects.
fn remove_least_recent(map: &mut HashMap<String, Session>, which: impl Fn(&Session) -> bool) {
    if let Some(oldest) = map
        .iter()
        .filter(|(_, s)| which(s))
        .min_by_key(|(_, s)| s.last_seen)
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,030 logins of one viewer push out that viewer's own oldest sessions, never the
    /// admin's (issue #10, item 3).
    #[test]
    fn many_logins_of_one_user_evict_only_that_user() {
        let s = Sessions::default();
        let admin = s.create("admin", Role::Admin);
        let first_viewer = s.create("viewer", Role::Viewer);
        let mut last = Vec::new();
        for _ in 0..1030 {
            last.push(s.create("viewer", Role::Viewer));
        }
        assert_eq!(s.get(&admin).unwrap().role, Role::Admin);
        assert!(s.get(&first_viewer).is_none(), "the viewer's oldest went");
        let live = last.iter().filter(|t| s.get(t).is_some()).count();
        assert_eq!(live, MAX_SESSIONS_PER_USER);
        assert!(s.get(last.last().unwrap()).is_some());
    }

    #[test]
    fn the_global_cap_still_holds() {
        let s = Sessions::default();
        for i in 0..MAX_SESSIONS + 10 {
            s.create(&format!("user{i}"), Role::Viewer);
        }
        assert_eq!(s.map.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn restart_user_keeps_only_the_new_session() {
        let s = Sessions::default();
        let a = s.create("admin", Role::Admin);
        let b = s.create("admin", Role::Admin);
        let other = s.create("bob", Role::Viewer);
        let fresh = s.restart_user("admin", Role::Admin);
        assert!(s.get(&a).is_none() && s.get(&b).is_none());
        assert!(s.get(&fresh).is_some() && s.get(&other).is_some());
    }

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
