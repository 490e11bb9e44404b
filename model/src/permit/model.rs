//! The hot-work permit as plain data: what was applied for (content), the level decided, the checklist
//! answers, gas readings, the event log and the chain of signatures; plus its states and errors.

use serde::{Deserialize, Serialize};

use super::catalog::{ChecklistAnswer, GasReading};
use super::finding::Finding;
use super::profile::{GeoPoint, LevelDecision, PermitLevel, Site, WorkConditions};
use crate::domain::Explain;

/// Where a permit is in its life cycle. The five-in-place steps (审批、清理、动火、监护、处置) map onto
/// submitted/checked/approved (审批、清理), active/suspended (动火、监护) and completed/closed (处置).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermitState {
    Draft,
    Submitted,
    /// Checked on site: every checklist item answered.
    Checked,
    /// Approved and signed; no alteration from here on.
    Approved,
    /// Work started.
    Active,
    /// Work interrupted.
    Suspended,
    /// Work finished; the post-work watch runs.
    Completed,
    /// Closed after the post-work check.
    Closed,
    Rejected,
    Cancelled,
    Expired,
}

impl PermitState {
    pub const ALL: [PermitState; 11] = [
        PermitState::Draft,
        PermitState::Submitted,
        PermitState::Checked,
        PermitState::Approved,
        PermitState::Active,
        PermitState::Suspended,
        PermitState::Completed,
        PermitState::Closed,
        PermitState::Rejected,
        PermitState::Cancelled,
        PermitState::Expired,
    ];

    pub fn name_zh(self) -> &'static str {
        match self {
            PermitState::Draft => "草稿",
            PermitState::Submitted => "已提交",
            PermitState::Checked => "已现场检查",
            PermitState::Approved => "已审批",
            PermitState::Active => "作业中",
            PermitState::Suspended => "已中断",
            PermitState::Completed => "作业完毕",
            PermitState::Closed => "已关闭",
            PermitState::Rejected => "已驳回",
            PermitState::Cancelled => "已取消",
            PermitState::Expired => "已过期",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            PermitState::Draft => "draft",
            PermitState::Submitted => "submitted",
            PermitState::Checked => "checked on site",
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
}

/// A person on the permit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    /// Certificate number (welders) or staff number.
    pub id: String,
}

/// What the applicant fills in while the permit is a draft; fixed from submission on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitContent {
    pub permit_id: String,
    pub site: Site,
    pub profile_id: String,
    /// The profile version in force when the permit was drafted.
    pub profile_version: String,
    /// The checklist catalog version used.
    pub catalog_version: String,
    pub work_description: String,
    /// Where the hot work happens, in words (设备、部位).
    pub hot_work_point: String,
    /// How many hot-work points the permit covers.
    pub hot_work_points: u32,
    pub location: GeoPoint,
    pub conditions: WorkConditions,
    pub requested_level: PermitLevel,
    /// Validity [valid_from, valid_until), Unix seconds.
    pub valid_from: i64,
    pub valid_until: i64,
    pub applicant: Person,
    pub welders: Vec<Person>,
    /// Machine ids of the welding machines used.
    pub machines: Vec<String>,
    /// The fire watch (监护人), one per hot-work point where the profile demands it.
    pub fire_watch: Vec<Person>,
}

/// Someone who acts on the permit. `role` is a role id of the profile (e.g. `safety_department`) or
/// a plain role (`applicant`, `supervisor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub id: String,
    pub role: String,
}

/// The steps a person vouches for with a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedStep {
    Submit,
    SiteCheck,
    Approve,
    Close,
}

impl SignedStep {
    /// Signatures always come in this order.
    pub const ORDER: [SignedStep; 4] = [
        SignedStep::Submit,
        SignedStep::SiteCheck,
        SignedStep::Approve,
        SignedStep::Close,
    ];

    pub fn name_zh(self) -> &'static str {
        match self {
            SignedStep::Submit => "提交",
            SignedStep::SiteCheck => "现场检查",
            SignedStep::Approve => "审批",
            SignedStep::Close => "关闭",
        }
    }
}

/// One signature in the permit's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSignature {
    pub step: SignedStep,
    pub signer: Actor,
    /// The signer's device public key (SEC1, compressed P-256).
    pub public_key: Vec<u8>,
    pub at: i64,
    /// Where the signer stood when signing.
    pub location: Option<GeoPoint>,
    /// How many events and gas readings existed (and are covered) when signing.
    pub covers_events: u32,
    pub covers_gas_readings: u32,
    /// ES256, 64 bytes `r || s`.
    pub signature: Vec<u8>,
    /// Whether the key store verified the signer's presence (biometric or PIN) for this signature,
    /// covered by the signature (format `weldguard/permit-sig/2`). Absent on signatures of format
    /// `/1`, made before presence was recorded: those keep their encoding, digest and meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_present: Option<bool>,
}

