//! Two supervisors act on the same permit offline (issue 5): a welder submits, supervisor A checks
//! it on site, every device syncs; then A approves and B rejects, both offline. Run with A syncing
//! first and again on a fresh server with B first: the platform ends on the same version both times
//! (the rejection: the safer action wins, docs/adr/0011-permit-conflicts.md), each device's push is
//! answered as designed, and after one more sync the welder's, A's and B's devices hold exactly the
//! platform's version. Against the real server binary on SQLite, and on PostgreSQL when a test
//! cluster is configured (`WG_TEST_POSTGRES_URL`, see `weldguard_server::db::test_support`).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use weldguard_core::codes::signer::DeviceSigner;
use weldguard_core::codes::signer::SoftwareSigner;
use weldguard_core::codes::to_hex;
use weldguard_core::permit::{
    Action, Actor, Catalog, ChecklistAnswer, GeoPoint, NightHours, Permit, PermitContent,
    PermitLevel, PermitState, Person, ProfileSet, RuleContext, RuleProfile, SampleEvidence,
    Section, Site, WorkCalendar, WorkConditions, sample_answers,
};
use weldguard_core::store::{OutboxState, StepStanding, Store};
use weldguard_core::sync::protocol::{NewEnrolment, PermitPage, Role};
use weldguard_core::sync::{RetryPolicy, SyncClient, SyncReport};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "permit-conflict-admin-token-0123";
const H: i64 = 3600;
/// 2026-11-30 00:00 China time (a Monday).
const DAY: i64 = 1_795_968_000;
const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000000c1";

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
    }
}

fn actor(name: &str, id: &str, role: &str) -> Actor {
    Actor {
        name: name.into(),
        id: id.into(),
        role: role.into(),
    }
}

/// Fixed device keys, so both runs make byte-identical permit versions (ES256 here is RFC 6979).
fn key(n: u8) -> SoftwareSigner {
    SoftwareSigner::from_secret(&[n; 32]).unwrap()
}

struct Rules {
    profile: RuleProfile,
    catalog: Catalog,
    calendar: WorkCalendar,
}

impl Rules {
    fn new() -> Self {
        let profile = ProfileSet::builtin()
            .unwrap()
            .select("gb30871", NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
            .unwrap()
            .clone();
        Rules {
            profile,
            catalog: Catalog::builtin().unwrap(),
            calendar: WorkCalendar::default(),
        }
    }

    fn ctx(&self) -> RuleContext<'_> {
        RuleContext {
            profile: &self.profile,
            catalog: &self.catalog,
        }
    }

    fn location(&self) -> GeoPoint {
        GeoPoint::from_degrees(36.182, 116.772)
    }

    fn content(&self) -> PermitContent {
        let location = self.location();
        PermitContent {
            permit_id: PERMIT_ID.into(),
            site: Site {
                site_id: "site-370983-001".into(),
                name: "肥城某化工厂三车间".into(),
                profile_id: "gb30871".into(),
                location,
                utc_offset_secs: 8 * 3600,
                night: NightHours {
                    start: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
                    end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
                },
                approval_radius_m: None,
            },
            profile_id: self.profile.id.clone(),
            profile_version: self.profile.version.clone(),
            catalog_version: self.catalog.version.clone(),
            work_description: "更换3号储罐出口管线法兰".into(),
            hot_work_point: "3号储罐东侧管廊".into(),
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
        }
    }

    /// Every item of 十不准、九必须 answered with the evidence it asks for.
    fn answers(&self, at: i64) -> Vec<ChecklistAnswer> {
        let sample = SampleEvidence::crew(at);
        sample_answers(
            &self.catalog,
            &[Section::Prohibition, Section::Must],
            &sample,
        )
    }

    fn approver_role(&self) -> String {
        self.profile
            .level(PermitLevel::Level2)
            .unwrap()
            .approver
            .id
            .clone()
    }
}

struct Device {
    _dir: TempDir,
    store: Store,
    client: SyncClient,
}

