//! The real prober: ICMP echo (ICMPv6 echo for a WAN's IPv6 side) through one WAN with
//! surge-ping.
//!
//! Each WAN and family gets its own `Client` (one socket) bound to the interface with
//! SO_BINDTODEVICE.
//! Binding alone does not select the WAN's routing table: the planner's `oif <wan> lookup
//! <table>` rules do (router/src/plan/decide.rs), so a probe on wan2 leaves via wan2 even
//! when the main default route points at wan1.

use std::collections::hash_map::DefaultHasher;
use std::ffi::CString;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use surge_ping::{Client, Config, IcmpPacket, PingIdentifier, PingSequence, ICMP};
use tokio::sync::mpsc::Sender;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::round::Round;
use routeros_shared::plan::Family;

const PAYLOAD: &[u8; 16] = b"routeros-health\0";
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// An ICMP client whose socket is bound to `ifname`. Must run inside a tokio runtime
/// (surge-ping spawns its receive task here).
///
/// Asks for a raw socket: it needs only CAP_NET_RAW, whereas datagram ICMP sockets also
/// need `net.ipv4.ping_group_range` to admit our group (the kernel default "1 0" admits
/// nobody, not even root). surge-ping falls back to a datagram socket if raw is refused.
pub fn client_for(ifname: &str, family: Family) -> io::Result<Client> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "client_for must be called inside a tokio runtime",
        ));
    }
    let config = Config::builder()
        .kind(match family {
            Family::V4 => ICMP::V4,
            Family::V6 => ICMP::V6,
        })
        .interface(ifname)
        // socket2's `Type` (From<c_int>) without depending on socket2 directly.
        .sock_type_hint(nix::libc::SOCK_RAW.into())
        .build();
    Client::new(&config)
}

/// Ping every target once, concurrently, through `client`; each gets `timeout`.
///
/// Only echo replies count: surge-ping also hands back ICMP errors (e.g. "network
/// unreachable" from the ISP's router) as successful pings, which would keep a dead
/// uplink looking healthy.
pub async fn probe_round(
    client: &Client,
    wan_ifname: &str,
    targets: &[IpAddr],
    timeout: Duration,
    seq: u16,
) -> Round {
    // surge-ping matches replies by (target, identifier, sequence) and rejects a second
    // waiter for the same key, so a target listed twice is pinged once.
    let mut unique: Vec<IpAddr> = Vec::with_capacity(targets.len());
    for t in targets {
        if !unique.contains(t) {
            unique.push(*t);
        }
    }
    let ident = identifier(wan_ifname);
    let rtts = join_all(
        unique
            .iter()
            .map(|&t| ping_one(client, wan_ifname, t, ident, seq, timeout)),
    )
    .await;
    let replies = targets
        .iter()
        .map(|t| (*t, rtts[unique.iter().position(|u| u == t).unwrap_or(0)]))
        .collect();
    Round::new(replies)
}

async fn ping_one(
    client: &Client,
    wan: &str,
    target: IpAddr,
    ident: PingIdentifier,
    seq: u16,
    timeout: Duration,
) -> Option<Duration> {
    let mut pinger = client.pinger(target, ident).await;
    pinger.timeout(timeout);
    match pinger.ping(PingSequence(seq), PAYLOAD).await {
        Ok((IcmpPacket::V4(p), rtt)) if p.get_icmp_type().0 == ICMP_ECHO_REPLY => Some(rtt),
        Ok((IcmpPacket::V6(p), rtt)) if p.get_icmpv6_type().0 == ICMPV6_ECHO_REPLY => Some(rtt),
        Ok((p, _)) => {
            tracing::debug!(wan, %target, seq, packet = ?p, "ICMP error instead of an echo reply");
            None
        }
        Err(e) => {
            tracing::trace!(wan, %target, seq, error = %e, "probe lost");
            None
        }
    }
}

/// Echo identifier for a WAN's raw socket: stable per process and interface, so the
/// replies of another pinger on the host (or of another WAN's socket) are not taken for
/// ours. Datagram sockets ignore it: the kernel assigns their identifier.
fn identifier(ifname: &str) -> PingIdentifier {
    let mut h = DefaultHasher::new();
    ifname.hash(&mut h);
    // Folded to ICMP's 16-bit identifier: dropping the high bits is the point.
    #[allow(clippy::cast_possible_truncation)]
    let (hash, pid) = (h.finish() as u16, std::process::id() as u16);
    // XOR keeps two WANs of one process apart exactly when their name hashes differ.
    PingIdentifier(hash ^ pid)
}

