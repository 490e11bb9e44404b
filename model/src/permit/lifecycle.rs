//! The permit life cycle: a transition table (which action is allowed in which state) and the rules
//! each step must pass under the site's profile. An action either succeeds completely (state, log and
//! signature together) or changes nothing and says why: the transition refused, or the rules that
//! block it, each with its clause.

use super::catalog::{Catalog, ChecklistAnswer, Evidence, GasReading, PersonRole, Section};
use super::finding::{Finding, FindingCode};
use super::model::{
    ActionKind, Actor, EventKind, Permit, PermitContent, PermitError, PermitEvent, PermitState,
    SignedStep,
};
use super::profile::{GeoPoint, RuleProfile, WorkCalendar};
use super::sign::sign_step;
use crate::codes::signer::DeviceSigner;
use crate::domain::Explain;

/// The evidence key (in any checklist answer) giving the welding machine's distance from the
/// hot-work point, in whole metres rounded up.
pub const MACHINE_DISTANCE_KEY: &str = "machine_to_fire_m";

/// The clause for the checklist itself.
pub const CHECKLIST_CLAUSE: &str = "肥安办发〔2024〕21号 附件";

/// A signature to make once the rules pass: step, signer, device key, time, place.
type PendingSignature<'a> = (
    SignedStep,
    Actor,
    &'a dyn DeviceSigner,
    i64,
    Option<GeoPoint>,
);

/// What the rules consult: the site's profile (the version recorded on the permit) and the catalog.
#[derive(Clone, Copy)]
pub struct RuleContext<'a> {
    pub profile: &'a RuleProfile,
    pub catalog: &'a Catalog,
}

/// An action on a permit. Times are Unix seconds, passed in.
pub enum Action<'a> {
    /// Replace the content of a draft.
    Edit {
        content: Box<PermitContent>,
        at: i64,
    },
    /// The applicant submits; the level is decided (escalation) and the validity checked.
    Submit {
        by: Actor,
        signer: &'a dyn DeviceSigner,
        calendar: &'a WorkCalendar,
        at: i64,
        location: Option<GeoPoint>,
    },
    /// The on-site check: every item of 十不准、九必须 answered.
    SiteCheck {
        by: Actor,
        signer: &'a dyn DeviceSigner,
        answers: Vec<ChecklistAnswer>,
        at: i64,
        location: Option<GeoPoint>,
    },
    /// The approver signs on site.
    Approve {
        by: Actor,
        signer: &'a dyn DeviceSigner,
        at: i64,
        location: Option<GeoPoint>,
    },
    /// Work starts.
    Start {
        at: i64,
        continuous_monitoring: bool,
        by: Option<String>,
    },
    Suspend {
        at: i64,
        reason: String,
    },
    Resume {
        at: i64,
    },
    Complete {
        at: i64,
    },
    /// The post-work check (处置) and closing.
    Close {
        by: Actor,
        signer: &'a dyn DeviceSigner,
        post_work: Vec<ChecklistAnswer>,
        at: i64,
        location: Option<GeoPoint>,
    },
    Reject {
        by: Actor,
        at: i64,
        reason: String,
    },
    Cancel {
        by: Actor,
        at: i64,
        reason: String,
    },
    Expire {
        at: i64,
    },
    RecordGas {
        reading: GasReading,
        by: Option<String>,
    },
}

impl Action<'_> {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Edit { .. } => ActionKind::Edit,
            Action::Submit { .. } => ActionKind::Submit,
            Action::SiteCheck { .. } => ActionKind::SiteCheck,
            Action::Approve { .. } => ActionKind::Approve,
            Action::Start { .. } => ActionKind::Start,
            Action::Suspend { .. } => ActionKind::Suspend,
            Action::Resume { .. } => ActionKind::Resume,
            Action::Complete { .. } => ActionKind::Complete,
            Action::Close { .. } => ActionKind::Close,
            Action::Reject { .. } => ActionKind::Reject,
            Action::Cancel { .. } => ActionKind::Cancel,
            Action::Expire { .. } => ActionKind::Expire,
            Action::RecordGas { .. } => ActionKind::RecordGas,
        }
    }
}

