//! Permit heads on the platform: every pushed permit step is placed against the versions of its
//! permit the platform holds, and each permit has one current version (its head) that devices pull.
//!
//! A step that follows the head by one action ([`successor_action`]) is applied and becomes the
//! head. A step that follows an older version the platform holds is a fork: [`ForkStep::beats`]
//! decides against the step that followed that version on the head's branch; the winner's branch
//! holds the head, the loser's steps are superseded (they were applied) or lost (they never were).
//! A step that follows a lost or superseded version loses with its branch. A step that follows no
//! version the platform holds is refused (`permit.unknown_base`). See
//! docs/adr/0011-permit-conflicts.md.
//!
//! The backends run [`push_step`] inside one transaction through [`PermitLedger`]; on PostgreSQL
//! that transaction first takes an advisory lock for permit writes, so two server processes never
//! race on one permit and head feed sequence numbers commit in order.

use weldguard_core::domain::Explain;
use weldguard_core::permit::{ForkStep, Permit, PermitState, successor_action};
use weldguard_core::store::PermitStepRecord;
use weldguard_core::store::permits::{action_name, state_name};

use crate::db::{DbError, Insert, hash};

/// Status of a stored step: on the head's branch.
pub const APPLIED: &str = "applied";
/// Was applied, then its branch lost a conflict.
pub const SUPERSEDED: &str = "superseded";
/// Lost a conflict when it arrived (kept for the audit trail and for its descendants).
pub const LOST: &str = "lost";

/// A stored step as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub step_id: String,
    /// The step it followed (`None` for the draft).
    pub base: Option<String>,
    pub status: String,
    pub action: String,
    /// The permit version the step made, JSON.
    pub body: String,
}

/// A step to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep<'a> {
    pub step_id: &'a str,
    pub permit_id: &'a str,
    pub base: Option<&'a str>,
    pub action: &'a str,
    pub digest: &'a str,
    pub status: &'static str,
    pub reason: Option<&'a str>,
    pub body: &'a str,
    pub device_id: &'a str,
    pub at_ms: i64,
}

/// A permit's head to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRow<'a> {
    pub permit_id: &'a str,
    pub step_id: &'a str,
    pub action: &'a str,
    pub state: &'a str,
    pub digest: &'a str,
    pub body: &'a str,
    /// Who the permit names (applicant, welders: ids and names): whom a welder's pull shows it.
    pub people: Vec<String>,
    pub seq: i64,
    pub at_ms: i64,
}

/// What the platform does with a pushed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It follows the head (or is the first version): applied, the head moves to it.
    Extend { base: Option<String> },
    /// A fork that wins: applied, the head moves to it, these applied steps are superseded.
    Win {
        base: String,
        superseded: Vec<String>,
    },
    /// A fork that loses (or follows a version that lost): refused with the reason, kept as lost.
    Lose { base: String, reason: String },
    /// Not placed at all (no version it follows): refused with the reason, not kept.
    Refuse(String),
}

fn parse(body: &str) -> Result<Permit, String> {
    serde_json::from_str(body).map_err(|e| format!("record.invalid: stored permit version: {e}"))
}

fn explain(e: &impl Explain) -> String {
    format!("{}: {}", e.code(), e.message_en())
}

/// Whether `permit` is a new permit's first version (a draft as [`Permit::draft`] makes it).
fn is_first_version(permit: &Permit) -> bool {
    permit.state == PermitState::Draft
        && permit.events.len() == 1
        && permit.signatures.is_empty()
        && permit.level.is_none()
        && permit.answers.is_empty()
        && permit.post_work.is_empty()
        && permit.gas_readings.is_empty()
}

