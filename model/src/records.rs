//! The records devices and the platform exchange, in the shapes both store: registry changes (the
//! feed a device caches), work sessions and permit steps (what a device pushes). The device's store
//! writes them to SQLite and the platform's database to SQLite or PostgreSQL; both read this one
//! definition.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::{Binding, Licence, Machine, Revocation};
use crate::permit::{ActionKind, Permit, PermitState};

/// An issuer key the device trusts to sign codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedIssuerKey {
    /// Key id, as in the COSE `kid` header (hex).
    pub kid: String,
    /// COSE algorithm name, e.g. `ES256` or `EdDSA`.
    pub algorithm: String,
    /// The public key (SEC1 point for ES256, 32 bytes for Ed25519).
    pub public_key: Vec<u8>,
    /// Who holds the key (e.g. the city emergency management bureau).
    pub issuer: String,
}

/// How the platform's calendar marks a day (国务院办公厅 holiday arrangements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarDayKind {
    /// A statutory holiday (法定节假日).
    Holiday,
    /// A rest day that is not a weekend (调休).
    RestDay,
    /// A weekend day that is a working day (调休上班).
    Workday,
}

/// One day of the platform's work calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: CalendarDayKind,
}

/// A sensitive period the platform announces (特殊敏感时期): hot work in it is raised one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedPeriod {
    /// The platform's id for the announcement (e.g. `2027-lianghui`).
    pub period_id: String,
    pub name: String,
    /// [from, until) in Unix seconds.
    pub from: i64,
    pub until: i64,
}

/// One change to the registry cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RegistryChange {
    UpsertLicence(Licence),
    DeleteLicence { certificate_no: String },
    UpsertMachine(Machine),
    DeleteMachine { machine_id: String },
    Bind(Binding),
    Unbind(Binding),
    Revoke(Revocation),
    Unrevoke(Revocation),
    UpsertIssuerKey(TrustedIssuerKey),
    DeleteIssuerKey { kid: String },
    SetCalendarDay(CalendarDay),
    ClearCalendarDay { date: NaiveDate },
    AnnouncePeriod(AnnouncedPeriod),
    WithdrawPeriod { period_id: String },
}

/// The work calendar held in live registry rows (the platform's view of its own feed), in the
/// order [`Store::work_calendar`] reads it on a device: days by date, periods by start then id, so
/// the platform and a device decide a permit's level from the same list.
pub fn work_calendar_of<'a>(
    rows: impl IntoIterator<Item = &'a RegistryChange>,
) -> crate::permit::WorkCalendar {
    let mut calendar = crate::permit::WorkCalendar::default();
    let mut periods: Vec<&AnnouncedPeriod> = Vec::new();
    for row in rows {
        match row {
            RegistryChange::SetCalendarDay(day) => match day.kind {
                CalendarDayKind::Holiday => calendar.holidays.push(day.date),
                CalendarDayKind::RestDay => calendar.extra_rest_days.push(day.date),
                CalendarDayKind::Workday => calendar.adjusted_workdays.push(day.date),
            },
            RegistryChange::AnnouncePeriod(period) => periods.push(period),
            _ => {}
        }
    }
    calendar.holidays.sort();
    calendar.extra_rest_days.sort();
    calendar.adjusted_workdays.sort();
    periods.sort_by(|a, b| (a.from, &a.period_id).cmp(&(b.from, &b.period_id)));
    calendar.sensitive_periods = periods
        .into_iter()
        .map(|p| crate::permit::SensitivePeriod {
            name: p.name.clone(),
            from: p.from,
            until: p.until,
        })
        .collect();
    calendar
}

/// The kinds of record the device makes (the outbox entry's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A start-work decision and the work it let start (or refused).
    WorkSession,
    /// One life-cycle step of a hot-work permit (the payload carries the whole new permit).
    PermitStep,
    /// A sealed inspection record.
    Inspection,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::WorkSession => "work_session",
            RecordKind::PermitStep => "permit_step",
            RecordKind::Inspection => "inspection",
        }
    }
}

