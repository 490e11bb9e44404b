//! The warnings about work against its permit and its time (#19, docs/adr/0017-warnings-and-scope.md):
//! `start_without_permit`, `special_period_without_escalation`, `session_open_too_long` and
//! `fire_watch_missing`. The rules are pure functions of a work session, the permit the platform
//! holds (its head, with its event log), the work calendar and the thresholds; [`on_session`] and
//! [`on_permit_step`] run them inside a push's transaction, and queue what can only be decided
//! later (a deadline: [`crate::deadlines`]), whose worker runs [`on_due`].

use crate::registry_facts::RegistryFacts;
use serde::{Deserialize, Serialize};
use weldguard_model::domain::{Explain, MachineClass};
use weldguard_model::permit::{
    EscalationReason, EventKind, Permit, PermitLevel, PermitState, ProfileSet, WorkCalendar,
    permit_findings,
};
use weldguard_model::records::{PermitStepRecord, WorkSession};
use weldguard_model::warnings::{Place, WarningKind};

use crate::db::{AppliedRecord, DbError, PushTx};
use crate::deadlines::{DueRow, NewDeadline};
use crate::warnings::{NewWarning, WarningConfig};

/// How far a phone's clock may be from the permit signers' clocks (seconds): a start is judged
/// against the permit at its time and this much before and after, and raises only when the
/// permit allowed it at none of them.
pub const PERMIT_SKEW_SECS: i64 = 300;

/// Deadline kind: a work session's limit ([`WarningKind::SessionOpenTooLong`]).
pub const DUE_SESSION: &str = "session_open";
/// Deadline kind: a start naming a permit the platform did not hold when it arrived.
pub const DUE_PERMIT: &str = "permit_check";
/// Deadline kind: a completed permit's post-work watch ([`WarningKind::FireWatchMissing`]).
pub const DUE_FIRE_WATCH: &str = "fire_watch";

/// What a queued check of a work session needs (the session's own fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    pub key: String,
    pub machine_id: String,
    pub certificate_no: String,
    pub started_at_ms: i64,
    pub permit_id: Option<String>,
}

impl SessionRef {
    fn of(key: &str, s: &WorkSession) -> Self {
        SessionRef {
            key: key.to_owned(),
            machine_id: s.machine_id.clone(),
            certificate_no: s.certificate_no.clone(),
            started_at_ms: s.started_at_ms,
            permit_id: s.permit_id.clone(),
        }
    }
}

/// What the queued check of a completed permit needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireWatchRef {
    /// The `complete` step's record key.
    pub step_key: String,
    pub permit_id: String,
    /// When the work was completed (Unix seconds, the permit's own event).
    pub completed_at: i64,
    /// The profile's post-work watch (seconds).
    pub watch_secs: i64,
}

/// Whether a machine of this class needs a permit to start: every class but a fixed station
/// under process control (`weldguard_model::permit::permit_findings` exempts those).
pub fn needs_permit(class: MachineClass) -> bool {
    class != MachineClass::FixedStation
}

/// The state a permit was in at `at` (Unix seconds) by its event log; `None` before its draft.
pub fn state_at(permit: &Permit, at: i64) -> Option<PermitState> {
    let mut state = None;
    for event in permit.events.iter().take_while(|e| e.at <= at) {
        state = match &event.kind {
            EventKind::Drafted => Some(PermitState::Draft),
            EventKind::Submitted => Some(PermitState::Submitted),
            EventKind::Checked => Some(PermitState::Checked),
            EventKind::Approved => Some(PermitState::Approved),
            EventKind::Started { .. } | EventKind::Resumed => Some(PermitState::Active),
            EventKind::Suspended { .. } => Some(PermitState::Suspended),
            EventKind::Completed => Some(PermitState::Completed),
            EventKind::Closed => Some(PermitState::Closed),
            EventKind::Rejected { .. } => Some(PermitState::Rejected),
            EventKind::Cancelled { .. } => Some(PermitState::Cancelled),
            EventKind::Expired => Some(PermitState::Expired),
            EventKind::Edited | EventKind::GasRecorded | EventKind::Flagged { .. } => state,
        };
    }
    state
}