/// The transition table: the state an action leads to from `from`, or `None` when not allowed.
pub fn next_state(from: PermitState, action: ActionKind) -> Option<PermitState> {
    use ActionKind as A;
    use PermitState as S;
    match (from, action) {
        (S::Draft, A::Edit) => Some(S::Draft),
        (S::Draft, A::Submit) => Some(S::Submitted),
        (S::Submitted, A::SiteCheck) => Some(S::Checked),
        (S::Checked, A::Approve) => Some(S::Approved),
        (S::Approved, A::Start) => Some(S::Active),
        (S::Active, A::Suspend) => Some(S::Suspended),
        (S::Suspended, A::Resume) => Some(S::Active),
        (S::Active | S::Suspended, A::Complete) => Some(S::Completed),
        (S::Completed, A::Close) => Some(S::Closed),
        (S::Submitted | S::Checked, A::Reject) => Some(S::Rejected),
        (S::Draft | S::Submitted | S::Checked | S::Approved | S::Suspended, A::Cancel) => {
            Some(S::Cancelled)
        }
        (S::Approved | S::Active | S::Suspended, A::Expire) => Some(S::Expired),
        (
            s @ (S::Submitted | S::Checked | S::Approved | S::Active | S::Suspended),
            A::RecordGas,
        ) => Some(s),
        _ => None,
    }
}

fn check_versions(content: &PermitContent, ctx: &RuleContext<'_>) -> Result<(), PermitError> {
    if content.profile_id != ctx.profile.id || content.profile_version != ctx.profile.version {
        return Err(PermitError::VersionMismatch {
            what: "rule profile",
            recorded: format!("{} {}", content.profile_id, content.profile_version),
            given: format!("{} {}", ctx.profile.id, ctx.profile.version),
        });
    }
    if content.catalog_version != ctx.catalog.version {
        return Err(PermitError::VersionMismatch {
            what: "checklist catalog",
            recorded: content.catalog_version.clone(),
            given: ctx.catalog.version.clone(),
        });
    }
    Ok(())
}

fn checklist_findings(problems: Vec<super::catalog::AnswerProblem>, clause: &str) -> Vec<Finding> {
    problems
        .into_iter()
        .map(|p| {
            Finding::block(
                FindingCode::Checklist,
                clause,
                p.message_zh(),
                p.message_en(),
            )
            .about_item(p.item_id())
        })
        .collect()
}

/// Welders and fire watches named in answers must be the ones named on the permit.
fn person_findings(content: &PermitContent, answers: &[ChecklistAnswer]) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in answers {
        for e in &a.evidence {
            let Evidence::Person { role, name, id } = e else {
                continue;
            };
            let (listed, zh, en) = match role {
                PersonRole::Welder => (&content.welders, "焊工", "welder"),
                PersonRole::FireWatch => (&content.fire_watch, "监护人", "fire watch"),
                _ => continue,
            };
            if !listed.iter().any(|p| &p.id == id) {
                out.push(Finding::block(
                    FindingCode::PersonNotOnPermit,
                    CHECKLIST_CLAUSE,
                    format!("检查项 {} 中的{zh}{name}（{id}）未列入作业证", a.item_id),
                    format!(
                        "checklist item {}: {en} {name} ({id}) is not named on the permit",
                        a.item_id
                    ),
                ));
            }
        }
    }
    out
}

fn reason_finding(reason: &str) -> Option<Finding> {
    reason.trim().is_empty().then(|| {
        Finding::block(
            FindingCode::ReasonMissing,
            "WeldGuard",
            "须说明理由".into(),
            "a reason is required".into(),
        )
    })
}

