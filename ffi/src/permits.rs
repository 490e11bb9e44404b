//! The hot-work permit walk-through (动火作业许可) and what is due, for the shells: thin adapters
//! over `weldguard_core::app::permits` and `weldguard_core::app::due`. Every step answers with a
//! [`PermitView`]: the state, the actions allowed now and why not, the deadlines, the flags and the
//! signatures, decided in the core (typed enums here instead of the core's strings). Steps a person
//! signs go through the shell's [`PersonSigner`]; approval asks for the person's presence.
//! Times are Unix seconds passed in by the shell; texts come in the [`Lang`] the shell chose, next
//! to both languages.

use std::sync::Arc;

use weldguard_core::app::{self, due as app_due, permits as app_permits};
use weldguard_core::permit::{self as domain_permit, ActionKind, Finding};
use weldguard_core::store::StoredPermitStep;

use crate::device::Device;
use crate::error::WeldGuardError;
use crate::signing::{ForeignPersonSigner, PersonSigner};
use crate::types::Lang;

#[cfg(test)]
mod tests;

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

/// Where a permit is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PermitState {
    Draft,
    Submitted,
    /// Checked on site: every checklist item answered.
    Checked,
    /// Approved and signed; no alteration from here on.
    Approved,
    Active,
    Suspended,
    /// Work finished; the fire watch after the work runs.
    Completed,
    Closed,
    Rejected,
    Cancelled,
    Expired,
}

impl From<domain_permit::PermitState> for PermitState {
    fn from(s: domain_permit::PermitState) -> Self {
        use domain_permit::PermitState as S;
        match s {
            S::Draft => PermitState::Draft,
            S::Submitted => PermitState::Submitted,
            S::Checked => PermitState::Checked,
            S::Approved => PermitState::Approved,
            S::Active => PermitState::Active,
            S::Suspended => PermitState::Suspended,
            S::Completed => PermitState::Completed,
            S::Closed => PermitState::Closed,
            S::Rejected => PermitState::Rejected,
            S::Cancelled => PermitState::Cancelled,
            S::Expired => PermitState::Expired,
        }
    }
}

impl From<PermitState> for domain_permit::PermitState {
    fn from(s: PermitState) -> Self {
        use domain_permit::PermitState as S;
        match s {
            PermitState::Draft => S::Draft,
            PermitState::Submitted => S::Submitted,
            PermitState::Checked => S::Checked,
            PermitState::Approved => S::Approved,
            PermitState::Active => S::Active,
            PermitState::Suspended => S::Suspended,
            PermitState::Completed => S::Completed,
            PermitState::Closed => S::Closed,
            PermitState::Rejected => S::Rejected,
            PermitState::Cancelled => S::Cancelled,
            PermitState::Expired => S::Expired,
        }
    }
}

/// The kinds of step on a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PermitAction {
    Edit,
    Submit,
    SiteCheck,
    Approve,
    Start,
    Suspend,
    Resume,
    Complete,
    Close,
    Reject,
    Cancel,
    Expire,
    RecordGas,
}

impl From<ActionKind> for PermitAction {
    fn from(k: ActionKind) -> Self {
        match k {
            ActionKind::Edit => PermitAction::Edit,
            ActionKind::Submit => PermitAction::Submit,
            ActionKind::SiteCheck => PermitAction::SiteCheck,
            ActionKind::Approve => PermitAction::Approve,
            ActionKind::Start => PermitAction::Start,
            ActionKind::Suspend => PermitAction::Suspend,
            ActionKind::Resume => PermitAction::Resume,
            ActionKind::Complete => PermitAction::Complete,
            ActionKind::Close => PermitAction::Close,
            ActionKind::Reject => PermitAction::Reject,
            ActionKind::Cancel => PermitAction::Cancel,
            ActionKind::Expire => PermitAction::Expire,
            ActionKind::RecordGas => PermitAction::RecordGas,
        }
    }
}

/// A permit's level (which exist depends on the rule profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PermitLevel {
    /// 特级
    Special,
    /// 一级
    Level1,
    /// 二级
    Level2,
    /// 三级
    Level3,
}

impl From<domain_permit::PermitLevel> for PermitLevel {
    fn from(l: domain_permit::PermitLevel) -> Self {
        use domain_permit::PermitLevel as L;
        match l {
            L::Special => PermitLevel::Special,
            L::Level1 => PermitLevel::Level1,
            L::Level2 => PermitLevel::Level2,
            L::Level3 => PermitLevel::Level3,
        }
    }
}

impl From<PermitLevel> for domain_permit::PermitLevel {
    fn from(l: PermitLevel) -> Self {
        use domain_permit::PermitLevel as L;
        match l {
            PermitLevel::Special => L::Special,
            PermitLevel::Level1 => L::Level1,
            PermitLevel::Level2 => L::Level2,
            PermitLevel::Level3 => L::Level3,
        }
    }
}

/// What a step still needs from the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PermitNeed {
    Signature,
    /// The signature needs the person's presence (biometric or PIN).
    Presence,
    ChecklistAnswers,
    PostWorkAnswers,
    Reason,
    GasReading,
    ContinuousMonitoring,
}

