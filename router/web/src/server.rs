//! The accept loop and HTTP/1 connections of both ports, driven here rather than by
//! `axum::serve`, which has no header-read timeout and no connection cap: 1,100 idle
//! connections from one LAN host used to make the UI and API unreachable for everyone.
//!
//! - hyper's header-read timeout starts when a connection waits for a request, so it also
//!   closes idle keep-alive connections and slowloris clients (partial headers).
//! - A connection over the global or the per-address cap is closed at once, before any byte
//!   is read: one host can hold at most `max_connections_per_ip` of the slots.
//! - Accept errors (EMFILE) back off instead of spinning.

use super::limits::{KeyedLimit, KeyedPermit, Limits};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::Service;

/// Pause after a failed accept (out of file descriptors): the loop must not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// On shutdown, open connections get this long to finish their answer.
const DRAIN: Duration = Duration::from_secs(5);

/// The connection slots both listeners share.
pub struct ConnectionCaps {
    max: usize,
    global: Arc<Semaphore>,
    per_ip: KeyedLimit<IpAddr>,
}

/// Held for as long as a connection is open.
pub struct ConnectionPermit {
    _global: OwnedSemaphorePermit,
    _per_ip: KeyedPermit<IpAddr>,
}

impl ConnectionCaps {
    pub fn new(limits: &Limits) -> Self {
        Self {
            max: limits.max_connections,
            global: Arc::new(Semaphore::new(limits.max_connections)),
            per_ip: KeyedLimit::new(limits.max_connections_per_ip),
        }
    }

    /// A slot for a connection from `ip`, or `None` when it must be refused.
    pub fn admit(&self, ip: IpAddr) -> Option<ConnectionPermit> {
        let per_ip = self.per_ip.try_acquire(ip)?;
        let global = self.global.clone().try_acquire_owned().ok()?;
        Some(ConnectionPermit {
            _global: global,
            _per_ip: per_ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.global.available_permits()
    }

    /// Wait (at most `DRAIN`) until every connection has closed.
    pub async fn drained(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(DRAIN, self.global.acquire_many(all)).await;
    }
}

/// Accept connections on `listener` and serve `router` on them until `shutdown` turns true;
/// then stop accepting and ask open connections to close once their answer is sent.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    caps: Arc<ConnectionCaps>,
    limits: &Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(permit) = caps.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: at the connection cap");
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
