//! The inspector's check (逢查必核): [`check_welder`] turns a scanned welder credential, live
//! presentation or unsigned certificate number into the welder's licence as the registry keeps it
//! (name, masked ID number, certificate number, categories, dates, status with its reasons, the
//! machines bound to the welder) and says whether the code verified; [`record_inspection`] records
//! an inspection (scans, the permit shown, catalog findings, free text, photo references), sealed
//! with the inspector's own key ([`SignPurpose::InspectionSeal`]) and saved with its outbox entry in
//! one transaction.

use chrono::NaiveDate;
use serde::Serialize;

use super::device::time;
use super::signing::{PersonSigner, PurposeSigner, SignPurpose};
use super::start_work::Reason;
use super::{AppError, Device, Lang};
use crate::codes::signer::SignerError;
use crate::codes::{LookupTarget, ScannedText, VerifiedClaims, classify, to_hex};
use crate::domain::{
    Explain, Licence, MachineClass, MachineKind, MachineLabel, MachineStatus, OperationCategory,
    RevocationTarget, WelderCredential,
};
use crate::inspect::{
    InspectError, InspectionInput, Observation, PermitRecord, ScanOutcome, Violation,
    ViolationKind, assess,
};
use crate::permit::{Actor, Catalog, GeoPoint, Permit, check_against_permit, read_permit_code};
use crate::rules::{
    Finding, LicenceTerms, RuleCode, Severity, WorkTime, check_licence, check_terms,
    compare_with_registry, rule_set_for,
};
use crate::store::records::new_record_id;

/// An ID number as an inspector's screen shows it: the first four and the last four characters,
/// the rest starred (`3401**********1234`); a number of eight characters or fewer keeps only its
/// last two. The full number never leaves the registry cache through a view.
pub fn mask_id_number(id_number: &str) -> String {
    let chars: Vec<char> = id_number.trim().chars().collect();
    let n = chars.len();
    let (head, tail) = if n > 8 { (4, 4) } else { (0, n.min(2)) };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// What the scanned welder text was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceSource {
    /// The registry cache (the platform's record).
    Registry,
    /// The credential's signed claims: the registry cache does not hold this licence (yet).
    Credential,
}

/// The licence's standing on the day of the check, as the rules decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceState {
    Valid,
    /// Revoked or cancelled (注销) by the platform.
    Revoked,
    Expired,
    /// Its validity has not started yet.
    NotYetValid,
    /// The review (复审) is overdue: the licence may not be used until reviewed.
    ReviewOverdue,
    /// No licence could be shown (the code did not verify, or the registry does not know the
    /// certificate).
    Unknown,
}

/// A licence category with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryView {
    pub category: OperationCategory,
    /// The name in the language asked for.
    pub name: String,
    pub zh: String,
    pub en: String,
}

/// The licence as the inspector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceView {
    pub certificate_no: String,
    pub name: String,
    /// The holder's ID number, masked ([`mask_id_number`]).
    pub id_number_masked: String,
    pub categories: Vec<CategoryView>,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub next_review_on: NaiveDate,
    pub employer_org: Option<String>,
    pub source: LicenceSource,
}

/// A machine bound to the welder in the registry (人机绑定).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundMachine {
    pub machine_id: String,
    /// The registry cache's machine; `None` when it holds only the binding.
    pub kind: Option<MachineKind>,
    pub class: Option<MachineClass>,
    pub status: Option<MachineStatus>,
    pub owner_org: Option<String>,
}

/// The answer to an inspector's scan of a welder's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WelderCheckView {
    pub scanned: ScannedWelderCode,
    /// The code's issuer signature verified (a live presentation or a credential).
    pub code_verified: bool,
    /// A live presentation: the holder's phone signed just now.
    pub live: bool,
    pub certificate_no: Option<String>,
    pub licence: Option<LicenceView>,
    pub state: LicenceState,
    /// Every reason behind the state and the code's standing, deny first.
    pub reasons: Vec<Reason>,
    pub bound_machines: Vec<BoundMachine>,
}

