//! Sync through the FFI: [`Device::sync`] is an `async` call (a Kotlin `suspend fun`, a Swift
//! `async func`) whose blocking work runs on a thread of its own ([`crate::background`]); it
//! reports progress through a [`SyncListener`] the shell implements, and stops early when the shell
//! cancels its [`SyncTask`] or drops the call (the coroutine is cancelled, the user left the
//! screen, the OS is suspending the app). [`SyncTask`] is the cancel handle of every long call
//! (sync, drift check, enrolment).
//!
//! Device tokens expire. [`Device::sync_with_key`] refreshes an expired token by signing a server
//! nonce with the phone's device key (the one it enrolled with) and hands the new token to
//! [`SyncListener::on_token`] at once: the shell stores it in the Android Keystore / iOS Keychain,
//! never in the profile database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Device;
use super::background::run;
use super::error::WeldGuardError;
use super::functions::{DeviceKey, ForeignSigner};
use weldguard_core::app::sync::{self as app_sync, SyncRequest, TokenRefresh};
use weldguard_core::sync::checksum::Collection;
use weldguard_core::sync::{DriftCheck, Progress, RetryPolicy, SyncClient, SyncPhase};

/// Which part of a sync is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncStage {
    /// Uploading records made on the device.
    Push,
    /// Downloading registry changes (or the first-sync snapshot).
    Pull,
}

/// Progress of a sync, implemented by the shell (update a progress bar; keep it cheap).
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// `done` of `total` units; `total` is unknown while registry pages are still coming.
    fn on_progress(&self, stage: SyncStage, done: u64, total: Option<u64>);
    /// The device token was refreshed: the previous one no longer works. Store `token` in the
    /// platform's secure storage (Keystore / Keychain) right away and use it for the next sync;
    /// `expires_at_ms` is when it expires (Unix ms; `None`: never). Called even when the sync
    /// fails later. Should the shell lose it, the next sync refreshes again with the device key.
    fn on_token(&self, token: String, expires_at_ms: Option<i64>);
}

/// The cancel handle of a long call (sync, drift check, enrolment). Cancelling takes effect at
/// the next request or page; what was already applied stays, and the next sync goes on from there.
/// Dropping the call's future (cancelling the coroutine or task) cancels it the same way.
#[derive(Debug, Default, uniffi::Object)]
pub struct SyncTask {
    cancelled: Arc<AtomicBool>,
}

impl SyncTask {
    /// The flag the call's worker watches.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.cancelled.clone()
    }
}

#[uniffi::export]
impl SyncTask {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// A permit the sync replaced with the platform's version.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitChange {
    pub permit_id: String,
    /// Its state now (`approved`, `suspended`…).
    pub state: String,
    /// Its state before the sync; `None`: new on this device.
    pub previous_state: Option<String>,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncSummary {
    /// Records uploaded; of them applied now, already held by the platform, refused.
    pub pushed: u64,
    pub applied: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Registry changes downloaded (pages and snapshot chunks).
    pub pulled_changes: u64,
    pub snapshot_chunks: u64,
    /// The revocation status list held after the sync (its sequence), if the device has one.
    pub status_list_sequence: Option<u64>,
    /// Requests retried after network or server failures.
    pub retries: u32,
    /// Device tokens refreshed (each was given to [`SyncListener::on_token`]).
    pub token_refreshes: u32,
    /// Permits whose version on the device changed to the platform's (another device acted on
    /// them, or a conflict was decided against this device's step).
    pub permits_changed: u64,
    /// Those permits, with their new state.
    pub changed_permits: Vec<PermitChange>,
    /// Issuer keys trusted from this sync on (hex kids): a key rotation reached the phone.
    pub new_issuer_keys: Vec<String>,
    /// Keys the platform listed that the trust rule refused (hex kids; a shell may warn).
    pub refused_issuer_keys: Vec<String>,
}

impl From<weldguard_core::app::sync::SyncSummary> for SyncSummary {
    fn from(s: weldguard_core::app::sync::SyncSummary) -> Self {
        SyncSummary {
            pushed: s.pushed,
            applied: s.applied,
            duplicate: s.duplicate,
            rejected: s.rejected,
            pulled_changes: s.pulled_changes,
            snapshot_chunks: s.snapshot_chunks,
            status_list_sequence: s.status_list_sequence,
            retries: s.retries,
            token_refreshes: s.token_refreshes,
            permits_changed: s.permits_changed,
            changed_permits: s
                .changed_permits
                .into_iter()
                .map(|p| PermitChange {
                    permit_id: p.permit_id,
                    state: p.state,
                    previous_state: p.previous_state,
                })
                .collect(),
            new_issuer_keys: s.trust.added,
            refused_issuer_keys: s.trust.refused.into_iter().map(|r| r.kid).collect(),
        }
    }
}

/// A registry collection the drift check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RegistryCollection {
    Licences,
    Machines,
    Bindings,
    Revocations,
    IssuerKeys,
    CalendarDays,
    SensitivePeriods,
}

