//! Permits for the end-to-end tests: the built-in GB 30871 profile and checklist, a level 2
//! permit's content, its answers, and phones enrolled on a test server with the id permits name
//! their person by, a device key and the permit roles they sign as (the signer directory); the
//! permit's crew ([`Crew`]) and its walk from draft to close ([`permit_flow`]).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use weldguard_core::codes::PresenceConfirmed;
use weldguard_core::codes::signer::{DeviceSigner, SoftwareSigner};
use weldguard_core::codes::to_hex;
use weldguard_core::permit::{
    Action, Actor, Catalog, ChecklistAnswer, GasReading, GeoPoint, NightHours, Permit,
    PermitContent, PermitLevel, Person, ProfileSet, RuleContext, RuleProfile, SampleEvidence,
    Section, Site, WorkCalendar, WorkConditions, sample_answers,
};
use weldguard_core::store::{OutboxState, Store};
use weldguard_core::sync::protocol::{NewEnrolment, Role};
use weldguard_core::sync::{RetryPolicy, SyncClient, SyncReport};

use crate::{ServerProcess, TempDir};

pub const H: i64 = 3600;
/// 2026-11-30 00:00 China time (a Monday).
pub const DAY: i64 = 1_795_968_000;

/// Retries short enough for tests.
pub fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
    }
}

pub fn actor(name: &str, id: &str, role: &str) -> Actor {
    Actor {
        name: name.into(),
        id: id.into(),
        role: role.into(),
    }
}

pub fn person(name: &str, id: &str) -> Person {
    Person {
        name: name.into(),
        id: id.into(),
    }
}

/// A fixed device key (ES256 signatures are RFC 6979: the same versions every run).
pub fn key(n: u8) -> SoftwareSigner {
    SoftwareSigner::from_secret(&[n; 32]).expect("a valid secret")
}

/// The built-in rules a device runs.
pub struct Rules {
    pub profile: RuleProfile,
    pub catalog: Catalog,
    pub calendar: WorkCalendar,
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

impl Rules {
    pub fn new() -> Self {
        let profile = ProfileSet::builtin()
            .expect("built-in profiles")
            .select(
                "gb30871",
                NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date"),
            )
            .expect("the gb30871 profile")
            .clone();
        Rules {
            profile,
            catalog: Catalog::builtin().expect("built-in catalog"),
            calendar: WorkCalendar::default(),
        }
    }

    pub fn ctx(&self) -> RuleContext<'_> {
        RuleContext {
            profile: &self.profile,
            catalog: &self.catalog,
        }
    }

    pub fn location(&self) -> GeoPoint {
        GeoPoint::from_degrees(36.182, 116.772)
    }

    /// A level 2 permit on 2026-11-30, 08:00–17:00: applicant 张三 (S-001), welder 李四, fire
    /// watch 王五 (S-002).
    pub fn content(&self, permit_id: &str) -> PermitContent {
        let location = self.location();
        PermitContent {
            permit_id: permit_id.into(),
            site: Site {
                site_id: "site-370983-001".into(),
                name: "肥城某化工厂三车间".into(),
                profile_id: "gb30871".into(),
                location,
                utc_offset_secs: 8 * 3600,
                night: NightHours {
                    start: NaiveTime::from_hms_opt(20, 0, 0).expect("a time"),
                    end: NaiveTime::from_hms_opt(6, 0, 0).expect("a time"),
                },
                approval_radius_m: None,
            },
            profile_id: self.profile.id.clone(),
            profile_version: self.profile.version.clone(),
            catalog_version: self.catalog.version.clone(),
            work_description: "更换3号储罐出口管线法兰".into(),
            hot_work_point: "3号储罐东侧管廊".into(),
            hot_work_points: 1,
            location,
            conditions: WorkConditions::default(),
            requested_level: PermitLevel::Level2,
            valid_from: DAY + 8 * H,
            valid_until: DAY + 17 * H,
            applicant: person("张三", "S-001"),
            welders: vec![person("李四", "T370983199001011234")],
            machines: vec!["M-370983-0001".into()],
            fire_watch: vec![person("王五", "S-002")],
        }
    }

    /// Every item of 十不准、九必须 answered with the evidence it asks for.
    pub fn answers(&self, at: i64) -> Vec<ChecklistAnswer> {
        let sample = SampleEvidence::crew(at);
        sample_answers(
            &self.catalog,
            &[Section::Prohibition, Section::Must],
            &sample,
        )
    }

