//! Syncing with the platform (同步): one service the FFI, the CLI and the demo call alike.
//!
//! [`sync`] runs, in order:
//!
//! 1. **Trust** (`GET /v1/trust`): the platform's trust file and its endorsement chain go through
//!    the trust rule ([`crate::codes::rotation::extend_trust`]): a key is added only when the newest
//!    key the profile trusts endorsed it, and the old key's validity ends at its successor's start.
//!    A change is saved in the store and held by the [`Device`] at once. This comes first because
//!    after a rotation the platform signs the status list, snapshots and the signer directory with
//!    the new key. A profile with no trust (no anchor: not enrolled through [`crate::app::enrol`]
//!    and no trust file handed in) learns nothing here: the channel alone is never a root.
//! 2. The sync client ([`crate::sync::SyncClient::sync`]): the signed status list and signer
//!    directory (verified with the trust held), push of the outbox, pull of the registry (or the
//!    signed snapshot on a first sync), the permits feed.
//! 3. Revocations reloaded; the permits whose stored version changed are named with their new state.
//! 4. With [`SyncRequest::check_drift`], the registry cache is compared with the platform's
//!    checksums and drifted collections downloaded again.
//!
//! Progress goes to a callback, cancellation is a flag the caller sets from another thread (it
//! takes effect at the next request or page; what was applied stays), and an expired device token
//! is refreshed with the device key when [`TokenRefresh`] is given, the new token handed to its
//! callback at once (a phone's shell stores it in the Keystore/Keychain, the CLI in `sync.json`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use serde::Serialize;

use super::device::Device;
use super::error::AppError;
use crate::codes::DeviceSigner;
use crate::codes::rotation::{RefusedKey, extend_trust};
use crate::sync::client::RefreshedToken;
use crate::sync::{DriftCheck, Progress, RetryPolicy, StatusListCheck, SyncClient, SyncError};

/// How an expired token is refreshed: the id the platform gave at enrolment, the key the device
/// enrolled with, and where each new token goes (store it at once: the old one no longer works).
pub struct TokenRefresh {
    pub device_id: String,
    pub key: Arc<dyn DeviceSigner>,
    pub on_token: Box<dyn Fn(&RefreshedToken) + Send + Sync>,
}

impl std::fmt::Debug for TokenRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRefresh")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// What to sync with.
#[derive(Debug)]
pub struct SyncRequest {
    /// The platform, `http://HOST:PORT` or `https://…`.
    pub server_url: String,
    /// The device token (kept by the shell, never in the profile database on a phone).
    pub token: String,
    /// Refresh an expired token with the device key; `None`: an expired token ends the sync with
    /// `sync.token_expired`.
    pub refresh: Option<TokenRefresh>,
    /// Afterwards compare the registry cache with the platform's checksums.
    pub check_drift: bool,
    /// Retries and timeouts.
    pub policy: RetryPolicy,
}

impl SyncRequest {
    /// A sync of `server_url` with `token`, default policy, no refresh, no drift check.
    pub fn new(server_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            token: token.into(),
            refresh: None,
            check_drift: false,
            policy: RetryPolicy::default(),
        }
    }
}

/// What became of a signed document the sync fetches (status list, signer directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DocumentOutcome {
    /// No trust to verify it with.
    NotChecked,
    /// A newer one was verified and kept.
    Updated { sequence: u64 },
    /// The one held is current.
    Unchanged { sequence: u64 },
    /// The platform sent an older one than held: refused, the newer one kept.
    #[serde(rename = "older_refused")]
    Older { held: u64, received: u64 },
}

impl From<StatusListCheck> for DocumentOutcome {
    fn from(c: StatusListCheck) -> Self {
        match c {
            StatusListCheck::NotChecked => DocumentOutcome::NotChecked,
            StatusListCheck::Updated { sequence } => DocumentOutcome::Updated { sequence },
            StatusListCheck::Unchanged { sequence } => DocumentOutcome::Unchanged { sequence },
            StatusListCheck::Older { held, received } => DocumentOutcome::Older { held, received },
        }
    }
}

