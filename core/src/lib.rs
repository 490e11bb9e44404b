//! WeldGuard core: everything that decides, stores or talks to the network, shared by the Android and
//! iOS shells, the desktop CLI and the reference server.
//!
//! One folder per capability:
//! - [`domain`]: the plain data every capability shares (licences, machines, categories, reasons).
//! - [`codes`]: the signed `WG1:` QR payloads (machine labels, welder credentials, presentations).
//! - [`rules`]: pure decisions (ID numbers, licences, machines, start work); time is passed in.
//! - [`scan`]: camera frames and image files to QR texts.
//! - [`permit`]: hot-work permits: checklist catalog, rule profiles, life cycle, signatures.
//! - [`signers`]: the signed directory of people who may sign permits, their keys and roles.
//! - [`inspect`]: on-site inspections (逢查必核): scans, observations, violations, signature.
//! - [`store`]: the device's SQLite database: registry cache, records and their outbox.
//! - [`sync`]: the device's sync client (push the outbox, pull registry changes) and the wire protocol.
//! - [`app`]: the application layer: one service per user task, called by the FFI, the CLI and the
//!   demo alike.
//! - [`api`]: the UniFFI surface, and the only module that knows about FFI.

pub mod api;
pub mod app;
pub mod codes;
pub mod domain;
pub mod inspect;
pub mod permit;
pub mod rules;
pub mod scan;
pub mod signers;
pub mod startwork;
pub mod store;
pub mod sync;

uniffi::setup_scaffolding!("weldguard_core");
