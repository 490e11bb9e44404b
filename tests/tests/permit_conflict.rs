//! Two supervisors act on the same permit offline (issue 5): a welder submits, supervisor A checks
//! it on site, every device syncs; then A approves and B rejects, both offline. Run with A syncing
//! first and again on a fresh server with B first: the platform ends on the same version both times
//! (the rejection: the safer action wins, docs/adr/0011-permit-conflicts.md), each device's push is
//! answered as designed, and after one more sync the welder's, A's and B's devices hold exactly the
//! platform's version. Against the real server binary on SQLite, and on PostgreSQL when a test
//! cluster is configured (`WG_TEST_POSTGRES_URL`, see `weldguard_server::db::test_support`).

use weldguard_core::permit::{Action, Permit, PermitState};
use weldguard_core::store::{OutboxState, StepStanding};
use weldguard_core::sync::SyncClient;
use weldguard_core::sync::protocol::{PermitPage, Role};
use weldguard_tests::permits::{DAY, Device, Enrolment, H, Rules, actor, enrol, key, policy, sync};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "permit-conflict-admin-token-0123";
const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000000c1";

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
    let approver_role = rules.approver_role();
    let approver_roles = [approver_role.as_str()];
    let who = |name, person_id, role, permit_roles, key| Enrolment {
        name,
        person_id,
        role,
        permit_roles,
        key,
    };
    // The applicant's phone (a welder's device), the site checker's, approver A's, and B, who
    // rejects (an unsigned step: B signs nothing, so B needs no permit role).
    let welder = enrol(
        &server,
        who(
            "张三",
            "S-001",
            Role::Welder,
            &["applicant"],
            Some(&welder_key),
        ),
    );
    let checker = enrol(
        &server,
        who(
            "孙七",
            "S-003",
            Role::Supervisor,
            &["supervisor"],
            Some(&checker_key),
        ),
    );
    let a = enrol(
        &server,
        who(
            "周八",
            "S-004",
            Role::Supervisor,
            &approver_roles,
            Some(&a_key),
        ),
    );
    let b = enrol(&server, who("吴九", "S-009", Role::Supervisor, &[], None));
    let to_ms = |secs: i64| secs * 1000;

    // The welder drafts and submits, then syncs.
    let applicant = actor("张三", "S-001", "applicant");
    let draft = Permit::draft(rules.content(PERMIT_ID), &ctx, &applicant, DAY + 6 * H).unwrap();
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
        signer: &weldguard_core::codes::PresenceConfirmed(&a_key),
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
