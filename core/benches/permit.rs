//! Permit benchmark: what the start-work decision and an inspection spend on the permit.
//! Prints per-operation times for: signature-chain verification of a closed permit (4 × ES256),
//! the start-work permit check, the level decision (escalation scan), and an inspection
//! (assess + seal). Run with `cargo xtask bench permit [ITERATIONS]`.

use std::hint::black_box;
use std::time::Instant;

use chrono::{NaiveDate, NaiveTime};
use weldguard_core::codes::signer::{DeviceSigner, SoftwareSigner};
use weldguard_core::domain::{
    MachineClass, MachineKind, MachineLabel, OperationCategory, WelderCredential,
};
use weldguard_core::inspect::{InspectionInput, Observation, Outcome, ScanOutcome, assess};
use weldguard_core::permit::{
    Action, Actor, Admission, Catalog, ChecklistAnswer, Evidence, GasReading, GeoPoint, NightHours,
    Permit, PermitContent, PermitLevel, Person, PersonRole, ProfileSet, RuleContext,
    SampleEvidence, Section, Site, WorkCalendar, WorkConditions, permit_findings, sample_answers,
    verify, vouch,
};
use weldguard_core::signers::{SignerDirectory, SignerEntry};

const H: i64 = 3600;
// 2026-11-30 00:00 China time.
const DAY: i64 = 1_795_968_000;

fn actor(name: &str, id: &str, role: &str) -> Actor {
    Actor {
        name: name.into(),
        id: id.into(),
        role: role.into(),
    }
}

fn time<F: FnMut()>(label: &str, n: u32, mut f: F) {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let per = t.elapsed().as_secs_f64() / f64::from(n);
    println!("{label:<44} {:>10.2} µs/op  ({n} iterations)", per * 1e6);
}

