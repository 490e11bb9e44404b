//! `weldguard demo`: the main job end to end on an embedded default (a fresh folder, SQLite, software
//! keys): an issuer key; a machine label, a welder credential and a live presentation printed as PNG
//! QR images; the images scanned back and verified; the start-work decision (扫码开机) printed in
//! Chinese and English and recorded with its outbox entry. It is denied (no hot-work permit); a
//! permit is then walked from draft to approved, the decision is asked again and allowed, the work
//! starts, completes and the permit is closed after the post-work watch; an inspection finds
//! violations; finally the outbox shows every record waiting for upload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use clap::Args;
use qrcode::EcLevel;
use serde::Serialize;
use weldguard_core::app::Device;
use weldguard_core::app::inspection::{
    InspectionRecordInput, Location, PermitShown, record_inspection,
};
use weldguard_core::app::signing::{PersonSigner, SignRequest, Signed};
use weldguard_core::app::start_work::{PositionInput, StartWorkInput, start_work};
use weldguard_core::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, ReplayCache, RevocationSet, SignerError, SoftwareSigner,
    TrustStore, TrustedKey, Verifier, issue_credential, issue_machine_label, present,
};
use weldguard_core::domain::{
    Binding, Explain, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::inspect::{Inspection, Observation, Outcome, Violation};
use weldguard_core::permit::{
    Action, Actor, Catalog, ChecklistAnswer, GeoPoint, NightHours, Permit, PermitContent,
    PermitLevel, PermitState, Person, ProfileSet, RuleContext, RuleProfile, SampleEvidence,
    Section, Site, WorkCalendar, WorkConditions, check_against_permit, issue_permit_code,
    read_permit_code, sample_answers,
};
use weldguard_core::rules::WorkTime;
use weldguard_core::scan::{ScanOptions, scan_image_bytes};
use weldguard_core::store::outbox::OutboxCounts;
use weldguard_core::store::records::new_record_id;
use weldguard_core::store::{RegistryChange, Store};

use crate::cmd::code::write_png;
use crate::cmd::decide::{DecideAnswer, human};
use crate::cmd::permit::{explained, now_ms, permit_store_failure};
use crate::data_dir::app_failure;
use crate::output::{Failure, Lang, Output};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's files [default: a new folder in the system's temp folder].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const ORG: &str = "91370983MA3C4X1Y2K";
const MACHINE_ID: &str = "370983-DH-2024-000123";
const SITE: &str = "site-370983-001";
const SITE_LAT: f64 = 36.182;
const SITE_LON: f64 = 116.772;
/// The demo site is a construction site: no gas analysis, no night escalation.
const PROFILE: &str = "construction";

/// What the demo did, for `--json`.
#[derive(Serialize)]
struct DemoReport {
    dir: String,
    images: Vec<ScannedImage>,
    /// The first start-work decision (no permit yet: denied).
    decision: DecideAnswer,
    /// Records waiting for upload (the same as `outbox.pending`).
    outbox_pending: u64,
    permit: PermitReport,
    /// The decision asked again once the permit is approved.
    second_decision: DecideAnswer,
    inspection: InspectionReport,
    outbox: OutboxCounts,
    /// Pending outbox entries by record kind.
    outbox_by_kind: BTreeMap<String, u64>,
    /// The sync with the local platform server at the end.
    sync: SyncSummary,
}

#[derive(Serialize)]
struct SyncSummary {
    pushed: u64,
    applied: u64,
    rejected: u64,
    pulled_changes: u64,
    snapshot_chunks: u64,
    status_list_entries: u64,
    revocation_data_age_secs: i64,
}

#[derive(Serialize)]
struct PermitReport {
    permit_id: String,
    /// The final state (closed).
    state: PermitState,
    level: PermitLevel,
    /// Saved steps, draft included.
    steps: usize,
    /// The permit's site code as a PNG.
    code_png: String,
}

#[derive(Serialize)]
struct InspectionReport {
    inspection_id: String,
    violations: Vec<Violation>,
    report_required: bool,
}

#[derive(Serialize)]
struct ScannedImage {
    what: &'static str,
    png: String,
    scanned: bool,
    verified: bool,
    reason: Option<String>,
}

fn fail(code: &'static str, e: impl std::fmt::Display) -> Failure {
    Failure::runtime(code, e.to_string())
}

