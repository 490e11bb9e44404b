//! The permit walk-through through the exported FFI methods only, over a real SQLite file, with a
//! software [`PersonSigner`] standing in for the phone's key store: a whole walk from draft to
//! closed, approval refused without presence, out-of-order steps refused, and the fire watch in
//! `due` after the work.

use std::sync::Arc;

use chrono::TimeZone;

use super::*;
use crate::signing::{SignPurpose, SignRequest, SignedBytes};
use weldguard_core::codes::{DeviceSigner, SoftwareSigner};
use weldguard_core::permit::{Catalog, SampleEvidence, Section, sample_answers};
use weldguard_core::store::test_support::TempDir;

const ID: &str = "0193a1b2-0000-7000-8000-0000000f0001";
const M: i64 = 60;

/// 2026-11-30 (a Monday), China time.
fn t(h: u32, m: u32) -> i64 {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 30, h, m, 0)
        .unwrap()
        .timestamp()
}

/// A software key standing in for the phone's key store; answers `user_present` as configured and
/// keeps the purposes it was asked to sign for.
struct PhoneSigner {
    key: SoftwareSigner,
    user_present: bool,
    asked: std::sync::Mutex<Vec<(SignPurpose, bool)>>,
}

impl PhoneSigner {
    fn new(user_present: bool) -> Arc<Self> {
        Arc::new(Self {
            key: SoftwareSigner::generate().unwrap(),
            user_present,
            asked: std::sync::Mutex::new(Vec::new()),
        })
    }
}

impl PersonSigner for PhoneSigner {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key()
    }

    fn sign(&self, request: SignRequest) -> Result<SignedBytes, WeldGuardError> {
        self.asked
            .lock()
            .unwrap()
            .push((request.purpose, request.require_presence));
        Ok(SignedBytes {
            signature: self.key.sign(&request.message)?,
            user_present: self.user_present,
        })
    }
}

struct Fx {
    _dir: TempDir,
    device: Arc<Device>,
}

fn person(name: &str, id: &str) -> PermitPerson {
    PermitPerson {
        name: name.into(),
        id: id.into(),
    }
}

fn by(name: &str, id: &str) -> PermitActorInput {
    PermitActorInput {
        name: name.into(),
        id: id.into(),
        role: None,
    }
}

fn site() -> PermitLocation {
    PermitLocation {
        latitude: 36.182,
        longitude: 116.772,
    }
}

/// Every item of `sections` answered with the evidence it asks for, as a shell would send them.
fn answers_for(sections: &[Section], at: i64) -> Vec<ChecklistAnswerInput> {
    let catalog = Catalog::builtin().unwrap();
    sample_answers(&catalog, sections, &SampleEvidence::crew(at))
        .into_iter()
        .map(|a| ChecklistAnswerInput {
            item_id: a.item_id,
            not_applicable_reason: match a.value {
                domain_permit::AnswerValue::Confirmed => None,
                domain_permit::AnswerValue::NotApplicable { reason } => Some(reason),
            },
            evidence: a
                .evidence
                .into_iter()
                .map(|e| match e {
                    domain_permit::Evidence::Photo { sha256 } => {
                        ChecklistEvidence::Photo { sha256 }
                    }
                    domain_permit::Evidence::Number { key, value } => {
                        ChecklistEvidence::Number { key, value }
                    }
                    domain_permit::Evidence::Person { role: r, name, id } => {
                        ChecklistEvidence::Person {
                            role: r.into(),
                            name,
                            id,
                        }
                    }
                    domain_permit::Evidence::GasAnalysis { reading } => {
                        ChecklistEvidence::GasAnalysis {
                            reading: ChecklistGasReading {
                                taken_at: reading.taken_at,
                                lel_centi_pct: reading.lel_centi_pct,
                                concentration_centi_pct: reading.concentration_centi_pct,
                                point: reading.point,
                                analyst: reading.analyst,
                            },
                        }
                    }
                })
                .collect(),
        })
        .collect()
}

impl Fx {
    fn new() -> Fx {
        let dir = TempDir::new();
        let db = dir.path().join("profile.db").display().to_string();
        let device = Device::open(db).unwrap();
        Fx { _dir: dir, device }
    }

    fn draft(&self) -> PermitView {
        self.device
            .permit_draft(self.draft_input(), t(6, 40), Lang::En)
            .unwrap()
    }

