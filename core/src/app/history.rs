//! History: the work sessions this device recorded (newest first, a page at a time) and its outbox
//! entries with their state, and for an entry the platform refused, why (the code and message as
//! the platform sent them); the counts by state.

use serde::Serialize;

use super::{AppError, Device};
use crate::store::outbox::OutboxCounts;
use crate::store::{OutboxEntry, OutboxState, ScanPosition};

/// The most entries one page may hold.
pub const MAX_PAGE: u32 = 10_000;

fn check_limit(limit: u32) -> Result<usize, AppError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(AppError::input(
            "input.limit",
            format!("每页条数应为 1–{MAX_PAGE}：{limit}"),
            format!("A page holds 1–{MAX_PAGE} entries: {limit}"),
        ));
    }
    Ok(limit as usize)
}

/// One recorded work session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
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
    pub position: Option<ScanPosition>,
    /// Where its upload stands.
    pub outbox_state: OutboxState,
}

/// A page of work sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionsPage {
    pub sessions: Vec<SessionView>,
    /// Pass it back as `before` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// The work sessions recorded on this device, newest first: `limit` of them (1–[`MAX_PAGE`]),
/// older than the `before` cursor of the previous page when given.
pub fn work_sessions(
    device: &Device,
    before: Option<i64>,
    limit: u32,
) -> Result<SessionsPage, AppError> {
    let limit = check_limit(limit)?;
    // One more than asked tells whether an older page exists.
    let mut rows = device
        .store()
        .work_sessions_page(before, limit.saturating_add(1))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|(seq, _, _)| *seq)
    } else {
        None
    };
    Ok(SessionsPage {
        sessions: rows
            .into_iter()
            .map(|(_, s, state)| SessionView {
                id: s.id,
                machine_id: s.machine_id,
                certificate_no: s.certificate_no,
                started_at: s.started_at_ms.div_euclid(1000),
                allowed: s.allowed,
                reason_codes: s.reason_codes,
                permit_id: s.permit_id,
                position: s.position,
                outbox_state: state,
            })
            .collect(),
        next_cursor,
    })
}

/// Which outbox entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxFilter {
    /// Pending, or sent without an answer: what the next sync pushes.
    Unresolved,
    Pending,
    Sent,
    Applied,
    Rejected,
    All,
}

/// Why the platform refused an entry, as it said it: a stable code and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The platform's stable code (`record.unknown_field`, `session.bad_time`, …);
    /// `record.rejected` when the platform gave no code.
    pub code: String,
    pub message: String,
}

impl Refusal {
    /// Split the platform's reason, `code: message`, into its parts.
    pub fn parse(reason: &str) -> Self {
        match reason.split_once(':') {
            Some((code, message))
                if !code.is_empty()
                    && code.contains('.')
                    && code.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c)
                    }) =>
            {
                Refusal {
                    code: code.to_owned(),
                    message: message.trim().to_owned(),
                }
            }
            _ => Refusal {
                code: "record.rejected".to_owned(),
                message: reason.trim().to_owned(),
            },
        }
    }
}

/// One outbox entry, with why the platform refused it when it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntryView {
    #[serde(flatten)]
    pub entry: OutboxEntry,
    /// For a rejected entry: the platform's code and message.
    pub refusal: Option<Refusal>,
}

/// Outbox entries and the counts by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxView {
    /// Oldest first.
    pub entries: Vec<OutboxEntryView>,
    pub counts: OutboxCounts,
}

/// The outbox entries `filter` selects (at most `limit`, 1–[`MAX_PAGE`]), oldest first, and the
/// counts of every state.
pub fn outbox(device: &Device, filter: OutboxFilter, limit: u32) -> Result<OutboxView, AppError> {
    let limit = check_limit(limit)?;
    let store = device.store();
    let entries = match filter {
        OutboxFilter::Unresolved => store.outbox_pending(limit),
        OutboxFilter::Pending => store.outbox_entries(Some(OutboxState::Pending), limit),
        OutboxFilter::Sent => store.outbox_entries(Some(OutboxState::Sent), limit),
        OutboxFilter::Applied => store.outbox_entries(Some(OutboxState::Applied), limit),
        OutboxFilter::Rejected => store.outbox_entries(Some(OutboxState::Rejected), limit),
        OutboxFilter::All => store.outbox_entries(None, limit),
    }?;
    Ok(OutboxView {
        entries: entries
            .into_iter()
            .map(|entry| OutboxEntryView {
                refusal: match (entry.state, &entry.last_error) {
                    (OutboxState::Rejected, Some(reason)) => Some(Refusal::parse(reason)),
                    (OutboxState::Rejected, None) => Some(Refusal::parse("")),
                    _ => None,
                },
                entry,
            })
            .collect(),
        counts: store.outbox_counts()?,
    })
}

/// One recorded inspection, its seal verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectionSummary {
    pub inspection_id: String,
    pub site_id: String,
    /// When it was made, Unix seconds.
    pub at: i64,
    pub inspector: crate::permit::Actor,
    pub permit_id: Option<String>,
    pub violations: Vec<crate::inspect::Violation>,
    pub report_required: bool,
}

