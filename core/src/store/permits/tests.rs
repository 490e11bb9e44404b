//! Permit and inspection persistence: one record + its outbox entries per write, tamper refusal on
//! load, optimistic steps, the start-work lookup, and the v1 → v2 migration.

use rusqlite::{Connection, params};

use super::*;
use crate::inspect::{Outcome, assess};
use crate::permit::fixtures::{Fx, t};
use crate::store::schema::{APPLICATION_ID, CURRENT_VERSION};
use crate::store::test_support::TempDir;
use crate::store::{OutboxResult, OutboxState, Store};

const MS: i64 = 1_764_460_800_000;

fn open(dir: &TempDir) -> Store {
    Store::open(dir.path().join("db.sqlite")).unwrap()
}

fn count(store: &Store, sql: &str) -> i64 {
    store.reader().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Save the standard permit through `kinds` one step at a time, as a device does.
fn walk(store: &Store, fx: &Fx, kinds: &[ActionKind]) -> Permit {
    let draft = fx.draft();
    store.save_permit(None, &draft, None, MS).unwrap();
    let id = draft.content.permit_id.clone();
    let mut last = draft;
    for (i, k) in kinds.iter().enumerate() {
        let (p, step) = store
            .apply_permit_action(&id, &fx.ctx(), fx.action(*k), MS + 1 + i as i64)
            .unwrap();
        assert_eq!(step.state, p.state);
        last = p;
    }
    last
}

const TO_CLOSED: &[ActionKind] = &[
    ActionKind::Submit,
    ActionKind::SiteCheck,
    ActionKind::Approve,
    ActionKind::RecordGas,
    ActionKind::Start,
    ActionKind::Complete,
    ActionKind::Close,
];

#[test]
fn each_step_writes_the_permit_one_step_row_and_one_outbox_entry() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let draft = fx.draft();
    let step = store.save_permit(None, &draft, None, MS).unwrap();
    assert_eq!(step.action, "draft");
    assert_eq!(count(&store, "SELECT count(*) FROM permits"), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM permit_steps"), 1);
    assert_eq!(store.outbox_counts().unwrap().pending, 1);

    let id = draft.content.permit_id.clone();
    for (i, k) in TO_CLOSED.iter().enumerate() {
        store
            .apply_permit_action(&id, &fx.ctx(), fx.action(*k), MS + 1 + i as i64)
            .unwrap();
        let n = i as i64 + 2;
        assert_eq!(
            count(&store, "SELECT count(*) FROM permits"),
            1,
            "one record"
        );
        assert_eq!(count(&store, "SELECT count(*) FROM permit_steps"), n);
        assert_eq!(store.outbox_counts().unwrap().pending, n as u64);
    }
    let closed = store.permit(&id).unwrap().unwrap();
    assert_eq!(closed.state, PermitState::Closed);
    let steps = store.permit_steps(&id).unwrap();
    let actions: Vec<&str> = steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "draft",
            "submit",
            "site_check",
            "approve",
            "record_gas",
            "start",
            "complete",
            "close"
        ]
    );
    // Each step's outbox entry carries the whole permit after the step, under the step's key.
    let entries = store
        .outbox_entries(Some(OutboxState::Pending), 100)
        .unwrap();
    assert_eq!(entries.len(), steps.len());
    for (entry, step) in entries.iter().zip(&steps) {
        assert_eq!(entry.idempotency_key, step.id);
        assert_eq!(entry.kind, "permit_step");
        let doc: serde_json::Value = serde_json::from_str(&entry.payload).unwrap();
        assert_eq!(doc["permit_id"], id.as_str());
        assert_eq!(doc["digest"], step.digest.as_str());
        let p: Permit = serde_json::from_value(doc["permit"].clone()).unwrap();
        assert_eq!(p.state, step.state);
        assert_eq!(
            uuid::Uuid::parse_str(&step.id).unwrap().get_version_num(),
            7
        );
    }
    assert_eq!(
        store.permits(Some(PermitState::Closed)).unwrap(),
        vec![closed]
    );
    assert!(store.permits(Some(PermitState::Draft)).unwrap().is_empty());
}

