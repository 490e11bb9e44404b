//! End to end over real HTTP on loopback: the server binary as a child process (SQLite), several
//! enrolled devices with their own stores, offline work, sync, faults between device and server,
//! and the authorization table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus,
    OperationCategory, Revocation, RevocationTarget,
};
use weldguard_core::rules::id_number::check_character;
use weldguard_core::store::{NewWorkSession, OutboxState, RegistryChange, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{Progress, RetryPolicy, SyncClient, SyncError};
use weldguard_tests::{FaultProxy, ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "e2e-admin-token-0123456789";
/// 2025-11-29T00:00:00Z
const T0: i64 = 1_764_374_400_000;

/// The database of these flows' servers. `sync_e2e_postgres.rs` includes this file as a module and
/// defines its own `BACKEND` at its root, so the same flows run against PostgreSQL there.
#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

/// A server on `crate::BACKEND`; `None` when that backend's tests are skipped.
fn start_server() -> Option<ServerProcess> {
    let data = ServerData::new(crate::BACKEND, "server")?;
    Some(ServerProcess::start_on(SERVER, data, ADMIN))
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

/// A resident ID number of 肥城市 (370983) with a correct check character.
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

fn machine(n: u32) -> Machine {
    Machine {
        machine_id: format!("FC-M-{n:05}"),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C000000".into(),
        region: 370983,
        status: MachineStatus::Active,
    }
}

struct Device {
    _dir: TempDir,
    store: Store,
    client: SyncClient,
}

fn enrol(server_url: &str, admin: &SyncClient, person: &str, role: Role, via: &str) -> Device {
    let code = admin.create_enrolment(person, role).unwrap();
    let anonymous = SyncClient::new(server_url, None, fast_policy()).unwrap();
    let enrolled = anonymous.enrol(&code.code, "04aabbcc", person).unwrap();
    assert_eq!(enrolled.role, role);
    let dir = TempDir::new("device");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    let client = SyncClient::new(via, Some(enrolled.token), fast_policy()).unwrap();
    Device {
        _dir: dir,
        store,
        client,
    }
}

fn work(device: &Device, n: usize, machine_id: &str, cert: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            device
                .store
                .record_work_session(
                    NewWorkSession {
                        machine_id: machine_id.into(),
                        certificate_no: cert.into(),
                        started_at_ms: T0 + i as i64 * 60_000,
                        allowed: true,
                        reason_codes: vec![],
                        permit_id: None,
                        position: None,
                    },
                    T0 + i as i64 * 60_000,
                )
                .unwrap()
                .id
        })
        .collect()
}

fn sync(device: &Device) -> Result<weldguard_core::sync::SyncReport, SyncError> {
    let mut events: Vec<Progress> = Vec::new();
    let result = device.client.sync(
        &device.store,
        &mut |p| events.push(p),
        &AtomicBool::new(false),
    );
    if result.is_ok() {
        assert!(!events.is_empty(), "progress events are reported");
    }
    result
}

fn admin_client(server: &ServerProcess) -> SyncClient {
    SyncClient::new(&server.url(), Some(ADMIN.into()), fast_policy()).unwrap()
}

/// Each key exactly once on the server, and nothing else from these devices.
fn assert_exactly_once(admin: &SyncClient, keys: &[String]) {
    let records = admin.records(Some("work_session")).unwrap().records;
    let mut seen = std::collections::HashMap::new();
    for r in &records {
        *seen.entry(r.idempotency_key.clone()).or_insert(0) += 1;
    }
    for k in keys {
        assert_eq!(
            seen.get(k),
            Some(&1),
            "record {k} must be on the server exactly once"
        );
    }
}

#[test]
fn two_devices_work_offline_sync_and_every_record_arrives_exactly_once() {
    let Some(server) = start_server() else {
        return;
    };
    assert_eq!(raw_call(server.addr, "GET", "/health", None, None).0, 200);
    let admin = admin_client(&server);

    let mut changes: Vec<RegistryChange> = (0..50)
        .map(|i| RegistryChange::UpsertLicence(licence(i)))
        .collect();
    changes.extend((0..5).map(|i| RegistryChange::UpsertMachine(machine(i))));
    changes.push(RegistryChange::Bind(Binding {
        machine_id: machine(0).machine_id,
        certificate_no: licence(0).certificate_no,
    }));
    admin.write_registry(&changes).unwrap();

    let a = enrol(&server.url(), &admin, "张三", Role::Welder, &server.url());
    let b = enrol(
        &server.url(),
        &admin,
        "李四",
        Role::Supervisor,
        &server.url(),
    );
    // Offline work on both devices before any sync.
    let mut keys = work(&a, 130, "FC-M-00000", &licence(0).certificate_no);
    keys.extend(work(&b, 20, "FC-M-00001", &licence(1).certificate_no));

    let ra = sync(&a).unwrap();
    assert_eq!(
        (ra.pushed, ra.applied, ra.duplicate, ra.rejected),
        (130, 130, 0, 0)
    );
    assert_eq!(ra.pulled_changes, 56);
    let rb = sync(&b).unwrap();
    assert_eq!((rb.applied, rb.pulled_changes), (20, 56));
    assert_exactly_once(&admin, &keys);
    assert_eq!(admin.records(None).unwrap().records.len(), 150);
    assert_eq!(a.store.outbox_counts().unwrap().applied, 130);
    let stats = a.store.registry_stats().unwrap();
    assert_eq!((stats.licences, stats.machines, stats.bindings), (50, 5, 1));

    // A second sync pushes nothing and pulls nothing.
    let again = sync(&a).unwrap();
    assert_eq!((again.pushed, again.pulled_changes), (0, 0));

    // Deletes and revocations propagate.
    admin
        .write_registry(&[
            RegistryChange::DeleteLicence {
                certificate_no: licence(49).certificate_no,
            },
            RegistryChange::Revoke(Revocation {
                target: RevocationTarget::Licence,
                id: licence(48).certificate_no,
            }),
            RegistryChange::Unbind(Binding {
                machine_id: machine(0).machine_id,
                certificate_no: licence(0).certificate_no,
            }),
        ])
        .unwrap();
    let delta = sync(&a).unwrap();
    assert_eq!(delta.pulled_changes, 3);
    let stats = a.store.registry_stats().unwrap();
    assert_eq!(
        (stats.licences, stats.bindings, stats.revocations),
        (49, 0, 1)
    );

    // Device B missed those changes; the server forgets history; B must refetch and converges.
    admin.compact_history(None).unwrap();
    let refetch = sync(&b).unwrap();
    assert_eq!(refetch.refetches, 1);
    assert_eq!(b.store.registry_stats().unwrap().licences, 49);
    assert_eq!(b.store.registry_stats().unwrap().bindings, 0);
    assert_eq!(b.store.registry_stats().unwrap().revocations, 1);
    // A, already at the high water, is not asked to refetch.
    assert_eq!(sync(&a).unwrap().refetches, 0);
}

#[test]
fn rejected_records_are_answered_and_not_pushed_again() {
    let Some(server) = start_server() else {
        return;
    };
    let admin = admin_client(&server);
    // An inspector does not start welding work: its work sessions are refused, one by one.
    let inspector = enrol(
        &server.url(),
        &admin,
        "王五",
        Role::Inspector,
        &server.url(),
    );
    let keys = work(&inspector, 3, "FC-M-00000", "T1");
    let report = sync(&inspector).unwrap();
    assert_eq!((report.applied, report.rejected), (0, 3));
    let entry = inspector.store.outbox_entry(&keys[0]).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Rejected);
    assert!(
        entry
            .last_error
            .unwrap()
            .starts_with("auth.role_may_not_record"),
        "reason kept"
    );
    assert_eq!(sync(&inspector).unwrap().pushed, 0);
    assert!(admin.records(None).unwrap().records.is_empty());
}