fn demo_dir(arg: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let dir = arg.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "weldguard-demo-{}-{}",
            std::process::id(),
            Utc::now().timestamp_millis()
        ))
    });
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::input("demo.dir", format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Both languages, one line each (the demo speaks to everyone in the room).
fn say(out: &Output, zh: &str, en: &str) {
    if !out.json {
        stdoutln!("{zh}\n  {en}");
    }
}

fn registry(credential: &WelderCredential) -> Vec<RegistryChange> {
    vec![
        RegistryChange::UpsertLicence(Licence {
            certificate_no: credential.certificate_no.clone(),
            id_number: credential.id_number.clone(),
            name: credential.name.clone(),
            categories: credential.categories.clone(),
            issued_on: credential.issued_on,
            expires_on: credential.expires_on,
            next_review_on: credential.next_review_on,
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: None,
        }),
        RegistryChange::UpsertMachine(Machine {
            machine_id: MACHINE_ID.into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: ORG.into(),
            region: 370983,
            status: MachineStatus::Active,
        }),
        RegistryChange::Bind(Binding {
            machine_id: MACHINE_ID.into(),
            certificate_no: credential.certificate_no.clone(),
        }),
    ]
}

fn scan_png(path: &Path) -> Result<Option<String>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| fail("demo.read", format!("cannot read {}: {e}", path.display())))?;
    // A printed label, not a live camera: no need to hurry (a debug build on a busy machine can
    // spend the default budget before the pass that reads it).
    let options = ScanOptions {
        time_budget_ms: 5_000,
        ..ScanOptions::default()
    };
    let codes = scan_image_bytes(&bytes, &options).map_err(|e| {
        fail(
            "demo.scan",
            format!("{}: {}", path.display(), e.message_en()),
        )
    })?;
    Ok(codes.into_iter().find_map(|c| c.text))
}

