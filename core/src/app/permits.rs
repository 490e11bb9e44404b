//! The hot-work permit walk-through (动火作业许可) as services: draft, submit, the on-site check
//! (with a preview of the answers as they are filled in), approve or reject, gas analyses, start,
//! suspend and resume, complete, close, cancel, expire; show, list and verify stored permits; the
//! permit's site code and the scan of one.
//!
//! Each step loads the permit, builds the action, signs through the person's [`PersonSigner`]
//! (approval with the person's presence), applies it under the permit's rule profile and saves it
//! with its outbox entry in one transaction; a refused step changes nothing. Every step answers
//! with a [`PermitView`]: the state, the actions allowed now and why not, the deadlines, the flags
//! and the signatures, decided here so that no screen re-derives a rule.

use std::sync::OnceLock;

use chrono::{NaiveTime, TimeZone};
use serde::Serialize;

use super::device::Device;
use super::error::AppError;
use super::lang::Lang;
use super::signing::{PersonSigner, PurposeSigner, SignPurpose};
use crate::codes::signer::{DeviceSigner, PresenceConfirmed, SoftwareSigner};
use crate::codes::to_hex;
use crate::domain::Explain;
use crate::permit::{
    Action, ActionKind, Actor, Catalog, ChecklistAnswer, EventKind, Finding, FindingCode,
    GasReading, GeoPoint, NightHours, Permit, PermitCodeClaims, PermitContent, PermitError,
    PermitLevel, PermitState, Person, ProfileSet, RuleContext, RuleProfile, SampleEvidence,
    Section, SignedStep, Site, WorkCalendar, WorkConditions, check_against_permit,
    issue_permit_code, read_permit_code, sample_answers,
};
use crate::store::records::new_record_id;
use crate::store::{PermitStoreError, StoredPermitStep};

/// China's offset, the default for a site's local time.
const CHINA_OFFSET_SECS: i32 = 8 * 3600;

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/// A text in both languages and the one the caller asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Text {
    pub zh: String,
    pub en: String,
    /// The text in the requested language.
    pub text: String,
}

impl Text {
    fn new(lang: Lang, zh: impl Into<String>, en: impl Into<String>) -> Self {
        let (zh, en) = (zh.into(), en.into());
        let text = lang.pick(&zh, &en).to_owned();
        Self { zh, en, text }
    }

    fn explained(lang: Lang, e: &dyn Explain) -> Self {
        Self::new(lang, e.message_zh(), e.message_en())
    }
}

/// What a permit is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermitSummary {
    pub permit_id: String,
    pub state: PermitState,
    pub state_name: Text,
    pub level: PermitLevel,
    pub level_name: Text,
    pub site_id: String,
    pub site_name: String,
    pub work: String,
    pub hot_work_point: String,
    pub hot_work_points: u32,
    pub valid_from: i64,
    pub valid_until: i64,
    pub applicant: Person,
    /// Certificate numbers of the welders (as the CLI's list has always printed them).
    pub welders: Vec<String>,
    pub welder_people: Vec<Person>,
    pub machines: Vec<String>,
    pub fire_watch: Vec<Person>,
    pub profile_id: String,
    pub profile_version: String,
}

/// One action and whether it may be taken now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedAction {
    pub action: ActionKind,
    pub name: Text,
    /// Allowed now (the inputs the step asks for still have to pass its own rules).
    pub allowed: bool,
    /// Why not, one entry per rule that blocks it (empty when allowed).
    pub why_not: Vec<Finding>,
    /// What the person must still give (answers, a reason, a gas reading, presence).
    pub needs: Vec<Need>,
}

/// An input a step needs from the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    Signature,
    /// The signature needs the person's presence (biometric or PIN).
    Presence,
    ChecklistAnswers,
    PostWorkAnswers,
    Reason,
    GasReading,
    ContinuousMonitoring,
}

/// Kinds of deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Until when the latest gas analysis lets the work start (or resume).
    GasTestValidUntil,
    /// After an interruption: resuming later than this needs a new gas analysis.
    GasRetestAfterInterruption,
    /// The permit's validity ends.
    PermitExpiry,
    /// The fire watch after the work stays until then; closing is allowed from then on.
    FireWatchUntil,
}

/// A deadline of a permit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub kind: DeadlineKind,
    /// Unix seconds.
    pub at: i64,
    /// `at` is at or before now.
    pub passed: bool,
    pub text: Text,
}

/// One signature of the permit's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureView {
    pub step: SignedStep,
    pub step_name: Text,
    pub signer: Actor,
    pub at: i64,
    /// Whether the key store verified the signer's presence (`None`: an old signature that does
    /// not say).
    pub user_present: Option<bool>,
    pub format: &'static str,
    pub public_key: String,
}

/// A flag on record (a finding that did not block its step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagView {
    pub code: FindingCode,
    pub code_text: &'static str,
    pub clause: String,
    pub text: Text,
}

/// What a screen shows of a permit after any step: decided here, rendered as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PermitView {
    pub permit_id: String,
    pub state: PermitState,
    pub state_name: Text,
    pub level: PermitLevel,
    pub level_name: Text,
    pub summary: PermitSummary,
    /// The actions the life cycle offers in this state, each allowed now or not and why.
    pub actions: Vec<AllowedAction>,
    pub deadlines: Vec<Deadline>,
    /// Flags on record, as the permit holds them (`Finding`s).
    pub flags: Vec<Finding>,
    pub flag_texts: Vec<FlagView>,
    pub signatures: Vec<SignatureView>,
    /// The step just saved (`None` for a view that saved nothing).
    pub step: Option<StoredPermitStep>,
}