fn answers(catalog: &Catalog, sections: &[Section], at: i64) -> Vec<ChecklistAnswer> {
    let sample = SampleEvidence::crew(at);
    sample_answers(catalog, sections, &sample)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let catalog = Catalog::builtin().expect("catalog");
    let profiles = ProfileSet::builtin().expect("profiles");
    let profile = profiles
        .select(
            "gb30871",
            NaiveDate::from_ymd_opt(2026, 11, 30).expect("date"),
        )
        .expect("profile")
        .clone();
    let ctx = RuleContext {
        profile: &profile,
        catalog: &catalog,
    };
    let location = GeoPoint::from_degrees(36.182, 116.772);
    let site = Site {
        site_id: "site-370983-001".into(),
        name: "肥城某化工厂三车间".into(),
        profile_id: "gb30871".into(),
        location,
        utc_offset_secs: 8 * 3600,
        night: NightHours {
            start: NaiveTime::from_hms_opt(20, 0, 0).expect("time"),
            end: NaiveTime::from_hms_opt(6, 0, 0).expect("time"),
        },
        approval_radius_m: None,
    };
    let content = PermitContent {
        permit_id: "bench-permit".into(),
        site: site.clone(),
        profile_id: profile.id.clone(),
        profile_version: profile.version.clone(),
        catalog_version: catalog.version.clone(),
        work_description: "更换管线法兰".into(),
        hot_work_point: "管廊".into(),
        hot_work_points: 1,
        location,
        conditions: WorkConditions::default(),
        requested_level: PermitLevel::Level2,
        valid_from: DAY + 8 * H,
        valid_until: DAY + 17 * H,
        applicant: Person {
            name: "张三".into(),
            id: "S-001".into(),
        },
        welders: vec![Person {
            name: "李四".into(),
            id: "T370983199001011234".into(),
        }],
        machines: vec!["M-370983-0001".into()],
        fire_watch: vec![Person {
            name: "王五".into(),
            id: "S-002".into(),
        }],
    };
    let calendar = WorkCalendar::default();
    let signer = SoftwareSigner::generate().expect("key");
    // One device key per person who signs, each enrolled in the directory with their role.
    let keys: Vec<SoftwareSigner> = (0..4)
        .map(|_| SoftwareSigner::generate().expect("key"))
        .collect();
    let enrolled = [
        ("S-001", "张三", "applicant"),
        ("S-003", "孙七", "supervisor"),
        ("S-004", "周八", "unit_head"),
        ("S-002", "王五", "supervisor"),
    ];
    let directory = SignerDirectory::new(
        1,
        DAY,
        keys.iter()
            .zip(enrolled)
            .map(|(key, (id, name, role))| SignerEntry {
                public_key: key.public_key(),
                person_id: id.into(),
                name: name.into(),
                roles: vec![role.into()],
                device_id: format!("dev-{id}"),
                valid_from: 0,
                valid_until: None,
            })
            .collect(),
    );
    let mut p =
        Permit::draft(content, &ctx, &actor("张三", "S-001", "applicant"), DAY).expect("draft");
    // The approver signs with the person present (approvals must record it).
    let approver_present = weldguard_core::codes::PresenceConfirmed(&keys[2]);
    let steps: Vec<Action<'_>> = vec![
        Action::Submit {
            by: actor("张三", "S-001", "applicant"),
            signer: &keys[0],
            calendar: &calendar,
            at: DAY + 7 * H,
            location: None,
        },
        Action::SiteCheck {
            by: actor("孙七", "S-003", "supervisor"),
            signer: &keys[1],
            answers: answers(
                &catalog,
                &[Section::Prohibition, Section::Must],
                DAY + 7 * H,
            ),
            at: DAY + 7 * H + 600,
            location: Some(location),
        },
        Action::Approve {
            by: actor("周八", "S-004", "unit_head"),
            signer: &approver_present,
            at: DAY + 7 * H + 1200,
            location: Some(location),
        },
        Action::RecordGas {
            reading: GasReading {
                taken_at: DAY + 8 * H + 3000,
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: "动火点".into(),
                analyst: "赵六".into(),
            },
            by: None,
        },
        Action::Start {
            at: DAY + 9 * H,
            continuous_monitoring: false,
            by: None,
        },
        Action::Complete { at: DAY + 12 * H },
    ];
    let mut versions = vec![p.clone()];
    for a in steps {
        p.apply(&ctx, a).expect("step");
        versions.push(p.clone());
    }
    let approved = p.clone();
    let mut post = answers(&catalog, &[Section::PostWork], 0);
    for a in post.iter_mut() {
        for e in a.evidence.iter_mut() {
            if let Evidence::Person { role, .. } = e {
                *role = PersonRole::FireWatch;
            }
        }
    }
    p.apply(
        &ctx,
        Action::Close {
            by: actor("王五", "S-002", "supervisor"),
            signer: &keys[3],
            post_work: post,
            at: DAY + 13 * H,
            location: None,
        },
    )
    .expect("close");

    println!(
        "permit benchmark ({} bytes as JSON)",
        serde_json::to_vec(&p).map(|v| v.len()).unwrap_or(0)
    );
    time("verify closed permit (4 signatures)", n, || {
        black_box(verify(black_box(&p))).expect("verifies");
    });
    time(
        "who signed: closed permit against the directory",
        n * 10,
        || {
            black_box(vouch(black_box(&p), &profiles, Some(&directory))).expect("vouched");
        },
    );
    // What the platform adds per pushed step: the replay of the action under the rules and the
    // directory check (docs/adr/0014), here for the approval (draft, submit, check, approve).
    let (checked, with_approval) = (&versions[2], &versions[3]);
    let admission = Admission {
        profiles: &profiles,
        catalog: &catalog,
        calendar: &calendar,
        directory: &directory,
        now: DAY + 30 * H,
        skew_secs: 600,
    };
    time(
        "platform admission of an approval (replay + directory)",
        n,
        || {
            black_box(admission.admit(black_box(checked), black_box(with_approval)))
                .expect("admitted");
        },
    );
    time("start-work permit check", n * 50, || {
        black_box(permit_findings(
            Some(black_box(&approved)),
            "T370983199001011234",
            "M-370983-0001",
            MachineClass::Mobile,
            "site-370983-001",
            DAY + 10 * H,
        ));
    });
    time("level decision, 72 h window", n * 10, || {
        black_box(profile.decide_level(
            &site,
            &calendar,
            PermitLevel::Level2,
            DAY,
            DAY + 72 * H,
            &WorkConditions::default(),
        ))
        .expect("decision");
    });
    let credential = WelderCredential {
        certificate_no: "T370983199001011234".into(),
        id_number: "370983199001011234".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).expect("date"),
        expires_on: NaiveDate::from_ymd_opt(2028, 3, 1).expect("date"),
        next_review_on: NaiveDate::from_ymd_opt(2028, 3, 1).expect("date"),
        photo_digest: vec![1; 32],
        device_key: vec![2; 33],
    };
    let label = MachineLabel {
        machine_id: "M-370983-0001".into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C000000".into(),
        region: 370983,
        issued_at: 1_717_000_000,
    };
    time("inspection: assess + seal", n, || {
        let input = InspectionInput {
            inspection_id: "bench".into(),
            inspector: actor("刘", "G-1", "inspector"),
            site_id: "site-370983-001".into(),
            location: Some(location),
            at: DAY + 10 * H,
            today: NaiveDate::from_ymd_opt(2026, 11, 30).expect("date"),
            welder: ScanOutcome::Verified {
                claims: credential.clone(),
            },
            machine: ScanOutcome::Verified {
                claims: label.clone(),
            },
            permit: Some(&approved),
            signers: Some(&directory),
            observations: catalog
                .items
                .iter()
                .filter(|i| i.section != Section::PostWork)
                .map(|i| Observation {
                    item_id: i.id.clone(),
                    outcome: Outcome::Compliant,
                    note: String::new(),
                    photos: vec![],
                })
                .collect(),
            extra_violations: vec![],
            photos: vec![],
            notes: String::new(),
        };
        let mut insp = assess(input, &catalog).expect("assess");
        insp.sign(&signer).expect("sign");
        black_box(insp);
    });
}