impl From<app_permits::Need> for PermitNeed {
    fn from(n: app_permits::Need) -> Self {
        use app_permits::Need as N;
        match n {
            N::Signature => PermitNeed::Signature,
            N::Presence => PermitNeed::Presence,
            N::ChecklistAnswers => PermitNeed::ChecklistAnswers,
            N::PostWorkAnswers => PermitNeed::PostWorkAnswers,
            N::Reason => PermitNeed::Reason,
            N::GasReading => PermitNeed::GasReading,
            N::ContinuousMonitoring => PermitNeed::ContinuousMonitoring,
        }
    }
}

/// Kinds of permit deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PermitDeadlineKind {
    /// Until when the latest gas analysis lets the work start (or resume).
    GasTestValidUntil,
    /// After an interruption: resuming later than this needs a new gas analysis.
    GasRetestAfterInterruption,
    PermitExpiry,
    /// The fire watch after the work stays until then; closing is allowed from then on.
    FireWatchUntil,
}

impl From<app_permits::DeadlineKind> for PermitDeadlineKind {
    fn from(k: app_permits::DeadlineKind) -> Self {
        use app_permits::DeadlineKind as K;
        match k {
            K::GasTestValidUntil => PermitDeadlineKind::GasTestValidUntil,
            K::GasRetestAfterInterruption => PermitDeadlineKind::GasRetestAfterInterruption,
            K::PermitExpiry => PermitDeadlineKind::PermitExpiry,
            K::FireWatchUntil => PermitDeadlineKind::FireWatchUntil,
        }
    }
}

/// Kinds of thing due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum DueKind {
    GasTestValid,
    GasRetestAfterInterruption,
    PermitExpiry,
    /// The fire watch after the work ends; close the permit from then on.
    FireWatch,
    LicenceExpiry,
    LicenceReview,
}

impl From<app_due::DueKind> for DueKind {
    fn from(k: app_due::DueKind) -> Self {
        use app_due::DueKind as K;
        match k {
            K::GasTestValid => DueKind::GasTestValid,
            K::GasRetestAfterInterruption => DueKind::GasRetestAfterInterruption,
            K::PermitExpiry => DueKind::PermitExpiry,
            K::FireWatch => DueKind::FireWatch,
            K::LicenceExpiry => DueKind::LicenceExpiry,
            K::LicenceReview => DueKind::LicenceReview,
        }
    }
}

/// The steps a person signs in the permit's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PermitSignedStep {
    Submit,
    SiteCheck,
    Approve,
    Close,
}

impl From<domain_permit::SignedStep> for PermitSignedStep {
    fn from(s: domain_permit::SignedStep) -> Self {
        use domain_permit::SignedStep as S;
        match s {
            S::Submit => PermitSignedStep::Submit,
            S::SiteCheck => PermitSignedStep::SiteCheck,
            S::Approve => PermitSignedStep::Approve,
            S::Close => PermitSignedStep::Close,
        }
    }
}

/// The part a person named in a checklist answer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ChecklistPersonRole {
    Welder,
    /// 监护人
    FireWatch,
    /// 分析人
    Analyst,
    Approver,
    Supervisor,
    Inspector,
}

impl From<ChecklistPersonRole> for domain_permit::PersonRole {
    fn from(r: ChecklistPersonRole) -> Self {
        use domain_permit::PersonRole as R;
        match r {
            ChecklistPersonRole::Welder => R::Welder,
            ChecklistPersonRole::FireWatch => R::FireWatch,
            ChecklistPersonRole::Analyst => R::Analyst,
            ChecklistPersonRole::Approver => R::Approver,
            ChecklistPersonRole::Supervisor => R::Supervisor,
            ChecklistPersonRole::Inspector => R::Inspector,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/// A text in the shell's language, and in both.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitText {
    /// In the language asked for.
    pub text: String,
    pub zh: String,
    pub en: String,
}

impl From<app_permits::Text> for PermitText {
    fn from(t: app_permits::Text) -> Self {
        Self {
            text: t.text,
            zh: t.zh,
            en: t.en,
        }
    }
}

/// A rule's verdict: why a step is not allowed now, or a flag on record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitFinding {
    /// Stable code, e.g. `permit.rule.gas_analysis_missing`.
    pub code: String,
    /// The standard and clause the rule comes from.
    pub clause: String,
    /// Refuses the step (otherwise recorded as a flag).
    pub blocking: bool,
    /// In the language asked for.
    pub text: String,
    pub zh: String,
    pub en: String,
    /// The checklist item it is about (`permit.rule.checklist`), for the screen to point at.
    pub item_id: Option<String>,
}

impl PermitFinding {
    fn of(f: &Finding, lang: app::Lang) -> Self {
        Self {
            code: f.code.as_str().to_owned(),
            clause: f.clause.clone(),
            blocking: f.blocking,
            text: lang.pick(&f.message_zh, &f.message_en).to_owned(),
            zh: f.message_zh.clone(),
            en: f.message_en.clone(),
            item_id: f.item_id.clone(),
        }
    }
}

/// Why something did not verify or read.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitReason {
    pub code: String,
    pub text: String,
    pub zh: String,
    pub en: String,
}