/// The inspections recorded on this device, newest first (at most `limit`, 1–[`MAX_PAGE`]); a
/// record whose seal no longer verifies is an error (it was changed after sealing).
pub fn inspections(device: &Device, limit: u32) -> Result<Vec<InspectionSummary>, AppError> {
    let limit = check_limit(limit)?;
    Ok(device
        .store()
        .inspections(limit)?
        .into_iter()
        .map(|r| {
            let b = r.inspection.body;
            InspectionSummary {
                inspection_id: r.id,
                site_id: b.site_id,
                at: b.at,
                inspector: b.inspector,
                permit_id: b.permit.map(|p| p.permit_id),
                violations: b.violations,
                report_required: b.report_required,
            }
        })
        .collect())
}

/// How many outbox entries are in each state.
pub fn outbox_counts(device: &Device) -> Result<OutboxCounts, AppError> {
    Ok(device.store().outbox_counts()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Explain;
    use crate::store::records::tests::session;
    use crate::store::test_support::TempDir;
    use crate::store::{OutboxResult, Store};

    const T0: i64 = 1_764_374_400_000;

    fn device_with(n: usize) -> (TempDir, Device, Vec<String>) {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let ids = (0..n)
            .map(|i| {
                store
                    .record_work_session(session(&format!("M-{i}"), "T1"), T0)
                    .unwrap()
                    .id
            })
            .collect();
        (dir, Device::with_store(store).unwrap(), ids)
    }

    #[test]
    fn sessions_come_newest_first_a_page_at_a_time() {
        let (_dir, device, ids) = device_with(5);
        let first = work_sessions(&device, None, 2).unwrap();
        let got: Vec<_> = first.sessions.iter().map(|s| s.id.clone()).collect();
        assert_eq!(got, vec![ids[4].clone(), ids[3].clone()]);
        assert_eq!(first.sessions[0].started_at, T0 / 1000);
        assert_eq!(first.sessions[0].outbox_state, OutboxState::Pending);
        let second = work_sessions(&device, first.next_cursor, 2).unwrap();
        let got: Vec<_> = second.sessions.iter().map(|s| s.id.clone()).collect();
        assert_eq!(got, vec![ids[2].clone(), ids[1].clone()]);
        let last = work_sessions(&device, second.next_cursor, 2).unwrap();
        assert_eq!(last.sessions.len(), 1);
        assert_eq!(last.sessions[0].id, ids[0]);
        assert_eq!(last.next_cursor, None);
        assert_eq!(
            work_sessions(&device, None, 0).unwrap_err().code(),
            "input.limit"
        );
        assert_eq!(
            work_sessions(&device, None, MAX_PAGE + 1)
                .unwrap_err()
                .code(),
            "input.limit"
        );
    }

    #[test]
    fn a_rejected_entry_shows_why_the_platform_refused_it() {
        let (_dir, device, ids) = device_with(3);
        device
            .store()
            .outbox_mark_results(
                &[
                    (ids[0].as_str(), OutboxResult::Applied),
                    (
                        ids[1].as_str(),
                        OutboxResult::Rejected {
                            reason: "record.unknown_field: $.extra is not a field of this record \
                                     (记录含有未知字段，未签名的附加内容不予接收)"
                                .into(),
                        },
                    ),
                ],
                T0 + 10,
            )
            .unwrap();
        let rejected = outbox(&device, OutboxFilter::Rejected, 10).unwrap();
        assert_eq!(rejected.entries.len(), 1);
        let entry = &rejected.entries[0];
        assert_eq!(entry.entry.idempotency_key, ids[1]);
        assert_eq!(entry.entry.state, OutboxState::Rejected);
        let refusal = entry.refusal.as_ref().unwrap();
        assert_eq!(refusal.code, "record.unknown_field");
        assert!(refusal.message.starts_with("$.extra is not a field"));
        assert!(refusal.message.contains("未知字段"));
        assert_eq!(
            (
                rejected.counts.pending,
                rejected.counts.applied,
                rejected.counts.rejected
            ),
            (1, 1, 1)
        );
        let all = outbox(&device, OutboxFilter::All, 10).unwrap();
        assert_eq!(all.entries.len(), 3);
        assert!(all.entries.iter().filter(|e| e.refusal.is_some()).count() == 1);
        let unresolved = outbox(&device, OutboxFilter::Unresolved, 10).unwrap();
        assert_eq!(unresolved.entries[0].entry.idempotency_key, ids[2]);
        assert_eq!(outbox_counts(&device).unwrap(), all.counts);
        // The sessions' own view carries the state too.
        let page = work_sessions(&device, None, 10).unwrap();
        assert_eq!(page.sessions[1].outbox_state, OutboxState::Rejected);
    }

    #[test]
    fn a_reason_without_a_code_is_kept_whole() {
        assert_eq!(
            Refusal::parse("rejected"),
            Refusal {
                code: "record.rejected".into(),
                message: "rejected".into()
            }
        );
        assert_eq!(
            Refusal::parse("Something: went wrong").code,
            "record.rejected"
        );
        assert_eq!(Refusal::parse("session.bad_time: x").message, "x");
    }
}