impl PermitView {
    /// The entry for `action`, when the life cycle offers it in this state.
    pub fn action(&self, action: ActionKind) -> Option<&AllowedAction> {
        self.actions.iter().find(|a| a.action == action)
    }

    /// Whether `action` may be taken now.
    pub fn allows(&self, action: ActionKind) -> bool {
        self.action(action).is_some_and(|a| a.allowed)
    }
}

/// A stored permit in full: the view, the permit and its saved steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PermitDetail {
    #[serde(flatten)]
    pub view: PermitView,
    pub permit: Permit,
    pub steps: Vec<StoredPermitStep>,
}

/// A permit's signatures checked: each proves nothing changed, and the signer directory this
/// device synced vouches for who signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyView {
    pub permit_id: String,
    pub valid: bool,
    pub signatures: Vec<VerifiedSignature>,
    pub reason: Option<Reason>,
}

/// One signature as `verify` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedSignature {
    pub step: SignedStep,
    pub signer: Actor,
    pub at: i64,
    pub public_key: String,
    pub user_present: Option<bool>,
    pub format: &'static str,
}

/// Why something did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub message_zh: String,
    pub message_en: String,
    pub text: String,
}

impl Reason {
    fn of(e: &dyn Explain, lang: Lang) -> Self {
        Self {
            code: e.code(),
            message_zh: e.message_zh(),
            message_en: e.message_en(),
            text: lang.explain(e),
        }
    }
}

/// The permit's site code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteCodeView {
    pub permit_id: String,
    /// The `WG1:` text to show as a QR code.
    pub text: String,
    pub chars: usize,
}

/// A scanned permit code, read offline and matched against the permit stored here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanView {
    pub valid: bool,
    pub reason: Option<Reason>,
    pub claims: Option<PermitCodeClaims>,
    pub stored: bool,
    pub matches_stored: Option<bool>,
    /// Why it does not match the stored permit (English, as the CLI always printed it).
    pub mismatch: Option<String>,
    pub mismatch_text: Option<Text>,
    /// One line for the screen.
    pub verdict: Text,
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// Who signs or acts: a person and, optionally, the role they act in (default: the step's role:
/// applicant, supervisor, the level's approver; at closing, the role the synced signer directory
/// gives the signer's key for closing, else supervisor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorInput {
    pub name: String,
    pub id: String,
    pub role: Option<String>,
}

/// A new permit.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftInput {
    pub site_id: String,
    pub site_name: String,
    /// Rule profile id: `gb30871` (chemical plants) or `construction`.
    pub rules: String,
    pub site_location: GeoPoint,
    /// Night hours in the site's local time, `HH:MM-HH:MM` (default 20:00-06:00).
    pub night: Option<String>,
    pub approval_radius_m: Option<u32>,
    pub work: String,
    pub hot_work_point: String,
    pub hot_work_points: u32,
    pub level: PermitLevel,
    pub valid_from: i64,
    pub valid_until: i64,
    pub applicant: Person,
    pub welders: Vec<Person>,
    pub machines: Vec<String>,
    pub fire_watch: Vec<Person>,
    pub conditions: WorkConditions,
    /// Default: a new UUIDv7.
    pub permit_id: Option<String>,
}

/// A gas analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasInput {
    /// Lower explosive limit of the gas, hundredths of %vol (methane: 500).
    pub lel_centi_pct: u32,
    pub concentration_centi_pct: u32,
    pub point: String,
    pub analyst: String,
    /// When it was taken (default: now).
    pub taken_at: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

fn catalog() -> Result<&'static Catalog, AppError> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| Catalog::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| {
            AppError::input(
                "permit.catalog",
                format!("内置检查清单无法读取：{e}"),
                format!("the built-in checklist catalog cannot be read: {e}"),
            )
        })
}

fn profiles() -> Result<&'static ProfileSet, AppError> {
    ProfileSet::builtin_shared().map_err(|e| {
        AppError::input(
            "permit.profiles",
            format!("内置规则配置无法读取：{e:?}"),
            format!("the built-in rule profiles cannot be read: {e:?}"),
        )
    })
}

/// The profile version a permit records.
fn profile_of(permit: &Permit) -> Result<&'static RuleProfile, AppError> {
    let c = &permit.content;
    profiles()?
        .get(&c.profile_id, &c.profile_version)
        .ok_or_else(|| {
            AppError::input(
                "permit.profile_unknown",
                format!(
                    "本版本不认识规则配置 {} {}",
                    c.profile_id, c.profile_version
                ),
                format!(
                    "rule profile {} {} is not known to this build",
                    c.profile_id, c.profile_version
                ),
            )
        })
}

fn load(device: &Device, id: &str) -> Result<Permit, AppError> {
    device
        .store()
        .permit(id)?
        .ok_or_else(|| AppError::PermitStore(PermitStoreError::NotFound(id.to_owned())))
}

fn approver_role(permit: &Permit, profile: &RuleProfile) -> String {
    profile
        .level(permit.level())
        .map(|l| l.approver.id.clone())
        .unwrap_or_else(|| "approver".into())
}

