//! The three users' flows through the exported FFI only (`weldguard_ffi`: exactly what the Kotlin
//! and Swift bindings call), against the real server binary on loopback. The platform's admin sets
//! the registry up and issues codes through the admin client, as a bureau's desktop would; every
//! step a phone takes goes through the phone library:
//!
//! - the welder's phone enrols, syncs, and is allowed to start work on its live presentation, and
//!   refused (with the reasons, in the shell's language) for a welder whose licence has expired;
//! - the inspector's phone checks a welder's code (the licence as the registry keeps it), records
//!   an inspection with a finding, and syncs: the platform holds it exactly once, also after a
//!   second sync;
//! - the supervisor's phone walks a permit from draft to close with the people's own keys (each
//!   enrolled from their own phone, so the signer directory vouches for them); `due` shows the
//!   fire watch after completion; the sync pushes the whole signed chain, and the platform admits
//!   every step (it replays the rules and checks every signature against the directory);
//! - the admin rotates the issuer key: a credential under the new key is refused on the phone
//!   until its next sync, then verified.
//!
//! `phone_flows_postgres.rs` runs the same flows on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::codes::{DeviceSigner, SoftwareSigner};
use weldguard_core::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::store::RegistryChange;
use weldguard_core::sync::protocol::{NewEnrolment, Role as WireRole};
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_ffi::functions::{DeviceKey, present_credential};
use weldguard_ffi::inspection::{FindingOutcome, InspectionFinding, InspectionInput, LicenceState};
use weldguard_ffi::permits::{
    ChecklistAnswerInput, ChecklistEvidence, ChecklistEvidenceRequirement, ChecklistGasReading,
    ChecklistPersonRole, ChecklistSection, DueKind, PermitAction, PermitActorInput,
    PermitConditions, PermitDraftInput, PermitGasInput, PermitLevel, PermitLocation, PermitPerson,
    PermitState, permit_checklist,
};
use weldguard_ffi::signing::{PersonSigner, SignRequest, SignedBytes};
use weldguard_ffi::types::RuleSet;
use weldguard_ffi::{Device, Lang, SyncListener, SyncStage, SyncSummary, SyncTask, WeldGuardError};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, block_on, now_unix};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "flows-admin-token-0123456789";
const ORG: &str = "91370983MA3C4X1Y2K";
const MACHINE: &str = "370983-DH-2024-000777";
const WELDER: &str = "T370983199001011233";
const EXPIRED_WELDER: &str = "T11010519491231002X";
const SITE: &str = "site-370983-001";
const PERMIT: &str = "0193a1b2-0000-7000-8000-00000000f10a";

#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

/// 2026-11-30 at `h:m` China time (a Monday): the permit's day.
fn t(h: i64, m: i64) -> i64 {
    1_795_968_000 + h * 3600 + m * 60
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

/// A phone's key store (a software P-256 key here): it signs as the Keystore or Secure Enclave
/// would, and reports presence verified when `present` (a biometric prompt the person passed).
struct KeyStore {
    key: SoftwareSigner,
    present: bool,
}

impl KeyStore {
    fn new(present: bool) -> Arc<Self> {
        Arc::new(Self {
            key: SoftwareSigner::generate().unwrap(),
            present,
        })
    }
}

impl PersonSigner for KeyStore {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key()
    }
    fn sign(&self, request: SignRequest) -> Result<SignedBytes, WeldGuardError> {
        Ok(SignedBytes {
            signature: self.key.sign(&request.message)?,
            user_present: self.present && request.require_presence,
        })
    }
}

impl DeviceKey for KeyStore {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key()
    }
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        Ok(self.key.sign(&message)?)
    }
}

/// Progress goes nowhere; a refreshed token is not expected (tokens do not expire here).
struct Quiet;

impl SyncListener for Quiet {
    fn on_progress(&self, _stage: SyncStage, _done: u64, _total: Option<u64>) {}
    fn on_token(&self, _token: String, _expires_at_ms: Option<i64>) {}
}

