//! The inspector's screens through the FFI, over [`weldguard_core::app::inspection`]:
//! [`Device::check_welder`] (a scanned welder code → the licence as the registry keeps it, with a
//! typed state and its reasons) and [`Device::record_inspection`] (findings, photos and the permit
//! shown, sealed with the inspector's key and saved with its outbox entry).
//!
//! The seal is signed through the shell's [`PersonSigner`] (purpose `InspectionSeal`, which does
//! not require the person's presence), like every other step a person signs.

use std::sync::Arc;

use super::Device;
use super::error::WeldGuardError;
use super::signing::{ForeignPersonSigner, PersonSigner};
use super::types::{Lang, MachineClass, Reason};
use weldguard_core::app::inspection::{
    self as app_inspection, InspectionRecordInput, LicenceView, Location,
};
use weldguard_core::domain;
use weldguard_core::inspect::{self, Observation};
use weldguard_core::permit;

/// What the scanned welder text was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ScannedWelderCode {
    /// A live presentation signed by the holder's phone just now.
    Presentation,
    /// A signed credential without a live presentation (could be a screenshot).
    Credential,
    /// An unsigned certificate number (typed, printed, a URL code): proves nothing by itself.
    UnsignedCertificateNo,
    /// A signed code that did not verify (forged, altered, expired, revoked, replayed).
    Unverified,
}

/// Where the licence shown comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LicenceSource {
    /// The registry cache (the platform's record).
    Registry,
    /// The credential's signed claims: the registry cache does not hold this licence (yet).
    Credential,
}

/// The licence's standing on the day of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LicenceState {
    Valid,
    /// Revoked or cancelled (注销) by the platform.
    Revoked,
    Expired,
    /// Its validity has not started yet.
    NotYetValid,
    /// The review (复审) is overdue.
    ReviewOverdue,
    /// No licence could be shown.
    Unknown,
}

/// A machine's registry status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MachineStatus {
    Active,
    /// Retired (淘汰): may never be switched on again.
    Retired,
}

/// A licence category: its stable code (`fusion_welding_and_cutting`…) and its name.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LicenceCategory {
    pub code: String,
    /// The name in the language asked for.
    pub name: String,
    pub zh: String,
    pub en: String,
}

/// The licence as the inspector sees it. Dates are ISO `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LicenceInfo {
    pub certificate_no: String,
    pub name: String,
    /// The holder's ID number, masked (`3401**********1234`).
    pub id_number_masked: String,
    pub categories: Vec<LicenceCategory>,
    pub issued_on: String,
    pub expires_on: String,
    pub next_review_on: String,
    pub employer_org: Option<String>,
    pub source: LicenceSource,
}

/// A machine bound to the welder in the registry (人机绑定).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BoundMachine {
    pub machine_id: String,
    /// The machine kind's name in Chinese and English; `None` when the cache holds only the
    /// binding.
    pub kind_zh: Option<String>,
    pub kind_en: Option<String>,
    pub class: Option<MachineClass>,
    pub status: Option<MachineStatus>,
    pub owner_org: Option<String>,
}

/// The answer to an inspector's scan of a welder's code.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WelderCheck {
    pub scanned: ScannedWelderCode,
    /// The code's issuer signature verified.
    pub code_verified: bool,
    /// A live presentation: the holder's phone signed just now.
    pub live: bool,
    pub certificate_no: Option<String>,
    pub licence: Option<LicenceInfo>,
    pub state: LicenceState,
    /// Every reason behind the state and the code's standing, deny first.
    pub reasons: Vec<Reason>,
    pub bound_machines: Vec<BoundMachine>,
}

/// The permit the inspector was shown.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PermitShown {
    /// By id, from this device's store (an unknown id is an input error).
    Id { permit_id: String },
    /// Its scanned site code.
    Code { text: String },
}

/// What the inspector saw for one checklist item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FindingOutcome {
    Compliant,
    NotCompliant,
    NotApplicable,
    NotChecked,
}

/// A finding against the built-in checklist catalog (十不准、九必须).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InspectionFinding {
    pub item_id: String,
    pub outcome: FindingOutcome,
    pub note: String,
    /// SHA-256 digests of photos, 32 bytes each.
    pub photos: Vec<Vec<u8>>,
}

/// The inspector's position (degrees, WGS-84).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct InspectionLocation {
    pub latitude: f64,
    pub longitude: f64,
}

