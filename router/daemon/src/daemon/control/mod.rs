//! The daemon's side of the control socket; the protocol itself (requests, limits, the
//! client the CLIs use) is in `routeros_shared::control`.

pub use routeros_shared::control::*;
use tokio::sync::oneshot;

mod server;

pub use server::{refuse_if_served, serve};

/// A request with the channel its answer goes back on.
pub type Envelope = (Request, oneshot::Sender<serde_json::Value>);
