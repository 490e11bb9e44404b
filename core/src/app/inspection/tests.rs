//! The inspector's check and an inspection record over a real profile database and real codes.

use chrono::NaiveDate;

use super::*;
use crate::app::signing::{SignRequest, Signed, SoftwarePersonSigner};
use crate::app::start_work::tests::{CERT, MOBILE, NOW, World, credential, world};
use crate::codes::{SoftwareSigner, issue_credential};
use crate::domain::{Binding, LicenceStatus, Revocation};
use crate::inspect::Outcome;
use crate::store::RegistryChange;

const EXPIRED: &str = "T370983198001011232";
const REVOKED: &str = "T370983198502021235";

fn licence(cert: &str, id: &str, expires_on: NaiveDate, status: LicenceStatus) -> Licence {
    Licence {
        certificate_no: cert.into(),
        id_number: id.into(),
        name: "钱七".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        expires_on,
        next_review_on: NaiveDate::from_ymd_opt(2028, 1, 1).unwrap(),
        review_extended: true,
        status,
        employer_org: None,
    }
}

/// The world of scan-to-start plus an expired and a revoked licence and two bindings for the
/// valid one (one to a machine the registry holds, one to a machine it does not).
fn inspector_world() -> World {
    let w = world();
    w.device
        .store()
        .apply_registry_changes(
            [
                RegistryChange::UpsertLicence(licence(
                    EXPIRED,
                    "370983198001011232",
                    NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
                    LicenceStatus::Valid,
                )),
                RegistryChange::UpsertLicence(licence(
                    REVOKED,
                    "370983198502021235",
                    NaiveDate::from_ymd_opt(2029, 12, 31).unwrap(),
                    LicenceStatus::Revoked,
                )),
                RegistryChange::Bind(Binding {
                    machine_id: MOBILE.into(),
                    certificate_no: CERT.into(),
                }),
                RegistryChange::Bind(Binding {
                    machine_id: "M-NOT-IN-CACHE".into(),
                    certificate_no: CERT.into(),
                }),
            ],
            None,
            0,
        )
        .unwrap();
    w
}

#[test]
fn id_numbers_are_masked_in_the_middle() {
    assert_eq!(mask_id_number("340104199003071234"), "3401**********1234");
    assert_eq!(mask_id_number("11010519491231002X"), "1101**********002X");
    assert_eq!(mask_id_number("12345678"), "******78");
    assert_eq!(mask_id_number("1"), "1");
    assert_eq!(mask_id_number(""), "");
}

#[test]
fn a_live_presentation_shows_the_registry_licence_masked_with_its_bound_machines() {
    let w = inspector_world();
    let presentation = w.presentation(NOW);
    let view = check_welder(&w.device, &presentation, NOW, Lang::En).unwrap();
    assert_eq!(view.scanned, ScannedWelderCode::Presentation);
    assert!(view.code_verified && view.live);
    assert_eq!(view.state, LicenceState::Valid, "{:?}", view.reasons);
    let l = view.licence.unwrap();
    assert_eq!(l.source, LicenceSource::Registry);
    assert_eq!(l.certificate_no, CERT);
    assert_eq!(l.name, "赵六");
    assert_eq!(l.id_number_masked, "1101**********002X");
    assert_eq!(l.categories[0].name, l.categories[0].en);
    assert_eq!(l.expires_on, NaiveDate::from_ymd_opt(2030, 2, 28).unwrap());
    let machines: Vec<_> = view
        .bound_machines
        .iter()
        .map(|m| (m.machine_id.as_str(), m.class))
        .collect();
    assert_eq!(
        machines,
        vec![
            (MOBILE, Some(MachineClass::Mobile)),
            ("M-NOT-IN-CACHE", None)
        ]
    );
    assert!(view.reasons.iter().all(|r| r.severity != Severity::Deny));
    // The same presentation scanned again is a replay.
    let again = check_welder(&w.device, &presentation, NOW + 1, Lang::En).unwrap();
    assert_eq!(again.scanned, ScannedWelderCode::Unverified);
    assert!(again.reasons.iter().any(|r| r.code == "code.replayed"));
}

