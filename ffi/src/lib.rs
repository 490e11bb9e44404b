//! WeldGuard FFI: the phone library (Android's `.so`, iOS's XCFramework). The UniFFI surface over
//! the device core's application layer: plain records, enums and one public error enum, mapped from
//! the core in one place. Nothing outside this crate knows about FFI.
//!
//! - [`error`]: [`WeldGuardError`], the one error the shells see (stable code, Chinese and English).
//! - [`types`]: the records and enums that cross the boundary, and their mapping from the domain.
//! - [`functions`]: stateless calls (ID number checks, code verification against a trust file,
//!   presenting a credential with the phone's hardware key).
//! - [`device`]: [`Device`], the handle a shell keeps for one user profile: its database, trust data
//!   and replay cache; scan-to-start decisions recorded with their outbox entries.
//! - [`scan`]: camera frames (the luma plane with its row stride) and image files to the QR codes in
//!   them.
//! - [`permits`]: the hot-work permit walk-through and what is due ([`Device::due`]), each step
//!   answering with a [`permits::PermitView`] (allowed actions, deadlines, flags, signatures).
//! - [`signing`]: [`signing::PersonSigner`], the person's key for every step they sign, with
//!   user presence where the step requires it.
//! - [`sync`]: [`Device::sync`] (async) with a progress listener the shell implements and a
//!   cancellable [`SyncTask`], the cancel handle of every long call.
//! - [`enrol`]: [`Device::enrol`] (async), enrolment with a platform server.
//! - [`inspection`]: the inspector's check of a welder's code and recording an inspection.
//! - [`history`]: work sessions, outbox entries (with the platform's refusals), inspections.
//!
//! Times cross the boundary as Unix seconds (UTC) passed in by the shell; the core reads no clock.

mod background;
pub mod device;
pub mod enrol;
pub mod error;
pub mod functions;
pub mod history;
pub mod inspection;
pub mod permits;
pub mod scan;
pub mod signing;
pub mod sync;
pub mod types;

pub use device::Device;
pub use error::WeldGuardError;
pub use sync::{DriftOutcome, SyncListener, SyncStage, SyncSummary, SyncTask};
pub use types::Lang;

#[cfg(test)]
mod tests;

uniffi::setup_scaffolding!("weldguard_core");
