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
use weldguard_core::permit::{
    ActionKind, ForkStep, Permit, PermitError, PermitState, successor_action,
};
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

/// The one question the platform asks of every pushed step it places: does `next` follow `prev`
/// by one action the platform admits, and which? Every successor check of [`decide`] goes through
/// it, so a stricter platform policy (who may sign which action, the permit rules) plugs in here.
pub trait AdmitStep {
    fn admit(&self, prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError>;
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

/// Place `incoming` against the permit's stored steps and current head, asking `admit` whether a
/// step follows a version. Pure.
pub fn decide(
    head: Option<&str>,
    steps: &[StepRow],
    incoming: &PermitStepRecord,
    admit: &dyn AdmitStep,
) -> Decision {
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
        match parse(&h.body).map(|prev| admit.admit(&prev, next)) {
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
        .find(|s| parse(&s.body).is_ok_and(|prev| admit.admit(&prev, next).is_ok()));
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
        let fork = |next: &Permit| {
            admit
                .admit(&prev, next)
                .and_then(|action| ForkStep::new(action, next))
                .map_err(|e| explain(&e))
        };
        let mine = fork(next)?;
        let theirs = fork(&parse(&rival.body)?)?;
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
/// transaction and say how it ended; `admit` decides which versions it may follow.
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
    let head = ledger.head_step(permit_id)?;
    let steps = ledger.steps(permit_id)?;
    let decision = decide(head.as_deref(), &steps, &record, admit);
    let body =
        serde_json::to_string(&record.permit).map_err(|e| DbError::Invalid(e.to_string()))?;
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

/// Real permits for the server's tests: the 十不准、九必须 checklist of the built-in catalog, the
/// GB 30871-2022 profile, fixed device keys (so versions are reproducible).
#[cfg(test)]
pub(crate) mod fixture {
    use chrono::{NaiveDate, NaiveTime};
    use weldguard_core::codes::signer::SoftwareSigner;
    use weldguard_core::permit::{
        Action, Actor, Catalog, ChecklistAnswer, GeoPoint, NightHours, Permit, PermitContent,
        PermitLevel, Person, ProfileSet, RuleContext, RuleProfile, SampleEvidence, Section, Site,
        WorkCalendar, WorkConditions, sample_answers,
    };
    use weldguard_core::store::PermitStepRecord;

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
                    signer: approver,
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

    /// The outbox record of a step (`draft` for the first version).
    pub fn record(step_id: &str, action: &str, permit: &Permit) -> PermitStepRecord {
        PermitStepRecord {
            step_id: step_id.into(),
            permit_id: permit.content.permit_id.clone(),
            action: action.into(),
            state: permit.state,
            digest: weldguard_core::codes::to_hex(&weldguard_core::permit::digest(permit).unwrap()),
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
        }
    }

    #[test]
    fn first_versions_extend_and_unknown_bases_are_refused() {
        let f = Fx::new();
        let draft = f.draft();
        let submitted = f.step(&draft, "submit", DAY + 7 * H);
        assert_eq!(
            decide(None, &[], &record("s0", "draft", &draft), &SuccessorOnly),
            Decision::Extend { base: None }
        );
        let Decision::Refuse(reason) = decide(
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
        let Decision::Refuse(reason) = decide(
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
        assert_eq!(
            decide(Some("s2"), &rows, &approve, &SuccessorOnly),
            Decision::Extend {
                base: Some("s2".into())
            }
        );
        let mut approve_first = rows.clone();
        approve_first.push(row("a", Some("s2"), APPLIED, &approve));
        assert_eq!(
            decide(Some("a"), &approve_first, &reject, &SuccessorOnly),
            Decision::Win {
                base: "s2".into(),
                superseded: vec!["a".into()]
            }
        );
        // Rejection first: the approval loses.
        rows.push(row("r", Some("s2"), APPLIED, &reject));
        let Decision::Lose { base, reason } = decide(Some("r"), &rows, &approve, &SuccessorOnly)
        else {
            panic!("the approval must lose");
        };
        assert_eq!(base, "s2");
        assert!(reason.starts_with("permit.conflict"), "{reason}");
        // A later step on the approval's branch (A cancels its approved permit) loses with it.
        rows.push(row("a", Some("s2"), LOST, &approve));
        let cancelled = f.step(&approved, "cancel", DAY + 8 * H);
        let Decision::Lose { base, reason } = decide(
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
        let Decision::Win { base, superseded } = decide(
            Some("a"),
            &rows,
            &record("c", "cancel", &cancelled),
            &SuccessorOnly,
        ) else {
            panic!("a cancellation wins over an approval");
        };
        assert_eq!((base.as_str(), superseded), ("s2", vec!["a".to_owned()]));
        // A fork further back (on the submitted version): rejected beats the site check, and the
        // site check and the approval after it are both superseded.
        let submitted: Permit = serde_json::from_str(&rows[1].body).unwrap();
        let rejected_early = f.step(&submitted, "reject", DAY + 7 * H + 100);
        let Decision::Win { base, superseded } = decide(
            Some("a"),
            &rows,
            &record("re", "reject", &rejected_early),
            &SuccessorOnly,
        ) else {
            panic!("a rejection wins over a site check");
        };
        assert_eq!(base, "s1");
        assert_eq!(superseded, vec!["a".to_owned(), "s2".to_owned()]);
    }

    #[test]
    fn people_named_are_the_applicant_and_welders_by_id_and_name() {
        let f = Fx::new();
        assert_eq!(
            people_of(&f.draft()),
            vec!["S-001", "T370983199001011234", "张三", "李四"]
        );
    }
}