fn actor(input: ActorInput, default_role: impl FnOnce() -> String) -> Result<Actor, AppError> {
    let (name, id) = (input.name.trim(), input.id.trim());
    if name.is_empty() || id.is_empty() {
        return Err(AppError::input(
            "input.person",
            "须写明姓名和编号（NAME:ID）",
            "a person needs a name and an id (NAME:ID)",
        ));
    }
    Ok(Actor {
        name: name.to_owned(),
        id: id.to_owned(),
        role: input
            .role
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(default_role),
    })
}

/// Parse night hours `HH:MM-HH:MM`.
pub fn parse_night(text: &str) -> Result<NightHours, AppError> {
    let bad = || {
        AppError::input(
            "input.night",
            format!("夜间时段 {text:?} 格式应为 HH:MM-HH:MM"),
            format!("night hours {text:?}: use HH:MM-HH:MM"),
        )
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let t = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
    Ok(NightHours {
        start: t(a)?,
        end: t(b)?,
    })
}

/// A time as the site's local clock shows it.
pub(crate) fn clock(t: i64, offset_secs: i32) -> String {
    chrono::FixedOffset::east_opt(offset_secs)
        .and_then(|o| o.timestamp_opt(t, 0).single())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn level_name(level: PermitLevel, profile: Option<&RuleProfile>, lang: Lang) -> Text {
    match profile.and_then(|p| p.level(level)) {
        Some(rule) => Text::new(lang, rule.name_zh.clone(), rule.name_en.clone()),
        None => {
            let en = format!("{level:?}").to_lowercase();
            Text::new(lang, en.clone(), en)
        }
    }
}

fn action_name(kind: ActionKind, lang: Lang) -> Text {
    Text::new(
        lang,
        kind.name_zh(),
        crate::store::permits::action_name(kind).replace('_', " "),
    )
}

// ---------------------------------------------------------------------------------------------
// The view: actions allowed now, deadlines, flags
// ---------------------------------------------------------------------------------------------

/// A key for dry runs: never stored, never leaves this module.
fn stand_in() -> Option<&'static PresenceConfirmed<SoftwareSigner>> {
    static KEY: OnceLock<Option<PresenceConfirmed<SoftwareSigner>>> = OnceLock::new();
    KEY.get_or_init(|| {
        SoftwareSigner::from_secret(&[7; 32])
            .ok()
            .map(PresenceConfirmed)
    })
    .as_ref()
}

/// Findings about inputs a dry run makes up (answers, reasons, who signs, where): the step's own
/// input decides them, not the permit's state.
fn about_made_up_input(f: &Finding) -> bool {
    matches!(
        f.code,
        FindingCode::Checklist
            | FindingCode::PersonNotOnPermit
            | FindingCode::MachineDistanceMissing
            | FindingCode::MachineTooFar
            | FindingCode::ReasonMissing
            | FindingCode::ApproverRole
            | FindingCode::ApproverOffSite
            | FindingCode::ApproverLocationMissing
    )
}

/// Sample answers naming the permit's own people (dry runs only).
fn sample_for(
    permit: &Permit,
    sections: &[Section],
    catalog: &Catalog,
    at: i64,
) -> Vec<ChecklistAnswer> {
    let c = &permit.content;
    let person = |p: Option<&Person>| {
        p.cloned().unwrap_or_else(|| Person {
            name: "-".into(),
            id: "-".into(),
        })
    };
    let sample = SampleEvidence::new(person(c.welders.first()), person(c.fire_watch.first()), at);
    sample_answers(catalog, sections, &sample)
}

/// Try `kind` on a copy of `permit` at `now` with made-up inputs; the blocking findings about the
/// permit itself (validity, gas, watch time, level…) say why it is not allowed now.
fn dry_run(
    permit: &Permit,
    ctx: &RuleContext<'_>,
    calendar: &WorkCalendar,
    kind: ActionKind,
    now: i64,
    answers: Option<&[ChecklistAnswer]>,
) -> Vec<Finding> {
    let Some(key) = stand_in() else {
        return Vec::new();
    };
    let signer: &dyn DeviceSigner = key;
    let by = |role: String| Actor {
        name: "-".into(),
        id: "-".into(),
        role,
    };
    let site = permit.content.site.location;
    let action = match kind {
        ActionKind::Submit => Action::Submit {
            by: by("applicant".into()),
            signer,
            calendar,
            at: now,
            location: None,
        },
        ActionKind::SiteCheck => Action::SiteCheck {
            by: by("supervisor".into()),
            signer,
            answers: answers.map(<[ChecklistAnswer]>::to_vec).unwrap_or_else(|| {
                sample_for(
                    permit,
                    &[Section::Prohibition, Section::Must],
                    ctx.catalog,
                    now,
                )
            }),
            at: now,
            location: Some(site),
        },
        ActionKind::Approve => Action::Approve {
            by: by(approver_role(permit, ctx.profile)),
            signer,
            at: now,
            location: Some(site),
        },
        ActionKind::Start => Action::Start {
            at: now,
            continuous_monitoring: true,
            by: None,
        },
        ActionKind::Suspend => Action::Suspend {
            at: now,
            reason: "-".into(),
        },
        ActionKind::Resume => Action::Resume { at: now },
        ActionKind::Complete => Action::Complete { at: now },
        ActionKind::Close => Action::Close {
            by: by("supervisor".into()),
            signer,
            post_work: sample_for(permit, &[Section::PostWork], ctx.catalog, now),
            at: now,
            location: Some(site),
        },
        ActionKind::Reject => Action::Reject {
            by: by(approver_role(permit, ctx.profile)),
            at: now,
            reason: "-".into(),
        },
        ActionKind::Cancel => Action::Cancel {
            by: by("applicant".into()),
            at: now,
            reason: "-".into(),
        },
        ActionKind::Expire => Action::Expire { at: now },
        ActionKind::Edit | ActionKind::RecordGas => return Vec::new(),
    };
    let mut copy = permit.clone();
    match copy.apply(ctx, action) {
        Err(PermitError::RuleBlocked { findings, .. }) => findings
            .into_iter()
            .filter(|f| answers.is_some() || !about_made_up_input(f))
            .collect(),
        _ => Vec::new(),
    }
}

fn needs(permit: &Permit, profile: &RuleProfile, kind: ActionKind) -> Vec<Need> {
    let continuous = profile
        .level(permit.level())
        .is_some_and(|l| l.continuous_gas_monitoring);
    match kind {
        ActionKind::Submit => vec![Need::Signature],
        ActionKind::SiteCheck => vec![Need::ChecklistAnswers, Need::Signature],
        ActionKind::Approve => vec![Need::Signature, Need::Presence],
        ActionKind::Close => vec![Need::PostWorkAnswers, Need::Signature],
        ActionKind::Suspend | ActionKind::Reject | ActionKind::Cancel => vec![Need::Reason],
        ActionKind::RecordGas => vec![Need::GasReading],
        ActionKind::Start if continuous => vec![Need::ContinuousMonitoring],
        _ => Vec::new(),
    }
}

/// The view of `permit` at `now`. `answers`: checklist answers being filled in (a preview of the
/// site check): their problems block the site check and the approval after it.
fn view(
    device: &Device,
    permit: &Permit,
    now: i64,
    lang: Lang,
    step: Option<StoredPermitStep>,
    answers: Option<&[ChecklistAnswer]>,
) -> Result<PermitView, AppError> {
    let profile = profile_of(permit).ok();
    let c = &permit.content;
    let level = permit.level();
    let summary = PermitSummary {
        permit_id: c.permit_id.clone(),
        state: permit.state,
        state_name: Text::new(lang, permit.state.name_zh(), permit.state.name_en()),
        level,
        level_name: level_name(level, profile, lang),
        site_id: c.site.site_id.clone(),
        site_name: c.site.name.clone(),
        work: c.work_description.clone(),
        hot_work_point: c.hot_work_point.clone(),
        hot_work_points: c.hot_work_points,
        valid_from: c.valid_from,
        valid_until: c.valid_until,
        applicant: c.applicant.clone(),
        welders: c.welders.iter().map(|w| w.id.clone()).collect(),
        welder_people: c.welders.clone(),
        machines: c.machines.clone(),
        fire_watch: c.fire_watch.clone(),
        profile_id: c.profile_id.clone(),
        profile_version: c.profile_version.clone(),
    };
    let mut actions = Vec::new();
    if let Some(profile) = profile {
        let catalog = catalog()?;
        let ctx = RuleContext { profile, catalog };
        let calendar = device.store().work_calendar()?;
        // The site check's problems with the answers being filled in also hold up the approval.
        let check_findings =
            answers.map(|a| dry_run(permit, &ctx, &calendar, ActionKind::SiteCheck, now, Some(a)));
        for kind in ActionKind::ALL {
            if kind == ActionKind::Edit {
                continue;
            }
            let mut why_not = match crate::permit::next_state(permit.state, kind) {
                Some(_) => dry_run(permit, &ctx, &calendar, kind, now, None),
                None => {
                    // Approval waits for a passing site check: say so while answers are open.
                    match (kind, &check_findings) {
                        (ActionKind::Approve, Some(f))
                            if permit.state == PermitState::Submitted =>
                        {
                            let mut why = vec![Finding::block(
                                FindingCode::Checklist,
                                crate::permit::lifecycle::CHECKLIST_CLAUSE,
                                "审批须待现场检查通过".into(),
                                "approval waits for the on-site check to pass".into(),
                            )];
                            why.extend(f.iter().cloned());
                            actions.push(AllowedAction {
                                action: kind,
                                name: action_name(kind, lang),
                                allowed: false,
                                why_not: why,
                                needs: needs(permit, profile, kind),
                            });
                        }
                        _ => {}
                    }
                    continue;
                }
            };
            if kind == ActionKind::SiteCheck
                && let Some(f) = &check_findings
            {
                why_not = f.clone();
            }
            actions.push(AllowedAction {
                action: kind,
                name: action_name(kind, lang),
                allowed: why_not.is_empty(),
                why_not,
                needs: needs(permit, profile, kind),
            });
        }
    }
    let flags: Vec<Finding> = permit.flags().cloned().collect();
    let flag_texts = flags
        .iter()
        .map(|f| FlagView {
            code: f.code,
            code_text: f.code.as_str(),
            clause: f.clause.clone(),
            text: Text::new(lang, f.message_zh.clone(), f.message_en.clone()),
        })
        .collect();
    let signatures = permit
        .signatures
        .iter()
        .map(|s| SignatureView {
            step: s.step,
            step_name: Text::new(
                lang,
                s.step.name_zh(),
                format!("{:?}", s.step).to_lowercase(),
            ),
            signer: s.signer.clone(),
            at: s.at,
            user_present: s.user_present,
            format: s.format(),
            public_key: to_hex(&s.public_key),
        })
        .collect();
    Ok(PermitView {
        permit_id: c.permit_id.clone(),
        state: permit.state,
        state_name: summary.state_name.clone(),
        level,
        level_name: summary.level_name.clone(),
        summary,
        actions,
        deadlines: profile.map_or_else(Vec::new, |p| deadlines(permit, p, now, lang)),
        flags,
        flag_texts,
        signatures,
        step,
    })
}

/// The deadlines of `permit` at `now` under its profile (the one place they are computed; the
/// due list reads them from here).
pub fn deadlines(permit: &Permit, profile: &RuleProfile, now: i64, lang: Lang) -> Vec<Deadline> {
    use PermitState as S;
    let c = &permit.content;
    let offset = c.site.utc_offset_secs;
    let mut out = Vec::new();
    let mut push = |kind: DeadlineKind, at: i64, zh: String, en: String| {
        out.push(Deadline {
            kind,
            at,
            passed: at <= now,
            text: Text::new(lang, zh, en),
        });
    };
    let open = matches!(
        permit.state,
        S::Draft | S::Submitted | S::Checked | S::Approved | S::Active | S::Suspended
    );
    if open {
        push(
            DeadlineKind::PermitExpiry,
            c.valid_until,
            format!("作业证有效期至 {}", clock(c.valid_until, offset)),
            format!("the permit is valid until {}", clock(c.valid_until, offset)),
        );
    }
    let suspended_at = permit.last_event_at(|k| matches!(k, EventKind::Suspended { .. }));
    if let Some(gas) = &profile.gas
        && matches!(permit.state, S::Approved | S::Active | S::Suspended)
        && let Some(latest) = permit.gas_readings.iter().map(|r| r.taken_at).max()
    {
        let until = latest.saturating_add(gas.max_age_before_work_secs);
        let mins = gas.max_age_before_work_secs / 60;
        push(
            DeadlineKind::GasTestValidUntil,
            until,
            format!(
                "气体分析（{}）{}分钟内有效，至 {} 前须开始动火",
                clock(latest, offset),
                mins,
                clock(until, offset)
            ),
            format!(
                "the gas analysis of {} is valid {} min: work starts before {}",
                clock(latest, offset),
                mins,
                clock(until, offset)
            ),
        );
    }
    if permit.state == S::Suspended
        && let Some(since) = suspended_at
        && let Some(limit) = profile
            .level(permit.level())
            .and_then(|l| l.gas_reanalysis_after_interruption_secs)
    {
        let at = since.saturating_add(limit);
        push(
            DeadlineKind::GasRetestAfterInterruption,
            at,
            format!(
                "作业中断于 {}；{} 后恢复须重新进行气体分析",
                clock(since, offset),
                clock(at, offset)
            ),
            format!(
                "interrupted at {}; resuming after {} needs a new gas analysis",
                clock(since, offset),
                clock(at, offset)
            ),
        );
    }
    if permit.state == S::Completed
        && let Some(done) = permit.last_event_at(|k| matches!(k, EventKind::Completed))
    {
        let until = done.saturating_add(profile.post_work_watch_secs);
        push(
            DeadlineKind::FireWatchUntil,
            until,
            format!(
                "作业结束后监护至 {}（{}分钟），之后方可关闭",
                clock(until, offset),
                profile.post_work_watch_secs / 60
            ),
            format!(
                "the fire watch stays until {} ({} min after the work); closing from then on",
                clock(until, offset),
                profile.post_work_watch_secs / 60
            ),
        );
    }
    out.sort_by_key(|d| d.at);
    out
}

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

/// Apply one action to a stored permit and save it with its outbox entry; nothing changes when it
/// is refused.
fn apply<'s>(
    device: &Device,
    id: &str,
    now: i64,
    lang: Lang,
    make: impl FnOnce(&Permit, &'static RuleProfile) -> Result<Action<'s>, AppError>,
) -> Result<PermitView, AppError> {
    step_time(now)?;
    let permit = load(device, id)?;
    let profile = profile_of(&permit)?;
    let action = make(&permit, profile)?;
    let ctx = RuleContext {
        profile,
        catalog: catalog()?,
    };
    let (after, saved) =
        device
            .store()
            .apply_permit_action(id, &ctx, action, now.saturating_mul(1000))?;
    view(device, &after, now, lang, Some(saved), None)
}

/// The time of a step that is saved: a time a clock can show, not before 1970 (the store keeps
/// creation times from then on), so a bad time is bad input rather than a storage failure.
fn step_time(now: i64) -> Result<(), AppError> {
    super::device::time(now)?;
    if now < 0 {
        return Err(AppError::input(
            "input.time",
            format!("时间早于1970年：{now}"),
            format!("The time is before 1970: {now}"),
        ));
    }
    Ok(())
}

/// A signed step through the person's signer for `purpose`; a refused presence is said clearly.
fn signed<'s>(
    device: &Device,
    id: &str,
    now: i64,
    lang: Lang,
    signer: &'s PurposeSigner<'s>,
    make: impl FnOnce(
        &Permit,
        &'static RuleProfile,
        &'s dyn DeviceSigner,
    ) -> Result<Action<'s>, AppError>,
) -> Result<PermitView, AppError> {
    let result = apply(device, id, now, lang, |p, profile| make(p, profile, signer));
    match result {
        Err(_) if signer.presence_refused() => Err(presence_required()),
        other => other,
    }
}

