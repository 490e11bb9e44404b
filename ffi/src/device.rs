//! [`Device`]: the handle a shell keeps for one user profile. It owns the profile's database, the
//! trusted issuer keys, the revocations the registry cache holds and the replay cache of
//! presentations seen, and answers scan-to-start questions offline, recording each answer with its
//! outbox entry.

use super::error::WeldGuardError;
use std::sync::Arc;

use super::types::{
    CodeCheck, DevicePosition, Lang, OutboxSummary, RevocationStatus, StartWorkResult,
};
use weldguard_core::app;
use weldguard_core::app::start_work::{PositionInput, StartWorkInput, start_work};
use weldguard_core::codes::TrustStore;
use weldguard_core::store::Store;

/// One user profile's offline state: the application layer's [`app::Device`].
#[derive(uniffi::Object)]
pub struct Device {
    pub(super) app: app::Device,
}

impl Device {
    pub(super) fn store(&self) -> &Store {
        self.app.store()
    }
}

#[uniffi::export]
impl Device {
    /// Open (or create) the profile database at `db_path`; migrations run here. A file from a newer
    /// app version, a damaged file or a non-database file is refused and left untouched.
    #[uniffi::constructor]
    pub fn open(db_path: String) -> Result<Arc<Self>, WeldGuardError> {
        Ok(Arc::new(Self {
            app: app::Device::open(&db_path)?,
        }))
    }

    /// Hand in a trust file (JSON) the shell keeps, for profiles enrolled before the trust was kept
    /// in the profile database: its keys the profile does not hold are added and saved at
    /// `now_unix` (keys held keep what a later rotation recorded, see
    /// [`app::Device::adopt_trust`]). Profiles enrolled through the core need not call it. A bad file
    /// changes nothing.
    pub fn set_trust(&self, trust_json: String, now_unix: i64) -> Result<(), WeldGuardError> {
        let trust = TrustStore::from_json(&trust_json)?;
        self.app
            .adopt_trust(&trust, now_unix.saturating_mul(1000))?;
        Ok(())
    }

    /// Re-read the revocations from the registry cache (after a sync).
    pub fn reload_revocations(&self) -> Result<(), WeldGuardError> {
        Ok(self.app.reload_revocations()?)
    }

    /// Verify one scanned code at `now_unix`. Presentations count as seen (a second scan of the same
    /// presentation is a replay).
    pub fn verify_code(&self, text: String, now_unix: i64) -> CodeCheck {
        self.app.with_verifier(
            |verifier, replay| match verifier.verify(&text, now_unix, replay) {
                Ok(code) => CodeCheck::verified(&code),
                Err(e) => CodeCheck::refused(&e),
            },
        )
    }

    /// Scan to start (扫码开机): decide from the machine label's and the welder's scanned texts at
    /// `site_id` and `now_unix`, and record the answer (allowed or not) as a work session with its
    /// outbox entry, in one transaction, with the device's position when given (degrees and
    /// accuracy in metres; out of range is an input error and nothing is saved). Every failed
    /// condition is in `reasons`, its `text` in `lang`.
    pub fn start_work(
        &self,
        machine_text: String,
        welder_text: String,
        site_id: String,
        now_unix: i64,
        position: Option<DevicePosition>,
        lang: Lang,
    ) -> Result<StartWorkResult, WeldGuardError> {
        let view = start_work(
            &self.app,
            StartWorkInput {
                machine_text,
                welder_text,
                site_id,
                now: now_unix,
                position: position.map(|p| PositionInput::Degrees {
                    latitude: p.latitude,
                    longitude: p.longitude,
                    accuracy_m: p.accuracy_m,
                }),
                lang: lang.into(),
            },
        )?;
        Ok(StartWorkResult {
            allowed: view.allowed,
            scan_exempt: view.scan_exempt,
            rule_set: view.rule_set.into(),
            machine_id: view.machine_id,
            certificate_no: view.certificate_no,
            permit_id: view.permit_id,
            reasons: view.reasons.into_iter().map(Into::into).collect(),
            session_id: view.session_id,
        })
    }

    /// The signed revocation status list the device holds and its age at `now_unix`; `None` before
    /// the first sync that fetched one (then the shell says revocation data was never updated).
    pub fn revocation_status(
        &self,
        now_unix: i64,
    ) -> Result<Option<RevocationStatus>, WeldGuardError> {
        Ok(self
            .store()
            .status_list_info()?
            .map(|info| RevocationStatus {
                sequence: info.sequence,
                issued_at: info.issued_at,
                fetched_at_ms: info.fetched_at_ms,
                age_secs: info.age_secs(now_unix),
                entries: info.entries,
            }))
    }

    /// Counts of the outbox by state.
    pub fn outbox_summary(&self) -> Result<OutboxSummary, WeldGuardError> {
        let c = self.store().outbox_counts()?;
        Ok(OutboxSummary {
            pending: c.pending,
            sent: c.sent,
            applied: c.applied,
            rejected: c.rejected,
        })
    }
}
