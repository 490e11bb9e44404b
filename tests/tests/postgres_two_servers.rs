//! Two server processes on one PostgreSQL database: a device pushing the same records through
//! both gets each applied exactly once, and a device pulling while registry writers work through
//! both servers ends with exactly the server's registry (no change passed over by its cursor).
//! Skipped with a printed reason when no test cluster is configured, a failure under
//! `cargo xtask test` (see `weldguard_server::db::test_support`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::domain::{Licence, LicenceStatus, OperationCategory};
use weldguard_core::rules::id_number::check_character;
use weldguard_core::rules::registry::RegistryView;
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "pg-two-servers-admin-token";
/// 2025-11-29T00:00:00Z
const T0: i64 = 1_764_374_400_000;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
    }
}

/// A resident ID number of 肥城市 (370983) with a correct check character; distinct for
/// serials below 7000.
fn id_number(serial: u32) -> String {
    let first17 = format!("370983199001{:02}{:03}", 1 + serial % 28, serial % 1000);
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    format!("{first17}{}", check_character(&bytes).unwrap())
}

fn licence(serial: u32) -> Licence {
    let id = id_number(serial);
    Licence {
        certificate_no: format!("T{id}"),
        id_number: id,
        name: format!("焊工{serial}"),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: None,
    }
}

/// Two servers over one fresh database; `None` when the PostgreSQL tests are skipped.
fn two_servers(name: &str) -> Option<(ServerProcess, ServerProcess)> {
    let data = ServerData::new(ServerBackend::Postgres, name)?;
    // The second starts while the first may still be migrating: the advisory lock orders them.
    let b = ServerProcess::start_sharing(SERVER, &data, ADMIN);
    let a = ServerProcess::start_on(SERVER, data, ADMIN);
    Some((a, b))
}

fn admin(server: &ServerProcess) -> SyncClient {
    SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap()
}

/// Enrol a device through `server`; returns its token.
fn enrol(server: &ServerProcess, person: &str, role: Role) -> String {
    let code = admin(server).create_enrolment(person, role).unwrap();
    SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, "04aabbcc", person)
        .unwrap()
        .token
}

#[test]
fn the_same_records_pushed_through_two_servers_are_applied_once() {
    let Some((a, b)) = two_servers("push") else {
        return;
    };
    let token = enrol(&a, "张三", Role::Welder);
    let dir = TempDir::new("pg-push-device");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    let via_a = SyncClient::new(&a.url(), Some(token.clone()), policy()).unwrap();
    let via_b = SyncClient::new(&b.url(), Some(token), policy()).unwrap();
    let mut keys = Vec::new();
    let (mut applied, mut duplicate) = (0u64, 0u64);
    for round in 0..4i64 {
        for i in 0..150i64 {
            let at = T0 + (round * 1000 + i) * 60_000;
            keys.push(
                store
                    .record_work_session(
                        NewWorkSession {
                            machine_id: "FC-M-00001".into(),
                            certificate_no: licence(1).certificate_no,
                            started_at_ms: at,
                            allowed: true,
                            reason_codes: vec![],
                            permit_id: None,
                            position: None,
                        },
                        at,
                    )
                    .unwrap()
                    .id,
            );
        }
        // Both servers receive the same pending entries at the same time.
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| via_a.push(&store, &mut |_| {}, &AtomicBool::new(false)));
            let tb = s.spawn(|| via_b.push(&store, &mut |_| {}, &AtomicBool::new(false)));
            (ta.join().unwrap().unwrap(), tb.join().unwrap().unwrap())
        });
        assert_eq!(ra.rejected + rb.rejected, 0);
        applied += ra.applied + rb.applied;
        duplicate += ra.duplicate + rb.duplicate;
    }
    assert_eq!(applied, 600, "each record applied exactly once");
    let records = admin(&b).records(Some("work_session")).unwrap().records;
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for r in &records {
        *seen.entry(r.idempotency_key.as_str()).or_default() += 1;
    }
    assert_eq!(records.len(), 600);
    for k in &keys {
        assert_eq!(seen.get(k.as_str()), Some(&1), "record {k} exactly once");
    }
    eprintln!("two-server push: 600 applied, {duplicate} answered duplicate");
}

#[test]
fn a_device_pulling_during_writes_on_two_servers_misses_nothing() {
    let Some((a, b)) = two_servers("pull") else {
        return;
    };
    let token = enrol(&b, "王五", Role::Inspector);
    let dir = TempDir::new("pg-pull-device");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    let pull_a = SyncClient::new(&a.url(), Some(token.clone()), policy()).unwrap();
    let pull_b = SyncClient::new(&b.url(), Some(token), policy()).unwrap();

    const WRITERS: u32 = 6;
    const WRITES: u32 = 50;
    let writing = AtomicBool::new(true);
    let mut pulls = 0u32;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                // Writers alternate between the two servers; every change is a licence of its
                // own, so a change passed over stays missing on the device.
                let client = admin(if w.is_multiple_of(2) { &a } else { &b });
                s.spawn(move || {
                    for i in 0..WRITES {
                        let serial = w * WRITES + i;
                        client
                            .write_registry(&[RegistryChange::UpsertLicence(licence(serial))])
                            .unwrap();
                    }
                })
            })
            .collect();
        let writing = &writing;
        s.spawn(move || {
            for w in writers {
                w.join().unwrap();
            }
            writing.store(false, Ordering::SeqCst);
        });
        while writing.load(Ordering::SeqCst) {
            let via = if pulls.is_multiple_of(2) {
                &pull_a
            } else {
                &pull_b
            };
            via.pull(&store, &mut |_| {}, &AtomicBool::new(false))
                .unwrap();
            pulls += 1;
        }
    });
    // One more pull after all writers stopped.
    pull_a
        .pull(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert!(
        pulls > 5,
        "the device pulled while the writers worked ({pulls})"
    );

    let total = WRITERS * WRITES;
    let mut missing = Vec::new();
    for serial in 0..total {
        let expected = licence(serial);
        match store.licence(&expected.certificate_no).unwrap() {
            Some(got) => assert_eq!(got, expected),
            None => missing.push(serial),
        }
    }
    assert!(
        missing.is_empty(),
        "the device's cursor passed over {} changes: {missing:?}",
        missing.len()
    );
    assert_eq!(store.registry_stats().unwrap().licences, u64::from(total));

    // The same registry as a fresh device reading the whole feed.
    let fresh_dir = TempDir::new("pg-pull-fresh");
    let fresh = Store::open(fresh_dir.path().join("device.sqlite")).unwrap();
    let report = pull_b
        .pull(&fresh, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(report.pulled_changes, u64::from(total));
    assert_eq!(
        fresh.registry_stats().unwrap().licences,
        store.registry_stats().unwrap().licences
    );
    eprintln!("two-server pull: {total} changes, {pulls} pulls during the writes");
}
