//! WeldGuard device core: what a phone (or the desktop CLI acting as one) runs on top of the shared
//! model: its SQLite store, its sync client, the QR scanner, and the application layer the shells'
//! FFI (`weldguard-ffi`), the CLI and the demo all call (docs/adr/0015-application-layer.md).
//!
//! One folder per capability:
//! - [`app`]: the application layer: one service per user task (scan-to-start, the inspector's
//!   check, permits, enrolment, sync, history, deadlines).
//! - [`startwork`]: scan-to-start end to end (codes, registry, permit) as one decision.
//! - [`scan`]: camera frames and image files to QR texts.
//! - [`store`]: the device's SQLite database: registry cache, records and their outbox.
//! - [`sync`]: the device's sync client (push the outbox, pull registry changes).
//!
//! The model's modules ([`domain`], [`codes`], [`rules`], [`permit`], [`signers`], [`inspect`]) are
//! re-exported here, so device code names them as before.

pub mod app;
pub mod scan;
pub mod startwork;
pub mod store;
pub mod sync;

pub use weldguard_model::{codes, domain, inspect, permit, records, rules, signers};