/// One phone: its profile database, the token its shell keeps, its key store.
struct Phone {
    _dir: TempDir,
    device: Arc<Device>,
    token: String,
    key: Arc<KeyStore>,
}

struct Platform {
    server: ServerProcess,
    admin: SyncClient,
}

impl Platform {
    fn start() -> Option<Self> {
        let data = ServerData::new(crate::BACKEND, "flows")?;
        let server = ServerProcess::start_on(SERVER, data, ADMIN);
        let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
        Some(Self { server, admin })
    }

    /// An enrolment code from the admin, used by the phone through the FFI.
    fn enrol(
        &self,
        person: &str,
        person_id: &str,
        role: WireRole,
        permit_roles: &[&str],
        key: Arc<KeyStore>,
    ) -> Phone {
        let code = self
            .admin
            .enrolment(&NewEnrolment {
                person: person.into(),
                role,
                person_id: Some(person_id.into()),
                permit_roles: permit_roles.iter().map(|r| (*r).to_owned()).collect(),
            })
            .unwrap();
        let dir = TempDir::new("flows-phone");
        let device = Device::open(dir.path().join("profile.db").display().to_string()).unwrap();
        let enrolled = block_on(device.clone().enrol(
            self.server.url(),
            code.code,
            PersonSigner::public_key(key.as_ref()),
            format!("{person}的手机"),
            SyncTask::new(),
            now_unix(),
        ))
        .unwrap();
        assert_eq!(enrolled.person_id, person_id);
        assert!(!enrolled.issuer_keys.is_empty(), "the trust anchor is held");
        Phone {
            _dir: dir,
            device,
            token: enrolled.token,
            key,
        }
    }

    /// How many records of `kind` the platform holds.
    fn held(&self, kind: &str) -> Vec<String> {
        self.admin
            .records(Some(kind))
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.idempotency_key)
            .collect()
    }
}

impl Phone {
    fn sync(&self, platform: &Platform) -> SyncSummary {
        block_on(self.device.clone().sync(
            platform.server.url(),
            self.token.clone(),
            Arc::new(Quiet),
            SyncTask::new(),
            now_unix(),
        ))
        .unwrap()
    }
}

fn licence(certificate_no: &str, id_number: &str, name: &str, expires_on: NaiveDate) -> Licence {
    Licence {
        certificate_no: certificate_no.into(),
        id_number: id_number.into(),
        name: name.into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
        expires_on,
        next_review_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: Some(ORG.into()),
    }
}

fn credential(l: &Licence, expires_on: NaiveDate, device_key: Vec<u8>) -> WelderCredential {
    WelderCredential {
        certificate_no: l.certificate_no.clone(),
        id_number: l.id_number.clone(),
        name: l.name.clone(),
        categories: l.categories.clone(),
        issued_on: l.issued_on,
        expires_on,
        next_review_on: l.next_review_on,
        photo_digest: vec![7; 32],
        device_key,
    }
}

/// The registry the bureau keeps: the machine, a welder bound to it, and a welder whose licence
/// expired last year (the certificate they carry still says 2030: the registry decides).
fn set_up_registry(platform: &Platform) -> (Licence, Licence) {
    let valid = licence(
        WELDER,
        "370983199001011233",
        "李四",
        NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
    );
    let expired = licence(
        EXPIRED_WELDER,
        "11010519491231002X",
        "赵九",
        NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
    );
    platform
        .admin
        .write_registry(&[
            RegistryChange::UpsertLicence(valid.clone()),
            RegistryChange::UpsertLicence(expired.clone()),
            RegistryChange::UpsertMachine(Machine {
                machine_id: MACHINE.into(),
                kind: MachineKind::Arc,
                class: MachineClass::FixedStation,
                owner_org: ORG.into(),
                region: 370983,
                status: MachineStatus::Active,
            }),
            RegistryChange::Bind(Binding {
                machine_id: MACHINE.into(),
                certificate_no: WELDER.into(),
            }),
        ])
        .unwrap();
    (valid, expired)
}