impl From<Collection> for RegistryCollection {
    fn from(c: Collection) -> Self {
        match c {
            Collection::Licences => RegistryCollection::Licences,
            Collection::Machines => RegistryCollection::Machines,
            Collection::Bindings => RegistryCollection::Bindings,
            Collection::Revocations => RegistryCollection::Revocations,
            Collection::IssuerKeys => RegistryCollection::IssuerKeys,
            Collection::CalendarDays => RegistryCollection::CalendarDays,
            Collection::SensitivePeriods => RegistryCollection::SensitivePeriods,
        }
    }
}

/// What a drift check found ([`Device::check_drift`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DriftOutcome {
    /// The registry cache matches the platform's checksums.
    InSync,
    /// The platform changed meanwhile: nothing was compared; sync and check again.
    NotComparable,
    /// These collections differed and were downloaded again.
    Refetched {
        collections: Vec<RegistryCollection>,
        refetched_rows: u64,
    },
}

#[uniffi::export]
impl Device {
    /// Push the outbox and pull the registry from the platform at `server_url` with this device's
    /// `token`, on a thread of its own (the call is `async`). The platform's trust file is fetched
    /// first: keys a trusted key endorsed (a rotation) are saved and trusted from then on
    /// (`new_issuer_keys`). With trusted issuer keys (saved at enrolment, or handed in with
    /// [`Device::set_trust`]), the signed revocation status list is fetched and verified and a
    /// first sync loads the signed snapshot. Revocations are reloaded afterwards
    /// ([`weldguard_core::app::sync`]). `task` cancels it; so does dropping the call.
    ///
    /// This form cannot refresh an expired token (the sync then fails with `sync.token_expired`);
    /// shells use [`Device::sync_with_key`].
    pub async fn sync(
        self: Arc<Self>,
        server_url: String,
        token: String,
        listener: Arc<dyn SyncListener>,
        task: Arc<SyncTask>,
        now_unix: i64,
    ) -> Result<SyncSummary, WeldGuardError> {
        let request = SyncRequest::new(server_url, token);
        let cancel = task.flag();
        let flag = cancel.clone();
        run("sync", cancel, move || {
            self.run_sync(request, listener, &flag, now_unix)
        })
        .await
    }

    /// [`Device::sync`], refreshing an expired token with the device key: `device_id` is the id
    /// the platform gave at enrolment and `key` the key the device enrolled with. A new token goes
    /// to [`SyncListener::on_token`] before the sync goes on. A refused refresh (device disabled,
    /// key mismatch) ends the sync with `sync.refresh_failed`.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_with_key(
        self: Arc<Self>,
        server_url: String,
        token: String,
        device_id: String,
        key: Arc<dyn DeviceKey>,
        listener: Arc<dyn SyncListener>,
        task: Arc<SyncTask>,
        now_unix: i64,
    ) -> Result<SyncSummary, WeldGuardError> {
        let tokens = listener.clone();
        let mut request = SyncRequest::new(server_url, token);
        request.refresh = Some(TokenRefresh {
            device_id,
            key: Arc::new(ForeignSigner(key)),
            on_token: Box::new(move |t| tokens.on_token(t.token.clone(), t.expires_at_ms)),
        });
        let cancel = task.flag();
        let flag = cancel.clone();
        run("sync", cancel, move || {
            self.run_sync(request, listener, &flag, now_unix)
        })
        .await
    }

    /// Compare the registry cache with the platform's per-collection checksums and download again
    /// only the collections that differ (resumable; records and the outbox are untouched). Reads
    /// every cached row, so shells run it now and then (e.g. daily on Wi-Fi), after a sync. `async`
    /// like [`Device::sync`], with the same cancel handle.
    pub async fn check_drift(
        self: Arc<Self>,
        server_url: String,
        token: String,
        listener: Arc<dyn SyncListener>,
        task: Arc<SyncTask>,
    ) -> Result<DriftOutcome, WeldGuardError> {
        let cancel = task.flag();
        let flag = cancel.clone();
        run("drift", cancel, move || {
            let client = SyncClient::new(&server_url, Some(token), RetryPolicy::default())?;
            let mut progress = |p: Progress| listener.on_progress(SyncStage::Pull, p.done, p.total);
            let drift = client.check_drift(self.app.store(), &mut progress, &flag)?;
            self.reload_revocations()?;
            Ok(match drift {
                DriftCheck::InSync => DriftOutcome::InSync,
                DriftCheck::NotComparable => DriftOutcome::NotComparable,
                DriftCheck::Refetched {
                    collections,
                    report,
                } => DriftOutcome::Refetched {
                    collections: collections.into_iter().map(Into::into).collect(),
                    refetched_rows: report.refetched_rows,
                },
            })
        })
        .await
    }
}

impl Device {
    fn run_sync(
        &self,
        request: SyncRequest,
        listener: Arc<dyn SyncListener>,
        cancel: &AtomicBool,
        now_unix: i64,
    ) -> Result<SyncSummary, WeldGuardError> {
        let mut progress = |p: Progress| {
            let stage = match p.phase {
                SyncPhase::Push => SyncStage::Push,
                SyncPhase::Pull => SyncStage::Pull,
            };
            listener.on_progress(stage, p.done, p.total);
        };
        let summary = app_sync::sync(&self.app, request, now_unix, &mut progress, cancel)?;
        Ok(summary.into())
    }
}
