//! History through the FFI, over [`weldguard_core::app::history`]: the work sessions this device
//! recorded (newest first, a page at a time), its outbox entries with their state and, for an
//! entry the platform refused, the platform's code and message; the inspections recorded. Times
//! are Unix seconds.

use super::Device;
use super::error::WeldGuardError;
use super::inspection::Violation;
use super::types::{DevicePosition, Lang, OutboxSummary};
use weldguard_core::app::history as app_history;
use weldguard_core::store::OutboxState as StoreOutboxState;

/// Where an outbox entry's upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxState {
    /// Not pushed yet, or the last push failed.
    Pending,
    /// Pushed; no answer yet.
    Sent,
    /// The platform applied it (or already had it).
    Applied,
    /// The platform refused it; not pushed again.
    Rejected,
}

impl From<StoreOutboxState> for OutboxState {
    fn from(s: StoreOutboxState) -> Self {
        match s {
            StoreOutboxState::Pending => OutboxState::Pending,
            StoreOutboxState::Sent => OutboxState::Sent,
            StoreOutboxState::Applied => OutboxState::Applied,
            StoreOutboxState::Rejected => OutboxState::Rejected,
        }
    }
}

/// One recorded work session.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WorkSession {
    /// Also its outbox idempotency key.
    pub id: String,
    pub machine_id: String,
    pub certificate_no: String,
    /// When the welder asked to start, Unix seconds.
    pub started_at: i64,
    pub allowed: bool,
    /// The stable codes of every failed condition (empty when allowed).
    pub reason_codes: Vec<String>,
    pub permit_id: Option<String>,
    /// The device's position at the scan, as recorded (1e-7 degrees, whole metres).
    pub position: Option<DevicePosition>,
    pub outbox_state: OutboxState,
}

/// A page of work sessions, newest first.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WorkSessionsPage {
    pub sessions: Vec<WorkSession>,
    /// Pass it back as `before` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// Which outbox entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxFilter {
    /// Pending, or sent without an answer: what the next sync pushes.
    Unresolved,
    Pending,
    Sent,
    Applied,
    Rejected,
    All,
}

/// Why the platform refused an entry, as it said it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Refusal {
    /// The platform's stable code; `record.rejected` when it gave none.
    pub code: String,
    pub message: String,
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutboxEntry {
    /// Position in the outbox (creation order).
    pub seq: i64,
    /// Also the record's id.
    pub idempotency_key: String,
    /// The record kind (`work_session`, `inspection`, `permit`…).
    pub kind: String,
    /// Unix seconds.
    pub created_at: i64,
    pub state: OutboxState,
    /// Pushes that failed without an answer.
    pub attempts: u32,
    pub last_attempt_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// For a rejected entry: the platform's code and message.
    pub refusal: Option<Refusal>,
}

/// Outbox entries and the counts by state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutboxList {
    /// Oldest first.
    pub entries: Vec<OutboxEntry>,
    pub counts: OutboxSummary,
}

/// One recorded inspection, its seal verified.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InspectionSummary {
    pub inspection_id: String,
    pub site_id: String,
    /// Unix seconds.
    pub at: i64,
    pub inspector_name: String,
    pub inspector_id: String,
    pub permit_id: Option<String>,
    pub violations: Vec<Violation>,
    pub report_required: bool,
}

fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

#[uniffi::export]
impl Device {
    /// The work sessions recorded on this device, newest first: `limit` of them (1–10,000), older
    /// than the `before` cursor of the previous page when given. A limit out of range is
    /// `InvalidInput` (`input.limit`).
    pub fn work_sessions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<WorkSessionsPage, WeldGuardError> {
        let page = app_history::work_sessions(&self.app, before, limit)?;
        Ok(WorkSessionsPage {
            sessions: page
                .sessions
                .into_iter()
                .map(|s| WorkSession {
                    id: s.id,
                    machine_id: s.machine_id,
                    certificate_no: s.certificate_no,
                    started_at: s.started_at,
                    allowed: s.allowed,
                    reason_codes: s.reason_codes,
                    permit_id: s.permit_id,
                    position: s.position.map(|p| DevicePosition {
                        latitude: f64::from(p.latitude_e7) / 1e7,
                        longitude: f64::from(p.longitude_e7) / 1e7,
                        accuracy_m: f64::from(p.accuracy_m),
                    }),
                    outbox_state: s.outbox_state.into(),
                })
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// The outbox entries `filter` selects (at most `limit`, 1–10,000), oldest first, with why
    /// the platform refused each rejected one, and the counts of every state.
    pub fn outbox_entries(
        &self,
        filter: OutboxFilter,
        limit: u32,
    ) -> Result<OutboxList, WeldGuardError> {
        let filter = match filter {
            OutboxFilter::Unresolved => app_history::OutboxFilter::Unresolved,
            OutboxFilter::Pending => app_history::OutboxFilter::Pending,
            OutboxFilter::Sent => app_history::OutboxFilter::Sent,
            OutboxFilter::Applied => app_history::OutboxFilter::Applied,
            OutboxFilter::Rejected => app_history::OutboxFilter::Rejected,
            OutboxFilter::All => app_history::OutboxFilter::All,
        };
        let view = app_history::outbox(&self.app, filter, limit)?;
        Ok(OutboxList {
            entries: view
                .entries
                .into_iter()
                .map(|e| OutboxEntry {
                    seq: e.entry.seq,
                    idempotency_key: e.entry.idempotency_key,
                    kind: e.entry.kind,
                    created_at: seconds(e.entry.created_at_ms),
                    state: e.entry.state.into(),
                    attempts: e.entry.attempts,
                    last_attempt_at: e.entry.last_attempt_at_ms.map(seconds),
                    resolved_at: e.entry.resolved_at_ms.map(seconds),
                    refusal: e.refusal.map(|r| Refusal {
                        code: r.code,
                        message: r.message,
                    }),
                })
                .collect(),
            counts: OutboxSummary {
                pending: view.counts.pending,
                sent: view.counts.sent,
                applied: view.counts.applied,
                rejected: view.counts.rejected,
            },
        })
    }

    /// The inspections recorded on this device, newest first (at most `limit`, 1–10,000), their
    /// violations' texts in `lang`. A record whose seal no longer verifies is an error.
    pub fn inspections(
        &self,
        limit: u32,
        lang: Lang,
    ) -> Result<Vec<InspectionSummary>, WeldGuardError> {
        Ok(app_history::inspections(&self.app, limit)?
            .into_iter()
            .map(|i| InspectionSummary {
                inspection_id: i.inspection_id,
                site_id: i.site_id,
                at: i.at,
                inspector_name: i.inspector.name,
                inspector_id: i.inspector.id,
                permit_id: i.permit_id,
                violations: i
                    .violations
                    .iter()
                    .map(|v| Violation::of(v, lang))
                    .collect(),
                report_required: i.report_required,
            })
            .collect())
    }
}