    /// The role that approves a level 2 permit under this profile.
    pub fn approver_role(&self) -> String {
        self.profile
            .level(PermitLevel::Level2)
            .map(|l| l.approver.id.clone())
            .unwrap_or_default()
    }
}

/// A phone: its database and its client of the test server.
pub struct Device {
    _dir: TempDir,
    pub store: Store,
    pub client: SyncClient,
    pub device_id: String,
    /// The device token (for raw calls).
    pub token: String,
}

/// Who a device is enrolled for.
pub struct Enrolment<'a> {
    pub name: &'a str,
    /// The id permits name the person by.
    pub person_id: &'a str,
    pub role: Role,
    /// Permit roles the person signs as.
    pub permit_roles: &'a [&'a str],
    /// The device key (`None`: a device that signs nothing).
    pub key: Option<&'a SoftwareSigner>,
}

/// Enrol a phone on `server` (the admin makes the code), with the platform's trust file so that
/// its syncs fetch and verify the signed status list and signer directory.
pub fn enrol(server: &ServerProcess, who: Enrolment<'_>) -> Device {
    enrol_at(&server.url(), &server.admin_token, who)
}

/// [`enrol`] on the server at `url`, whose admin token is `admin_token`.
pub fn enrol_at(url: &str, admin_token: &str, who: Enrolment<'_>) -> Device {
    let admin = SyncClient::new(url, Some(admin_token.to_owned()), policy()).expect("admin client");
    let code = admin
        .enrolment(&NewEnrolment {
            person: who.name.into(),
            role: who.role,
            person_id: Some(who.person_id.into()),
            permit_roles: who.permit_roles.iter().map(|r| (*r).to_owned()).collect(),
        })
        .expect("enrolment code");
    let public_key = who
        .key
        .map_or_else(|| "04aabbcc".to_owned(), |k| to_hex(&k.public_key()));
    let enrolled = SyncClient::new(url, None, policy())
        .expect("client")
        .enrol(&code.code, &public_key, who.name)
        .expect("enrol");
    let client = SyncClient::new(url, Some(enrolled.token.clone()), policy()).expect("client");
    let trust = client.trust_file().expect("trust file");
    let trust = weldguard_core::codes::TrustStore::from_json(
        &serde_json::to_string(&trust).expect("trust JSON"),
    )
    .expect("trust store");
    let dir = TempDir::new("permit-device");
    let store = Store::open(dir.path().join("device.sqlite")).expect("device store");
    Device {
        _dir: dir,
        store,
        client: client.with_trust(trust),
        device_id: enrolled.device_id,
        token: enrolled.token,
    }
}

/// Sync a device (status list, signer directory, push, pull, permits).
pub fn sync(device: &Device) -> SyncReport {
    device
        .client
        .sync(&device.store, &mut |_| {}, &AtomicBool::new(false))
        .expect("sync")
}

/// The crew of [`Rules::content`]'s permit, each with an enrolled phone and device key: the
/// applicant (张三, S-001), the site checker (孙七, S-003), the approver (周八, S-004) and the fire
/// watch who closes it (王五, S-002).
pub struct Crew {
    pub applicant: Device,
    pub checker: Device,
    pub approver: Device,
    pub closer: Device,
    pub keys: [SoftwareSigner; 4],
}

impl Crew {
    /// Enrol the crew on `server`, their device keys made from `seed` to `seed + 3`.
    pub fn enrol(server: &ServerProcess, rules: &Rules, seed: u8) -> Crew {
        let keys = [key(seed), key(seed + 1), key(seed + 2), key(seed + 3)];
        let approver_role = rules.approver_role();
        let who = |name, person_id, role, permit_roles, key| Enrolment {
            name,
            person_id,
            role,
            permit_roles,
            key: Some(key),
        };
        let applicant = who("张三", "S-001", Role::Welder, &["applicant"][..], &keys[0]);
        let checker = who(
            "孙七",
            "S-003",
            Role::Supervisor,
            &["supervisor"][..],
            &keys[1],
        );
        let approver_roles = [approver_role.as_str()];
        let approver = who(
            "周八",
            "S-004",
            Role::Supervisor,
            &approver_roles[..],
            &keys[2],
        );
        let closer_roles = ["supervisor", "fire_watch"];
        let closer = who(
            "王五",
            "S-002",
            Role::Supervisor,
            &closer_roles[..],
            &keys[3],
        );
        Crew {
            applicant: enrol(server, applicant),
            checker: enrol(server, checker),
            approver: enrol(server, approver),
            closer: enrol(server, closer),
            keys,
        }
    }
}

