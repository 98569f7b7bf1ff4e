//! Handlers, one module per area. Each checks its role with the `Auth<R>` extractor (placed
//! before any body or query extractor, so a request without credentials is a 401 before
//! anything is read), records every change in the audit log, and answers JSON or an
//! `ApiError`.

pub mod audit;
pub mod config;
pub mod keys;
pub mod session;
pub mod setup;
pub mod status;
pub mod stream;
pub mod system;
pub mod users;
pub mod wans;
