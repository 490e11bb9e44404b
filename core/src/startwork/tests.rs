//! Scan-to-start over real codes, a registry and a permit.

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, RevocationSet, SoftwareSigner, TrustStore, TrustedKey,
    issue_credential, issue_machine_label, present,
};
use crate::domain::{
    Licence, LicenceStatus, Machine, MachineKind, MachineStatus, OperationCategory,
    RevocationTarget,
};
use crate::permit::PermitState;
use crate::permit::fixtures::{Fx, t};
use crate::rules::MemoryRegistry;

const CERT: &str = "T370983199001011234";
const MACHINE: &str = "M-370983-0001";
const ORG: &str = "91370983MA3C4X1Y2K";
const SITE: &str = "site-370983-001";

struct World {
    issuer: IssuerKey,
    trust: TrustStore,
    device: SoftwareSigner,
    registry: MemoryRegistry,
    fx: Fx,
}

fn at(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap()
}

fn credential(device: &SoftwareSigner) -> WelderCredential {
    WelderCredential {
        certificate_no: CERT.into(),
        id_number: "11010519491231002X".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2024, 1, 10).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2030, 1, 9).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2027, 1, 9).unwrap(),
        photo_digest: vec![7; 16],
        device_key: device.public_key(),
    }
}

fn label(class: MachineClass) -> MachineLabel {
    MachineLabel {
        machine_id: MACHINE.into(),
        kind: MachineKind::Arc,
        class,
        owner_org: ORG.into(),
        region: 370983,
        issued_at: t(0, 0) - 86_400 * 30,
    }
}

fn world(class: MachineClass) -> World {
    let issuer = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
    let mut trust = TrustStore::new();
    trust.add(TrustedKey::for_key(&issuer, 0, None)).unwrap();
    let device = SoftwareSigner::generate().unwrap();
    let cred = credential(&device);
    let mut registry = MemoryRegistry::default();
    registry.add_licence(Licence {
        certificate_no: cred.certificate_no.clone(),
        id_number: cred.id_number.clone(),
        name: cred.name.clone(),
        categories: cred.categories.clone(),
        issued_on: cred.issued_on,
        expires_on: cred.expires_on,
        next_review_on: cred.next_review_on,
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: Some(ORG.into()),
    });
    let l = label(class);
    registry.add_machine(Machine {
        machine_id: l.machine_id,
        kind: l.kind,
        class: l.class,
        owner_org: l.owner_org,
        region: l.region,
        status: MachineStatus::Active,
    });
    World {
        issuer,
        trust,
        device,
        registry,
        fx: Fx::new("gb30871"),
    }
}

impl World {
    fn machine_text(&self, class: MachineClass) -> String {
        issue_machine_label(&self.issuer, &label(class)).unwrap()
    }

    fn presentation(&self, now: i64) -> String {
        let code = issue_credential(
            &self.issuer,
            &credential(&self.device),
            t(0, 0) - 86_400,
            t(0, 0) - 86_400,
        )
        .unwrap();
        present(&code, &self.device, now).unwrap()
    }

    fn ask(
        &self,
        machine_text: &str,
        welder_text: &str,
        permit: Option<&Permit>,
        now: i64,
    ) -> StartWorkOutcome {
        let revocations = RevocationSet::new();
        let verifier = Verifier::new(&self.trust, &revocations);
        let mut replay = ReplayCache::default();
        let question = ScanToStart {
            machine_text,
            welder_text,
            permit: PermitContext {
                source: &GivenPermit(permit),
                site_id: SITE,
            },
            at: at(now),
        };
        scan_to_start(&question, &verifier, &mut replay, &self.registry)
    }
}

fn codes(outcome: &StartWorkOutcome) -> Vec<&'static str> {
    outcome.decision.findings.iter().map(|f| f.code).collect()
}

#[test]
fn a_live_presentation_a_signed_label_and_an_approved_permit_start_the_machine() {
    let w = world(MachineClass::Mobile);
    let permit = w.fx.in_state(PermitState::Approved);
    let now = t(9, 0);
    let outcome = w.ask(
        &w.machine_text(MachineClass::Mobile),
        &w.presentation(now),
        Some(&permit),
        now,
    );
    assert!(outcome.decision.allowed, "{:?}", codes(&outcome));
    assert!(outcome.decision.denials().next().is_none());
    assert_eq!(outcome.machine_id.as_deref(), Some(MACHINE));
    assert_eq!(outcome.certificate_no.as_deref(), Some(CERT));
    assert_eq!(
        outcome.permit_id.as_deref(),
        Some(permit.content.permit_id.as_str())
    );
    assert!(matches!(outcome.welder, WelderSource::Presentation { .. }));
}