/// Apply `action` to `permit_id` on `device` at `at` (Unix seconds), sync, and require the
/// platform to have applied the step; its record key.
pub fn act(device: &Device, rules: &Rules, permit_id: &str, action: Action<'_>, at: i64) -> String {
    sync(device);
    let (_, stored) = device
        .store
        .apply_permit_action(permit_id, &rules.ctx(), action, at * 1000)
        .expect("the device's own rules let the step through");
    sync(device);
    let entry = device
        .store
        .outbox_entry(&stored.id)
        .expect("the outbox")
        .expect("the step's outbox entry");
    assert_eq!(entry.state, OutboxState::Applied, "{:?}", entry.last_error);
    stored.id
}

/// How far [`permit_flow`] takes a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The work started at 09:00 and goes on.
    Started,
    /// The work completed at 12:00.
    Completed,
    /// Completed, then closed by the fire watch at 12:30.
    Closed,
}

/// Take [`Rules::content`]'s level 2 permit (2026-11-30 08:00–17:00) from its draft to `until`,
/// each step signed by who may sign it and applied by the platform; the record keys of its
/// steps in order: draft, submit, site check, approval, gas reading, start, then the completion
/// and the close when asked for.
pub fn permit_flow(crew: &Crew, rules: &Rules, permit_id: &str, until: Until) -> Vec<String> {
    let content = rules.content(permit_id);
    let welder = content.welders[0].id.clone();
    let by = actor("张三", "S-001", "applicant");
    let draft = Permit::draft(content, &rules.ctx(), &by, DAY + 6 * H).expect("draft");
    let saved = crew
        .applicant
        .store
        .save_permit(None, &draft, None, (DAY + 6 * H) * 1000)
        .expect("save the draft");
    sync(&crew.applicant);
    let mut keys = vec![saved.id];
    let submit = Action::Submit {
        by,
        signer: &crew.keys[0],
        calendar: &rules.calendar,
        at: DAY + 7 * H,
        location: None,
    };
    keys.push(act(&crew.applicant, rules, permit_id, submit, DAY + 7 * H));
    let check = Action::SiteCheck {
        by: actor("孙七", "S-003", "supervisor"),
        signer: &crew.keys[1],
        answers: rules.answers(DAY + 7 * H + 600),
        at: DAY + 7 * H + 900,
        location: Some(rules.location()),
    };
    keys.push(act(
        &crew.checker,
        rules,
        permit_id,
        check,
        DAY + 7 * H + 900,
    ));
    // The approver's presence verified, as a phone's key store says it.
    let present = PresenceConfirmed(&crew.keys[2]);
    let approve = Action::Approve {
        by: actor("周八", "S-004", &rules.approver_role()),
        signer: &present,
        at: DAY + 7 * H + 1800,
        location: Some(rules.location()),
    };
    keys.push(act(
        &crew.approver,
        rules,
        permit_id,
        approve,
        DAY + 7 * H + 1800,
    ));
    let gas = Action::RecordGas {
        reading: GasReading {
            taken_at: DAY + 8 * H + 3000,
            lel_centi_pct: 500,
            concentration_centi_pct: 10,
            point: "动火点".into(),
            analyst: "赵六".into(),
        },
        by: Some("赵六".into()),
    };
    keys.push(act(
        &crew.applicant,
        rules,
        permit_id,
        gas,
        DAY + 8 * H + 3000,
    ));
    let start = Action::Start {
        at: DAY + 9 * H,
        continuous_monitoring: false,
        by: Some(welder),
    };
    keys.push(act(&crew.applicant, rules, permit_id, start, DAY + 9 * H));
    if until == Until::Started {
        return keys;
    }
    let complete = Action::Complete { at: DAY + 12 * H };
    keys.push(act(
        &crew.applicant,
        rules,
        permit_id,
        complete,
        DAY + 12 * H,
    ));
    if until == Until::Closed {
        let close = Action::Close {
            by: actor("王五", "S-002", "fire_watch"),
            signer: &crew.keys[3],
            post_work: sample_answers(
                &rules.catalog,
                &[Section::PostWork],
                &SampleEvidence::crew(DAY + 12 * H),
            ),
            at: DAY + 12 * H + 1800,
            location: Some(rules.location()),
        };
        keys.push(act(
            &crew.closer,
            rules,
            permit_id,
            close,
            DAY + 12 * H + 1800,
        ));
    }
    keys
}