fn presence_required() -> AppError {
    AppError::input(
        "permit.presence_required",
        "审批须本人在场验证（指纹或密码）；密钥库未验证本人，未审批，未保存任何内容",
        "approval needs the approver's presence verified (biometric or PIN); the key store did not \
         verify it, so nothing was approved or saved",
    )
}

/// Draft a new permit (the applicant, not signed).
pub fn draft(
    device: &Device,
    now: i64,
    lang: Lang,
    input: DraftInput,
) -> Result<PermitView, AppError> {
    step_time(now)?;
    if input.valid_until <= input.valid_from {
        return Err(AppError::input(
            "input.validity",
            "有效期结束须晚于开始",
            "the validity must end after it starts",
        ));
    }
    for (what_zh, what_en, text) in [
        ("作业点编号", "site id", &input.site_id),
        ("作业点名称", "site name", &input.site_name),
        ("作业内容", "work", &input.work),
        ("动火部位", "hot-work point", &input.hot_work_point),
    ] {
        if text.trim().is_empty() {
            return Err(AppError::input(
                "input.empty",
                format!("{what_zh}不能为空"),
                format!("the {what_en} is empty"),
            ));
        }
    }
    let offset = chrono::FixedOffset::east_opt(CHINA_OFFSET_SECS)
        .ok_or_else(|| AppError::input("input.time", "时区无效", "invalid time zone"))?;
    let date = offset
        .timestamp_opt(now, 0)
        .single()
        .map(|t| t.date_naive())
        .ok_or_else(|| AppError::input("input.time", "时间超出范围", "the time is out of range"))?;
    let profile = profiles()?.select(&input.rules, date).ok_or_else(|| {
        AppError::input(
            "permit.profile_unknown",
            format!(
                "{date} 没有生效的规则配置 {:?}（可用：gb30871、construction）",
                input.rules
            ),
            format!(
                "no rule profile {:?} in force on {date} (known: gb30871, construction)",
                input.rules
            ),
        )
    })?;
    let catalog = catalog()?;
    let permit_id = match input.permit_id {
        Some(id) if !id.trim().is_empty() => id,
        Some(_) => {
            return Err(AppError::input(
                "input.permit_id",
                "作业证编号为空",
                "the permit id is empty",
            ));
        }
        None => new_record_id(now.saturating_mul(1000))?,
    };
    let night = parse_night(input.night.as_deref().unwrap_or("20:00-06:00"))?;
    let content = PermitContent {
        permit_id,
        site: Site {
            site_id: input.site_id,
            name: input.site_name,
            profile_id: profile.id.clone(),
            location: input.site_location,
            utc_offset_secs: CHINA_OFFSET_SECS,
            night,
            approval_radius_m: input.approval_radius_m,
        },
        profile_id: profile.id.clone(),
        profile_version: profile.version.clone(),
        catalog_version: catalog.version.clone(),
        work_description: input.work,
        hot_work_point: input.hot_work_point,
        hot_work_points: input.hot_work_points,
        location: input.site_location,
        conditions: input.conditions,
        requested_level: input.level,
        valid_from: input.valid_from,
        valid_until: input.valid_until,
        applicant: input.applicant.clone(),
        welders: input.welders,
        machines: input.machines,
        fire_watch: input.fire_watch,
    };
    let ctx = RuleContext { profile, catalog };
    let by = Actor {
        name: input.applicant.name,
        id: input.applicant.id,
        role: crate::permit::ROLE_APPLICANT.into(),
    };
    let permit = Permit::draft(content, &ctx, &by, now)?;
    let saved = device
        .store()
        .save_permit(None, &permit, None, now.saturating_mul(1000))?;
    view(device, &permit, now, lang, Some(saved), None)
}