impl From<app_permits::Reason> for PermitReason {
    fn from(r: app_permits::Reason) -> Self {
        Self {
            code: r.code.to_owned(),
            text: r.text,
            zh: r.message_zh,
            en: r.message_en,
        }
    }
}

/// A person on a permit (name and certificate or staff number).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitPerson {
    pub name: String,
    pub id: String,
}

impl From<domain_permit::Person> for PermitPerson {
    fn from(p: domain_permit::Person) -> Self {
        Self {
            name: p.name,
            id: p.id,
        }
    }
}

impl From<PermitPerson> for domain_permit::Person {
    fn from(p: PermitPerson) -> Self {
        Self {
            name: p.name,
            id: p.id,
        }
    }
}

/// Someone who acted on a permit, in a role.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitActor {
    pub name: String,
    pub id: String,
    pub role: String,
}

impl From<domain_permit::Actor> for PermitActor {
    fn from(a: domain_permit::Actor) -> Self {
        Self {
            name: a.name,
            id: a.id,
            role: a.role,
        }
    }
}

/// What a permit is about.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitSummary {
    pub site_id: String,
    pub site_name: String,
    pub work: String,
    pub hot_work_point: String,
    pub hot_work_points: u32,
    pub valid_from: i64,
    pub valid_until: i64,
    pub applicant: PermitPerson,
    pub welders: Vec<PermitPerson>,
    pub machines: Vec<String>,
    pub fire_watch: Vec<PermitPerson>,
    pub profile_id: String,
    pub profile_version: String,
}

/// One action the life cycle offers in this state: allowed now, or why not.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitActionView {
    pub action: PermitAction,
    pub name: PermitText,
    /// Allowed now (the inputs the step asks for still have to pass its own rules).
    pub allowed: bool,
    /// One entry per rule that blocks it (empty when allowed).
    pub why_not: Vec<PermitFinding>,
    pub needs: Vec<PermitNeed>,
}

/// A deadline of a permit.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitDeadline {
    pub kind: PermitDeadlineKind,
    /// Unix seconds.
    pub at: i64,
    /// `at` is at or before the time asked about.
    pub overdue: bool,
    pub text: PermitText,
}

/// One signature of the permit's chain.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitSignature {
    pub step: PermitSignedStep,
    pub step_name: PermitText,
    pub signer: PermitActor,
    pub at: i64,
    /// The key store verified the signer's presence (`None`: an old signature that does not say).
    pub user_present: Option<bool>,
    pub format: String,
    /// Hex, SEC1 compressed.
    pub public_key: String,
}

/// The step a call saved.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitStep {
    /// UUIDv7; also the outbox idempotency key.
    pub id: String,
    pub permit_id: String,
    /// The action (`None` for the draft).
    pub action: Option<PermitAction>,
    /// `draft` or the action's snake_case name.
    pub action_code: String,
    pub state: PermitState,
    /// SHA-256 of the permit after the step, hex.
    pub digest: String,
    pub created_at_ms: i64,
}

impl From<StoredPermitStep> for PermitStep {
    fn from(s: StoredPermitStep) -> Self {
        let action = ActionKind::ALL
            .into_iter()
            .find(|k| weldguard_core::records::action_name(*k) == s.action)
            .map(PermitAction::from);
        Self {
            id: s.id,
            permit_id: s.permit_id,
            action,
            action_code: s.action,
            state: s.state.into(),
            digest: s.digest,
            created_at_ms: s.created_at_ms,
        }
    }
}

/// What a screen shows of a permit after any step, rendered as is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitView {
    pub permit_id: String,
    pub state: PermitState,
    pub state_name: PermitText,
    pub level: PermitLevel,
    pub level_name: PermitText,
    pub summary: PermitSummary,
    /// The actions the life cycle offers in this state, each allowed now or not and why.
    pub actions: Vec<PermitActionView>,
    pub deadlines: Vec<PermitDeadline>,
    /// Flags on record (findings that did not block their step).
    pub flags: Vec<PermitFinding>,
    pub signatures: Vec<PermitSignature>,
    /// The step just saved (`None` for a view that saved nothing).
    pub step: Option<PermitStep>,
}

