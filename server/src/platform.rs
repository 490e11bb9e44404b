//! What the platform keeps about every applied record for the bureau's figures and ledger (#19,
//! docs/adr/0017-warnings-and-scope.md, "Statistics, stream, CSV"): the China-time day of a
//! moment, the per-day per-place counters (`daily_counts`, kept inside the push's transaction
//! so a statistics request reads a few rows per day and place, never the records), the day's
//! ledger rows (台账), and the CSV cells the exports write (RFC 4180 quoting, formula-safe).

use chrono::{DateTime, FixedOffset, NaiveDate};
use weldguard_model::inspect::{Inspection, ScanOutcome};
use weldguard_model::records::{PermitStepRecord, WorkSession, state_name};
use weldguard_model::warnings::{Place, Scope};

use crate::db::{AppliedRecord, DbError, PushTx};
use crate::warnings::MachineFacts;

/// China Standard Time (UTC+8, no daylight saving): the day of every figure and ledger.
pub const CHINA_OFFSET_SECS: i32 = 8 * 3600;

/// Counter names in `daily_counts`.
pub const STARTS_ALLOWED: &str = "starts_allowed";
pub const STARTS_REFUSED: &str = "starts_refused";
pub const INSPECTIONS: &str = "inspections";
pub const WARNINGS_OPEN: &str = "warnings_open";
/// Prefix of the per-state permit counters (`permits.approved`, …).
pub const PERMITS_PREFIX: &str = "permits.";

/// The China-time day (`YYYY-MM-DD`) of a Unix-ms moment.
pub fn china_day(at_ms: i64) -> String {
    let offset = FixedOffset::east_opt(CHINA_OFFSET_SECS).unwrap_or_else(|| {
        // 8 h is always a valid offset; UTC only if chrono ever said otherwise.
        FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!())
    });
    match DateTime::from_timestamp_millis(at_ms) {
        Some(t) => t.with_timezone(&offset).format("%Y-%m-%d").to_string(),
        None => "0000-00-00".to_owned(),
    }
}

/// The Unix-ms start of a China-time day.
pub fn day_start_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis() - i64::from(CHINA_OFFSET_SECS) * 1000)
        .unwrap_or(0)
}

/// A place as the counters and the ledger key it: unplaced is `("", "")`.
pub fn place_key(place: Option<&Place>) -> (String, String) {
    match place {
        Some(p) => (p.district.clone(), p.town.clone().unwrap_or_default()),
        None => (String::new(), String::new()),
    }
}

/// The `(district, town)` filter of a scope, for the counters and ledger queries.
pub fn scope_filter(scope: &Scope) -> (Option<&str>, Option<&str>) {
    match scope {
        Scope::City => (None, None),
        Scope::District(d) => (Some(d.as_str()), None),
        Scope::Town(t) => (None, Some(t.as_str())),
    }
}

/// One row of `daily_counts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    pub day: String,
    pub district: String,
    pub town: String,
    pub metric: String,
    pub n: i64,
}

/// One ledger row (台账): an applied scan-to-start, inspection or permit step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// Position in the ledger (assigned by the store; 0 before).
    pub id: i64,
    pub key: String,
    pub day: String,
    pub at_ms: i64,
    /// `start`, `inspection` or `permit_step`.
    pub kind: String,
    pub district: String,
    pub town: String,
    pub site_id: Option<String>,
    pub machine_id: Option<String>,
    /// The welder's certificate, the inspector, or the person who pushed the step.
    pub person: Option<String>,
    /// `allowed`/`refused`, `violations:N`, `ACTION→STATE`.
    pub decision: String,
    /// Reasons, permit id, … (free text).
    pub detail: String,
    pub position: Option<(i32, i32, u32)>,
}

/// A permit's latest state as counted: the day and place it is counted at, and the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitCount {
    pub day: String,
    pub district: String,
    pub town: String,
    pub state: String,
}

/// The place of a work session: its machine's, else its welder's licence holder's.
pub fn session_place(
    tx: &mut dyn PushTx,
    facts: Option<&MachineFacts>,
    certificate_no: &str,
) -> Result<Option<Place>, DbError> {
    match facts {
        Some(f) => Ok(Some(f.place.clone())),
        None => tx.licence_place(certificate_no),
    }
}

/// Count and ledger an applied work session (its place already known).
pub fn on_session(
    tx: &mut dyn PushTx,
    record: &AppliedRecord<'_>,
    session: &WorkSession,
    place: Option<&Place>,
    site_id: Option<&str>,
) -> Result<(), DbError> {
    let day = china_day(session.started_at_ms);
    let (district, town) = place_key(place);
    let metric = if session.allowed {
        STARTS_ALLOWED
    } else {
        STARTS_REFUSED
    };
    tx.count(&day, &district, &town, metric, 1)?;
    tx.ledger(&LedgerRow {
        id: 0,
        key: record.key.to_owned(),
        day,
        at_ms: session.started_at_ms,
        kind: "start".to_owned(),
        district,
        town,
        site_id: site_id.map(str::to_owned),
        machine_id: Some(session.machine_id.clone()),
        person: Some(session.certificate_no.clone()),
        decision: if session.allowed {
            "allowed"
        } else {
            "refused"
        }
        .to_owned(),
        detail: session.reason_codes.join(" "),
        position: session
            .position
            .map(|p| (p.latitude_e7, p.longitude_e7, p.accuracy_m)),
    })
}