/// The applicant submits (signed): the level is decided and the validity checked. `calendar`:
/// the work calendar to decide with (default: the platform's calendar synced into the store).
#[allow(clippy::too_many_arguments)]
pub fn submit(
    device: &Device,
    now: i64,
    lang: Lang,
    location: Option<GeoPoint>,
    id: &str,
    by: ActorInput,
    calendar: Option<WorkCalendar>,
    signer: &dyn PersonSigner,
) -> Result<PermitView, AppError> {
    let calendar = match calendar {
        Some(c) => c,
        None => device.store().work_calendar()?,
    };
    let key = PurposeSigner::new(signer, SignPurpose::PermitSubmit);
    let by = actor(by, || crate::permit::ROLE_APPLICANT.into())?;
    signed(device, id, now, lang, &key, |_, _, signer| {
        Ok(Action::Submit {
            by,
            signer,
            calendar: &calendar,
            at: now,
            location,
        })
    })
}

/// The answers of the on-site check as they are being filled in (photo references as digests),
/// judged without saving or signing: the view says whether the site check, and so the approval,
/// may go ahead, and why not (a failed must item, a missing photo, a person not on the permit…).
pub fn preview_answers(
    device: &Device,
    now: i64,
    lang: Lang,
    id: &str,
    answers: Vec<ChecklistAnswer>,
) -> Result<PermitView, AppError> {
    let permit = load(device, id)?;
    if permit.state != PermitState::Submitted {
        return Err(PermitError::TransitionRefused {
            from: permit.state,
            action: ActionKind::SiteCheck,
        }
        .into());
    }
    view(device, &permit, now, lang, None, Some(&answers))
}

