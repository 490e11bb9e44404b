//! The platform's warnings end to end (#19, docs/adr/0017-warnings-and-scope.md): the server
//! binary on loopback (SQLite here, PostgreSQL in `warnings_e2e_postgres.rs`), places written by
//! the admin, phones pushing work sessions through the real sync client (one push answered into a
//! dropped connection, so the client pushes it again), and monitoring accounts of two districts
//! and one town: exactly which warnings appear, once each; who sees which; the life cycle; bad
//! input; and attacks on the scope (another district's warning by id, a cursor of another scope).

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{Value, json};
use weldguard_core::store::NewWorkSession;
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_model::domain::{Licence, LicenceStatus, OperationCategory};
use weldguard_model::records::{RegistryChange, ScanPosition};
use weldguard_model::warnings::{Warning, WarningList, WarningState};
use weldguard_tests::{
    FaultProxy, ServerBackend, ServerData, ServerProcess, WelderPhone, raw_call,
};

pub(crate) const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
pub(crate) const ADMIN: &str = "e2e-admin-token-warnings-0123";
/// 2026-12-01T00:00:00Z
pub(crate) const T0: i64 = 1_796_083_200_000;
pub(crate) const HOUR: i64 = 3_600_000;
/// 肥城市 (370983) and 泰安市泰山区 (370902), 32 km apart.
const FEICHENG: (i32, i32) = (361_826_000, 1_167_685_000);
const TAISHAN: (i32, i32) = (361_941_000, 1_171_290_000);
pub(crate) const CERT: &str = "T370983199001011234";

/// The database of these flows' servers (`warnings_e2e_postgres.rs` defines its own).
#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

/// These flows check the kinds raised at push time: their sessions (2026-12-01) fall due from the
/// deadline queue only after a year (`session_open_too_long` has its own flows in
/// `warnings_kinds_e2e.rs`), so no worker round can add a warning while a test runs.
const SESSION_HOURS: &str = "8760";

/// The test server over `data` with `extra` options and sessions a year long.
fn start_server(data: ServerData, extra: &[&str]) -> ServerProcess {
    let mut options = vec!["--warn-session-hours", SESSION_HOURS];
    options.extend_from_slice(extra);
    ServerProcess::start_with_options(SERVER, data, ADMIN, &options, None)
}

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
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = raw_call(server.addr, method, path, Some(token), body.as_deref());
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn code_of(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["code"].as_str().unwrap_or(""))
}

/// A monitoring account of `scope`, enrolled like a device; its token.
pub(crate) fn monitor(server: &ServerProcess, person: &str, scope: &str) -> String {
    let (status, made) = call(
        server,
        "POST",
        "/v1/admin/monitors",
        ADMIN,
        Some(json!({"person": person, "scope": scope})),
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["scope"], scope);
    let anonymous = SyncClient::new(&server.url(), None, policy()).unwrap();
    let enrolled = anonymous
        .enrol(made["code"].as_str().unwrap(), "04aabbcc", person)
        .unwrap();
    assert_eq!(enrolled.role, Role::Monitor);
    enrolled.token
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
    reasons: &[&str],
    at: Option<(i32, i32)>,
) -> String {
    phone
        .store
        .record_work_session(
            NewWorkSession {
                machine_id: machine.into(),
                certificate_no: CERT.into(),
                started_at_ms: at_ms,
                allowed,
                reason_codes: reasons.iter().map(|r| r.to_string()).collect(),
                permit_id: None,
                position: at.map(|(latitude_e7, longitude_e7)| ScanPosition {
                    latitude_e7,
                    longitude_e7,
                    accuracy_m: 15,
                }),
            },
            at_ms,
        )
        .unwrap()
        .id
}

pub(crate) fn sync(phone: &Phone) {
    phone.sync();
}

fn list(server: &ServerProcess, token: &str, query: &str) -> (u16, Value) {
    call(server, "GET", &format!("/v1/warnings{query}"), token, None)
}