impl PermitView {
    fn of(v: app_permits::PermitView, lang: app::Lang) -> Self {
        let s = v.summary;
        Self {
            permit_id: v.permit_id,
            state: v.state.into(),
            state_name: v.state_name.into(),
            level: v.level.into(),
            level_name: v.level_name.into(),
            summary: PermitSummary {
                site_id: s.site_id,
                site_name: s.site_name,
                work: s.work,
                hot_work_point: s.hot_work_point,
                hot_work_points: s.hot_work_points,
                valid_from: s.valid_from,
                valid_until: s.valid_until,
                applicant: s.applicant.into(),
                welders: s.welder_people.into_iter().map(Into::into).collect(),
                machines: s.machines,
                fire_watch: s.fire_watch.into_iter().map(Into::into).collect(),
                profile_id: s.profile_id,
                profile_version: s.profile_version,
            },
            actions: v
                .actions
                .into_iter()
                .map(|a| PermitActionView {
                    action: a.action.into(),
                    name: a.name.into(),
                    allowed: a.allowed,
                    why_not: a
                        .why_not
                        .iter()
                        .map(|f| PermitFinding::of(f, lang))
                        .collect(),
                    needs: a.needs.into_iter().map(Into::into).collect(),
                })
                .collect(),
            deadlines: v
                .deadlines
                .into_iter()
                .map(|d| PermitDeadline {
                    kind: d.kind.into(),
                    at: d.at,
                    overdue: d.passed,
                    text: d.text.into(),
                })
                .collect(),
            flags: v.flags.iter().map(|f| PermitFinding::of(f, lang)).collect(),
            signatures: v
                .signatures
                .into_iter()
                .map(|s| PermitSignature {
                    step: s.step.into(),
                    step_name: s.step_name.into(),
                    signer: s.signer.into(),
                    at: s.at,
                    user_present: s.user_present,
                    format: s.format.to_owned(),
                    public_key: s.public_key,
                })
                .collect(),
            step: v.step.map(Into::into),
        }
    }

    /// The entry for `action`, when the life cycle offers it in this state.
    pub fn action(&self, action: PermitAction) -> Option<&PermitActionView> {
        self.actions.iter().find(|a| a.action == action)
    }
}

/// A stored permit in full: its view, its saved steps and the whole permit as JSON (for export).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitDetail {
    pub view: PermitView,
    pub steps: Vec<PermitStep>,
    pub permit_json: String,
}

/// One signature as [`Device::permit_verify`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitVerifiedSignature {
    pub step: PermitSignedStep,
    pub signer: PermitActor,
    pub at: i64,
    pub public_key: String,
    pub user_present: Option<bool>,
    pub format: String,
}

/// A permit's signatures checked against the signer directory this device synced.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitVerification {
    pub permit_id: String,
    pub valid: bool,
    pub signatures: Vec<PermitVerifiedSignature>,
    pub reason: Option<PermitReason>,
}

/// The permit's site code.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitSiteCode {
    pub permit_id: String,
    /// The `WG1:` text to show as a QR code.
    pub text: String,
    pub chars: u64,
}

/// What a permit code says.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitCodeClaims {
    pub permit_id: String,
    pub site_id: String,
    pub site_name: String,
    pub level: PermitLevel,
    pub valid_from: i64,
    pub valid_until: i64,
    pub hot_work_point: String,
    /// Certificate numbers of the welders named.
    pub welders: Vec<String>,
    pub approved_by: String,
    pub approved_at: i64,
    pub issued_at: i64,
    /// The approver's public key that signed the code (SEC1, compressed).
    pub public_key: Vec<u8>,
}

/// A scanned permit code, read offline and matched against the permit stored here.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitCodeScan {
    pub valid: bool,
    pub reason: Option<PermitReason>,
    pub claims: Option<PermitCodeClaims>,
    /// The permit is stored on this device.
    pub stored: bool,
    pub matches_stored: Option<bool>,
    /// Why it does not match the stored permit.
    pub mismatch: Option<PermitText>,
    /// One line for the screen.
    pub verdict: PermitText,
}

/// One thing the user must do, and by when.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DueItem {
    pub kind: DueKind,
    pub permit_id: Option<String>,
    pub certificate_no: Option<String>,
    /// Unix seconds.
    pub due_at: i64,
    /// `due_at` has passed (for the fire watch: closing is due).
    pub overdue: bool,
    /// In the language asked for.
    pub text: String,
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// Who acts: a person and, optionally, the role they act in (default: the step's role).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitActorInput {
    pub name: String,
    pub id: String,
    pub role: Option<String>,
}

impl From<PermitActorInput> for app_permits::ActorInput {
    fn from(a: PermitActorInput) -> Self {
        Self {
            name: a.name,
            id: a.id,
            role: a.role,
        }
    }
}

/// A place, in degrees (WGS-84), from the phone's location service or the site's plan.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct PermitLocation {
    /// −90..=90.
    pub latitude: f64,
    /// −180..=180.
    pub longitude: f64,
}

impl PermitLocation {
    fn point(self) -> Result<domain_permit::GeoPoint, WeldGuardError> {
        let ok = self.latitude.is_finite()
            && self.longitude.is_finite()
            && (-90.0..=90.0).contains(&self.latitude)
            && (-180.0..=180.0).contains(&self.longitude);
        if !ok {
            return Err(WeldGuardError::invalid_text(
                "input.location",
                format!(
                    "位置超出范围：纬度 {}，经度 {}",
                    self.latitude, self.longitude
                ),
                format!(
                    "the location is out of range: latitude {}, longitude {}",
                    self.latitude, self.longitude
                ),
            ));
        }
        Ok(domain_permit::GeoPoint::from_degrees(
            self.latitude,
            self.longitude,
        ))
    }
}

fn point(
    location: Option<PermitLocation>,
) -> Result<Option<domain_permit::GeoPoint>, WeldGuardError> {
    location.map(PermitLocation::point).transpose()
}