#[test]
fn a_refused_action_changes_nothing() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let p = walk(&store, &fx, &[ActionKind::Submit]);
    let id = p.content.permit_id.clone();
    let before = store.outbox_counts().unwrap().pending;
    let err = store
        .apply_permit_action(&id, &fx.ctx(), fx.action(ActionKind::Start), MS + 50)
        .unwrap_err();
    assert_eq!(err.code(), "permit.transition_refused");
    assert_eq!(store.outbox_counts().unwrap().pending, before);
    assert_eq!(store.permit(&id).unwrap().unwrap(), p);
    assert!(matches!(
        store
            .apply_permit_action("no-such", &fx.ctx(), fx.action(ActionKind::Start), MS)
            .unwrap_err(),
        PermitStoreError::NotFound(_)
    ));
}

#[test]
fn a_step_over_a_stale_permit_or_a_second_draft_is_refused() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let draft = fx.draft();
    store.save_permit(None, &draft, None, MS).unwrap();
    assert!(matches!(
        store.save_permit(None, &draft, None, MS).unwrap_err(),
        PermitStoreError::AlreadyExists(_)
    ));
    let mut submitted = draft.clone();
    submitted
        .apply(&fx.ctx(), fx.action(ActionKind::Submit))
        .unwrap();
    store
        .save_permit(Some(&draft), &submitted, Some(ActionKind::Submit), MS + 1)
        .unwrap();
    // Another process still holds the draft and tries to cancel it.
    let mut cancelled = draft.clone();
    cancelled
        .apply(&fx.ctx(), fx.action(ActionKind::Cancel))
        .unwrap();
    let err = store
        .save_permit(Some(&draft), &cancelled, Some(ActionKind::Cancel), MS + 2)
        .unwrap_err();
    assert!(matches!(err, PermitStoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.outbox_counts().unwrap().pending, 2, "nothing written");
    assert_eq!(count(&store, "SELECT count(*) FROM permit_steps"), 2);
    assert_eq!(
        store.permit(&draft.content.permit_id).unwrap().unwrap(),
        submitted
    );
}

#[test]
fn a_permit_whose_chain_does_not_verify_is_not_saved() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let mut p = fx.in_state(PermitState::Approved);
    p.content.welders[0].id = "T110101198001011234".into();
    assert!(matches!(
        store.save_permit(None, &p, None, MS).unwrap_err(),
        PermitStoreError::Permit(PermitError::SignatureBroken { .. })
    ));
    assert_eq!(store.outbox_counts().unwrap().pending, 0);
}

#[test]
fn a_tampered_stored_permit_is_refused_on_load() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let p = walk(
        &store,
        &fx,
        &[
            ActionKind::Submit,
            ActionKind::SiteCheck,
            ActionKind::Approve,
        ],
    );
    let id = p.content.permit_id.clone();
    let original: String = store
        .reader()
        .query_row("SELECT body FROM permits", [], |r| r.get(0))
        .unwrap();
    let set_body = |body: &str| {
        store
            .writer()
            .execute("UPDATE permits SET body = ?1", params![body])
            .unwrap();
    };

    // Another welder slipped in after approval.
    set_body(&original.replace("T370983199001011234", "T110101198001011234"));
    let err = store.permit(&id).unwrap_err();
    assert_eq!(err.code(), "permit_store.tampered");
    assert!(err.message_zh().contains("已被改动"));
    assert!(matches!(
        store.permits(None),
        Err(PermitStoreError::Tampered { .. })
    ));

    // The validity stretched in the body and in the indexed column alike.
    let mut longer = p.clone();
    longer.content.valid_until += 3600;
    set_body(&serde_json::to_string(&longer).unwrap());
    assert_eq!(
        store.permit(&id).unwrap_err().code(),
        "permit_store.tampered"
    );

    // Only the indexed state changed (to make a closed permit look approved, say).
    set_body(&original);
    assert_eq!(store.permit(&id).unwrap().unwrap(), p);
    store
        .writer()
        .execute("UPDATE permits SET state = 'active'", [])
        .unwrap();
    assert_eq!(
        store.permit(&id).unwrap_err().code(),
        "permit_store.tampered"
    );
    assert_eq!(
        store
            .permit_to_check(&p.content.site.site_id, "T370983199001011234", t(9, 0))
            .unwrap_err()
            .code(),
        "permit_store.tampered"
    );

    // A draft has no signatures yet; its digest column still catches an edited body.
    let dir2 = TempDir::new();
    let store2 = open(&dir2);
    let draft = fx.draft();
    store2.save_permit(None, &draft, None, MS).unwrap();
    let body: String = store2
        .reader()
        .query_row("SELECT body FROM permits", [], |r| r.get(0))
        .unwrap();
    store2
        .writer()
        .execute(
            "UPDATE permits SET body = ?1",
            params![body.replace("3号储罐东侧管廊", "1号储罐")],
        )
        .unwrap();
    assert_eq!(
        store2.permit(&id).unwrap_err().code(),
        "permit_store.tampered"
    );
}