impl StepSignature {
    /// The signed format this signature uses.
    pub fn format(&self) -> &'static str {
        match self.user_present {
            None => super::sign::FORMAT_V1,
            Some(_) => super::sign::FORMAT,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Drafted,
    Edited,
    Submitted,
    Checked,
    Approved,
    Started {
        continuous_monitoring: bool,
    },
    Suspended {
        reason: String,
    },
    Resumed,
    Completed,
    Closed,
    Rejected {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
    Expired,
    GasRecorded,
    /// A rule that did not block but must stay on record (e.g. approver away from the site).
    Flagged {
        finding: Finding,
    },
}

/// An entry of the permit's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitEvent {
    pub at: i64,
    pub kind: EventKind,
    /// Who did it (actor id), when known.
    pub by: Option<String>,
}

/// A hot-work permit (动火作业许可证).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    pub content: PermitContent,
    pub state: PermitState,
    /// Set on submission.
    pub level: Option<LevelDecision>,
    /// The on-site checklist (十不准、九必须), set on the site check.
    pub answers: Vec<ChecklistAnswer>,
    /// The post-work checklist, set on closing.
    pub post_work: Vec<ChecklistAnswer>,
    pub gas_readings: Vec<GasReading>,
    pub events: Vec<PermitEvent>,
    pub signatures: Vec<StepSignature>,
}

impl Permit {
    /// The level the permit runs at (the requested one until a decision exists).
    pub fn level(&self) -> PermitLevel {
        self.level
            .as_ref()
            .map_or(self.content.requested_level, |d| d.required)
    }

    /// The state as of `at`: an approved, active or suspended permit past its validity is expired.
    pub fn effective_state(&self, at: i64) -> PermitState {
        match self.state {
            PermitState::Approved | PermitState::Active | PermitState::Suspended
                if at >= self.content.valid_until =>
            {
                PermitState::Expired
            }
            s => s,
        }
    }

    /// Findings flagged on the permit (not blocking, on record).
    pub fn flags(&self) -> impl Iterator<Item = &Finding> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Flagged { finding } => Some(finding),
            _ => None,
        })
    }

    /// The time of the last event of a kind.
    pub fn last_event_at(&self, pred: impl Fn(&EventKind) -> bool) -> Option<i64> {
        self.events
            .iter()
            .rev()
            .find(|e| pred(&e.kind))
            .map(|e| e.at)
    }
}

/// The kinds of action, for the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
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

impl ActionKind {
    pub const ALL: [ActionKind; 13] = [
        ActionKind::Edit,
        ActionKind::Submit,
        ActionKind::SiteCheck,
        ActionKind::Approve,
        ActionKind::Start,
        ActionKind::Suspend,
        ActionKind::Resume,
        ActionKind::Complete,
        ActionKind::Close,
        ActionKind::Reject,
        ActionKind::Cancel,
        ActionKind::Expire,
        ActionKind::RecordGas,
    ];

    pub fn name_zh(self) -> &'static str {
        match self {
            ActionKind::Edit => "修改",
            ActionKind::Submit => "提交",
            ActionKind::SiteCheck => "现场检查",
            ActionKind::Approve => "审批",
            ActionKind::Start => "开始作业",
            ActionKind::Suspend => "中断作业",
            ActionKind::Resume => "恢复作业",
            ActionKind::Complete => "作业完毕",
            ActionKind::Close => "关闭",
            ActionKind::Reject => "驳回",
            ActionKind::Cancel => "取消",
            ActionKind::Expire => "过期",
            ActionKind::RecordGas => "记录气体分析",
        }
    }
}