#[test]
fn an_expired_licence_by_its_unsigned_number_is_expired_in_both_languages() {
    let w = inspector_world();
    let view = check_welder(&w.device, EXPIRED, NOW, Lang::Zh).unwrap();
    assert_eq!(view.scanned, ScannedWelderCode::UnsignedCertificateNo);
    assert!(!view.code_verified && !view.live);
    assert_eq!(view.state, LicenceState::Expired);
    let l = view.licence.as_ref().unwrap();
    assert_eq!(l.id_number_masked, "3709**********1232");
    assert_eq!(l.categories[0].name, "熔化焊接与热切割作业");
    let expired = view
        .reasons
        .iter()
        .find(|r| r.code == "licence.expired")
        .unwrap();
    assert_eq!(expired.severity, Severity::Deny);
    assert_eq!(expired.text, expired.zh);
    assert!(!expired.en.is_empty() && expired.en != expired.zh);
    assert!(
        view.reasons
            .iter()
            .any(|r| r.code == "welder.unsigned_source")
    );
    assert!(view.bound_machines.is_empty());
}

#[test]
fn a_revoked_licence_is_revoked_and_an_unknown_number_is_unknown() {
    let w = inspector_world();
    let view = check_welder(&w.device, REVOKED, NOW, Lang::En).unwrap();
    assert_eq!(view.state, LicenceState::Revoked);
    assert_eq!(view.licence.unwrap().id_number_masked, "3709**********1235");
    assert!(view.reasons.iter().any(|r| r.code == "licence.revoked"));

    // Revoked by the platform's list while the registry row still says valid.
    w.device
        .store()
        .apply_registry_changes(
            [RegistryChange::Revoke(Revocation {
                target: RevocationTarget::Licence,
                id: EXPIRED.into(),
            })],
            None,
            0,
        )
        .unwrap();
    assert_eq!(
        check_welder(&w.device, EXPIRED, NOW, Lang::En)
            .unwrap()
            .state,
        LicenceState::Revoked
    );

    let unknown = check_welder(&w.device, "T110105194912310011", NOW, Lang::En).unwrap();
    assert_eq!(unknown.state, LicenceState::Unknown);
    assert!(unknown.licence.is_none());
    assert!(
        unknown
            .reasons
            .iter()
            .any(|r| r.code == "welder.unknown_certificate")
    );
}

#[test]
fn a_forged_code_does_not_verify_and_junk_is_an_input_error() {
    let w = inspector_world();
    let forger = crate::codes::IssuerKey::generate(crate::codes::IssuerAlg::EdDSA).unwrap();
    let forged = issue_credential(&forger, &credential(&w.phone), NOW - 86_400, NOW).unwrap();
    let view = check_welder(&w.device, &forged, NOW, Lang::En).unwrap();
    assert_eq!(view.scanned, ScannedWelderCode::Unverified);
    assert!(!view.code_verified);
    assert_eq!(view.state, LicenceState::Unknown);
    assert!(view.reasons.iter().any(|r| r.severity == Severity::Deny));
    let err = check_welder(&w.device, "hello", NOW, Lang::En).unwrap_err();
    assert_eq!(err.code(), "code.not_a_welder_code");
    assert_eq!(
        check_welder(&w.device, CERT, i64::MAX, Lang::En)
            .unwrap_err()
            .code(),
        "input.time"
    );
}

fn inspector() -> SoftwarePersonSigner {
    SoftwarePersonSigner::new(SoftwareSigner::generate().unwrap(), true)
}

fn input(w: &World) -> InspectionRecordInput {
    InspectionRecordInput {
        site_id: "site-370983-001".into(),
        inspector_name: "网格员刘".into(),
        inspector_id: "G-0042".into(),
        welder_text: Some(w.presentation(NOW)),
        machine_text: None,
        permit: None,
        findings: vec![Observation {
            item_id: "ban.05".into(),
            outcome: Outcome::NotCompliant,
            note: "动火点周围有可燃物".into(),
            photos: vec![vec![0xab; 32]],
        }],
        photos: vec![vec![0xab; 32], vec![0xcd; 32]],
        location: Some(Location {
            latitude: 36.182,
            longitude: 116.772,
        }),
        notes: "现场已责令停工".into(),
    }
}

