//! The pair's config beacon: every few seconds each box tells the other, over the sync link,
//! a keyed digest of the config both should hold ([`pair_shared_view`]), so a change made on
//! one box only shows (status, dashboard, an event) before a failover routes by the other
//! config. Nothing else travels here: VRRP is keepalived's and connection sync conntrackd's.
//!
//! [`pair_shared_view`]: routeros_shared::config::pair_shared_view

use blake2::{Blake2b256, Digest};
use routeros_shared::control::PeerConfig;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// UDP port of the beacon on the sync link (conntrackd's FTFW uses 3780).
pub const PORT: u16 = 3781;
/// How often a box sends its digest.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// A peer not heard for this long (ms) counts as not heard.
pub const STALE_MS: u64 = 10_000;
const MAGIC: &str = "routeros-pair 1 ";

/// The digest a box sends: keyed with the pair's key, so it says nothing about the config to
/// anyone without the key, and a box with another key never matches.
pub fn digest(key: &str, shared_view: &str) -> String {
    let mut h = Blake2b256::new();
    h.update(key.as_bytes());
    h.update([0u8]);
    h.update(shared_view.as_bytes());
    h.finalize().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn message(digest: &str) -> String {
    format!("{MAGIC}{digest}")
}

/// The digest in a datagram, if it is a beacon.
pub fn parse(datagram: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(datagram).ok()?;
    let d = text.strip_prefix(MAGIC)?.trim_end();
    (d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())).then(|| d.to_ascii_lowercase())
}

/// Where this box's beacon runs: its own address on the sync link, the peer's, its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeaconTarget {
    pub bind: SocketAddr,
    pub peer: SocketAddr,
    pub digest: String,
}

/// The running beacon (a task), replaced when its target changes.
pub struct Beacon {
    heard: mpsc::UnboundedSender<String>,
    task: Option<(BeaconTarget, JoinHandle<()>)>,
}

impl Beacon {
    /// The beacon and the channel of the digests the peer sends.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (heard, rx) = mpsc::unbounded_channel();
        (Self { heard, task: None }, rx)
    }

    /// Run on `target` (the same target: nothing to do), or stop (`None`).
    pub fn set(&mut self, target: Option<BeaconTarget>) {
        if self.task.as_ref().map(|(t, _)| t) == target.as_ref() {
            return;
        }
        if let Some((_, task)) = self.task.take() {
            task.abort();
        }
        if let Some(t) = target {
            let task = tokio::spawn(run(t.clone(), self.heard.clone()));
            self.task = Some((t, task));
        }
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        self.set(None);
    }
}

async fn run(t: BeaconTarget, heard: mpsc::UnboundedSender<String>) {
    let mut warned = false;
    loop {
        // The sync link's address may not be there yet (networkd still bringing it up).
        let sock = match UdpSocket::bind(t.bind).await {
            Ok(s) => s,
            Err(e) => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!("HA config beacon: cannot listen on {}: {e}", t.bind);
                }
                tokio::time::sleep(INTERVAL).await;
                continue;
            }
        };
        let msg = message(&t.digest);
        let mut tick = tokio::time::interval(INTERVAL);
        let mut buf = [0u8; 128];
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // The peer may be down: that is what not hearing it says.
                    let _ = sock.send_to(msg.as_bytes(), t.peer).await;
                }
                got = sock.recv_from(&mut buf) => match got {
                    Ok((n, from)) if from.ip() == t.peer.ip() => {
                        if let Some(d) = parse(&buf[..n]) {
                            if heard.send(d).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!("HA config beacon: {e}");
                        break;
                    }
                },
            }
        }
    }
}

/// The peer's last digest, judged against ours.
#[derive(Debug, Default)]
pub struct PeerConfigWatch {
    last: Option<(String, u64)>,
}

impl PeerConfigWatch {
    pub fn heard(&mut self, digest: String, now_ms: u64) {
        self.last = Some((digest, now_ms));
    }

    /// Unix ms of the last beacon.
    pub fn heard_at(&self) -> Option<u64> {
        self.last.as_ref().map(|(_, at)| *at)
    }

    pub fn verdict(&self, own: Option<&str>, now_ms: u64) -> PeerConfig {
        match (&self.last, own) {
            (Some((d, at)), Some(own)) if now_ms.saturating_sub(*at) < STALE_MS => {
                if d == own {
                    PeerConfig::Same
                } else {
                    PeerConfig::Differs
                }
            }
            _ => PeerConfig::NotHeard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_beacons_parse() {
        let d = digest("k1", "{}");
        assert_eq!(d.len(), 64);
        assert_eq!(d, digest("k1", "{}"));
        assert_ne!(d, digest("k2", "{}"), "another key never matches");
        assert_ne!(d, digest("k1", "{ }"));
        assert_eq!(parse(message(&d).as_bytes()), Some(d.clone()));
        assert_eq!(parse(b"routeros-pair 1 xyz"), None);
        assert_eq!(parse(b"hello"), None);
        assert_eq!(parse(&[0xff, 0xfe]), None);
    }

    #[test]
    fn the_verdict_follows_the_last_beacon_and_goes_stale() {
        let mut w = PeerConfigWatch::default();
        assert_eq!(w.verdict(Some("a"), 0), PeerConfig::NotHeard);
        w.heard("a".into(), 1_000);
        assert_eq!(w.verdict(Some("a"), 2_000), PeerConfig::Same);
        assert_eq!(w.verdict(Some("b"), 2_000), PeerConfig::Differs);
        assert_eq!(w.verdict(None, 2_000), PeerConfig::NotHeard);
        assert_eq!(w.verdict(Some("a"), 1_000 + STALE_MS), PeerConfig::NotHeard);
        assert_eq!(w.heard_at(), Some(1_000));
    }

    async fn within(rx: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a beacon within 5 s")
    }

    /// Two beacons on the loopback hear each other's digests.
    #[tokio::test]
    async fn two_beacons_hear_each_other() {
        let free = || {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (a_addr, b_addr) = (free(), free());
        let (mut a, mut heard_a) = Beacon::new();
        let (mut b, mut heard_b) = Beacon::new();
        let (da, db) = (digest("k", "a"), digest("k", "b"));
        a.set(Some(BeaconTarget {
            bind: a_addr,
            peer: b_addr,
            digest: da.clone(),
        }));
        b.set(Some(BeaconTarget {
            bind: b_addr,
            peer: a_addr,
            digest: db.clone(),
        }));
        assert_eq!(within(&mut heard_b).await, Some(da));
        assert_eq!(within(&mut heard_a).await, Some(db));
        a.set(None);
    }
}