/// Why a permit action or verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermitError {
    #[error("cannot {action:?} a permit that is {}", from.name_en())]
    TransitionRefused {
        from: PermitState,
        action: ActionKind,
    },
    #[error("{action:?} refused: {}", findings.iter().map(|f| format!("{} [{}] {}", f.code.as_str(), f.clause, f.message_en)).collect::<Vec<_>>().join("; "))]
    RuleBlocked {
        action: ActionKind,
        findings: Vec<Finding>,
    },
    #[error("the permit uses {what} {recorded}, but {given} was given")]
    VersionMismatch {
        what: &'static str,
        recorded: String,
        given: String,
    },
    #[error("signing failed: {0}")]
    SigningFailed(String),
    #[error("could not encode the permit for signing: {0}")]
    Encoding(String),
    #[error(
        "signature {index} ({step:?} by {signer}) does not verify: the permit was changed after it was signed"
    )]
    SignatureBroken {
        index: usize,
        step: SignedStep,
        signer: String,
    },
    #[error("a permit that is {} cannot carry the signatures {found:?}", state.name_en())]
    SignaturesInconsistent {
        state: PermitState,
        found: Vec<SignedStep>,
    },
    #[error("the permit carries {what} that no signature covers")]
    UnsignedData { what: &'static str },
    /// A version that does not follow the one it should by exactly one action.
    #[error("not a successor of the earlier version: {en}")]
    NotASuccessor { en: &'static str, zh: &'static str },
    /// No signer directory to check signers against (the device never synced one).
    #[error("the signer directory is missing: sync with the platform before checking permits")]
    DirectoryMissing,
    /// A signature whose key is not an enrolled signer's.
    #[error("signature {index} ({step:?} by {signer}): the key is not in the signer directory")]
    SignerUnknown {
        index: usize,
        step: SignedStep,
        signer: String,
    },
    /// The signer's key was not valid when the step was signed (before enrolment, after the
    /// device was disabled), or is disabled now on the platform.
    #[error(
        "signature {index} ({step:?} by {signer}): the signer's key was not valid at that time"
    )]
    SignerNotValid {
        index: usize,
        step: SignedStep,
        signer: String,
    },
    /// The person the step names is not the key's person.
    #[error(
        "signature {index} ({step:?}) names {named}, but the key belongs to {holder} ({holder_id})"
    )]
    SignerNotPerson {
        index: usize,
        step: SignedStep,
        named: String,
        holder: String,
        holder_id: String,
    },
    /// The role claimed is not one the signer holds, or not one that may sign this step at this
    /// level.
    #[error(
        "signature {index} ({step:?} by {signer}) as {role:?}: this step may be signed as {allowed:?}, and the signer holds {held:?}"
    )]
    SignerRole {
        index: usize,
        step: SignedStep,
        signer: String,
        role: String,
        allowed: Vec<String>,
        held: Vec<String>,
    },
    /// The signer must be a person the permit names for that part (the applicant submits; a fire
    /// watch closes only a permit naming them).
    #[error("signature {index} ({step:?} by {signer}): {en}")]
    SignerNotOnPermit {
        index: usize,
        step: SignedStep,
        signer: String,
        en: &'static str,
        zh: &'static str,
    },
    /// An approval whose signature does not record the approver's presence verified by the key
    /// store (docs/adr/0015): under format `/2` it says the person was not present; a new approval
    /// in the legacy format `/1` says nothing about presence and is not admitted either.
    #[error(
        "signature {index} ({step:?} by {signer}): {}",
        if *legacy {
            "an approval must record the approver's presence (format weldguard/permit-sig/2); this one uses the old format /1"
        } else {
            "the key store did not verify the approver's presence (biometric or PIN) for this approval"
        }
    )]
    PresenceMissing {
        index: usize,
        step: SignedStep,
        signer: String,
        /// Signed in the legacy format `/1`, which records nothing about presence.
        legacy: bool,
    },
    /// Two steps that must be signed by different people were signed by the same person.
    #[error("{first:?} and {second:?} were both signed by {person}: they need different people")]
    SameSigner {
        first: SignedStep,
        second: SignedStep,
        person: String,
    },
    /// The version is not what the permit rules make of its action (replayed by the platform).
    #[error("the version differs from what the rules make of its action: {0}")]
    NotWhatTheRulesMake(String),
    /// The device that reports a step may not report it (its role, or the permit does not name
    /// its person, or the step was signed on another device).
    #[error("this device may not report the step: {en}")]
    DeviceNotAllowed { en: &'static str, zh: &'static str },
    /// An action time outside what the platform accepts (in the future, before the previous entry).
    #[error("action time {at} is not acceptable: {en}")]
    BadTime {
        at: i64,
        en: &'static str,
        zh: &'static str,
    },
}