/// Place `incoming` against the permit's stored steps and current head. Pure.
pub fn decide(head: Option<&str>, steps: &[StepRow], incoming: &PermitStepRecord) -> Decision {
    let permit_id = &incoming.permit_id;
    let next = &incoming.permit;
    let Some(head_id) = head else {
        if is_first_version(next) {
            return Decision::Extend { base: None };
        }
        return Decision::Refuse(format!(
            "permit.unknown_base: the platform holds no version of permit {permit_id}; \
             its first version (the draft) must arrive first"
        ));
    };
    // The head first: the usual case.
    let head_row = steps.iter().find(|s| s.step_id == head_id);
    let mut against_head: Option<String> = None;
    if let Some(h) = head_row {
        match parse(&h.body).map(|prev| successor_action(&prev, next)) {
            Ok(Ok(_)) => {
                return Decision::Extend {
                    base: Some(h.step_id.clone()),
                };
            }
            Ok(Err(e)) => against_head = Some(explain(&e)),
            Err(e) => return Decision::Refuse(e),
        }
    }
    // An older version: which one does it follow?
    let base = steps
        .iter()
        .filter(|s| s.step_id != head_id)
        .find(|s| parse(&s.body).is_ok_and(|prev| successor_action(&prev, next).is_ok()));
    let Some(base) = base else {
        return Decision::Refuse(format!(
            "permit.unknown_base: this step of permit {permit_id} follows no version the platform \
             holds (against the current version: {})",
            against_head.unwrap_or_else(|| "none".into())
        ));
    };
    let head_action = head_row.map_or("?", |h| h.action.as_str());
    if base.status != APPLIED {
        return Decision::Lose {
            base: base.step_id.clone(),
            reason: format!(
                "permit.conflict: this step follows step {} of permit {permit_id}, whose branch \
                 lost; the permit's current version is step {head_id} ({head_action})",
                base.step_id
            ),
        };
    }
    // The base is on the head's branch: the step that followed it there is the rival.
    let Some(rival) = steps
        .iter()
        .find(|s| s.status == APPLIED && s.base.as_deref() == Some(base.step_id.as_str()))
    else {
        return Decision::Refuse(format!(
            "permit.unknown_base: step {} of permit {permit_id} is neither the head nor followed",
            base.step_id
        ));
    };
    let placed = parse(&base.body).and_then(|prev| {
        let mine = ForkStep::of(&prev, next).map_err(|e| explain(&e))?;
        let theirs = ForkStep::of(&prev, &parse(&rival.body)?).map_err(|e| explain(&e))?;
        Ok((mine, theirs))
    });
    let (mine, theirs) = match placed {
        Ok(pair) => pair,
        Err(e) => return Decision::Refuse(e),
    };
    if mine.beats(&theirs) {
        // Supersede the rival and every applied step after it: walk back from the head.
        let mut superseded = Vec::new();
        let mut cursor = Some(head_id.to_owned());
        while let Some(id) = cursor {
            let Some(row) = steps.iter().find(|s| s.step_id == id) else {
                break;
            };
            superseded.push(row.step_id.clone());
            if row.step_id == rival.step_id {
                break;
            }
            cursor = row.base.clone();
        }
        Decision::Win {
            base: base.step_id.clone(),
            superseded,
        }
    } else {
        Decision::Lose {
            base: base.step_id.clone(),
            reason: format!(
                "permit.conflict: step {} ({}, at {}) of permit {permit_id} was taken on the same \
                 version and wins over this {} (at {}): the safer action first, then the earlier \
                 time, then the smaller digest",
                rival.step_id,
                action_name(theirs.action),
                theirs.at,
                action_name(mine.action),
                mine.at
            ),
        }
    }
}