/// `start_without_permit` with a permit: the stable code (`permit.not_approved`,
/// `permit.expired`, `permit.welder_not_named`, …) of why the permit did not let the welder start
/// the machine at `at` (Unix seconds), judged by the model's start-work rule on the permit as it
/// was then (its event log), at `at` and [`PERMIT_SKEW_SECS`] either side; `None` when it allowed
/// the start at any of them. Warnings the rule only notes (a machine the permit does not list)
/// do not count.
pub fn permit_lack(
    permit: &Permit,
    certificate_no: &str,
    machine_id: &str,
    class: MachineClass,
    at: i64,
) -> Option<&'static str> {
    let mut then = permit.clone();
    let mut first = None;
    for t in [at, at - PERMIT_SKEW_SECS, at + PERMIT_SKEW_SECS] {
        then.state = state_at(permit, t).unwrap_or(PermitState::Draft);
        let site = then.content.site.site_id.clone();
        let check = permit_findings(Some(&then), certificate_no, machine_id, class, &site, t);
        let deny = check
            .findings
            .iter()
            .find(|f| f.verdict() == weldguard_model::permit::Verdict::Deny);
        match deny {
            None => return None,
            Some(f) => {
                first.get_or_insert(f.code());
            }
        }
    }
    first
}

/// Why a start falls in a special period and what its permit lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialLack {
    /// The special periods the start falls in (holiday, rest day, night, sensitive period).
    pub reasons: Vec<EscalationReason>,
    /// The level required then, when the permit's profile says (none without a permit).
    pub required: Option<PermitLevel>,
    /// The permit's level (none without a permit).
    pub held: Option<PermitLevel>,
}

fn is_special(reason: &EscalationReason) -> bool {
    matches!(
        reason,
        EscalationReason::Holiday { .. }
            | EscalationReason::RestDay { .. }
            | EscalationReason::Night
            | EscalationReason::SensitivePeriod { .. }
    )
}

/// The China (UTC+8) date of Unix seconds.
fn china_date(at: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(at.saturating_add(8 * 3600), 0).map(|t| t.date_naive())
}

/// The special periods the calendar alone says a start at `at` (Unix seconds) falls in: a
/// statutory holiday on its China date and the announced sensitive periods holding it. Night and
/// rest days depend on the site and its profile, which only a permit names.
pub fn calendar_special(calendar: &WorkCalendar, at: i64) -> Vec<EscalationReason> {
    let mut reasons = Vec::new();
    if let Some(date) = china_date(at)
        && calendar.holidays.contains(&date)
    {
        reasons.push(EscalationReason::Holiday { date });
    }
    for p in &calendar.sensitive_periods {
        if p.from <= at && at < p.until {
            reasons.push(EscalationReason::SensitivePeriod {
                name: p.name.clone(),
            });
        }
    }
    reasons
}

/// `special_period_without_escalation`: hot work started at `at` (Unix seconds) in a special
/// period without a permit at the escalated level. With a permit: its profile decides, for its
/// site (night hours, time zone) and the platform's calendar now, the level the work requires at
/// that instant ([`weldguard_model::permit::RuleProfile::decide_level`]); when a special period
/// is among the reasons and the permit's level is lower, that is the lack (a holiday or sensitive
/// period announced after the approval, or a level decided on another calendar). Without a
/// permit (none, or one the platform does not hold): the calendar alone
/// ([`calendar_special`]).
pub fn special_period_lack(
    permit: Option<&Permit>,
    profiles: &ProfileSet,
    calendar: &WorkCalendar,
    at: i64,
) -> Option<SpecialLack> {
    let Some(permit) = permit else {
        let reasons = calendar_special(calendar, at);
        return (!reasons.is_empty()).then_some(SpecialLack {
            reasons,
            required: None,
            held: None,
        });
    };
    let c = &permit.content;
    let held = permit.level();
    let Some(profile) = profiles.get(&c.profile_id, &c.profile_version) else {
        let reasons = calendar_special(calendar, at);
        return (!reasons.is_empty()).then_some(SpecialLack {
            reasons,
            required: None,
            held: Some(held),
        });
    };
    let decision = profile
        .decide_level(
            &c.site,
            calendar,
            c.requested_level,
            at,
            at.saturating_add(1),
            &c.conditions,
        )
        .ok()?;
    let reasons: Vec<EscalationReason> = decision.reasons.into_iter().filter(is_special).collect();
    if reasons.is_empty() {
        return None;
    }
    let rank = |level: PermitLevel| profile.levels.iter().position(|l| l.level == level);
    // Levels run from the highest risk (index 0) down: a lower index is a higher level.
    let enough = matches!(
        (rank(held), rank(decision.required)),
        (Some(h), Some(r)) if h <= r
    );
    (!enough).then_some(SpecialLack {
        reasons,
        required: Some(decision.required),
        held: Some(held),
    })
}

