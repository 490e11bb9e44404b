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

use weldguard_model::domain::Explain;
use weldguard_model::permit::{
    ActionKind, ForkStep, Permit, PermitError, PermitState, successor_action,
};
use weldguard_model::records::PermitStepRecord;
use weldguard_model::records::{action_name, state_name};

use crate::db::{DbError, Insert, hash};

/// Status of a stored step: on the head's branch.
pub const APPLIED: &str = "applied";
/// Was applied, then its branch lost a conflict.
pub const SUPERSEDED: &str = "superseded";
/// Lost a conflict when it arrived (kept for the audit trail and for its descendants).
pub const LOST: &str = "lost";

/// Most lost steps the platform stores for one permit. A real conflict needs two people acting on
/// the same version offline; even a long permit with gas readings every hour sees a handful, so
/// 64 leaves ample room for the audit trail while bounding what one permit can accumulate.
/// Beyond it a losing step is refused (`permit.too_many_lost`) and not stored.
pub const MAX_LOST_PER_PERMIT: i64 = 64;
/// Most lost steps the platform stores from one device in [`LOST_WINDOW_MS`], over all permits:
/// a phone whose steps keep losing is misbehaving (or stolen); 256 a day is far above what one
/// site's supervisor produces and caps what one token can make the platform keep.
pub const MAX_LOST_PER_DEVICE: i64 = 256;
/// The window of [`MAX_LOST_PER_DEVICE`]: one day, in milliseconds.
pub const LOST_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// Most stored versions with the event log a step continues that [`decide`] parses: the applied
/// one comes first, so more only ever finds a lost base (the step is refused either way).
pub const MAX_CANDIDATES: usize = 4;
/// Most trailing flag events a step may add before its action (only an approval adds flags, one
/// or two): bounds the prefixes a step's base is looked up by.
pub const MAX_ADDED_FLAGS: usize = 16;
/// Longest walk back from the head to the rival when a fork wins (a guard; the chain is acyclic).
const MAX_WALK: usize = 100_000;

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
    /// How the step was admitted over its base (action, time, digest), stored when it was placed;
    /// `None` for a draft or a step stored before these facts were kept.
    pub fork: Option<ForkStep>,
}

/// Facts about a version kept beside it, so a new step finds the version it follows by an index
/// instead of parsing the permit's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFacts {
    /// [`events_keys`] of the whole event log.
    pub events_key: Vec<u8>,
    pub events: i64,
    pub signatures: i64,
}

/// The running hash of an event log: `keys[k]` identifies the first `k` events (each event's
/// JSON, length-framed, chained with SHA-256). One pass over the log gives every prefix's key.
pub fn events_keys(permit: &Permit) -> Vec<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let mut keys = Vec::with_capacity(permit.events.len() + 1);
    let mut h = Sha256::digest(b"weldguard permit events v1").to_vec();
    keys.push(h.clone());
    for event in &permit.events {
        let json = serde_json::to_vec(event).unwrap_or_default();
        let mut next = Sha256::new();
        next.update(&h);
        next.update((json.len() as u64).to_be_bytes());
        next.update(&json);
        h = next.finalize().to_vec();
        keys.push(h.clone());
    }
    keys
}

/// The facts of `permit` to store with its step.
pub fn version_facts(permit: &Permit) -> VersionFacts {
    VersionFacts {
        events_key: events_keys(permit).pop().unwrap_or_default(),
        events: permit.events.len() as i64,
        signatures: permit.signatures.len() as i64,
    }
}

/// The event-log keys of the versions `next` may follow by one action: its log without the last
/// event, and without the flags an approval logs before its own event (at most
/// [`MAX_ADDED_FLAGS`]).
pub fn base_keys(next: &Permit) -> Vec<Vec<u8>> {
    use weldguard_model::permit::EventKind;
    let mut keys = events_keys(next);
    let n = next.events.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut k = n - 1;
    loop {
        out.push(std::mem::take(&mut keys[k]));
        if k == 0 || out.len() > MAX_ADDED_FLAGS {
            break;
        }
        if !matches!(next.events[k - 1].kind, EventKind::Flagged { .. }) {
            break;
        }
        k -= 1;
    }
    out
}

/// The action named `name` ([`action_name`]).
pub fn action_from_name(name: &str) -> Option<ActionKind> {
    ActionKind::ALL
        .into_iter()
        .find(|k| action_name(*k) == name)
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
    /// What later steps find it by.
    pub facts: &'a VersionFacts,
    /// How it was admitted over its base (`None` for a draft).
    pub fork: Option<&'a ForkStep>,
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

/// What of the permit's history [`decide`] sees: the head, the stored versions whose event log
/// the step continues ([`base_keys`], best standing first, at most [`MAX_CANDIDATES`]), and for
/// each applied one of those its applied successor (the rival of a fork on it).
#[derive(Debug, Clone, Copy, Default)]
pub struct History<'a> {
    pub head: Option<&'a StepRow>,
    pub candidates: &'a [StepRow],
    pub successors: &'a [StepRow],
}

