//! Test fixtures for inspections (a welder credential, a machine label, a whole inspection input),
//! shared by this crate's tests and, through the `test-support` feature, by the device core's
//! tests. Never compiled into a phone or server build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use super::*;
use crate::domain::{MachineKind, OperationCategory};
use crate::permit::fixtures::{Fx, actor, t};

pub fn credential() -> WelderCredential {
    WelderCredential {
        certificate_no: "T370983199001011234".into(),
        id_number: "370983199001011234".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
        photo_digest: vec![1; 32],
        device_key: vec![2; 33],
    }
}

pub fn label(class: MachineClass) -> MachineLabel {
    MachineLabel {
        machine_id: "M-370983-0001".into(),
        kind: MachineKind::Arc,
        class,
        owner_org: "91370983MA3C000000".into(),
        region: 370983,
        issued_at: 1_717_000_000,
    }
}

pub fn input<'a>(fx: &Fx, permit: Option<&'a Permit>) -> InspectionInput<'a> {
    let observations = fx
        .catalog
        .items
        .iter()
        .filter(|i| i.section != Section::PostWork)
        .map(|i| Observation {
            item_id: i.id.clone(),
            outcome: Outcome::Compliant,
            note: String::new(),
            photos: Vec::new(),
        })
        .collect();
    InspectionInput {
        inspection_id: "0193a1b2-0000-7000-8000-0000000000aa".into(),
        inspector: actor("网格员刘", "G-0042", "inspector"),
        site_id: fx.content().site.site_id,
        location: Some(fx.content().location),
        at: t(10, 0),
        today: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        welder: ScanOutcome::Verified {
            claims: credential(),
        },
        machine: ScanOutcome::Verified {
            claims: label(MachineClass::Mobile),
        },
        permit,
        // The fixture's signers, enrolled (leaked: a test's input lives as long as it needs).
        signers: Some(Box::leak(Box::new(fx.directory()))),
        observations,
        extra_violations: Vec::new(),
        photos: vec![vec![9; 32]],
        notes: String::new(),
    }
}
