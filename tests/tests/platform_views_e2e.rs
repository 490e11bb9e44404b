//! The dashboard's read routes end to end (#19, docs/adr/0017-warnings-and-scope.md, "The
//! dashboard's pages"): the server binary on loopback (SQLite here, PostgreSQL in
//! `platform_views_e2e_postgres.rs`); a city of two districts (肥城市 370983 with two towns,
//! 泰山区 370902) whose sites, machines and licence holders the admin places; welders' phones
//! pushing scan-to-starts through the real sync client (raising warnings); a permit walked from
//! draft to close by the enrolled people who may sign each step; and monitoring accounts of the
//! city, each district and a town. Each route's content is checked exactly, and the scope is
//! attacked: another district's site, machine, welder and permit by id (404 exactly like an
//! unknown id), filters outside the scope (403), the phones' roles (403).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{Value, json};
use weldguard_core::domain::{
    Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus, OperationCategory,
};
use weldguard_core::permit::{Catalog, Permit, PermitState};
use weldguard_core::rules::id_number::check_character;
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_model::records::ScanPosition;
use weldguard_tests::permits::{Crew, DAY, Device, H, Rules, Until, permit_flow};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

pub(crate) const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
pub(crate) const ADMIN: &str = "e2e-admin-token-platform-views-01";
/// 2026-12-01T00:00:00Z
const T0: i64 = 1_796_083_200_000;
const HOUR: i64 = 3_600_000;
/// 肥城市 and 泰安市泰山区 (32 km apart), and the permit's site (where `Rules::location` is).
const FEICHENG: (i32, i32) = (361_826_000, 1_167_685_000);
const TAISHAN: (i32, i32) = (361_941_000, 1_171_290_000);
const PLANT: (i32, i32) = (361_820_000, 1_167_720_000);
/// 李四, a welder of 肥城市 (the permit's welder), and 赵强 of 泰山区.
const CERT: &str = "T370983199001011234";
const CERT_TS: &str = "T370902198805052345";
/// The site the permit of `Rules::content` names.
const PERMIT_SITE: &str = "site-370983-001";
const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000d0001";

/// The database of these flows' servers (`platform_views_e2e_postgres.rs` defines its own).
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