fn validity_findings(permit: &Permit, profile: &RuleProfile, at: i64) -> Vec<Finding> {
    let clause = profile
        .level(permit.level())
        .map_or(profile.version.as_str(), |l| l.validity_clause.as_str());
    let c = &permit.content;
    if at < c.valid_from {
        vec![Finding::block(
            FindingCode::NotYetValid,
            clause,
            "作业证尚未生效".into(),
            "the permit is not valid yet".into(),
        )]
    } else if at >= c.valid_until {
        vec![Finding::block(
            FindingCode::Expired,
            clause,
            "作业证已过有效期".into(),
            "the permit has expired".into(),
        )]
    } else {
        Vec::new()
    }
}

impl Permit {
    /// A new draft. The content must name the profile and catalog versions of `ctx`.
    pub fn draft(
        content: PermitContent,
        ctx: &RuleContext<'_>,
        by: &Actor,
        at: i64,
    ) -> Result<Permit, PermitError> {
        check_versions(&content, ctx)?;
        Ok(Permit {
            content,
            state: PermitState::Draft,
            level: None,
            answers: Vec::new(),
            post_work: Vec::new(),
            gas_readings: Vec::new(),
            events: vec![PermitEvent {
                at,
                kind: EventKind::Drafted,
                by: Some(by.id.clone()),
            }],
            signatures: Vec::new(),
        })
    }