/// A work session to record: the outcome of a start-work decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWorkSession {
    pub machine_id: String,
    pub certificate_no: String,
    /// When the welder asked to start, milliseconds since the Unix epoch (UTC).
    pub started_at_ms: i64,
    /// Whether the decision let the work start.
    pub allowed: bool,
    /// The stable codes of every failed condition (empty when allowed).
    pub reason_codes: Vec<String>,
    /// The hot-work permit the work runs under, when there is one.
    pub permit_id: Option<String>,
    /// Where the device was at the scan, when the shell had a position.
    pub position: Option<ScanPosition>,
}

/// The device's position at a scan-to-start: integer 1e-7 degrees (WGS-84, as the phone's
/// location service reports it) and the fix's accuracy in whole metres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPosition {
    /// Latitude in 1e-7 degrees, -900000000..=900000000.
    pub latitude_e7: i32,
    /// Longitude in 1e-7 degrees, -1800000000..=1800000000.
    pub longitude_e7: i32,
    /// The fix's accuracy radius in metres (0..=[`ScanPosition::MAX_ACCURACY_M`]).
    pub accuracy_m: u32,
}

impl ScanPosition {
    /// The largest accuracy radius kept: 100 km (a coarser fix says nothing about the site).
    pub const MAX_ACCURACY_M: u32 = 100_000;

    /// Whether every part is in range (the platform checks pushed records with this).
    pub fn in_range(&self) -> bool {
        (-900_000_000..=900_000_000).contains(&self.latitude_e7)
            && (-1_800_000_000..=1_800_000_000).contains(&self.longitude_e7)
            && self.accuracy_m <= Self::MAX_ACCURACY_M
    }
}

/// A recorded work session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkSession {
    /// UUIDv7 made on the device; also the outbox idempotency key.
    pub id: String,
    pub machine_id: String,
    pub certificate_no: String,
    pub started_at_ms: i64,
    pub allowed: bool,
    pub reason_codes: Vec<String>,
    pub permit_id: Option<String>,
    pub created_at_ms: i64,
    /// Where the device was at the scan; absent from the JSON when none was recorded (records made
    /// before positions were kept read the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<ScanPosition>,
}

/// The outbox payload of a permit step (record kind `permit_step`): the whole new permit and the
/// step that made it. The platform reads the same type.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PermitStepRecord {
    /// The step's record id: its idempotency key.
    pub step_id: String,
    pub permit_id: String,
    /// `draft`, `submit`, `site_check`, … ([`action_name`]).
    pub action: String,
    /// The permit's state after the step.
    pub state: PermitState,
    /// Hex SHA-256 of the permit ([`crate::permit::digest`]).
    pub digest: String,
    pub permit: Permit,
}

/// The snake_case name of a state (as stored in the `state` column).
pub fn state_name(state: PermitState) -> &'static str {
    match state {
        PermitState::Draft => "draft",
        PermitState::Submitted => "submitted",
        PermitState::Checked => "checked",
        PermitState::Approved => "approved",
        PermitState::Active => "active",
        PermitState::Suspended => "suspended",
        PermitState::Completed => "completed",
        PermitState::Closed => "closed",
        PermitState::Rejected => "rejected",
        PermitState::Cancelled => "cancelled",
        PermitState::Expired => "expired",
    }
}

/// The snake_case name of an action kind.
pub fn action_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Edit => "edit",
        ActionKind::Submit => "submit",
        ActionKind::SiteCheck => "site_check",
        ActionKind::Approve => "approve",
        ActionKind::Start => "start",
        ActionKind::Suspend => "suspend",
        ActionKind::Resume => "resume",
        ActionKind::Complete => "complete",
        ActionKind::Close => "close",
        ActionKind::Reject => "reject",
        ActionKind::Cancel => "cancel",
        ActionKind::Expire => "expire",
        ActionKind::RecordGas => "record_gas",
    }
}