/// Count and ledger an applied inspection, at its site's place.
pub fn on_inspection(
    tx: &mut dyn PushTx,
    record: &AppliedRecord<'_>,
    inspection: &Inspection,
) -> Result<(), DbError> {
    let body = &inspection.body;
    let place = tx.site_place(&body.site_id)?;
    // An inspection's time is Unix seconds.
    let at_ms = body.at.saturating_mul(1000);
    let day = china_day(at_ms);
    let (district, town) = place_key(place.as_ref());
    tx.count(&day, &district, &town, INSPECTIONS, 1)?;
    let machine_id = match &body.machine {
        ScanOutcome::Verified { claims } => Some(claims.machine_id.clone()),
        _ => None,
    };
    tx.ledger(&LedgerRow {
        id: 0,
        key: record.key.to_owned(),
        day,
        at_ms,
        kind: "inspection".to_owned(),
        district,
        town,
        site_id: Some(body.site_id.clone()),
        machine_id,
        person: Some(format!("{} ({})", body.inspector.name, body.inspector.id)),
        decision: format!("violations:{}", body.violations.len()),
        detail: body.notes.clone(),
        position: body.location.and_then(|l| {
            Some((
                i32::try_from(l.lat_e7).ok()?,
                i32::try_from(l.lon_e7).ok()?,
                0_u32,
            ))
        }),
    })
}

/// Count (latest state per permit) and ledger an applied permit step: a permit is counted on the
/// China day its validity starts, at its site's place (else its first machine's), as kept when
/// its first step arrived; an applied step is the permit's new head (crate::permits), so its
/// state replaces the one counted before.
pub fn on_permit_step(
    tx: &mut dyn PushTx,
    record: &AppliedRecord<'_>,
    step: &PermitStepRecord,
    pusher: Option<&str>,
) -> Result<(), DbError> {
    let content = &step.permit.content;
    let state = state_name(step.state).to_owned();
    let before = tx.permit_count(&step.permit_id)?;
    let counted = match &before {
        Some(b) => PermitCount { state, ..b.clone() },
        None => {
            let mut place = tx.site_place(&content.site.site_id)?;
            if place.is_none()
                && let Some(machine) = content.machines.first()
            {
                place = tx.machine_facts(machine)?.map(|f| f.place);
            }
            let (district, town) = place_key(place.as_ref());
            PermitCount {
                // Validity is in Unix seconds.
                day: china_day(content.valid_from.saturating_mul(1000)),
                district,
                town,
                state,
            }
        }
    };
    if before.as_ref().map(|b| b.state.as_str()) != Some(counted.state.as_str()) {
        if let Some(b) = &before {
            let metric = format!("{PERMITS_PREFIX}{}", b.state);
            tx.count(&b.day, &b.district, &b.town, &metric, -1)?;
        }
        let metric = format!("{PERMITS_PREFIX}{}", counted.state);
        tx.count(&counted.day, &counted.district, &counted.town, &metric, 1)?;
    }
    tx.put_permit_count(&step.permit_id, &counted)?;
    tx.ledger(&LedgerRow {
        id: 0,
        key: record.key.to_owned(),
        day: china_day(record.at_ms),
        at_ms: record.at_ms,
        kind: "permit_step".to_owned(),
        district: counted.district.clone(),
        town: counted.town.clone(),
        site_id: Some(content.site.site_id.clone()),
        machine_id: content.machines.first().cloned(),
        person: pusher.map(str::to_owned),
        decision: format!("{}→{}", step.action, counted.state),
        detail: format!("permit {}", step.permit_id),
        position: None,
    })
}

/// One CSV cell: RFC 4180 quoting (a cell holding `"`, `,`, CR or LF is quoted, quotes doubled),
/// and a cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, tab
/// or CR) is prefixed with `'`.
pub fn csv_cell(text: &str) -> String {
    let safe = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if safe.contains(['"', ',', '\r', '\n']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

/// One CSV line (CRLF-terminated, as RFC 4180 writes it).
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The UTF-8 byte order mark the exports begin with, so Excel reads Chinese correctly.
pub const BOM: &str = "\u{feff}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_days() {
        // 2026-12-07 15:59:59.999 UTC is 23:59:59.999 in Beijing; a millisecond later is the 8th.
        let day = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        let start = day_start_ms(day);
        assert_eq!(china_day(start - 1), "2026-12-07");
        assert_eq!(china_day(start), "2026-12-08");
    }

    #[test]
    fn csv_cells_are_quoted_and_formula_safe() {
        assert_eq!(csv_cell("焊机 A"), "焊机 A");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_line(&["a", "=b"]), "a,'=b\r\n");
    }
}
