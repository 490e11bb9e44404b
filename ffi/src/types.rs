//! Records and enums that cross the FFI, and their mapping from the domain. Dates cross as ISO
//! `YYYY-MM-DD` text, times as Unix seconds; every reason carries its stable code and both languages.

use weldguard_core::app;
use weldguard_core::codes::{CodeKind as DomainCodeKind, VerifiedClaims, VerifiedCode};
use weldguard_core::domain::{self, Explain, MachineLabel, WelderCredential};
use weldguard_core::rules::{self, IdReport};

/// The shell's language, for the texts a call puts in its answer (`text` fields). Stable codes
/// never depend on it, and every reason keeps its Chinese and English text as well.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Lang {
    /// 简体中文.
    #[default]
    Zh,
    En,
}

impl From<Lang> for app::Lang {
    fn from(l: Lang) -> Self {
        match l {
            Lang::Zh => app::Lang::Zh,
            Lang::En => app::Lang::En,
        }
    }
}

/// How much a reason weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Severity {
    /// Work may not start.
    Deny,
    /// Work may start, but someone should act.
    Warn,
    /// For the record.
    Info,
}

impl From<rules::Severity> for Severity {
    fn from(s: rules::Severity) -> Self {
        match s {
            rules::Severity::Deny => Severity::Deny,
            rules::Severity::Warn => Severity::Warn,
            rules::Severity::Info => Severity::Info,
        }
    }
}

/// One reason, with a stable code, its text in the shell's language (`text`; Chinese for calls
/// that take no [`Lang`]) and in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Reason {
    pub code: String,
    pub severity: Severity,
    pub text: String,
    pub zh: String,
    pub en: String,
}

impl Reason {
    pub(crate) fn from_explain(e: &dyn Explain, severity: Severity) -> Self {
        let zh = e.message_zh();
        Self {
            code: e.code().to_owned(),
            severity,
            text: zh.clone(),
            zh,
            en: e.message_en(),
        }
    }
}

impl From<&rules::Finding> for Reason {
    fn from(f: &rules::Finding) -> Self {
        Self {
            code: f.code.to_owned(),
            severity: f.severity.into(),
            text: f.zh.clone(),
            zh: f.zh.clone(),
            en: f.en.clone(),
        }
    }
}

/// A service's reason, already in the language asked for.
impl From<app::start_work::Reason> for Reason {
    fn from(r: app::start_work::Reason) -> Self {
        Self {
            code: r.code,
            severity: r.severity.into(),
            text: r.text,
            zh: r.zh,
            en: r.en,
        }
    }
}

/// The licence rule set a decision was made under, chosen by the date of the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RuleSet {
    /// 原国家安全生产监督管理总局令第30号 (2010-07-01).
    SawsOrder30,
    /// 应急管理部令第19号 (from 2026-06-01).
    MemOrder19,
}

impl From<rules::RuleSetId> for RuleSet {
    fn from(r: rules::RuleSetId) -> Self {
        match r {
            rules::RuleSetId::SawsOrder30 => RuleSet::SawsOrder30,
            rules::RuleSetId::MemOrder19 => RuleSet::MemOrder19,
        }
    }
}

/// Sex, as encoded in the ID number's sequence digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Sex {
    Male,
    Female,
}

/// The result of checking a resident ID number (GB 11643-1999).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IdCheck {
    pub normalized: String,
    pub valid: bool,
    pub legacy: bool,
    pub birth_date: Option<String>,
    pub region: Option<String>,
    pub sex: Option<Sex>,
    pub reasons: Vec<Reason>,
}

impl From<IdReport> for IdCheck {
    fn from(r: IdReport) -> Self {
        Self {
            normalized: r.normalized,
            valid: r.valid,
            legacy: r.legacy,
            birth_date: r.birth_date.map(|d| d.to_string()),
            region: r.region,
            sex: r.sex.map(|s| match s {
                rules::Sex::Male => Sex::Male,
                rules::Sex::Female => Sex::Female,
            }),
            reasons: r
                .problems
                .iter()
                .map(|p| Reason::from_explain(p, Severity::Deny))
                .collect(),
        }
    }
}

/// How a machine is supervised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MachineClass {
    Mobile,
    FixedStation,
    LegacyRegistered,
}

impl From<domain::MachineClass> for MachineClass {
    fn from(c: domain::MachineClass) -> Self {
        match c {
            domain::MachineClass::Mobile => MachineClass::Mobile,
            domain::MachineClass::FixedStation => MachineClass::FixedStation,
            domain::MachineClass::LegacyRegistered => MachineClass::LegacyRegistered,
        }
    }
}

/// What a machine label says.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MachineInfo {
    pub machine_id: String,
    pub kind_zh: String,
    pub kind_en: String,
    pub class: MachineClass,
    pub owner_org: String,
    pub region: u32,
}

