//! Scan-to-start with the phone's position and the history of what the platform did with each
//! record, end to end: `app::start_work` records on a real profile database, a sync pushes to the
//! real server binary on loopback, and `app::history` shows the applied session and, for the one
//! the platform refused, its code and message as the platform sent them.
//!
//! `history_e2e_postgres.rs` runs the same flow on PostgreSQL.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::app::Lang;
use weldguard_core::app::history::{OutboxFilter, outbox, work_sessions};
use weldguard_core::app::start_work::{PositionInput, StartWorkInput, start_work};
use weldguard_core::domain::{
    Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus, OperationCategory,
};
use weldguard_core::store::{OutboxState, RegistryChange, WorkSession};
use weldguard_core::sync::protocol::{NewEnrolment, Role};
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "history-admin-token-0123456789";
const CERT: &str = "T11010519491231002X";
const MACHINE: &str = "M-370983-0001";

#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

#[test]
fn the_position_reaches_the_platform_and_a_refused_session_shows_why() {
    let Some(data) = ServerData::new(crate::BACKEND, "history") else {
        return;
    };
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    admin
        .write_registry(&[
            RegistryChange::UpsertLicence(Licence {
                certificate_no: CERT.into(),
                id_number: "11010519491231002X".into(),
                name: "赵六".into(),
                categories: vec![OperationCategory::FusionWeldingAndCutting],
                issued_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
                expires_on: NaiveDate::from_ymd_opt(2030, 2, 28).unwrap(),
                next_review_on: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
                review_extended: false,
                status: LicenceStatus::Valid,
                employer_org: Some("91370983MA3C0XXXXX".into()),
            }),
            RegistryChange::UpsertMachine(Machine {
                machine_id: MACHINE.into(),
                kind: MachineKind::Arc,
                class: MachineClass::FixedStation,
                owner_org: "91370983MA3C0XXXXX".into(),
                region: 370983,
                status: MachineStatus::Active,
            }),
        ])
        .unwrap();
    let code = admin
        .enrolment(&NewEnrolment {
            person: "赵六".into(),
            role: Role::Welder,
            person_id: Some(CERT.into()),
            permit_roles: Vec::new(),
        })
        .unwrap();
    let token = SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, "04aabbcc", "赵六")
        .unwrap()
        .token;
    let client = SyncClient::new(&server.url(), Some(token), policy()).unwrap();

    let dir = TempDir::new("history-phone");
    let device = weldguard_core::app::Device::open(dir.path().join("phone.db")).unwrap();
    // The phone pulls the registry, then scans (unsigned codes: the registry answers).
    client
        .sync(device.store(), &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let scan = |at: i64| StartWorkInput {
        machine_text: MACHINE.into(),
        welder_text: CERT.into(),
        site_id: "site-370983-001".into(),
        now: at,
        position: Some(PositionInput::Degrees {
            latitude: 36.182,
            longitude: 116.772,
            accuracy_m: 9.0,
        }),
        lang: Lang::En,
    };
    let today = start_work(&device, scan(now - 60)).unwrap();
    assert!(today.allowed, "{:?}", today.reasons);
    // A phone whose clock says 2019: the platform refuses the record (session.bad_time).
    let stale = start_work(&device, scan(1_546_300_800)).unwrap();
    let report = client
        .sync(device.store(), &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!((report.pushed, report.applied, report.rejected), (2, 1, 1));

    let refused = outbox(&device, OutboxFilter::Rejected, 10).unwrap();
    assert_eq!(refused.entries.len(), 1);
    let entry = &refused.entries[0];
    assert_eq!(
        Some(&entry.entry.idempotency_key),
        stale.session_id.as_ref()
    );
    let refusal = entry.refusal.as_ref().unwrap();
    assert_eq!(refusal.code, "session.bad_time", "{refusal:?}");
    assert!(refusal.message.contains("2020"), "{refusal:?}");
    assert_eq!((refused.counts.applied, refused.counts.rejected), (1, 1));

    let page = work_sessions(&device, None, 10).unwrap();
    let states: Vec<_> = page.sessions.iter().map(|s| s.outbox_state).collect();
    assert_eq!(states, vec![OutboxState::Rejected, OutboxState::Applied]);

    // The platform keeps the applied session with the position the phone recorded.
    let stored = admin.records(Some("work_session")).unwrap().records;
    assert_eq!(stored.len(), 1);
    let session: WorkSession = serde_json::from_str(&stored[0].payload).unwrap();
    assert_eq!(Some(&session.id), today.session_id.as_ref());
    assert_eq!(session.position, today.position);
    assert_eq!(session.position.unwrap().latitude_e7, 361_820_000);
}
