//! On-site inspections (逢查必核): the inspector scans the welder's credential, the machine label and
//! the hot-work permit; the core records what each scan proved, checks the permit, records the
//! observations against the same 十不准、九必须 checklist, derives the violations with their
//! severity, flags serious ones for reporting (发现问题，及时上报), and seals the record with the
//! inspector's ES256 signature so that any later change is detected.
//!
//! Pure: the scan results arrive as verified claims (or the reason verification failed), the time
//! and date are passed in.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codes::signer::{DeviceSigner, sign_normalised, verify_es256};
use crate::domain::{Explain, MachineClass, MachineLabel, WelderCredential};
use crate::permit::{
    Actor, Catalog, GeoPoint, Permit, PermitFinding, PermitLevel, PermitState, Section, Severity,
    permit_findings,
};

/// The signed encoding's format; see [`crate::permit::sign`] for the canonical CBOR rules.
pub const FORMAT: &str = "weldguard/inspection-sig/1";

/// What a scan proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ScanOutcome<T> {
    /// The code verified; these are its claims.
    Verified { claims: T },
    /// The code was scanned but did not verify (forged, altered, expired, revoked, unreadable).
    Failed {
        code: String,
        message_zh: String,
        message_en: String,
    },
    /// Nothing was presented.
    NotScanned,
}

impl<T> ScanOutcome<T> {
    pub fn claims(&self) -> Option<&T> {
        match self {
            ScanOutcome::Verified { claims } => Some(claims),
            _ => None,
        }
    }

    /// A failed scan from any explained error of the verifier.
    pub fn failed(reason: &dyn Explain) -> Self {
        ScanOutcome::Failed {
            code: reason.code().to_owned(),
            message_zh: reason.message_zh(),
            message_en: reason.message_en(),
        }
    }
}

/// What the inspector saw for one checklist item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Compliant,
    NotCompliant,
    NotApplicable,
    NotChecked,
}

/// An observation against the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub item_id: String,
    pub outcome: Outcome,
    pub note: String,
    /// SHA-256 digests of photos, 32 bytes each.
    pub photos: Vec<Vec<u8>>,
}

/// Kinds of violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// No credential shown: welding without a certificate (无证焊割).
    NoLicence,
    /// The credential did not verify (fake, altered, revoked, expired code).
    CredentialInvalid,
    /// The licence has expired or its review is overdue.
    LicenceExpired,
    /// The licence does not cover this machine's kind of work.
    LicenceCategoryMismatch,
    /// The machine label is missing or did not verify.
    MachineUnverified,
    NoPermit,
    PermitExpired,
    PermitNotApproved,
    PermitWelderNotNamed,
    PermitWrongSite,
    /// The permit's signatures do not verify: changed after signing.
    PermitTampered,
    /// A signature on the permit is not vouched for by the signer directory: a key nobody
    /// enrolled, a person or role that may not sign that step (docs/adr/0014).
    PermitSignerNotVouched,
    /// A prohibition (十不准) is violated.
    ProhibitionViolated,
    /// A must (九必须) is missing.
    MustMissing,
    Other,
}

impl ViolationKind {
    pub fn code(self) -> &'static str {
        match self {
            ViolationKind::NoLicence => "inspect.no_licence",
            ViolationKind::CredentialInvalid => "inspect.credential_invalid",
            ViolationKind::LicenceExpired => "inspect.licence_expired",
            ViolationKind::LicenceCategoryMismatch => "inspect.licence_category_mismatch",
            ViolationKind::MachineUnverified => "inspect.machine_unverified",
            ViolationKind::NoPermit => "inspect.no_permit",
            ViolationKind::PermitExpired => "inspect.permit_expired",
            ViolationKind::PermitNotApproved => "inspect.permit_not_approved",
            ViolationKind::PermitWelderNotNamed => "inspect.permit_welder_not_named",
            ViolationKind::PermitWrongSite => "inspect.permit_wrong_site",
            ViolationKind::PermitTampered => "inspect.permit_tampered",
            ViolationKind::PermitSignerNotVouched => "inspect.permit_signer_not_vouched",
            ViolationKind::ProhibitionViolated => "inspect.prohibition_violated",
            ViolationKind::MustMissing => "inspect.must_missing",
            ViolationKind::Other => "inspect.other",
        }
    }

    /// The default severity; checklist items carry their own.
    pub fn severity(self) -> Severity {
        match self {
            ViolationKind::MachineUnverified
            | ViolationKind::PermitWelderNotNamed
            | ViolationKind::PermitWrongSite
            | ViolationKind::MustMissing => Severity::Major,
            ViolationKind::Other => Severity::Minor,
            _ => Severity::Serious,
        }
    }
}

