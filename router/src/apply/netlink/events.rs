//! Kernel notifications about links, IPv4 addresses and IPv4 routes. The daemon only needs to
//! know *that* something changed: it then re-observes its WANs, which covers carrier loss,
//! DHCP renews that move an address or gateway, and interfaces coming and going — without
//! waiting for the next probe round or poll.

use super::super::ApplyError;
use futures::StreamExt;
use rtnetlink::{new_multicast_connection, MulticastGroup};
use tokio::sync::mpsc;

/// A stream of "something about links/addresses/routes changed" ticks. Bursts are coalesced:
/// at most one tick waits in the channel at a time.
pub fn watch_links() -> Result<mpsc::Receiver<()>, ApplyError> {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv4Route,
    ];
    let (conn, _handle, mut messages) = new_multicast_connection(&groups)
        .map_err(|e| ApplyError::Netlink(format!("subscribing to link events: {e}")))?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while messages.next().await.is_some() {
            match tx.try_send(()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
                Err(mpsc::error::TrySendError::Closed(())) => break,
            }
        }
    });
    Ok(rx)
}