/// What a backend offers [`push_step`], inside one transaction.
pub trait PermitLedger {
    /// The payload hash of an applied record under `key`.
    fn record_hash(&mut self, key: &str) -> Result<Option<Vec<u8>>, DbError>;
    /// Store an applied record.
    fn insert_record(
        &mut self,
        key: &str,
        kind: &str,
        payload: &str,
        payload_hash: &[u8],
        device_id: &str,
        at_ms: i64,
    ) -> Result<(), DbError>;
    /// The reason a step was lost, when it is a stored lost step.
    fn lost_reason(&mut self, step_id: &str) -> Result<Option<String>, DbError>;
    /// The permit's head step.
    fn head_step(&mut self, permit_id: &str) -> Result<Option<String>, DbError>;
    /// Every stored step of the permit.
    fn steps(&mut self, permit_id: &str) -> Result<Vec<StepRow>, DbError>;
    fn insert_step(&mut self, step: &NewStep<'_>) -> Result<(), DbError>;
    fn set_superseded(&mut self, step_ids: &[String]) -> Result<(), DbError>;
    /// The next head feed sequence number.
    fn next_seq(&mut self) -> Result<i64, DbError>;
    /// Insert or replace the head (and whom it names).
    fn put_head(&mut self, head: &HeadRow<'_>) -> Result<(), DbError>;
    /// Give the head a new sequence number, so every device pulls it again.
    fn touch_head(&mut self, permit_id: &str, seq: i64, at_ms: i64) -> Result<(), DbError>;
}

/// Whom a permit names, for a welder's scoped pull.
pub fn people_of(permit: &Permit) -> Vec<String> {
    let c = &permit.content;
    let mut people: Vec<String> = std::iter::once(&c.applicant)
        .chain(c.welders.iter())
        .flat_map(|p| [p.id.clone(), p.name.clone()])
        .filter(|s| !s.trim().is_empty())
        .collect();
    people.sort();
    people.dedup();
    people
}

/// Place one pushed permit step (kind `permit_step`, already validated) inside the caller's
/// transaction and say how it ended.
pub fn push_step(
    ledger: &mut dyn PermitLedger,
    device_id: &str,
    key: &str,
    payload: &str,
    at_ms: i64,
) -> Result<Insert, DbError> {
    let payload_hash = hash(payload);
    if let Some(stored) = ledger.record_hash(key)? {
        return Ok(if stored == payload_hash {
            Insert::Duplicate
        } else {
            Insert::Conflict
        });
    }
    if let Some(reason) = ledger.lost_reason(key)? {
        return Ok(Insert::Refused(reason));
    }
    let record: PermitStepRecord = match serde_json::from_str(payload) {
        Ok(r) => r,
        Err(e) => return Ok(Insert::Refused(format!("record.invalid: {e}"))),
    };
    let permit_id = record.permit_id.as_str();
    let head = ledger.head_step(permit_id)?;
    let steps = ledger.steps(permit_id)?;
    let decision = decide(head.as_deref(), &steps, &record);
    let body = serde_json::to_string(&record.permit).map_err(|e| DbError::Invalid(e.to_string()))?;
    let state = state_name(record.state);
    let mut step = NewStep {
        step_id: key,
        permit_id,
        base: None,
        action: &record.action,
        digest: &record.digest,
        status: APPLIED,
        reason: None,
        body: &body,
        device_id,
        at_ms,
    };
    let applied = |ledger: &mut dyn PermitLedger, step: &NewStep<'_>| -> Result<(), DbError> {
        ledger.insert_record(key, "permit_step", payload, &payload_hash, device_id, at_ms)?;
        ledger.insert_step(step)?;
        let seq = ledger.next_seq()?;
        ledger.put_head(&HeadRow {
            permit_id,
            step_id: key,
            action: &record.action,
            state,
            digest: &record.digest,
            body: &body,
            people: people_of(&record.permit),
            seq,
            at_ms,
        })
    };
    match decision {
        Decision::Extend { base } => {
            step.base = base.as_deref();
            applied(ledger, &step)?;
            Ok(Insert::Applied)
        }
        Decision::Win { base, superseded } => {
            step.base = Some(&base);
            ledger.set_superseded(&superseded)?;
            applied(ledger, &step)?;
            Ok(Insert::Applied)
        }
        Decision::Lose { base, reason } => {
            step.base = Some(&base);
            step.status = LOST;
            step.reason = Some(&reason);
            ledger.insert_step(&step)?;
            // The losing device learns the winner at its next pull, even if it pulled it before.
            let seq = ledger.next_seq()?;
            ledger.touch_head(permit_id, seq, at_ms)?;
            Ok(Insert::Refused(reason))
        }
        Decision::Refuse(reason) => {
            if head.is_some() {
                let seq = ledger.next_seq()?;
                ledger.touch_head(permit_id, seq, at_ms)?;
            }
            Ok(Insert::Refused(reason))
        }
    }
}