/// The inspector scanned a welder's code: what the registry keeps about the licence, and whether
/// the code verified. A presentation counts as seen (scanning it again here is a replay).
pub fn check_welder(
    device: &Device,
    scanned_text: &str,
    now: i64,
    lang: Lang,
) -> Result<WelderCheckView, AppError> {
    let at = time(now)?;
    let today = WorkTime::china(at).local_date;
    let mut reasons: Vec<Finding> = Vec::new();
    let text = scanned_text.trim();
    let (scanned, claims): (ScannedWelderCode, Option<WelderCredential>) = match classify(text) {
        ScannedText::Signed => {
            match device.with_verifier(|verifier, replay| verifier.verify(text, now, replay)) {
                Ok(code) => match code.claims {
                    VerifiedClaims::Presentation { credential, .. } => {
                        (ScannedWelderCode::Presentation, Some(credential.credential))
                    }
                    VerifiedClaims::WelderCredential(c) => {
                        reasons.push(RuleCode::WelderNotLive.finding(
                            "人员码不是动态亮码（可能是截图），请核对持证人本人",
                            "the credential was shown without a live presentation (could be a screenshot): check the holder in person",
                        ));
                        (ScannedWelderCode::Credential, Some(c.credential))
                    }
                    VerifiedClaims::MachineLabel(_) => return Err(not_a_welder_code()),
                },
                Err(e) => {
                    reasons.push(Finding::new(
                        e.code(),
                        Severity::Deny,
                        format!("人员码验证失败：{}", e.message_zh()),
                        format!("The welder's code did not verify: {}", e.message_en()),
                    ));
                    (ScannedWelderCode::Unverified, None)
                }
            }
        }
        ScannedText::Unsigned(unsigned) => match unsigned
            .lookup
            .filter(|l| l.target == LookupTarget::Licence)
        {
            Some(lookup) => {
                reasons.push(RuleCode::WelderUnsignedSource.finding(
                    format!("证号{}来自未签名的来源，证号本身不能证明任何事；以下信息来自登记库，请核对持证人本人", lookup.id),
                    format!("certificate number {} came from an unsigned source and proves nothing by itself; the licence below is the registry's: check the holder in person", lookup.id),
                ));
                return finish(
                    device,
                    ScannedWelderCode::UnsignedCertificateNo,
                    Some(lookup.id),
                    None,
                    reasons,
                    today,
                    lang,
                );
            }
            None => return Err(not_a_welder_code()),
        },
    };
    let certificate_no = claims.as_ref().map(|c| c.certificate_no.clone());
    finish(
        device,
        scanned,
        certificate_no,
        claims,
        reasons,
        today,
        lang,
    )
}

fn not_a_welder_code() -> AppError {
    AppError::input(
        "code.not_a_welder_code",
        "扫描的不是人员码（动态亮码、人员码或操作证号）",
        "The scanned code is not a welder's code (a live presentation, a credential or a certificate number)",
    )
}

fn finish(
    device: &Device,
    scanned: ScannedWelderCode,
    certificate_no: Option<String>,
    claims: Option<WelderCredential>,
    mut reasons: Vec<Finding>,
    today: NaiveDate,
    lang: Lang,
) -> Result<WelderCheckView, AppError> {
    let store = device.store();
    let code_verified = matches!(
        scanned,
        ScannedWelderCode::Presentation | ScannedWelderCode::Credential
    );
    let Some(cert) = certificate_no else {
        return Ok(view(
            scanned,
            code_verified,
            None,
            None,
            LicenceState::Unknown,
            reasons,
            Vec::new(),
            lang,
        ));
    };
    let registry = store.registry_licence(&cert)?;
    let revoked_on_list = store.registry_revoked(RevocationTarget::Licence, &cert)?;
    let licence: Option<LicenceView> = match (&registry, &claims) {
        (Some(l), claimed) => {
            reasons.extend(check_licence(l, today));
            if revoked_on_list && !reasons.iter().any(|f| f.code == "licence.revoked") {
                reasons.push(RuleCode::LicenceRevoked.finding(
                    format!("操作证{cert}已被吊销或注销"),
                    format!("licence {cert} has been revoked"),
                ));
            }
            if let Some(c) = claimed {
                compare_with_registry(c, l, &mut reasons);
            }
            Some(licence_view(l, LicenceSource::Registry, lang))
        }
        (None, Some(c)) => {
            reasons.push(RuleCode::WelderNotInRegistry.finding(
                format!("登记库中暂无操作证{cert}（可能尚未同步），以下为人员码上签名的信息"),
                format!("licence {cert} is not in the registry (perhaps not yet synced); shown from the credential's signed claims"),
            ));
            if revoked_on_list {
                reasons.push(RuleCode::LicenceRevoked.finding(
                    format!("操作证{cert}已被吊销或注销"),
                    format!("licence {cert} has been revoked"),
                ));
            }
            check_terms(
                &LicenceTerms::from(c),
                today,
                rule_set_for(today),
                &mut reasons,
            );
            Some(credential_view(c, lang))
        }
        (None, None) => {
            reasons.push(RuleCode::WelderUnknownCertificate.finding(
                format!("登记库中没有操作证{cert}：无法确认持证（可能是假证）"),
                format!("licence {cert} is not in the registry: no licence can be confirmed (possibly a fake certificate)"),
            ));
            None
        }
    };
    let state = match &licence {
        None => LicenceState::Unknown,
        Some(_) => state_of(&reasons),
    };
    let bound_machines = store
        .bound_machines(&cert)?
        .into_iter()
        .map(|(machine_id, m)| BoundMachine {
            machine_id,
            kind: m.as_ref().map(|m| m.kind),
            class: m.as_ref().map(|m| m.class),
            status: m.as_ref().map(|m| m.status),
            owner_org: m.map(|m| m.owner_org),
        })
        .collect();
    Ok(view(
        scanned,
        code_verified,
        Some(cert),
        licence,
        state,
        reasons,
        bound_machines,
        lang,
    ))
}