impl From<&MachineLabel> for MachineInfo {
    fn from(l: &MachineLabel) -> Self {
        Self {
            machine_id: l.machine_id.clone(),
            kind_zh: l.kind.name_zh().to_owned(),
            kind_en: l.kind.name_en().to_owned(),
            class: l.class.into(),
            owner_org: l.owner_org.clone(),
            region: l.region,
        }
    }
}

/// What a welder credential says.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WelderInfo {
    pub certificate_no: String,
    pub id_number: String,
    pub name: String,
    /// Operation categories, as printed on the certificate (Chinese).
    pub categories_zh: Vec<String>,
    pub issued_on: String,
    pub expires_on: String,
    pub next_review_on: String,
}

impl From<&WelderCredential> for WelderInfo {
    fn from(c: &WelderCredential) -> Self {
        Self {
            certificate_no: c.certificate_no.clone(),
            id_number: c.id_number.clone(),
            name: c.name.clone(),
            categories_zh: c
                .categories
                .iter()
                .map(|k| k.name_zh().to_owned())
                .collect(),
            issued_on: c.issued_on.to_string(),
            expires_on: c.expires_on.to_string(),
            next_review_on: c.next_review_on.to_string(),
        }
    }
}

/// The kinds of signed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CodeKind {
    MachineLabel,
    WelderCredential,
    Presentation,
}

impl From<DomainCodeKind> for CodeKind {
    fn from(k: DomainCodeKind) -> Self {
        match k {
            DomainCodeKind::MachineLabel => CodeKind::MachineLabel,
            DomainCodeKind::WelderCredential => CodeKind::WelderCredential,
            DomainCodeKind::Presentation => CodeKind::Presentation,
        }
    }
}

/// The answer to "is this code genuine?". A code that fails is a normal answer (`valid` false with
/// the reason), not an error.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CodeCheck {
    pub valid: bool,
    pub kind: Option<CodeKind>,
    /// Hex key id of the issuer key that signed it.
    pub issuer_kid: Option<String>,
    pub machine: Option<MachineInfo>,
    pub welder: Option<WelderInfo>,
    /// A live presentation signed by the welder's own phone just now (not a screenshot).
    pub live: bool,
    pub reason: Option<Reason>,
}

impl CodeCheck {
    pub(crate) fn verified(code: &VerifiedCode) -> Self {
        let (machine, welder, live) = match &code.claims {
            VerifiedClaims::MachineLabel(l) => (Some(l.into()), None, false),
            VerifiedClaims::WelderCredential(c) => (None, Some((&c.credential).into()), false),
            VerifiedClaims::Presentation { credential, .. } => {
                (None, Some((&credential.credential).into()), true)
            }
        };
        Self {
            valid: true,
            kind: Some(code.kind.into()),
            issuer_kid: Some(code.kid.clone()),
            machine,
            welder,
            live,
            reason: None,
        }
    }

    pub(crate) fn refused(reason: &dyn Explain) -> Self {
        Self {
            valid: false,
            kind: None,
            issuer_kid: None,
            machine: None,
            welder: None,
            live: false,
            reason: Some(Reason::from_explain(reason, Severity::Deny)),
        }
    }
}

/// The answer to a scan-to-start question, as recorded on the device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StartWorkResult {
    pub allowed: bool,
    /// A fixed station under process control: scanning to start is not required.
    pub scan_exempt: bool,
    /// The licence rule set chosen by the date of the work.
    pub rule_set: RuleSet,
    pub machine_id: Option<String>,
    pub certificate_no: Option<String>,
    pub permit_id: Option<String>,
    /// Every reason, deny first, then warn, then info.
    pub reasons: Vec<Reason>,
    /// The recorded work session (also its outbox idempotency key), when it was recorded.
    pub session_id: Option<String>,
}

/// The device's position at a scan, from the phone's location service.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct DevicePosition {
    /// Degrees, −90..=90 (WGS-84).
    pub latitude: f64,
    /// Degrees, −180..=180 (WGS-84).
    pub longitude: f64,
    /// The fix's accuracy radius in metres.
    pub accuracy_m: f64,
}

/// How fresh the device's revocation data is: the signed status list it holds, if any.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RevocationStatus {
    /// The list's sequence number at the platform.
    pub sequence: u64,
    /// When the platform issued it (Unix seconds).
    pub issued_at: i64,
    /// When the device last fetched and verified a list (Unix milliseconds).
    pub fetched_at_ms: i64,
    /// How old the revocation data is, in seconds: what the shell shows ("updated 3 h ago").
    pub age_secs: i64,
    /// Revocations the list holds.
    pub entries: u64,
}

/// How many records wait for upload, and what happened to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct OutboxSummary {
    pub pending: u64,
    pub sent: u64,
    pub applied: u64,
    pub rejected: u64,
}
