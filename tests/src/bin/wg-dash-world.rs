//! `wg-dash-world`: the bureau's desk for the web dashboard's browser tests
//! (`server/dashboard/tests/`, run by `scripts/browser.sh`). The tests start a real
//! `weldguard-server` themselves; this tool builds the world they look at, through the server's
//! API as an admin and as enrolled phones:
//!
//! - `setup`: places (two districts of 泰安市: 肥城市 370983 with three sites, 泰山区 370902 with
//!   two), machines at those sites, a month of scan-to-starts pushed by a welder's phone (the
//!   30-day charts), warnings of a few kinds in both districts, a level-2 hot-work permit taken
//!   through draft, submission, site check (its checklist answered) and approval by three enrolled
//!   signers at the first site, and enrolment codes: monitors of the city and of each district,
//!   and a welder's phone code (which the dashboard must refuse);
//! - `raise`: one refused scan-to-start (expired licence) at a machine, pushed now through an
//!   enrolled phone; prints the warning it raised.
//!
//! Output is `key=value` lines (UTF-8; no value holds a newline). Any failure exits non-zero
//! with the reason on standard error.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{Value, json};
use weldguard_core::permit::{Action, Permit};
use weldguard_core::store::{NewWorkSession, Store};
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_model::records::ScanPosition;
use weldguard_tests::TempDir;
use weldguard_tests::permits::{DAY, Enrolment, H, Rules, actor, enrol_at, key, sync};

/// 肥城市 and 泰山区 (GB/T 2260), and a town of each.
const DISTRICT: &str = "370983";
const OTHER: &str = "370902";
/// The permit's site (as `weldguard_tests::permits::Rules::content` names it).
const PERMIT_SITE: &str = "site-370983-001";
const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000000d1";
const CERT: &str = "T370983199001011234";
const CERT_OTHER: &str = "T370902198805051234";
const LIVE_MACHINE: &str = "FC-M-LIVE";
const MINUTE: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// (site id, name, district, town, lat e7, lon e7, machines)
type SiteSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i32,
    i32,
    &'static [&'static str],
);