pub fn run(args: DemoArgs, out: &Output) -> Result<(), Failure> {
    let now = Utc::now();
    // The story starts two and a half hours ago, so that the work, the 30-minute fire watch after
    // it and the inspection all lie in the past or now.
    let t0 = now - Duration::minutes(150);
    let today = WorkTime::china(now).local_date;
    let dir = demo_dir(args.dir)?;
    say(
        out,
        &format!("演示文件夹：{}", dir.display()),
        &format!("Demo folder: {}", dir.display()),
    );

    // 1. The platform's issuer key and the trust file devices carry.
    let issuer = IssuerKey::generate(IssuerAlg::EdDSA).map_err(|e| fail("demo.key", e))?;
    let mut trust = TrustStore::new();
    trust
        .add(TrustedKey::for_key(&issuer, t0.timestamp() - 86_400, None))
        .map_err(|e| fail("demo.key", e))?;
    std::fs::write(dir.join("trust.json"), trust.to_json()).map_err(|e| fail("demo.write", e))?;
    say(
        out,
        "1. 生成签发密钥（Ed25519）和信任文件",
        "1. Generated an issuer key (Ed25519) and the trust file",
    );

    // 2. The welder's phone key (a software key here; a phone keeps it in hardware).
    let phone = SoftwareSigner::generate().map_err(|e| fail("demo.key", e))?;
    let issued_on = today.checked_sub_days(Days::new(400)).unwrap_or(today);
    let credential = WelderCredential {
        certificate_no: "T370983199001011233".into(),
        id_number: "370983199001011233".into(),
        name: "李四".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on,
        expires_on: issued_on
            .checked_add_days(Days::new(6 * 365))
            .unwrap_or(issued_on),
        next_review_on: issued_on
            .checked_add_days(Days::new(3 * 365))
            .unwrap_or(issued_on),
        photo_digest: vec![0x5a; 16],
        device_key: phone.public_key(),
    };
    let label = MachineLabel {
        machine_id: MACHINE_ID.into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: ORG.into(),
        region: 370983,
        issued_at: t0.timestamp() - 3600,
    };

    // 3. The device database with the registry the platform hands out.
    let store =
        Store::open(dir.join("device.db")).map_err(|e| fail("demo.store", e.message_en()))?;
    store
        .apply_registry_changes(registry(&credential), None, now_ms())
        .map_err(|e| fail("demo.store", e.message_en()))?;
    // The phone's profile as the services see it: the same database, the platform's trust.
    let device = Device::with_store(store).map_err(|e| fail("demo.store", e.message_en()))?;
    device.set_trust(trust.clone());
    let store = device.store();

    // 4. Codes printed as PNG labels.
    let machine_text = issue_machine_label(&issuer, &label).map_err(|e| fail("demo.issue", e))?;
    let credential_text =
        issue_credential(&issuer, &credential, t0.timestamp() - 3600, now.timestamp())
            .map_err(|e| fail("demo.issue", e))?;
    let presentation_text =
        present(&credential_text, &phone, t0.timestamp()).map_err(|e| fail("demo.issue", e))?;
    let images = [
        (
            "machine_label",
            "设备码",
            "machine label",
            machine_text.as_str(),
            EcLevel::Q,
        ),
        (
            "welder_credential",
            "人员码",
            "welder credential",
            credential_text.as_str(),
            EcLevel::M,
        ),
        (
            "presentation",
            "亮码（动态）",
            "live presentation",
            presentation_text.as_str(),
            EcLevel::M,
        ),
    ];
    say(
        out,
        "2. 签发设备码、人员码和动态亮码，保存为 PNG",
        "2. Issued a machine label, a welder credential and a live presentation as PNG images",
    );

    // 5. Scan the images back and verify them.
    let revocations = RevocationSet::new();
    let verifier = Verifier::new(&trust, &revocations);
    let mut scanned_texts = Vec::new();
    let mut report_images = Vec::new();
    for (file, zh, en, text, ec) in images {
        let png = dir.join(format!("{file}.png"));
        write_png(text, ec, &png)?;
        let scanned = scan_png(&png)?;
        let check = scanned
            .as_deref()
            .map(|t| verifier.verify(t, t0.timestamp(), &mut ReplayCache::default()));
        let (verified, reason) = match &check {
            Some(Ok(_)) => (true, None),
            Some(Err(e)) => (false, Some(e.code().to_owned())),
            None => (false, Some("scan.no_code".to_owned())),
        };
        say(
            out,
            &format!(
                "   {zh}：{}，{}",
                if scanned.is_some() {
                    "扫描成功"
                } else {
                    "未识别"
                },
                if verified {
                    "验签通过"
                } else {
                    "验签失败"
                }
            ),
            &format!(
                "   {en}: {}, {}",
                if scanned.is_some() {
                    "scanned"
                } else {
                    "not found"
                },
                if verified {
                    "signature verified"
                } else {
                    "NOT verified"
                }
            ),
        );
        if scanned.as_deref() != Some(text) {
            return Err(fail(
                "demo.scan",
                format!("{} did not scan back to the code it holds", png.display()),
            ));
        }
        scanned_texts.push(scanned.unwrap_or_default());
        report_images.push(ScannedImage {
            what: file,
            png: png.display().to_string(),
            scanned: true,
            verified,
            reason,
        });
    }

    // 6. Scan to start: the welder shows the live presentation, the machine label is scanned.
    let machine_code = scanned_texts.first().cloned().unwrap_or_default();
    let presentation = scanned_texts.get(2).cloned().unwrap_or_default();
    let first = decide(&device, &machine_code, &presentation, t0)?;
    say(
        out,
        "3. 扫码开机判定（尚无动火作业证）：",
        "3. Start-work decision (no hot-work permit yet):",
    );
    print_decision(&first, out);

    // 7. The platform enrols the people who sign permits (their phones' keys and permit roles);
    // this phone syncs the signed signer directory before it relies on any signature.
    let signers = Signers::generate()?;
    let platform = LocalPlatform::start(&dir, store, &credential, &signers)?;
    say(
        out,
        &format!(
            "   本地平台已启动；签字人名录 {} 人（申请人、现场检查人、审批人、监护人），已验签同步",
            platform.directory_entries
        ),
        &format!(
            "   Local platform started; signer directory of {} people (applicant, site checker, approver, fire watch) verified and synced",
            platform.directory_entries
        ),
    );

    // The hot-work permit, draft to approved, and its site code.
    let welder = Person {
        name: credential.name.clone(),
        id: credential.certificate_no.clone(),
    };
    let (permit, code_png) = approved_permit(store, &signers, &welder, t0, &dir, out)?;
    let permit_id = permit.content.permit_id.clone();
    say(
        out,
        &format!(
            "4. 动火作业证 {permit_id}：起草 → 提交（{}）→ 现场确认“十不准、九必须” → 现场审批；作业证码：{}",
            level_name(&permit, true),
            code_png.display()
        ),
        &format!(
            "4. Hot-work permit {permit_id}: drafted → submitted ({}) → checked on site (ten prohibitions, nine musts) → approved on site; site code: {}",
            level_name(&permit, false),
            code_png.display()
        ),
    );

    // 8. Scan to start again with a fresh presentation (each is single-use).
    let t_start = t0 + Duration::minutes(15);
    let fresh = present(&credential_text, &phone, t_start.timestamp())
        .map_err(|e| fail("demo.issue", e))?;
    let second = decide(&device, &machine_code, &fresh, t_start)?;
    say(
        out,
        "5. 再次扫码开机（新的动态亮码）：",
        "5. Start-work decision again (a fresh live presentation):",
    );
    print_decision(&second, out);

    // 9. Work starts, completes; the fire watch stays 35 minutes; the permit is closed.
    let t_complete = now - Duration::minutes(45);
    let t_close = now - Duration::minutes(10);
    let closed = work_and_close(
        store,
        &signers,
        &permit_id,
        &welder,
        WorkTimes {
            start: t_start.timestamp(),
            complete: t_complete.timestamp(),
            close: t_close.timestamp(),
        },
        out,
    )?;
    let watch = (t_close - t_complete).num_minutes();
    say(
        out,
        &format!(
            "6. 开始作业 {} → 作业结束 {} → 监护{watch}分钟后完工验收、关闭作业证 {}：{}",
            china_time(t_start.timestamp()),
            china_time(t_complete.timestamp()),
            china_time(t_close.timestamp()),
            closed.state.name_zh()
        ),
        &format!(
            "6. Work started {} → completed {} → after a {watch}-minute fire watch, checked and closed {}: {}",
            china_time(t_start.timestamp()),
            china_time(t_complete.timestamp()),
            china_time(t_close.timestamp()),
            closed.state.name_en()
        ),
    );

    // 10. An inspection: someone welds on the closed permit with a forged welder code, next to
    // combustibles.
    let forger = IssuerKey::generate(IssuerAlg::EdDSA).map_err(|e| fail("demo.key", e))?;
    let forged = issue_credential(&forger, &credential, now.timestamp() - 600, now.timestamp())
        .map_err(|e| fail("demo.issue", e))?;
    let inspection = inspect(
        &device,
        &signers,
        (&forged, &machine_code),
        &closed,
        now,
        out,
    )?;
    let b = &inspection.body;
    say(
        out,
        &format!(
            "7. 网格员现场检查（逢查必核）：发现 {} 项问题{}",
            b.violations.len(),
            if b.report_required {
                "，须及时上报"
            } else {
                ""
            }
        ),
        &format!(
            "7. On-site inspection: {} violation(s){}",
            b.violations.len(),
            if b.report_required {
                "; must be reported upward now"
            } else {
                ""
            }
        ),
    );
    for v in &b.violations {
        say(
            out,
            &format!("   [{}] {}", v.kind.code(), v.message_zh),
            &format!("   [{}] {}", v.kind.code(), v.message_en),
        );
    }

    // 11. Everything written waits in the outbox.
    let counts = store
        .outbox_counts()
        .map_err(|e| fail("demo.store", e.message_en()))?;
    let mut by_kind = BTreeMap::new();
    for e in store
        .outbox_pending(10_000)
        .map_err(|e| fail("demo.store", e.message_en()))?
    {
        *by_kind.entry(e.kind).or_insert(0u64) += 1;
    }
    let kinds_zh = by_kind
        .iter()
        .map(|(k, n)| format!("{} {n}", kind_zh(k)))
        .collect::<Vec<_>>()
        .join("，");
    let kinds_en = by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    say(
        out,
        &format!(
            "8. 待上传记录：{} 条（{kinds_zh}；离线保存，联网后同步）",
            counts.pending
        ),
        &format!(
            "8. Records waiting for upload: {} ({kinds_en}; kept offline, synced when online)",
            counts.pending
        ),
    );
    // 9. Sync with a local platform server: SQLite in the demo folder, on loopback.
    let sync = platform.sync(store)?;
    say(
        out,
        &format!(
            "9. 与本地平台同步：上传 {} 条（接收 {}，拒收 {}）；下载名录 {} 条（快照 {} 块）；吊销名单已验签，{} 条，{} 秒前更新",
            sync.pushed,
            sync.applied,
            sync.rejected,
            sync.pulled_changes,
            sync.snapshot_chunks,
            sync.status_list_entries,
            sync.revocation_data_age_secs
        ),
        &format!(
            "9. Synced with a local platform server: pushed {} ({} applied, {} rejected); pulled {} registry changes ({} snapshot chunks); revocation list verified, {} entries, {} s old",
            sync.pushed,
            sync.applied,
            sync.rejected,
            sync.pulled_changes,
            sync.snapshot_chunks,
            sync.status_list_entries,
            sync.revocation_data_age_secs
        ),
    );
    if out.json {
        let steps = store
            .permit_steps(&permit_id)
            .map_err(|e| permit_store_failure(&e, out))?;
        return out.json(&DemoReport {
            dir: dir.display().to_string(),
            images: report_images,
            outbox_pending: counts.pending,
            decision: first,
            permit: PermitReport {
                permit_id,
                state: closed.state,
                level: closed.level(),
                steps: steps.len(),
                code_png: code_png.display().to_string(),
            },
            second_decision: second,
            inspection: InspectionReport {
                inspection_id: inspection.body.inspection_id.clone(),
                violations: inspection.body.violations.clone(),
                report_required: inspection.body.report_required,
            },
            outbox: counts,
            outbox_by_kind: by_kind,
            sync,
        });
    }
    Ok(())
}