/// What one prober probes: a WAN's side of one family, through its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeJob {
    pub wan: String,
    /// The device the WAN's traffic uses.
    pub device: String,
    pub family: Family,
    /// Targets of that family.
    pub targets: Vec<IpAddr>,
}

/// Run a probe round every `interval` (its latest value: the supervisor speeds a line's
/// probing up while a failure is confirmed) through the job's device and send
/// `(wan, family, round)` to `tx`.
///
/// Rounds never overlap: one that outlasts the interval (timeout >= interval) is followed
/// by the next at once, never by a burst. A new interval takes effect at once: the next
/// round is due one new interval after the last one started. The socket is rebuilt when the interface
/// appears, or reappears with a new index (PPP/VLAN re-created): a socket bound to the old
/// index would never see traffic again. Without the interface, rounds report every target
/// lost. Ends when the receiver is dropped. Must be called inside a tokio runtime.
pub fn spawn_wan_prober(
    job: ProbeJob,
    mut interval: watch::Receiver<Duration>,
    timeout: Duration,
    tx: Sender<(String, Family, Round)>,
) -> JoinHandle<()> {
    let ProbeJob {
        wan,
        device: ifname,
        family,
        targets,
    } = job;
    tokio::spawn(async move {
        let mut socket = BoundClient::default();
        let mut seq: u16 = 0;
        let mut started: Option<Instant> = None;
        loop {
            // Due one interval after the last round started (at once for the first, or
            // when the round took longer); re-armed when the interval changes meanwhile.
            loop {
                let every = (*interval.borrow_and_update()).max(Duration::from_millis(1));
                let due = started.map_or_else(Instant::now, |s| (s + every).max(Instant::now()));
                tokio::select! {
                    () = tokio::time::sleep_until(due) => break,
                    changed = interval.changed() => {
                        if changed.is_err() {
                            return; // the prober set was replaced
                        }
                    }
                }
            }
            started = Some(Instant::now());
            let round = match socket.get(&ifname, family) {
                Some(client) => probe_round(&client, &ifname, &targets, timeout, seq).await,
                None => Round::all_lost(&targets),
            };
            // Wraps after 65536 rounds; by then the old waiter has long timed out.
            seq = seq.wrapping_add(1);
            if tx.send((wan.clone(), family, round)).await.is_err() {
                break;
            }
        }
    })
}

/// A client and the interface index it was bound to.
#[derive(Default)]
struct BoundClient {
    current: Option<(Client, u32)>,
    /// Log a failure to bind once, not every 100 ms.
    warned: bool,
}

impl BoundClient {
    fn get(&mut self, ifname: &str, family: Family) -> Option<Client> {
        let Some(index) = if_index(ifname) else {
            self.current = None;
            self.fail(ifname, "interface not found".into());
            return None;
        };
        if let Some((client, bound)) = &self.current {
            if *bound == index {
                return Some(client.clone());
            }
        }
        match client_for(ifname, family) {
            Ok(client) => {
                tracing::debug!(wan = ifname, index, "health probe socket bound");
                self.warned = false;
                self.current = Some((client.clone(), index));
                Some(client)
            }
            Err(e) => {
                self.current = None;
                self.fail(ifname, e.to_string());
                None
            }
        }
    }

    fn fail(&mut self, ifname: &str, why: String) {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(wan = ifname, "health probes cannot be sent: {why}");
        }
    }
}

/// The interface's index in the caller's network namespace, if it exists.
fn if_index(ifname: &str) -> Option<u32> {
    let name = CString::new(ifname).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call;
    // if_nametoindex only reads it.
    let index = unsafe { nix::libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_differ_per_wan_and_are_stable() {
        assert_eq!(identifier("wan1"), identifier("wan1"));
        assert_ne!(identifier("wan1"), identifier("wan2"));
    }

    #[test]
    fn missing_interfaces_have_no_index() {
        assert_eq!(if_index("no-such-wan0"), None);
        assert_eq!(if_index("bad\0name"), None);
        assert!(if_index("lo").is_some());
    }

    #[test]
    fn client_for_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(client_for("lo", Family::V4).is_err());
    }
}