/// The on-site check (十不准、九必须), signed by the supervisor.
#[allow(clippy::too_many_arguments)]
pub fn site_check(
    device: &Device,
    now: i64,
    lang: Lang,
    location: Option<GeoPoint>,
    id: &str,
    by: ActorInput,
    answers: Vec<ChecklistAnswer>,
    signer: &dyn PersonSigner,
) -> Result<PermitView, AppError> {
    let key = PurposeSigner::new(signer, SignPurpose::PermitSiteCheck);
    let by = actor(by, || "supervisor".into())?;
    signed(device, id, now, lang, &key, |_, _, signer| {
        Ok(Action::SiteCheck {
            by,
            signer,
            answers,
            at: now,
            location,
        })
    })
}

/// The approver signs on site, with their presence verified by the key store (refused without).
pub fn approve(
    device: &Device,
    now: i64,
    lang: Lang,
    location: Option<GeoPoint>,
    id: &str,
    by: ActorInput,
    signer: &dyn PersonSigner,
) -> Result<PermitView, AppError> {
    let key = PurposeSigner::new(signer, SignPurpose::PermitApprove);
    signed(device, id, now, lang, &key, |permit, profile, signer| {
        Ok(Action::Approve {
            by: actor(by, || approver_role(permit, profile))?,
            signer,
            at: now,
            location,
        })
    })
}