/// When the work under a permit stopped after `from_ms`, by its event log: its first suspension,
/// completion, close, cancellation, rejection or expiry at or after it (Unix ms).
pub fn permit_end_ms(permit: &Permit, from_ms: i64) -> Option<i64> {
    permit
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Suspended { .. }
                    | EventKind::Completed
                    | EventKind::Closed
                    | EventKind::Cancelled { .. }
                    | EventKind::Rejected { .. }
                    | EventKind::Expired
            )
        })
        .map(|e| e.at.saturating_mul(1000))
        .filter(|&at| at >= from_ms)
        .min()
}

/// `session_open_too_long`: the end of a session started at `started_ms` is the first sign of
/// it the platform holds (the machine's next allowed start, the permit's work stopping,
/// whichever is earlier). It was open too long when that end (or, without one, `now_ms`) lies
/// more than `limit_ms` after the start; the answer is how long (ms) and whether an end is known.
pub fn session_overran(
    started_ms: i64,
    limit_ms: i64,
    next_start_ms: Option<i64>,
    permit_end_ms: Option<i64>,
    now_ms: i64,
) -> Option<(i64, bool)> {
    let end = match (next_start_ms, permit_end_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let open = end.unwrap_or(now_ms).saturating_sub(started_ms);
    (open > limit_ms).then_some((open, end.is_some()))
}

/// When the check of a completed permit's post-work watch falls due: the watch after the
/// completion, then the grace; never before the step arrived plus the grace (a step pushed late
/// gives the close that follows it time to arrive).
pub fn fire_watch_due_ms(
    completed_at: i64,
    watch_secs: i64,
    arrived_ms: i64,
    grace_ms: i64,
) -> i64 {
    completed_at
        .saturating_add(watch_secs)
        .saturating_mul(1000)
        .max(arrived_ms)
        .saturating_add(grace_ms)
}

/// Whether the permit's post-work watch was recorded: the fire watch closed it (the post-work
/// checklist and the close signature).
pub fn watch_recorded(head: &Permit) -> bool {
    head.state == PermitState::Closed
}

// ---------------------------------------------------------------------------------------------
// Inside the push and the deadline worker.

fn permit_of(tx: &mut dyn PushTx, permit_id: &str) -> Result<Option<Permit>, DbError> {
    Ok(tx
        .permit_head(permit_id)?
        .and_then(|json| serde_json::from_str::<Permit>(&json).ok()))
}

fn reason_json(r: &EscalationReason) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or(serde_json::Value::Null)
}

fn level_json(level: Option<PermitLevel>) -> serde_json::Value {
    level.map_or(serde_json::Value::Null, |l| {
        serde_json::to_value(l).unwrap_or(serde_json::Value::Null)
    })
}

/// A warning about one work session (its machine's place, else its welder's).
fn session_warning(
    tx: &mut dyn PushTx,
    session: &SessionRef,
    kind: WarningKind,
    detail: serde_json::Value,
    now_ms: i64,
) -> Result<bool, DbError> {
    let facts = tx.machine_facts(&session.machine_id)?;
    let place = crate::platform::session_place(tx, facts.as_ref(), &session.certificate_no)?;
    crate::warnings::raise_counted(
        tx,
        &NewWarning {
            dedup_key: format!("{}|{}", kind.as_str(), session.key),
            kind,
            records: vec![session.key.clone()],
            machine_id: session.machine_id.clone(),
            certificate_no: Some(session.certificate_no.clone()),
            place,
            site_id: facts.and_then(|f| f.site_id),
            at_ms: session.started_at_ms,
            raised_at_ms: now_ms,
            detail: detail.to_string(),
        },
    )
}

