//! Kernel notifications about links and each family's addresses, routes and policy rules. The
//! daemon only needs to know *that* something changed: it then re-observes its WANs, which
//! covers carrier loss, DHCP renews and router advertisements that move an address or
//! gateway (a SLAAC address leaving duplicate address detection), and interfaces coming
//! and going, and compares its routes and rules with the plan, which covers another program
//! deleting them (systemd-networkd on restart, `ip route flush`) — without waiting for the
//! next probe round or poll.

use super::super::ApplyError;
use futures::StreamExt;
use rtnetlink::{new_multicast_connection, MulticastGroup};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// A burst (a flushed table, networkd reconfiguring, our own apply) is over once the kernel
/// has been quiet this long...
const QUIET: Duration = Duration::from_millis(20);
/// ...or this long after its first event, whichever comes first.
const MAX_WAIT: Duration = Duration::from_millis(200);

/// A stream of "something about links/addresses/routes/rules changed" ticks, one per burst:
/// events closer than [`QUIET`] to each other make one tick, and at most one tick waits in
/// the channel.
pub fn watch_links() -> Result<mpsc::Receiver<()>, ApplyError> {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv4Rule,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv6Rule,
    ];
    let (conn, _handle, mut messages) =
        new_multicast_connection(&groups).map_err(|source| ApplyError::Socket {
            what: "subscribing to link events",
            source,
        })?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while messages.next().await.is_some() {
            let deadline = Instant::now() + MAX_WAIT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match timeout(QUIET.min(left), messages.next()).await {
                    Ok(Some(_)) if !left.is_zero() => continue,
                    Ok(None) => {
                        let _ = tx.try_send(());
                        return;
                    }
                    _ => break,
                }
            }
            match tx.try_send(()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
                Err(mpsc::error::TrySendError::Closed(())) => break,
            }
        }
    });
    Ok(rx)
}
