//! The warnings about work against its permit and its time (#19 step 2,
//! docs/adr/0017-warnings-and-scope.md) end to end: the server binary on loopback (SQLite here,
//! PostgreSQL in `warnings_kinds_e2e_postgres.rs`), a registry and work calendar written by the
//! admin, a crew of phones taking real signed permits through the platform, and a welder's phone
//! pushing work sessions (one push answered into a dropped connection, so the client pushes it
//! again). Checked: exactly which `start_without_permit`, `special_period_without_escalation`,
//! `session_open_too_long` and `fire_watch_missing` warnings appear, once each, at push time or
//! from the deadline queue's worker, and nothing with `--warnings false`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weldguard_core::store::NewWorkSession;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_model::domain::{Machine, MachineClass, MachineKind, MachineStatus};
use weldguard_model::records::{AnnouncedPeriod, CalendarDay, CalendarDayKind, RegistryChange};
use weldguard_model::warnings::{Warning, WarningList};
pub(crate) use weldguard_tests::permits::Until;
use weldguard_tests::permits::{DAY, H, Rules, sync as sync_device};
use weldguard_tests::{
    FaultProxy, ServerBackend, ServerData, ServerProcess, WelderPhone, raw_call,
};

pub(crate) const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
pub(crate) const ADMIN: &str = "e2e-admin-token-kinds-0123456";
/// 2026-12-01T00:00:00Z (08:00 China time, a Tuesday).
pub(crate) const T0: i64 = 1_796_083_200_000;
pub(crate) const HOUR: i64 = 3_600_000;
pub(crate) const CERT: &str = "T370983199001011234";
/// The machine the crew's permits name.
const PERMIT_MACHINE: &str = "M-370983-0001";

/// The database of these flows' servers (`warnings_kinds_e2e_postgres.rs` defines its own).
#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