const SITES: [SiteSpec; 5] = [
    (
        PERMIT_SITE,
        "肥城某化工厂三车间",
        DISTRICT,
        "370983001",
        361_820_000,
        1_167_720_000,
        &["M-370983-0001", LIVE_MACHINE],
    ),
    (
        "S-FC-2",
        "肥城新城商业综合体工地",
        DISTRICT,
        "370983002",
        362_140_000,
        1_168_120_000,
        &["FC-M-2"],
    ),
    (
        "S-FC-3",
        "肥城高新区钢结构厂房",
        DISTRICT,
        "370983001",
        361_560_000,
        1_167_230_000,
        &["FC-M-3"],
    ),
    (
        "S-TS-1",
        "泰山区岱宗大街管廊改造",
        OTHER,
        "370902001",
        362_010_000,
        1_171_300_000,
        &["TS-M-1"],
    ),
    (
        "S-TS-2",
        "泰山区某医院锅炉房",
        OTHER,
        "370902002",
        361_850_000,
        1_170_950_000,
        &["TS-M-2"],
    ),
];

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(lines) => {
            for (key, value) in lines {
                println!("{key}={value}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wg-dash-world: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  wg-dash-world setup --server URL --admin-token T
  wg-dash-world raise --server URL --admin-token T [--machine M]";

type Lines = Vec<(String, String)>;

fn run(args: &[String]) -> Result<Lines, String> {
    let (command, rest) = args.split_first().ok_or(USAGE)?;
    let mut options = BTreeMap::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag}\n{USAGE}"))?;
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        options.insert(name.to_owned(), value.clone());
    }
    let need = |name: &str| {
        options
            .get(name)
            .cloned()
            .ok_or_else(|| format!("--{name} is required\n{USAGE}"))
    };
    let desk = Desk {
        server: need("server")?,
        admin_token: need("admin-token")?,
    };
    match command.as_str() {
        "setup" => desk.setup(),
        "raise" => {
            let machine = options
                .get("machine")
                .cloned()
                .unwrap_or_else(|| LIVE_MACHINE.to_owned());
            desk.raise(&machine)
        }
        other => Err(format!("unknown command {other}\n{USAGE}")),
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A welder's phone: its store and client.
struct Phone {
    _dir: TempDir,
    store: Store,
    client: SyncClient,
}

impl Phone {
    fn start(
        &self,
        machine: &str,
        cert: &str,
        at_ms: i64,
        refused: bool,
    ) -> Result<String, String> {
        let (allowed, reasons) = if refused {
            (false, vec!["licence.expired".to_owned()])
        } else {
            (true, Vec::new())
        };
        self.store
            .record_work_session(
                NewWorkSession {
                    machine_id: machine.into(),
                    certificate_no: cert.into(),
                    started_at_ms: at_ms,
                    allowed,
                    reason_codes: reasons,
                    permit_id: None,
                    position: None,
                },
                at_ms,
            )
            .map(|s| s.id)
            .map_err(|e| format!("record a start: {e}"))
    }

    /// A start scanned `metres_north` north of where it should be (allowed).
    fn start_at(
        &self,
        machine: &str,
        at_ms: i64,
        lat_e7: i32,
        lon_e7: i32,
    ) -> Result<String, String> {
        self.store
            .record_work_session(
                NewWorkSession {
                    machine_id: machine.into(),
                    certificate_no: CERT.into(),
                    started_at_ms: at_ms,
                    allowed: true,
                    reason_codes: Vec::new(),
                    permit_id: None,
                    position: Some(ScanPosition {
                        latitude_e7: lat_e7,
                        longitude_e7: lon_e7,
                        accuracy_m: 15,
                    }),
                },
                at_ms,
            )
            .map(|s| s.id)
            .map_err(|e| format!("record a start: {e}"))
    }

    fn push(&self) -> Result<(), String> {
        self.client
            .sync(&self.store, &mut |_| {}, &AtomicBool::new(false))
            .map(|_| ())
            .map_err(|e| format!("push: {e}"))
    }
}

struct Desk {
    server: String,
    admin_token: String,
}

impl Desk {
    fn admin(&self) -> Result<SyncClient, String> {
        SyncClient::new(&self.server, Some(self.admin_token.clone()), policy())
            .map_err(|e| format!("admin client: {e}"))
    }

    /// A raw admin call (the routes the core's client does not wrap).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let addr = self
            .server
            .strip_prefix("http://")
            .ok_or("the server URL must be http://")?
            .parse()
            .map_err(|e| format!("server address: {e}"))?;
        let body = body.map(Value::to_string);
        let (status, text) =
            weldguard_tests::raw_call(addr, method, path, Some(&self.admin_token), body.as_deref());
        if status != 200 {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {e}"))
    }

    fn phone(&self, name: &str) -> Result<Phone, String> {
        let code = self
            .admin()?
            .create_enrolment(name, Role::Welder)
            .map_err(|e| format!("welder code: {e}"))?;
        let enrolled = SyncClient::new(&self.server, None, policy())
            .map_err(|e| format!("client: {e}"))?
            .enrol(&code.code, "04aabbcc", name)
            .map_err(|e| format!("enrol: {e}"))?;
        let dir = TempDir::new("dash-phone");
        let store = Store::open(dir.path().join("device.sqlite"))
            .map_err(|e| format!("phone store: {e}"))?;
        let client = SyncClient::new(&self.server, Some(enrolled.token), policy())
            .map_err(|e| format!("client: {e}"))?;
        Ok(Phone {
            _dir: dir,
            store,
            client,
        })
    }

    fn monitor(&self, person: &str, scope: &str) -> Result<String, String> {
        let made = self.call(
            "POST",
            "/v1/admin/monitors",
            Some(&json!({"person": person, "scope": scope})),
        )?;
        made["code"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no code in {made}"))
    }

    fn places(&self) -> Result<(), String> {
        let mut changes = Vec::new();
        for (id, name, district, town, lat, lon, machines) in SITES {
            let place = json!({"district": district, "town": town, "grid": "G-01"});
            changes.push(json!({"op": "upsert_site", "site_id": id, "name": name,
                "place": place, "location": {"latitude_e7": lat, "longitude_e7": lon}}));
            for machine in machines {
                changes.push(json!({"op": "place_machine", "machine_id": machine,
                    "place": place, "site_id": id}));
            }
        }
        changes.push(json!({"op": "place_licence", "certificate_no": CERT,
            "place": {"district": DISTRICT}}));
        changes.push(json!({"op": "place_licence", "certificate_no": CERT_OTHER,
            "place": {"district": OTHER}}));
        self.call("POST", "/v1/admin/places", Some(&Value::Array(changes)))?;
        Ok(())
    }

    /// The level-2 permit at the first site: drafted and submitted by 张三, checked on site by
    /// 孙七 (every checklist item answered), approved by 周八.
    fn permit(&self) -> Result<Lines, String> {
        let rules = Rules::new();
        let ctx = rules.ctx();
        let (applicant_key, checker_key, approver_key) = (key(11), key(12), key(13));
        let approver_role = rules.approver_role();
        let approver_roles = [approver_role.as_str()];
        let enrol = |name, person_id, role, permit_roles, key| {
            enrol_at(
                &self.server,
                &self.admin_token,
                Enrolment {
                    name,
                    person_id,
                    role,
                    permit_roles,
                    key: Some(key),
                },
            )
        };
        let applicant = enrol(
            "张三",
            "S-001",
            Role::Supervisor,
            &["applicant"],
            &applicant_key,
        );
        let checker = enrol(
            "孙七",
            "S-003",
            Role::Supervisor,
            &["supervisor"],
            &checker_key,
        );
        let approver = enrol(
            "周八",
            "S-004",
            Role::Supervisor,
            &approver_roles,
            &approver_key,
        );
        let to_ms = |secs: i64| secs * 1000;
        let who = actor("张三", "S-001", "applicant");
        let draft = Permit::draft(rules.content(PERMIT_ID), &ctx, &who, DAY + 6 * H)
            .map_err(|e| format!("draft: {e}"))?;
        applicant
            .store
            .save_permit(None, &draft, None, to_ms(DAY + 6 * H))
            .map_err(|e| format!("save draft: {e}"))?;
        let submit = Action::Submit {
            by: who,
            signer: &applicant_key,
            calendar: &rules.calendar,
            at: DAY + 7 * H,
            location: None,
        };
        applicant
            .store
            .apply_permit_action(PERMIT_ID, &ctx, submit, to_ms(DAY + 7 * H))
            .map_err(|e| format!("submit: {e}"))?;
        sync(&applicant);
        sync(&checker);
        let check = Action::SiteCheck {
            by: actor("孙七", "S-003", "supervisor"),
            signer: &checker_key,
            answers: rules.answers(DAY + 7 * H + 600),
            at: DAY + 7 * H + 900,
            location: Some(rules.location()),
        };
        checker
            .store
            .apply_permit_action(PERMIT_ID, &ctx, check, to_ms(DAY + 7 * H + 900))
            .map_err(|e| format!("site check: {e}"))?;
        sync(&checker);
        sync(&approver);
        let approve = Action::Approve {
            by: actor("周八", "S-004", &approver_role),
            signer: &weldguard_core::codes::PresenceConfirmed(&approver_key),
            at: DAY + 7 * H + 2400,
            location: Some(rules.location()),
        };
        approver
            .store
            .apply_permit_action(PERMIT_ID, &ctx, approve, to_ms(DAY + 7 * H + 2400))
            .map_err(|e| format!("approve: {e}"))?;
        let report = sync(&approver);
        if report.applied != 1 {
            return Err(format!("the approval was not applied: {report:?}"));
        }
        Ok(vec![
            ("permit.id".into(), PERMIT_ID.into()),
            ("permit.site".into(), PERMIT_SITE.into()),
            (
                "permit.signers".into(),
                format!("张三:applicant,孙七:supervisor,周八:{approver_role}"),
            ),
            ("permit.approver_role".into(), approver_role),
        ])
    }

    fn setup(&self) -> Result<Lines, String> {
        self.places()?;
        let now = now_ms();
        let phone = self.phone("李四")?;
        // A month of allowed starts at each machine, about every 8 hours with a few extra ones
        // (the 30-day charts). No machine is left more than a day without a start, so no session
        // counts as open too long (`session_open_too_long`, where the server raises it).
        for (i, (_, _, district, _, _, _, machines)) in SITES.iter().enumerate() {
            let cert = if *district == OTHER { CERT_OTHER } else { CERT };
            for machine in machines.iter().filter(|m| **m != LIVE_MACHINE) {
                for k in 0..90i64 {
                    let at =
                        now - (k + 1) * 8 * 60 * MINUTE - i as i64 * MINUTE - (k % 7) * 13 * MINUTE;
                    phone.start(machine, cert, at, false)?;
                    if (k + i as i64) % 5 == 0 {
                        phone.start(machine, cert, at + 2 * 60 * MINUTE, false)?;
                    }
                }
                // And one in the last hour (today's figures).
                phone.start(machine, cert, now - (20 + 3 * i as i64) * MINUTE, false)?;
            }
        }
        // Warnings: refused expired licences at the first site (today) and in the other
        // district; a start scanned 2 km from its machine at the second site.
        phone.start("M-370983-0001", CERT, now - 90 * MINUTE, true)?;
        phone.start("TS-M-1", CERT_OTHER, now - 80 * MINUTE, true)?;
        phone.start("TS-M-2", CERT_OTHER, now - 3 * DAY_MS, true)?;
        let (lat, lon) = (SITES[1].4, SITES[1].5);
        phone.start_at("FC-M-2", now - 70 * MINUTE, lat + 180_000, lon)?;
        phone.push()?;
        let warnings = self.call("GET", "/v1/warnings?limit=100", None)?;
        let raised = warnings["warnings"].as_array().map_or(0, Vec::len);

        let mut lines: Lines = vec![
            ("server".into(), self.server.clone()),
            ("district".into(), DISTRICT.into()),
            ("other_district".into(), OTHER.into()),
            ("warnings".into(), raised.to_string()),
            ("live_machine".into(), LIVE_MACHINE.into()),
        ];
        for (key, district) in [("sites.district", DISTRICT), ("sites.other", OTHER)] {
            let ids: Vec<&str> = SITES
                .iter()
                .filter(|s| s.2 == district)
                .map(|s| s.0)
                .collect();
            lines.push((key.into(), ids.join(",")));
        }
        lines.extend(self.permit()?);
        lines.push((
            "code.district".into(),
            self.monitor("肥城市应急管理局", &format!("district:{DISTRICT}"))?,
        ));
        lines.push((
            "code.district2".into(),
            self.monitor("肥城市应急管理局（值班）", &format!("district:{DISTRICT}"))?,
        ));
        lines.push((
            "code.other".into(),
            self.monitor("泰山区应急管理局", &format!("district:{OTHER}"))?,
        ));
        lines.push((
            "code.city".into(),
            self.monitor("泰安市应急管理局", "city")?,
        ));
        let welder = self
            .admin()?
            .create_enrolment("王二", Role::Welder)
            .map_err(|e| format!("welder code: {e}"))?;
        lines.push(("code.welder".into(), welder.code));
        Ok(lines)
    }

    /// One refused start (expired licence) at `machine`, now; the warning it raised.
    fn raise(&self, machine: &str) -> Result<Lines, String> {
        let phone = self.phone("李四")?;
        let key = phone.start(machine, CERT, now_ms(), true)?;
        phone.push()?;
        let list = self.call(
            "GET",
            "/v1/warnings?kind=start_refused_expired_licence&limit=50",
            None,
        )?;
        let warning = list["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| {
                w["records"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|k| k.as_str() == Some(key.as_str())))
            })
            .ok_or_else(|| format!("no warning was raised for {key}"))?;
        Ok(vec![
            ("record".into(), key),
            (
                "warning_id".into(),
                warning["id"].as_str().unwrap_or_default().to_owned(),
            ),
            ("machine".into(), machine.to_owned()),
        ])
    }
}
