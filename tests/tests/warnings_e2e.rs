//! The platform's warnings end to end (#19, docs/adr/0017-warnings-and-scope.md): the server
//! binary on loopback (SQLite here, PostgreSQL in `warnings_e2e_postgres.rs`), places written by
//! the admin, phones pushing work sessions through the real sync client (one push answered into a
//! dropped connection, so the client pushes it again), and monitoring accounts of two districts
//! and one town: exactly which warnings appear, once each; who sees which; the life cycle; bad
//! input; and attacks on the scope (another district's warning by id, a cursor of another scope).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use weldguard_core::store::{NewWorkSession, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_model::records::ScanPosition;
use weldguard_model::warnings::{Warning, WarningList, WarningState};
use weldguard_tests::{FaultProxy, ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

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

pub(crate) struct Phone {
    _dir: TempDir,
    store: Store,
    client: SyncClient,
}

pub(crate) fn phone(server: &ServerProcess, via: &str) -> Phone {
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let code = admin.create_enrolment("李四", Role::Welder).unwrap();
    let anonymous = SyncClient::new(&server.url(), None, policy()).unwrap();
    let enrolled = anonymous.enrol(&code.code, "04aabbcc", "李四").unwrap();
    let dir = TempDir::new("warn-phone");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    let client = SyncClient::new(via, Some(enrolled.token), policy()).unwrap();
    Phone {
        _dir: dir,
        store,
        client,
    }
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
    phone
        .client
        .sync(&phone.store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
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
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
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
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
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
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
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
        &["--warn-far-m", "50000", "--warn-refusals", "2"],
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