    fn submitted_and_checked(&self) {
        self.draft();
        self.device
            .permit_submit(
                ID.into(),
                by("张三", "S-001"),
                None,
                PhoneSigner::new(false),
                t(7, 0),
                Lang::En,
            )
            .unwrap();
        self.device
            .permit_site_check(
                ID.into(),
                by("孙七", "S-003"),
                answers_for(&[Section::Prohibition, Section::Must], t(7, 15)),
                Some(site()),
                PhoneSigner::new(false),
                t(7, 20),
                Lang::En,
            )
            .unwrap();
    }

    /// The permit as stored and its number of saved steps.
    fn stored(&self) -> (PermitDetail, usize) {
        let d = self
            .device
            .permit_show(ID.into(), t(7, 0), Lang::En)
            .unwrap();
        let n = d.steps.len();
        (d, n)
    }
}

#[test]
fn a_whole_walk_from_draft_to_closed_through_the_ffi() {
    let f = Fx::new();
    let v = f.draft();
    assert_eq!(v.state, PermitState::Draft);
    assert!(v.action(PermitAction::Submit).unwrap().allowed);
    assert_eq!(v.step.as_ref().unwrap().action, None);
    assert_eq!(v.step.as_ref().unwrap().action_code, "draft");

    let applicant = PhoneSigner::new(false);
    let v = f
        .device
        .permit_submit(
            ID.into(),
            by("张三", "S-001"),
            None,
            applicant.clone(),
            t(7, 0),
            Lang::En,
        )
        .unwrap();
    assert_eq!(v.state, PermitState::Submitted);
    assert_eq!(
        applicant.asked.lock().unwrap().as_slice(),
        &[(SignPurpose::PermitSubmit, false)]
    );
    assert_eq!(v.signatures[0].step, PermitSignedStep::Submit);
    assert_eq!(v.signatures[0].user_present, Some(false));
    assert_eq!(v.step.as_ref().unwrap().action, Some(PermitAction::Submit));

    // A preview of the answers as they are filled in: every item in order lets the check go.
    let answers = answers_for(&[Section::Prohibition, Section::Must], t(7, 15));
    let v = f
        .device
        .permit_preview_answers(ID.into(), answers.clone(), t(7, 18), Lang::Zh)
        .unwrap();
    assert!(v.action(PermitAction::SiteCheck).unwrap().allowed);
    assert_eq!(v.state_name.text, "已提交");
    assert!(v.step.is_none());

    let v = f
        .device
        .permit_site_check(
            ID.into(),
            by("孙七", "S-003"),
            answers,
            Some(site()),
            PhoneSigner::new(false),
            t(7, 20),
            Lang::En,
        )
        .unwrap();
    assert_eq!(v.state, PermitState::Checked);
    let approve = v.action(PermitAction::Approve).unwrap();
    assert!(approve.allowed);
    assert!(approve.needs.contains(&PermitNeed::Presence));

    let approver = PhoneSigner::new(true);
    let v = f
        .device
        .permit_approve(
            ID.into(),
            by("周八", "S-004"),
            Some(site()),
            approver.clone(),
            t(7, 40),
            Lang::En,
        )
        .unwrap();
    assert_eq!(v.state, PermitState::Approved);
    assert_eq!(v.signatures[2].user_present, Some(true));
    assert_eq!(
        approver.asked.lock().unwrap().as_slice(),
        &[(SignPurpose::PermitApprove, true)]
    );
    // No gas analysis yet: starting is not allowed, and the view says why in both languages.
    let start = v.action(PermitAction::Start).unwrap();
    assert!(!start.allowed);
    let why = start
        .why_not
        .iter()
        .find(|w| w.code == "permit.rule.gas_analysis_missing")
        .unwrap();
    assert!(why.blocking);
    assert_eq!(why.text, why.en);
    assert!(!why.zh.is_empty());

    // The site code, signed with the approver's key, scans back and matches.
    let code = f
        .device
        .permit_site_code(ID.into(), approver.clone(), t(7, 45))
        .unwrap();
    assert!(code.text.starts_with("WG1:"));
    let scanned = f.device.permit_scan_code(code.text, Lang::En).unwrap();
    assert!(scanned.valid);
    assert_eq!(scanned.matches_stored, Some(true));
    assert_eq!(scanned.claims.unwrap().level, PermitLevel::Level2);

    let v = f
        .device
        .permit_record_gas(
            ID.into(),
            PermitGasInput {
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: "动火点".into(),
                analyst: "赵六".into(),
                taken_at: None,
            },
            t(8, 55),
            Lang::En,
        )
        .unwrap();
    let gas = v
        .deadlines
        .iter()
        .find(|d| d.kind == PermitDeadlineKind::GasTestValidUntil)
        .unwrap();
    assert_eq!(gas.at, t(8, 55) + 30 * M);
    assert!(!gas.overdue);
    let v = f
        .device
        .permit_start(ID.into(), false, None, t(9, 0), Lang::En)
        .unwrap();
    assert_eq!(v.state, PermitState::Active);
    let v = f
        .device
        .permit_suspend(ID.into(), "午休".into(), t(10, 0), Lang::En)
        .unwrap();
    assert_eq!(v.state, PermitState::Suspended);
    assert!(
        v.deadlines
            .iter()
            .any(|d| d.kind == PermitDeadlineKind::GasRetestAfterInterruption)
    );
    f.device
        .permit_resume(ID.into(), t(10, 10), Lang::En)
        .unwrap();
    let v = f
        .device
        .permit_complete(ID.into(), t(12, 0), Lang::En)
        .unwrap();
    assert_eq!(v.state, PermitState::Completed);
    assert!(!v.action(PermitAction::Close).unwrap().allowed);

    // due after completion: the fire watch, not yet overdue, then overdue.
    let due = f.device.due(t(12, 5), Lang::Zh).unwrap();
    assert_eq!(due[0].kind, DueKind::FireWatch);
    assert_eq!(due[0].permit_id.as_deref(), Some(ID));
    assert_eq!(due[0].due_at, t(12, 30));
    assert!(!due[0].overdue);
    assert!(due[0].text.contains("监护"));
    assert!(f.device.due_within(t(12, 31), 0, Lang::En).unwrap()[0].overdue);

    let closer = PhoneSigner::new(false);
    let v = f
        .device
        .permit_close(
            ID.into(),
            by("王五", "S-002"),
            answers_for(&[Section::PostWork], t(12, 30)),
            Some(site()),
            closer.clone(),
            t(12, 30),
            Lang::En,
        )
        .unwrap();
    assert_eq!(v.state, PermitState::Closed);
    assert_eq!(v.signatures.len(), 4);
    assert!(v.actions.is_empty());
    assert_eq!(
        closer.asked.lock().unwrap().as_slice(),
        &[(SignPurpose::PermitClose, false)]
    );
    assert!(f.device.due(t(13, 0), Lang::En).unwrap().is_empty());

    let shown = f.device.permit_show(ID.into(), t(13, 0), Lang::Zh).unwrap();
    assert_eq!(shown.steps.len(), 10);
    assert_eq!(shown.view.state_name.text, "已关闭");
    assert!(shown.permit_json.contains(ID));
    let closed = f
        .device
        .permit_list(Some(PermitState::Closed), t(13, 0), Lang::En)
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert!(
        f.device
            .permit_list(Some(PermitState::Draft), t(13, 0), Lang::En)
            .unwrap()
            .is_empty()
    );
    // No signer directory synced here: verify answers invalid with the reason, not an error.
    let checked = f.device.permit_verify(ID.into(), Lang::En).unwrap();
    assert!(!checked.valid);
    assert_eq!(checked.signatures.len(), 4);
    assert_eq!(checked.reason.unwrap().code, "permit.directory_missing");
}

