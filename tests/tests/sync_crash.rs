//! Kill -9 of the device during sync, many times: after a final clean sync every record is on the
//! server exactly once, the device's outbox is fully applied, its registry cache matches the
//! server's feed, and its database passes the integrity check. Rounds: `WG_CRASH_ROUNDS` (default
//! 200). Runs against the server on SQLite and on PostgreSQL (skipped with a printed reason when no
//! test cluster is configured, a failure under `cargo xtask test`).
//!
//! The kill is placed by the client's own progress lines, not by a guessed delay: each round reads
//! one to three events (never the last one, so the sync is still under way), then kills at once or
//! after a further random delay of up to 3 ms, which lands inside requests and transactions.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use weldguard_core::domain::Binding;
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const CLIENT: &str = env!("CARGO_BIN_EXE_wg-sync-client");
const ADMIN: &str = "crash-admin-token";
const T0: i64 = 1_764_374_400_000;

/// xorshift64: deterministic delays.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn killing_the_client_mid_sync_never_loses_or_duplicates_a_record() {
    kill_rounds(ServerBackend::Sqlite);
}

#[test]
fn killing_the_client_mid_sync_never_loses_or_duplicates_a_record_on_postgres() {
    kill_rounds(ServerBackend::Postgres);
}

fn kill_rounds(backend: ServerBackend) {
    let Some(data) = ServerData::new(backend, "crash-server") else {
        return;
    };
    let rounds: u32 = std::env::var("WG_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy).unwrap();
    let code = admin.create_enrolment("张三", Role::Welder).unwrap();
    let token = SyncClient::new(&server.url(), None, policy)
        .unwrap()
        .enrol(&code.code, "04", "crash")
        .unwrap()
        .token;
    let device_dir = TempDir::new("crash-device");
    let db = device_dir.path().join("device.sqlite");
    let store = Store::open(&db).unwrap();

    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut keys = Vec::new();
    let mut registry_changes = 0u64;
    let mut killed_running = 0;
    for round in 0..rounds {
        // Work keeps happening on the device, and the registry keeps changing.
        for i in 0..25 {
            let at = T0 + i64::from(round) * 1000 + i;
            keys.push(
                store
                    .record_work_session(
                        NewWorkSession {
                            machine_id: format!("M-{round}"),
                            certificate_no: "T1".into(),
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
        let changes: Vec<RegistryChange> = (0..200)
            .map(|i| {
                RegistryChange::Bind(Binding {
                    machine_id: format!("M-{round}"),
                    certificate_no: format!("T{i}"),
                })
            })
            .collect();
        admin.write_registry(&changes).unwrap();
        registry_changes += 200;

        let mut child = Command::new(CLIENT)
            .args([server.url().as_str(), token.as_str()])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A round's sync has at least four events (push start, a pushed batch, pull start, a
        // pulled page): stopping after one to three of them is always mid-sync.
        let events = 1 + next(&mut rng) % 3;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..events {
            if lines.next().is_none() {
                break;
            }
        }
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_micros(next(&mut rng) % 3_000));
        }
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed_running += 1;
        }
    }
    // Every immediate kill lands mid-sync; the delayed ones mostly do.
    assert!(
        killed_running * 2 >= rounds,
        "most kills should land mid-sync ({killed_running} of {rounds})"
    );
    eprintln!("crash test: {killed_running} of {rounds} rounds killed mid-sync");

    // A clean sync at the end converges.
    let client = SyncClient::new(&server.url(), Some(token), policy).unwrap();
    client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    store.integrity_check().unwrap();
    let counts = store.outbox_counts().unwrap();
    assert_eq!(counts.applied, keys.len() as u64);
    assert_eq!(counts.pending + counts.sent + counts.rejected, 0);
    let records = admin.records(Some("work_session")).unwrap().records;
    assert_eq!(
        records.len(),
        keys.len(),
        "nothing lost, nothing duplicated"
    );
    let mut on_server: Vec<&str> = records.iter().map(|r| r.idempotency_key.as_str()).collect();
    on_server.sort_unstable();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(on_server, expected);
    assert_eq!(
        store.registry_stats().unwrap().bindings,
        registry_changes,
        "every binding pulled once"
    );
}