/// The licence's state from the rules' findings: revoked before expired before not yet valid
/// before review overdue.
fn state_of(findings: &[Finding]) -> LicenceState {
    let has = |code: &str| findings.iter().any(|f| f.code == code);
    if has("licence.revoked") {
        LicenceState::Revoked
    } else if has("licence.expired") {
        LicenceState::Expired
    } else if has("licence.not_yet_valid") {
        LicenceState::NotYetValid
    } else if has("licence.review_overdue") {
        LicenceState::ReviewOverdue
    } else {
        LicenceState::Valid
    }
}

#[allow(clippy::too_many_arguments)]
fn view(
    scanned: ScannedWelderCode,
    code_verified: bool,
    certificate_no: Option<String>,
    licence: Option<LicenceView>,
    state: LicenceState,
    mut reasons: Vec<Finding>,
    bound_machines: Vec<BoundMachine>,
    lang: Lang,
) -> WelderCheckView {
    reasons.sort_by_key(|f| f.severity);
    WelderCheckView {
        scanned,
        code_verified,
        live: scanned == ScannedWelderCode::Presentation,
        certificate_no,
        licence,
        state,
        reasons: reasons.iter().map(|f| Reason::of(f, lang)).collect(),
        bound_machines,
    }
}

fn categories(list: &[OperationCategory], lang: Lang) -> Vec<CategoryView> {
    list.iter()
        .map(|c| CategoryView {
            category: *c,
            name: lang.pick(c.name_zh(), c.name_en()).to_owned(),
            zh: c.name_zh().to_owned(),
            en: c.name_en().to_owned(),
        })
        .collect()
}

fn licence_view(l: &Licence, source: LicenceSource, lang: Lang) -> LicenceView {
    LicenceView {
        certificate_no: l.certificate_no.clone(),
        name: l.name.clone(),
        id_number_masked: mask_id_number(&l.id_number),
        categories: categories(&l.categories, lang),
        issued_on: l.issued_on,
        expires_on: l.expires_on,
        next_review_on: l.next_review_on,
        employer_org: l.employer_org.clone(),
        source,
    }
}

fn credential_view(c: &WelderCredential, lang: Lang) -> LicenceView {
    LicenceView {
        certificate_no: c.certificate_no.clone(),
        name: c.name.clone(),
        id_number_masked: mask_id_number(&c.id_number),
        categories: categories(&c.categories, lang),
        issued_on: c.issued_on,
        expires_on: c.expires_on,
        next_review_on: c.next_review_on,
        employer_org: None,
        source: LicenceSource::Credential,
    }
}

/// The permit the inspector was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermitShown {
    /// By id, from this device's store (an unknown id is an input error).
    Id(String),
    /// Its scanned site code; the permit must be stored here to be checked.
    Code(String),
}

