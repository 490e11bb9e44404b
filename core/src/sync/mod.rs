//! Sync with the platform: push the outbox, then pull registry changes.
//!
//! - [`protocol`]: the wire types, shared with the reference server.
//! - [`client`]: the blocking HTTP client ([`SyncClient`]); run it on a background thread.
//! - [`backoff`]: the retry policy (exponential backoff with jitter).
//!
//! Nothing is lost or duplicated: every outbox entry is pushed under its idempotency key until the
//! platform answers (applied / duplicate / rejected), and each pulled page is applied together with
//! its cursor in one store transaction, so a sync interrupted anywhere resumes where it stopped.

pub mod backoff;
pub mod client;
mod error;
pub mod protocol;

pub use backoff::RetryPolicy;
pub use client::{Progress, SyncClient, SyncPhase, SyncReport};
pub use error::SyncError;