/// A violation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub severity: Severity,
    /// The checklist item, when the violation is against one.
    pub item_id: Option<String>,
    pub message_zh: String,
    pub message_en: String,
}

impl Explain for Violation {
    fn code(&self) -> &'static str {
        self.kind.code()
    }
    fn message_zh(&self) -> String {
        self.message_zh.clone()
    }
    fn message_en(&self) -> String {
        self.message_en.clone()
    }
}

/// What the inspection recorded about the permit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitRecord {
    pub permit_id: String,
    pub state: PermitState,
    pub level: PermitLevel,
    pub valid_from: i64,
    pub valid_until: i64,
    /// SHA-256 of the permit's CBOR encoding, tying the inspection to exactly this permit.
    pub digest: Vec<u8>,
    /// `None` when the signatures verified; otherwise the error code.
    pub signature_problem: Option<String>,
    pub findings: Vec<PermitFinding>,
}

/// The signed part of an inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionBody {
    pub inspection_id: String,
    pub inspector: Actor,
    pub site_id: String,
    pub location: Option<GeoPoint>,
    pub at: i64,
    pub catalog_version: String,
    pub welder: ScanOutcome<WelderCredential>,
    pub machine: ScanOutcome<MachineLabel>,
    pub permit: Option<PermitRecord>,
    pub observations: Vec<Observation>,
    pub violations: Vec<Violation>,
    pub photos: Vec<Vec<u8>>,
    pub notes: String,
    /// At least one serious violation: report upward at once.
    pub report_required: bool,
}

/// The inspector's seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionSignature {
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// An inspection record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    pub body: InspectionBody,
    pub signature: Option<InspectionSignature>,
}

/// What the inspector enters; the scans and the permit are checked when assessed.
pub struct InspectionInput<'a> {
    pub inspection_id: String,
    pub inspector: Actor,
    pub site_id: String,
    pub location: Option<GeoPoint>,
    pub at: i64,
    /// The local date at the site, for licence expiry.
    pub today: NaiveDate,
    pub welder: ScanOutcome<WelderCredential>,
    pub machine: ScanOutcome<MachineLabel>,
    pub permit: Option<&'a Permit>,
    /// The signer directory the device synced: who may sign permits (`None`: never synced, so no
    /// permit signer is vouched for).
    pub signers: Option<&'a crate::signers::SignerDirectory>,
    pub observations: Vec<Observation>,
    /// Violations the inspector adds by hand.
    pub extra_violations: Vec<Violation>,
    pub photos: Vec<Vec<u8>>,
    pub notes: String,
}

/// Why an inspection could not be recorded or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("observation for {item_id}, which is not a pre-work item of checklist {version}")]
    UnknownItem { item_id: String, version: String },
    #[error("checklist item {item_id} is observed more than once")]
    DuplicateObservation { item_id: String },
    #[error("a photo digest must be 32 bytes")]
    BadPhotoDigest,
    #[error("the inspection is already signed")]
    AlreadySigned,
    #[error("the inspection is not signed")]
    NotSigned,
    #[error("the inspector's signature does not verify: the record was changed after signing")]
    SignatureBroken,
    #[error("signing failed: {0}")]
    SigningFailed(String),
    #[error("could not encode the inspection: {0}")]
    Encoding(String),
}