#[test]
fn faults_between_device_and_server_still_give_each_record_exactly_once() {
    let Some(server) = start_server() else {
        return;
    };
    let admin = admin_client(&server);
    admin
        .write_registry(
            &(0..20)
                .map(|i| RegistryChange::UpsertLicence(licence(i)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let proxy = FaultProxy::start(server.addr);
    let device = enrol(&server.url(), &admin, "赵六", Role::Welder, &proxy.url());
    let mut keys = Vec::new();

    // The server commits, the answer is lost: the retry gets "duplicate" for every entry.
    proxy.set_target("POST /v1/push");
    keys.extend(work(&device, 30, "FC-M-00000", "T1"));
    proxy.faults.drop_after.store(1, Ordering::SeqCst);
    let report = sync(&device).unwrap();
    assert_eq!(proxy.faults.fired.swap(0, Ordering::SeqCst), 1);
    assert!(report.retries >= 1);
    assert_eq!((report.applied, report.duplicate), (0, 30));
    assert_exactly_once(&admin, &keys);

    // Dropped before reaching the server, then a 500, then a truncated answer.
    keys.extend(work(&device, 25, "FC-M-00000", "T1"));
    proxy.faults.drop_before.store(1, Ordering::SeqCst);
    proxy.faults.fail_500.store(1, Ordering::SeqCst);
    proxy.faults.truncate.store(1, Ordering::SeqCst);
    let report = sync(&device).unwrap();
    assert_eq!(proxy.faults.fired.swap(0, Ordering::SeqCst), 3);
    assert_eq!(report.applied + report.duplicate, 25);
    assert!(
        report.duplicate == 25,
        "the truncated answer came after the commit"
    );
    assert_exactly_once(&admin, &keys);

    // An answer delayed past the client's timeout.
    keys.extend(work(&device, 10, "FC-M-00000", "T1"));
    proxy.faults.delay_ms.store(1500, Ordering::SeqCst);
    let token_client = {
        // Same device token, short timeout.
        let code = admin.create_enrolment("赵六", Role::Welder).unwrap();
        let enrolled = SyncClient::new(&server.url(), None, fast_policy())
            .unwrap()
            .enrol(&code.code, "04aa", "second")
            .unwrap();
        SyncClient::new(
            &proxy.url(),
            Some(enrolled.token),
            RetryPolicy {
                request_timeout: Duration::from_millis(400),
                ..fast_policy()
            },
        )
        .unwrap()
    };
    let report = token_client
        .push(&device.store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(proxy.faults.fired.swap(0, Ordering::SeqCst), 1);
    assert!(report.retries >= 1);
    assert_eq!(report.applied + report.duplicate, 10);
    assert_exactly_once(&admin, &keys);

    // Pull new registry changes through a truncated answer and a 500.
    admin
        .write_registry(
            &(20..45)
                .map(|i| RegistryChange::UpsertLicence(licence(i)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    proxy.set_target("GET /v1/pull");
    proxy.faults.truncate.store(1, Ordering::SeqCst);
    proxy.faults.fail_500.store(1, Ordering::SeqCst);
    let report = sync(&device).unwrap();
    assert_eq!(proxy.faults.fired.swap(0, Ordering::SeqCst), 2);
    assert_eq!(report.pulled_changes, 25);
    assert_eq!(device.store.registry_stats().unwrap().licences, 45);
    assert_eq!(admin.records(None).unwrap().records.len(), keys.len());
    assert_eq!(
        device.store.outbox_counts().unwrap().applied,
        keys.len() as u64
    );
}

#[test]
fn a_network_failure_leaves_the_outbox_pending_and_the_next_sync_resumes() {
    let Some(server) = start_server() else {
        return;
    };
    let admin = admin_client(&server);
    let proxy = FaultProxy::start(server.addr);
    let device = enrol(&server.url(), &admin, "孙七", Role::Welder, &proxy.url());
    let keys = work(&device, 5, "FC-M-00000", "T1");
    proxy.set_target("POST /v1/push");
    proxy.faults.drop_after.store(100, Ordering::SeqCst);
    let err = sync(&device).unwrap_err();
    assert!(matches!(err, SyncError::Network(_)), "{err:?}");
    let counts = device.store.outbox_counts().unwrap();
    assert_eq!(counts.pending, 5, "unanswered entries stay pending");
    assert!(
        device
            .store
            .outbox_entry(&keys[0])
            .unwrap()
            .unwrap()
            .attempts
            >= 1
    );
    proxy.faults.drop_after.store(0, Ordering::SeqCst);
    let report = sync(&device).unwrap();
    assert_eq!(
        report.duplicate, 5,
        "the server had committed the first attempt"
    );
    assert_exactly_once(&admin, &keys);
}

#[test]
fn authorization_table_every_endpoint_every_role() {
    let Some(server) = start_server() else {
        return;
    };
    let admin = admin_client(&server);
    let mut tokens: Vec<(&str, Option<String>)> =
        vec![("none", None), ("bad", Some("forged".into()))];
    for role in Role::ALL {
        let code = match role {
            Role::Monitor => weldguard_tests::monitor_code(&server, "monitor", "city"),
            _ => admin.create_enrolment(role.as_str(), role).unwrap().code,
        };
        let token = SyncClient::new(&server.url(), None, fast_policy())
            .unwrap()
            .enrol(&code, "04", "phone")
            .unwrap()
            .token;
        tokens.push((role.as_str(), Some(token)));
    }
    let licence_json = serde_json::to_string(&licence(7)).unwrap();
    let machine_json = serde_json::to_string(&machine(7)).unwrap();
    let cert = licence(7).certificate_no;
    let licence_path = format!("/v1/admin/licences/{cert}");
    let binding_path = format!("/v1/admin/bindings/FC-M-00007/{cert}");
    // (method, path, body, roles allowed)
    let admin_only: &[&str] = &["admin"];
    let everyone: &[&str] = &["welder", "inspector", "supervisor", "admin", "monitor"];
    let phones: &[&str] = &["welder", "inspector", "supervisor", "admin"];
    let watchers: &[&str] = &["admin", "monitor"];
    let table: Vec<(&str, &str, Option<&str>, &[&str])> = vec![
        ("GET", "/v1/me", None, everyone),
        ("POST", "/v1/admin/places", Some("[]"), admin_only),
        (
            "POST",
            "/v1/admin/monitors",
            Some(r#"{"person":"x","scope":"district:370983"}"#),
            admin_only,
        ),
        ("GET", "/v1/warnings", None, watchers),
        (
            "GET",
            "/v1/stats?from=2026-12-01&until=2026-12-01",
            None,
            watchers,
        ),
        ("GET", "/v1/warnings.csv", None, watchers),
        ("GET", "/v1/ledger.csv?day=2026-12-01", None, watchers),
        // A stream never ends: only its status line is read.
        ("GET", "/v1/warnings/stream", None, watchers),
        ("GET", "/v1/platform/sites", None, watchers),
        (
            "POST",
            "/v1/admin/enrolments",
            Some(r#"{"person":"x","role":"welder"}"#),
            admin_only,
        ),
        ("POST", "/v1/admin/registry", Some("[]"), admin_only),
        ("PUT", &licence_path, Some(&licence_json), admin_only),
        ("DELETE", &licence_path, None, admin_only),
        (
            "PUT",
            "/v1/admin/machines/FC-M-00007",
            Some(&machine_json),
            admin_only,
        ),
        ("DELETE", "/v1/admin/machines/FC-M-00007", None, admin_only),
        ("PUT", &binding_path, None, admin_only),
        ("DELETE", &binding_path, None, admin_only),
        (
            "PUT",
            "/v1/admin/revocations/credential/C-1",
            None,
            admin_only,
        ),
        (
            "DELETE",
            "/v1/admin/revocations/credential/C-1",
            None,
            admin_only,
        ),
        ("POST", "/v1/admin/history/compact", Some("{}"), admin_only),
        ("GET", "/v1/admin/records", None, &["supervisor", "admin"]),
        ("POST", "/v1/push", Some(r#"{"entries":[]}"#), phones),
        ("GET", "/v1/pull", None, phones),
        ("GET", "/v1/permits", None, phones),
        ("GET", "/metrics", None, admin_only),
    ];
    let mut failures = Vec::new();
    for (method, path, body, allowed) in &table {
        for (who, token) in &tokens {
            let expected = match token {
                None => 401,
                Some(_) if *who == "bad" => 401,
                Some(_) if allowed.contains(who) => 200,
                Some(_) => 403,
            };
            let (status, text) = if *path == "/v1/warnings/stream" {
                (
                    weldguard_tests::status_line(server.addr, path, token.as_deref()),
                    String::new(),
                )
            } else {
                raw_call(server.addr, method, path, token.as_deref(), *body)
            };
            if status != expected {
                failures.push(format!(
                    "{who} {method} {path}: {status} (expected {expected}) {text}"
                ));
            }
        }
    }
    // The dashboard's pages of an id nobody holds: unknown to the watchers, refused to the other
    // roles (no token at all is the table's case above; more anonymous calls would reach the
    // per-address rate limit).
    for path in [
        "/v1/platform/sites/S-none",
        "/v1/platform/machines/M-none",
        "/v1/platform/welders/T-none",
        "/v1/platform/permits/P-none",
    ] {
        for (who, token) in tokens.iter().filter(|(w, _)| !["none", "bad"].contains(w)) {
            let expected = if watchers.contains(who) { 404 } else { 403 };
            let (status, text) = raw_call(server.addr, "GET", path, token.as_deref(), None);
            if status != expected || (expected == 404 && !text.contains("platform.unknown")) {
                failures.push(format!(
                    "{who} GET {path}: {status} (expected {expected}) {text}"
                ));
            }
        }
    }
    // Open endpoints.
    assert_eq!(raw_call(server.addr, "GET", "/health", None, None).0, 200);
    assert_eq!(
        raw_call(server.addr, "GET", "/openapi.json", None, None).0,
        200
    );
    let (status, body) = raw_call(
        server.addr,
        "POST",
        "/v1/enrol",
        None,
        Some(r#"{"code":"NOPE","public_key":"04","device_name":"x"}"#),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auth.bad_enrolment_code"));
    // Token refresh is open too (the token may have expired): the device key is the credential.
    let (status, body) = raw_call(
        server.addr,
        "POST",
        "/v1/auth/challenge",
        None,
        Some(r#"{"device_id":"nobody"}"#),
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("auth.unknown_device"), "{body}");
    let (status, body) = raw_call(
        server.addr,
        "POST",
        "/v1/auth/refresh",
        None,
        Some(r#"{"device_id":"nobody","nonce":"n","signature":"00"}"#),
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("auth.bad_nonce"), "{body}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_requests_get_clear_errors() {
    let Some(server) = start_server() else {
        return;
    };
    let (status, body) = raw_call(
        server.addr,
        "POST",
        "/v1/push",
        Some(ADMIN),
        Some("{not json"),
    );
    assert_eq!(status, 400);
    assert!(body.contains("request.invalid_json"));
    let (status, body) = raw_call(
        server.addr,
        "GET",
        "/v1/pull?cursor=garbage",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400);
    assert!(body.contains("sync.invalid_cursor"));
    let (status, body) = raw_call(
        server.addr,
        "GET",
        "/v1/pull?cursor=ffff.3",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 410);
    assert!(body.contains("sync.must_refetch"));
    let (status, _) = raw_call(server.addr, "GET", "/v1/pull?limit=0", Some(ADMIN), None);
    assert_eq!(status, 400);
    let (status, _) = raw_call(
        server.addr,
        "PUT",
        "/v1/admin/revocations/planet/x",
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(
        raw_call(server.addr, "GET", "/health", None, None).0,
        200,
        "still up"
    );
}