/// The demo's platform admin token (the server lives in the demo folder only).
const DEMO_ADMIN: &str = "demo-admin-token";

/// A platform server in `dir/platform` (SQLite, loopback) that holds the registry and has
/// enrolled this device as a supervisor's and the four people who sign permits.
struct LocalPlatform {
    server: weldguard_server::Background,
    device: weldguard_core::sync::SyncClient,
    directory_entries: usize,
}

impl LocalPlatform {
    /// Start the server, hand it the registry, enrol the signers with the ids the permit names
    /// them by and their permit roles, enrol this device (fetching the platform's trust file) and
    /// sync the signed signer directory into `store`.
    fn start(
        dir: &Path,
        store: &Store,
        credential: &WelderCredential,
        signers: &Signers,
    ) -> Result<LocalPlatform, Failure> {
        use std::sync::atomic::AtomicBool;
        use weldguard_core::codes::signer::DeviceSigner;
        use weldguard_core::sync::protocol::{NewEnrolment, Role};
        use weldguard_core::sync::{RetryPolicy, SyncClient};
        let net = |e: weldguard_core::sync::SyncError| fail("demo.sync", e.message_en());
        let server = weldguard_server::Background::start(&dir.join("platform"), DEMO_ADMIN)
            .map_err(|e| fail("demo.server", e))?;
        let policy = RetryPolicy::default();
        let admin = SyncClient::new(&server.url, Some(DEMO_ADMIN.into()), policy).map_err(net)?;
        admin.write_registry(&registry(credential)).map_err(net)?;
        let enrol = |person: &Person, role: Role, roles: Vec<String>, key: &str| {
            let code = admin
                .enrolment(&NewEnrolment {
                    person: person.name.clone(),
                    role,
                    person_id: Some(person.id.clone()),
                    permit_roles: roles,
                })
                .map_err(net)?;
            SyncClient::new(&server.url, None, policy)
                .map_err(net)?
                .enrol(&code.code, key, "weldguard demo")
                .map_err(net)
        };
        let key = |k: &SoftwareSigner| weldguard_core::codes::to_hex(&k.public_key());
        let (profiles, _) = rules()?;
        let approver_roles = profile(&profiles, Utc::now().timestamp())?
            .levels
            .iter()
            .map(|l| l.approver.id.clone())
            .collect();
        let people = [
            (
                applicant(),
                vec!["applicant".to_owned()],
                &signers.applicant,
            ),
            (checker(), vec!["supervisor".to_owned()], &signers.checker),
            (approver(), approver_roles, &signers.approver),
            (
                fire_watch(),
                vec!["fire_watch".to_owned()],
                &signers.fire_watch,
            ),
        ];
        for (person, roles, signer) in &people {
            enrol(person, Role::Supervisor, roles.clone(), &key(signer))?;
        }
        let this = enrol(&person("王监护", "S-010"), Role::Supervisor, Vec::new(), "")?;
        let device = SyncClient::new(&server.url, Some(this.token), policy).map_err(net)?;
        let trust_file = device.trust_file().map_err(net)?;
        let trust = TrustStore::from_json(&serde_json::to_string(&trust_file).unwrap_or_default())
            .map_err(|e| fail("demo.trust", e))?;
        let device = device.with_trust(trust.clone());
        device
            .fetch_signer_directory(store, &trust, &AtomicBool::new(false))
            .map_err(net)?;
        let directory_entries = store
            .signer_directory()
            .map_err(|e| fail("demo.store", e.message_en()))?
            .map_or(0, |d| d.entries.len());
        Ok(LocalPlatform {
            server,
            device,
            directory_entries,
        })
    }