pub(crate) fn warnings(server: &ServerProcess, token: &str, query: &str) -> Vec<Warning> {
    let (status, body) = list(server, token, query);
    assert_eq!(status, 200, "{body}");
    let page: WarningList = serde_json::from_value(body).unwrap();
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

pub(crate) fn places() -> Value {
    let place = |d: &str, t: Option<&str>| {
        let mut p = json!({"district": d, "grid": "G-12"});
        if let Some(t) = t {
            p["town"] = json!(t);
        }
        p
    };
    json!([
        {"op": "upsert_site", "site_id": "S-FC-1", "name": "肥城新城工地",
         "place": place("370983", Some("370983001")),
         "location": {"latitude_e7": FEICHENG.0, "longitude_e7": FEICHENG.1}},
        {"op": "place_machine", "machine_id": "FC-M-1", "place": place("370983", Some("370983001")),
         "site_id": "S-FC-1"},
        {"op": "place_machine", "machine_id": "FC-M-2", "place": place("370983", Some("370983002")),
         "watch": "modified"},
        {"op": "place_machine", "machine_id": "TS-M-1", "place": place("370902", None),
         "location": {"latitude_e7": TAISHAN.0, "longitude_e7": TAISHAN.1}},
        {"op": "place_licence", "certificate_no": CERT, "place": place("370983", None)}
    ])
}

#[test]
fn pushed_starts_raise_each_warning_once_inside_its_place_and_scope() {
    let Some(data) = ServerData::new(crate::BACKEND, "warnings") else {
        return;
    };
    let server = start_server(data, &[]);
    assert_eq!(
        call(&server, "POST", "/v1/admin/places", ADMIN, Some(places())).0,
        200
    );
    let feicheng = monitor(&server, "肥城市应急局", "district:370983");
    let taishan = monitor(&server, "泰山区应急局", "district:370902");
    let town = monitor(&server, "新城街道", "town:370983001");
    let city = monitor(&server, "泰安市应急局", "city");

    // The phone pushes through a proxy that loses the answer of its first push after the server
    // committed it: the client pushes the same records again.
    let proxy = FaultProxy::start(server.addr);
    proxy.set_target("POST /v1/push");
    proxy.faults.drop_after.store(1, Ordering::SeqCst);
    let welder = phone(&server, &proxy.url());
    let near = Some((FEICHENG.0 + 500, FEICHENG.1));
    let s1 = scan(&welder, "FC-M-1", T0, true, &[], near);
    // Ten minutes later the same machine starts 32 km away: far from its site, and too fast.
    let s2 = scan(&welder, "FC-M-1", T0 + HOUR / 6, true, &[], Some(TAISHAN));
    // A machine marked modified, started without a position.
    let s3 = scan(&welder, "FC-M-2", T0, true, &[], None);
    // Three refusals for an expired licence at one machine within 24 h.
    let expired = ["licence.expired"];
    let r: Vec<String> = (0..3)
        .map(|i| scan(&welder, "TS-M-1", T0 + i * 4 * HOUR, false, &expired, None))
        .collect();
    // Near its registered location: nothing.
    let _quiet = scan(&welder, "TS-M-1", T0 + 20 * HOUR, true, &[], Some(TAISHAN));
    sync(&welder);
    assert_eq!(
        proxy.faults.fired.load(Ordering::SeqCst),
        1,
        "one answer was lost"
    );
    sync(&welder);

    let expected_feicheng = vec![
        ("machine_two_places".to_owned(), "FC-M-1".to_owned(), {
            let mut k = vec![s1.clone(), s2.clone()];
            k.sort();
            k
        }),
        (
            "start_far_from_machine".into(),
            "FC-M-1".into(),
            vec![s2.clone()],
        ),
        (
            "suspect_machine_started".into(),
            "FC-M-2".into(),
            vec![s3.clone()],
        ),
    ];
    let mut expected_taishan: Vec<(String, String, Vec<String>)> = r
        .iter()
        .map(|k| {
            (
                "start_refused_expired_licence".to_owned(),
                "TS-M-1".to_owned(),
                vec![k.clone()],
            )
        })
        .collect();
    expected_taishan.push(("repeated_refusals".into(), "TS-M-1".into(), r.clone()));
    expected_taishan.sort();
    let all = warnings(&server, ADMIN, "");
    assert_eq!(
        all.len(),
        7,
        "each warning once, also after the repeated push"
    );
    assert_eq!(
        summary(&warnings(&server, &feicheng, "")),
        expected_feicheng
    );
    assert_eq!(summary(&warnings(&server, &taishan, "")), expected_taishan);
    assert_eq!(summary(&warnings(&server, &city, "")), summary(&all));
    let in_town = summary(&warnings(&server, &town, ""));
    assert_eq!(
        in_town,
        expected_feicheng[..2].to_vec(),
        "FC-M-2 is in another town"
    );
    let far = all
        .iter()
        .find(|w| w.kind.as_str() == "start_far_from_machine")
        .unwrap();
    assert_eq!(far.site_id.as_deref(), Some("S-FC-1"));
    assert_eq!(
        far.place.as_ref().unwrap().town.as_deref(),
        Some("370983001")
    );
    assert_eq!(far.at_ms, T0 + HOUR / 6);
    let metres = far.detail["distance_m"].as_f64().unwrap();
    assert!((32_000.0..33_000.0).contains(&metres), "{metres}");
    // Filters.
    let q = "?kind=repeated_refusals&state=open";
    assert_eq!(warnings(&server, ADMIN, q).len(), 1);
    assert_eq!(warnings(&server, &feicheng, q).len(), 0);
    let q = format!("?from={}&until={}", T0 + HOUR, T0 + 9 * HOUR);
    assert_eq!(
        warnings(&server, ADMIN, &q).len(),
        3,
        "the refusals at +4 h and +8 h, and the burst the second completes"
    );
    assert_eq!(warnings(&server, &feicheng, "?town=370983002").len(), 1);
    assert_eq!(warnings(&server, ADMIN, "?district=370902").len(), 4);

    // Paging: one at a time, newest first, every warning once.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = list(&server, &feicheng, &format!("?limit=1&after={after}"));
        assert_eq!(status, 200, "{body}");
        let page: WarningList = serde_json::from_value(body).unwrap();
        seen.extend(page.warnings.into_iter().map(|w| w.id));
        if !page.has_more {
            break;
        }
        after = page.next_cursor;
    }
    assert_eq!(seen.len(), 3);
    let mut sorted = seen.clone();
    sorted.sort_by_key(|id| std::cmp::Reverse(id.parse::<i64>().unwrap()));
    assert_eq!(seen, sorted);
}