/// The inspector's position (degrees, WGS-84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// What the inspector records.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionRecordInput {
    /// The site inspected.
    pub site_id: String,
    pub inspector_name: String,
    pub inspector_id: String,
    /// The welder's scanned code (presentation, credential or certificate number), if one was shown.
    pub welder_text: Option<String>,
    /// The machine label's scanned text, if there is one.
    pub machine_text: Option<String>,
    pub permit: Option<PermitShown>,
    /// Findings against the built-in checklist catalog (十不准、九必须), each with its note and photos.
    pub findings: Vec<Observation>,
    /// SHA-256 digests (32 bytes each) of the photos taken.
    pub photos: Vec<Vec<u8>>,
    pub location: Option<Location>,
    /// Free text.
    pub notes: String,
}

/// One violation found, in the language asked for and in both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationView {
    #[serde(flatten)]
    pub violation: Violation,
    /// Its stable code (`inspect.…`).
    pub code: String,
    pub text: String,
}

/// The inspector's seal on the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealView {
    /// The inspector's public key (SEC1 compressed, hex).
    pub public_key: String,
    /// The signature (`r || s`, hex).
    pub signature: String,
    /// The key store verified the inspector's presence for the seal.
    pub user_present: bool,
}

/// A recorded inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectionView {
    /// Also its outbox idempotency key.
    pub inspection_id: String,
    pub violations: Vec<ViolationView>,
    /// At least one serious violation: report upward at once (发现问题，及时上报).
    pub report_required: bool,
    /// What the inspection recorded about the permit shown.
    pub permit: Option<PermitRecord>,
    pub findings: usize,
    pub photos: usize,
    pub seal: SealView,
}

/// Record an inspection: verify the scans, check the permit shown, derive the violations from the
/// findings, seal the record with the inspector's key and save it with its outbox entry in one
/// transaction. Bad input (an unknown checklist item, a photo digest that is not 32 bytes, an
/// unknown permit id, a time out of range) is refused and nothing is saved; a signer that refuses
/// saves nothing either.
pub fn record_inspection(
    device: &Device,
    input: InspectionRecordInput,
    signer: &dyn PersonSigner,
    now: i64,
    lang: Lang,
) -> Result<InspectionView, AppError> {
    let at = time(now)?;
    let location = input.location.map(location_of).transpose()?;
    let store = device.store();
    let welder = scan_welder(device, input.welder_text.as_deref(), now);
    let machine = scan_machine(device, input.machine_text.as_deref(), now);
    let mut extra = Vec::new();
    let permit: Option<Permit> = match input.permit {
        Some(PermitShown::Id(id)) => Some(store.permit(&id)?.ok_or_else(|| {
            AppError::PermitStore(crate::store::PermitStoreError::NotFound(id.clone()))
        })?),
        Some(PermitShown::Code(text)) => match read_permit_code(&text) {
            Err(e) => {
                extra.push(violation(
                    ViolationKind::PermitTampered,
                    format!("动火作业证码无效：{}", e.message_zh()),
                    format!("the permit code is invalid: {}", e.message_en()),
                ));
                None
            }
            Ok(claims) => {
                let stored = store.permit(&claims.permit_id)?;
                match &stored {
                    Some(p) => {
                        if let Err(e) = check_against_permit(&claims, p) {
                            extra.push(violation(
                                ViolationKind::PermitTampered,
                                e.message_zh(),
                                e.message_en(),
                            ));
                        }
                    }
                    None => extra.push(violation(
                        ViolationKind::Other,
                        format!("本机未存储作业证 {}，无法核对", claims.permit_id),
                        format!(
                            "permit {} is not stored on this device and could not be checked",
                            claims.permit_id
                        ),
                    )),
                }
                stored
            }
        },
        None => None,
    };
    let catalog = Catalog::builtin().map_err(|e| {
        AppError::input(
            "permit.catalog",
            format!("内置检查表无法读取：{e}"),
            format!("The built-in checklist catalog cannot be read: {e}"),
        )
    })?;
    let directory = store.signer_directory()?;
    let findings = input.findings.len();
    let photos = input.photos.len();
    let assessed = InspectionInput {
        inspection_id: new_record_id(now.saturating_mul(1000))?,
        inspector: Actor {
            name: input.inspector_name,
            id: input.inspector_id,
            role: "inspector".into(),
        },
        site_id: input.site_id,
        location,
        at: now,
        today: WorkTime::china(at).local_date,
        welder,
        machine,
        permit: permit.as_ref(),
        signers: directory.as_ref(),
        observations: input.findings,
        extra_violations: extra,
        photos: input.photos,
        notes: input.notes,
    };
    let mut inspection = assess(assessed, &catalog)?;
    let sealer = PurposeSigner::new(signer, SignPurpose::InspectionSeal);
    inspection.sign(&sealer).map_err(|e| match e {
        InspectError::SigningFailed(reason) => AppError::Signing(SignerError(reason)),
        other => AppError::Inspect(other),
    })?;
    store.record_inspection(&inspection, now.saturating_mul(1000))?;
    let seal = inspection
        .signature
        .as_ref()
        .map(|s| SealView {
            public_key: to_hex(&s.public_key),
            signature: to_hex(&s.signature),
            user_present: sealer.user_present(),
        })
        .ok_or(AppError::Inspect(InspectError::NotSigned))?;
    let body = inspection.body;
    Ok(InspectionView {
        inspection_id: body.inspection_id,
        violations: body
            .violations
            .into_iter()
            .map(|v| ViolationView {
                code: v.kind.code().to_owned(),
                text: lang.pick(&v.message_zh, &v.message_en).to_owned(),
                violation: v,
            })
            .collect(),
        report_required: body.report_required,
        permit: body.permit,
        findings,
        photos,
        seal,
    })
}

