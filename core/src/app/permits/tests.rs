//! The permit services over a real SQLite file: a whole walk, refusals that save nothing, the
//! approval's presence, the view's allowed actions and deadlines, and the due list.

use super::*;
use crate::app::due::{DueKind, due};
use crate::app::signing::SoftwarePersonSigner;
use crate::permit::Evidence;
use crate::store::test_support::TempDir;

const M: i64 = 60;

/// 2026-11-30 (a Monday), China time.
fn t(h: u32, m: u32) -> i64 {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 30, h, m, 0)
        .unwrap()
        .timestamp()
}

const ID: &str = "0193a1b2-0000-7000-8000-0000000a0001";

struct Fx {
    _dir: TempDir,
    device: Device,
    applicant: SoftwarePersonSigner,
    checker: SoftwarePersonSigner,
    approver: SoftwarePersonSigner,
    approver_absent: SoftwarePersonSigner,
    closer: SoftwarePersonSigner,
}

fn key() -> SoftwareSigner {
    SoftwareSigner::generate().unwrap()
}

impl Fx {
    fn new() -> Fx {
        let dir = TempDir::new();
        let device = Device::open(dir.path().join("profile.db")).unwrap();
        let approver_key = key();
        let same = SoftwareSigner::from_secret(&approver_key.secret()).unwrap();
        Fx {
            _dir: dir,
            device,
            applicant: SoftwarePersonSigner::new(key(), false),
            checker: SoftwarePersonSigner::new(key(), false),
            approver: SoftwarePersonSigner::new(approver_key, true),
            approver_absent: SoftwarePersonSigner::new(same, false),
            closer: SoftwarePersonSigner::new(key(), false),
        }
    }

    fn location() -> GeoPoint {
        GeoPoint::from_degrees(36.182, 116.772)
    }

    fn draft(&self) -> PermitView {
        draft(
            &self.device,
            t(6, 40),
            Lang::En,
            DraftInput {
                site_id: "site-370983-001".into(),
                site_name: "肥城某化工厂三车间".into(),
                rules: "gb30871".into(),
                site_location: Self::location(),
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
                conditions: WorkConditions::default(),
                permit_id: Some(ID.into()),
            },
        )
        .unwrap()
    }

    fn submit(&self) -> PermitView {
        submit(
            &self.device,
            t(7, 0),
            Lang::En,
            None,
            ID,
            by("张三", "S-001"),
            None,
            &self.applicant,
        )
        .unwrap()
    }

    fn answers(&self) -> Vec<ChecklistAnswer> {
        let catalog = catalog().unwrap();
        sample_answers(
            catalog,
            &[Section::Prohibition, Section::Must],
            &SampleEvidence::crew(t(7, 15)),
        )
    }

    fn check(&self) -> PermitView {
        site_check(
            &self.device,
            t(7, 20),
            Lang::En,
            Some(Self::location()),
            ID,
            by("孙七", "S-003"),
            self.answers(),
            &self.checker,
        )
        .unwrap()
    }

    fn approve(&self, signer: &dyn PersonSigner) -> Result<PermitView, AppError> {
        approve(
            &self.device,
            t(7, 40),
            Lang::En,
            Some(Self::location()),
            ID,
            by("周八", "S-004"),
            signer,
        )
    }

    fn gas(&self, at: i64) -> PermitView {
        record_gas(
            &self.device,
            at,
            Lang::En,
            ID,
            GasInput {
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: "动火点".into(),
                analyst: "赵六".into(),
                taken_at: None,
            },
        )
        .unwrap()
    }

    fn post_work(&self) -> Vec<ChecklistAnswer> {
        crate::permit::fixtures::post_work_answers()
    }

    fn close(&self, at: i64) -> Result<PermitView, AppError> {
        close(
            &self.device,
            at,
            Lang::En,
            Some(Self::location()),
            ID,
            by("王五", "S-002"),
            self.post_work(),
            &self.closer,
        )
    }

    fn stored(&self) -> (Permit, usize) {
        let p = self.device.store().permit(ID).unwrap().unwrap();
        let steps = self.device.store().permit_steps(ID).unwrap().len();
        (p, steps)
    }
}