pub(crate) fn call(
    server: &ServerProcess,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = raw_call(server.addr, method, path, Some(ADMIN), body.as_deref());
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Every warning the server holds (the admin's view), newest first.
pub(crate) fn warnings(server: &ServerProcess) -> Vec<Warning> {
    let (status, body) = call(server, "GET", "/v1/warnings?limit=500", None);
    assert_eq!(status, 200, "{body}");
    let page: WarningList = serde_json::from_value(body).unwrap();
    assert!(!page.has_more);
    page.warnings
}

/// (kind, machine, records) of each warning, sorted.
pub(crate) fn summary(list: &[Warning]) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<_> = list
        .iter()
        .map(|w| {
            (
                w.kind.as_str().to_owned(),
                w.machine_id.clone(),
                w.records.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Wait (at most a minute) until the servers hold `n` warnings, then a few more worker rounds
/// (`settle`), and return them: a warning raised twice, or one raised late, shows.
pub(crate) fn settled(server: &ServerProcess, n: usize, settle: Duration) -> Vec<Warning> {
    let start = Instant::now();
    while warnings(server).len() < n && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(settle);
    warnings(server)
}

pub(crate) type Phone = WelderPhone;

/// A welder's phone enrolled on `server`, pushing through `via`.
pub(crate) fn phone(server: &ServerProcess, via: &str) -> Phone {
    WelderPhone::enrol(server, via, policy())
}

/// Record a scan-to-start on the phone (as the start-work service does); its key.
pub(crate) fn scan(
    phone: &Phone,
    machine: &str,
    at_ms: i64,
    allowed: bool,
    permit: Option<&str>,
) -> String {
    let reasons = if allowed {
        Vec::new()
    } else {
        vec!["permit.missing".to_owned()]
    };
    phone
        .store
        .record_work_session(
            NewWorkSession {
                machine_id: machine.into(),
                certificate_no: CERT.into(),
                started_at_ms: at_ms,
                allowed,
                reason_codes: reasons,
                permit_id: permit.map(str::to_owned),
                position: None,
            },
            at_ms,
        )
        .unwrap()
        .id
}

pub(crate) fn sync(phone: &Phone) {
    phone.sync();
}

/// A machine for the registry.
fn machine(id: &str, class: MachineClass) -> RegistryChange {
    RegistryChange::UpsertMachine(Machine {
        machine_id: id.into(),
        kind: MachineKind::Arc,
        class,
        owner_org: "91370983MA3C000000".into(),
        region: 370983,
        status: MachineStatus::Active,
    })
}

/// Unix seconds of a China time, `d` days after 2026-11-30 (a Monday).
fn cst(d: i64, h: i64, min: i64) -> i64 {
    DAY + d * 24 * H + h * H + min * 60
}

fn write_registry(server: &ServerProcess, changes: &[RegistryChange]) {
    SyncClient::new(&server.url(), Some(ADMIN.into()), policy())
        .unwrap()
        .write_registry(changes)
        .unwrap();
}

/// A session under a permit, pushed long ago, is due at once: the machine's next allowed start or
/// the permit's work stopping ends it; one with no end within the limit (no later start, or a
/// later start after the limit, while the permit's work goes on) raises `session_open_too_long`
/// from the queue, once, also after the push is retried. A start within the limit raises nothing
/// yet; a session whose permit completed in time raises nothing; without a permit nothing is
/// queued (no record says the machine stayed on); a refusal opens no session.
#[test]
fn open_sessions_fall_due_from_the_queue_once() {
    let Some(data) = ServerData::new(crate::BACKEND, "kinds-session") else {
        return;
    };
    let server = ServerProcess::start_with_options(
        SERVER,
        data,
        ADMIN,
        &["--deadline-poll-ms", "100", "--warn-session-hours", "24"],
        None,
    );
    let (status, body) = call(
        &server,
        "POST",
        "/v1/admin/places",
        Some(json!([{"op": "place_machine", "machine_id": "M-B",
                     "place": {"district": "370902", "grid": "G-7"}}])),
    );
    assert_eq!(status, 200, "{body}");
    // Two permits: one whose work started at 09:00 and never stopped, one completed at 12:00.
    let rules = Rules::new();
    let crew = crew(&server, &rules);
    let going = "0193a1b2-0000-7000-8000-0000000c0011";
    let done = "0193a1b2-0000-7000-8000-0000000c0012";
    permit_flow(&crew, &rules, going, Until::Started);
    permit_flow(&crew, &rules, done, Until::Closed);
    let t0 = cst(0, 9, 10) * 1000;

    let proxy = FaultProxy::start(server.addr);
    proxy.set_target("POST /v1/push");
    proxy.faults.drop_after.store(1, Ordering::SeqCst);
    let welder = phone(&server, &proxy.url());
    let _a1 = scan(&welder, "M-A", t0, true, Some(going));
    let a2 = scan(&welder, "M-A", t0 + 2 * HOUR, true, Some(going));
    let b1 = scan(&welder, "M-B", t0, true, Some(going));
    let b2 = scan(&welder, "M-B", t0 + 30 * HOUR, true, Some(going));
    let _c1 = scan(&welder, "M-C", t0, true, Some(done));
    let _e1 = scan(&welder, "M-E", t0, true, None);
    let _refused = scan(&welder, "M-F", t0, false, Some(going));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let _recent = scan(&welder, "M-D", now - HOUR, true, Some(going));
    sync(&welder);
    assert_eq!(
        proxy.faults.fired.load(Ordering::SeqCst),
        1,
        "one answer was lost"
    );
    sync(&welder);

    let all = settled(&server, 3, Duration::from_millis(1500));
    let kind = "session_open_too_long".to_owned();
    assert_eq!(
        summary(&all),
        vec![
            (kind.clone(), "M-A".to_owned(), vec![a2.clone()]),
            (kind.clone(), "M-B".to_owned(), vec![b1.clone()]),
            (kind, "M-B".to_owned(), vec![b2.clone()]),
        ]
    );
    let of = |key: &str| all.iter().find(|w| w.records[0] == key).unwrap();
    assert_eq!(of(&b1).detail["open_hours"], 30);
    assert_eq!(of(&b1).detail["end_known"], true);
    assert_eq!(of(&b1).detail["limit_hours"], 24);
    assert_eq!(of(&b1).at_ms, t0);
    assert_eq!(of(&b1).place.as_ref().unwrap().district, "370902");
    assert_eq!(of(&a2).detail["end_known"], false);
    assert_eq!(of(&a2).certificate_no.as_deref(), Some(CERT));

    // Pushing again changes nothing; the figures count each warning once.
    sync(&welder);
    assert_eq!(
        summary(&settled(&server, 3, Duration::from_millis(500))),
        summary(&all)
    );
    let (status, stats) = call(
        &server,
        "GET",
        "/v1/stats?from=2026-11-30&until=2026-12-01",
        None,
    );
    assert_eq!(status, 200, "{stats}");
    let open: i64 = stats["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["warnings_open"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(open, 3, "{stats}");

    // `--warnings false`: the same pushes queue and raise nothing.
    let Some(data) = ServerData::new(crate::BACKEND, "kinds-session-off") else {
        return;
    };
    let quiet = ServerProcess::start_with_options(
        SERVER,
        data,
        ADMIN,
        &[
            "--deadline-poll-ms",
            "100",
            "--warn-session-hours",
            "24",
            "--warnings",
            "false",
        ],
        None,
    );
    let welder = phone(&quiet, &quiet.url());
    scan(&welder, "M-A", T0, true, None);
    scan(&welder, "M-B", T0 + 30 * HOUR, true, None);
    sync(&welder);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(warnings(&quiet).is_empty());
}

pub(crate) type Crew = weldguard_tests::permits::Crew;

pub(crate) fn crew(server: &ServerProcess, rules: &Rules) -> Crew {
    Crew::enrol(server, rules, 31)
}

/// Take the crew's permit to `until` ([`weldguard_tests::permits::permit_flow`]); the key of
/// the start, or of the completion when it went that far.
pub(crate) fn permit_flow(crew: &Crew, rules: &Rules, permit_id: &str, until: Until) -> String {
    let keys = weldguard_tests::permits::permit_flow(crew, rules, permit_id, until);
    let last = if until == Until::Started { 5 } else { 6 };
    keys[last].clone()
}

/// The permit kinds: starts of machines that need a permit with none, an unknown one (judged
/// after the wait), one not valid then; starts in a holiday and a sensitive period, and under a
/// level 2 permit during a sensitive period announced after its approval; a permit completed and
/// never closed by its fire watch. A fixed station, a refusal, a permit arriving within the wait
/// and a permit closed in time raise nothing.
#[test]
fn permit_kinds_are_raised_once_at_push_and_from_the_queue() {
    let Some(data) = ServerData::new(crate::BACKEND, "kinds-permits") else {
        return;
    };
    let server = ServerProcess::start_with_options(
        SERVER,
        data,
        ADMIN,
        &[
            "--deadline-poll-ms",
            "100",
            // No session falls due here (sessions are the other test's).
            "--warn-session-hours",
            "8760",
            "--warn-permit-wait-secs",
            "20",
            "--warn-fire-watch-grace-secs",
            "8",
        ],
        None,
    );
    let date = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    write_registry(
        &server,
        &[
            machine(PERMIT_MACHINE, MachineClass::Mobile),
            machine("M-MOB-2", MachineClass::LegacyRegistered),
            machine("M-FIX", MachineClass::FixedStation),
            RegistryChange::SetCalendarDay(CalendarDay {
                date: date(2),
                kind: CalendarDayKind::Holiday,
            }),
            RegistryChange::AnnouncePeriod(AnnouncedPeriod {
                period_id: "2026-12-03-sensitive".into(),
                name: "重要会议期间".into(),
                from: cst(3, 0, 0),
                until: cst(4, 0, 0),
            }),
        ],
    );
    let rules = Rules::new();
    let crew = crew(&server, &rules);
    let p1 = "0193a1b2-0000-7000-8000-0000000c0001";
    let p2 = "0193a1b2-0000-7000-8000-0000000c0002";
    // P1: completed at 12:00 and never closed by its fire watch.
    let p1_completed = permit_flow(&crew, &rules, p1, Until::Completed);

    let proxy = FaultProxy::start(server.addr);
    proxy.set_target("POST /v1/push");
    proxy.faults.drop_after.store(1, Ordering::SeqCst);
    let welder = phone(&server, &proxy.url());
    let ms = |s: i64| s * 1000;
    // A Tuesday, no permit.
    let w1 = scan(&welder, "M-MOB-2", ms(cst(1, 10, 0)), true, None);
    // The holiday, and the sensitive period, no permit.
    let w2 = scan(&welder, "M-MOB-2", ms(cst(2, 10, 0)), true, None);
    let w3 = scan(&welder, "M-MOB-2", ms(cst(3, 10, 0)), true, None);
    // A fixed station needs no permit.
    let _w4 = scan(&welder, "M-FIX", ms(cst(2, 10, 0)), true, None);
    // A refusal started nothing.
    let _w5 = scan(&welder, "M-MOB-2", ms(cst(1, 11, 0)), false, None);
    // P1 after its completion.
    let w7 = scan(&welder, PERMIT_MACHINE, ms(cst(0, 18, 0)), true, Some(p1));
    // A permit the platform never receives.
    let w8 = scan(
        &welder,
        "M-MOB-2",
        ms(cst(1, 9, 0)),
        true,
        Some("0193a1b2-0000-7000-8000-0000000c0009"),
    );
    // P2, whose steps arrive after the session (within the wait).
    let _w9 = scan(&welder, PERMIT_MACHINE, ms(cst(0, 9, 30)), true, Some(p2));
    sync(&welder);
    assert_eq!(
        proxy.faults.fired.load(Ordering::SeqCst),
        1,
        "one answer was lost"
    );
    sync(&welder);

    // P2 arrives, and is closed by its fire watch in time.
    permit_flow(&crew, &rules, p2, Until::Closed);
    // A sensitive period announced after both approvals: work under P1 at 10:30 needed level 1.
    write_registry(
        &server,
        &[RegistryChange::AnnouncePeriod(AnnouncedPeriod {
            period_id: "2026-11-30-drill".into(),
            name: "应急演练".into(),
            from: cst(0, 10, 0),
            until: cst(0, 11, 0),
        })],
    );
    let w6 = scan(&welder, PERMIT_MACHINE, ms(cst(0, 10, 30)), true, Some(p1));
    sync(&welder);

    let all = settled(&server, 9, Duration::from_millis(1500));
    let swp = "start_without_permit".to_owned();
    let sp = "special_period_without_escalation".to_owned();
    let mut expected = vec![
        (swp.clone(), "M-MOB-2".to_owned(), vec![w1.clone()]),
        (swp.clone(), "M-MOB-2".to_owned(), vec![w2.clone()]),
        (swp.clone(), "M-MOB-2".to_owned(), vec![w3.clone()]),
        (swp.clone(), PERMIT_MACHINE.to_owned(), vec![w7.clone()]),
        (swp, "M-MOB-2".to_owned(), vec![w8.clone()]),
        (sp.clone(), "M-MOB-2".to_owned(), vec![w2.clone()]),
        (sp.clone(), "M-MOB-2".to_owned(), vec![w3.clone()]),
        (sp, PERMIT_MACHINE.to_owned(), vec![w6.clone()]),
        (
            "fire_watch_missing".to_owned(),
            PERMIT_MACHINE.to_owned(),
            vec![p1_completed.clone()],
        ),
    ];
    expected.sort();
    assert_eq!(summary(&all), expected);
    let of = |kind: &str, key: &str| {
        all.iter()
            .find(|w| w.kind.as_str() == kind && w.records[0] == key)
            .unwrap()
    };
    let reason = |key: &str| of("start_without_permit", key).detail["reason_code"].clone();
    assert_eq!(reason(&w1), "permit.missing");
    assert_eq!(reason(&w7), "permit.not_approved");
    assert_eq!(
        of("start_without_permit", &w7).detail["permit_state"],
        "completed"
    );
    assert_eq!(reason(&w8), "permit.unknown");
    let special = |key: &str| of("special_period_without_escalation", key).detail.clone();
    assert_eq!(special(&w2)["reasons"][0]["reason"], "holiday");
    assert_eq!(special(&w3)["reasons"][0]["reason"], "sensitive_period");
    assert_eq!(special(&w6)["reasons"][0]["name"], "应急演练");
    assert_eq!(special(&w6)["required_level"], "level1");
    assert_eq!(special(&w6)["permit_level"], "level2");
    let watch = of("fire_watch_missing", &p1_completed);
    assert_eq!(watch.detail["permit_id"], p1);
    assert_eq!(watch.detail["watch_minutes"], 30);
    assert_eq!(watch.at_ms, ms(DAY + 12 * H));
    assert_eq!(watch.certificate_no.as_deref(), Some(CERT));

    // Everything pushed again (and every phone synced): nothing new.
    sync(&welder);
    for device in [&crew.applicant, &crew.checker, &crew.approver, &crew.closer] {
        sync_device(device);
    }
    assert_eq!(
        summary(&settled(&server, 9, Duration::from_millis(500))),
        expected
    );
}