/// Reject a submitted or checked permit (not a signed step in the permit's chain: the log names
/// who rejected and why).
pub fn reject(
    device: &Device,
    now: i64,
    lang: Lang,
    id: &str,
    by: ActorInput,
    reason: String,
) -> Result<PermitView, AppError> {
    apply(device, id, now, lang, |permit, profile| {
        Ok(Action::Reject {
            by: actor(by, || approver_role(permit, profile))?,
            at: now,
            reason,
        })
    })
}

/// Record a gas analysis.
pub fn record_gas(
    device: &Device,
    now: i64,
    lang: Lang,
    id: &str,
    gas: GasInput,
) -> Result<PermitView, AppError> {
    if gas.point.trim().is_empty() || gas.analyst.trim().is_empty() {
        return Err(AppError::input(
            "input.gas",
            "气体分析须写明检测点和分析人",
            "a gas analysis names its point and analyst",
        ));
    }
    if gas.lel_centi_pct == 0 {
        return Err(AppError::input(
            "input.gas",
            "爆炸下限须大于0",
            "the lower explosive limit must be above 0",
        ));
    }
    let taken_at = gas.taken_at.unwrap_or(now);
    // A reading from the future, or at a time no clock shows, would move the gas deadlines.
    super::device::time(taken_at)?;
    if taken_at > now {
        return Err(AppError::input(
            "input.gas_time",
            format!("气体分析时间晚于当前时间：{taken_at} > {now}"),
            format!("the gas analysis is dated after now: {taken_at} > {now}"),
        ));
    }
    apply(device, id, now, lang, |_, _| {
        Ok(Action::RecordGas {
            reading: GasReading {
                taken_at,
                lel_centi_pct: gas.lel_centi_pct,
                concentration_centi_pct: gas.concentration_centi_pct,
                point: gas.point,
                analyst: gas.analyst.clone(),
            },
            by: Some(gas.analyst),
        })
    })
}

/// Work starts. `by`: the welder's certificate number.
pub fn start(
    device: &Device,
    now: i64,
    lang: Lang,
    id: &str,
    continuous_monitoring: bool,
    by: Option<String>,
) -> Result<PermitView, AppError> {
    apply(device, id, now, lang, |permit, _| {
        // The welder who starts is one the permit names (by certificate number).
        if let Some(welder) = &by
            && !permit.content.welders.iter().any(|w| w.id == *welder)
        {
            let shown: String = welder.chars().take(40).collect();
            return Err(AppError::input(
                "permit.welder_not_named",
                format!("作业证未列出此焊工：{shown:?}"),
                format!("the permit does not name this welder: {shown:?}"),
            ));
        }
        Ok(Action::Start {
            at: now,
            continuous_monitoring,
            by,
        })
    })
}

/// Interrupt the work.
pub fn suspend(
    device: &Device,
    now: i64,
    lang: Lang,
    id: &str,
    reason: String,
) -> Result<PermitView, AppError> {
    apply(device, id, now, lang, |_, _| {
        Ok(Action::Suspend { at: now, reason })
    })
}

/// Resume interrupted work (a long interruption needs a new gas analysis first).
pub fn resume(device: &Device, now: i64, lang: Lang, id: &str) -> Result<PermitView, AppError> {
    apply(device, id, now, lang, |_, _| Ok(Action::Resume { at: now }))
}

/// Work finished; the fire watch after the work runs.
pub fn complete(device: &Device, now: i64, lang: Lang, id: &str) -> Result<PermitView, AppError> {
    apply(device, id, now, lang, |_, _| {
        Ok(Action::Complete { at: now })
    })
}