fn person(name: &str, id: &str) -> Person {
    Person {
        name: name.into(),
        id: id.into(),
    }
}

fn by(name: &str, id: &str) -> ActorInput {
    ActorInput {
        name: name.into(),
        id: id.into(),
        role: None,
    }
}

fn code(e: AppError) -> &'static str {
    e.code()
}

#[test]
fn a_whole_walk_from_draft_to_closed() {
    let f = Fx::new();
    let v = f.draft();
    assert_eq!(v.state, PermitState::Draft);
    assert!(v.allows(ActionKind::Submit));
    assert!(v.step.is_some());
    let v = f.submit();
    assert_eq!(v.state, PermitState::Submitted);
    assert_eq!(v.signatures.len(), 1);
    assert_eq!(v.signatures[0].format, "weldguard/permit-sig/2");
    assert_eq!(v.signatures[0].user_present, Some(false));
    let v = f.check();
    assert_eq!(v.state, PermitState::Checked);
    assert!(v.allows(ActionKind::Approve));
    assert!(
        v.action(ActionKind::Approve)
            .unwrap()
            .needs
            .contains(&Need::Presence)
    );
    let v = f.approve(&f.approver).unwrap();
    assert_eq!(v.state, PermitState::Approved);
    assert_eq!(v.signatures[2].user_present, Some(true));
    // Before any gas analysis, starting is not allowed, and the view says why.
    let start_entry = v.action(ActionKind::Start).unwrap();
    assert!(!start_entry.allowed);
    assert!(
        start_entry
            .why_not
            .iter()
            .any(|w| w.code == FindingCode::GasAnalysisMissing)
    );
    let v = f.gas(t(8, 55));
    let gas_deadline = v
        .deadlines
        .iter()
        .find(|d| d.kind == DeadlineKind::GasTestValidUntil)
        .unwrap();
    assert_eq!(gas_deadline.at, t(8, 55) + 30 * M);
    let v = start(&f.device, t(9, 0), Lang::En, ID, false, None).unwrap();
    assert_eq!(v.state, PermitState::Active);
    let v = suspend(&f.device, t(10, 0), Lang::En, ID, "午休".into()).unwrap();
    assert_eq!(v.state, PermitState::Suspended);
    assert!(
        v.deadlines
            .iter()
            .any(|d| d.kind == DeadlineKind::GasRetestAfterInterruption)
    );
    let v = resume(&f.device, t(10, 10), Lang::En, ID).unwrap();
    assert_eq!(v.state, PermitState::Active);
    let v = complete(&f.device, t(12, 0), Lang::En, ID).unwrap();
    assert_eq!(v.state, PermitState::Completed);
    let watch = v
        .deadlines
        .iter()
        .find(|d| d.kind == DeadlineKind::FireWatchUntil)
        .unwrap();
    assert_eq!(watch.at, t(12, 30));
    // Closing before the watch ends is refused and saves nothing.
    let (before, steps) = f.stored();
    assert!(!v.allows(ActionKind::Close));
    assert_eq!(code(f.close(t(12, 10)).unwrap_err()), "permit.rule_blocked");
    assert_eq!(f.stored(), (before, steps));
    let v = f.close(t(12, 30)).unwrap();
    assert_eq!(v.state, PermitState::Closed);
    assert_eq!(v.signatures.len(), 4);
    assert!(v.actions.is_empty());
    let shown = show(&f.device, t(13, 0), Lang::Zh, ID).unwrap();
    assert_eq!(shown.steps.len(), 10);
    assert_eq!(shown.view.state_name.text, "已关闭");
    assert_eq!(
        list(&f.device, t(13, 0), Lang::En, Some(PermitState::Closed))
            .unwrap()
            .len(),
        1
    );
    // No signer directory synced: nobody is vouched for, and verify says so without failing.
    let checked = verify(&f.device, Lang::En, ID).unwrap();
    assert!(!checked.valid);
    assert_eq!(checked.signatures.len(), 4);
    assert_eq!(checked.reason.unwrap().code, "permit.directory_missing");
}