#[test]
fn approval_without_presence_is_a_signing_error_and_saves_nothing() {
    let f = Fx::new();
    f.submitted_and_checked();
    let before = f.stored();
    let absent = PhoneSigner::new(false);
    let e = f
        .device
        .permit_approve(
            ID.into(),
            by("周八", "S-004"),
            Some(site()),
            absent.clone(),
            t(7, 40),
            Lang::En,
        )
        .unwrap_err();
    match &e {
        WeldGuardError::Signing {
            code,
            message_zh,
            message_en,
        } => {
            assert_eq!(code, "permit.presence_required");
            assert!(message_zh.contains("本人"));
            assert!(message_en.contains("presence"));
        }
        other => panic!("expected a signing error, got {other:?}"),
    }
    // The key store was asked for presence.
    assert_eq!(
        absent.asked.lock().unwrap().as_slice(),
        &[(SignPurpose::PermitApprove, true)]
    );
    assert_eq!(f.stored(), before);
}

/// A key store that fails (the user cancelled the prompt): a typed signing error, nothing saved.
struct Cancelled(Vec<u8>);

impl PersonSigner for Cancelled {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _request: SignRequest) -> Result<SignedBytes, WeldGuardError> {
        Err(WeldGuardError::Signing {
            code: "signer.cancelled".into(),
            message_zh: "用户取消".into(),
            message_en: "cancelled by the user".into(),
        })
    }
}