/// What the inspector records.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct InspectionInput {
    pub site_id: String,
    pub inspector_name: String,
    pub inspector_id: String,
    /// The welder's scanned code, if one was shown.
    pub welder_text: Option<String>,
    /// The machine label's scanned text, if there is one.
    pub machine_text: Option<String>,
    pub permit: Option<PermitShown>,
    pub findings: Vec<InspectionFinding>,
    /// SHA-256 digests (32 bytes each) of the photos taken.
    pub photos: Vec<Vec<u8>>,
    pub location: Option<InspectionLocation>,
    /// Free text.
    pub notes: String,
}

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ViolationSeverity {
    Minor,
    Major,
    /// Reported upward at once (发现问题，及时上报).
    Serious,
}

/// One violation found: its stable code (`inspect.…`), the checklist item, the text in the
/// language asked for and in both.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Violation {
    pub code: String,
    pub severity: ViolationSeverity,
    pub item_id: Option<String>,
    pub text: String,
    pub zh: String,
    pub en: String,
}

impl Violation {
    pub(crate) fn of(v: &inspect::Violation, lang: Lang) -> Self {
        Self {
            code: v.kind.code().to_owned(),
            severity: match v.severity {
                permit::Severity::Minor => ViolationSeverity::Minor,
                permit::Severity::Major => ViolationSeverity::Major,
                permit::Severity::Serious => ViolationSeverity::Serious,
            },
            item_id: v.item_id.clone(),
            text: weldguard_core::app::Lang::from(lang)
                .pick(&v.message_zh, &v.message_en)
                .to_owned(),
            zh: v.message_zh.clone(),
            en: v.message_en.clone(),
        }
    }
}

/// What the inspection recorded about the permit shown.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InspectedPermit {
    pub permit_id: String,
    /// The permit's state as recorded (`approved`, `active`…).
    pub state: String,
    pub valid_from: i64,
    pub valid_until: i64,
    /// `None` when its signatures verified; otherwise the error code.
    pub signature_problem: Option<String>,
}

/// The inspector's seal on the record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Seal {
    /// The inspector's public key (SEC1 compressed, hex).
    pub public_key: String,
    /// The signature (`r || s`, hex).
    pub signature: String,
    /// The key store verified the inspector's presence for the seal.
    pub user_present: bool,
}

/// A recorded inspection.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InspectionResult {
    /// Also its outbox idempotency key.
    pub inspection_id: String,
    pub violations: Vec<Violation>,
    /// At least one serious violation: report upward at once.
    pub report_required: bool,
    pub permit: Option<InspectedPermit>,
    pub findings: u64,
    pub photos: u64,
    pub seal: Seal,
}