#[test]
fn permit_to_check_finds_the_live_permit_for_this_welder_and_site() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let site = fx.content().site.site_id;
    let welder = "T370983199001011234";
    assert_eq!(store.permit_to_check(&site, welder, t(9, 0)).unwrap(), None);

    // A draft does not count.
    walk(&store, &fx, &[]);
    assert_eq!(store.permit_to_check(&site, welder, t(9, 0)).unwrap(), None);
    let id = fx.content().permit_id;
    for (i, k) in [
        ActionKind::Submit,
        ActionKind::SiteCheck,
        ActionKind::Approve,
    ]
    .iter()
    .enumerate()
    {
        store
            .apply_permit_action(&id, &fx.ctx(), fx.action(*k), MS + 10 + i as i64)
            .unwrap();
    }
    let found = store
        .permit_to_check(&site, welder, t(9, 0))
        .unwrap()
        .unwrap();
    assert_eq!(found.state, PermitState::Approved);
    let check = crate::permit::permit_findings(
        Some(&found),
        welder,
        "M-370983-0001",
        crate::domain::MachineClass::Mobile,
        &site,
        t(9, 0),
    );
    assert!(check.findings.is_empty(), "{:?}", check.findings);

    // Other welder, other site: nothing.
    assert_eq!(
        store
            .permit_to_check(&site, "T110101198001011234", t(9, 0))
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .permit_to_check("OTHER-SITE", welder, t(9, 0))
            .unwrap(),
        None
    );
    // After the validity it is still returned, so the decision can say "expired".
    let late = store
        .permit_to_check(&site, welder, t(18, 0))
        .unwrap()
        .unwrap();
    let check = crate::permit::permit_findings(
        Some(&late),
        welder,
        "M-370983-0001",
        crate::domain::MachineClass::Mobile,
        &site,
        t(18, 0),
    );
    assert!(
        check.findings.iter().any(|f| f.code() == "permit.expired"),
        "{:?}",
        check.findings
    );
    // Closed: no longer a candidate.
    for (i, k) in [
        ActionKind::RecordGas,
        ActionKind::Start,
        ActionKind::Complete,
        ActionKind::Close,
    ]
    .iter()
    .enumerate()
    {
        store
            .apply_permit_action(&id, &fx.ctx(), fx.action(*k), MS + 20 + i as i64)
            .unwrap();
    }
    assert_eq!(store.permit_to_check(&site, welder, t(9, 0)).unwrap(), None);
}