#[test]
fn a_failed_must_item_blocks_the_check_and_the_approval_and_the_view_says_why() {
    let f = Fx::new();
    f.draft();
    f.submit();
    let mut answers = f.answers();
    // A must item (九必须) loses the photo it requires.
    let must = answers
        .iter_mut()
        .find(|a| {
            a.item_id.starts_with("must.")
                && a.evidence
                    .iter()
                    .any(|e| matches!(e, Evidence::Photo { .. }))
        })
        .unwrap();
    let item = must.item_id.clone();
    must.evidence.clear();
    let v = preview_answers(&f.device, t(7, 18), Lang::En, ID, answers.clone()).unwrap();
    let check = v.action(ActionKind::SiteCheck).unwrap();
    assert!(!check.allowed);
    assert!(
        check
            .why_not
            .iter()
            .any(|w| w.code == FindingCode::Checklist && w.message_en.contains(&item)),
        "{:?}",
        check.why_not
    );
    let approval = v.action(ActionKind::Approve).unwrap();
    assert!(!approval.allowed);
    assert!(approval.why_not[0].message_en.contains("on-site check"));
    assert!(
        approval
            .why_not
            .iter()
            .any(|w| w.message_en.contains(&item))
    );
    // With every answer in order the preview lets the check go ahead.
    let v = preview_answers(&f.device, t(7, 18), Lang::En, ID, f.answers()).unwrap();
    assert!(v.allows(ActionKind::SiteCheck));
    assert!(!v.allows(ActionKind::Approve));
    // The check itself is refused with the failed item, and nothing is saved.
    let (before, steps) = f.stored();
    let refused = site_check(
        &f.device,
        t(7, 20),
        Lang::En,
        None,
        ID,
        by("孙七", "S-003"),
        answers,
        &f.checker,
    )
    .unwrap_err();
    assert_eq!(code(refused), "permit.rule_blocked");
    assert_eq!(f.stored(), (before, steps));
}

#[test]
fn approval_without_presence_is_refused_and_saves_nothing() {
    let f = Fx::new();
    f.draft();
    f.submit();
    f.check();
    let (before, steps) = f.stored();
    let refused = f.approve(&f.approver_absent).unwrap_err();
    assert_eq!(refused.code(), "permit.presence_required");
    assert!(refused.message_zh().contains("本人"));
    assert!(refused.message_en().contains("presence"));
    assert_eq!(f.stored(), (before, steps));
    // With presence it goes through.
    assert_eq!(f.approve(&f.approver).unwrap().state, PermitState::Approved);
}