impl Explain for InspectError {
    fn code(&self) -> &'static str {
        match self {
            InspectError::UnknownItem { .. } => "inspect.unknown_item",
            InspectError::DuplicateObservation { .. } => "inspect.duplicate_observation",
            InspectError::BadPhotoDigest => "inspect.bad_photo_digest",
            InspectError::AlreadySigned => "inspect.already_signed",
            InspectError::NotSigned => "inspect.not_signed",
            InspectError::SignatureBroken => "inspect.signature_broken",
            InspectError::SigningFailed(_) => "inspect.signing_failed",
            InspectError::Encoding(_) => "inspect.encoding_failed",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            InspectError::UnknownItem { item_id, version } => {
                format!("{item_id} 不是检查表 {version} 的作业前检查项")
            }
            InspectError::DuplicateObservation { item_id } => format!("检查项 {item_id} 重复记录"),
            InspectError::BadPhotoDigest => "照片摘要应为32字节".into(),
            InspectError::AlreadySigned => "检查记录已签名，不能再改".into(),
            InspectError::NotSigned => "检查记录未签名".into(),
            InspectError::SignatureBroken => "检查人签名验证失败：签名后记录被改动".into(),
            InspectError::SigningFailed(e) => format!("签名失败：{e}"),
            InspectError::Encoding(e) => format!("检查记录编码失败：{e}"),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

fn violation(kind: ViolationKind, zh: String, en: String) -> Violation {
    Violation {
        kind,
        severity: kind.severity(),
        item_id: None,
        message_zh: zh,
        message_en: en,
    }
}

fn permit_digest(permit: &Permit) -> Result<Vec<u8>, InspectError> {
    crate::permit::sign::digest(permit)
        .map(|d| d.to_vec())
        .map_err(|e| InspectError::Encoding(e.to_string()))
}

fn check_digests(photos: &[Vec<u8>]) -> Result<(), InspectError> {
    if photos.iter().any(|p| p.len() != 32) {
        return Err(InspectError::BadPhotoDigest);
    }
    Ok(())
}

/// Assess what was scanned and observed: an unsigned inspection with its violations derived.
pub fn assess(input: InspectionInput<'_>, catalog: &Catalog) -> Result<Inspection, InspectError> {
    // Observations must be against pre-work checklist items, once each.
    for (i, o) in input.observations.iter().enumerate() {
        let known = catalog
            .item(&o.item_id)
            .is_some_and(|it| it.section != Section::PostWork);
        if !known {
            return Err(InspectError::UnknownItem {
                item_id: o.item_id.clone(),
                version: catalog.version.clone(),
            });
        }
        if input
            .observations
            .iter()
            .take(i)
            .any(|p| p.item_id == o.item_id)
        {
            return Err(InspectError::DuplicateObservation {
                item_id: o.item_id.clone(),
            });
        }
        check_digests(&o.photos)?;
    }
    check_digests(&input.photos)?;

    let mut violations = Vec::new();

    // The welder (逢查必核: every inspection checks the licence).
    match &input.welder {
        ScanOutcome::NotScanned => violations.push(violation(
            ViolationKind::NoLicence,
            "未出示特种作业操作证（人员码），无证人员不准焊割".into(),
            "no certificate (welder code) shown; welding without a certificate is forbidden".into(),
        )),
        ScanOutcome::Failed {
            code,
            message_zh,
            message_en,
        } => violations.push(violation(
            ViolationKind::CredentialInvalid,
            format!("人员码验证失败（{code}）：{message_zh}"),
            format!("the welder code failed verification ({code}): {message_en}"),
        )),
        ScanOutcome::Verified { claims } => {
            if claims.expires_on < input.today {
                violations.push(violation(
                    ViolationKind::LicenceExpired,
                    format!("操作证已于{}过期", claims.expires_on),
                    format!("the certificate expired on {}", claims.expires_on),
                ));
            } else if claims.next_review_on < input.today {
                violations.push(violation(
                    ViolationKind::LicenceExpired,
                    format!("操作证应于{}复审，已逾期", claims.next_review_on),
                    format!(
                        "the certificate's review was due on {}",
                        claims.next_review_on
                    ),
                ));
            }
            if let Some(label) = input.machine.claims() {
                let need = label.kind.required_category();
                if !claims.categories.contains(&need) {
                    violations.push(violation(
                        ViolationKind::LicenceCategoryMismatch,
                        format!("{}须持{}操作证", label.kind.name_zh(), need.name_zh()),
                        format!(
                            "a {} needs a {} certificate",
                            label.kind.name_en(),
                            need.name_en()
                        ),
                    ));
                }
            }
        }
    }

    // The machine.
    match &input.machine {
        ScanOutcome::Verified { .. } => {}
        ScanOutcome::NotScanned => violations.push(violation(
            ViolationKind::MachineUnverified,
            "焊机无设备码或未扫码".into(),
            "the machine has no label or was not scanned".into(),
        )),
        ScanOutcome::Failed {
            code,
            message_zh,
            message_en,
        } => violations.push(violation(
            ViolationKind::MachineUnverified,
            format!("设备码验证失败（{code}）：{message_zh}"),
            format!("the machine label failed verification ({code}): {message_en}"),
        )),
    }

    // The permit.
    let machine_class = input
        .machine
        .claims()
        .map_or(MachineClass::Mobile, |m| m.class);
    let machine_id = input
        .machine
        .claims()
        .map_or(String::new(), |m| m.machine_id.clone());
    let certificate_no = input.welder.claims().map(|w| w.certificate_no.clone());
    let mut permit_record = None;
    if let Some(permit) = input.permit {
        let signature_problem = crate::permit::verify(permit)
            .err()
            .map(|e| e.code().to_owned());
        let vouched = signature_problem.is_none().then(|| {
            crate::permit::ProfileSet::builtin_shared()
                .map_err(|e| e.to_string())
                .and_then(|profiles| {
                    crate::permit::vouch(permit, profiles, input.signers)
                        .map_err(|e| format!("{}|{}", e.message_zh(), e.message_en()))
                })
        });
        let findings = if signature_problem.is_some() {
            violations.push(violation(
                ViolationKind::PermitTampered,
                "动火作业证签名验证失败，内容在签字后被改动".into(),
                "the hot-work permit's signatures do not verify: changed after signing".into(),
            ));
            Vec::new()
        } else if let Some(Err(why)) = vouched {
            let (zh, en) = why.split_once('|').unwrap_or((why.as_str(), why.as_str()));
            violations.push(violation(
                ViolationKind::PermitSignerNotVouched,
                format!("动火作业证的签字人未经平台授权：{zh}"),
                format!(
                    "the hot-work permit was signed by someone the platform did not authorise: {en}"
                ),
            ));
            Vec::new()
        } else {
            let check = permit_findings(
                Some(permit),
                certificate_no.as_deref().unwrap_or_default(),
                &machine_id,
                machine_class,
                &input.site_id,
                input.at,
            );
            check
                .findings
                .into_iter()
                .filter(|f| match f {
                    PermitFinding::WelderNotNamed { .. } => certificate_no.is_some(),
                    PermitFinding::MachineNotNamed { .. } => !machine_id.is_empty(),
                    _ => true,
                })
                .collect()
        };
        for f in &findings {
            let kind = match f {
                PermitFinding::Missing => ViolationKind::NoPermit,
                PermitFinding::NotApproved { .. } => ViolationKind::PermitNotApproved,
                PermitFinding::NotYetValid { .. } => ViolationKind::PermitNotApproved,
                PermitFinding::Expired { .. } => ViolationKind::PermitExpired,
                PermitFinding::WelderNotNamed { .. } => ViolationKind::PermitWelderNotNamed,
                PermitFinding::WrongSite { .. } => ViolationKind::PermitWrongSite,
                PermitFinding::MachineNotNamed { .. } => continue,
            };
            violations.push(violation(kind, f.message_zh(), f.message_en()));
        }
        permit_record = Some(PermitRecord {
            permit_id: permit.content.permit_id.clone(),
            state: permit.state,
            level: permit.level(),
            valid_from: permit.content.valid_from,
            valid_until: permit.content.valid_until,
            digest: permit_digest(permit)?,
            signature_problem,
            findings,
        });
    } else if machine_class != MachineClass::FixedStation {
        violations.push(violation(
            ViolationKind::NoPermit,
            "未办理动火审批手续，不准焊割：现场无动火作业证".into(),
            "no hot-work permit on site: welding without approval is forbidden".into(),
        ));
    }

    // Observations against the checklist.
    for o in &input.observations {
        if o.outcome != Outcome::NotCompliant {
            continue;
        }
        let Some(item) = catalog.item(&o.item_id) else {
            continue;
        };
        let (kind, zh, en) = match item.section {
            Section::Prohibition => (
                ViolationKind::ProhibitionViolated,
                format!("违反十不准第{}条：{}", item.number, item.text_zh),
                format!("prohibition {} violated: {}", item.number, item.text_en),
            ),
            _ => (
                ViolationKind::MustMissing,
                format!("未落实九必须第{}条：{}", item.number, item.text_zh),
                format!("must {} not met: {}", item.number, item.text_en),
            ),
        };
        violations.push(Violation {
            kind,
            severity: item.violation_severity,
            item_id: Some(item.id.clone()),
            message_zh: if o.note.is_empty() {
                zh
            } else {
                format!("{zh}（{}）", o.note)
            },
            message_en: if o.note.is_empty() {
                en
            } else {
                format!("{en} ({})", o.note)
            },
        });
    }
    violations.extend(input.extra_violations);
    let report_required = violations.iter().any(|v| v.severity == Severity::Serious);

    Ok(Inspection {
        body: InspectionBody {
            inspection_id: input.inspection_id,
            inspector: input.inspector,
            site_id: input.site_id,
            location: input.location,
            at: input.at,
            catalog_version: catalog.version.clone(),
            welder: input.welder,
            machine: input.machine,
            permit: permit_record,
            observations: input.observations,
            violations,
            photos: input.photos,
            notes: input.notes,
            report_required,
        },
        signature: None,
    })
}

#[derive(Serialize)]
struct SignedInspection<'a> {
    format: &'static str,
    body: &'a InspectionBody,
    public_key: &'a [u8],
}

fn message(body: &InspectionBody, public_key: &[u8]) -> Result<Vec<u8>, InspectError> {
    let mut out = Vec::new();
    ciborium::into_writer(
        &SignedInspection {
            format: FORMAT,
            body,
            public_key,
        },
        &mut out,
    )
    .map_err(|e| InspectError::Encoding(e.to_string()))?;
    Ok(out)
}

impl Inspection {
    /// Seal the record with the inspector's device key.
    pub fn sign(&mut self, signer: &dyn DeviceSigner) -> Result<(), InspectError> {
        if self.signature.is_some() {
            return Err(InspectError::AlreadySigned);
        }
        let public_key = signer.public_key();
        let bytes = message(&self.body, &public_key)?;
        let signature =
            sign_normalised(signer, &bytes).map_err(|e| InspectError::SigningFailed(e.0))?;
        self.signature = Some(InspectionSignature {
            public_key,
            signature,
        });
        Ok(())
    }

    /// Check the inspector's seal.
    pub fn verify(&self) -> Result<(), InspectError> {
        let sig = self.signature.as_ref().ok_or(InspectError::NotSigned)?;
        let bytes = message(&self.body, &sig.public_key)?;
        if verify_es256(&sig.public_key, &bytes, &sig.signature) {
            Ok(())
        } else {
            Err(InspectError::SignatureBroken)
        }
    }

    /// The serious violations to report upward.
    pub fn to_report(&self) -> impl Iterator<Item = &Violation> {
        self.body
            .violations
            .iter()
            .filter(|v| v.severity == Severity::Serious)
    }
}

#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
#[cfg(test)]
mod tests;