    /// Sync everything the phone recorded: status list, directory, push, snapshot, permits.
    fn sync(self, store: &Store) -> Result<SyncSummary, Failure> {
        use std::sync::atomic::AtomicBool;
        let net = |e: weldguard_core::sync::SyncError| fail("demo.sync", e.message_en());
        let report = self
            .device
            .sync(store, &mut |_| {}, &AtomicBool::new(false))
            .map_err(net)?;
        let status = store
            .status_list_info()
            .map_err(|e| fail("demo.store", e.message_en()))?;
        let now = Utc::now().timestamp();
        drop(self.server);
        Ok(SyncSummary {
            pushed: report.pushed,
            applied: report.applied,
            rejected: report.rejected,
            pulled_changes: report.pulled_changes,
            snapshot_chunks: report.snapshot_chunks,
            status_list_entries: status.as_ref().map_or(0, |s| s.entries),
            revocation_data_age_secs: status.map_or(-1, |s| s.age_secs(now)),
        })
    }
}

fn kind_zh(kind: &str) -> &str {
    match kind {
        "work_session" => "开机记录",
        "permit_step" => "作业证步骤",
        "inspection" => "检查记录",
        other => other,
    }
}

fn china_time(t: i64) -> String {
    FixedOffset::east_opt(8 * 3600)
        .and_then(|o| o.timestamp_opt(t, 0).single())
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn level_name(permit: &Permit, zh: bool) -> String {
    let level = permit.level();
    ProfileSet::builtin()
        .ok()
        .and_then(|set| {
            set.profiles
                .iter()
                .find(|p| p.id == permit.content.profile_id)
                .and_then(|p| p.level(level))
                .map(|l| {
                    if zh {
                        l.name_zh.clone()
                    } else {
                        l.name_en.clone()
                    }
                })
        })
        .unwrap_or_else(|| format!("{level:?}"))
}

fn print_decision(answer: &DecideAnswer, out: &Output) {
    if !out.json {
        stdout!("{}", human(answer, Lang::Zh));
        stdout!("{}", human(answer, Lang::En));
    }
}

/// Ask the start-work decision and record the work session with its outbox entry (the service the
/// phones call), with the phone's position at the site.
fn decide(
    device: &Device,
    machine_text: &str,
    welder_text: &str,
    at: DateTime<Utc>,
) -> Result<DecideAnswer, Failure> {
    let view = start_work(
        device,
        StartWorkInput {
            machine_text: machine_text.to_owned(),
            welder_text: welder_text.to_owned(),
            site_id: SITE.to_owned(),
            now: at.timestamp(),
            position: Some(PositionInput::Degrees {
                latitude: SITE_LAT,
                longitude: SITE_LON,
                accuracy_m: 8.0,
            }),
            lang: weldguard_core::app::Lang::Zh,
        },
    )
    .map_err(|e| fail("demo.store", e.message_en()))?;
    Ok(DecideAnswer::of(view))
}

/// The people who sign, each with a software key (a phone keeps it in hardware).
struct Signers {
    applicant: SoftwareSigner,
    checker: SoftwareSigner,
    approver: SoftwareSigner,
    fire_watch: SoftwareSigner,
    inspector: SoftwareSigner,
}

impl Signers {
    fn generate() -> Result<Signers, Failure> {
        let key = || SoftwareSigner::generate().map_err(|e| fail("demo.key", e));
        Ok(Signers {
            applicant: key()?,
            checker: key()?,
            approver: key()?,
            fire_watch: key()?,
            inspector: key()?,
        })
    }
}

fn person(name: &str, id: &str) -> Person {
    Person {
        name: name.into(),
        id: id.into(),
    }
}

fn signer_actor(p: &Person, role: &str) -> Actor {
    Actor {
        name: p.name.clone(),
        id: p.id.clone(),
        role: role.into(),
    }
}

fn site_location() -> GeoPoint {
    GeoPoint::from_degrees(SITE_LAT, SITE_LON)
}

/// Answers to every item of the given sections, with the evidence each requires.
fn answers(
    catalog: &Catalog,
    sections: &[Section],
    welder: &Person,
    fire_watch: &Person,
    gas_at: i64,
) -> Vec<ChecklistAnswer> {
    let mut sample = SampleEvidence::new(welder.clone(), fire_watch.clone(), gas_at);
    sample.machine_distance_m = Some(6);
    sample_answers(catalog, sections, &sample)
}

fn rules() -> Result<(ProfileSet, Catalog), Failure> {
    let profiles = ProfileSet::builtin().map_err(|e| fail("permit.profiles", format!("{e:?}")))?;
    let catalog = Catalog::builtin().map_err(|e| fail("permit.catalog", e))?;
    Ok((profiles, catalog))
}

fn profile(profiles: &ProfileSet, at: i64) -> Result<&RuleProfile, Failure> {
    let date =
        WorkTime::china(DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default()).local_date;
    profiles
        .select(PROFILE, date)
        .ok_or_else(|| fail("permit.profile_unknown", PROFILE))
}

fn fire_watch() -> Person {
    person("王五", "S-002")
}

fn applicant() -> Person {
    person("张三", "S-001")
}

fn checker() -> Person {
    person("孙七", "S-003")
}

fn approver() -> Person {
    person("周八", "S-004")
}

/// Draft, submit, check on site and approve the demo permit; write its site code as a PNG.
fn approved_permit(
    store: &Store,
    signers: &Signers,
    welder: &Person,
    t0: DateTime<Utc>,
    dir: &Path,
    out: &Output,
) -> Result<(Permit, PathBuf), Failure> {
    let (profiles, catalog) = rules()?;
    let profile = profile(&profiles, t0.timestamp())?;
    let ctx = RuleContext {
        profile,
        catalog: &catalog,
    };
    let at = |minutes: i64| (t0 + Duration::minutes(minutes)).timestamp();
    let level = profile
        .levels
        .iter()
        .find(|l| l.level == PermitLevel::Level2)
        .ok_or_else(|| fail("permit.level", "the profile has no level 2"))?;
    let valid_from = t0.timestamp();
    let valid_until = valid_from + level.max_validity_secs.min(8 * 3600);
    let applicant = applicant();
    let permit_id = new_record_id(now_ms()).map_err(|e| fail("demo.store", e.message_en()))?;
    let content = PermitContent {
        permit_id: permit_id.clone(),
        site: Site {
            site_id: SITE.into(),
            name: "肥城市某商业综合体项目 3号楼".into(),
            profile_id: profile.id.clone(),
            location: site_location(),
            utc_offset_secs: 8 * 3600,
            night: NightHours {
                start: NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default(),
                end: NaiveTime::from_hms_opt(6, 0, 0).unwrap_or_default(),
            },
            approval_radius_m: None,
        },
        profile_id: profile.id.clone(),
        profile_version: profile.version.clone(),
        catalog_version: catalog.version.clone(),
        work_description: "3号楼地下室钢结构支架焊接".into(),
        hot_work_point: "3号楼地下一层东侧".into(),
        hot_work_points: 1,
        location: site_location(),
        conditions: WorkConditions {
            wind_force: None,
            outdoor: false,
            shields: false,
            complex_environment: false,
        },
        requested_level: PermitLevel::Level2,
        valid_from,
        valid_until,
        applicant: applicant.clone(),
        welders: vec![welder.clone()],
        machines: vec![MACHINE_ID.into()],
        fire_watch: vec![fire_watch()],
    };
    let by = signer_actor(&applicant, "applicant");
    let draft = Permit::draft(content, &ctx, &by, at(2)).map_err(|e| explained(&e, out, false))?;
    store
        .save_permit(None, &draft, None, now_ms())
        .map_err(|e| permit_store_failure(&e, out))?;
    let apply = |action: Action<'_>| {
        store
            .apply_permit_action(&permit_id, &ctx, action, now_ms())
            .map(|(p, _)| p)
            .map_err(|e| permit_store_failure(&e, out))
    };
    let calendar = WorkCalendar::default();
    let submitted = apply(Action::Submit {
        by,
        signer: &signers.applicant,
        calendar: &calendar,
        at: at(4),
        location: Some(site_location()),
    })?;
    apply(Action::SiteCheck {
        by: signer_actor(&checker(), "supervisor"),
        signer: &signers.checker,
        answers: answers(
            &catalog,
            &[Section::Prohibition, Section::Must],
            welder,
            &fire_watch(),
            at(6),
        ),
        at: at(8),
        location: Some(site_location()),
    })?;
    let approver_role = profile
        .level(submitted.level())
        .map(|l| l.approver.id.clone())
        .unwrap_or_else(|| "approver".into());
    let approved = apply(Action::Approve {
        by: signer_actor(&approver(), &approver_role),
        // The demo's approver is at the site in person.
        signer: &weldguard_core::codes::PresenceConfirmed(&signers.approver),
        at: at(12),
        location: Some(site_location()),
    })?;
    let text = issue_permit_code(&approved, &signers.approver, at(12))
        .map_err(|e| explained(&e, out, false))?;
    let png = dir.join("permit.png");
    write_png(&text, EcLevel::M, &png)?;
    // The printed site code reads back and matches the stored permit.
    let scanned = scan_png(&png)?.unwrap_or_default();
    let claims = read_permit_code(&scanned).map_err(|e| explained(&e, out, false))?;
    check_against_permit(&claims, &approved).map_err(|e| explained(&e, out, false))?;
    Ok((approved, png))
}

