//! Async client of the daemon's control socket: one JSON line out, one typed reply back, on
//! a fresh connection, within a timeout. An unreachable or silent daemon is a 502; a
//! refusal becomes the [`ApiError`] of its code (see `From<Refusal>`). `subscribe` keeps
//! its connection and yields the daemon's events as they happen.

use super::error::ApiError;
use routeros_shared::control::{from_wire, Request, Subscribed};
use routeros_shared::events::Event;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::net::UnixStream;

/// Longest answer accepted (a config history or event list is far smaller).
const MAX_ANSWER: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct DaemonClient {
    path: PathBuf,
    timeout: Duration,
}

impl DaemonClient {
    pub fn new(path: &Path, timeout: Duration) -> Self {
        Self {
            path: path.to_path_buf(),
            timeout,
        }
    }

    /// The reply of a request the daemon carried out, as `T` (the reply type of `req`);
    /// a refusal becomes the error of its code.
    pub async fn ask<T: DeserializeOwned>(&self, req: &Request) -> Result<T, ApiError> {
        let answer = self.call(req).await?;
        from_wire(answer)
            .map_err(ApiError::DaemonUnreachable)?
            .map_err(ApiError::from)
    }

    /// The raw answer line, `ok: false` included.
    pub async fn call(&self, req: &Request) -> Result<Value, ApiError> {
        let line = serde_json::to_string(req).map_err(ApiError::internal)?;
        let exchange = async {
            let (mut reader, _stream) = self.send(line).await?;
            read_line(&mut reader).await
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(self.silent()),
        }
    }

    /// Subscribe to the daemon's events after `since_ms` (all logged ones without it).
    pub async fn subscribe(&self, since_ms: Option<u64>) -> Result<Subscription, ApiError> {
        let line =
            serde_json::to_string(&Request::Subscribe { since_ms }).map_err(ApiError::internal)?;
        let start = async {
            let (mut reader, stream) = self.send(line).await?;
            let first = read_line(&mut reader).await?;
            let subscribed: Subscribed = from_wire(first)
                .map_err(ApiError::DaemonUnreachable)?
                .map_err(ApiError::from)?;
            Ok::<_, ApiError>(Subscription {
                backlog: subscribed.backlog,
                reader,
                _stream: stream,
            })
        };
        match tokio::time::timeout(self.timeout, start).await {
            Ok(result) => result,
            Err(_) => Err(self.silent()),
        }
    }

    fn silent(&self) -> ApiError {
        ApiError::DaemonUnreachable(format!(
            "routeros-watchdog did not answer within {} s",
            self.timeout.as_secs_f64()
        ))
    }

    /// Connect and send one line; the reading half, and the writing half kept open (a
    /// closed half would end a subscription).
    async fn send(
        &self,
        mut line: String,
    ) -> Result<(Lines, tokio::net::unix::OwnedWriteHalf), ApiError> {
        let unreachable = |e: std::io::Error| {
            ApiError::DaemonUnreachable(format!(
                "cannot reach routeros-watchdog at {}: {e}",
                self.path.display()
            ))
        };
        let stream = UnixStream::connect(&self.path).await.map_err(unreachable)?;
        let (read, mut write) = stream.into_split();
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(unreachable)?;
        Ok((BufReader::new(read), write))
    }
}

type Lines = BufReader<OwnedReadHalf>;

/// One JSON line of at most [`MAX_ANSWER`] bytes.
async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Value, ApiError> {
    let mut answer = Vec::new();
    let n = tokio::io::AsyncReadExt::take(&mut *reader, MAX_ANSWER)
        .read_until(b'\n', &mut answer)
        .await
        .map_err(|e| ApiError::DaemonUnreachable(format!("routeros-watchdog: {e}")))?;
    if n == 0 {
        return Err(ApiError::DaemonUnreachable(
            "routeros-watchdog closed the connection without answering".into(),
        ));
    }
    serde_json::from_slice(&answer)
        .map_err(|e| ApiError::DaemonUnreachable(format!("bad answer from the daemon: {e}")))
}

/// An open `subscribe`: the logged events asked for, then each new one.
pub struct Subscription {
    pub backlog: Vec<Event>,
    reader: Lines,
    _stream: tokio::net::unix::OwnedWriteHalf,
}

impl Subscription {
    /// The next event; an error when the daemon closed the stream (it restarted, or
    /// dropped us for falling behind): subscribe again.
    pub async fn next(&mut self) -> Result<Event, ApiError> {
        let line = read_line(&mut self.reader).await?;
        serde_json::from_value(line)
            .map_err(|e| ApiError::DaemonUnreachable(format!("bad event from the daemon: {e}")))
    }
}