fn location_of(l: Location) -> Result<GeoPoint, AppError> {
    if !l.latitude.is_finite()
        || !l.longitude.is_finite()
        || !(-90.0..=90.0).contains(&l.latitude)
        || !(-180.0..=180.0).contains(&l.longitude)
    {
        return Err(AppError::input(
            "input.location",
            format!("位置超出范围：{}, {}", l.latitude, l.longitude),
            format!(
                "The location is out of range: {}, {}",
                l.latitude, l.longitude
            ),
        ));
    }
    Ok(GeoPoint::from_degrees(l.latitude, l.longitude))
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

fn wrong_kind<T>(zh: &str, en: &str) -> ScanOutcome<T> {
    ScanOutcome::Failed {
        code: "inspect.wrong_code_kind".into(),
        message_zh: zh.into(),
        message_en: en.into(),
    }
}

/// What the welder's scan proved, for the record.
fn scan_welder(device: &Device, text: Option<&str>, now: i64) -> ScanOutcome<WelderCredential> {
    let Some(text) = text else {
        return ScanOutcome::NotScanned;
    };
    match classify(text) {
        ScannedText::Unsigned(u) => ScanOutcome::failed(&u),
        ScannedText::Signed => {
            match device.with_verifier(|verifier, replay| verifier.verify(text, now, replay)) {
                Ok(code) => match code.claims {
                    VerifiedClaims::WelderCredential(c) => ScanOutcome::Verified {
                        claims: c.credential,
                    },
                    VerifiedClaims::Presentation { credential, .. } => ScanOutcome::Verified {
                        claims: credential.credential,
                    },
                    VerifiedClaims::MachineLabel(_) => wrong_kind(
                        "扫描的不是人员码",
                        "the scanned code is not a welder credential",
                    ),
                },
                Err(e) => ScanOutcome::failed(&e),
            }
        }
    }
}

/// What the machine label's scan proved, for the record.
fn scan_machine(device: &Device, text: Option<&str>, now: i64) -> ScanOutcome<MachineLabel> {
    let Some(text) = text else {
        return ScanOutcome::NotScanned;
    };
    match classify(text) {
        ScannedText::Unsigned(u) => ScanOutcome::failed(&u),
        ScannedText::Signed => {
            match device.with_verifier(|verifier, replay| verifier.verify(text, now, replay)) {
                Ok(code) => match code.claims {
                    VerifiedClaims::MachineLabel(m) => ScanOutcome::Verified { claims: m },
                    _ => wrong_kind(
                        "扫描的不是设备码",
                        "the scanned code is not a machine label",
                    ),
                },
                Err(e) => ScanOutcome::failed(&e),
            }
        }
    }
}

#[cfg(test)]
mod tests;