impl Explain for PermitError {
    fn code(&self) -> &'static str {
        match self {
            PermitError::TransitionRefused { .. } => "permit.transition_refused",
            PermitError::RuleBlocked { .. } => "permit.rule_blocked",
            PermitError::VersionMismatch { .. } => "permit.version_mismatch",
            PermitError::SigningFailed(_) => "permit.signing_failed",
            PermitError::Encoding(_) => "permit.encoding_failed",
            PermitError::SignatureBroken { .. } => "permit.signature_broken",
            PermitError::SignaturesInconsistent { .. } => "permit.signatures_inconsistent",
            PermitError::UnsignedData { .. } => "permit.unsigned_data",
            PermitError::NotASuccessor { .. } => "permit.not_successor",
            PermitError::DirectoryMissing => "permit.directory_missing",
            PermitError::SignerUnknown { .. } => "permit.signer_unknown",
            PermitError::SignerNotValid { .. } => "permit.signer_not_valid",
            PermitError::SignerNotPerson { .. } => "permit.signer_not_person",
            PermitError::SignerRole { .. } => "permit.signer_role",
            PermitError::SignerNotOnPermit { .. } => "permit.signer_not_on_permit",
            PermitError::SameSigner { .. } => "permit.same_signer",
            PermitError::PresenceMissing { .. } => "permit.presence_missing",
            PermitError::NotWhatTheRulesMake(_) => "permit.not_what_rules_make",
            PermitError::BadTime { .. } => "permit.bad_time",
            PermitError::DeviceNotAllowed { .. } => "permit.device_not_allowed",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            PermitError::TransitionRefused { from, action } => {
                format!(
                    "动火作业证处于“{}”状态，不能{}",
                    from.name_zh(),
                    action.name_zh()
                )
            }
            PermitError::RuleBlocked { action, findings } => format!(
                "{}被拒绝：{}",
                action.name_zh(),
                findings
                    .iter()
                    .map(|f| format!("{}（{}）", f.message_zh, f.clause))
                    .collect::<Vec<_>>()
                    .join("；")
            ),
            PermitError::VersionMismatch {
                what,
                recorded,
                given,
            } => format!("作业证使用的{what}为 {recorded}，但提供的是 {given}"),
            PermitError::SigningFailed(e) => format!("签名失败：{e}"),
            PermitError::Encoding(e) => format!("作业证编码失败：{e}"),
            PermitError::SignatureBroken {
                index,
                step,
                signer,
            } => format!(
                "第{}个签名（{}，{}）验证失败：签名后内容被改动",
                index + 1,
                step.name_zh(),
                signer
            ),
            PermitError::SignaturesInconsistent { state, found } => {
                format!("“{}”状态的作业证签名不符：{found:?}", state.name_zh())
            }
            PermitError::UnsignedData { what } => format!("作业证含有未经签名的{what}"),
            PermitError::NotASuccessor { zh, .. } => {
                format!("该版本不是前一版本经一步操作的结果：{zh}")
            }
            PermitError::DirectoryMissing => "缺少签字人名录：请先与平台同步，再核验作业证".into(),
            PermitError::SignerUnknown {
                index,
                step,
                signer,
            } => format!(
                "第{}个签名（{}，{signer}）的密钥不在签字人名录中",
                index + 1,
                step.name_zh()
            ),
            PermitError::SignerNotValid {
                index,
                step,
                signer,
            } => format!(
                "第{}个签名（{}，{signer}）签署时该密钥不在有效期内或已停用",
                index + 1,
                step.name_zh()
            ),
            PermitError::SignerNotPerson {
                index,
                step,
                named,
                holder,
                holder_id,
            } => format!(
                "第{}个签名（{}）署名为{named}，但密钥属于{holder}（{holder_id}）",
                index + 1,
                step.name_zh()
            ),
            PermitError::SignerRole {
                index,
                step,
                signer,
                role,
                allowed,
                held,
            } => format!(
                "第{}个签名（{}，{signer}）以“{role}”身份签署：此步骤须由{}签署，签字人具有的身份为{}",
                index + 1,
                step.name_zh(),
                allowed.join("、"),
                held.join("、")
            ),
            PermitError::SignerNotOnPermit {
                index,
                step,
                signer,
                zh,
                ..
            } => format!(
                "第{}个签名（{}，{signer}）：{zh}",
                index + 1,
                step.name_zh()
            ),
            PermitError::SameSigner {
                first,
                second,
                person,
            } => format!(
                "{}与{}均由{person}签署，须由不同的人签署",
                first.name_zh(),
                second.name_zh()
            ),
            PermitError::PresenceMissing {
                index,
                step,
                signer,
                legacy,
            } => format!(
                "第{}个签名（{}，{signer}）：{}",
                index + 1,
                step.name_zh(),
                if *legacy {
                    "审批须记录审批人本人验证（签名格式 /2），此签名为旧格式 /1"
                } else {
                    "密钥库未验证审批人本人（指纹或密码），审批无效"
                }
            ),
            PermitError::NotWhatTheRulesMake(detail) => {
                format!("该版本与按规则执行此操作的结果不符：{detail}")
            }
            PermitError::BadTime { at, zh, .. } => format!("操作时间 {at} 不可接受：{zh}"),
            PermitError::DeviceNotAllowed { zh, .. } => format!("此设备不能报送该步骤：{zh}"),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}
