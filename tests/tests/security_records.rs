//! Issue 14, the record and push-path defences, attacked against the real server binary on SQLite
//! (and on PostgreSQL through `security_records_postgres.rs`):
//! - one token pushes 1,000 losing permit steps: the platform keeps at most
//!   `MAX_LOST_PER_PERMIT` of them (the rest `permit.too_many_lost`), `/health` answers within 1 s
//!   throughout, and a legitimate step afterwards is placed quickly (no re-parse of history);
//! - after a history compaction, a fresh device and a device that was behind both sync at once
//!   (no `sync.refetch_loop`: the snapshots the compaction outdated are gone);
//! - one sealed inspection pushed under four keys is stored once, and a device's retry is a
//!   duplicate;
//! - start-work records with impossible times are refused, unknown machines and licences are kept
//!   and flagged;
//! - fields outside the core types (permit step, inspection, work session) are refused and never
//!   stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weldguard_core::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus,
    OperationCategory,
};
use weldguard_core::permit::Permit;
use weldguard_core::store::{RegistryChange, Store, WorkSession};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_server::db::Db;
use weldguard_server::permits::MAX_LOST_PER_PERMIT;
use weldguard_server::permits::fixture::{DAY, Fx, H, inspection, payload};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "security-records-admin-token-01";

/// Which backend these flows run on; `security_records_postgres.rs` defines its own.
#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(2),
    }
}

/// A server on `crate::BACKEND` and its storage (kept here so the test can open the database
/// too); `None` when that backend's tests are skipped.
fn start(name: &str) -> Option<(ServerProcess, ServerData)> {
    let data = ServerData::new(crate::BACKEND, name)?;
    let server = ServerProcess::start_sharing(SERVER, &data, ADMIN);
    Some((server, data))
}

/// The server's database, opened beside it (to read what the HTTP API does not show).
fn open_db(data: &ServerData) -> Db {
    match data {
        ServerData::Dir(dir) => Db::open(dir.path()).unwrap(),
        ServerData::Postgres(db) => Db::connect_postgres(db.url()).unwrap(),
    }
}

fn admin(server: &ServerProcess) -> SyncClient {
    SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap()
}

fn token(server: &ServerProcess, person: &str, role: Role) -> String {
    let code = admin(server).create_enrolment(person, role).unwrap();
    SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, "04aabb", "phone")
        .unwrap()
        .token
}

/// A device enrolled for a person named on permits by `person_id`, holding the key of the
/// server fixture's `n`th signer (fixed secret `[n; 32]`) with `permit_roles`; its token.
fn signer_token(
    server: &ServerProcess,
    (person, person_id): (&str, &str),
    role: Role,
    permit_roles: &[&str],
    n: u8,
) -> String {
    use weldguard_core::codes::{DeviceSigner, SoftwareSigner, to_hex};
    let key = SoftwareSigner::from_secret(&[n; 32]).unwrap();
    let code = admin(server)
        .enrolment(&weldguard_core::sync::protocol::NewEnrolment {
            person: person.into(),
            role,
            person_id: Some(person_id.into()),
            permit_roles: permit_roles.iter().map(|r| (*r).to_owned()).collect(),
        })
        .unwrap();
    SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, &to_hex(&key.public_key()), "phone")
        .unwrap()
        .token
}

/// The server fixture's three signers enrolled (applicant 张三, site checker 孙七, approver 周八);
/// the site checker's token.
fn fixture_signers(server: &ServerProcess) -> String {
    let f = Fx::new();
    let approver_role = f
        .profile
        .level(weldguard_core::permit::PermitLevel::Level2)
        .unwrap()
        .approver
        .id
        .clone();
    signer_token(server, ("张三", "S-001"), Role::Welder, &["applicant"], 1);
    signer_token(
        server,
        ("周八", "S-004"),
        Role::Supervisor,
        &[&approver_role],
        3,
    );
    signer_token(
        server,
        ("孙七", "S-003"),
        Role::Supervisor,
        &["supervisor"],
        2,
    )
}