#[test]
fn an_inspection_writes_one_record_and_one_outbox_entry_and_must_be_sealed() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let permit = fx.in_state(PermitState::Active);
    let mut input = crate::inspect::fixtures::input(&fx, Some(&permit));
    input.inspection_id = crate::store::records::new_record_id(MS).unwrap();
    if let Some(o) = input
        .observations
        .iter_mut()
        .find(|o| o.item_id.starts_with("ban."))
    {
        o.outcome = Outcome::NotCompliant;
        o.note = "动火点周围有可燃物".into();
    }
    let mut inspection = assess(input, &fx.catalog).unwrap();
    assert!(!inspection.body.violations.is_empty());
    assert!(matches!(
        store.record_inspection(&inspection, MS).unwrap_err(),
        PermitStoreError::InspectionUnsealed(_)
    ));
    assert_eq!(store.outbox_counts().unwrap().pending, 0);

    let signer = crate::codes::SoftwareSigner::generate().unwrap();
    inspection.sign(&signer).unwrap();
    let saved = store.record_inspection(&inspection, MS).unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM inspections"), 1);
    let entries = store.outbox_entries(None, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, "inspection");
    assert_eq!(entries[0].idempotency_key, saved.id);
    assert_eq!(store.inspections(10).unwrap(), vec![saved.clone()]);

    // The same inspection again is refused (one record per id), nothing added.
    assert!(store.record_inspection(&inspection, MS + 1).is_err());
    assert_eq!(store.outbox_counts().unwrap().pending, 1);

    // An altered stored inspection fails its seal on load.
    let body: String = store
        .reader()
        .query_row("SELECT body FROM inspections", [], |r| r.get(0))
        .unwrap();
    store
        .writer()
        .execute(
            "UPDATE inspections SET body = ?1",
            params![body.replace("动火点周围有可燃物", "无")],
        )
        .unwrap();
    assert!(matches!(
        store.inspections(10).unwrap_err(),
        PermitStoreError::InspectionUnsealed(_)
    ));
}

#[test]
fn a_frozen_v1_file_migrates_to_v2_keeps_its_records_and_takes_permits() {
    let dir = TempDir::new();
    let path = dir.path().join("v1.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../schema/frozen/v1.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute(
            "INSERT INTO outbox (idempotency_key, kind, payload, created_at_ms) \
             VALUES ('k1', 'work_session', '{}', 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO work_sessions VALUES ('k1', 'M-1', 'T1', 1, 1, '[]', NULL, 1)",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    assert_eq!(count(&store, "SELECT count(*) FROM work_sessions"), 1);
    let fx = Fx::new("gb30871");
    let p = walk(&store, &fx, &[ActionKind::Submit]);
    assert_eq!(store.permit(&p.content.permit_id).unwrap().unwrap(), p);
    assert_eq!(store.outbox_counts().unwrap().pending, 3);
}

/// The platform's version of a permit as `GET /v1/permits` hands it out.
fn head(step_id: &str, action: &str, permit: &Permit) -> PermitStepRecord {
    PermitStepRecord {
        step_id: step_id.into(),
        permit_id: permit.content.permit_id.clone(),
        action: action.into(),
        state: permit.state,
        digest: hex(&digest(permit).unwrap()),
        permit: permit.clone(),
    }
}

fn cursor(c: &str) -> crate::store::SyncCursor {
    crate::store::SyncCursor {
        feed: "permits".into(),
        cursor: c.into(),
    }
}

#[test]
fn the_platforms_version_replaces_a_lost_local_step_which_stays_listed_as_superseded() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    // This device checked the permit, then approved it offline; the approval was answered.
    let approved = walk(
        &store,
        &fx,
        &[
            ActionKind::Submit,
            ActionKind::SiteCheck,
            ActionKind::Approve,
        ],
    );
    let id = approved.content.permit_id.clone();
    let keys: Vec<String> = store
        .permit_steps(&id)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let results: Vec<(&str, OutboxResult)> = keys
        .iter()
        .map(|k| (k.as_str(), OutboxResult::Applied))
        .collect();
    store.outbox_mark_results(&results, MS + 10).unwrap();
    // Meanwhile another supervisor rejected the checked version, and that won on the platform.
    let mut checked = fx.draft();
    fx.run(&mut checked, &[ActionKind::Submit, ActionKind::SiteCheck]);
    let mut rejected = checked.clone();
    fx.run(&mut rejected, &[ActionKind::Reject]);
    let winner = head("0193a1b2-0000-7000-8000-00000000aaaa", "reject", &rejected);
    let changed = store
        .apply_permit_heads(std::slice::from_ref(&winner), &cursor("e.7"), MS + 20)
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(store.permit(&id).unwrap().unwrap(), rejected);
    assert_eq!(
        store.sync_cursor("permits").unwrap().as_deref(),
        Some("e.7")
    );
    // The device's own steps are all kept; the approval is shown as superseded.
    let standings = store.permit_step_standings(&id).unwrap();
    let by_action: Vec<(&str, StepStanding)> = standings
        .iter()
        .map(|(s, st)| (s.action.as_str(), *st))
        .collect();
    assert_eq!(
        by_action,
        vec![
            ("draft", StepStanding::OnRecord),
            ("submit", StepStanding::OnRecord),
            ("site_check", StepStanding::OnRecord),
            ("approve", StepStanding::Superseded),
            ("reject", StepStanding::OnRecord),
        ]
    );
    // The learned version has an outbox entry already applied: nothing new to push.
    assert_eq!(store.outbox_counts().unwrap().pending, 0);
    assert_eq!(
        store.outbox_entry(&winner.step_id).unwrap().unwrap().state,
        OutboxState::Applied
    );
    // The same page again changes nothing.
    assert_eq!(
        store
            .apply_permit_heads(std::slice::from_ref(&winner), &cursor("e.7"), MS + 30)
            .unwrap(),
        0
    );
    // Work continues on the platform's version.
    assert!(matches!(
        store.apply_permit_action(&id, &fx.ctx(), fx.action(ActionKind::Start), MS + 40),
        Err(PermitStoreError::Permit(
            PermitError::TransitionRefused { .. }
        ))
    ));
}

