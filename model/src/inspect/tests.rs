//! Inspection tests: scans, permit checks, observations, severity, reporting and the seal.

use super::fixtures::*;
use super::*;
use crate::codes::signer::SoftwareSigner;
use crate::domain::OperationCategory;
use crate::permit::fixtures::{Fx, t};

fn kinds(i: &Inspection) -> Vec<ViolationKind> {
    i.body.violations.iter().map(|v| v.kind).collect()
}

#[test]
fn clean_inspection_has_no_violations_and_seals() {
    let fx = Fx::new("gb30871");
    let permit = fx.in_state(PermitState::Active);
    let mut insp = assess(input(&fx, Some(&permit)), &fx.catalog).unwrap();
    assert_eq!(kinds(&insp), vec![]);
    assert!(!insp.body.report_required);
    let record = insp.body.permit.as_ref().unwrap();
    assert_eq!(record.signature_problem, None);
    assert_eq!(record.digest.len(), 32);
    assert_eq!(insp.verify(), Err(InspectError::NotSigned));
    let inspector = SoftwareSigner::generate().unwrap();
    insp.sign(&inspector).unwrap();
    insp.verify().unwrap();
    assert_eq!(insp.sign(&inspector), Err(InspectError::AlreadySigned));
}

#[test]
fn inspection_that_finds_violations_flags_them_for_reporting() {
    let fx = Fx::new("gb30871");
    let mut inp = input(&fx, None);
    for o in inp.observations.iter_mut() {
        if o.item_id == "ban.08" {
            o.outcome = Outcome::NotCompliant;
            o.note = "焊点下方堆放油漆桶".into();
            o.photos = vec![vec![5; 32]];
        }
        if o.item_id == "must.06" {
            o.outcome = Outcome::NotCompliant;
        }
    }
    let insp = assess(inp, &fx.catalog).unwrap();
    assert_eq!(
        kinds(&insp),
        vec![
            ViolationKind::NoPermit,
            ViolationKind::ProhibitionViolated,
            ViolationKind::MustMissing
        ]
    );
    let v = &insp.body.violations;
    assert_eq!(v[0].severity, Severity::Serious);
    assert_eq!(v[1].severity, Severity::Serious);
    assert_eq!(v[1].item_id.as_deref(), Some("ban.08"));
    assert!(v[1].message_zh.contains("焊割部位附近易燃易爆物品"));
    assert!(v[1].message_zh.contains("油漆桶"));
    assert_eq!(v[2].severity, Severity::Major);
    assert!(insp.body.report_required);
    assert_eq!(insp.to_report().count(), 2);
    assert_eq!(v[0].code(), "inspect.no_permit");
}

#[test]
fn licence_problems_are_serious() {
    let fx = Fx::new("gb30871");
    let permit = fx.in_state(PermitState::Active);
    // No credential at all.
    let mut inp = input(&fx, Some(&permit));
    inp.welder = ScanOutcome::NotScanned;
    let insp = assess(inp, &fx.catalog).unwrap();
    assert_eq!(kinds(&insp), vec![ViolationKind::NoLicence]);
    assert!(insp.body.report_required);
    // A code that failed verification (a fake).
    let mut inp = input(&fx, Some(&permit));
    inp.welder = ScanOutcome::Failed {
        code: "codes.bad_signature".into(),
        message_zh: "签名无效".into(),
        message_en: "bad signature".into(),
    };
    assert_eq!(
        kinds(&assess(inp, &fx.catalog).unwrap()),
        vec![ViolationKind::CredentialInvalid]
    );
    // Expired licence; overdue review; wrong category for an arc welder.
    let mut c = credential();
    c.expires_on = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let mut inp = input(&fx, Some(&permit));
    inp.welder = ScanOutcome::Verified { claims: c };
    assert_eq!(
        kinds(&assess(inp, &fx.catalog).unwrap()),
        vec![ViolationKind::LicenceExpired]
    );
    let mut c = credential();
    c.categories = vec![OperationCategory::Brazing];
    let mut inp = input(&fx, Some(&permit));
    inp.welder = ScanOutcome::Verified { claims: c };
    assert_eq!(
        kinds(&assess(inp, &fx.catalog).unwrap()),
        vec![ViolationKind::LicenceCategoryMismatch]
    );
}

#[test]
fn permit_problems_are_recorded() {
    let fx = Fx::new("gb30871");
    let permit = fx.in_state(PermitState::Active);
    // Expired: inspected at the end of validity.
    let mut inp = input(&fx, Some(&permit));
    inp.at = t(17, 0);
    assert_eq!(
        kinds(&assess(inp, &fx.catalog).unwrap()),
        vec![ViolationKind::PermitExpired]
    );
    // Tampered: the validity stretched after signing.
    let mut forged = permit.clone();
    forged.content.valid_until += 24 * 3600;
    let insp = assess(input(&fx, Some(&forged)), &fx.catalog).unwrap();
    assert_eq!(kinds(&insp), vec![ViolationKind::PermitTampered]);
    assert_eq!(
        insp.body.permit.unwrap().signature_problem.as_deref(),
        Some("permit.signature_broken")
    );
    // Not yet approved.
    let checked = fx.in_state(PermitState::Checked);
    assert_eq!(
        kinds(&assess(input(&fx, Some(&checked)), &fx.catalog).unwrap()),
        vec![ViolationKind::PermitNotApproved]
    );
    // Another welder working on this permit.
    let mut inp = input(&fx, Some(&permit));
    let mut c = credential();
    c.certificate_no = "T370983198805054321".into();
    inp.welder = ScanOutcome::Verified { claims: c };
    let insp = assess(inp, &fx.catalog).unwrap();
    assert_eq!(kinds(&insp), vec![ViolationKind::PermitWelderNotNamed]);
    assert!(
        !insp.body.report_required,
        "a major violation alone is not reported at once"
    );
}