#[test]
fn a_monitor_never_reaches_past_its_scope() {
    let Some(data) = ServerData::new(crate::BACKEND, "warn-scope") else {
        return;
    };
    let server = start_server(data, &[]);
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let feicheng = monitor(&server, "肥城市应急局", "district:370983");
    let taishan = monitor(&server, "泰山区应急局", "district:370902");
    let welder = phone(&server, &server.url());
    scan(&welder, "FC-M-2", T0, true, &[], None);
    scan(&welder, "FC-M-2", T0 + HOUR, true, &[], None);
    scan(&welder, "TS-M-1", T0, false, &["licence.expired"], None);
    sync(&welder);
    let theirs = warnings(&server, &feicheng, "");
    assert_eq!(theirs.len(), 2);
    let id = &theirs[0].id;

    // Another district's warning by id: unknown, on every route, and nothing changes.
    let path = format!("/v1/warnings/{id}");
    let unknown = (404, "warnings.unknown");
    assert_eq!(
        code_of(&call(&server, "GET", &path, &taishan, None)),
        unknown
    );
    let ack = format!("{path}/acknowledge");
    assert_eq!(
        code_of(&call(&server, "POST", &ack, &taishan, None)),
        unknown
    );
    let close = format!("{path}/close");
    let note = Some(json!({"note": "越权"}));
    assert_eq!(
        code_of(&call(&server, "POST", &close, &taishan, note.clone())),
        unknown
    );
    assert_eq!(
        code_of(&call(
            &server,
            "GET",
            "/v1/warnings/not-a-number",
            &taishan,
            None
        )),
        unknown
    );
    let (_, mine) = call(&server, "GET", &path, &feicheng, None);
    assert_eq!(mine["state"], "open");
    // Asking for another district, or a town of it, by filter.
    for q in ["?district=370983", "?town=370983001"] {
        assert_eq!(
            code_of(&list(&server, &taishan, q)),
            (403, "warnings.out_of_scope"),
            "{q}"
        );
    }
    // A cursor from another scope (or other filters) is refused, not read.
    let (_, first) = list(&server, &feicheng, "?limit=1");
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert!(!cursor.is_empty());
    assert_eq!(
        code_of(&list(
            &server,
            &taishan,
            &format!("?limit=1&after={cursor}")
        )),
        (400, "warnings.bad_cursor")
    );
    assert_eq!(
        code_of(&list(
            &server,
            &feicheng,
            &format!("?limit=1&state=open&after={cursor}")
        )),
        (400, "warnings.bad_cursor")
    );
    let forged = format!("{}.{}", i64::MAX, cursor.split_once('.').unwrap().1);
    let (status, page) = list(&server, &taishan, &format!("?after={forged}"));
    assert_eq!(status, 400, "{page}");
    // The roles: a monitor neither pushes, pulls nor administers; a phone reads no warnings.
    let forbidden = (403, "auth.forbidden");
    let push = json!({"entries": []});
    assert_eq!(
        code_of(&call(&server, "POST", "/v1/push", &taishan, Some(push))),
        forbidden
    );
    assert_eq!(
        code_of(&call(&server, "GET", "/v1/pull", &taishan, None)),
        forbidden
    );
    assert_eq!(
        code_of(&call(
            &server,
            "POST",
            "/v1/admin/places",
            &feicheng,
            Some(places())
        )),
        forbidden
    );
    let new = Some(json!({"person": "x", "scope": "city"}));
    assert_eq!(
        code_of(&call(&server, "POST", "/v1/admin/monitors", &feicheng, new)),
        forbidden
    );
    // An ordinary enrolment code cannot make a monitor (it would have no scope).
    let (status, body) = call(
        &server,
        "POST",
        "/v1/admin/enrolments",
        ADMIN,
        Some(json!({"person": "x", "role": "monitor"})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("request.monitor_needs_scope"))
    );
    assert_eq!(warnings(&server, &taishan, "").len(), 1);
}