#[test]
fn mobile_work_without_a_permit_is_denied_and_fixed_stations_are_exempt() {
    let w = world(MachineClass::Mobile);
    let now = t(9, 0);
    let outcome = w.ask(
        &w.machine_text(MachineClass::Mobile),
        &w.presentation(now),
        None,
        now,
    );
    assert!(!outcome.decision.allowed);
    assert!(
        outcome.decision.has("permit.missing"),
        "{:?}",
        codes(&outcome)
    );

    let w = world(MachineClass::FixedStation);
    let outcome = w.ask(
        &w.machine_text(MachineClass::FixedStation),
        &w.presentation(now),
        None,
        now,
    );
    assert!(
        !outcome.decision.has("permit.missing"),
        "{:?}",
        codes(&outcome)
    );
    assert!(outcome.decision.allowed, "{:?}", codes(&outcome));
}

#[test]
fn an_expired_permit_denies_after_its_window() {
    let w = world(MachineClass::Mobile);
    let permit = w.fx.in_state(PermitState::Approved);
    let now = t(17, 0);
    let outcome = w.ask(
        &w.machine_text(MachineClass::Mobile),
        &w.presentation(now),
        Some(&permit),
        now,
    );
    assert!(
        outcome.decision.has("permit.expired"),
        "{:?}",
        codes(&outcome)
    );
    assert!(!outcome.decision.allowed);
}

#[test]
fn a_forged_label_and_a_stale_presentation_are_both_reported() {
    let w = world(MachineClass::Mobile);
    let permit = w.fx.in_state(PermitState::Approved);
    let forger = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
    let forged = issue_machine_label(&forger, &label(MachineClass::Mobile)).unwrap();
    let now = t(9, 0);
    let stale = w.presentation(now - 3600);
    let outcome = w.ask(&forged, &stale, Some(&permit), now);
    assert!(!outcome.decision.allowed);
    let found = codes(&outcome);
    assert!(found.contains(&"code.unknown_issuer"), "{found:?}");
    assert!(found.contains(&"code.stale_presentation"), "{found:?}");
    assert_eq!(outcome.machine, MachineSource::Unusable);
}

#[test]
fn a_certificate_url_proves_nothing_and_falls_back_to_the_registry() {
    let w = world(MachineClass::Mobile);
    let permit = w.fx.in_state(PermitState::Approved);
    let now = t(9, 0);
    let url = format!("http://cx.mem-gov.example/zs?no={CERT}");
    let outcome = w.ask(
        &w.machine_text(MachineClass::Mobile),
        &url,
        Some(&permit),
        now,
    );
    assert_eq!(
        outcome.welder,
        WelderSource::UnsignedCertificateNo {
            certificate_no: CERT.into()
        }
    );
    // The registry knows the licence, so the decision stands on it, with a warning that the code
    // itself proved nothing.
    assert!(
        outcome
            .decision
            .findings
            .iter()
            .any(|f| f.severity == Severity::Warn),
        "{:?}",
        codes(&outcome)
    );

    let outcome = w.ask(
        &w.machine_text(MachineClass::Mobile),
        "hello",
        Some(&permit),
        now,
    );
    assert!(!outcome.decision.allowed);
    assert!(outcome.decision.has("code.not_a_welder_code"));
}

#[test]
fn a_revoked_credential_is_denied_even_with_a_good_presentation() {
    let mut w = world(MachineClass::Mobile);
    let permit = w.fx.in_state(PermitState::Approved);
    let now = t(9, 0);
    let presentation = w.presentation(now);
    let id = {
        let revocations = RevocationSet::new();
        let verifier = Verifier::new(&w.trust, &revocations);
        verifier
            .verify(&presentation, now, &mut ReplayCache::default())
            .unwrap()
            .credential_id
            .unwrap()
    };
    w.registry.revoke(RevocationTarget::Credential, &id);
    let outcome = w.ask(
        &w.machine_text(MachineClass::Mobile),
        &presentation,
        Some(&permit),
        now,
    );
    assert!(
        outcome.decision.has("credential.revoked"),
        "{:?}",
        codes(&outcome)
    );
    assert!(!outcome.decision.allowed);
}

#[test]
fn a_machine_label_where_the_welder_code_belongs_is_refused() {
    let w = world(MachineClass::Mobile);
    let now = t(9, 0);
    let text = w.machine_text(MachineClass::Mobile);
    let outcome = w.ask(&text, &text, None, now);
    assert!(!outcome.decision.allowed);
    assert!(
        outcome.decision.has("code.not_a_welder_code"),
        "{:?}",
        codes(&outcome)
    );
}