#[test]
fn steps_out_of_order_or_with_bad_input_are_typed_errors_and_save_nothing() {
    let f = Fx::new();
    f.draft();
    let before = f.stored();
    let invalid = |e: WeldGuardError| match e {
        WeldGuardError::InvalidInput { code, .. } => code,
        other => panic!("expected invalid input, got {other:?}"),
    };
    // Approving, starting, completing and closing a draft.
    let e = f
        .device
        .permit_approve(
            ID.into(),
            by("周八", "S-004"),
            Some(site()),
            PhoneSigner::new(true),
            t(7, 40),
            Lang::En,
        )
        .unwrap_err();
    assert_eq!(invalid(e), "permit.transition_refused");
    let e = f
        .device
        .permit_start(ID.into(), false, None, t(9, 0), Lang::En)
        .unwrap_err();
    assert_eq!(invalid(e), "permit.transition_refused");
    let e = f
        .device
        .permit_complete(ID.into(), t(9, 0), Lang::En)
        .unwrap_err();
    assert_eq!(invalid(e), "permit.transition_refused");
    let e = f
        .device
        .permit_preview_answers(ID.into(), Vec::new(), t(7, 0), Lang::En)
        .unwrap_err();
    assert_eq!(invalid(e), "permit.transition_refused");
    // Hostile input: a location out of range, an empty person, an unknown permit, an empty and a
    // huge reason, a gas reading with no analyst, a malformed permit code.
    let e = f
        .device
        .permit_submit(
            ID.into(),
            by("张三", "S-001"),
            Some(PermitLocation {
                latitude: f64::NAN,
                longitude: 0.0,
            }),
            PhoneSigner::new(false),
            t(7, 0),
            Lang::En,
        )
        .unwrap_err();
    assert_eq!(invalid(e), "input.location");
    let e = f
        .device
        .permit_cancel(ID.into(), by("", ""), "x".into(), t(7, 0), Lang::En)
        .unwrap_err();
    assert_eq!(invalid(e), "input.person");
    let e = f
        .device
        .permit_resume("no-such-permit".into(), t(7, 0), Lang::En)
        .unwrap_err();
    assert_eq!(invalid(e), "permit_store.not_found");
    let e = f
        .device
        .permit_record_gas(
            ID.into(),
            PermitGasInput {
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: "x".into(),
                analyst: " ".into(),
                taken_at: None,
            },
            t(7, 0),
            Lang::En,
        )
        .unwrap_err();
    assert_eq!(invalid(e), "input.gas");
    // A key store that fails is a signing error.
    let e = f
        .device
        .permit_submit(
            ID.into(),
            by("张三", "S-001"),
            None,
            Arc::new(Cancelled(vec![2; 33])),
            t(7, 0),
            Lang::En,
        )
        .unwrap_err();
    assert!(matches!(e, WeldGuardError::Signing { .. }), "{e:?}");
    assert_eq!(f.stored(), before);
    // A draft under the same id again, and an empty site.
    let mut again = f.draft_input();
    again.site_id = String::new();
    let e = f
        .device
        .permit_draft(again, t(6, 50), Lang::En)
        .unwrap_err();
    assert_eq!(invalid(e), "input.empty");
    let huge = "码".repeat(100_000);
    let scan = f.device.permit_scan_code(huge, Lang::En).unwrap();
    assert!(!scan.valid);
    assert!(scan.reason.is_some());
    let scan = f.device.permit_scan_code(String::new(), Lang::Zh).unwrap();
    assert!(!scan.valid);
    assert_eq!(f.stored(), before);
}

impl Fx {
    fn draft_input(&self) -> PermitDraftInput {
        PermitDraftInput {
            site_id: "site-370983-001".into(),
            site_name: "肥城某化工厂三车间".into(),
            rules: "gb30871".into(),
            site_location: site(),
            night: None,
            approval_radius_m: None,
            work: "更换3号储罐出口管线法兰".into(),
            hot_work_point: "3号储罐东侧管廊".into(),
            hot_work_points: 1,
            level: PermitLevel::Level2,
            valid_from: t(8, 0),
            valid_until: t(17, 0),
            applicant: person("张三", "S-001"),
            welders: vec![person("李四", "T370983199001011234")],
            machines: vec!["M-370983-0001".into()],
            fire_watch: vec![person("王五", "S-002")],
            conditions: PermitConditions::default(),
            permit_id: Some(ID.into()),
        }
    }
}