#[test]
fn an_inspection_is_recorded_once_with_its_findings_photos_and_seal() {
    let w = inspector_world();
    let signer = inspector();
    let view = record_inspection(&w.device, input(&w), &signer, NOW, Lang::En).unwrap();
    let kinds: Vec<_> = view.violations.iter().map(|v| v.violation.kind).collect();
    assert!(
        kinds.contains(&ViolationKind::ProhibitionViolated),
        "{kinds:?}"
    );
    assert!(kinds.contains(&ViolationKind::NoPermit), "{kinds:?}");
    assert!(!kinds.contains(&ViolationKind::NoLicence), "{kinds:?}");
    let v = &view.violations[0];
    assert_eq!(v.text, v.violation.message_en);
    assert!(!v.violation.message_zh.is_empty());
    assert!(view.report_required);
    assert_eq!((view.findings, view.photos), (1, 2));
    assert_eq!(view.seal.public_key, to_hex(&signer.public_key()));
    assert!(view.seal.user_present);

    let store = w.device.store();
    let saved = store.inspections(10).unwrap();
    assert_eq!(saved.len(), 1);
    let body = &saved[0].inspection.body;
    assert_eq!(saved[0].id, view.inspection_id);
    assert_eq!(body.photos.len(), 2);
    assert_eq!(body.observations[0].photos, vec![vec![0xab; 32]]);
    assert_eq!(body.notes, "现场已责令停工");
    assert!(saved[0].inspection.verify().is_ok());
    let entry = store.outbox_entry(&view.inspection_id).unwrap().unwrap();
    assert_eq!(entry.kind, "inspection");
    let listed = crate::app::history::inspections(&w.device, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].inspection_id, view.inspection_id);
    assert_eq!(listed[0].inspector.id, "G-0042");
    assert!(listed[0].report_required);
    assert_eq!(store.outbox_counts().unwrap().pending, 1);
}

/// A key store that refuses (the inspector cancelled the prompt).
struct Refusing(Vec<u8>);

impl PersonSigner for Refusing {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _: &SignRequest) -> Result<Signed, SignerError> {
        Err(SignerError("cancelled".into()))
    }
}

#[test]
fn bad_input_or_a_refusing_signer_saves_nothing() {
    let w = inspector_world();
    let signer = inspector();
    let mut bad = input(&w);
    bad.findings[0].item_id = "ban.99".into();
    let err = record_inspection(&w.device, bad, &signer, NOW, Lang::En).unwrap_err();
    assert_eq!(err.code(), "inspect.unknown_item");
    let mut bad = input(&w);
    bad.photos.push(vec![1, 2, 3]);
    let err = record_inspection(&w.device, bad, &signer, NOW, Lang::En).unwrap_err();
    assert_eq!(err.code(), "inspect.bad_photo_digest");
    let mut bad = input(&w);
    bad.permit = Some(PermitShown::Id("P-NOPE".into()));
    let err = record_inspection(&w.device, bad, &signer, NOW, Lang::En).unwrap_err();
    assert_eq!(err.code(), "permit_store.not_found");
    let mut bad = input(&w);
    bad.location = Some(Location {
        latitude: 100.0,
        longitude: 0.0,
    });
    let err = record_inspection(&w.device, bad, &signer, NOW, Lang::En).unwrap_err();
    assert_eq!(err.code(), "input.location");
    let refusing = Refusing(signer.public_key());
    let err = record_inspection(&w.device, input(&w), &refusing, NOW, Lang::En).unwrap_err();
    assert_eq!(err.kind(), crate::app::error::ErrorKind::Signing, "{err:?}");
    let store = w.device.store();
    assert!(store.inspections(10).unwrap().is_empty());
    assert_eq!(store.outbox_counts().unwrap().pending, 0);
}
