//! [`Device`]: the handle a shell keeps for one user profile. It owns the profile's database, the
//! trusted issuer keys, the revocations the registry cache holds and the replay cache of
//! presentations seen, and answers scan-to-start questions offline, recording each answer with its
//! outbox entry.

use chrono::DateTime;

use super::error::WeldGuardError;
use super::types::{CodeCheck, OutboxSummary, Reason, RevocationStatus, StartWorkResult};
use crate::codes::TrustStore;
use crate::startwork::{PermitContext, ScanToStart, scan_to_start};
use crate::store::NewWorkSession;

/// One user profile's offline state: the application layer's [`crate::app::Device`] (trust loaded
/// from the store on open).
#[derive(uniffi::Object)]
pub struct Device {
    pub(super) app: crate::app::Device,
}

/// The shell's clock, for when a trust file it handed in was saved (the adapter reads it; the
/// services take time as input).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn time(now_unix: i64) -> Result<DateTime<chrono::Utc>, WeldGuardError> {
    DateTime::from_timestamp(now_unix, 0).ok_or_else(|| {
        WeldGuardError::invalid_text(
            "input.time",
            format!("时间超出范围：{now_unix}"),
            format!("The time is out of range: {now_unix}"),
        )
    })
}

#[uniffi::export]
impl Device {
    /// Open (or create) the profile database at `db_path`; migrations run here. A file from a newer
    /// app version, a damaged file or a non-database file is refused and left untouched.
    #[uniffi::constructor]
    pub fn open(db_path: String) -> Result<Self, WeldGuardError> {
        Ok(Self {
            app: crate::app::Device::open(&db_path)?,
        })
    }

    /// Hand in a trust file (JSON) the shell keeps, for profiles enrolled before the trust was kept
    /// in the profile database: its keys the profile does not hold are added and saved (keys held
    /// keep what a later rotation recorded, see [`crate::app::Device::adopt_trust`]). Profiles
    /// enrolled through the core need not call it. A bad file changes nothing.
    pub fn set_trust(&self, trust_json: String) -> Result<(), WeldGuardError> {
        let trust = TrustStore::from_json(&trust_json)?;
        self.app.adopt_trust(&trust, now_ms())?;
        Ok(())
    }

    /// Re-read the revocations from the registry cache (after a sync).
    pub fn reload_revocations(&self) -> Result<(), WeldGuardError> {
        self.app.reload_revocations()?;
        Ok(())
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
    /// outbox entry, in one transaction. Every failed condition is in `reasons`.
    pub fn start_work(
        &self,
        machine_text: String,
        welder_text: String,
        site_id: String,
        now_unix: i64,
    ) -> Result<StartWorkResult, WeldGuardError> {
        let at = time(now_unix)?;
        let store = self.app.store();
        let outcome = self.app.with_verifier(|verifier, replay| {
            let question = ScanToStart {
                machine_text: &machine_text,
                welder_text: &welder_text,
                permit: PermitContext {
                    source: store,
                    site_id: &site_id,
                },
                at,
            };
            scan_to_start(&question, verifier, replay, store)
        });
        let decision = &outcome.decision;
        let session_id = match (&outcome.machine_id, &outcome.certificate_no) {
            (Some(machine_id), Some(certificate_no)) => {
                let session = store.record_work_session(
                    NewWorkSession {
                        machine_id: machine_id.clone(),
                        certificate_no: certificate_no.clone(),
                        started_at_ms: now_unix.saturating_mul(1000),
                        allowed: decision.allowed,
                        reason_codes: decision.denials().map(|f| f.code.to_owned()).collect(),
                        permit_id: outcome.permit_id.clone(),
                    },
                    now_unix.saturating_mul(1000),
                )?;
                Some(session.id)
            }
            // Nothing identifiable was scanned: there is no work session to record.
            _ => None,
        };
        Ok(StartWorkResult {
            allowed: decision.allowed,
            scan_exempt: decision.scan_exempt,
            rule_set: serde_json::to_value(decision.rule_set)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            machine_id: outcome.machine_id.clone(),
            certificate_no: outcome.certificate_no.clone(),
            permit_id: outcome.permit_id.clone(),
            reasons: decision.findings.iter().map(Reason::from).collect(),
            session_id,
        })
    }

    /// The signed revocation status list the device holds and its age at `now_unix`; `None` before
    /// the first sync that fetched one (then the shell says revocation data was never updated).
    pub fn revocation_status(
        &self,
        now_unix: i64,
    ) -> Result<Option<RevocationStatus>, WeldGuardError> {
        Ok(self
            .app
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
        let c = self.app.store().outbox_counts()?;
        Ok(OutboxSummary {
            pending: c.pending,
            sent: c.sent,
            applied: c.applied,
            rejected: c.rejected,
        })
    }
}