fn label() -> MachineLabel {
    MachineLabel {
        machine_id: MACHINE.into(),
        kind: MachineKind::Arc,
        class: MachineClass::FixedStation,
        owner_org: ORG.into(),
        region: 370983,
        issued_at: now_unix() - 60,
    }
}

fn welder_and_inspector_flows(platform: &Platform) {
    let (valid, expired) = set_up_registry(platform);
    let machine_code = platform.admin.issue_machine_label(&label()).unwrap().code;

    // The welder's phone: enrol, sync, present the credential live, and start.
    let welder = platform.enrol("李四", WELDER, WireRole::Welder, &[], KeyStore::new(false));
    let own = platform
        .admin
        .issue_credential(&credential(
            &valid,
            valid.expires_on,
            DeviceKey::public_key(welder.key.as_ref()),
        ))
        .unwrap()
        .code;
    let synced = welder.sync(platform);
    assert_eq!(synced.rejected, 0);
    assert!(synced.status_list_sequence.is_some(), "{synced:?}");
    let now = now_unix();
    let presentation = present_credential(own.clone(), welder.key.clone(), now).unwrap();
    let allowed = welder
        .device
        .start_work(
            machine_code.clone(),
            presentation,
            SITE.into(),
            now,
            None,
            Lang::En,
        )
        .unwrap();
    assert!(allowed.allowed, "{:?}", allowed.reasons);
    // The ministry order in force today (the rule set is chosen by date).
    assert_eq!(allowed.rule_set, RuleSet::MemOrder19);
    assert_eq!(allowed.machine_id.as_deref(), Some(MACHINE));
    assert!(allowed.session_id.is_some());

    // A welder whose licence expired: refused, every reason in the shell's language and both.
    let theirs = platform
        .admin
        .issue_credential(&credential(
            &expired,
            NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
            SoftwareSigner::generate().unwrap().public_key(),
        ))
        .unwrap()
        .code;
    for (lang, pick) in [(Lang::Zh, 0), (Lang::En, 1)] {
        let refused = welder
            .device
            .start_work(
                machine_code.clone(),
                theirs.clone(),
                SITE.into(),
                now_unix(),
                None,
                lang,
            )
            .unwrap();
        assert!(!refused.allowed);
        assert!(!refused.reasons.is_empty());
        let expiry = refused
            .reasons
            .iter()
            .find(|r| r.code.contains("expired"))
            .unwrap_or_else(|| panic!("an expiry reason in {:?}", refused.reasons));
        assert_eq!(
            &expiry.text,
            if pick == 0 { &expiry.zh } else { &expiry.en }
        );
        assert_ne!(expiry.zh, expiry.en);
    }
    let pushed = welder.sync(platform);
    assert_eq!((pushed.pushed, pushed.applied, pushed.rejected), (3, 3, 0));
    assert_eq!(platform.held("work_session").len(), 3);

    // The inspector's phone: check the welder's code, record an inspection with a finding.
    let inspector = platform.enrol(
        "网格员刘",
        "G-0042",
        WireRole::Inspector,
        &[],
        KeyStore::new(false),
    );
    inspector.sync(platform);
    let check = inspector
        .device
        .check_welder(own.clone(), now_unix(), Lang::Zh)
        .unwrap();
    assert!(check.code_verified);
    assert_eq!(check.state, LicenceState::Valid);
    let shown = check.licence.unwrap();
    assert_eq!(shown.certificate_no, WELDER);
    assert_eq!(shown.name, "李四");
    assert!(
        !shown.id_number_masked.contains("199001011"),
        "{}",
        shown.id_number_masked
    );
    assert!(check.bound_machines.iter().any(|m| m.machine_id == MACHINE));
    let expired_check = inspector
        .device
        .check_welder(theirs.clone(), now_unix(), Lang::En)
        .unwrap();
    assert_eq!(expired_check.state, LicenceState::Expired);

    let item = permit_checklist(Lang::Zh).unwrap().items[0].id.clone();
    let recorded = inspector
        .device
        .record_inspection(
            InspectionInput {
                site_id: SITE.into(),
                inspector_name: "网格员刘".into(),
                inspector_id: "G-0042".into(),
                welder_text: Some(own),
                machine_text: Some(machine_code),
                permit: None,
                findings: vec![InspectionFinding {
                    item_id: item,
                    outcome: FindingOutcome::NotCompliant,
                    note: "动火点周边有可燃物".into(),
                    photos: vec![vec![3; 32]],
                }],
                photos: vec![vec![4; 32]],
                location: None,
                notes: "现场整改".into(),
            },
            inspector.key.clone(),
            now_unix(),
            Lang::Zh,
        )
        .unwrap();
    assert!(!recorded.violations.is_empty());
    let first = inspector.sync(platform);
    assert_eq!((first.pushed, first.applied, first.rejected), (1, 1, 0));
    let again = inspector.sync(platform);
    assert_eq!(again.pushed, 0, "nothing left to push");
    assert_eq!(
        platform.held("inspection"),
        vec![recorded.inspection_id.clone()],
        "the platform holds the inspection exactly once"
    );

    // The issuer key rotates: a credential under the new key is refused until the next sync.
    let rotated = platform.admin.rotate_issuer_key(None).unwrap();
    let fresh = platform
        .admin
        .issue_credential(&credential(
            &valid,
            valid.expires_on,
            DeviceKey::public_key(welder.key.as_ref()),
        ))
        .unwrap();
    assert_eq!(fresh.kid, rotated.kid);
    let before = inspector.device.verify_code(fresh.code.clone(), now_unix());
    assert!(!before.valid, "the new key is not trusted before the sync");
    let synced = inspector.sync(platform);
    assert!(synced.new_issuer_keys.contains(&rotated.kid), "{synced:?}");
    assert!(synced.refused_issuer_keys.is_empty());
    let after = inspector.device.verify_code(fresh.code, now_unix());
    assert!(after.valid, "{:?}", after.reason);
}