/// The rows behind a [`History`], owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRows {
    pub head: Option<StepRow>,
    pub candidates: Vec<StepRow>,
    pub successors: Vec<StepRow>,
}

impl HistoryRows {
    pub fn view(&self) -> History<'_> {
        History {
            head: self.head.as_ref(),
            candidates: &self.candidates,
            successors: &self.successors,
        }
    }
}

/// What the platform does with a pushed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It follows the head (or is the first version): applied, the head moves to it. `fork` is
    /// how it was admitted (`None` for the first version).
    Extend {
        base: Option<String>,
        fork: Option<ForkStep>,
    },
    /// A fork that wins: applied, the head moves to it; the rival and every applied step after
    /// it up to the head are superseded.
    Win {
        base: String,
        rival: String,
        fork: ForkStep,
    },
    /// A fork that loses (or follows a version that lost): refused with the reason, kept as lost.
    Lose {
        base: String,
        reason: String,
        fork: Option<ForkStep>,
    },
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

/// The one question the platform asks of every pushed step it places: does `next` follow `prev`
/// by one action the platform admits, and which? Every successor check of [`decide`] goes through
/// it, so a stricter platform policy (who may sign which action, the permit rules) plugs in here.
pub trait AdmitStep {
    fn admit(&self, prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError>;

    /// Whether a new permit's first version (a draft by its shape) is admitted.
    fn admit_first(&self, _next: &Permit) -> Result<(), PermitError> {
        Ok(())
    }
}

/// The core's successor check alone ([`successor_action`]: one action, the state table, the
/// whole signature chain verifies).
#[derive(Debug, Clone, Copy, Default)]
pub struct SuccessorOnly;

impl AdmitStep for SuccessorOnly {
    fn admit(&self, prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError> {
        successor_action(prev, next)
    }
}

/// Admit `next` over `prev` and describe the step for the conflict rule.
fn admitted_fork(
    admit: &dyn AdmitStep,
    prev: &Permit,
    next: &Permit,
) -> Result<ForkStep, PermitError> {
    admit
        .admit(prev, next)
        .and_then(|action| ForkStep::new(action, next))
}

/// Place `incoming` against what the platform holds of its permit ([`History`]), asking `admit`
/// whether the step follows a version. Pure; parses at most the head, the candidates and (for a
/// rival stored without its facts) one rival.
pub fn decide(
    history: &History<'_>,
    incoming: &PermitStepRecord,
    admit: &dyn AdmitStep,
) -> Decision {
    let permit_id = &incoming.permit_id;
    let next = &incoming.permit;
    let Some(head) = history.head else {
        if is_first_version(next) {
            return match admit.admit_first(next) {
                Ok(()) => Decision::Extend {
                    base: None,
                    fork: None,
                },
                Err(e) => Decision::Refuse(explain(&e)),
            };
        }
        return Decision::Refuse(format!(
            "permit.unknown_base: the platform holds no version of permit {permit_id}; \
             its first version (the draft) must arrive first"
        ));
    };
    let head_id = head.step_id.as_str();
    // The head first: the usual case.
    let against_head = match parse(&head.body).map(|prev| {
        let admitted = admitted_fork(admit, &prev, next);
        (prev, admitted)
    }) {
        Ok((_, Ok(fork))) => {
            return Decision::Extend {
                base: Some(head.step_id.clone()),
                fork: Some(fork),
            };
        }
        // One action after the head, but not admitted (who signed it, the rules, the device):
        // that refusal is the answer, with its own code.
        Ok((prev, Err(e))) if successor_action(&prev, next).is_ok() => {
            return Decision::Refuse(explain(&e));
        }
        Ok((_, Err(e))) => explain(&e),
        Err(e) => return Decision::Refuse(e),
    };
    // An older version: which one does it follow?
    let mut placed = None;
    for candidate in history
        .candidates
        .iter()
        .filter(|s| s.step_id != head_id)
        .take(MAX_CANDIDATES)
    {
        let Ok(prev) = parse(&candidate.body) else {
            continue;
        };
        if let Ok(fork) = admitted_fork(admit, &prev, next) {
            placed = Some((candidate, prev, fork));
            break;
        }
    }
    let Some((base, prev, mine)) = placed else {
        return Decision::Refuse(format!(
            "permit.unknown_base: this step of permit {permit_id} follows no version the platform \
             holds (against the current version: {against_head})"
        ));
    };
    let head_action = head.action.as_str();
    if base.status != APPLIED {
        return Decision::Lose {
            base: base.step_id.clone(),
            reason: format!(
                "permit.conflict: this step follows step {} of permit {permit_id}, whose branch \
                 lost; the permit's current version is step {head_id} ({head_action})",
                base.step_id
            ),
            fork: Some(mine),
        };
    }
    // The base is on the head's branch: the step that followed it there is the rival.
    let Some(rival) = history
        .successors
        .iter()
        .find(|s| s.status == APPLIED && s.base.as_deref() == Some(base.step_id.as_str()))
    else {
        return Decision::Refuse(format!(
            "permit.unknown_base: step {} of permit {permit_id} is neither the head nor followed",
            base.step_id
        ));
    };
    let theirs = match &rival.fork {
        Some(fork) => fork.clone(),
        None => match parse(&rival.body)
            .and_then(|r| admitted_fork(admit, &prev, &r).map_err(|e| explain(&e)))
        {
            Ok(fork) => fork,
            Err(e) => return Decision::Refuse(e),
        },
    };
    if mine.beats(&theirs) {
        Decision::Win {
            base: base.step_id.clone(),
            rival: rival.step_id.clone(),
            fork: mine,
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
            fork: Some(mine),
        }
    }
}

/// What a backend offers [`push_step`], inside one transaction. Every read is by an index; none
/// returns more than a bounded number of rows.
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
    /// The permit's head step (status applied; `base` and `fork` need not be filled).
    fn head(&mut self, permit_id: &str) -> Result<Option<StepRow>, DbError>;
    /// Stored steps of the permit whose version's event log has `events_key`: applied first,
    /// then superseded, then lost, each in arrival order; at most `limit`.
    fn steps_by_events(
        &mut self,
        permit_id: &str,
        events_key: &[u8],
        limit: usize,
    ) -> Result<Vec<StepRow>, DbError>;
    /// The applied step that followed `step_id`, if any.
    fn applied_successor(&mut self, step_id: &str) -> Result<Option<StepRow>, DbError>;
    /// The step `step_id` followed (`Some(None)`: it is a draft; `None`: no such step).
    fn base_of(&mut self, step_id: &str) -> Result<Option<Option<String>>, DbError>;
    /// How many lost steps the permit has, and how many the device stored since `since_ms`.
    fn lost_counts(
        &mut self,
        permit_id: &str,
        device_id: &str,
        since_ms: i64,
    ) -> Result<(i64, i64), DbError>;
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
        .chain(c.fire_watch.iter())
        .map(|p| p.id.clone())
        .filter(|s| !s.trim().is_empty())
        .collect();
    people.sort();
    people.dedup();
    people
}

/// Read what [`decide`] needs of `next`'s permit through the ledger: the head, the candidate
/// bases by their event-log keys, and the applied successors of the applied candidates.
fn load_history(
    ledger: &mut dyn PermitLedger,
    permit_id: &str,
    next: &Permit,
) -> Result<HistoryRows, DbError> {
    let Some(head) = ledger.head(permit_id)? else {
        return Ok(HistoryRows::default());
    };
    let mut candidates: Vec<StepRow> = Vec::new();
    for key in base_keys(next) {
        for row in ledger.steps_by_events(permit_id, &key, MAX_CANDIDATES + 1)? {
            if row.step_id != head.step_id && !candidates.iter().any(|c| c.step_id == row.step_id) {
                candidates.push(row);
            }
        }
    }
    let rank = |s: &StepRow| match s.status.as_str() {
        APPLIED => 0,
        SUPERSEDED => 1,
        _ => 2,
    };
    candidates.sort_by_key(rank);
    candidates.truncate(MAX_CANDIDATES);
    let mut successors = Vec::new();
    for c in candidates.iter().filter(|c| c.status == APPLIED) {
        if let Some(s) = ledger.applied_successor(&c.step_id)? {
            successors.push(s);
        }
    }
    Ok(HistoryRows {
        head: Some(head),
        candidates,
        successors,
    })
}

/// The [`History`] parts a ledger would give for `next` over the in-memory `rows` with head
/// `head` (tests and the fuzz target; parses every row, so not for the push path).
pub fn history_from_rows(head: Option<&str>, rows: &[StepRow], next: &Permit) -> HistoryRows {
    let Some(head) = head.and_then(|h| rows.iter().find(|r| r.step_id == h)) else {
        return HistoryRows::default();
    };
    let keys = base_keys(next);
    let rank = |s: &StepRow| match s.status.as_str() {
        APPLIED => 0,
        SUPERSEDED => 1,
        _ => 2,
    };
    let mut candidates: Vec<StepRow> = rows
        .iter()
        .filter(|r| r.step_id != head.step_id)
        .filter(|r| parse(&r.body).is_ok_and(|p| keys.contains(&version_facts(&p).events_key)))
        .cloned()
        .collect();
    candidates.sort_by_key(rank);
    candidates.truncate(MAX_CANDIDATES);
    let successors = candidates
        .iter()
        .filter(|c| c.status == APPLIED)
        .filter_map(|c| {
            rows.iter()
                .find(|r| r.status == APPLIED && r.base.as_deref() == Some(c.step_id.as_str()))
                .cloned()
        })
        .collect();
    HistoryRows {
        head: Some(head.clone()),
        candidates,
        successors,
    }
}

/// Place one pushed permit step (kind `permit_step`, already validated) inside the caller's
/// transaction and say how it ended; `admit` decides which versions it may follow. Reads a
/// bounded number of rows and parses at most a few stored versions, however many the permit has.
pub fn push_step(
    ledger: &mut dyn PermitLedger,
    device_id: &str,
    key: &str,
    payload: &str,
    at_ms: i64,
    admit: &dyn AdmitStep,
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
    let rows = load_history(ledger, permit_id, &record.permit)?;
    let decision = decide(&rows.view(), &record, admit);
    let head = rows.head;
    let body =
        serde_json::to_string(&record.permit).map_err(|e| DbError::Invalid(e.to_string()))?;
    let facts = version_facts(&record.permit);
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
        facts: &facts,
        fork: None,
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
        Decision::Extend { base, fork } => {
            step.base = base.as_deref();
            step.fork = fork.as_ref();
            applied(ledger, &step)?;
            Ok(Insert::Applied)
        }
        Decision::Win { base, rival, fork } => {
            step.base = Some(&base);
            step.fork = Some(&fork);
            // Supersede the rival and every applied step after it: walk back from the head.
            let mut superseded = Vec::new();
            let mut cursor = head.map(|h| h.step_id);
            while let Some(id) = cursor {
                if superseded.len() >= MAX_WALK {
                    break;
                }
                let reached = id == rival;
                let up = ledger.base_of(&id)?;
                superseded.push(id);
                if reached {
                    break;
                }
                cursor = up.flatten();
            }
            ledger.set_superseded(&superseded)?;
            applied(ledger, &step)?;
            Ok(Insert::Applied)
        }
        Decision::Lose { base, reason, fork } => {
            let (per_permit, per_device) =
                ledger.lost_counts(permit_id, device_id, at_ms.saturating_sub(LOST_WINDOW_MS))?;
            if per_permit >= MAX_LOST_PER_PERMIT || per_device >= MAX_LOST_PER_DEVICE {
                return Ok(Insert::Refused(format!(
                    "permit.too_many_lost: {reason} (not kept: the platform keeps at most \
                     {MAX_LOST_PER_PERMIT} losing steps per permit and {MAX_LOST_PER_DEVICE} per \
                     device a day)"
                )));
            }
            step.base = Some(&base);
            step.status = LOST;
            step.reason = Some(&reason);
            step.fork = fork.as_ref();
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

/// Real permits for the server's tests and its push fuzz target: the 十不准、九必须 checklist of
/// the built-in catalog, the GB 30871-2022 profile, fixed device keys (so versions are
/// reproducible). Not for the serving path: it panics on a broken built-in catalog.
#[doc(hidden)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod fixture {
    use chrono::{NaiveDate, NaiveTime};
    use weldguard_model::codes::signer::SoftwareSigner;
    use weldguard_model::permit::{
        Action, Actor, Catalog, ChecklistAnswer, GeoPoint, NightHours, Permit, PermitContent,
        PermitLevel, Person, ProfileSet, RuleContext, RuleProfile, SampleEvidence, Section, Site,
        WorkCalendar, WorkConditions, sample_answers,
    };
    use weldguard_model::records::PermitStepRecord;

    pub const H: i64 = 3600;
    /// 2026-11-30 00:00 China time.
    pub const DAY: i64 = 1_795_968_000;
    pub const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000000d1";

    pub struct Fx {
        pub profile: RuleProfile,
        pub catalog: Catalog,
        calendar: WorkCalendar,
        keys: [SoftwareSigner; 3],
    }

    fn actor(name: &str, id: &str, role: &str) -> Actor {
        Actor {
            name: name.into(),
            id: id.into(),
            role: role.into(),
        }
    }

    impl Default for Fx {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Fx {
        pub fn new() -> Self {
            Fx {
                profile: ProfileSet::builtin()
                    .unwrap()
                    .select("gb30871", NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
                    .unwrap()
                    .clone(),
                catalog: Catalog::builtin().unwrap(),
                calendar: WorkCalendar::default(),
                keys: [1u8, 2, 3].map(|n| SoftwareSigner::from_secret(&[n; 32]).unwrap()),
            }
        }

        fn ctx(&self) -> RuleContext<'_> {
            RuleContext {
                profile: &self.profile,
                catalog: &self.catalog,
            }
        }

        fn location() -> GeoPoint {
            GeoPoint::from_degrees(36.182, 116.772)
        }

        pub fn draft(&self) -> Permit {
            let location = Self::location();
            let content = PermitContent {
                permit_id: PERMIT_ID.into(),
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
                profile_id: self.profile.id.clone(),
                profile_version: self.profile.version.clone(),
                catalog_version: self.catalog.version.clone(),
                work_description: "更换3号储罐出口管线法兰".into(),
                hot_work_point: "3号储罐东侧管廊".into(),
                hot_work_points: 1,
                location,
                conditions: WorkConditions::default(),
                requested_level: PermitLevel::Level2,
                valid_from: DAY + 8 * H,
                valid_until: DAY + 17 * H,
                applicant: Person {
                    name: "张三".into(),
                    id: "S-001".into(),
                },
                welders: vec![Person {
                    name: "李四".into(),
                    id: "T370983199001011234".into(),
                }],
                machines: vec!["M-370983-0001".into()],
                fire_watch: vec![Person {
                    name: "王五".into(),
                    id: "S-002".into(),
                }],
            };
            Permit::draft(
                content,
                &self.ctx(),
                &actor("张三", "S-001", "applicant"),
                DAY + 6 * H,
            )
            .unwrap()
        }

        fn answers(&self, at: i64) -> Vec<ChecklistAnswer> {
            let sample = SampleEvidence::crew(at);
            sample_answers(
                &self.catalog,
                &[Section::Prohibition, Section::Must],
                &sample,
            )
        }

        /// `permit` after one action: `submit`, `site_check`, `approve` (at `at`), `reject`,
        /// `cancel` (at `at`).
        pub fn step(&self, permit: &Permit, action: &str, at: i64) -> Permit {
            let [applicant, checker, approver] = &self.keys;
            let location = Some(Self::location());
            let approver_role = self
                .profile
                .level(PermitLevel::Level2)
                .unwrap()
                .approver
                .id
                .clone();
            let a = match action {
                "submit" => Action::Submit {
                    by: actor("张三", "S-001", "applicant"),
                    signer: applicant,
                    calendar: &self.calendar,
                    at,
                    location: None,
                },
                "site_check" => Action::SiteCheck {
                    by: actor("孙七", "S-003", "supervisor"),
                    signer: checker,
                    answers: self.answers(at - 300),
                    at,
                    location,
                },
                "approve" => Action::Approve {
                    by: actor("周八", "S-004", &approver_role),
                    // The approver's presence verified (approvals must record it).
                    signer: &weldguard_model::codes::PresenceConfirmed(approver),
                    at,
                    location,
                },
                "reject" => Action::Reject {
                    by: actor("吴九", "S-009", "supervisor"),
                    at,
                    reason: "动火点周边可燃物未清理".into(),
                },
                "cancel" => Action::Cancel {
                    by: actor("张三", "S-001", "applicant"),
                    at,
                    reason: "工期调整".into(),
                },
                other => panic!("no fixture action {other}"),
            };
            let mut next = permit.clone();
            next.apply(&self.ctx(), a).unwrap();
            next
        }
    }

    /// A sealed inspection of the fixture's site by a fixed inspector key, at `at` (Unix
    /// seconds), nothing scanned.
    pub fn inspection(id: &str, at: i64) -> weldguard_model::inspect::Inspection {
        use weldguard_model::inspect::{InspectionInput, ScanOutcome, assess};
        let catalog = Catalog::builtin().unwrap();
        let input = InspectionInput {
            inspection_id: id.into(),
            inspector: actor("网格员刘", "G-0042", "inspector"),
            site_id: "site-370983-001".into(),
            location: Some(Fx::location()),
            at,
            today: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            welder: ScanOutcome::NotScanned,
            machine: ScanOutcome::NotScanned,
            permit: None,
            signers: None,
            observations: Vec::new(),
            extra_violations: Vec::new(),
            photos: Vec::new(),
            notes: String::new(),
        };
        let mut inspection = assess(input, &catalog).unwrap();
        inspection
            .sign(&SoftwareSigner::from_secret(&[4u8; 32]).unwrap())
            .unwrap();
        inspection
    }

    /// The outbox record of a step (`draft` for the first version).
    pub fn record(step_id: &str, action: &str, permit: &Permit) -> PermitStepRecord {
        PermitStepRecord {
            step_id: step_id.into(),
            permit_id: permit.content.permit_id.clone(),
            action: action.into(),
            state: permit.state,
            digest: weldguard_model::codes::to_hex(
                &weldguard_model::permit::digest(permit).unwrap(),
            ),
            permit: permit.clone(),
        }
    }

    /// (key, payload) of a step as a device pushes it.
    pub fn payload(step_id: &str, action: &str, permit: &Permit) -> (String, String) {
        (
            step_id.to_owned(),
            serde_json::to_string(&record(step_id, action, permit)).unwrap(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{DAY, Fx, H, record};
    use super::*;

    fn row(step_id: &str, base: Option<&str>, status: &str, r: &PermitStepRecord) -> StepRow {
        StepRow {
            step_id: step_id.into(),
            base: base.map(Into::into),
            status: status.into(),
            action: r.action.clone(),
            body: serde_json::to_string(&r.permit).unwrap(),
            fork: None,
        }
    }

    /// [`decide`] over in-memory rows, as the ledger would present them.
    fn place(
        head: Option<&str>,
        rows: &[StepRow],
        incoming: &PermitStepRecord,
        admit: &dyn AdmitStep,
    ) -> Decision {
        decide(
            &history_from_rows(head, rows, &incoming.permit).view(),
            incoming,
            admit,
        )
    }

    #[test]
    fn first_versions_extend_and_unknown_bases_are_refused() {
        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        assert_eq!(
            place(None, &[], &record("s0", "draft", &draft), &SuccessorOnly),
            Decision::Extend {
                base: None,
                fork: None
            }
        );
        let Decision::Refuse(reason) = place(
            None,
            &[],
            &record("s1", "submit", &submitted),
            &SuccessorOnly,
        ) else {
            panic!("a submission without its draft must be refused");
        };
        assert!(reason.starts_with("permit.unknown_base"), "{reason}");
        // Two steps ahead of the head: no version it follows is held.
        let checked = f.step(&submitted, "site_check", DAY + 7 * H + 900);
        let steps = [row("s0", None, APPLIED, &record("s0", "draft", &draft))];
        let Decision::Refuse(reason) = place(
            Some("s0"),
            &steps,
            &record("s2", "site_check", &checked),
            &SuccessorOnly,
        ) else {
            panic!("expected a refusal");
        };
        assert!(reason.starts_with("permit.unknown_base"), "{reason}");
        assert!(reason.contains("permit.not_successor"), "{reason}");
    }

    /// The stored chain draft → submit → site check, as rows.
    fn chain(f: &Fx) -> (Permit, Vec<StepRow>) {
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        let checked = f.step(&submitted, "site_check", DAY + 7 * H + 900);
        let rows = vec![
            row("s0", None, APPLIED, &record("s0", "draft", &draft)),
            row(
                "s1",
                Some("s0"),
                APPLIED,
                &record("s1", "submit", &submitted),
            ),
            row(
                "s2",
                Some("s1"),
                APPLIED,
                &record("s2", "site_check", &checked),
            ),
        ];
        (checked, rows)
    }

    #[test]
    fn a_fork_is_decided_the_same_whichever_arrives_first() {
        let f = Fx::new();
        let (checked, mut rows) = chain(&f);
        let approved = f.step(&checked, "approve", DAY + 7 * H + 2400);
        let rejected = f.step(&checked, "reject", DAY + 7 * H + 3000);
        let approve = record("a", "approve", &approved);
        let reject = record("r", "reject", &rejected);
        // Approval first: it extends the head; the rejection then wins and supersedes it.
        let Decision::Extend { base, fork } = place(Some("s2"), &rows, &approve, &SuccessorOnly)
        else {
            panic!("the approval extends the head");
        };
        assert_eq!(base.as_deref(), Some("s2"));
        let fork = fork.unwrap();
        assert_eq!(
            (fork.action, fork.at),
            (ActionKind::Approve, DAY + 7 * H + 2400)
        );
        assert_eq!(fork.digest, approve.digest);
        let mut approve_first = rows.clone();
        approve_first.push(row("a", Some("s2"), APPLIED, &approve));
        let Decision::Win { base, rival, fork } =
            place(Some("a"), &approve_first, &reject, &SuccessorOnly)
        else {
            panic!("the rejection wins");
        };
        assert_eq!((base.as_str(), rival.as_str()), ("s2", "a"));
        assert_eq!(fork.action, ActionKind::Reject);
        // Rejection first: the approval loses.
        rows.push(row("r", Some("s2"), APPLIED, &reject));
        let Decision::Lose { base, reason, .. } = place(Some("r"), &rows, &approve, &SuccessorOnly)
        else {
            panic!("the approval must lose");
        };
        assert_eq!(base, "s2");
        assert!(reason.starts_with("permit.conflict"), "{reason}");
        // A later step on the approval's branch (A cancels its approved permit) loses with it.
        rows.push(row("a", Some("s2"), LOST, &approve));
        let cancelled = f.step(&approved, "cancel", DAY + 8 * H);
        let Decision::Lose { base, reason, .. } = place(
            Some("r"),
            &rows,
            &record("ca", "cancel", &cancelled),
            &SuccessorOnly,
        ) else {
            panic!("a step on a lost branch loses");
        };
        assert_eq!(base, "a");
        assert!(reason.starts_with("permit.conflict"), "{reason}");
    }

    #[test]
    fn a_winning_fork_supersedes_the_whole_losing_branch() {
        let f = Fx::new();
        let (checked, mut rows) = chain(&f);
        // Checked → approved → (cancel wins later over approve on the checked version).
        let approved = f.step(&checked, "approve", DAY + 7 * H + 2400);
        rows.push(row(
            "a",
            Some("s2"),
            APPLIED,
            &record("a", "approve", &approved),
        ));
        let cancelled = f.step(&checked, "cancel", DAY + 7 * H + 2500);
        let Decision::Win { base, rival, .. } = place(
            Some("a"),
            &rows,
            &record("c", "cancel", &cancelled),
            &SuccessorOnly,
        ) else {
            panic!("a cancellation wins over an approval");
        };
        assert_eq!((base.as_str(), rival.as_str()), ("s2", "a"));
        // A fork further back (on the submitted version): rejected beats the site check (the
        // ledger then supersedes the site check and the approval after it).
        let submitted: Permit = serde_json::from_str(&rows[1].body).unwrap();
        let rejected_early = f.step(&submitted, "reject", DAY + 7 * H + 100);
        let Decision::Win { base, rival, .. } = place(
            Some("a"),
            &rows,
            &record("re", "reject", &rejected_early),
            &SuccessorOnly,
        ) else {
            panic!("a rejection wins over a site check");
        };
        assert_eq!((base.as_str(), rival.as_str()), ("s1", "s2"));
    }

    /// Refuses every step: shows that every successor question goes through the injected check.
    struct NoneAdmitted;

    impl AdmitStep for NoneAdmitted {
        fn admit(&self, _: &Permit, _: &Permit) -> Result<ActionKind, PermitError> {
            Err(PermitError::NotASuccessor {
                en: "refused by the platform's policy",
                zh: "平台策略拒绝",
            })
        }
    }

    #[test]
    fn every_successor_question_goes_through_the_injected_check() {
        let f = Fx::new();
        let (checked, mut rows) = chain(&f);
        let approved = f.step(&checked, "approve", DAY + 7 * H + 2400);
        let approve = record("a", "approve", &approved);
        let Decision::Refuse(reason) = place(Some("s2"), &rows, &approve, &NoneAdmitted) else {
            panic!("nothing is admitted");
        };
        assert!(
            reason.contains("refused by the platform's policy"),
            "{reason}"
        );
        // A fork: the base and the rival are both asked through it too.
        rows.push(row("a", Some("s2"), APPLIED, &approve));
        let cancelled = f.step(&checked, "cancel", DAY + 7 * H + 2500);
        let cancel = record("c", "cancel", &cancelled);
        assert!(matches!(
            place(Some("a"), &rows, &cancel, &SuccessorOnly),
            Decision::Win { .. }
        ));
        assert!(matches!(
            place(Some("a"), &rows, &cancel, &NoneAdmitted),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn a_rival_stored_with_its_facts_is_not_parsed_again() {
        let f = Fx::new();
        let (checked, mut rows) = chain(&f);
        let approved = f.step(&checked, "approve", DAY + 7 * H + 2400);
        let approve = record("a", "approve", &approved);
        let mut rival = row("a", Some("s2"), APPLIED, &approve);
        rival.fork = Some(ForkStep::new(ActionKind::Approve, &approved).unwrap());
        // The rival's body is never read: its stored facts decide.
        rival.body = "not a permit".into();
        rows.push(rival);
        let cancelled = f.step(&approved, "cancel", DAY + 8 * H);
        rows.push(row(
            "g",
            Some("a"),
            APPLIED,
            &record("g", "cancel", &cancelled),
        ));
        let rejected = f.step(&checked, "reject", DAY + 7 * H + 2500);
        let Decision::Win { base, rival, fork } = place(
            Some("g"),
            &rows,
            &record("r", "reject", &rejected),
            &SuccessorOnly,
        ) else {
            panic!("the rejection wins");
        };
        assert_eq!((base.as_str(), rival.as_str()), ("s2", "a"));
        assert_eq!(fork.action, ActionKind::Reject);
    }

    #[test]
    fn base_keys_cover_the_log_without_its_action_and_the_approvals_flags() {
        let f = Fx::new();
        let (checked, _) = chain(&f);
        let approved = f.step(&checked, "approve", DAY + 7 * H + 2400);
        let keys = base_keys(&approved);
        assert!(keys.contains(&version_facts(&checked).events_key));
        assert!(!keys.contains(&version_facts(&approved).events_key));
        assert!(keys.len() <= MAX_ADDED_FLAGS + 1);
        // Every prefix key differs from every other.
        let all = events_keys(&approved);
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
    }

    /// A ledger in memory, counting what push_step reads.
    #[derive(Default)]
    struct MemLedger {
        steps: Vec<(StepRow, VersionFacts, String, i64)>,
        head: Option<(String, String, String)>,
        lost_by_device: i64,
        rows_read: usize,
    }

    impl PermitLedger for MemLedger {
        fn record_hash(&mut self, _: &str) -> Result<Option<Vec<u8>>, DbError> {
            Ok(None)
        }
        fn insert_record(
            &mut self,
            _: &str,
            _: &str,
            _: &str,
            _: &[u8],
            _: &str,
            _: i64,
        ) -> Result<(), DbError> {
            Ok(())
        }
        fn lost_reason(&mut self, _: &str) -> Result<Option<String>, DbError> {
            Ok(None)
        }
        fn head(&mut self, _: &str) -> Result<Option<StepRow>, DbError> {
            Ok(self.head.clone().map(|(step_id, action, body)| StepRow {
                step_id,
                base: None,
                status: APPLIED.into(),
                action,
                body,
                fork: None,
            }))
        }
        fn steps_by_events(
            &mut self,
            _: &str,
            key: &[u8],
            limit: usize,
        ) -> Result<Vec<StepRow>, DbError> {
            let rows: Vec<StepRow> = self
                .steps
                .iter()
                .filter(|(_, f, _, _)| f.events_key == key)
                .map(|(r, _, _, _)| r.clone())
                .take(limit)
                .collect();
            self.rows_read += rows.len();
            Ok(rows)
        }
        fn applied_successor(&mut self, id: &str) -> Result<Option<StepRow>, DbError> {
            Ok(self
                .steps
                .iter()
                .find(|(r, _, _, _)| r.status == APPLIED && r.base.as_deref() == Some(id))
                .map(|(r, _, _, _)| r.clone()))
        }
        fn base_of(&mut self, id: &str) -> Result<Option<Option<String>>, DbError> {
            Ok(self
                .steps
                .iter()
                .find(|(r, _, _, _)| r.step_id == id)
                .map(|(r, _, _, _)| r.base.clone()))
        }
        fn lost_counts(&mut self, _: &str, _: &str, _: i64) -> Result<(i64, i64), DbError> {
            let lost = self
                .steps
                .iter()
                .filter(|(r, _, _, _)| r.status == LOST)
                .count();
            Ok((lost as i64, self.lost_by_device))
        }
        fn insert_step(&mut self, s: &NewStep<'_>) -> Result<(), DbError> {
            self.steps.push((
                StepRow {
                    step_id: s.step_id.into(),
                    base: s.base.map(Into::into),
                    status: s.status.into(),
                    action: s.action.into(),
                    body: s.body.into(),
                    fork: s.fork.cloned(),
                },
                s.facts.clone(),
                s.device_id.into(),
                s.at_ms,
            ));
            Ok(())
        }
        fn set_superseded(&mut self, ids: &[String]) -> Result<(), DbError> {
            for (r, _, _, _) in &mut self.steps {
                if ids.contains(&r.step_id) {
                    r.status = SUPERSEDED.into();
                }
            }
            Ok(())
        }
        fn next_seq(&mut self) -> Result<i64, DbError> {
            Ok(1)
        }
        fn put_head(&mut self, h: &HeadRow<'_>) -> Result<(), DbError> {
            self.head = Some((h.step_id.into(), h.action.into(), h.body.into()));
            Ok(())
        }
        fn touch_head(&mut self, _: &str, _: i64, _: i64) -> Result<(), DbError> {
            Ok(())
        }
    }

    #[test]
    fn losing_steps_are_capped_per_permit_and_per_device_and_reads_stay_bounded() {
        use super::fixture::payload;
        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        let checked = f.step(&submitted, "site_check", DAY + 7 * H + 900);
        let approved = f.step(&checked, "approve", DAY + 7 * H + 1200);
        let mut ledger = MemLedger::default();
        for (k, a, p) in [
            ("s0", "draft", &draft),
            ("s1", "submit", &submitted),
            ("s2", "site_check", &checked),
            ("s3", "approve", &approved),
        ] {
            let (key, body) = payload(k, a, p);
            assert_eq!(
                push_step(&mut ledger, "d", &key, &body, 0, &SuccessorOnly).unwrap(),
                Insert::Applied
            );
        }
        let rival = |i: i64| {
            payload(
                &format!("x{i}"),
                "approve",
                &f.step(&checked, "approve", DAY + 7 * H + 1200 + i),
            )
        };
        for i in 1..=MAX_LOST_PER_PERMIT + 3 {
            let (key, body) = rival(i);
            ledger.rows_read = 0;
            let Insert::Refused(reason) =
                push_step(&mut ledger, "d", &key, &body, 0, &SuccessorOnly).unwrap()
            else {
                panic!("a later approval loses");
            };
            let code = if i <= MAX_LOST_PER_PERMIT {
                "permit.conflict"
            } else {
                "permit.too_many_lost"
            };
            assert!(reason.starts_with(code), "{i}: {reason}");
            // However many lost steps exist, the base lookup reads a bounded number of rows.
            assert!(
                ledger.rows_read <= MAX_CANDIDATES + 1,
                "{}",
                ledger.rows_read
            );
        }
        let lost = ledger
            .steps
            .iter()
            .filter(|(r, _, _, _)| r.status == LOST)
            .count();
        assert_eq!(
            lost as i64, MAX_LOST_PER_PERMIT,
            "the capped ones are not kept"
        );
        // The per-device cap, on a fresh permit history.
        let mut ledger2 = MemLedger {
            steps: ledger
                .steps
                .iter()
                .filter(|(r, _, _, _)| r.status == APPLIED)
                .cloned()
                .collect(),
            head: ledger.head.clone(),
            lost_by_device: MAX_LOST_PER_DEVICE,
            rows_read: 0,
        };
        let (key, body) = rival(1);
        let Insert::Refused(reason) =
            push_step(&mut ledger2, "d", &key, &body, 0, &SuccessorOnly).unwrap()
        else {
            panic!("refused");
        };
        assert!(reason.starts_with("permit.too_many_lost"), "{reason}");
        // A winning fork still supersedes the whole branch after it.
        let cancelled = f.step(&submitted, "reject", DAY + 7 * H + 100);
        let (key, body) = payload("re", "reject", &cancelled);
        assert_eq!(
            push_step(&mut ledger2, "d", &key, &body, 0, &SuccessorOnly).unwrap(),
            Insert::Applied
        );
        let status = |id: &str| {
            ledger2
                .steps
                .iter()
                .find(|(r, _, _, _)| r.step_id == id)
                .map(|(r, _, _, _)| r.status.clone())
                .unwrap()
        };
        assert_eq!(
            (status("s2"), status("s3")),
            (SUPERSEDED.into(), SUPERSEDED.into())
        );
        assert_eq!(status("s1"), APPLIED);
    }

    #[test]
    fn people_named_are_the_applicant_welders_and_fire_watch_by_id() {
        let f = Fx::new();
        assert_eq!(
            people_of(&f.draft()),
            vec!["S-001", "S-002", "T370983199001011234"]
        );
    }
}