/// Answers built only from what the FFI lists, as a shell's checklist screen does: every item of
/// `sections` confirmed with the evidence it asks for.
fn answers_from_checklist(sections: &[ChecklistSection], gas_at: i64) -> Vec<ChecklistAnswerInput> {
    let checklist = permit_checklist(Lang::En).unwrap();
    let ChecklistEvidenceRequirement::Number {
        key: distance_key, ..
    } = checklist.machine_distance.clone()
    else {
        panic!("the machine distance is a number");
    };
    let mut answers: Vec<ChecklistAnswerInput> = checklist
        .items
        .into_iter()
        .filter(|i| sections.contains(&i.section))
        .map(|item| ChecklistAnswerInput {
            item_id: item.id,
            not_applicable_reason: None,
            evidence: item
                .evidence
                .into_iter()
                .map(|req| match req {
                    ChecklistEvidenceRequirement::Photo => ChecklistEvidence::Photo {
                        sha256: vec![9; 32],
                    },
                    ChecklistEvidenceRequirement::Number { key, min, max, .. } => {
                        let value = min.unwrap_or(0) + 1;
                        ChecklistEvidence::Number {
                            key,
                            value: max.map_or(value, |m| value.min(m)),
                        }
                    }
                    ChecklistEvidenceRequirement::Person { role } => {
                        let (name, id) = if role == ChecklistPersonRole::Welder {
                            ("李四", "T370983199001011234")
                        } else {
                            ("王五", "S-002")
                        };
                        ChecklistEvidence::Person {
                            role,
                            name: name.into(),
                            id: id.into(),
                        }
                    }
                    ChecklistEvidenceRequirement::GasAnalysis => ChecklistEvidence::GasAnalysis {
                        reading: ChecklistGasReading {
                            taken_at: gas_at,
                            lel_centi_pct: 500,
                            concentration_centi_pct: 10,
                            point: "动火点".into(),
                            analyst: "赵六".into(),
                        },
                    },
                })
                .collect(),
        })
        .collect();
    // The machine stands 6 m from the hot-work point.
    if let Some(first) = answers.iter_mut().find(|a| a.item_id == "must.01") {
        first.evidence.push(ChecklistEvidence::Number {
            key: distance_key,
            value: 6,
        });
    }
    answers
}

#[test]
fn the_checklist_lists_every_item_and_answers_built_from_it_pass_the_preview() {
    let checklist = permit_checklist(Lang::Zh).unwrap();
    assert!(!checklist.version.is_empty());
    let count = |s| checklist.items.iter().filter(|i| i.section == s).count();
    assert_eq!(count(ChecklistSection::Prohibition), 10);
    assert_eq!(count(ChecklistSection::Must), 9);
    assert!(count(ChecklistSection::PostWork) > 0);
    assert!(checklist.items.iter().all(|i| i.text.text == i.text.zh));
    assert!(
        checklist
            .items
            .iter()
            .any(|i| i.evidence.contains(&ChecklistEvidenceRequirement::Photo))
    );

    let f = Fx::new();
    f.draft();
    f.device
        .permit_submit(
            ID.into(),
            by("张三", "S-001"),
            None,
            PhoneSigner::new(false),
            t(7, 0),
            Lang::En,
        )
        .unwrap();
    let answers = answers_from_checklist(
        &[ChecklistSection::Prohibition, ChecklistSection::Must],
        t(7, 15),
    );
    let v = f
        .device
        .permit_preview_answers(ID.into(), answers.clone(), t(7, 18), Lang::En)
        .unwrap();
    let check = v.action(PermitAction::SiteCheck).unwrap();
    assert!(check.allowed, "{:?}", check.why_not);
    // One item short: the preview says which, and the approval waits for it.
    let v = f
        .device
        .permit_preview_answers(ID.into(), answers[1..].to_vec(), t(7, 18), Lang::En)
        .unwrap();
    let check = v.action(PermitAction::SiteCheck).unwrap();
    assert!(!check.allowed);
    assert!(
        check
            .why_not
            .iter()
            .any(|w| w.code == "permit.rule.checklist" && w.en.contains(&answers[0].item_id)),
        "{:?}",
        check.why_not
    );
    assert!(!v.action(PermitAction::Approve).unwrap().allowed);
}