/// When the work started and completed and the permit was closed (Unix seconds).
struct WorkTimes {
    start: i64,
    complete: i64,
    close: i64,
}

/// Work starts, completes, and the permit is closed after the post-work check.
fn work_and_close(
    store: &Store,
    signers: &Signers,
    permit_id: &str,
    welder: &Person,
    times: WorkTimes,
    out: &Output,
) -> Result<Permit, Failure> {
    let WorkTimes {
        start,
        complete,
        close,
    } = times;
    let (profiles, catalog) = rules()?;
    let permit = store
        .permit(permit_id)
        .map_err(|e| permit_store_failure(&e, out))?
        .ok_or_else(|| fail("permit_store.not_found", permit_id))?;
    let profile = profiles
        .profiles
        .iter()
        .find(|p| p.id == permit.content.profile_id && p.version == permit.content.profile_version)
        .ok_or_else(|| fail("permit.profile_unknown", &permit.content.profile_id))?;
    let ctx = RuleContext {
        profile,
        catalog: &catalog,
    };
    let apply = |action: Action<'_>| {
        store
            .apply_permit_action(permit_id, &ctx, action, now_ms())
            .map(|(p, _)| p)
            .map_err(|e| permit_store_failure(&e, out))
    };
    apply(Action::Start {
        at: start,
        continuous_monitoring: false,
        by: Some(welder.id.clone()),
    })?;
    apply(Action::Complete { at: complete })?;
    let watch = fire_watch();
    apply(Action::Close {
        by: signer_actor(&watch, "fire_watch"),
        signer: &signers.fire_watch,
        post_work: answers(&catalog, &[Section::PostWork], welder, &watch, close),
        at: close,
        location: Some(site_location()),
    })
}