    /// Apply an action: all or nothing.
    pub fn apply(&mut self, ctx: &RuleContext<'_>, action: Action<'_>) -> Result<(), PermitError> {
        let kind = action.kind();
        let Some(next) = next_state(self.state, kind) else {
            return Err(PermitError::TransitionRefused {
                from: self.state,
                action: kind,
            });
        };
        check_versions(&self.content, ctx)?;
        let profile = ctx.profile;
        let mut p = self.clone();
        let mut findings: Vec<Finding> = Vec::new();
        let log = |p: &mut Permit, at: i64, kind: EventKind, by: Option<String>| {
            p.events.push(PermitEvent { at, kind, by });
        };
        let mut to_sign: Option<PendingSignature<'_>> = None;

        match action {
            Action::Edit { content, at } => {
                check_versions(&content, ctx)?;
                p.content = *content;
                log(&mut p, at, EventKind::Edited, None);
            }
            Action::Submit {
                by,
                signer,
                calendar,
                at,
                location,
            } => {
                let c = &p.content;
                if c.welders.is_empty() {
                    findings.push(Finding::block(
                        FindingCode::NoWelder,
                        "肥安办发〔2024〕21号 十不准第1条",
                        "作业证须写明持证焊工".into(),
                        "the permit must name the certified welder(s)".into(),
                    ));
                }
                if c.fire_watch.is_empty() {
                    findings.push(Finding::block(
                        FindingCode::FireWatchMissing,
                        "肥安办发〔2024〕21号 九必须第3条",
                        "作业证须指定监护人".into(),
                        "the permit must name a fire watch".into(),
                    ));
                } else if let Some(clause) = &profile.fire_watch_per_point
                    && (c.fire_watch.len() as u64) < u64::from(c.hot_work_points.max(1))
                {
                    findings.push(Finding::block(
                        FindingCode::FireWatchPerPoint,
                        clause,
                        format!(
                            "每个动火作业点均应设置1个监护人：{}个作业点，{}名监护人",
                            c.hot_work_points,
                            c.fire_watch.len()
                        ),
                        format!(
                            "one fire watch per hot-work point: {} points, {} fire watch",
                            c.hot_work_points,
                            c.fire_watch.len()
                        ),
                    ));
                }
                if let Some(w) = &profile.outdoor_wind_stop
                    && c.conditions.outdoor
                    && c.conditions
                        .wind_force
                        .is_some_and(|f| f >= w.force_at_least)
                    && !(w.shields_allow && c.conditions.shields)
                {
                    findings.push(Finding::block(
                        FindingCode::OutdoorWind,
                        &w.clause,
                        format!("{}级及以上风力时，无挡风措施不得室外动火", w.force_at_least),
                        format!(
                            "no outdoor hot work in wind of force {} or more without shields",
                            w.force_at_least
                        ),
                    ));
                }
                match profile.decide_level(
                    &c.site,
                    calendar,
                    c.requested_level,
                    c.valid_from,
                    c.valid_until,
                    &c.conditions,
                ) {
                    Ok(decision) => {
                        findings.extend(profile.check_window(
                            decision.required,
                            c.valid_from,
                            c.valid_until,
                        ));
                        p.level = Some(decision);
                    }
                    Err(f) => findings.push(f),
                }
                log(&mut p, at, EventKind::Submitted, Some(by.id.clone()));
                to_sign = Some((SignedStep::Submit, by, signer, at, location));
            }
            Action::SiteCheck {
                by,
                signer,
                answers,
                at,
                location,
            } => {
                findings.extend(checklist_findings(
                    ctx.catalog
                        .check_answers(&[Section::Prohibition, Section::Must], &answers),
                    CHECKLIST_CLAUSE,
                ));
                findings.extend(person_findings(&p.content, &answers));
                if let Some(rule) = &profile.machine_max_distance {
                    let distance = answers.iter().find_map(|a| a.number(MACHINE_DISTANCE_KEY));
                    match distance {
                        None => findings.push(Finding::block(
                            FindingCode::MachineDistanceMissing,
                            &rule.clause,
                            "须记录电焊机与动火点的距离".into(),
                            "record the welding machine's distance from the hot-work point".into(),
                        )),
                        Some(d) if d > i64::from(rule.max_m) => findings.push(Finding::block(
                            FindingCode::MachineTooFar,
                            &rule.clause,
                            format!("电焊机与动火点间距{d}米，不应超过{}米", rule.max_m),
                            format!(
                                "the welding machine is {d} m from the hot-work point; at most {} m",
                                rule.max_m
                            ),
                        )),
                        Some(_) => {}
                    }
                }
                p.answers = answers;
                log(&mut p, at, EventKind::Checked, Some(by.id.clone()));
                to_sign = Some((SignedStep::SiteCheck, by, signer, at, location));
            }
            Action::Approve {
                by,
                signer,
                at,
                location,
            } => {
                if let Some(rule) = profile.level(p.level())
                    && by.role != rule.approver.id
                {
                    findings.push(Finding::block(
                        FindingCode::ApproverRole,
                        &rule.approver_clause,
                        format!("{}须由{}审批", rule.name_zh, rule.approver.name_zh),
                        format!(
                            "a {} permit is approved by the {}",
                            rule.name_en, rule.approver.name_en
                        ),
                    ));
                }
                if at >= p.content.valid_until {
                    findings.extend(validity_findings(&p, profile, at));
                }
                let on_site = &profile.on_site_approval;
                let radius = profile.approval_radius_m(&p.content.site);
                match &location {
                    None => log(
                        &mut p,
                        at,
                        EventKind::Flagged {
                            finding: Finding::flag(
                                FindingCode::ApproverLocationMissing,
                                &on_site.clause,
                                "审批时未记录审批人位置".into(),
                                "the approver's location was not recorded".into(),
                            ),
                        },
                        Some(by.id.clone()),
                    ),
                    Some(loc) => {
                        let d = loc.distance_m(&p.content.site.location);
                        if d > f64::from(radius) {
                            log(
                                &mut p,
                                at,
                                EventKind::Flagged {
                                    finding: Finding::flag(
                                        FindingCode::ApproverOffSite,
                                        &on_site.clause,
                                        format!(
                                            "审批人签字时距作业现场约{}米，超过{}米，应现场审批",
                                            d.round() as i64,
                                            radius
                                        ),
                                        format!(
                                            "the approver signed about {} m from the site, beyond {} m; approval is on site",
                                            d.round() as i64,
                                            radius
                                        ),
                                    ),
                                },
                                Some(by.id.clone()),
                            );
                        }
                    }
                }
                log(&mut p, at, EventKind::Approved, Some(by.id.clone()));
                to_sign = Some((SignedStep::Approve, by, signer, at, location));
            }
            Action::Start {
                at,
                continuous_monitoring,
                by,
            } => {
                findings.extend(validity_findings(&p, profile, at));
                findings.extend(profile.check_gas(&p.gas_readings, at, i64::MIN));
                if let (Some(rule), Some(gas)) = (profile.level(p.level()), &profile.gas)
                    && rule.continuous_gas_monitoring
                    && !continuous_monitoring
                {
                    findings.push(Finding::block(
                        FindingCode::ContinuousMonitoringRequired,
                        &gas.continuous_clause,
                        format!("{}须连续监测可燃气体浓度", rule.name_zh),
                        format!("{} needs continuous gas monitoring", rule.name_en),
                    ));
                }
                log(
                    &mut p,
                    at,
                    EventKind::Started {
                        continuous_monitoring,
                    },
                    by,
                );
            }
            Action::Suspend { at, reason } => {
                findings.extend(reason_finding(&reason));
                log(&mut p, at, EventKind::Suspended { reason }, None);
            }
            Action::Resume { at } => {
                if at >= p.content.valid_until {
                    findings.extend(validity_findings(&p, profile, at));
                }
                let since = p
                    .last_event_at(|k| matches!(k, EventKind::Suspended { .. }))
                    .unwrap_or(at);
                if let Some(limit) = profile
                    .level(p.level())
                    .and_then(|l| l.gas_reanalysis_after_interruption_secs)
                    && at.saturating_sub(since) > limit
                {
                    findings.extend(profile.check_gas(&p.gas_readings, at, since));
                }
                log(&mut p, at, EventKind::Resumed, None);
            }
            Action::Complete { at } => log(&mut p, at, EventKind::Completed, None),
            Action::Close {
                by,
                signer,
                post_work,
                at,
                location,
            } => {
                findings.extend(checklist_findings(
                    ctx.catalog.check_answers(&[Section::PostWork], &post_work),
                    &profile.post_work_clause,
                ));
                findings.extend(person_findings(&p.content, &post_work));
                let completed = p
                    .last_event_at(|k| matches!(k, EventKind::Completed))
                    .unwrap_or(at);
                let watched = at.saturating_sub(completed);
                if watched < profile.post_work_watch_secs {
                    findings.push(Finding::block(
                        FindingCode::PostWorkWatchTooShort,
                        &profile.post_work_clause,
                        format!(
                            "作业结束后须监护不少于{}分钟，现仅{}分钟",
                            profile.post_work_watch_secs / 60,
                            watched / 60
                        ),
                        format!(
                            "the fire watch stays at least {} min after the work; only {} min so far",
                            profile.post_work_watch_secs / 60,
                            watched / 60
                        ),
                    ));
                }
                p.post_work = post_work;
                log(&mut p, at, EventKind::Closed, Some(by.id.clone()));
                to_sign = Some((SignedStep::Close, by, signer, at, location));
            }
            Action::Reject { by, at, reason } => {
                findings.extend(reason_finding(&reason));
                log(&mut p, at, EventKind::Rejected { reason }, Some(by.id));
            }
            Action::Cancel { by, at, reason } => {
                findings.extend(reason_finding(&reason));
                log(&mut p, at, EventKind::Cancelled { reason }, Some(by.id));
            }
            Action::Expire { at } => {
                if at < p.content.valid_until {
                    findings.push(Finding::block(
                        FindingCode::StillValid,
                        "WeldGuard",
                        "作业证仍在有效期内".into(),
                        "the permit is still valid".into(),
                    ));
                }
                log(&mut p, at, EventKind::Expired, None);
            }
            Action::RecordGas { reading, by } => {
                let at = reading.taken_at;
                p.gas_readings.push(reading);
                log(&mut p, at, EventKind::GasRecorded, by);
            }
        }

        let blocking: Vec<Finding> = findings.into_iter().filter(|f| f.blocking).collect();
        if !blocking.is_empty() {
            return Err(PermitError::RuleBlocked {
                action: kind,
                findings: blocking,
            });
        }
        p.state = next;
        if let Some((step, actor, signer, at, location)) = to_sign {
            sign_step(&mut p, step, &actor, signer, at, location)?;
        }
        *self = p;
        Ok(())
    }
}