/// What the drift check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DriftOutcome {
    InSync,
    /// The platform changed meanwhile: nothing compared; sync and check again.
    NotComparable,
    /// These collections differed and were downloaded again.
    Refetched {
        collections: Vec<String>,
        refetched_rows: u64,
        pulled_changes: u64,
    },
}

/// A permit whose stored version the sync replaced with the platform's (another device acted on
/// it, or a conflict was decided against this device's step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedPermit {
    pub permit_id: String,
    /// Its state now (`approved`, `suspended`…).
    pub state: String,
    /// Its state before the sync; `None`: new on this device.
    pub previous_state: Option<String>,
}

/// What the trust step did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrustChange {
    /// The platform's trust file was fetched and put through the trust rule (false: the profile
    /// holds no trust to extend).
    pub checked: bool,
    /// Issuer keys now trusted that were not before (hex kids).
    pub added: Vec<String>,
    /// Keys the platform listed that the rule did not accept, and why.
    pub refused: Vec<RefusedKey>,
}

impl TrustChange {
    /// Whether the trust changed.
    pub fn changed(&self) -> bool {
        !self.added.is_empty()
    }
}

/// What one sync did: the view a sync screen (or `weldguard sync --json`) shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Outbox entries uploaded; of them applied now, already held by the platform, refused.
    pub pushed: u64,
    pub applied: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Registry changes downloaded, in pages; refetches after the platform's history was compacted.
    pub pulled_changes: u64,
    pub pages: u64,
    pub refetches: u32,
    /// Requests retried after network or server failures.
    pub retries: u32,
    /// Device tokens refreshed (each went to [`TokenRefresh::on_token`]).
    pub token_refreshes: u32,
    pub snapshot_chunks: u64,
    /// Permit heads received, and how many changed a stored permit ([`SyncSummary::changed_permits`]
    /// names them).
    pub pulled_permits: u64,
    pub permits_changed: u64,
    pub refetched_rows: u64,
    pub status_list: DocumentOutcome,
    pub signer_directory: DocumentOutcome,
    /// The status list held after the sync (its sequence), if any.
    pub status_list_sequence: Option<u64>,
    /// How old the revocation data is at the sync's time (seconds); `None`: never fetched.
    pub revocation_data_age_secs: Option<i64>,
    pub changed_permits: Vec<ChangedPermit>,
    pub trust: TrustChange,
    /// `None` unless asked for.
    pub drift: Option<DriftOutcome>,
}