fn get(server: &ServerProcess, path: &str, token: &str) -> (u16, Value) {
    let (status, text) = raw_call(server.addr, "GET", path, Some(token), None);
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The answer of a route that must succeed.
fn ok(server: &ServerProcess, path: &str, token: &str) -> Value {
    let (status, body) = get(server, path, token);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn admin_call(server: &ServerProcess, method: &str, path: &str, body: Value) -> Value {
    let (status, text) = raw_call(
        server.addr,
        method,
        path,
        Some(ADMIN),
        Some(&body.to_string()),
    );
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A monitoring account of `scope`, enrolled like a device; its token.
fn monitor(server: &ServerProcess, person: &str, scope: &str) -> String {
    let made = admin_call(
        server,
        "POST",
        "/v1/admin/monitors",
        json!({"person": person, "scope": scope}),
    );
    SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(made["code"].as_str().unwrap(), "04aabbcc", person)
        .unwrap()
        .token
}

/// A phone's token of a platform role.
fn phone_token(server: &ServerProcess, role: Role) -> String {
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let code = admin.create_enrolment(role.as_str(), role).unwrap();
    SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, "04aabbcc", "phone")
        .unwrap()
        .token
}

fn id_number(district: &str, born: &str, serial: u32) -> String {
    let first17 = format!("{district}{born}{serial:03}");
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    format!("{first17}{}", check_character(&bytes).unwrap())
}

fn licence(certificate_no: &str, id_number: String, name: &str, employer: &str) -> Licence {
    Licence {
        certificate_no: certificate_no.into(),
        id_number,
        name: name.into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: Some(employer.into()),
    }
}

fn machine(machine_id: &str, region: u32, status: MachineStatus) -> Machine {
    Machine {
        machine_id: machine_id.into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C000000".into(),
        region,
        status,
    }
}

fn registry() -> Vec<RegistryChange> {
    vec![
        RegistryChange::UpsertLicence(licence(
            CERT,
            id_number("370983", "19900101", 123),
            "李四",
            "91370983MA3C000000",
        )),
        RegistryChange::UpsertLicence(licence(
            CERT_TS,
            id_number("370902", "19880505", 234),
            "赵强",
            "91370902MA3D000000",
        )),
        RegistryChange::UpsertMachine(machine("FC-M-1", 370983, MachineStatus::Active)),
        RegistryChange::UpsertMachine(machine("M-370983-0001", 370983, MachineStatus::Active)),
        RegistryChange::UpsertMachine(machine("TS-M-1", 370902, MachineStatus::Retired)),
        RegistryChange::UpsertMachine(machine("UN-M-1", 370983, MachineStatus::Active)),
    ]
}

fn places() -> Value {
    let place = |d: &str, t: Option<&str>, g: &str| {
        let mut p = json!({"district": d, "grid": g});
        if let Some(t) = t {
            p["town"] = json!(t);
        }
        p
    };
    let at = |(lat, lon): (i32, i32)| json!({"latitude_e7": lat, "longitude_e7": lon});
    json!([
        {"op": "upsert_site", "site_id": "S-FC-1", "name": "肥城新城工地",
         "place": place("370983", Some("370983001"), "G-01"), "location": at(FEICHENG)},
        {"op": "upsert_site", "site_id": PERMIT_SITE, "name": "肥城某化工厂三车间",
         "place": place("370983", Some("370983002"), "G-07"), "location": at(PLANT)},
        {"op": "upsert_site", "site_id": "S-TS-1", "name": "泰山区岱庙改造工地",
         "place": place("370902", None, "G-30"), "location": at(TAISHAN)},
        {"op": "place_machine", "machine_id": "FC-M-1",
         "place": place("370983", Some("370983001"), "G-01"), "site_id": "S-FC-1"},
        {"op": "place_machine", "machine_id": "M-370983-0001",
         "place": place("370983", Some("370983002"), "G-07"), "site_id": PERMIT_SITE,
         "watch": "suspect"},
        {"op": "place_machine", "machine_id": "TS-M-1", "place": place("370902", None, "G-30"),
         "site_id": "S-TS-1"},
        {"op": "place_licence", "certificate_no": CERT, "place": place("370983", None, "G-01")},
        {"op": "place_licence", "certificate_no": CERT_TS, "place": place("370902", None, "G-30")}
    ])
}

struct Phone {
    _dir: TempDir,
    store: Store,
    client: SyncClient,
}

fn welder_phone(server: &ServerProcess, person: &str) -> Phone {
    let token = SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(
            &SyncClient::new(&server.url(), Some(ADMIN.into()), policy())
                .unwrap()
                .create_enrolment(person, Role::Welder)
                .unwrap()
                .code,
            "04aabbcc",
            person,
        )
        .unwrap()
        .token;
    let dir = TempDir::new("views-phone");
    let store = Store::open(dir.path().join("device.sqlite")).unwrap();
    Phone {
        _dir: dir,
        store,
        client: SyncClient::new(&server.url(), Some(token), policy()).unwrap(),
    }
}

/// One scan-to-start as the phone records it; the start the dashboard must show for it.
struct Start {
    machine: &'static str,
    cert: &'static str,
    at_ms: i64,
    allowed: bool,
    reasons: &'static [&'static str],
    position: Option<(i32, i32)>,
    permit: Option<&'static str>,
}

impl Start {
    fn record(&self, phone: &Phone) -> String {
        phone
            .store
            .record_work_session(
                NewWorkSession {
                    machine_id: self.machine.into(),
                    certificate_no: self.cert.into(),
                    started_at_ms: self.at_ms,
                    allowed: self.allowed,
                    reason_codes: self.reasons.iter().map(|r| r.to_string()).collect(),
                    permit_id: self.permit.map(str::to_owned),
                    position: self
                        .position
                        .map(|(latitude_e7, longitude_e7)| ScanPosition {
                            latitude_e7,
                            longitude_e7,
                            accuracy_m: 15,
                        }),
                },
                self.at_ms,
            )
            .unwrap()
            .id
    }

    fn expected(&self, key: &str, site: Option<&str>, place: (&str, Option<&str>)) -> Value {
        json!({
            "session_id": key,
            "machine_id": self.machine,
            "certificate_no": self.cert,
            "started_at_ms": self.at_ms,
            "allowed": self.allowed,
            "reason_codes": self.reasons,
            "permit_id": self.permit,
            "lat_e7": self.position.map(|p| p.0),
            "lon_e7": self.position.map(|p| p.1),
            "accuracy_m": self.position.map(|_| 15),
            "site_id": site,
            "district": place.0,
            "town": place.1,
        })
    }
}

fn push(phone: &Phone) {
    let report = phone
        .client
        .sync(&phone.store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
}

/// The permit's crew, each enrolled with the id permits name them by and the roles they sign as.
fn crew(server: &ServerProcess, rules: &Rules) -> Crew {
    Crew::enrol(server, rules, 41)
}

/// The permit from draft to close, each step by who may sign it; (step ids, the closed permit).
fn walk_permit(crew: &Crew, rules: &Rules) -> (Vec<String>, Permit) {
    let ids = permit_flow(crew, rules, PERMIT_ID, Until::Closed);
    let closed = crew.closer.store.permit(PERMIT_ID).unwrap().unwrap();
    assert_eq!(closed.state, PermitState::Closed);
    (ids, closed)
}

/// An id outside the scope is answered exactly like one nobody holds.
fn assert_unknown(server: &ServerProcess, token: &str, route: &str, id: &str) {
    let (status, body) = get(server, &format!("/v1/platform/{route}/{id}"), token);
    let (nobody_status, nobody) = get(server, &format!("/v1/platform/{route}/NOPE-{id}"), token);
    assert_eq!((status, nobody_status), (404, 404), "{route}/{id}: {body}");
    assert_eq!(body["code"], "platform.unknown");
    assert_eq!(body["code"], nobody["code"]);
    assert_eq!(
        body["message"].as_str().unwrap().replace(id, "ID"),
        nobody["message"]
            .as_str()
            .unwrap()
            .replace(&format!("NOPE-{id}"), "ID"),
        "the same answer but for the id"
    );
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_dashboards_pages_show_exactly_what_lies_inside_the_callers_scope() {
    let Some(data) = ServerData::new(crate::BACKEND, "platform-views") else {
        return;
    };
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    SyncClient::new(&server.url(), Some(ADMIN.into()), policy())
        .unwrap()
        .write_registry(&registry())
        .unwrap();
    admin_call(&server, "POST", "/v1/admin/places", places());
    let city = monitor(&server, "泰安市应急局", "city");
    let feicheng = monitor(&server, "肥城市应急局", "district:370983");
    let taishan = monitor(&server, "泰山区应急局", "district:370902");
    let xincheng = monitor(&server, "新城街道", "town:370983001");
    let plant_town = monitor(&server, "化工园区", "town:370983002");

    // Starts: at 肥城's site (one refused for an expired licence, one scanned 32 km away), one at
    // the unplaced machine, one of the 泰山区 welder refused at the retired machine.
    let lisi = welder_phone(&server, "李四");
    let zhao = welder_phone(&server, "赵强");
    let starts = [
        Start {
            machine: "FC-M-1",
            cert: CERT,
            at_ms: T0,
            allowed: true,
            reasons: &[],
            position: Some(FEICHENG),
            permit: None,
        },
        Start {
            machine: "FC-M-1",
            cert: CERT,
            at_ms: T0 + HOUR,
            allowed: false,
            reasons: &["licence.expired"],
            position: None,
            permit: None,
        },
        Start {
            machine: "FC-M-1",
            cert: CERT,
            at_ms: T0 + 3 * HOUR,
            allowed: true,
            reasons: &[],
            position: Some(TAISHAN),
            permit: Some(PERMIT_ID),
        },
        Start {
            machine: "UN-M-1",
            cert: CERT,
            at_ms: T0 + 4 * HOUR,
            allowed: true,
            reasons: &[],
            position: None,
            permit: None,
        },
    ];
    let keys: Vec<String> = starts.iter().map(|s| s.record(&lisi)).collect();
    push(&lisi);
    let ts_start = Start {
        machine: "TS-M-1",
        cert: CERT_TS,
        at_ms: T0 + 2 * HOUR,
        allowed: false,
        reasons: &["licence.expired", "machine.retired"],
        position: Some(TAISHAN),
        permit: None,
    };
    let ts_key = ts_start.record(&zhao);
    push(&zhao);

    let rules = Rules::new();
    let crew = crew(&server, &rules);
    let (step_ids, closed) = walk_permit(&crew, &rules);

    // The map: every site in scope, with its machines and open warnings.
    let fc_site = json!({
        "id": "S-FC-1", "name": "肥城新城工地", "district": "370983", "town": "370983001",
        "grid": "G-01", "lat_e7": FEICHENG.0, "lon_e7": FEICHENG.1, "machines": 1,
        "open_warnings": 3,
        "open_by_kind": {"start_far_from_machine": 1, "start_refused_expired_licence": 1,
                         "start_without_permit": 1}
    });
    let plant_site = json!({
        "id": PERMIT_SITE, "name": "肥城某化工厂三车间", "district": "370983",
        "town": "370983002", "grid": "G-07", "lat_e7": PLANT.0, "lon_e7": PLANT.1,
        "machines": 1, "open_warnings": 0, "open_by_kind": {}
    });
    let ts_site = json!({
        "id": "S-TS-1", "name": "泰山区岱庙改造工地", "district": "370902", "town": null,
        "grid": "G-30", "lat_e7": TAISHAN.0, "lon_e7": TAISHAN.1, "machines": 1,
        "open_warnings": 1, "open_by_kind": {"start_refused_expired_licence": 1}
    });
    let all = json!({"sites": [fc_site, ts_site, plant_site]});
    assert_eq!(ok(&server, "/v1/platform/sites", ADMIN), all);
    assert_eq!(ok(&server, "/v1/platform/sites", &city), all);
    assert_eq!(
        ok(&server, "/v1/platform/sites", &feicheng),
        json!({"sites": [fc_site, plant_site]})
    );
    assert_eq!(
        ok(&server, "/v1/platform/sites", &taishan),
        json!({"sites": [ts_site]})
    );
    assert_eq!(
        ok(&server, "/v1/platform/sites", &xincheng),
        json!({"sites": [fc_site]})
    );
    assert_eq!(
        ok(&server, "/v1/platform/sites?town=370983002", &feicheng),
        json!({"sites": [plant_site]})
    );
    assert_eq!(
        ok(&server, "/v1/platform/sites?district=370902", ADMIN),
        json!({"sites": [ts_site]})
    );
    for (token, query) in [
        (&feicheng, "district=370902"),
        (&feicheng, "town=370902001"),
        (&xincheng, "district=370983"),
        (&xincheng, "town=370983002"),
        (&taishan, "district=370983"),
    ] {
        let (status, body) = get(&server, &format!("/v1/platform/sites?{query}"), token);
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("platform.out_of_scope")),
            "{query}: {body}"
        );
    }
    let (status, body) = get(&server, "/v1/platform/sites?district=37", ADMIN);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("place.bad_district"))
    );
    let (status, body) = get(&server, "/v1/platform/sites?colour=red", ADMIN);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("request.unknown_parameter"))
    );

    // A site's page: machines, warnings, starts (newest first), permits.
    let fc_place = ("370983", Some("370983001"));
    let site = ok(&server, "/v1/platform/sites/S-FC-1", &feicheng);
    assert_eq!(site["site"], fc_site);
    assert_eq!(
        site["machines"],
        json!([{"id": "FC-M-1", "status": "active", "watch": "normal", "open_warnings": 3}])
    );
    assert_eq!(
        site["starts"],
        json!([
            starts[2].expected(&keys[2], Some("S-FC-1"), fc_place),
            starts[1].expected(&keys[1], Some("S-FC-1"), fc_place),
            starts[0].expected(&keys[0], Some("S-FC-1"), fc_place),
        ])
    );
    let kinds: Vec<(String, Vec<String>)> = site["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap().to_owned(),
                serde_json::from_value(w["records"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("start_far_from_machine".to_owned(), vec![keys[2].clone()]),
            (
                "start_refused_expired_licence".to_owned(),
                vec![keys[1].clone()]
            ),
            // The first start named no permit (a mobile machine needs one).
            ("start_without_permit".to_owned(), vec![keys[0].clone()]),
        ],
        "newest first"
    );
    for w in site["warnings"].as_array().unwrap() {
        let one = ok(
            &server,
            &format!("/v1/warnings/{}", w["id"].as_str().unwrap()),
            &feicheng,
        );
        assert_eq!(&one, w, "the warning as GET /v1/warnings/{{id}} gives it");
    }
    assert_eq!(site["permits"], json!([]));
    assert_eq!(ok(&server, "/v1/platform/sites/S-FC-1", &xincheng), site);
    let limited = ok(&server, "/v1/platform/sites/S-FC-1?limit=1", ADMIN);
    assert_eq!(limited["starts"], json!([site["starts"][0]]));
    assert_eq!(limited["warnings"], json!([site["warnings"][0]]));
    let (status, body) = get(&server, "/v1/platform/sites/S-FC-1?limit=201", ADMIN);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("request.bad_limit"))
    );

    let plant = ok(
        &server,
        &format!("/v1/platform/sites/{PERMIT_SITE}"),
        &plant_town,
    );
    assert_eq!(plant["site"], plant_site);
    assert_eq!(
        plant["machines"],
        json!([{"id": "M-370983-0001", "status": "active", "watch": "suspect",
                "open_warnings": 0}])
    );
    assert_eq!(plant["starts"], json!([]));
    let content = &closed.content;
    assert_eq!(
        plant["permits"],
        json!([{
            "id": PERMIT_ID, "state": "closed", "level": "level2",
            "updated_at_ms": plant["permits"][0]["updated_at_ms"],
            "site_id": PERMIT_SITE, "valid_from_ms": content.valid_from * 1000,
            "valid_until_ms": content.valid_until * 1000,
            "work_description": content.work_description,
        }])
    );
    assert!(plant["permits"][0]["updated_at_ms"].as_i64().unwrap() > T0);

    // A machine's page.
    let fc = ok(&server, "/v1/platform/machines/FC-M-1", &xincheng);
    assert_eq!(
        fc["machine"],
        json!({
            "id": "FC-M-1", "status": "active", "watch": "normal", "site_id": "S-FC-1",
            "site_name": "肥城新城工地", "district": "370983", "town": "370983001",
            "grid": "G-01", "lat_e7": FEICHENG.0, "lon_e7": FEICHENG.1, "open_warnings": 3
        })
    );
    assert_eq!(fc["starts"], site["starts"]);
    assert_eq!(fc["warnings"], site["warnings"]);
    let ts = ok(&server, "/v1/platform/machines/TS-M-1", &taishan);
    assert_eq!(ts["machine"]["status"], "retired");
    assert_eq!(
        ts["starts"],
        json!([ts_start.expected(&ts_key, Some("S-TS-1"), ("370902", None))])
    );
    assert_eq!(ts["warnings"].as_array().unwrap().len(), 1);
    assert_eq!(ts["warnings"][0]["kind"], "start_refused_expired_licence");
    // The unplaced machine: city-wide only; its start counted at its welder's place.
    let unplaced = ok(&server, "/v1/platform/machines/UN-M-1", &city);
    assert_eq!(
        unplaced["machine"],
        json!({"id": "UN-M-1", "status": "active", "watch": null, "site_id": null,
               "site_name": null, "district": null, "town": null, "grid": null,
               "lat_e7": null, "lon_e7": null, "open_warnings": 1})
    );
    assert_eq!(
        unplaced["starts"],
        json!([starts[3].expected(&keys[3], None, ("370983", None))])
    );
    // Its start named no permit: the one warning, at the welder's place.
    let only = unplaced["warnings"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["kind"], "start_without_permit");
    assert_eq!(only[0]["records"], json!([keys[3]]));
    assert_unknown(&server, &feicheng, "machines", "UN-M-1");

    // A welder's page: the registry's licence, never the ID number; starts inside the scope.
    let lisi_page = ok(&server, &format!("/v1/platform/welders/{CERT}"), &feicheng);
    assert_eq!(
        lisi_page["welder"],
        json!({
            "certificate_no": CERT, "name": "李四", "kind": "fusion_welding_and_cutting",
            "categories": ["fusion_welding_and_cutting"], "expires_on": "2030-03-01",
            "next_review_on": "2027-03-01", "status": "valid",
            "employer_org": "91370983MA3C000000", "district": "370983", "town": null,
            "grid": "G-01"
        })
    );
    assert!(
        !lisi_page
            .to_string()
            .contains(&id_number("370983", "19900101", 123))
    );
    assert_eq!(
        ids(&lisi_page["starts"], "session_id"),
        [
            keys[3].clone(),
            keys[2].clone(),
            keys[1].clone(),
            keys[0].clone()
        ]
    );
    assert_eq!(
        lisi_page["starts"][0],
        starts[3].expected(&keys[3], None, ("370983", None))
    );
    // Newest first: the unplaced machine's (at the welder's place), then the site's.
    let mut lisi_warnings = unplaced["warnings"].as_array().unwrap().clone();
    lisi_warnings.extend(site["warnings"].as_array().unwrap().iter().cloned());
    assert_eq!(lisi_page["warnings"], Value::Array(lisi_warnings));
    // A town sees a welder who worked in it, with the starts and warnings of its own town only;
    // the holder's place (the district, no town) lies outside the town and is not shown.
    let in_town = ok(&server, &format!("/v1/platform/welders/{CERT}"), &xincheng);
    assert_eq!(in_town["welder"]["name"], "李四");
    assert_eq!(
        (&in_town["welder"]["district"], &in_town["welder"]["grid"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(in_town["starts"], site["starts"]);
    assert_eq!(in_town["warnings"], site["warnings"]);
    // 泰山区's welder never worked in 肥城: unknown there, as 肥城's is in 泰山区.
    assert_unknown(&server, &plant_town, "welders", CERT_TS);
    let zhao_page = ok(
        &server,
        &format!("/v1/platform/welders/{CERT_TS}"),
        &taishan,
    );
    assert_eq!(zhao_page["welder"]["name"], "赵强");
    assert_eq!(
        ids(&zhao_page["starts"], "session_id"),
        std::slice::from_ref(&ts_key)
    );

    // The permit's page: the checklist, who signed what, the steps.
    let page = ok(
        &server,
        &format!("/v1/platform/permits/{PERMIT_ID}"),
        &feicheng,
    );
    assert_eq!(
        page,
        ok(
            &server,
            &format!("/v1/platform/permits/{PERMIT_ID}"),
            &plant_town
        )
    );
    let permit = &page["permit"];
    assert_eq!(permit["id"], PERMIT_ID);
    assert_eq!(permit["state"], "closed");
    assert_eq!(permit["level"], "level2");
    assert_eq!(permit["site_id"], PERMIT_SITE);
    assert_eq!(permit["site_name"], "肥城某化工厂三车间");
    assert_eq!(page["raw"], serde_json::to_value(&closed).unwrap());
    let catalog = Catalog::builtin().unwrap();
    let checklist = permit["checklist"].as_array().unwrap();
    assert_eq!(checklist.len(), catalog.items.len());
    for (row, item) in checklist.iter().zip(&catalog.items) {
        assert_eq!(row["item_id"], item.id.as_str());
        assert_eq!(row["text_zh"], item.text_zh.as_str());
        assert_eq!(row["text_en"], item.text_en.as_str());
        let answer = closed
            .answers
            .iter()
            .chain(&closed.post_work)
            .find(|a| a.item_id == item.id);
        let expected = match answer.map(|a| &a.value) {
            None => (Value::Null, Value::Null),
            Some(weldguard_core::permit::AnswerValue::Confirmed) => {
                (json!("confirmed"), Value::Null)
            }
            Some(weldguard_core::permit::AnswerValue::NotApplicable { reason }) => {
                (json!("not_applicable"), json!(reason))
            }
        };
        assert_eq!(
            (row["answer"].clone(), row["note"].clone()),
            expected,
            "{}",
            item.id
        );
    }
    assert!(
        checklist.iter().all(|r| !r["answer"].is_null()),
        "all answered by the close"
    );
    let device = |d: &Device| json!(d.device_id);
    let approver_role = rules.approver_role();
    let sig = |i: usize, step_id: &str, action: &str, who: (&str, &str, &str), d: &Device| {
        json!({
            "step_id": step_id, "action": action, "person": who.0, "person_id": who.1,
            "role": who.2, "signed_at_ms": closed.signatures[i].at * 1000,
            "user_present": closed.signatures[i].user_present, "device_id": device(d),
            "vouched": true
        })
    };
    assert_eq!(
        permit["signatures"],
        json!([
            sig(
                0,
                &step_ids[1],
                "submit",
                ("张三", "S-001", "applicant"),
                &crew.applicant
            ),
            sig(
                1,
                &step_ids[2],
                "site_check",
                ("孙七", "S-003", "supervisor"),
                &crew.checker
            ),
            sig(
                2,
                &step_ids[3],
                "approve",
                ("周八", "S-004", &approver_role),
                &crew.approver
            ),
            sig(
                3,
                &step_ids[7],
                "close",
                ("王五", "S-002", "fire_watch"),
                &crew.closer
            ),
        ])
    );
    let steps = permit["steps"].as_array().unwrap();
    assert_eq!(ids(&permit["steps"], "step_id"), step_ids);
    let actions: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("draft", "draft"),
            ("submit", "submitted"),
            ("site_check", "checked"),
            ("approve", "approved"),
            ("record_gas", "approved"),
            ("start", "active"),
            ("complete", "completed"),
            ("close", "closed"),
        ]
    );
    assert_eq!(steps[0]["at_ms"], (DAY + 6 * H) * 1000);
    assert_eq!(steps[3]["at_ms"], (DAY + 7 * H + 1800) * 1000);
    assert_eq!(steps[3]["by"], "周八 (S-004)");
    assert_eq!(steps[3]["reported_by"], "周八");
    assert_eq!(steps[5]["by"], format!("李四 ({CERT})"));
    assert_eq!(steps[5]["reported_by"], "张三");
    assert_eq!(steps[7]["by"], "王五 (S-002)");

    // Attacks on the scope: another district's or town's ids answer like unknown ones.
    assert_unknown(&server, &taishan, "sites", "S-FC-1");
    assert_unknown(&server, &taishan, "sites", PERMIT_SITE);
    assert_unknown(&server, &feicheng, "sites", "S-TS-1");
    assert_unknown(&server, &xincheng, "sites", PERMIT_SITE);
    assert_unknown(&server, &taishan, "machines", "FC-M-1");
    assert_unknown(&server, &feicheng, "machines", "TS-M-1");
    assert_unknown(&server, &xincheng, "machines", "M-370983-0001");
    assert_unknown(&server, &taishan, "welders", CERT);
    assert_unknown(&server, &feicheng, "welders", CERT_TS);
    assert_unknown(&server, &taishan, "permits", PERMIT_ID);
    assert_unknown(&server, &xincheng, "permits", PERMIT_ID);
    // Nothing of 肥城 leaks into 泰山区's pages.
    for path in [
        "/v1/platform/sites".to_owned(),
        "/v1/platform/machines/TS-M-1".to_owned(),
        format!("/v1/platform/welders/{CERT_TS}"),
        "/v1/platform/sites/S-TS-1".to_owned(),
    ] {
        let text = ok(&server, &path, &taishan).to_string();
        for foreign in ["370983", "FC-M-1", CERT, PERMIT_ID, &keys[0]] {
            assert!(!text.contains(foreign), "{path} shows {foreign}: {text}");
        }
    }
    // A permit at a site the platform no longer places is seen city-wide only.
    admin_call(
        &server,
        "POST",
        "/v1/admin/places",
        json!([{"op": "delete_site", "site_id": PERMIT_SITE}]),
    );
    assert_unknown(&server, &feicheng, "permits", PERMIT_ID);
    assert_unknown(&server, &plant_town, "permits", PERMIT_ID);
    let unplaced = ok(&server, &format!("/v1/platform/permits/{PERMIT_ID}"), &city);
    assert_eq!(unplaced["permit"]["site_name"], content.site.name.as_str());
    assert_eq!(unplaced["permit"]["signatures"], permit["signatures"]);

    // The phones' roles may not read the dashboard's pages.
    for role in [Role::Welder, Role::Inspector, Role::Supervisor] {
        let token = phone_token(&server, role);
        for path in [
            "/v1/platform/sites".to_owned(),
            "/v1/platform/sites/S-FC-1".to_owned(),
            "/v1/platform/machines/FC-M-1".to_owned(),
            format!("/v1/platform/welders/{CERT}"),
            format!("/v1/platform/permits/{PERMIT_ID}"),
        ] {
            let (status, body) = get(&server, &path, &token);
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("auth.forbidden")),
                "{role:?} {path}"
            );
        }
    }
}