#[test]
fn the_life_cycle_refuses_bad_transitions_and_bad_input_changes_nothing() {
    let Some(data) = ServerData::new(crate::BACKEND, "warn-life") else {
        return;
    };
    let server = start_server(data, &[]);
    // A bad batch of places is refused whole: FC-M-9 is not marked modified.
    let bad = json!([
        {"op": "place_machine", "machine_id": "FC-M-9", "place": {"district": "370983"},
         "watch": "modified"},
        {"op": "place_machine", "machine_id": "FC-M-10", "place": {"district": "3709"}}
    ]);
    assert_eq!(
        code_of(&call(&server, "POST", "/v1/admin/places", ADMIN, Some(bad))),
        (400, "place.bad_district")
    );
    for (body, code) in [
        (
            json!([{"op": "place_licence", "certificate_no": "T1",
                 "place": {"district": "370983", "town": "370982001"}}]),
            "place.bad_town",
        ),
        (
            json!([{"op": "upsert_site", "site_id": "S", "name": "工地", "place": {"district": "370983"},
                 "location": {"latitude_e7": 950_000_000, "longitude_e7": 0}}]),
            "place.bad_location",
        ),
        (json!([{"op": "teleport"}]), "request.invalid_json"),
    ] {
        assert_eq!(
            code_of(&call(
                &server,
                "POST",
                "/v1/admin/places",
                ADMIN,
                Some(body)
            )),
            (400, code)
        );
    }
    let bad_scope = Some(json!({"person": "x", "scope": "district:37"}));
    assert_eq!(
        code_of(&call(
            &server,
            "POST",
            "/v1/admin/monitors",
            ADMIN,
            bad_scope
        )),
        (400, "request.invalid_json")
    );
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let feicheng = monitor(&server, "肥城市应急局", "district:370983");
    let welder = phone(&server, &server.url());
    scan(&welder, "FC-M-9", T0, true, &[], None);
    scan(&welder, "FC-M-2", T0, true, &[], None);
    sync(&welder);
    let list_now = warnings(&server, &feicheng, "");
    assert_eq!(
        summary(&list_now)
            .into_iter()
            .map(|s| s.1)
            .collect::<Vec<_>>(),
        ["FC-M-2"],
        "FC-M-9 was never marked"
    );
    let path = format!("/v1/warnings/{}", list_now[0].id);
    let ack = format!("{path}/acknowledge");
    let close = format!("{path}/close");
    let note = |n: &str| Some(json!({"note": n}));
    let conflict = (409, "warnings.bad_transition");
    // Open: closing first is refused.
    assert_eq!(
        code_of(&call(&server, "POST", &close, &feicheng, note("已核查"))),
        conflict
    );
    let (status, acked) = call(&server, "POST", &ack, &feicheng, None);
    assert_eq!(status, 200, "{acked}");
    let acked: Warning = serde_json::from_value(acked).unwrap();
    assert_eq!(acked.state, WarningState::Acknowledged);
    assert!(acked.acknowledged_by.unwrap().starts_with("肥城市应急局"));
    assert!(acked.acknowledged_at_ms.is_some());
    assert_eq!(code_of(&call(&server, "POST", &ack, ADMIN, None)), conflict);
    // A note is required, and a bad one changes nothing.
    for bad in [
        note(""),
        note("   "),
        Some(json!({})),
        note(&"长".repeat(1001)),
    ] {
        let answer = call(&server, "POST", &close, &feicheng, bad);
        assert_eq!(answer.0, 400, "{}", answer.1);
    }
    let (_, still) = call(&server, "GET", &path, &feicheng, None);
    assert_eq!(still["state"], "acknowledged");
    let (status, closed) = call(&server, "POST", &close, ADMIN, note("设备已封存 sealed"));
    assert_eq!(status, 200, "{closed}");
    let closed: Warning = serde_json::from_value(closed).unwrap();
    assert_eq!(closed.state, WarningState::Closed);
    assert_eq!(closed.close_note.as_deref(), Some("设备已封存 sealed"));
    assert!(closed.closed_by.unwrap().contains("admin"));
    assert_eq!(
        code_of(&call(&server, "POST", &close, &feicheng, note("again"))),
        conflict
    );
    assert_eq!(
        code_of(&call(&server, "POST", &ack, &feicheng, None)),
        conflict
    );
    assert_eq!(warnings(&server, &feicheng, "?state=closed").len(), 1);
    assert_eq!(warnings(&server, &feicheng, "?state=open").len(), 0);
    // Bad filters.
    for (q, code) in [
        ("?kind=bogus", "warnings.bad_kind"),
        ("?state=done", "warnings.bad_state"),
        ("?from=10&until=5", "request.bad_time"),
        ("?from=yesterday", "request.bad_time"),
        ("?limit=0", "request.bad_limit"),
        ("?district=370983&town=370983001", "warnings.bad_place"),
        ("?colour=red", "request.unknown_parameter"),
        ("?after=12", "warnings.bad_cursor"),
    ] {
        assert_eq!(code_of(&list(&server, &feicheng, q)), (400, code), "{q}");
    }
}