/// Sync the profile with the platform at `now` (Unix seconds; when the trust saved is dated).
/// `progress` sees push and pull progress; set `cancel` to stop.
pub fn sync(
    device: &Device,
    request: SyncRequest,
    now: i64,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<SyncSummary, AppError> {
    let mut client = SyncClient::new(
        &request.server_url,
        Some(request.token.clone()),
        request.policy,
    )?;
    // Refreshes are counted here: one may happen in the trust step, before the client's own run.
    let refreshes = Arc::new(AtomicU32::new(0));
    if let Some(refresh) = request.refresh {
        let on_token = refresh.on_token;
        let count = refreshes.clone();
        client = client.with_refresh(&refresh.device_id, refresh.key, move |t| {
            count.fetch_add(1, Ordering::Relaxed);
            on_token(t)
        });
    }
    let trust = update_trust(device, &client, now, cancel)?;
    let held = device.trust();
    if !held.keys().is_empty() {
        client = client.with_trust(held);
    }
    let store = device.store();
    let before = versions(device)?;
    let report = client.sync(store, progress, cancel)?;
    device.reload_revocations()?;
    let after = versions(device)?;
    let changed_permits = after
        .iter()
        .filter_map(|(id, (state, digest))| match before.get(id) {
            Some((_, d)) if d == digest => None,
            previous => Some(ChangedPermit {
                permit_id: id.clone(),
                state: state.clone(),
                previous_state: previous.map(|(s, _)| s.clone()),
            }),
        })
        .collect();
    let drift = if request.check_drift {
        Some(match client.check_drift(store, progress, cancel)? {
            DriftCheck::InSync => DriftOutcome::InSync,
            DriftCheck::NotComparable => DriftOutcome::NotComparable,
            DriftCheck::Refetched {
                collections,
                report,
            } => DriftOutcome::Refetched {
                collections: collections.iter().map(|c| c.name().to_owned()).collect(),
                refetched_rows: report.refetched_rows,
                pulled_changes: report.pulled_changes,
            },
        })
    } else {
        None
    };
    if drift.is_some() {
        device.reload_revocations()?;
    }
    let held_list = store.status_list_info()?;
    Ok(SyncSummary {
        pushed: report.pushed,
        applied: report.applied,
        duplicate: report.duplicate,
        rejected: report.rejected,
        pulled_changes: report.pulled_changes,
        pages: report.pages,
        refetches: report.refetches,
        retries: report.retries,
        token_refreshes: refreshes.load(Ordering::Relaxed),
        snapshot_chunks: report.snapshot_chunks,
        pulled_permits: report.pulled_permits,
        permits_changed: report.permits_changed,
        refetched_rows: report.refetched_rows,
        status_list: report.status_list.into(),
        signer_directory: report.signer_directory.into(),
        status_list_sequence: held_list.as_ref().map(|i| i.sequence),
        revocation_data_age_secs: held_list.as_ref().map(|i| i.age_secs(now)),
        changed_permits,
        trust,
        drift,
    })
}

/// The trust step alone: fetch the platform's trust file over `client`, apply the trust rule to
/// what the profile holds, save and hold the result when it added keys. A profile that holds no
/// trust learns nothing (the channel is not a root).
pub fn update_trust(
    device: &Device,
    client: &SyncClient,
    now: i64,
    cancel: &AtomicBool,
) -> Result<TrustChange, AppError> {
    let held = device.trust();
    if held.keys().is_empty() {
        return Ok(TrustChange::default());
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(SyncError::Cancelled.into());
    }
    let offered = client.trust_file_or_cancel(cancel)?;
    let update = extend_trust(&held, &offered, &device.revocations());
    if update.trust != held {
        device.save_trust(update.trust, now.saturating_mul(1000))?;
    }
    Ok(TrustChange {
        checked: true,
        added: update.added,
        refused: update.refused,
    })
}

type Versions = BTreeMap<String, (String, Vec<u8>)>;

fn versions(device: &Device) -> Result<Versions, AppError> {
    Ok(device
        .store()
        .permit_versions()?
        .into_iter()
        .map(|(id, state, digest)| (id, (state, digest)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{IssuerAlg, IssuerKey, TrustStore, TrustedKey};
    use crate::store::test_support::TempDir;

    #[test]
    fn a_profile_without_an_anchor_learns_no_trust_from_the_channel() {
        let dir = TempDir::new();
        let device = Device::open(dir.path().join("p.sqlite")).unwrap();
        // Nothing listens on port 9: the trust step must not even ask.
        let client = SyncClient::new(
            "http://127.0.0.1:9",
            Some("t".into()),
            RetryPolicy::default(),
        )
        .unwrap();
        let change =
            update_trust(&device, &client, 1_800_000_000, &AtomicBool::new(false)).unwrap();
        assert_eq!(change, TrustChange::default());
        assert!(!change.changed());
        assert!(device.store().saved_trust().unwrap().is_none());
    }

    #[test]
    fn a_bad_address_or_a_cancelled_sync_changes_nothing() {
        let dir = TempDir::new();
        let device = Device::open(dir.path().join("p.sqlite")).unwrap();
        let mut trust = TrustStore::new();
        let key = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        trust.add(TrustedKey::for_key(&key, 1, None)).unwrap();
        device.save_trust(trust.clone(), 1).unwrap();
        let err = sync(
            &device,
            SyncRequest::new("ftp://nowhere", "t"),
            2,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert_eq!(crate::domain::Explain::code(&err), "sync.invalid_address");
        let cancelled = AtomicBool::new(true);
        let err = sync(
            &device,
            SyncRequest::new("http://127.0.0.1:9", "t"),
            2,
            &mut |_| {},
            &cancelled,
        )
        .unwrap_err();
        assert!(
            matches!(err, AppError::Sync(SyncError::Cancelled)),
            "{err:?}"
        );
        assert_eq!(device.trust(), trust);
        assert_eq!(
            device.store().saved_trust().unwrap().unwrap().saved_at_ms,
            1
        );
    }
}