/// An enum's name as serialised (`snake_case`).
fn serde_name(value: Result<serde_json::Value, serde_json::Error>) -> String {
    value
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn licence_info(l: LicenceView) -> LicenceInfo {
    LicenceInfo {
        certificate_no: l.certificate_no,
        name: l.name,
        id_number_masked: l.id_number_masked,
        categories: l
            .categories
            .into_iter()
            .map(|c| LicenceCategory {
                code: serde_name(serde_json::to_value(c.category)),
                name: c.name,
                zh: c.zh,
                en: c.en,
            })
            .collect(),
        issued_on: l.issued_on.to_string(),
        expires_on: l.expires_on.to_string(),
        next_review_on: l.next_review_on.to_string(),
        employer_org: l.employer_org,
        source: match l.source {
            app_inspection::LicenceSource::Registry => LicenceSource::Registry,
            app_inspection::LicenceSource::Credential => LicenceSource::Credential,
        },
    }
}

#[uniffi::export]
impl Device {
    /// The inspector scanned a welder's code (a live presentation, a credential or an unsigned
    /// certificate number) at `now_unix`: the licence as the registry keeps it (ID number masked),
    /// its state with every reason (texts in `lang` and in both languages), the machines bound to
    /// the welder, and whether the code verified. A presentation counts as seen. A code that is no
    /// welder's code is `InvalidInput` (`code.not_a_welder_code`).
    pub fn check_welder(
        &self,
        scanned_text: String,
        now_unix: i64,
        lang: Lang,
    ) -> Result<WelderCheck, WeldGuardError> {
        let view = app_inspection::check_welder(&self.app, &scanned_text, now_unix, lang.into())?;
        Ok(WelderCheck {
            scanned: match view.scanned {
                app_inspection::ScannedWelderCode::Presentation => ScannedWelderCode::Presentation,
                app_inspection::ScannedWelderCode::Credential => ScannedWelderCode::Credential,
                app_inspection::ScannedWelderCode::UnsignedCertificateNo => {
                    ScannedWelderCode::UnsignedCertificateNo
                }
                app_inspection::ScannedWelderCode::Unverified => ScannedWelderCode::Unverified,
            },
            code_verified: view.code_verified,
            live: view.live,
            certificate_no: view.certificate_no,
            licence: view.licence.map(licence_info),
            state: match view.state {
                app_inspection::LicenceState::Valid => LicenceState::Valid,
                app_inspection::LicenceState::Revoked => LicenceState::Revoked,
                app_inspection::LicenceState::Expired => LicenceState::Expired,
                app_inspection::LicenceState::NotYetValid => LicenceState::NotYetValid,
                app_inspection::LicenceState::ReviewOverdue => LicenceState::ReviewOverdue,
                app_inspection::LicenceState::Unknown => LicenceState::Unknown,
            },
            reasons: view.reasons.into_iter().map(Into::into).collect(),
            bound_machines: view
                .bound_machines
                .into_iter()
                .map(|m| BoundMachine {
                    machine_id: m.machine_id,
                    kind_zh: m.kind.map(|k| k.name_zh().to_owned()),
                    kind_en: m.kind.map(|k| k.name_en().to_owned()),
                    class: m.class.map(Into::into),
                    status: m.status.map(|s| match s {
                        domain::MachineStatus::Active => MachineStatus::Active,
                        domain::MachineStatus::Retired => MachineStatus::Retired,
                    }),
                    owner_org: m.owner_org,
                })
                .collect(),
        })
    }

    /// Record an inspection at `now_unix`: verify the scans, check the permit shown, derive the
    /// violations from the findings, seal the record with the inspector's `signer` and save it
    /// with its outbox entry in one transaction. Bad input (an unknown checklist item, a photo
    /// digest that is not 32 bytes, an unknown permit id, a time or location out of range) is
    /// `InvalidInput` and nothing is saved; a key store that refuses saves nothing either.
    pub fn record_inspection(
        &self,
        input: InspectionInput,
        signer: Arc<dyn PersonSigner>,
        now_unix: i64,
        lang: Lang,
    ) -> Result<InspectionResult, WeldGuardError> {
        let input = InspectionRecordInput {
            site_id: input.site_id,
            inspector_name: input.inspector_name,
            inspector_id: input.inspector_id,
            welder_text: input.welder_text,
            machine_text: input.machine_text,
            permit: input.permit.map(|p| match p {
                PermitShown::Id { permit_id } => app_inspection::PermitShown::Id(permit_id),
                PermitShown::Code { text } => app_inspection::PermitShown::Code(text),
            }),
            findings: input
                .findings
                .into_iter()
                .map(|f| Observation {
                    item_id: f.item_id,
                    outcome: match f.outcome {
                        FindingOutcome::Compliant => inspect::Outcome::Compliant,
                        FindingOutcome::NotCompliant => inspect::Outcome::NotCompliant,
                        FindingOutcome::NotApplicable => inspect::Outcome::NotApplicable,
                        FindingOutcome::NotChecked => inspect::Outcome::NotChecked,
                    },
                    note: f.note,
                    photos: f.photos,
                })
                .collect(),
            photos: input.photos,
            location: input.location.map(|l| Location {
                latitude: l.latitude,
                longitude: l.longitude,
            }),
            notes: input.notes,
        };
        let view = app_inspection::record_inspection(
            &self.app,
            input,
            &ForeignPersonSigner(signer),
            now_unix,
            lang.into(),
        )?;
        Ok(InspectionResult {
            inspection_id: view.inspection_id,
            violations: view
                .violations
                .iter()
                .map(|v| Violation::of(&v.violation, lang))
                .collect(),
            report_required: view.report_required,
            permit: view.permit.map(|p| InspectedPermit {
                permit_id: p.permit_id,
                state: serde_name(serde_json::to_value(p.state)),
                valid_from: p.valid_from,
                valid_until: p.valid_until,
                signature_problem: p.signature_problem,
            }),
            findings: view.findings as u64,
            photos: view.photos as u64,
            seal: Seal {
                public_key: view.seal.public_key,
                signature: view.seal.signature,
                user_present: view.seal.user_present,
            },
        })
    }
}