/// The thresholds are the server's options: with `--warn-far-m 50000 --warn-refusals 2`, a scan
/// 32 km from the machine raises nothing and two refusals are a burst; `--warnings false` raises
/// nothing at all.
#[test]
fn thresholds_come_from_the_servers_options() {
    let Some(data) = ServerData::new(crate::BACKEND, "warn-options") else {
        return;
    };
    let server = ServerProcess::start_with_options(
        SERVER,
        data,
        ADMIN,
        &[
            "--warn-far-m",
            "50000",
            "--warn-refusals",
            "2",
            "--warn-session-hours",
            SESSION_HOURS,
        ],
        None,
    );
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let welder = phone(&server, &server.url());
    scan(&welder, "FC-M-1", T0, true, &[], Some(TAISHAN));
    let r1 = scan(&welder, "TS-M-1", T0, false, &["licence.revoked"], None);
    let r2 = scan(
        &welder,
        "TS-M-1",
        T0 + HOUR,
        false,
        &["licence.revoked"],
        None,
    );
    sync(&welder);
    assert_eq!(
        summary(&warnings(&server, ADMIN, "")),
        [(
            "repeated_refusals".to_owned(),
            "TS-M-1".to_owned(),
            vec![r1, r2]
        )]
    );

    // `licence_expiring` within `--warn-licence-days 10`: a licence written to the registry with
    // 19 days left raises nothing at a start; renewed (rewritten) to 8 days left, the next start
    // raises it, once. (The registry's own check of the licence, queued by the write, waits for a
    // worker that does not run here: `a_licence_inside_its_window_is_raised_from_the_registry`.)
    let Some(data) = ServerData::new(crate::BACKEND, "warn-licence") else {
        return;
    };
    let server = ServerProcess::start_with_options(
        SERVER,
        data,
        ADMIN,
        &[
            "--warn-licence-days",
            "10",
            "--warn-session-hours",
            SESSION_HOURS,
            "--deadline-poll-ms",
            "3600000",
        ],
        None,
    );
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let put_licence = |expires_on: &str| {
        let licence = json!({
            "certificate_no": CERT, "id_number": "370983199001011234", "name": "李四",
            "categories": ["fusion_welding_and_cutting"], "issued_on": "2020-12-01",
            "expires_on": expires_on, "next_review_on": "2026-12-01",
            "review_extended": false, "status": "valid", "employer_org": null
        });
        let path = format!("/v1/admin/licences/{CERT}");
        let (status, body) = call(&server, "PUT", &path, ADMIN, Some(licence));
        assert_eq!(status, 200, "{body}");
    };
    let welder = phone(&server, &server.url());
    put_licence("2026-12-20");
    scan(&welder, "FC-M-1", T0, true, &[], None);
    sync(&welder);
    assert!(warnings(&server, ADMIN, "?kind=licence_expiring").is_empty());
    put_licence("2026-12-09");
    let first = scan(&welder, "FC-M-1", T0 + HOUR, true, &[], None);
    scan(&welder, "FC-M-1", T0 + 2 * HOUR, true, &[], None);
    sync(&welder);
    let raised = warnings(&server, ADMIN, "?kind=licence_expiring");
    assert_eq!(
        summary(&raised),
        [(
            "licence_expiring".to_owned(),
            "FC-M-1".to_owned(),
            vec![first]
        )]
    );
    assert_eq!(raised[0].detail["days_left"], 8);
    assert_eq!(raised[0].title_zh, "操作证即将到期");
    let (_, feicheng_open) = call(
        &server,
        "GET",
        "/v1/stats?from=2026-12-01&until=2026-12-01&district=370983",
        ADMIN,
        None,
    );
    assert_eq!(
        feicheng_open["totals"][0]["warnings_open"], 1,
        "{feicheng_open}"
    );

    let Some(data) = ServerData::new(crate::BACKEND, "warn-off") else {
        return;
    };
    let server =
        ServerProcess::start_with_options(SERVER, data, ADMIN, &["--warnings", "false"], None);
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let welder = phone(&server, &server.url());
    scan(&welder, "FC-M-2", T0, true, &[], Some(TAISHAN));
    scan(&welder, "TS-M-1", T0, false, &["licence.expired"], None);
    sync(&welder);
    assert_eq!(warnings(&server, ADMIN, "").len(), 0);
}

/// A licence in the registry, valid until `expires_on`.
fn licence(certificate_no: &str, expires_on: NaiveDate, status: LicenceStatus) -> RegistryChange {
    RegistryChange::UpsertLicence(Licence {
        certificate_no: certificate_no.into(),
        id_number: "370983199001011234".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2020, 12, 1).unwrap(),
        expires_on,
        next_review_on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        review_extended: false,
        status,
        employer_org: None,
    })
}

/// Wait (at most a minute) until the server holds `n` warnings, then `settle` more (a warning
/// raised twice, or late, shows); the admin's list.
fn settled(server: &ServerProcess, n: usize, settle: Duration) -> Vec<Warning> {
    let start = std::time::Instant::now();
    while warnings(server, ADMIN, "").len() < n && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(settle);
    warnings(server, ADMIN, "")
}