/// Conditions of the planned work that bear on escalation and wind rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, uniffi::Record)]
pub struct PermitConditions {
    /// Wind force (Beaufort).
    pub wind_force: Option<u8>,
    pub outdoor: bool,
    /// Wind shields are in place.
    pub shields: bool,
    /// A complex hot-work environment (复杂动火环境).
    pub complex_environment: bool,
}

/// A new permit.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PermitDraftInput {
    pub site_id: String,
    pub site_name: String,
    /// Rule profile id: `gb30871` (chemical plants) or `construction`.
    pub rules: String,
    pub site_location: PermitLocation,
    /// Night hours in the site's local time, `HH:MM-HH:MM` (default 20:00-06:00).
    pub night: Option<String>,
    pub approval_radius_m: Option<u32>,
    pub work: String,
    pub hot_work_point: String,
    pub hot_work_points: u32,
    pub level: PermitLevel,
    pub valid_from: i64,
    pub valid_until: i64,
    pub applicant: PermitPerson,
    pub welders: Vec<PermitPerson>,
    /// Machine ids.
    pub machines: Vec<String>,
    pub fire_watch: Vec<PermitPerson>,
    pub conditions: PermitConditions,
    /// Default: a new UUIDv7.
    pub permit_id: Option<String>,
}

/// A gas analysis reading, as evidence in an answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChecklistGasReading {
    pub taken_at: i64,
    /// Lower explosive limit, hundredths of %vol (methane: 500).
    pub lel_centi_pct: u32,
    /// Hundredths of %vol.
    pub concentration_centi_pct: u32,
    pub point: String,
    pub analyst: String,
}

/// Evidence attached to a checklist answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ChecklistEvidence {
    /// A photo taken on site, by the SHA-256 of its file (32 bytes).
    Photo {
        sha256: Vec<u8>,
    },
    /// A whole number (a distance in metres, a count) for the item's `key`.
    Number {
        key: String,
        value: i64,
    },
    /// A person in a role.
    Person {
        role: ChecklistPersonRole,
        name: String,
        id: String,
    },
    GasAnalysis {
        reading: ChecklistGasReading,
    },
}

impl From<ChecklistEvidence> for domain_permit::Evidence {
    fn from(e: ChecklistEvidence) -> Self {
        use domain_permit::Evidence as E;
        match e {
            ChecklistEvidence::Photo { sha256 } => E::Photo { sha256 },
            ChecklistEvidence::Number { key, value } => E::Number { key, value },
            ChecklistEvidence::Person { role, name, id } => E::Person {
                role: role.into(),
                name,
                id,
            },
            ChecklistEvidence::GasAnalysis { reading } => E::GasAnalysis {
                reading: domain_permit::GasReading {
                    taken_at: reading.taken_at,
                    lel_centi_pct: reading.lel_centi_pct,
                    concentration_centi_pct: reading.concentration_centi_pct,
                    point: reading.point,
                    analyst: reading.analyst,
                },
            },
        }
    }
}

/// An answer to one checklist item: confirmed (with the evidence the item asks for) or not
/// applicable with a reason.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChecklistAnswerInput {
    /// The catalog item, e.g. `ban.05`, `must.03`, `close.01`.
    pub item_id: String,
    /// `None`: confirmed; otherwise not applicable, and why.
    pub not_applicable_reason: Option<String>,
    pub evidence: Vec<ChecklistEvidence>,
}

fn to_answers(input: Vec<ChecklistAnswerInput>) -> Vec<domain_permit::ChecklistAnswer> {
    input
        .into_iter()
        .map(|a| domain_permit::ChecklistAnswer {
            item_id: a.item_id,
            value: match a.not_applicable_reason {
                None => domain_permit::AnswerValue::Confirmed,
                Some(reason) => domain_permit::AnswerValue::NotApplicable { reason },
            },
            evidence: a.evidence.into_iter().map(Into::into).collect(),
        })
        .collect()
}

/// A gas analysis to record on a permit.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitGasInput {
    /// Lower explosive limit of the gas, hundredths of %vol (methane: 500).
    pub lel_centi_pct: u32,
    pub concentration_centi_pct: u32,
    pub point: String,
    pub analyst: String,
    /// When it was taken (default: the call's time).
    pub taken_at: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

fn signer(s: Arc<dyn PersonSigner>) -> ForeignPersonSigner {
    ForeignPersonSigner(s)
}

