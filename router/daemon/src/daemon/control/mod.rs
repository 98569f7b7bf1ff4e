//! The daemon's side of the control socket; the protocol itself (requests, replies, limits,
//! the client the CLIs use) is in `routeros_shared::control`.

pub use routeros_shared::control::*;
use routeros_shared::events::Event;
use tokio::sync::{broadcast, oneshot};

mod server;
mod timezone;

pub use server::{refuse_if_served, serve, Daemon};

/// What the event loop sends back for a request.
#[derive(Debug)]
pub enum Answer {
    /// One answer line.
    Line(Result<Reply, Refusal>),
    /// `subscribe`: the logged events asked for, then every new one as it is emitted.
    Subscribed {
        backlog: Vec<Event>,
        events: broadcast::Receiver<Event>,
    },
}

/// A request with the channel its answer goes back on.
pub type Envelope = (Request, oneshot::Sender<Answer>);