/// `weldguard_deadlines_queued` of the server's `/metrics`.
fn deadlines_queued(server: &ServerProcess) -> i64 {
    let (status, text) = raw_call(server.addr, "GET", "/metrics", Some(ADMIN), None);
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("weldguard_deadlines_queued "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no weldguard_deadlines_queued in {text}"))
}

/// A valid licence written to the registry raises `licence_expiring` once it comes within
/// `--warn-licence-days` of its expiry, with no start: at once when it already is (from the
/// deadline queue's worker), with no records and no machine, placed where the holder is placed.
/// Written again, or then used for a start, it raises nothing more. A licence further out stays
/// queued; a revoked one, or one renewed in the same write, raises nothing; with `--warnings
/// false` nothing is queued.
#[test]
fn a_licence_inside_its_window_is_raised_from_the_registry() {
    let Some(data) = ServerData::new(crate::BACKEND, "warn-licence-registry") else {
        return;
    };
    let options = ["--warn-licence-days", "10", "--deadline-poll-ms", "100"];
    let server = start_server(data, &options);
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let feicheng = monitor(&server, "王监", "district:370983");
    let taishan = monitor(&server, "赵监", "district:370902");
    let now = chrono::Utc::now();
    let today = (now + chrono::Duration::hours(8)).date_naive();
    let days = |n: u64| today.checked_add_days(chrono::Days::new(n)).unwrap();
    let write = |changes: &[RegistryChange]| {
        SyncClient::new(&server.url(), Some(ADMIN.into()), policy())
            .unwrap()
            .write_registry(changes)
            .unwrap();
    };
    write(&[
        licence(CERT, days(5), LicenceStatus::Valid),
        licence("T-LATER", days(40), LicenceStatus::Valid),
        licence("T-REVOKED", days(3), LicenceStatus::Revoked),
        licence("T-RENEWED", days(2), LicenceStatus::Valid),
        licence("T-RENEWED", days(200), LicenceStatus::Valid),
    ]);
    let raised = settled(&server, 1, Duration::from_millis(1000));
    assert_eq!(
        summary(&raised),
        [("licence_expiring".to_owned(), String::new(), Vec::new())]
    );
    let w = &raised[0];
    assert_eq!(w.certificate_no.as_deref(), Some(CERT));
    assert_eq!(
        w.place.as_ref().map(|p| p.district.as_str()),
        Some("370983")
    );
    assert_eq!(w.detail["days_left"], 5);
    assert_eq!(w.detail["expires_on"], days(5).to_string());
    assert_eq!(w.detail["from"], "registry");
    assert_eq!(w.title_en, "licence about to expire");
    // T-LATER (due in 30 days) and T-RENEWED's new date (in 190) wait in the queue.
    assert_eq!(deadlines_queued(&server), 2);
    assert_eq!(warnings(&server, &feicheng, "").len(), 1);
    assert!(warnings(&server, &taishan, "").is_empty());

    // Written again, then used at a start: still the one warning, counted once today.
    write(&[licence(CERT, days(5), LicenceStatus::Valid)]);
    let welder = phone(&server, &server.url());
    let at = now.timestamp_millis() - HOUR;
    scan(&welder, "FC-M-1", at, true, &[], None);
    sync(&welder);
    let again = settled(&server, 1, Duration::from_millis(1500));
    assert_eq!(summary(&again), summary(&raised));
    let day = today.to_string();
    let (_, stats) = call(
        &server,
        "GET",
        &format!("/v1/stats?from={day}&until={day}&district=370983"),
        ADMIN,
        None,
    );
    assert_eq!(stats["totals"][0]["warnings_open"], 1, "{stats}");

    let Some(data) = ServerData::new(crate::BACKEND, "warn-licence-registry-off") else {
        return;
    };
    let quiet = start_server(data, &["--warnings", "false", "--deadline-poll-ms", "100"]);
    SyncClient::new(&quiet.url(), Some(ADMIN.into()), policy())
        .unwrap()
        .write_registry(&[licence(CERT, days(5), LicenceStatus::Valid)])
        .unwrap();
    assert_eq!(deadlines_queued(&quiet), 0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(warnings(&quiet, ADMIN, "").is_empty());
}

/// A GET answered in full: (status, head, body), the body de-chunked when the server streamed
/// it (`Transfer-Encoding: chunked`).
pub(crate) fn get_full(server: &ServerProcess, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line + 2..line + 2 + size]);
            rest = &rest[line + 4 + size..];
        }
        body = out;
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, head, body)
}

/// An open warning stream: its connection, read line by line.
pub(crate) struct EventStream {
    reader: std::io::BufReader<std::net::TcpStream>,
    pub status: u16,
    pub head: String,
}

impl EventStream {
    /// Open `GET /v1/warnings/stream` and read the answer's head.
    pub(crate) fn open(server: &ServerProcess, token: &str, last_event_id: Option<&str>) -> Self {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let last = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /v1/warnings/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n{last}\r\n",
            server.addr
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line.to_lowercase());
        }
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        EventStream {
            reader,
            status,
            head,
        }
    }

    /// The next event: (id, warning). Comments (keep-alives) and chunk framing are skipped; a
    /// stream that sends nothing for 30 s fails the test.
    pub(crate) fn next(&mut self) -> (String, Warning) {
        use std::io::BufRead;
        let (mut id, mut event) = (None, None);
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "the stream ended");
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("event:") {
                assert_eq!(v.trim(), "warning");
            } else if let Some(v) = line.strip_prefix("data:") {
                event = Some(serde_json::from_str::<Warning>(v.trim()).unwrap());
            } else if line.is_empty()
                && let (Some(i), Some(e)) = (id.take(), event.take())
            {
                return (i, e);
            }
        }
    }
}

