//! What the router's two processes share: the config model and its validation (`config`),
//! the pure planner (`plan`) and the line-speed learning it uses (`capacity`), the event log's types (`events`) and the control protocol
//! spoken over the daemon's socket (`control`). No kernel access and no HTTP here: the
//! root daemon and the unprivileged web server both link this crate and nothing of each other.

pub mod capacity;
pub mod config;
pub mod control;
pub mod events;
pub mod plan;