#[test]
fn a_permit_signed_by_someone_the_platform_did_not_enrol_is_a_violation() {
    let fx = Fx::new("gb30871");
    let permit = fx.in_state(PermitState::Active);
    // The inspector's phone never synced a directory: nobody is vouched for.
    let mut inp = input(&fx, Some(&permit));
    inp.signers = None;
    let insp = assess(inp, &fx.catalog).unwrap();
    assert_eq!(kinds(&insp), vec![ViolationKind::PermitSignerNotVouched]);
    // A directory without the approver's key (the approval came from a key nobody enrolled).
    let mut directory = fx.directory();
    let approver = crate::codes::signer::DeviceSigner::public_key(fx.approver());
    directory.entries.retain(|e| e.public_key != approver);
    let mut inp = input(&fx, Some(&permit));
    inp.signers = Some(&directory);
    let insp = assess(inp, &fx.catalog).unwrap();
    assert_eq!(kinds(&insp), vec![ViolationKind::PermitSignerNotVouched]);
    assert!(insp.body.violations[0].message_zh.contains("签字人"));
}

#[test]
fn fixed_station_needs_no_permit_but_unscanned_machines_do() {
    let fx = Fx::new("gb30871");
    let mut inp = input(&fx, None);
    inp.machine = ScanOutcome::Verified {
        claims: label(MachineClass::FixedStation),
    };
    assert_eq!(kinds(&assess(inp, &fx.catalog).unwrap()), vec![]);
    let mut inp = input(&fx, None);
    inp.machine = ScanOutcome::NotScanned;
    assert_eq!(
        kinds(&assess(inp, &fx.catalog).unwrap()),
        vec![ViolationKind::MachineUnverified, ViolationKind::NoPermit]
    );
}

#[test]
fn bad_observations_are_refused() {
    let fx = Fx::new("gb30871");
    let mut inp = input(&fx, None);
    inp.observations[0].item_id = "close.01".into();
    assert_eq!(
        assess(inp, &fx.catalog).unwrap_err().code(),
        "inspect.unknown_item"
    );
    let mut inp = input(&fx, None);
    let dup = inp.observations[0].clone();
    inp.observations.push(dup);
    assert_eq!(
        assess(inp, &fx.catalog).unwrap_err().code(),
        "inspect.duplicate_observation"
    );
    let mut inp = input(&fx, None);
    inp.photos.push(vec![1, 2, 3]);
    assert_eq!(
        assess(inp, &fx.catalog).unwrap_err(),
        InspectError::BadPhotoDigest
    );
}

#[test]
fn any_change_after_sealing_is_detected() {
    let fx = Fx::new("gb30871");
    let mut inp = input(&fx, None);
    inp.observations[7].outcome = Outcome::NotCompliant;
    let mut insp = assess(inp, &fx.catalog).unwrap();
    insp.sign(&SoftwareSigner::generate().unwrap()).unwrap();
    insp.verify().unwrap();
    // Play down the violation, or hide it, or move the time: all caught.
    let mut q = insp.clone();
    q.body.violations[1].severity = Severity::Minor;
    assert_eq!(q.verify(), Err(InspectError::SignatureBroken));
    let mut q = insp.clone();
    q.body.violations.pop();
    assert_eq!(q.verify(), Err(InspectError::SignatureBroken));
    let mut q = insp.clone();
    q.body.at += 1;
    assert_eq!(q.verify(), Err(InspectError::SignatureBroken));
    let mut q = insp.clone();
    q.body.report_required = false;
    assert_eq!(q.verify(), Err(InspectError::SignatureBroken));
    let json = serde_json::to_string(&insp).unwrap();
    let back: Inspection = serde_json::from_str(&json).unwrap();
    back.verify().unwrap();
}

#[test]
fn the_high_s_twin_of_a_seal_is_refused_and_a_high_s_phone_still_seals() {
    use crate::codes::signer::HighSSigner;
    use crate::codes::{es256_is_low_s, es256_twin};
    let fx = Fx::new("gb30871");
    let mut insp = assess(input(&fx, None), &fx.catalog).unwrap();
    insp.sign(&HighSSigner(SoftwareSigner::generate().unwrap()))
        .unwrap();
    insp.verify().unwrap();
    let seal = insp.signature.clone().unwrap();
    assert!(es256_is_low_s(&seal.signature));
    let mut twin = insp.clone();
    if let Some(s) = twin.signature.as_mut() {
        s.signature = es256_twin(&seal.signature).unwrap();
    }
    assert_eq!(twin.verify(), Err(InspectError::SignatureBroken));
}