/// The permit rules of one allowed start, once the permit it names is known (or known to be
/// missing): `start_without_permit` and `special_period_without_escalation`. `unknown` says the
/// session named a permit the platform still does not hold.
fn judge_start(
    tx: &mut dyn PushTx,
    calendar: &WorkCalendar,
    session: &SessionRef,
    class: MachineClass,
    permit: Option<&Permit>,
    now_ms: i64,
) -> Result<(), DbError> {
    let at = session.started_at_ms.div_euclid(1000);
    let lack = match (&session.permit_id, permit) {
        (None, _) => Some("permit.missing"),
        (Some(_), None) => Some("permit.unknown"),
        (Some(_), Some(p)) => {
            permit_lack(p, &session.certificate_no, &session.machine_id, class, at)
        }
    };
    if let Some(code) = lack {
        session_warning(
            tx,
            session,
            WarningKind::StartWithoutPermit,
            serde_json::json!({
                "reason_code": code,
                "permit_id": session.permit_id,
                "permit_state": permit.and_then(|p| state_at(p, at)).map(weldguard_model::records::state_name),
            }),
            now_ms,
        )?;
    }
    let profiles = ProfileSet::builtin_shared().map_err(|e| DbError::Invalid(e.to_string()))?;
    if let Some(special) = special_period_lack(permit, profiles, calendar, at) {
        session_warning(
            tx,
            session,
            WarningKind::SpecialPeriodWithoutEscalation,
            serde_json::json!({
                "reasons": special.reasons.iter().map(reason_json).collect::<Vec<_>>(),
                "required_level": level_json(special.required),
                "permit_level": level_json(special.held),
                "permit_id": session.permit_id,
            }),
            now_ms,
        )?;
    }
    Ok(())
}

/// Run this module's rules for an applied work session inside the push's transaction: queue
/// its limit (an allowed start under a permit), and judge its permit when the machine needs one. A permit the
/// platform does not hold yet (its steps may come later, from the approver's phone) is judged
/// when [`WarningConfig::permit_wait_ms`] has passed, from the queue.
pub fn on_session(
    tx: &mut dyn PushTx,
    config: &WarningConfig,
    registry: &RegistryFacts,
    record: &AppliedRecord<'_>,
    session: &WorkSession,
    now_ms: i64,
) -> Result<(), DbError> {
    if !session.allowed {
        return Ok(());
    }
    let me = SessionRef::of(record.key, session);
    let payload = serde_json::to_string(&me).map_err(|e| DbError::Invalid(e.to_string()))?;
    // A session's limit is checked only under a permit (see `on_due`): the permit is the one
    // record of how long the work went on.
    if session.permit_id.is_some() {
        tx.schedule(&NewDeadline {
            dedup_key: format!("{DUE_SESSION}|{}", record.key),
            kind: DUE_SESSION.to_owned(),
            due_at_ms: session.started_at_ms.saturating_add(config.session_open_ms),
            payload: payload.clone(),
        })?;
    }
    let Some(class) = registry.machine_class(tx, &session.machine_id)? else {
        return Ok(());
    };
    if !needs_permit(class) {
        return Ok(());
    }
    let permit = match &session.permit_id {
        Some(id) => match permit_of(tx, id)? {
            Some(p) => Some(p),
            None => {
                return tx.schedule(&NewDeadline {
                    dedup_key: format!("{DUE_PERMIT}|{}", record.key),
                    kind: DUE_PERMIT.to_owned(),
                    due_at_ms: now_ms.saturating_add(config.permit_wait_ms),
                    payload,
                });
            }
        },
        None => None,
    };
    judge_start(tx, &registry.calendar, &me, class, permit.as_ref(), now_ms)
}

/// Run this module's rules for an applied permit step: a completion queues the check of its
/// post-work watch.
pub fn on_permit_step(
    tx: &mut dyn PushTx,
    config: &WarningConfig,
    record: &AppliedRecord<'_>,
    step: &PermitStepRecord,
    now_ms: i64,
) -> Result<(), DbError> {
    if step.state != PermitState::Completed {
        return Ok(());
    }
    let c = &step.permit.content;
    let profiles = ProfileSet::builtin_shared().map_err(|e| DbError::Invalid(e.to_string()))?;
    let Some(profile) = profiles.get(&c.profile_id, &c.profile_version) else {
        return Ok(());
    };
    let completed_at = step
        .permit
        .last_event_at(|k| matches!(k, EventKind::Completed))
        .unwrap_or(record.at_ms.div_euclid(1000));
    let due = FireWatchRef {
        step_key: record.key.to_owned(),
        permit_id: step.permit_id.clone(),
        completed_at,
        watch_secs: profile.post_work_watch_secs,
    };
    tx.schedule(&NewDeadline {
        dedup_key: format!("{DUE_FIRE_WATCH}|{}", record.key),
        kind: DUE_FIRE_WATCH.to_owned(),
        due_at_ms: fire_watch_due_ms(
            completed_at,
            profile.post_work_watch_secs,
            now_ms,
            config.fire_watch_grace_ms,
        ),
        payload: serde_json::to_string(&due).map_err(|e| DbError::Invalid(e.to_string()))?,
    })
}