#[test]
fn an_unanswered_local_step_is_not_overwritten_and_a_bad_head_changes_nothing() {
    let dir = TempDir::new();
    let store = open(&dir);
    let fx = Fx::new("gb30871");
    let submitted = walk(&store, &fx, &[ActionKind::Submit]);
    let id = submitted.content.permit_id.clone();
    // The platform still holds the draft, but the submission waits in the outbox: keep it.
    let draft = fx.draft();
    let changed = store
        .apply_permit_heads(&[head("d", "draft", &draft)], &cursor("e.1"), MS + 5)
        .unwrap();
    assert_eq!(changed, 0);
    assert_eq!(store.permit(&id).unwrap().unwrap(), submitted);
    assert_eq!(
        store.sync_cursor("permits").unwrap().as_deref(),
        Some("e.1")
    );
    // A head whose digest is not its permit's: the page is refused, cursor unchanged.
    let mut bad = head("x", "submit", &submitted);
    bad.digest = "00".repeat(32);
    assert!(
        store
            .apply_permit_heads(&[bad], &cursor("e.2"), MS + 6)
            .is_err()
    );
    assert_eq!(
        store.sync_cursor("permits").unwrap().as_deref(),
        Some("e.1")
    );
    // A permit this device never had arrives whole, with its welders for the start-work lookup.
    let mut other = fx.draft();
    other.content.permit_id = "0193a1b2-0000-7000-8000-0000000000ff".into();
    let other = Permit::draft(
        other.content,
        &fx.ctx(),
        &crate::permit::fixtures::actor("张三", "S-001", "applicant"),
        t(6, 45),
    )
    .unwrap();
    let mut approved = other.clone();
    fx.run(
        &mut approved,
        &[
            ActionKind::Submit,
            ActionKind::SiteCheck,
            ActionKind::Approve,
        ],
    );
    store
        .apply_permit_heads(&[head("o", "approve", &approved)], &cursor("e.3"), MS + 7)
        .unwrap();
    let found = store
        .permit_to_check(
            &approved.content.site.site_id,
            "T370983199001011234",
            t(9, 0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(found, approved);
}