/// A device enrolled for `person` (named on permits by `person_id`), with the device key whose
/// public part is `public_key` and the permit roles it signs as (the signer directory).
fn enrol(
    server: &ServerProcess,
    (person, person_id): (&str, &str),
    role: Role,
    permit_roles: &[String],
    public_key: &str,
) -> Device {
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let code = admin
        .enrolment(&NewEnrolment {
            person: person.into(),
            role,
            person_id: Some(person_id.into()),
            permit_roles: permit_roles.to_vec(),
        })
        .unwrap();
    let anonymous = SyncClient::new(&server.url(), None, policy()).unwrap();
    let enrolled = anonymous.enrol(&code.code, public_key, person).unwrap();
    let dir = TempDir::new("permit-device");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    let client = SyncClient::new(&server.url(), Some(enrolled.token), policy()).unwrap();
    Device {
        _dir: dir,
        store,
        client,
    }
}

fn sync(device: &Device) -> SyncReport {
    device
        .client
        .sync(&device.store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap()
}

fn held(device: &Device) -> Permit {
    device
        .store
        .permit(PERMIT_ID)
        .unwrap()
        .expect("the device holds the permit")
}

/// The platform's current version of the permit, as an admin pulls it.
fn server_head(server: &ServerProcess) -> (String, Permit) {
    let (status, body) = raw_call(server.addr, "GET", "/v1/permits", Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    let page: PermitPage = serde_json::from_str(&body).unwrap();
    let head = page
        .heads
        .into_iter()
        .find(|h| h.permit_id == PERMIT_ID)
        .expect("the platform holds the permit");
    (head.action, head.permit)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    Approver,
    Rejecter,
}

/// One run on a fresh server; returns the platform's final version.
fn run(backend: ServerBackend, first: First) -> Option<Permit> {
    let data = ServerData::new(backend, "permit-conflict")?;
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    let rules = Rules::new();
    let ctx = rules.ctx();
    let (welder_key, checker_key, a_key) = (key(1), key(2), key(3));
    let hex = |k: &SoftwareSigner| to_hex(&k.public_key());
    let roles = |r: &str| vec![r.to_owned()];
    // The applicant's phone (a welder's device), the site checker's, approver A's, and B, who
    // rejects (an unsigned step: B signs nothing, so B needs no permit role).
    let welder = enrol(
        &server,
        ("张三", "S-001"),
        Role::Welder,
        &roles("applicant"),
        &hex(&welder_key),
    );
    let checker = enrol(
        &server,
        ("孙七", "S-003"),
        Role::Supervisor,
        &roles("supervisor"),
        &hex(&checker_key),
    );
    let a = enrol(
        &server,
        ("周八", "S-004"),
        Role::Supervisor,
        &roles(&rules.approver_role()),
        &hex(&a_key),
    );
    let b = enrol(
        &server,
        ("吴九", "S-009"),
        Role::Supervisor,
        &[],
        "04aabbcc",
    );
    let to_ms = |secs: i64| secs * 1000;

    // The welder drafts and submits, then syncs.
    let applicant = actor("张三", "S-001", "applicant");
    let draft = Permit::draft(rules.content(), &ctx, &applicant, DAY + 6 * H).unwrap();
    welder
        .store
        .save_permit(None, &draft, None, to_ms(DAY + 6 * H))
        .unwrap();
    let submit = Action::Submit {
        by: applicant.clone(),
        signer: &welder_key,
        calendar: &rules.calendar,
        at: DAY + 7 * H,
        location: None,
    };
    welder
        .store
        .apply_permit_action(PERMIT_ID, &ctx, submit, to_ms(DAY + 7 * H))
        .unwrap();
    let report = sync(&welder);
    assert_eq!((report.applied, report.rejected), (2, 0));

    // The site checker learns the permit, checks it on site, syncs; A, B and the welder learn
    // the check.
    let report = sync(&checker);
    assert_eq!(report.permits_changed, 1);
    assert_eq!(held(&checker).state, PermitState::Submitted);
    let check = Action::SiteCheck {
        by: actor("孙七", "S-003", "supervisor"),
        signer: &checker_key,
        answers: rules.answers(DAY + 7 * H + 600),
        at: DAY + 7 * H + 900,
        location: Some(rules.location()),
    };
    checker
        .store
        .apply_permit_action(PERMIT_ID, &ctx, check, to_ms(DAY + 7 * H + 900))
        .unwrap();
    assert_eq!(sync(&checker).applied, 1);
    sync(&a);
    sync(&b);
    sync(&welder);
    let checked = held(&a);
    assert_eq!(checked.state, PermitState::Checked);
    assert_eq!(held(&b), checked);
    assert_eq!(held(&welder), checked);

    // Offline: A approves at 07:40, B rejects at 07:50.
    let approve = Action::Approve {
        by: actor("周八", "S-004", &rules.approver_role()),
        signer: &a_key,
        at: DAY + 7 * H + 2400,
        location: Some(rules.location()),
    };
    let (_, approve_step) = a
        .store
        .apply_permit_action(PERMIT_ID, &ctx, approve, to_ms(DAY + 7 * H + 2400))
        .unwrap();
    let reject = Action::Reject {
        by: actor("吴九", "S-009", "supervisor"),
        at: DAY + 7 * H + 3000,
        reason: "动火点周边可燃物未清理".into(),
    };
    let (_, reject_step) = b
        .store
        .apply_permit_action(PERMIT_ID, &ctx, reject, to_ms(DAY + 7 * H + 3000))
        .unwrap();

    // They come back online in the order under test.
    let (early, late) = match first {
        First::Approver => (&a, &b),
        First::Rejecter => (&b, &a),
    };
    let early_report = sync(early);
    assert_eq!((early_report.applied, early_report.rejected), (1, 0));
    let late_report = sync(late);
    let approve_entry = a.store.outbox_entry(&approve_step.id).unwrap().unwrap();
    let reject_entry = b.store.outbox_entry(&reject_step.id).unwrap().unwrap();
    // The rejection is applied either way.
    assert_eq!(reject_entry.state, OutboxState::Applied);
    match first {
        First::Approver => {
            // A's approval was applied when it arrived; B's rejection then won the conflict.
            assert_eq!((late_report.applied, late_report.rejected), (1, 0));
            assert_eq!(approve_entry.state, OutboxState::Applied);
        }
        First::Rejecter => {
            // A's approval arrives on a version that already has a successor, and loses.
            assert_eq!((late_report.applied, late_report.rejected), (0, 1));
            assert_eq!(approve_entry.state, OutboxState::Rejected);
            let reason = approve_entry.last_error.unwrap_or_default();
            assert!(reason.starts_with("permit.conflict:"), "{reason}");
        }
    }

    // The platform's records: each applied step exactly once; a step that lost on arrival is none.
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let keys: Vec<String> = admin
        .records(Some("permit_step"))
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    let times = |k: &str| keys.iter().filter(|x| x.as_str() == k).count();
    assert_eq!(times(&reject_step.id), 1);
    assert_eq!(
        times(&approve_step.id),
        usize::from(first == First::Approver)
    );
    // Draft, submission, site check and rejection (and the approval, when it was applied).
    assert_eq!(keys.len(), 4 + usize::from(first == First::Approver));

    // One more sync each: every device holds the platform's version.
    for device in [&welder, &a, &b] {
        sync(device);
    }
    let (action, head) = server_head(&server);
    assert_eq!(action, "reject");
    assert_eq!(head.state, PermitState::Rejected);
    for device in [&welder, &a, &b] {
        assert_eq!(held(device), head);
    }
    // A keeps its approval step, shown as superseded; the steps before it stay on record.
    let standings = a.store.permit_step_standings(PERMIT_ID).unwrap();
    let approve_standing = standings
        .iter()
        .find(|(s, _)| s.id == approve_step.id)
        .map(|(_, st)| *st);
    assert_eq!(approve_standing, Some(StepStanding::Superseded));
    assert!(
        standings
            .iter()
            .filter(|(s, _)| s.id != approve_step.id)
            .all(|(_, st)| *st == StepStanding::OnRecord),
        "{standings:?}"
    );
    // What A saw: the site check and the rejection learned from the platform (it first synced
    // after the check), its own approval.
    let mut actions: Vec<&str> = standings.iter().map(|(s, _)| s.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(actions, vec!["approve", "reject", "site_check"]);
    Some(head)
}

fn both_orders(backend: ServerBackend) {
    let Some(approver_first) = run(backend, First::Approver) else {
        return;
    };
    let rejecter_first = run(backend, First::Rejecter).expect("the same backend");
    assert_eq!(
        approver_first, rejecter_first,
        "the platform ends on the same version whichever supervisor syncs first"
    );
}

#[test]
fn two_supervisors_offline_converge_on_sqlite() {
    both_orders(ServerBackend::Sqlite);
}

#[test]
fn two_supervisors_offline_converge_on_postgres() {
    both_orders(ServerBackend::Postgres);
}