/// The machines a batch of due rows is about (sorted, once each), locked before the checks read
/// their starts, as a push locks them.
fn machines_of(rows: &[DueRow]) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .iter()
        .filter(|r| r.kind == DUE_SESSION || r.kind == DUE_PERMIT)
        .filter_map(|r| serde_json::from_str::<SessionRef>(&r.payload).ok())
        .map(|s| s.machine_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Check due rows inside the transaction that takes them ([`crate::db::Store::run_due`]):
/// raise what still holds, drop the rest. A row that cannot be read is dropped (it can never
/// become readable).
pub fn on_due(
    tx: &mut dyn PushTx,
    config: &WarningConfig,
    registry: &RegistryFacts,
    rows: &[DueRow],
    now_ms: i64,
) -> Result<(), DbError> {
    tx.lock_machines(&machines_of(rows))?;
    for row in rows {
        match row.kind.as_str() {
            DUE_SESSION => {
                let Ok(session) = serde_json::from_str::<SessionRef>(&row.payload) else {
                    continue;
                };
                // Only the session's permit says work went on: without a permit the platform
                // holds, a machine idle until its next start looks the same as one left on.
                let Some(permit) = (match &session.permit_id {
                    Some(id) => permit_of(tx, id)?,
                    None => None,
                }) else {
                    continue;
                };
                let next = tx.next_allowed_start(&session.machine_id, session.started_at_ms)?;
                let permit_end = permit_end_ms(&permit, session.started_at_ms);
                if let Some((open_ms, ended)) = session_overran(
                    session.started_at_ms,
                    config.session_open_ms,
                    next,
                    permit_end,
                    now_ms,
                ) {
                    session_warning(
                        tx,
                        &session,
                        WarningKind::SessionOpenTooLong,
                        serde_json::json!({
                            "open_hours": open_ms / 3_600_000,
                            "end_known": ended,
                            "limit_hours": config.session_open_ms / 3_600_000,
                            "limit_secs": config.session_open_ms / 1000,
                        }),
                        now_ms,
                    )?;
                }
            }
            DUE_PERMIT => {
                let Ok(session) = serde_json::from_str::<SessionRef>(&row.payload) else {
                    continue;
                };
                let Some(class) = registry.machine_class(tx, &session.machine_id)? else {
                    continue;
                };
                if !needs_permit(class) {
                    continue;
                }
                let permit = match &session.permit_id {
                    Some(id) => permit_of(tx, id)?,
                    None => None,
                };
                judge_start(
                    tx,
                    &registry.calendar,
                    &session,
                    class,
                    permit.as_ref(),
                    now_ms,
                )?;
            }
            crate::warnings::DUE_LICENCE => crate::warnings::on_licence_due(
                tx,
                &crate::warnings::RuleContext {
                    config,
                    registry,
                    now_ms,
                },
                row,
            )?,
            DUE_FIRE_WATCH => {
                let Ok(due) = serde_json::from_str::<FireWatchRef>(&row.payload) else {
                    continue;
                };
                let Some(head) = permit_of(tx, &due.permit_id)? else {
                    continue;
                };
                if watch_recorded(&head) {
                    continue;
                }
                raise_fire_watch(tx, config, &due, &head, now_ms)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `fire_watch_missing` about a permit (its site's place, else its first machine's).
fn raise_fire_watch(
    tx: &mut dyn PushTx,
    config: &WarningConfig,
    due: &FireWatchRef,
    head: &Permit,
    now_ms: i64,
) -> Result<bool, DbError> {
    let c = &head.content;
    let machine_id = c.machines.first().cloned().unwrap_or_default();
    let mut place: Option<Place> = tx.site_place(&c.site.site_id)?;
    let mut site_id = place.is_some().then(|| c.site.site_id.clone());
    if place.is_none() && !machine_id.is_empty() {
        let facts = tx.machine_facts(&machine_id)?;
        site_id = facts.as_ref().and_then(|f| f.site_id.clone());
        place = facts.map(|f| f.place);
    }
    let kind = WarningKind::FireWatchMissing;
    crate::warnings::raise_counted(
        tx,
        &NewWarning {
            dedup_key: format!("{}|{}", kind.as_str(), due.step_key),
            kind,
            records: vec![due.step_key.clone()],
            machine_id,
            certificate_no: c.welders.first().map(|w| w.id.clone()),
            place,
            site_id,
            at_ms: due.completed_at.saturating_mul(1000),
            raised_at_ms: now_ms,
            detail: serde_json::json!({
                "permit_id": due.permit_id,
                "permit_state": weldguard_model::records::state_name(head.state),
                "watch_minutes": due.watch_secs / 60,
                "grace_minutes": config.fire_watch_grace_ms / 60_000,
                "fire_watch": c.fire_watch.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            })
            .to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime};
    use weldguard_model::permit::{
        GeoPoint, LevelDecision, NightHours, PermitContent, PermitEvent, Person, SensitivePeriod,
        Site, WorkConditions,
    };

    /// Unix seconds of a China time on 2026-11-`d` (the 30th is a Monday) or 2026-12-`d - 30`.
    fn cst(d: u32, h: u32, min: u32) -> i64 {
        let date =
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Days::new(u64::from(d) - 1);
        date.and_hms_opt(h, min, 0).unwrap().and_utc().timestamp() - 8 * 3600
    }

    const WELDER: &str = "T370983199001011234";
    const MACHINE: &str = "M-370983-0001";

    /// A level 2 GB 30871 permit valid on 2026-11-30 08:00–17:00, with this event log.
    fn permit(events: &[(i64, EventKind)], state: PermitState, level: PermitLevel) -> Permit {
        let profiles = ProfileSet::builtin_shared().unwrap();
        let profile = profiles
            .select("gb30871", NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
            .unwrap();
        let location = GeoPoint::from_degrees(36.182, 116.772);
        Permit {
            content: PermitContent {
                permit_id: "P-1".into(),
                site: Site {
                    site_id: "site-370983-001".into(),
                    name: "肥城某化工厂三车间".into(),
                    profile_id: "gb30871".into(),
                    location,
                    utc_offset_secs: 8 * 3600,
                    night: NightHours {
                        start: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
                        end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
                    },
                    approval_radius_m: None,
                },
                profile_id: profile.id.clone(),
                profile_version: profile.version.clone(),
                catalog_version: "1".into(),
                work_description: "更换法兰".into(),
                hot_work_point: "管廊".into(),
                hot_work_points: 1,
                location,
                conditions: WorkConditions::default(),
                requested_level: PermitLevel::Level2,
                valid_from: cst(30, 8, 0),
                valid_until: cst(30, 17, 0),
                applicant: Person {
                    name: "张三".into(),
                    id: "S-001".into(),
                },
                welders: vec![Person {
                    name: "李四".into(),
                    id: WELDER.into(),
                }],
                machines: vec![MACHINE.into()],
                fire_watch: vec![Person {
                    name: "王五".into(),
                    id: "S-002".into(),
                }],
            },
            state,
            level: Some(LevelDecision {
                requested: PermitLevel::Level2,
                required: level,
                reasons: Vec::new(),
                clause: String::new(),
            }),
            answers: Vec::new(),
            post_work: Vec::new(),
            gas_readings: Vec::new(),
            events: events
                .iter()
                .map(|(at, kind)| PermitEvent {
                    at: *at,
                    kind: kind.clone(),
                    by: None,
                })
                .collect(),
            signatures: Vec::new(),
        }
    }

    fn approved_then(more: &[(i64, EventKind)], state: PermitState) -> Permit {
        let mut events = vec![
            (cst(30, 6, 45), EventKind::Drafted),
            (cst(30, 7, 0), EventKind::Submitted),
            (cst(30, 7, 20), EventKind::Checked),
            (cst(30, 7, 40), EventKind::Approved),
        ];
        events.extend_from_slice(more);
        permit(&events, state, PermitLevel::Level2)
    }

    #[test]
    fn a_permit_state_at_a_time_follows_its_event_log() {
        let p = approved_then(
            &[
                (
                    cst(30, 9, 0),
                    EventKind::Started {
                        continuous_monitoring: false,
                    },
                ),
                (cst(30, 12, 0), EventKind::Completed),
            ],
            PermitState::Completed,
        );
        assert_eq!(state_at(&p, cst(30, 6, 0)), None);
        assert_eq!(state_at(&p, cst(30, 7, 10)), Some(PermitState::Submitted));
        assert_eq!(state_at(&p, cst(30, 8, 30)), Some(PermitState::Approved));
        assert_eq!(state_at(&p, cst(30, 10, 0)), Some(PermitState::Active));
        assert_eq!(state_at(&p, cst(30, 12, 0)), Some(PermitState::Completed));
    }

    #[test]
    fn a_start_is_judged_against_the_permit_as_it_was_then() {
        let p = approved_then(
            &[(cst(30, 12, 0), EventKind::Completed)],
            PermitState::Completed,
        );
        let class = MachineClass::Mobile;
        let lack = |at| permit_lack(&p, WELDER, MACHINE, class, at);
        // Approved at 07:40, valid from 08:00: a start at 10:00 was allowed, though the permit
        // is completed now.
        assert_eq!(lack(cst(30, 10, 0)), None);
        // Two minutes before 08:00: inside the clock skew.
        assert_eq!(lack(cst(30, 7, 58)), None);
        // At 07:30 it was only checked on site (and not valid yet).
        assert_eq!(lack(cst(30, 7, 30)), Some("permit.not_approved"));
        // After the completion at 12:00 (beyond the skew) the work may not start again.
        assert_eq!(lack(cst(30, 12, 10)), Some("permit.not_approved"));
        // Another welder.
        assert_eq!(
            permit_lack(&p, "T110105194912310021", MACHINE, class, cst(30, 10, 0)),
            Some("permit.welder_not_named")
        );
        // A machine the permit does not list is only noted by the start-work rule.
        assert_eq!(
            permit_lack(&p, WELDER, "M-OTHER", class, cst(30, 10, 0)),
            None
        );
        let open = approved_then(&[], PermitState::Approved);
        assert_eq!(
            permit_lack(&open, WELDER, MACHINE, class, cst(30, 17, 30)),
            Some("permit.expired")
        );
        assert!(needs_permit(MachineClass::Mobile));
        assert!(needs_permit(MachineClass::LegacyRegistered));
        assert!(!needs_permit(MachineClass::FixedStation));
    }

    #[test]
    fn special_periods_need_the_escalated_level() {
        let profiles = ProfileSet::builtin_shared().unwrap();
        let p = approved_then(&[], PermitState::Approved);
        let mut calendar = WorkCalendar::default();
        // A Monday, daytime, no calendar entry: nothing special.
        assert_eq!(
            special_period_lack(Some(&p), profiles, &calendar, cst(30, 10, 0)),
            None
        );
        // At 20:30 (the site's night from 20:00) a level 2 permit needs level 1.
        let night = special_period_lack(Some(&p), profiles, &calendar, cst(30, 20, 30)).unwrap();
        assert_eq!(night.reasons, [EscalationReason::Night]);
        assert_eq!(night.required, Some(PermitLevel::Level1));
        assert_eq!(night.held, Some(PermitLevel::Level2));
        // A holiday declared after the approval.
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        calendar.holidays.push(monday);
        let holiday = special_period_lack(Some(&p), profiles, &calendar, cst(30, 10, 0)).unwrap();
        assert_eq!(
            holiday.reasons,
            [EscalationReason::Holiday { date: monday }]
        );
        // A permit decided at level 1 is enough.
        let escalated = permit(&[], PermitState::Approved, PermitLevel::Level1);
        assert_eq!(
            special_period_lack(Some(&escalated), profiles, &calendar, cst(30, 10, 0)),
            None
        );
        // Wind alone is not a special period.
        let mut windy = p.clone();
        windy.content.conditions.wind_force = Some(6);
        assert_eq!(
            special_period_lack(
                Some(&windy),
                profiles,
                &WorkCalendar::default(),
                cst(30, 10, 0)
            ),
            None
        );
        // Without a permit the calendar alone decides: the holiday, a sensitive period, and
        // not the night (the site's night hours come with a permit).
        let lianghui = SensitivePeriod {
            name: "全国两会".into(),
            from: cst(33, 0, 0),
            until: cst(35, 0, 0),
        };
        calendar.sensitive_periods.push(lianghui);
        let none = special_period_lack(None, profiles, &calendar, cst(30, 10, 0)).unwrap();
        assert_eq!((none.required, none.held), (None, None));
        assert_eq!(
            special_period_lack(None, profiles, &calendar, cst(34, 23, 59)).map(|l| l.reasons),
            Some(vec![EscalationReason::SensitivePeriod {
                name: "全国两会".into()
            }])
        );
        assert_eq!(
            special_period_lack(None, profiles, &calendar, cst(35, 0, 0)),
            None
        );
        assert_eq!(
            special_period_lack(None, profiles, &calendar, cst(31, 22, 0)),
            None
        );
    }

    #[test]
    fn a_session_ends_at_the_first_sign_of_its_end() {
        let h = 3_600_000;
        let start = cst(30, 9, 0) * 1000;
        let day = 24 * h;
        // The machine started again two hours later: ended in time.
        assert_eq!(
            session_overran(start, day, Some(start + 2 * h), None, start + 40 * h),
            None
        );
        // Next start 30 h later, no permit end: open 30 h.
        assert_eq!(
            session_overran(start, day, Some(start + 30 * h), None, start + 40 * h),
            Some((30 * h, true))
        );
        // The permit's work stopped after 3 h.
        assert_eq!(
            session_overran(
                start,
                day,
                Some(start + 30 * h),
                Some(start + 3 * h),
                start + 40 * h
            ),
            None
        );
        // No sign of an end: open until now.
        assert_eq!(
            session_overran(start, day, None, None, start + 25 * h),
            Some((25 * h, false))
        );
        assert_eq!(session_overran(start, day, None, None, start + day), None);
        let p = approved_then(
            &[
                (
                    cst(30, 9, 0),
                    EventKind::Started {
                        continuous_monitoring: false,
                    },
                ),
                (
                    cst(30, 10, 0),
                    EventKind::Suspended {
                        reason: "午休".into(),
                    },
                ),
                (cst(30, 10, 10), EventKind::Resumed),
                (cst(30, 12, 0), EventKind::Completed),
            ],
            PermitState::Completed,
        );
        assert_eq!(permit_end_ms(&p, start), Some(cst(30, 10, 0) * 1000));
        assert_eq!(
            permit_end_ms(&p, cst(30, 10, 5) * 1000),
            Some(cst(30, 12, 0) * 1000)
        );
        assert_eq!(permit_end_ms(&p, cst(30, 13, 0) * 1000), None);
    }

    #[test]
    fn the_fire_watch_check_falls_due_after_the_watch_and_the_grace() {
        let completed = cst(30, 12, 0);
        let grace = 30 * 60_000;
        // Pushed at once: due at 12:00 + 30 min watch + 30 min grace.
        let arrived = completed * 1000 + 60_000;
        assert_eq!(
            fire_watch_due_ms(completed, 1800, arrived, grace),
            cst(30, 13, 0) * 1000
        );
        // Pushed the next day: due a grace after it arrived.
        let late = cst(31, 9, 0) * 1000;
        assert_eq!(
            fire_watch_due_ms(completed, 1800, late, grace),
            late + grace
        );
        let closed = approved_then(
            &[
                (cst(30, 12, 0), EventKind::Completed),
                (cst(30, 12, 30), EventKind::Closed),
            ],
            PermitState::Closed,
        );
        assert!(watch_recorded(&closed));
        let left = approved_then(
            &[(cst(30, 12, 0), EventKind::Completed)],
            PermitState::Completed,
        );
        assert!(!watch_recorded(&left));
    }

    #[test]
    fn the_calendar_alone_knows_holidays_and_sensitive_periods_by_china_date() {
        let mut calendar = WorkCalendar::default();
        let national = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        calendar.holidays.push(national);
        // 2026-10-01 00:30 China is 2026-09-30 16:30 UTC: a holiday in China.
        let at = national
            .and_hms_opt(0, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp()
            - 8 * 3600;
        assert_eq!(
            calendar_special(&calendar, at),
            [EscalationReason::Holiday { date: national }]
        );
        assert!(
            calendar_special(&calendar, at - 3600).is_empty(),
            "23:30 the day before"
        );
    }
}