/// The inspector's phone key (a software key here; a phone keeps it in hardware and may ask for
/// the inspector's presence).
struct InspectorKey<'a>(&'a SoftwareSigner);

impl PersonSigner for InspectorKey<'_> {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, request: &SignRequest) -> Result<Signed, SignerError> {
        Ok(Signed {
            signature: self.0.sign(&request.message)?,
            user_present: false,
        })
    }
}

/// The inspector scans the welder's code and the machine label, sees the permit and the site, and
/// seals the record: the inspection service the phones call.
fn inspect(
    device: &Device,
    signers: &Signers,
    (welder_text, machine_text): (&str, &str),
    permit: &Permit,
    at: DateTime<Utc>,
    out: &Output,
) -> Result<Inspection, Failure> {
    let input = InspectionRecordInput {
        site_id: SITE.into(),
        inspector_name: "网格员刘".into(),
        inspector_id: "G-0042".into(),
        welder_text: Some(welder_text.to_owned()),
        machine_text: Some(machine_text.to_owned()),
        permit: Some(PermitShown::Id(permit.content.permit_id.clone())),
        findings: vec![Observation {
            item_id: "ban.08".into(),
            outcome: Outcome::NotCompliant,
            note: "焊割部位旁堆放木模板，未清理".into(),
            photos: vec![vec![0xab; 32]],
        }],
        photos: vec![vec![0xab; 32]],
        location: Some(Location {
            latitude: SITE_LAT,
            longitude: SITE_LON,
        }),
        notes: String::new(),
    };
    let view = record_inspection(
        device,
        input,
        &InspectorKey(&signers.inspector),
        at.timestamp(),
        weldguard_core::app::Lang::Zh,
    )
    .map_err(|e| app_failure(&e, out))?;
    // The sealed record as saved.
    device
        .store()
        .inspections(10)
        .map_err(|e| permit_store_failure(&e, out))?
        .into_iter()
        .find(|r| r.id == view.inspection_id)
        .map(|r| r.inspection)
        .ok_or_else(|| fail("demo.store", "the inspection was not saved"))
}