fn csv_rows(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    let text = text
        .strip_prefix('\u{feff}')
        .expect("the CSV starts with a UTF-8 BOM");
    assert!(text.ends_with("\r\n"), "RFC 4180 lines");
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Statistics, the live stream and the CSV exports answer only what lies inside the caller's
/// scope: figures per China day and place (by town inside a district), a stream that delivers a
/// district's new warnings and resumes from `Last-Event-ID`, and exports (BOM, formula-safe)
/// of warnings and of the day's ledger; out-of-scope filters, another district's stream, bad
/// input and a fourth stream are refused.
#[test]
fn stats_stream_and_exports_stay_inside_the_scope() {
    let Some(data) = ServerData::new(crate::BACKEND, "warn-platform") else {
        return;
    };
    let server = start_server(data, &[]);
    call(&server, "POST", "/v1/admin/places", ADMIN, Some(places()));
    let feicheng = monitor(&server, "肥城市应急局", "district:370983");
    let taishan = monitor(&server, "泰山区应急局", "district:370902");
    let town = monitor(&server, "新城街道", "town:370983001");
    let welder = phone(&server, &server.url());

    // Streams open before the pushes: each sees its district's new warnings only.
    let mut fc_stream = EventStream::open(&server, &feicheng, None);
    assert_eq!(fc_stream.status, 200);
    assert!(fc_stream.head.contains("content-type: text/event-stream"));
    let mut ts_stream = EventStream::open(&server, &taishan, None);
    assert_eq!(ts_stream.status, 200);

    let near = Some((FEICHENG.0 + 500, FEICHENG.1));
    let s1 = scan(&welder, "FC-M-1", T0, true, &[], near);
    let s2 = scan(
        &welder,
        "TS-M-1",
        T0 + HOUR,
        false,
        &["licence.expired"],
        None,
    );
    let s3 = scan(&welder, "FC-M-2", T0 + 2 * HOUR, true, &[], None);
    let s4 = scan(&welder, "FC-M-2", T0 + 3 * HOUR, true, &[], None);
    sync(&welder);
    sync(&welder);

    let (id_a, a) = fc_stream.next();
    let (id_b, b) = fc_stream.next();
    assert_eq!(a.records, std::slice::from_ref(&s3));
    assert_eq!(b.records, std::slice::from_ref(&s4));
    assert_eq!((a.id.clone(), b.id.clone()), (id_a.clone(), id_b.clone()));
    assert!(id_a.parse::<i64>().unwrap() < id_b.parse::<i64>().unwrap());
    let (_, t) = ts_stream.next();
    assert_eq!(
        (t.kind.as_str(), t.records.clone()),
        ("start_refused_expired_licence", vec![s2.clone()])
    );
    // Resuming: what came after the last event seen, from the store; from 0, the district's
    // warnings only (the other district's lower ids are skipped).
    let (again, _) = EventStream::open(&server, &feicheng, Some(&id_a)).next();
    assert_eq!(again, id_b);
    let mut from_zero = EventStream::open(&server, &taishan, Some("0"));
    assert_eq!(from_zero.next().1.id, t.id);
    let (first_town, _) = EventStream::open(&server, &feicheng, Some("0")).next();
    assert_eq!(first_town, id_a);
    assert_eq!(
        code_of(&call(
            &server,
            "GET",
            "/v1/warnings/stream?district=370902",
            &feicheng,
            None
        )),
        (400, "request.unknown_parameter")
    );
    let bad = EventStream::open(&server, &feicheng, Some("abc"));
    assert_eq!(bad.status, 400);
    // At most three streams per account: taishan holds two (ts_stream, from_zero); a third is
    // fine, a fourth is refused.
    let third = EventStream::open(&server, &taishan, None);
    assert_eq!(third.status, 200);
    let fourth = EventStream::open(&server, &taishan, None);
    assert_eq!(fourth.status, 429);
    assert!(fourth.head.contains("content-type: application/json"));
    drop((third, fourth, from_zero, ts_stream));
    // A phone reads no stream.
    let phone_token = {
        let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
        let code = admin.create_enrolment("赵六", Role::Welder).unwrap();
        SyncClient::new(&server.url(), None, policy())
            .unwrap()
            .enrol(&code.code, "04aabbcc", "赵六")
            .unwrap()
            .token
    };
    assert_eq!(EventStream::open(&server, &phone_token, None).status, 403);

    // Statistics: 2026-12-01 in China; towns inside a district, districts city-wide.
    let day = "from=2026-12-01&until=2026-12-01";
    let (status, fc) = call(&server, "GET", &format!("/v1/stats?{day}"), &feicheng, None);
    assert_eq!(status, 200, "{fc}");
    assert_eq!(fc["group_by"], "town");
    assert_eq!(fc["scope"], "district:370983");
    let places = &fc["days"][0]["places"];
    assert_eq!(places.as_array().unwrap().len(), 2, "{fc}");
    assert_eq!(places[0]["town"], "370983001");
    assert_eq!(places[0]["starts_allowed"], 1);
    assert_eq!(places[0]["warnings_open"], 0);
    assert_eq!(places[1]["town"], "370983002");
    assert_eq!(places[1]["starts_allowed"], 2);
    assert_eq!(places[1]["warnings_open"], 2);
    let (_, ts) = call(&server, "GET", &format!("/v1/stats?{day}"), &taishan, None);
    let ts_places = ts["days"][0]["places"].as_array().unwrap().clone();
    assert_eq!(ts_places.len(), 1, "{ts}");
    assert_eq!(ts_places[0]["district"], "370902");
    assert_eq!(ts_places[0]["starts_refused"], 1);
    assert_eq!(ts_places[0]["starts_allowed"], 0);
    let (_, tw) = call(&server, "GET", &format!("/v1/stats?{day}"), &town, None);
    assert_eq!(tw["totals"].as_array().unwrap().len(), 1, "{tw}");
    assert_eq!(tw["totals"][0]["town"], "370983001");
    let (_, city) = call(&server, "GET", &format!("/v1/stats?{day}"), ADMIN, None);
    assert_eq!(city["group_by"], "district");
    let totals = city["totals"].as_array().unwrap();
    let by = |d: &str| totals.iter().find(|p| p["district"] == d).unwrap().clone();
    assert_eq!(by("370983")["starts_allowed"], 3);
    assert_eq!(by("370983")["warnings_open"], 2);
    assert_eq!(by("370902")["starts_refused"], 1);
    // Acknowledging leaves the open count.
    let ack = format!("/v1/warnings/{}/acknowledge", a.id);
    assert_eq!(call(&server, "POST", &ack, &feicheng, None).0, 200);
    let (_, fc) = call(&server, "GET", &format!("/v1/stats?{day}"), &feicheng, None);
    assert_eq!(fc["totals"][1]["warnings_open"], 1);
    let (_, week) = call(
        &server,
        "GET",
        "/v1/stats?from=2026-11-28&until=2026-12-04",
        &feicheng,
        None,
    );
    assert_eq!(week["days"].as_array().unwrap().len(), 7);
    assert!(week["days"][0]["places"].as_array().unwrap().is_empty());
    for (who, q, expected) in [
        (
            &taishan,
            format!("{day}&district=370983"),
            (403, "warnings.out_of_scope"),
        ),
        (
            &town,
            format!("{day}&town=370983002"),
            (403, "warnings.out_of_scope"),
        ),
        (
            &feicheng,
            "from=2026-12-01".to_owned(),
            (400, "stats.bad_day"),
        ),
        (
            &feicheng,
            "from=2026-12-1&until=2026-12-01".to_owned(),
            (400, "stats.bad_day"),
        ),
        (
            &feicheng,
            "from=2026-12-02&until=2026-12-01".to_owned(),
            (400, "stats.bad_window"),
        ),
        (
            &feicheng,
            "from=2025-01-01&until=2026-12-01".to_owned(),
            (400, "stats.bad_window"),
        ),
        (
            &feicheng,
            format!("{day}&kind=x"),
            (400, "request.unknown_parameter"),
        ),
    ] {
        assert_eq!(
            code_of(&call(&server, "GET", &format!("/v1/stats?{q}"), who, None)),
            expected,
            "{q}"
        );
    }
    assert_eq!(
        code_of(&call(
            &server,
            "GET",
            &format!("/v1/stats?{day}"),
            &phone_token,
            None
        )),
        (403, "auth.forbidden")
    );

    // Warnings as CSV: BOM, header, one line per warning of the scope; a note that a
    // spreadsheet would run as a formula is written as text.
    let close = format!("/v1/warnings/{}/close", a.id);
    let note = json!({"note": "=HYPERLINK(\"http://x\",\"点我\")"});
    assert_eq!(call(&server, "POST", &close, &feicheng, Some(note)).0, 200);
    let (status, head, body) = get_full(&server, "/v1/warnings.csv", &feicheng);
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/csv; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("attachment; filename=\"warnings.csv\""),
        "{head}"
    );
    let rows = csv_rows(&body);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0].starts_with("编号 id,类型 kind,名称,title"));
    assert!(rows[1].starts_with(&format!("{},suspect_machine_started,", b.id)));
    assert!(
        rows[2].contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"点我\"\")\""),
        "{}",
        rows[2]
    );
    assert!(rows.iter().all(|r| !r.contains("370902")));
    let (_, _, body) = get_full(&server, "/v1/warnings.csv?state=open", &taishan);
    let rows = csv_rows(&body);
    assert_eq!(rows.len(), 2);
    assert!(rows[1].contains(&s2));
    let (status, _, _) = get_full(&server, "/v1/warnings.csv?district=370983", &taishan);
    assert_eq!(status, 403);
    let (status, _, _) = get_full(&server, "/v1/warnings.csv?limit=5", &taishan);
    assert_eq!(status, 400);

    // The day's ledger: the district's records only, in arrival order.
    let (status, head, body) = get_full(&server, "/v1/ledger.csv?day=2026-12-01", &feicheng);
    assert_eq!(status, 200);
    assert!(
        head.contains("filename=\"ledger-2026-12-01.csv\""),
        "{head}"
    );
    let rows = csv_rows(&body);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows[0].starts_with("序号 no,时间 time (UTC+8),类型 kind"));
    assert!(rows[1].starts_with("1,2026-12-01 08:00:00,start,370983,370983001,S-FC-1,FC-M-1,"));
    assert!(rows[1].contains(",allowed,"));
    assert!(rows[1].ends_with(&s1), "{}", rows[1]);
    assert!(rows[2].contains("FC-M-2") && rows[3].contains("FC-M-2"));
    assert!(rows.iter().all(|r| !r.contains("TS-M-1")));
    let (_, _, body) = get_full(&server, "/v1/ledger.csv?day=2026-12-01", &taishan);
    let rows = csv_rows(&body);
    assert_eq!(rows.len(), 2);
    assert!(rows[1].contains(",refused,licence.expired,"), "{}", rows[1]);
    let (_, _, body) = get_full(&server, "/v1/ledger.csv?day=2026-12-02", ADMIN);
    assert_eq!(csv_rows(&body).len(), 1, "nothing that day");
    for (who, q, status) in [
        (&town, "day=2026-12-01&town=370983002", 403),
        (&feicheng, "", 400),
        (&feicheng, "day=yesterday", 400),
        (&phone_token, "day=2026-12-01", 403),
    ] {
        assert_eq!(
            get_full(&server, &format!("/v1/ledger.csv?{q}"), who).0,
            status,
            "{q}"
        );
    }
}