#[uniffi::export]
impl Device {
    /// Draft a new permit at `now_unix` (the applicant; not signed).
    pub fn permit_draft(
        &self,
        input: PermitDraftInput,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let site_location = input.site_location.point()?;
        let view = app_permits::draft(
            &self.app,
            now_unix,
            lang,
            app_permits::DraftInput {
                site_id: input.site_id,
                site_name: input.site_name,
                rules: input.rules,
                site_location,
                night: input.night,
                approval_radius_m: input.approval_radius_m,
                work: input.work,
                hot_work_point: input.hot_work_point,
                hot_work_points: input.hot_work_points,
                level: input.level.into(),
                valid_from: input.valid_from,
                valid_until: input.valid_until,
                applicant: input.applicant.into(),
                welders: input.welders.into_iter().map(Into::into).collect(),
                machines: input.machines,
                fire_watch: input.fire_watch.into_iter().map(Into::into).collect(),
                conditions: domain_permit::WorkConditions {
                    wind_force: input.conditions.wind_force,
                    outdoor: input.conditions.outdoor,
                    shields: input.conditions.shields,
                    complex_environment: input.conditions.complex_environment,
                },
                permit_id: input.permit_id,
            },
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// The applicant submits, signed (purpose `PermitSubmit`): the level is decided with the work
    /// calendar synced from the platform, and the validity checked.
    pub fn permit_submit(
        &self,
        permit_id: String,
        by: PermitActorInput,
        location: Option<PermitLocation>,
        signer_key: Arc<dyn PersonSigner>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::submit(
            &self.app,
            now_unix,
            lang,
            point(location)?,
            &permit_id,
            by.into(),
            None,
            &signer(signer_key),
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// The on-site check's answers as they are filled in, judged without saving or signing: the
    /// view says whether the site check (and so the approval) may go ahead, and why not.
    pub fn permit_preview_answers(
        &self,
        permit_id: String,
        answers: Vec<ChecklistAnswerInput>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::preview_answers(
            &self.app,
            now_unix,
            lang,
            &permit_id,
            to_answers(answers),
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// The on-site check (十不准、九必须), signed by the supervisor (purpose `PermitSiteCheck`).
    #[allow(clippy::too_many_arguments)]
    pub fn permit_site_check(
        &self,
        permit_id: String,
        by: PermitActorInput,
        answers: Vec<ChecklistAnswerInput>,
        location: Option<PermitLocation>,
        signer_key: Arc<dyn PersonSigner>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::site_check(
            &self.app,
            now_unix,
            lang,
            point(location)?,
            &permit_id,
            by.into(),
            to_answers(answers),
            &signer(signer_key),
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// The approver signs on site (purpose `PermitApprove`, presence required): refused with a
    /// `Signing` error, saving nothing, when the key store did not verify the person's presence.
    pub fn permit_approve(
        &self,
        permit_id: String,
        by: PermitActorInput,
        location: Option<PermitLocation>,
        signer_key: Arc<dyn PersonSigner>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::approve(
            &self.app,
            now_unix,
            lang,
            point(location)?,
            &permit_id,
            by.into(),
            &signer(signer_key),
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// Reject a submitted or checked permit, with the reason.
    pub fn permit_reject(
        &self,
        permit_id: String,
        by: PermitActorInput,
        reason: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::reject(&self.app, now_unix, lang, &permit_id, by.into(), reason)?;
        Ok(PermitView::of(view, lang))
    }

    /// Record a gas analysis.
    pub fn permit_record_gas(
        &self,
        permit_id: String,
        gas: PermitGasInput,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::record_gas(
            &self.app,
            now_unix,
            lang,
            &permit_id,
            app_permits::GasInput {
                lel_centi_pct: gas.lel_centi_pct,
                concentration_centi_pct: gas.concentration_centi_pct,
                point: gas.point,
                analyst: gas.analyst,
                taken_at: gas.taken_at,
            },
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// Work starts; `welder`: the certificate number of the welder who starts it.
    pub fn permit_start(
        &self,
        permit_id: String,
        continuous_monitoring: bool,
        welder: Option<String>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::start(
            &self.app,
            now_unix,
            lang,
            &permit_id,
            continuous_monitoring,
            welder,
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// Interrupt the work, with the reason.
    pub fn permit_suspend(
        &self,
        permit_id: String,
        reason: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::suspend(&self.app, now_unix, lang, &permit_id, reason)?;
        Ok(PermitView::of(view, lang))
    }

    /// Resume interrupted work (a long interruption needs a new gas analysis first).
    pub fn permit_resume(
        &self,
        permit_id: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::resume(&self.app, now_unix, lang, &permit_id)?;
        Ok(PermitView::of(view, lang))
    }

    /// Work finished; the fire watch after the work runs (a deadline in the view and in `due`).
    pub fn permit_complete(
        &self,
        permit_id: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::complete(&self.app, now_unix, lang, &permit_id)?;
        Ok(PermitView::of(view, lang))
    }

    /// The post-work check (处置) and closing, signed (purpose `PermitClose`).
    #[allow(clippy::too_many_arguments)]
    pub fn permit_close(
        &self,
        permit_id: String,
        by: PermitActorInput,
        post_work: Vec<ChecklistAnswerInput>,
        location: Option<PermitLocation>,
        signer_key: Arc<dyn PersonSigner>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::close(
            &self.app,
            now_unix,
            lang,
            point(location)?,
            &permit_id,
            by.into(),
            to_answers(post_work),
            &signer(signer_key),
        )?;
        Ok(PermitView::of(view, lang))
    }

    /// Cancel a permit, with the reason.
    pub fn permit_cancel(
        &self,
        permit_id: String,
        by: PermitActorInput,
        reason: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::cancel(&self.app, now_unix, lang, &permit_id, by.into(), reason)?;
        Ok(PermitView::of(view, lang))
    }

    /// Mark an approved, active or suspended permit expired (at or after its validity end).
    pub fn permit_expire(
        &self,
        permit_id: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitView, WeldGuardError> {
        let lang = lang.into();
        let view = app_permits::expire(&self.app, now_unix, lang, &permit_id)?;
        Ok(PermitView::of(view, lang))
    }

    /// A stored permit (its stored form verified) with its view and saved steps.
    pub fn permit_show(
        &self,
        permit_id: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<PermitDetail, WeldGuardError> {
        let lang = lang.into();
        let detail = app_permits::show(&self.app, now_unix, lang, &permit_id)?;
        let permit_json = serde_json::to_string(&detail.permit).map_err(|e| {
            WeldGuardError::invalid_text(
                "permit.encode",
                format!("作业证无法编码：{e}"),
                format!("the permit cannot be encoded: {e}"),
            )
        })?;
        Ok(PermitDetail {
            view: PermitView::of(detail.view, lang),
            steps: detail.steps.into_iter().map(Into::into).collect(),
            permit_json,
        })
    }

    /// The stored permits (in one state, or all), by permit id, each as its view at `now_unix`.
    pub fn permit_list(
        &self,
        state: Option<PermitState>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<Vec<PermitView>, WeldGuardError> {
        let lang = lang.into();
        Ok(
            app_permits::list(&self.app, now_unix, lang, state.map(Into::into))?
                .into_iter()
                .map(|v| PermitView::of(v, lang))
                .collect(),
        )
    }

    /// Check a stored permit's signature chain and who signed it against the synced signer
    /// directory. A permit that does not verify is an answer (`valid` false), not an error.
    pub fn permit_verify(
        &self,
        permit_id: String,
        lang: Lang,
    ) -> Result<PermitVerification, WeldGuardError> {
        let v = app_permits::verify(&self.app, lang.into(), &permit_id)?;
        Ok(PermitVerification {
            permit_id: v.permit_id,
            valid: v.valid,
            signatures: v
                .signatures
                .into_iter()
                .map(|s| PermitVerifiedSignature {
                    step: s.step.into(),
                    signer: s.signer.into(),
                    at: s.at,
                    public_key: s.public_key,
                    user_present: s.user_present,
                    format: s.format.to_owned(),
                })
                .collect(),
            reason: v.reason.map(Into::into),
        })
    }

    /// The permit's site code (a QR code at the work point), signed with the approver's key
    /// (purpose `PermitCode`).
    pub fn permit_site_code(
        &self,
        permit_id: String,
        signer_key: Arc<dyn PersonSigner>,
        now_unix: i64,
    ) -> Result<PermitSiteCode, WeldGuardError> {
        let v = app_permits::site_code(&self.app, now_unix, &permit_id, &signer(signer_key))?;
        Ok(PermitSiteCode {
            permit_id: v.permit_id,
            text: v.text,
            chars: u64::try_from(v.chars).unwrap_or(u64::MAX),
        })
    }

    /// Read a scanned permit code offline and, when the permit is stored here, match it. A code
    /// that does not read is an answer (`valid` false), not an error.
    pub fn permit_scan_code(
        &self,
        text: String,
        lang: Lang,
    ) -> Result<PermitCodeScan, WeldGuardError> {
        let v = app_permits::scan(&self.app, lang.into(), &text)?;
        Ok(PermitCodeScan {
            valid: v.valid,
            reason: v.reason.map(Into::into),
            claims: v.claims.map(|c| PermitCodeClaims {
                permit_id: c.permit_id,
                site_id: c.site_id,
                site_name: c.site_name,
                level: c.level.into(),
                valid_from: c.valid_from,
                valid_until: c.valid_until,
                hot_work_point: c.hot_work_point,
                welders: c.welders,
                approved_by: c.approved_by,
                approved_at: c.approved_at,
                issued_at: c.issued_at,
                public_key: c.public_key,
            }),
            stored: v.stored,
            matches_stored: v.matches_stored,
            mismatch: v.mismatch_text.map(Into::into),
            verdict: v.verdict.into(),
        })
    }

    /// What the user must do and by when at `now_unix`, soonest first (gas analysis validity,
    /// re-analysis after an interruption, permit expiry, the fire watch after the work, licences
    /// expiring or due for review within 30 days). The shell schedules its notifications from it.
    pub fn due(&self, now_unix: i64, lang: Lang) -> Result<Vec<DueItem>, WeldGuardError> {
        Ok(due_items(app_due::due(&self.app, now_unix, lang.into())?))
    }

    /// [`Device::due`] with licences listed `licence_days` ahead.
    pub fn due_within(
        &self,
        now_unix: i64,
        licence_days: u32,
        lang: Lang,
    ) -> Result<Vec<DueItem>, WeldGuardError> {
        Ok(due_items(app_due::due_within(
            &self.app,
            now_unix,
            lang.into(),
            licence_days,
        )?))
    }
}

fn due_items(items: Vec<app_due::Due>) -> Vec<DueItem> {
    items
        .into_iter()
        .map(|d| DueItem {
            kind: d.kind.into(),
            permit_id: d.permit_id,
            certificate_no: d.certificate_no,
            due_at: d.due_at,
            overdue: d.overdue,
            text: d.text,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checklist a screen fills in
// ---------------------------------------------------------------------------------------------

/// Which list a checklist item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ChecklistSection {
    /// 十不准: the ten prohibitions (site check).
    Prohibition,
    /// 九必须: the nine musts (site check).
    Must,
    /// 处置: after the work, before closing.
    PostWork,
}

impl From<domain_permit::Section> for ChecklistSection {
    fn from(s: domain_permit::Section) -> Self {
        use domain_permit::Section as S;
        match s {
            S::Prohibition => ChecklistSection::Prohibition,
            S::Must => ChecklistSection::Must,
            S::PostWork => ChecklistSection::PostWork,
        }
    }
}

impl From<domain_permit::PersonRole> for ChecklistPersonRole {
    fn from(r: domain_permit::PersonRole) -> Self {
        use domain_permit::PersonRole as R;
        match r {
            R::Welder => ChecklistPersonRole::Welder,
            R::FireWatch => ChecklistPersonRole::FireWatch,
            R::Analyst => ChecklistPersonRole::Analyst,
            R::Approver => ChecklistPersonRole::Approver,
            R::Supervisor => ChecklistPersonRole::Supervisor,
            R::Inspector => ChecklistPersonRole::Inspector,
        }
    }
}

/// What a confirming answer must carry.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ChecklistEvidenceRequirement {
    /// A photo taken on site (its SHA-256).
    Photo,
    /// A whole number for `key`, within the bounds given, in the unit named.
    Number {
        key: String,
        unit: PermitText,
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A person in the role.
    Person { role: ChecklistPersonRole },
    /// A gas analysis reading with its time.
    GasAnalysis,
}

/// One checklist item, as the screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChecklistItem {
    /// Stable id, e.g. `ban.05`, `must.03`, `close.01`.
    pub id: String,
    pub section: ChecklistSection,
    /// The item's number within its section, as printed.
    pub number: u8,
    /// The Chinese text verbatim from the source, the English, and the one asked for.
    pub text: PermitText,
    /// "Not applicable" with a reason is an acceptable answer.
    pub not_applicable_allowed: bool,
    pub evidence: Vec<ChecklistEvidenceRequirement>,
}

/// The checklist catalog the permits on this build use.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PermitChecklist {
    pub version: String,
    pub items: Vec<ChecklistItem>,
    /// The welding machine's distance from the hot-work point, in whole metres: a number any
    /// site-check answer carries (the nine musts' first item by custom) when the permit names
    /// machines and its rule profile limits the distance (the preview then says
    /// `permit.rule.machine_distance_missing` until it is given).
    pub machine_distance: ChecklistEvidenceRequirement,
}

/// The checklist (十不准、九必须 and the post-work items) with what each answer must carry, in
/// the shell's language: what the site check and closing screens ask.
#[uniffi::export]
pub fn permit_checklist(lang: Lang) -> Result<PermitChecklist, WeldGuardError> {
    let lang: app::Lang = lang.into();
    let catalog = domain_permit::Catalog::builtin().map_err(|e| {
        WeldGuardError::invalid_text(
            "permit.catalog",
            format!("内置检查清单无法读取：{e}"),
            format!("the built-in checklist catalog cannot be read: {e}"),
        )
    })?;
    let text = |zh: &str, en: &str| PermitText {
        text: lang.pick(zh, en).to_owned(),
        zh: zh.to_owned(),
        en: en.to_owned(),
    };
    Ok(PermitChecklist {
        machine_distance: ChecklistEvidenceRequirement::Number {
            key: domain_permit::MACHINE_DISTANCE_KEY.to_owned(),
            unit: text("米", "m"),
            min: Some(0),
            max: None,
        },
        version: catalog.version.clone(),
        items: catalog
            .items
            .iter()
            .map(|item| ChecklistItem {
                id: item.id.clone(),
                section: item.section.into(),
                number: item.number,
                text: text(&item.text_zh, &item.text_en),
                not_applicable_allowed: item.not_applicable_allowed,
                evidence: item
                    .evidence
                    .iter()
                    .map(|req| {
                        use domain_permit::EvidenceRequirement as R;
                        match req {
                            R::Photo => ChecklistEvidenceRequirement::Photo,
                            R::Number {
                                key,
                                unit_zh,
                                unit_en,
                                min,
                                max,
                            } => ChecklistEvidenceRequirement::Number {
                                key: key.clone(),
                                unit: text(unit_zh, unit_en),
                                min: *min,
                                max: *max,
                            },
                            R::Person { role } => ChecklistEvidenceRequirement::Person {
                                role: (*role).into(),
                            },
                            R::GasAnalysis => ChecklistEvidenceRequirement::GasAnalysis,
                        }
                    })
                    .collect(),
            })
            .collect(),
    })
}