#[test]
fn steps_in_the_wrong_order_or_with_bad_input_are_refused_and_save_nothing() {
    let f = Fx::new();
    f.draft();
    let (before, steps) = f.stored();
    // Approving a draft.
    let e = f.approve(&f.approver).unwrap_err();
    assert_eq!(e.code(), "permit.transition_refused");
    assert_eq!(f.stored(), (before.clone(), steps));
    // Starting a draft.
    let e = start(&f.device, t(9, 0), Lang::En, ID, false, None).unwrap_err();
    assert_eq!(e.code(), "permit.transition_refused");
    // A reason that is blank.
    f.submit();
    let (before, steps) = f.stored();
    let e = reject(
        &f.device,
        t(7, 30),
        Lang::En,
        ID,
        by("周八", "S-004"),
        " ".into(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "permit.rule_blocked");
    // A person with no id.
    let e = cancel(
        &f.device,
        t(7, 30),
        Lang::En,
        ID,
        by("张三", ""),
        "x".into(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "input.person");
    // An unknown permit.
    let e = resume(&f.device, t(7, 30), Lang::En, "nope").unwrap_err();
    assert_eq!(e.code(), "permit_store.not_found");
    assert_eq!(f.stored(), (before, steps));
    // A draft twice under the same id.
    let e = draft(
        &f.device,
        t(6, 50),
        Lang::En,
        DraftInput {
            valid_until: t(7, 0),
            valid_from: t(8, 0),
            ..draft_input()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "input.validity");
}

#[test]
fn a_gas_reading_dated_in_the_future_or_out_of_range_is_refused_and_saves_nothing() {
    let f = Fx::new();
    f.draft();
    f.submit();
    f.check();
    f.approve(&f.approver).unwrap();
    let (before, steps) = f.stored();
    for (taken_at, expected) in [
        (i64::MIN, "input.time"),
        (i64::MAX, "input.time"),
        (t(8, 56), "input.gas_time"),
    ] {
        let e = record_gas(
            &f.device,
            t(8, 55),
            Lang::En,
            ID,
            GasInput {
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: "动火点".into(),
                analyst: "赵六".into(),
                taken_at: Some(taken_at),
            },
        )
        .unwrap_err();
        assert_eq!(e.code(), expected, "{taken_at}");
        assert!(!e.message_zh().is_empty() && !e.message_en().is_empty());
    }
    assert_eq!(f.stored(), (before, steps));
    // Taken a minute before it is recorded: saved.
    let v = record_gas(
        &f.device,
        t(8, 55),
        Lang::En,
        ID,
        GasInput {
            lel_centi_pct: 500,
            concentration_centi_pct: 10,
            point: "动火点".into(),
            analyst: "赵六".into(),
            taken_at: Some(t(8, 54)),
        },
    )
    .unwrap();
    assert_eq!(v.state, PermitState::Approved);
    assert_eq!(f.stored().1, steps + 1);
}

#[test]
fn a_start_by_a_welder_the_permit_does_not_name_is_refused_and_saves_nothing() {
    let f = Fx::new();
    f.draft();
    f.submit();
    f.check();
    f.approve(&f.approver).unwrap();
    f.gas(t(8, 55));
    let (before, steps) = f.stored();
    for welder in ["", " ", "T110105194912310021", "李四"] {
        let e = start(&f.device, t(9, 0), Lang::En, ID, false, Some(welder.into())).unwrap_err();
        assert_eq!(e.code(), "permit.welder_not_named", "{welder:?}");
    }
    assert_eq!(f.stored(), (before, steps));
    let v = start(
        &f.device,
        t(9, 0),
        Lang::En,
        ID,
        false,
        Some("T370983199001011234".into()),
    )
    .unwrap();
    assert_eq!(v.state, PermitState::Active);
}

#[test]
fn a_step_at_a_time_no_clock_shows_is_bad_input_and_saves_nothing() {
    let f = Fx::new();
    for now in [i64::MIN, -1, i64::MAX] {
        let e = draft(&f.device, now, Lang::En, draft_input()).unwrap_err();
        assert_eq!(e.code(), "input.time", "{now}");
        assert!(matches!(e.kind(), crate::app::error::ErrorKind::Input));
    }
    f.draft();
    let (before, steps) = f.stored();
    for now in [i64::MIN, -1, i64::MAX] {
        let e = submit(
            &f.device,
            now,
            Lang::En,
            None,
            ID,
            by("张三", "S-001"),
            None,
            &f.applicant,
        )
        .unwrap_err();
        assert_eq!(e.code(), "input.time", "{now}");
        let e = cancel(
            &f.device,
            now,
            Lang::En,
            ID,
            by("张三", "S-001"),
            "x".into(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "input.time", "{now}");
    }
    assert_eq!(f.stored(), (before, steps));
}

fn draft_input() -> DraftInput {
    DraftInput {
        site_id: "s".into(),
        site_name: "s".into(),
        rules: "gb30871".into(),
        site_location: Fx::location(),
        night: None,
        approval_radius_m: None,
        work: "w".into(),
        hot_work_point: "p".into(),
        hot_work_points: 1,
        level: PermitLevel::Level2,
        valid_from: t(8, 0),
        valid_until: t(17, 0),
        applicant: person("张三", "S-001"),
        welders: vec![person("李四", "T370983199001011234")],
        machines: vec![],
        fire_watch: vec![person("王五", "S-002")],
        conditions: WorkConditions::default(),
        permit_id: Some(ID.into()),
    }
}

#[test]
fn due_lists_the_gas_validity_then_the_fire_watch() {
    let f = Fx::new();
    f.draft();
    f.submit();
    f.check();
    f.approve(&f.approver).unwrap();
    f.gas(t(8, 40));
    let list = due(&f.device, t(8, 45), Lang::En).unwrap();
    let kinds: Vec<DueKind> = list.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [DueKind::GasTestValid, DueKind::PermitExpiry]);
    assert_eq!(list[0].due_at, t(9, 10));
    assert!(!list[0].overdue);
    assert_eq!(list[0].permit_id.as_deref(), Some(ID));
    assert!(
        list[0].text.contains("2026-11-30 09:10"),
        "{}",
        list[0].text
    );
    // Later the analysis is stale: overdue, and the view's start entry says why.
    let later = due(&f.device, t(9, 20), Lang::En).unwrap();
    assert!(later[0].overdue);
    let v = show(&f.device, t(9, 20), Lang::En, ID).unwrap().view;
    assert_eq!(
        v.action(ActionKind::Start).unwrap().why_not[0].code,
        FindingCode::GasAnalysisStale
    );
    f.gas(t(9, 25));
    start(&f.device, t(9, 30), Lang::En, ID, false, None).unwrap();
    complete(&f.device, t(11, 0), Lang::En, ID).unwrap();
    let list = due(&f.device, t(11, 5), Lang::Zh).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].kind, DueKind::FireWatch);
    assert_eq!(list[0].due_at, t(11, 30));
    assert!(!list[0].overdue);
    assert!(list[0].text.contains("监护"));
    assert!(due(&f.device, t(11, 31), Lang::En).unwrap()[0].overdue);
    f.close(t(11, 31)).unwrap();
    assert!(due(&f.device, t(11, 40), Lang::En).unwrap().is_empty());
}

#[test]
fn the_site_code_comes_from_the_approvers_key_and_scans_back() {
    let f = Fx::new();
    f.draft();
    f.submit();
    f.check();
    f.approve(&f.approver).unwrap();
    let code = site_code(&f.device, t(7, 45), ID, &f.approver).unwrap();
    let scanned = scan(&f.device, Lang::En, &code.text).unwrap();
    assert!(scanned.valid);
    assert_eq!(scanned.matches_stored, Some(true));
    assert!(site_code(&f.device, t(7, 45), ID, &f.checker).is_err());
    let bad = scan(&f.device, Lang::En, "WG1:nonsense").unwrap();
    assert!(!bad.valid);
}

#[test]
fn due_lists_a_licence_of_an_open_permits_welder_about_to_expire() {
    use crate::domain::{Licence, LicenceStatus, OperationCategory};
    use crate::store::registry::RegistryChange;
    let f = Fx::new();
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
    f.device
        .store()
        .apply_registry_changes(
            [RegistryChange::UpsertLicence(Licence {
                certificate_no: "T370983199001011234".into(),
                id_number: "370983199001011234".into(),
                name: "李四".into(),
                categories: OperationCategory::ALL.to_vec(),
                issued_on: date(2020, 12, 20),
                // Expires 20 days after the permit's day; review long after.
                expires_on: date(2026, 12, 20),
                next_review_on: date(2027, 6, 1),
                review_extended: false,
                status: LicenceStatus::Valid,
                employer_org: None,
            })],
            None,
            0,
        )
        .unwrap();
    // No open permit names the welder yet: nothing about the licence.
    assert!(due(&f.device, t(7, 0), Lang::En).unwrap().is_empty());
    f.draft();
    let list = due(&f.device, t(7, 0), Lang::En).unwrap();
    let kinds: Vec<DueKind> = list.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [DueKind::PermitExpiry, DueKind::LicenceExpiry]);
    let licence = &list[1];
    assert_eq!(
        licence.certificate_no.as_deref(),
        Some("T370983199001011234")
    );
    // The end of 2026-12-20, China time.
    assert_eq!(
        licence.due_at,
        chrono::FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 12, 21, 0, 0, 0)
            .unwrap()
            .timestamp()
    );
    assert!(!licence.overdue);
    assert!(licence.text.contains("2026-12-20"));
    // With a 10-day threshold it is not listed yet.
    let near = crate::app::due::due_within(&f.device, t(7, 0), Lang::En, 10).unwrap();
    assert!(near.iter().all(|d| d.kind != DueKind::LicenceExpiry));
}