/// The post-work check (处置) and closing, signed.
#[allow(clippy::too_many_arguments)]
pub fn close(
    device: &Device,
    now: i64,
    lang: Lang,
    location: Option<GeoPoint>,
    id: &str,
    by: ActorInput,
    post_work: Vec<ChecklistAnswer>,
    signer: &dyn PersonSigner,
) -> Result<PermitView, AppError> {
    let key = PurposeSigner::new(signer, SignPurpose::PermitClose);
    // Closing may be signed by a supervisor or by the permit's fire watch: without a role given,
    // the one the signer directory gives this key for the step (else supervisor).
    let directory = device.store().signer_directory()?;
    let public_key = signer.public_key();
    let role = by.role.clone();
    signed(
        device,
        id,
        now,
        lang,
        &key,
        move |permit, profile, signer| {
            let held = directory.as_ref().and_then(|d| d.entry(&public_key));
            let by = actor(ActorInput { role, ..by }, || {
                held.and_then(|entry| {
                    profile
                        .signer_roles(SignedStep::Close, permit.level())
                        .into_iter()
                        .find(|r| entry.roles.iter().any(|h| h == r))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "supervisor".into())
            })?;
            Ok(Action::Close {
                by,
                signer,
                post_work,
                at: now,
                location,
            })
        },
    )
}

/// Cancel a permit.
pub fn cancel(
    device: &Device,
    now: i64,
    lang: Lang,
    id: &str,
    by: ActorInput,
    reason: String,
) -> Result<PermitView, AppError> {
    let by = actor(by, || crate::permit::ROLE_APPLICANT.into())?;
    apply(device, id, now, lang, |_, _| {
        Ok(Action::Cancel {
            by,
            at: now,
            reason,
        })
    })
}

/// Mark an approved, active or suspended permit expired (at or after its validity end).
pub fn expire(device: &Device, now: i64, lang: Lang, id: &str) -> Result<PermitView, AppError> {
    apply(device, id, now, lang, |_, _| Ok(Action::Expire { at: now }))
}

/// A stored permit (verified) with its view and saved steps.
pub fn show(device: &Device, now: i64, lang: Lang, id: &str) -> Result<PermitDetail, AppError> {
    let permit = load(device, id)?;
    let steps = device.store().permit_steps(id)?;
    Ok(PermitDetail {
        view: view(device, &permit, now, lang, None, None)?,
        permit,
        steps,
    })
}

/// The stored permits (in one state, or all), by permit id.
pub fn list(
    device: &Device,
    now: i64,
    lang: Lang,
    state: Option<PermitState>,
) -> Result<Vec<PermitView>, AppError> {
    device
        .store()
        .permits(state)?
        .iter()
        .map(|p| view(device, p, now, lang, None, None))
        .collect()
}

/// Check a stored permit's signature chain and who signed it, against the signer directory this
/// device synced (docs/adr/0014). A permit that does not verify is an answer (`valid: false`),
/// not an error.
pub fn verify(device: &Device, lang: Lang, id: &str) -> Result<VerifyView, AppError> {
    let permit = match device.store().permit(id) {
        Ok(Some(p)) => p,
        Ok(None) => return Err(PermitStoreError::NotFound(id.to_owned()).into()),
        Err(e @ PermitStoreError::Tampered { .. }) => {
            return Ok(VerifyView {
                permit_id: id.to_owned(),
                valid: false,
                signatures: Vec::new(),
                reason: Some(Reason::of(&e, lang)),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let directory = device.store().signer_directory()?;
    let vouched = crate::permit::vouch(&permit, profiles()?, directory.as_ref()).err();
    Ok(VerifyView {
        permit_id: id.to_owned(),
        valid: vouched.is_none(),
        signatures: permit
            .signatures
            .iter()
            .map(|s| VerifiedSignature {
                step: s.step,
                signer: s.signer.clone(),
                at: s.at,
                public_key: to_hex(&s.public_key),
                user_present: s.user_present,
                format: s.format(),
            })
            .collect(),
        reason: vouched.as_ref().map(|e| Reason::of(e, lang)),
    })
}

/// The permit's site code, signed with the approver's key.
pub fn site_code(
    device: &Device,
    now: i64,
    id: &str,
    signer: &dyn PersonSigner,
) -> Result<SiteCodeView, AppError> {
    let permit = load(device, id)?;
    let key = PurposeSigner::new(signer, SignPurpose::PermitCode);
    let text = issue_permit_code(&permit, &key, now)?;
    Ok(SiteCodeView {
        permit_id: id.to_owned(),
        chars: text.len(),
        text,
    })
}

/// Read a scanned permit code offline and, when the permit is stored here, match it. A code that
/// does not read is an answer (`valid: false`), not an error.
pub fn scan(device: &Device, lang: Lang, text: &str) -> Result<ScanView, AppError> {
    let claims = match read_permit_code(text) {
        Ok(c) => c,
        Err(e) => {
            return Ok(ScanView {
                valid: false,
                verdict: Text::new(
                    lang,
                    format!("无效：{} [{}]", e.message_zh(), e.code()),
                    format!("INVALID: {} [{}]", e.message_en(), e.code()),
                ),
                reason: Some(Reason::of(&e, lang)),
                claims: None,
                stored: false,
                matches_stored: None,
                mismatch: None,
                mismatch_text: None,
            });
        }
    };
    let stored = device.store().permit(&claims.permit_id)?;
    let matched = stored.as_ref().map(|p| check_against_permit(&claims, p));
    let mismatch = matched.as_ref().and_then(|m| m.as_ref().err());
    let verdict = match &matched {
        None => Text::new(
            lang,
            "本机无此作业证，仅能确认码未被改动",
            "not stored here: only proves the code is unaltered",
        ),
        Some(Ok(())) => Text::new(lang, "与存储的作业证一致", "matches the stored permit"),
        Some(Err(e)) => Text::new(
            lang,
            format!("与存储的作业证不符：{}", e.message_zh()),
            format!("DOES NOT MATCH the stored permit: {}", e.message_en()),
        ),
    };
    Ok(ScanView {
        valid: true,
        reason: None,
        stored: stored.is_some(),
        matches_stored: matched.as_ref().map(Result::is_ok),
        mismatch: mismatch.map(|e| e.message_en()),
        mismatch_text: mismatch.map(|e| Text::explained(lang, e)),
        claims: Some(claims),
        verdict,
    })
}

#[cfg(test)]
mod tests;