fn person(name: &str, id: &str) -> PermitPerson {
    PermitPerson {
        name: name.into(),
        id: id.into(),
    }
}

fn by(name: &str, id: &str) -> PermitActorInput {
    PermitActorInput {
        name: name.into(),
        id: id.into(),
        role: None,
    }
}

fn site() -> PermitLocation {
    PermitLocation {
        latitude: 36.182,
        longitude: 116.772,
    }
}

/// Every item of `sections` answered from what the FFI lists (as a checklist screen does), with
/// the evidence each asks for.
fn answers(sections: &[ChecklistSection], gas_at: i64) -> Vec<ChecklistAnswerInput> {
    let checklist = permit_checklist(Lang::Zh).unwrap();
    let ChecklistEvidenceRequirement::Number {
        key: distance_key, ..
    } = checklist.machine_distance.clone()
    else {
        panic!("the machine distance is a number");
    };
    let mut answers: Vec<ChecklistAnswerInput> = checklist
        .items
        .into_iter()
        .filter(|i| sections.contains(&i.section))
        .map(|item| ChecklistAnswerInput {
            item_id: item.id,
            not_applicable_reason: None,
            evidence: item
                .evidence
                .into_iter()
                .map(|need| match need {
                    ChecklistEvidenceRequirement::Photo => ChecklistEvidence::Photo {
                        sha256: vec![5; 32],
                    },
                    ChecklistEvidenceRequirement::Number { key, min, max, .. } => {
                        let value = min.unwrap_or(0) + 1;
                        ChecklistEvidence::Number {
                            key,
                            value: max.map_or(value, |m| value.min(m)),
                        }
                    }
                    ChecklistEvidenceRequirement::Person { role } => {
                        let (name, id) = if role == ChecklistPersonRole::Welder {
                            ("李四", WELDER)
                        } else {
                            ("王五", "S-002")
                        };
                        ChecklistEvidence::Person {
                            role,
                            name: name.into(),
                            id: id.into(),
                        }
                    }
                    ChecklistEvidenceRequirement::GasAnalysis => ChecklistEvidence::GasAnalysis {
                        reading: ChecklistGasReading {
                            taken_at: gas_at,
                            lel_centi_pct: 500,
                            concentration_centi_pct: 10,
                            point: "储罐内".into(),
                            analyst: "赵六".into(),
                        },
                    },
                })
                .collect(),
        })
        .collect();
    // The welding machine stands 6 m from the hot-work point (recorded with the first "must").
    if let Some(first) = answers.iter_mut().find(|a| a.item_id == "must.01") {
        first.evidence.push(ChecklistEvidence::Number {
            key: distance_key,
            value: 6,
        });
    }
    answers
}

