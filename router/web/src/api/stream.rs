//! `GET /api/v1/stream`: Server-Sent Events fed by the single telemetry poller
//! (`event: status` every second and at once after a change, `event: event` per new daemon
//! event). Each client gets the current status immediately on connect.

use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::telemetry::{StreamItem, FRESH};
use crate::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

fn to_event(item: StreamItem) -> Event {
    let (name, bytes) = match item {
        StreamItem::Status(b) => ("status", b),
        StreamItem::Event(b) => ("event", b),
    };
    Event::default()
        .event(name)
        .data(String::from_utf8_lossy(&bytes))
}

/// Live status and events as Server-Sent Events.
#[utoipa::path(get, path = "/api/v1/stream", tag = "status",
    responses((status = 200, content_type = "text/event-stream",
            description = "event: status (status JSON), event: event (daemon event JSON)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody,
            description = "too many streams (in all, or for this user or key)")))]
pub async fn stream(
    State(state): State<AppState>,
    who: Viewer,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Per principal first: one key or user cannot take every slot from the others.
    let mine = state
        .streams_per_principal
        .try_acquire(who.username.clone())
        .ok_or_else(|| {
            ApiError::Unavailable(format!(
                "{} has {} event streams open already (the most for one user or key)",
                who.username,
                state.streams_per_principal.max()
            ))
        })?;
    let global = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Unavailable("too many event streams open".into()))?;
    let permit = (mine, global);
    // Subscribe first: nothing published after the initial snapshot is missed.
    let rx = state.telemetry.subscribe();
    let initial = state
        .telemetry
        .current(FRESH)
        .await
        .ok()
        .map(|s| StreamItem::Status(s.json));
    let shutdown = state.shutdown.clone();
    let events = futures::stream::unfold(
        (rx, initial, permit, shutdown),
        |(mut rx, mut initial, permit, mut shutdown)| async move {
            if let Some(item) = initial.take() {
                return Some((Ok(to_event(item)), (rx, None, permit, shutdown)));
            }
            loop {
                if *shutdown.borrow() {
                    return None;
                }
                tokio::select! {
                    item = rx.recv() => match item {
                        Ok(item) => return Some((Ok(to_event(item)), (rx, None, permit, shutdown))),
                        // A slow client skips what it missed; the next status is complete.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = shutdown.changed() => return None,
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