/// Push raw entries `(key, kind, payload)`; the per-entry `(status, reason)`.
fn push(
    server: &ServerProcess,
    token: &str,
    entries: &[(String, &str, String)],
) -> Vec<(String, String)> {
    let body = serde_json::json!({
        "entries": entries
            .iter()
            .map(|(k, kind, p)| serde_json::json!({
                "idempotency_key": k, "kind": kind, "payload": p
            }))
            .collect::<Vec<_>>()
    });
    let (status, text) = raw_call(
        server.addr,
        "POST",
        "/v1/push",
        Some(token),
        Some(&body.to_string()),
    );
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn step(key: &str, action: &str, permit: &Permit) -> (String, &'static str, String) {
    let (k, p) = payload(key, action, permit);
    (k, "permit_step", p)
}

/// Polls `/health` every 50 ms on its own connection until stopped; the slowest answer.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(Duration, usize)>,
}

impl HealthWatch {
    fn start(server: &ServerProcess) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = server.addr;
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, _) = raw_call(addr, "GET", "/health", None, None);
                assert_eq!(status, 200);
                worst = worst.max(t.elapsed());
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (worst, n)
        });
        HealthWatch { stop, handle }
    }

    fn finish(self) -> (Duration, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// The attack of issue 14: one token pushes 1,000 approvals of a checked permit that all lose to
/// the approval already applied (same safety, later time). A welder's token can no longer report
/// an approval at all (docs/adr/0014), so the attacker here is a supervisor's phone carrying
/// approvals signed by the enrolled approver's key. The platform keeps at most
/// `MAX_LOST_PER_PERMIT`, refuses the rest without storing them, `/health` stays under 1 s, and
/// a legitimate step afterwards is placed in well under a second.
#[test]
fn a_thousand_losing_steps_are_capped_and_neither_stall_the_platform_nor_the_next_push() {
    let Some((server, data)) = start("lost-steps") else {
        return;
    };
    let supervisor = fixture_signers(&server);
    let welder = token(&server, "吴九", Role::Supervisor);
    let f = Fx::new();
    let draft = f.draft();
    let submitted = f.step(&draft, "submit", DAY + 7 * H);
    let checked = f.step(&submitted, "site_check", DAY + 7 * H + 900);
    let approved = f.step(&checked, "approve", DAY + 7 * H + 1200);
    let chain = vec![
        step("s0", "draft", &draft),
        step("s1", "submit", &submitted),
        step("s2", "site_check", &checked),
        step("s3", "approve", &approved),
    ];
    let answers = push(&server, &supervisor, &chain);
    assert!(answers.iter().all(|(s, _)| s == "applied"), "{answers:?}");

    // 1,000 rival approvals on the checked version, each later than the applied one: all lose.
    let attack: Vec<(String, &str, String)> = (1..=1000)
        .map(|i| {
            step(
                &format!("x{i:04}"),
                "approve",
                &f.step(&checked, "approve", DAY + 7 * H + 1200 + i),
            )
        })
        .collect();
    let watch = HealthWatch::start(&server);
    let t = Instant::now();
    let mut lost = 0;
    let mut capped = 0;
    // In the largest batches a push may carry (MAX_PUSH_ENTRIES).
    for batch in attack.chunks(weldguard_core::sync::protocol::MAX_PUSH_ENTRIES) {
        for (status, reason) in push(&server, &welder, batch) {
            assert_eq!(status, "rejected");
            if reason.starts_with("permit.conflict") {
                lost += 1;
            } else {
                assert!(reason.starts_with("permit.too_many_lost"), "{reason}");
                capped += 1;
            }
        }
    }
    let attack_time = t.elapsed();
    // The legitimate next step, one that must find an older version (the worst case before the
    // fix: every stored step was parsed): the applicant cancels the checked version, which wins
    // over the approval and supersedes it.
    let cancelled = f.step(&checked, "cancel", DAY + 7 * H + 3000);
    let t = Instant::now();
    let answers = push(&server, &supervisor, &[step("s4", "cancel", &cancelled)]);
    let next_push = t.elapsed();
    // A step that follows no version the platform holds (the cancellation of an approval it
    // never saw): before the fix every stored step was parsed to find that out.
    let unseen = f.step(&checked, "approve", DAY + 7 * H + 2900);
    let orphan = f.step(&unseen, "cancel", DAY + 7 * H + 3100);
    let t = Instant::now();
    let probe = push(&server, &welder, &[step("s5", "cancel", &orphan)]);
    let probe_time = t.elapsed();
    let (worst_health, polls) = watch.finish();
    eprintln!(
        "[{:?}] 1000 losing steps: {:.2} s ({lost} kept as lost, {capped} refused by the cap); \
         next push {:.1} ms; a push following no held version {:.1} ms; /health worst {:.1} ms \
         over {polls} polls",
        crate::BACKEND,
        attack_time.as_secs_f64(),
        next_push.as_secs_f64() * 1e3,
        probe_time.as_secs_f64() * 1e3,
        worst_health.as_secs_f64() * 1e3
    );
    assert_eq!(answers[0].0, "applied", "{answers:?}");
    assert_eq!(lost, MAX_LOST_PER_PERMIT as usize);
    assert_eq!(capped, 1000 - MAX_LOST_PER_PERMIT as usize);
    assert!(worst_health < Duration::from_secs(1), "{worst_health:?}");
    assert!(next_push < Duration::from_secs(1), "{next_push:?}");
    assert!(probe[0].1.starts_with("permit.unknown_base"), "{probe:?}");
    assert!(probe_time < Duration::from_secs(1), "{probe_time:?}");
    // Only the capped number is stored; a capped step pushed again is refused again, not kept.
    let db = open_db(&data);
    let standings = db
        .permit_step_standings(weldguard_server::permits::fixture::PERMIT_ID)
        .unwrap();
    assert_eq!(
        standings.iter().filter(|s| s.status == "lost").count(),
        MAX_LOST_PER_PERMIT as usize
    );
    let again = push(&server, &welder, &attack[999..]);
    assert!(again[0].1.starts_with("permit.too_many_lost"), "{again:?}");
}

fn licence(certificate_no: &str) -> Licence {
    Licence {
        certificate_no: certificate_no.into(),
        id_number: "370983199001011234".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: chrono::NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
        expires_on: chrono::NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
        next_review_on: chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: None,
    }
}

fn machine(machine_id: &str) -> Machine {
    Machine {
        machine_id: machine_id.into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C000000".into(),
        region: 370983,
        status: MachineStatus::Active,
    }
}

/// After a compaction, a device that never synced and one whose cursor the compaction passed both
/// sync at once (before the fix both looped on `sync.refetch_loop` for up to 15 minutes: the
/// cached snapshot pointed before the compaction).
#[test]
fn after_compaction_fresh_and_behind_devices_sync_at_once() {
    let Some((server, _data)) = start("compact") else {
        return;
    };
    let admin = admin(&server);
    let bind = |m: usize| Binding {
        machine_id: format!("M-{m:04}"),
        certificate_no: format!("T{m}"),
    };
    admin
        .write_registry(
            &(0..50)
                .map(|m| RegistryChange::Bind(bind(m)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let device = |name: &str| {
        let client = SyncClient::new(
            &server.url(),
            Some(token(&server, name, Role::Welder)),
            policy(),
        )
        .unwrap();
        let file = client.trust_file().unwrap();
        let trust =
            weldguard_core::codes::TrustStore::from_json(&serde_json::to_string(&file).unwrap())
                .unwrap();
        let dir = TempDir::new("compact-device");
        let store = Store::open(dir.path().join("d.sqlite")).unwrap();
        (client.with_trust(trust), store, dir)
    };
    let sync = |(client, store, _): &(SyncClient, Store, TempDir)| {
        client.sync(store, &mut |_| {}, &AtomicBool::new(false))
    };
    // The behind device loads the snapshot cut now.
    let behind = device("王五");
    sync(&behind).unwrap();
    assert_eq!(behind.1.registry_stats().unwrap().bindings, 50);
    // More changes, deletes among them, then everything is compacted.
    admin
        .write_registry(
            &(0..20)
                .map(|m| RegistryChange::Unbind(bind(m)))
                .chain((50..60).map(|m| RegistryChange::Bind(bind(m))))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    admin.compact_history(None).unwrap();
    let fresh = device("赵六");
    let first = sync(&fresh);
    assert!(first.is_ok(), "a fresh device after compaction: {first:?}");
    assert_eq!(fresh.1.registry_stats().unwrap().bindings, 40);
    let caught_up = sync(&behind);
    assert!(
        caught_up.is_ok(),
        "a device behind the compaction: {caught_up:?}"
    );
    assert_eq!(behind.1.registry_stats().unwrap().bindings, 40);
    // And again: nothing left to refetch.
    assert!(sync(&fresh).is_ok());
    assert!(sync(&behind).is_ok());
}

/// One sealed inspection under four keys is one record (its own id); the device's retry under
/// its id is a duplicate.
#[test]
fn an_inspection_is_one_record_by_its_id_whatever_key_it_arrives_under() {
    let Some((server, _data)) = start("inspection") else {
        return;
    };
    let inspector = token(&server, "网格员刘", Role::Inspector);
    let id = "0193a1b2-0000-7000-8000-00000000e001";
    let sealed = serde_json::to_string(&inspection(id, DAY + 9 * H)).unwrap();
    let keys = [id.to_owned(), "k-2".into(), "k-3".into(), "k-4".into()];
    let entries: Vec<(String, &str, String)> = keys
        .iter()
        .map(|k| (k.clone(), "inspection", sealed.clone()))
        .collect();
    let answers = push(&server, &inspector, &entries);
    assert_eq!(answers[0], ("applied".into(), String::new()));
    for (status, reason) in &answers[1..] {
        assert_eq!(status, "rejected");
        assert!(reason.starts_with("record.key_mismatch"), "{reason}");
    }
    // The device retries (its answer was lost): a duplicate, not a second record.
    let retry = push(&server, &inspector, &entries[..1]);
    assert_eq!(retry[0].0, "duplicate");
    let stored = admin(&server).records(Some("inspection")).unwrap().records;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].idempotency_key, id);
}

fn session(id: &str, machine_id: &str, certificate_no: &str, at_ms: i64) -> String {
    serde_json::to_string(&WorkSession {
        id: id.into(),
        machine_id: machine_id.into(),
        certificate_no: certificate_no.into(),
        started_at_ms: at_ms,
        allowed: true,
        reason_codes: vec![],
        permit_id: None,
        position: None,
        created_at_ms: at_ms,
    })
    .unwrap()
}

/// Start-work records: impossible times refused; a machine or licence the registry does not hold,
/// or a welder's phone recording someone else's certificate, kept (the phone decided offline) and
/// flagged.
#[test]
fn start_work_records_out_of_window_are_refused_and_unknown_machines_flagged() {
    let Some((server, data)) = start("sessions") else {
        return;
    };
    admin(&server)
        .write_registry(&[
            RegistryChange::UpsertMachine(machine("M-0001")),
            RegistryChange::UpsertLicence(licence("T370983199001011234")),
        ])
        .unwrap();
    let welder = signer_token(
        &server,
        ("李四", "T370983199001011234"),
        Role::Welder,
        &[],
        7,
    );
    let now = weldguard_server::db::now_ms();
    let year_2999 = 32_503_680_000_000;
    let bad = [
        ("w-max", i64::MAX),
        ("w-min", i64::MIN),
        ("w-neg", -1),
        ("w-2999", year_2999),
        ("w-2019", 1_546_300_800_000),
        ("w-ahead", now + 3_600_000),
    ];
    let entries: Vec<(String, &str, String)> = bad
        .iter()
        .map(|(k, at)| {
            (
                k.to_string(),
                "work_session",
                session(k, "M-0001", "T370983199001011234", *at),
            )
        })
        .collect();
    for (status, reason) in push(&server, &welder, &entries) {
        assert_eq!(status, "rejected");
        assert!(reason.starts_with("session.bad_time"), "{reason}");
    }
    let good = [
        ("w-ok", "M-0001", "T370983199001011234"),
        ("w-nomachine", "M-9999", "T370983199001011234"),
        ("w-nolicence", "M-0001", "T999"),
        ("w-neither", "M-9999", "T999"),
    ];
    let entries: Vec<(String, &str, String)> = good
        .iter()
        .map(|(k, m, c)| {
            (
                k.to_string(),
                "work_session",
                session(k, m, c, now - 60_000),
            )
        })
        .collect();
    let answers = push(&server, &welder, &entries);
    assert!(answers.iter().all(|(s, _)| s == "applied"), "{answers:?}");
    let db = open_db(&data);
    let flags = |k: &str| db.record_flags(k).unwrap();
    assert!(flags("w-ok").is_empty());
    assert_eq!(flags("w-nomachine"), vec!["session.unknown_machine"]);
    // T999 is not the welder whose phone recorded it either.
    assert_eq!(
        flags("w-nolicence"),
        vec![
            "session.other_welders_certificate",
            "session.unknown_licence"
        ]
    );
    assert_eq!(
        flags("w-neither"),
        vec![
            "session.other_welders_certificate",
            "session.unknown_licence",
            "session.unknown_machine"
        ]
    );
    let stored = admin(&server)
        .records(Some("work_session"))
        .unwrap()
        .records;
    assert_eq!(stored.len(), 4, "only the possible ones are stored");
}

/// Add `field` to the JSON object at `path` (dot-separated keys) of `payload`.
fn with_extra(payload: &str, path: &[&str], field: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(payload).unwrap();
    let mut at = &mut v;
    for p in path {
        at = &mut at[*p];
    }
    at.as_object_mut()
        .unwrap()
        .insert(field.into(), serde_json::json!("unsigned"));
    v.to_string()
}

/// Fields outside the core types are refused for every kind, at the top and deep inside, and
/// nothing of them is stored; the same payloads without them go through.
#[test]
fn unsigned_extra_fields_are_refused_and_never_stored() {
    let Some((server, _data)) = start("extra-fields") else {
        return;
    };
    let supervisor = fixture_signers(&server);
    let f = Fx::new();
    let draft = f.draft();
    let (key, clean) = payload("s0", "draft", &draft);
    let now = weldguard_server::db::now_ms();
    let id = "0193a1b2-0000-7000-8000-00000000e002";
    let sealed = serde_json::to_string(&inspection(id, DAY + 9 * H)).unwrap();
    let work = session("w-1", "M-1", "T1", now);
    let attempts = vec![
        (key.clone(), "permit_step", with_extra(&clean, &[], "note")),
        (
            key.clone(),
            "permit_step",
            with_extra(&clean, &["permit"], "approved_by"),
        ),
        (
            key.clone(),
            "permit_step",
            with_extra(&clean, &["permit", "content"], "x"),
        ),
        (
            id.to_owned(),
            "inspection",
            with_extra(&sealed, &[], "extra"),
        ),
        (
            id.to_owned(),
            "inspection",
            with_extra(&sealed, &["body"], "extra"),
        ),
        (
            "w-1".to_owned(),
            "work_session",
            with_extra(&work, &[], "extra"),
        ),
    ];
    for (status, reason) in push(&server, &supervisor, &attempts) {
        assert_eq!(status, "rejected");
        assert!(reason.starts_with("record.unknown_field"), "{reason}");
    }
    let stored = admin(&server).records(None).unwrap().records;
    assert!(stored.is_empty(), "{stored:?}");
    // The clean payloads: applied, as a device sends them.
    let answers = push(
        &server,
        &supervisor,
        &[
            (key, "permit_step", clean),
            (id.to_owned(), "inspection", sealed),
            ("w-1".to_owned(), "work_session", work),
        ],
    );
    assert!(answers.iter().all(|(s, _)| s == "applied"), "{answers:?}");
    let stored = admin(&server).records(None).unwrap().records;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|r| !r.payload.contains("unsigned")));
}