fn supervisor_flow(platform: &Platform) {
    // Each person enrols their own phone with their own key; the directory names their roles.
    let applicant = platform.enrol(
        "张三",
        "S-001",
        WireRole::Supervisor,
        &["applicant"],
        KeyStore::new(false),
    );
    let closer = platform.enrol(
        "王五",
        "S-002",
        WireRole::Supervisor,
        &["fire_watch"],
        KeyStore::new(false),
    );
    let approver_role = {
        let profiles = weldguard_core::permit::ProfileSet::builtin().unwrap();
        profiles
            .select("gb30871", NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
            .unwrap()
            .level(weldguard_core::permit::PermitLevel::Level2)
            .unwrap()
            .approver
            .id
            .clone()
    };
    let approver = platform.enrol(
        "周八",
        "S-004",
        WireRole::Supervisor,
        &[approver_role.as_str()],
        KeyStore::new(true),
    );
    // The supervisor's phone walks the permit on site; the others sign on it with their keys.
    let supervisor = platform.enrol(
        "孙七",
        "S-003",
        WireRole::Supervisor,
        &["supervisor"],
        KeyStore::new(false),
    );
    supervisor.sync(platform);
    let phone = &supervisor.device;

    let draft = phone
        .permit_draft(
            PermitDraftInput {
                site_id: SITE.into(),
                site_name: "肥城某化工厂三车间".into(),
                rules: "gb30871".into(),
                site_location: site(),
                night: None,
                approval_radius_m: None,
                work: "更换3号储罐出口管线法兰".into(),
                hot_work_point: "3号储罐东侧管廊".into(),
                hot_work_points: 1,
                level: PermitLevel::Level2,
                valid_from: t(8, 0),
                valid_until: t(17, 0),
                applicant: person("张三", "S-001"),
                welders: vec![person("李四", WELDER)],
                machines: vec![MACHINE.into()],
                fire_watch: vec![person("王五", "S-002")],
                conditions: PermitConditions::default(),
                permit_id: Some(PERMIT.into()),
            },
            t(6, 40),
            Lang::Zh,
        )
        .unwrap();
    assert_eq!(draft.state, PermitState::Draft);
    phone
        .permit_submit(
            PERMIT.into(),
            by("张三", "S-001"),
            None,
            applicant.key.clone(),
            t(7, 0),
            Lang::Zh,
        )
        .unwrap();

    // A failed "must" item blocks the check and the approval, and the view says so.
    let mut failing = answers(
        &[ChecklistSection::Prohibition, ChecklistSection::Must],
        t(7, 15),
    );
    // The first "must" item that asks for evidence, answered without it (the machine's distance,
    // which another rule reads, kept).
    let must = permit_checklist(Lang::Zh)
        .unwrap()
        .items
        .into_iter()
        .find(|i| i.section == ChecklistSection::Must && !i.evidence.is_empty())
        .unwrap()
        .id;
    let index = failing.iter().position(|a| a.item_id == must).unwrap();
    failing[index]
        .evidence
        .retain(|e| matches!(e, ChecklistEvidence::Number { key, .. } if key == weldguard_core::permit::MACHINE_DISTANCE_KEY));
    let preview = phone
        .permit_preview_answers(PERMIT.into(), failing, t(7, 18), Lang::En)
        .unwrap();
    for action in [PermitAction::SiteCheck, PermitAction::Approve] {
        let shown = preview.action(action).unwrap();
        assert!(!shown.allowed, "{action:?} with a failed must item");
        assert!(!shown.why_not.is_empty());
        // The screen can point at the item: the finding names it.
        assert!(
            shown
                .why_not
                .iter()
                .any(|f| f.item_id.as_deref() == Some(must.as_str())),
            "{:?}",
            shown.why_not
        );
    }

    let checked = phone
        .permit_site_check(
            PERMIT.into(),
            by("孙七", "S-003"),
            answers(
                &[ChecklistSection::Prohibition, ChecklistSection::Must],
                t(7, 15),
            ),
            Some(site()),
            supervisor.key.clone(),
            t(7, 20),
            Lang::Zh,
        )
        .unwrap();
    assert!(checked.action(PermitAction::Approve).unwrap().allowed);
    let approved = phone
        .permit_approve(
            PERMIT.into(),
            by("周八", "S-004"),
            Some(site()),
            approver.key.clone(),
            t(7, 40),
            Lang::Zh,
        )
        .unwrap();
    assert_eq!(approved.state, PermitState::Approved);
    phone
        .permit_record_gas(
            PERMIT.into(),
            PermitGasInput {
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: "动火点".into(),
                analyst: "赵六".into(),
                taken_at: None,
            },
            t(8, 55),
            Lang::Zh,
        )
        .unwrap();
    phone
        .permit_start(PERMIT.into(), false, None, t(9, 0), Lang::Zh)
        .unwrap();
    let completed = phone
        .permit_complete(PERMIT.into(), t(12, 0), Lang::Zh)
        .unwrap();
    assert_eq!(completed.state, PermitState::Completed);
    assert!(
        !completed.action(PermitAction::Close).unwrap().allowed,
        "the fire watch is on"
    );

    // due(now) after completion: the fire watch, until when.
    let due = phone.due(t(12, 5), Lang::Zh).unwrap();
    let watch = due
        .iter()
        .find(|d| d.kind == DueKind::FireWatch)
        .unwrap_or_else(|| panic!("the fire watch in {due:?}"));
    assert_eq!(watch.permit_id.as_deref(), Some(PERMIT));
    assert!(watch.due_at > t(12, 5) && !watch.overdue);

    let closed = phone
        .permit_close(
            PERMIT.into(),
            by("王五", "S-002"),
            answers(&[ChecklistSection::PostWork], watch.due_at),
            Some(site()),
            closer.key.clone(),
            watch.due_at,
            Lang::Zh,
        )
        .unwrap();
    assert_eq!(closed.state, PermitState::Closed);
    assert_eq!(closed.signatures.len(), 4);
    let verified = phone.permit_verify(PERMIT.into(), Lang::En).unwrap();
    assert!(verified.valid, "{:?}", verified.reason);

    // The whole signed chain reaches the platform, every step admitted.
    let steps = phone
        .permit_show(PERMIT.into(), t(13, 0), Lang::Zh)
        .unwrap()
        .steps
        .len() as u64;
    let pushed = supervisor.sync(platform);
    assert_eq!(
        (pushed.pushed, pushed.applied, pushed.rejected),
        (steps, steps, 0),
        "{pushed:?}"
    );
    assert_eq!(platform.held("permit_step").len() as u64, steps);
}

#[test]
fn three_users_through_the_phone_library() {
    let Some(platform) = Platform::start() else {
        return;
    };
    welder_and_inspector_flows(&platform);
    supervisor_flow(&platform);
}
