//! The application layer: one service per user task, the same calls for the Android and iOS shells
//! (through the FFI), the desktop CLI and the demo (docs/adr/0015-application-layer.md). A service
//! takes the time, the site and the language as inputs (the core reads no clock), does its I/O
//! through the profile's [`Device`] (database, trust data) and returns plain views a screen renders
//! as they are: the actions allowed now, the deadlines and the flags are decided here, never in a
//! shell.
//!
//! - [`device`]: [`Device`], one user profile's offline state (store, trust, revocations, replay
//!   cache), opened once and shared by every service.
//! - [`error`]: [`AppError`], the services' one error type (stable codes, Chinese and English).
//! - [`lang`]: [`Lang`], the language the shell chose for texts in views.
//! - [`start_work`]: scan-to-start (扫码开机): decide and record in one transaction.
//! - [`inspection`]: the inspector's check (逢查必核): a scanned credential to the licence as the
//!   registry keeps it; recording an inspection.
//! - [`permits`]: the hot-work permit walk-through, each step returning a [`permits::PermitView`].
//! - [`signing`]: signing through the person's own key (the phone's hardware key), with user
//!   presence where the step requires it.
//! - [`due`]: what the user must do and by when (deadlines as data; the shell schedules
//!   notifications).
//! - [`enrol`]: enrolment with a platform server.
//! - [`sync`]: syncing with the platform, trust updates included.
//! - [`history`]: work sessions and outbox entries (with why the platform refused one).

pub mod device;
pub mod due;
pub mod enrol;
pub mod error;
pub mod history;
pub mod inspection;
pub mod lang;
pub mod permits;
pub mod signing;
pub mod start_work;
pub mod sync;

pub use device::Device;
pub use error::AppError;
pub use lang::Lang;
