//! `weldguard demo`: the main job end to end on an embedded default (a fresh folder, SQLite, software
//! keys), through the same application services the phones call (`weldguard_core::app`): an issuer
//! key; a machine label, a welder credential and a live presentation printed as PNG QR images; the
//! images scanned back and verified; the start-work decision (扫码开机) printed in Chinese and
//! English and recorded with its outbox entry. It is denied (no hot-work permit); the people who
//! sign permits and this phone enrol with a local platform server (`app::enrol`); a permit is then
//! walked from draft to approved (`app::permits`, each person signing with their own key, the
//! approver with presence), the decision is asked again and allowed, the work starts, completes,
//! the fire watch shows in what is due (`app::due`) and the permit is closed after it; an
//! inspection finds violations; the outbox shows every record waiting for upload, and a sync
//! (`app::sync`) hands them to the platform. With `--dashboard` the platform then keeps running
//! with sites, machines and warnings for the supervision dashboard ([`dashboard`]).

mod dashboard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, Days, Duration, FixedOffset, TimeZone, Utc};
use clap::Args;
use qrcode::EcLevel;
use serde::Serialize;
use weldguard_core::app::due::{Due, due};
use weldguard_core::app::enrol::{EnrolRequest, Enrolled, enrol};
use weldguard_core::app::history::{self, OutboxFilter};
use weldguard_core::app::inspection::{
    InspectionRecordInput, Location, PermitShown, record_inspection,
};
use weldguard_core::app::permits::{self as svc, ActorInput, DraftInput, PermitView};
use weldguard_core::app::signing::{PersonSigner, SoftwarePersonSigner};
use weldguard_core::app::start_work::{PositionInput, StartWorkInput, start_work};
use weldguard_core::app::sync::{SyncRequest, sync as app_sync};
use weldguard_core::app::{Device, Lang as AppLang};
use weldguard_core::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, ReplayCache, RevocationSet, SoftwareSigner, TrustStore,
    TrustedKey, Verifier, issue_credential, issue_machine_label, present,
};
use weldguard_core::domain::{
    Binding, Explain, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::inspect::{Observation, Outcome, Violation};
use weldguard_core::permit::{
    Catalog, ChecklistAnswer, GeoPoint, PermitLevel, PermitState, Person, ProfileSet,
    SampleEvidence, Section, WorkConditions, sample_answers,
};
use weldguard_core::rules::WorkTime;
use weldguard_core::scan::{ScanOptions, scan_image_bytes};
use weldguard_core::store::outbox::OutboxCounts;
use weldguard_core::store::{RegistryChange, Store};

use crate::cmd::code::write_png;
use crate::cmd::decide::{DecideAnswer, human};
use crate::cmd::permit::now_ms;
use crate::data_dir::app_failure;
use crate::output::{Failure, Lang, Output};
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's files [default: a new folder in the system's temp folder].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// After the demo, keep its platform running with sites, machines and warnings, and print the
    /// supervision dashboard's address (with a city-wide monitoring code); Ctrl-C stops it.
    #[arg(long)]
    dashboard: bool,
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
    /// With `--dashboard`: what was set up for the dashboard, and its address.
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard: Option<dashboard::DashboardReport>,
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
    /// The printed site code scanned back matches the stored permit.
    code_matches: bool,
    /// Signatures in the permit's chain (submit, site check, approval, closing).
    signatures: usize,
    /// The approval's signature was made with the approver's presence verified.
    approved_with_presence: bool,
    /// What was due right after the work completed (the fire watch).
    due_after_completion: Vec<Due>,
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

    // 3. The device database with the registry the platform hands out; the phone's profile as the
    // services see it, anchored on the trust file the phone carries (the FFI's `set_trust`).
    let store =
        Store::open(dir.join("device.db")).map_err(|e| fail("demo.store", e.message_en()))?;
    store
        .apply_registry_changes(registry(&credential), None, now_ms())
        .map_err(|e| fail("demo.store", e.message_en()))?;
    let device = Device::with_store(store).map_err(|e| app_failure(&e, out))?;
    device
        .adopt_trust(&trust, now_ms())
        .map_err(|e| app_failure(&e, out))?;

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
    let first = decide(&device, &machine_code, &presentation, t0, out)?;
    say(
        out,
        "3. 扫码开机判定（尚无动火作业证）：",
        "3. Start-work decision (no hot-work permit yet):",
    );
    print_decision(&first, out);

    // 7. The platform enrols the people who sign permits (each phone enrols its own key and gets
    // its permit roles in the signed signer directory), then this phone enrols and syncs the
    // signed signer directory before it relies on any signature.
    let signers = Signers::generate()?;
    let platform = LocalPlatform::start(&dir, &device, &trust, &credential, &signers, out)?;
    say(
        out,
        &format!(
            "   本地平台已启动；签字人名录 {} 人（申请人、现场检查人、审批人、监护人），已验签同步；本机注册为 {}（{}）",
            platform.directory_entries, platform.enrolled.person, platform.enrolled.device_id
        ),
        &format!(
            "   Local platform started; signer directory of {} people (applicant, site checker, approver, fire watch) verified and synced; this phone enrolled as {} ({})",
            platform.directory_entries, platform.enrolled.person, platform.enrolled.device_id
        ),
    );

    // The hot-work permit, draft to approved, and its site code.
    let welder = Person {
        name: credential.name.clone(),
        id: credential.certificate_no.clone(),
    };
    let walk = approved_permit(&device, &signers, &welder, t0, &dir, out)?;
    let permit_id = walk.approved.permit_id.clone();
    say(
        out,
        &format!(
            "4. 动火作业证 {permit_id}：起草 → 提交（{}）→ 现场确认“十不准、九必须” → 现场审批（审批人本人验证）；作业证码：{}（扫码核对：{}）",
            walk.approved.level_name.zh,
            walk.code_png.display(),
            walk.code_verdict.zh
        ),
        &format!(
            "4. Hot-work permit {permit_id}: drafted → submitted ({}) → checked on site (ten prohibitions, nine musts) → approved on site (approver's presence verified); site code: {} (scanned back: {})",
            walk.approved.level_name.en,
            walk.code_png.display(),
            walk.code_verdict.en
        ),
    );

    // 8. Scan to start again with a fresh presentation (each is single-use).
    let t_start = t0 + Duration::minutes(15);
    let fresh = present(&credential_text, &phone, t_start.timestamp())
        .map_err(|e| fail("demo.issue", e))?;
    let second = decide(&device, &machine_code, &fresh, t_start, out)?;
    say(
        out,
        "5. 再次扫码开机（新的动态亮码）：",
        "5. Start-work decision again (a fresh live presentation):",
    );
    print_decision(&second, out);

    // 9. Work starts, completes; the fire watch stays 35 minutes; the permit is closed.
    let t_complete = now - Duration::minutes(45);
    let t_close = now - Duration::minutes(10);
    let (closed, due_zh, due_after) = work_and_close(
        &device,
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
    for (zh, en) in due_zh.iter().zip(&due_after) {
        say(
            out,
            &format!("   作业结束后待办：{}", zh.text),
            &format!("   Due after the work: {}", en.text),
        );
    }
    let watch = (t_close - t_complete).num_minutes();
    say(
        out,
        &format!(
            "6. 开始作业 {} → 作业结束 {} → 监护{watch}分钟后完工验收、关闭作业证 {}：{}",
            china_time(t_start.timestamp()),
            china_time(t_complete.timestamp()),
            china_time(t_close.timestamp()),
            closed.state_name.zh
        ),
        &format!(
            "6. Work started {} → completed {} → after a {watch}-minute fire watch, checked and closed {}: {}",
            china_time(t_start.timestamp()),
            china_time(t_complete.timestamp()),
            china_time(t_close.timestamp()),
            closed.state_name.en
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
        &permit_id,
        now,
        out,
    )?;
    say(
        out,
        &format!(
            "7. 网格员现场检查（逢查必核）：发现 {} 项问题{}",
            inspection.violations.len(),
            if inspection.report_required {
                "，须及时上报"
            } else {
                ""
            }
        ),
        &format!(
            "7. On-site inspection: {} violation(s){}",
            inspection.violations.len(),
            if inspection.report_required {
                "; must be reported upward now"
            } else {
                ""
            }
        ),
    );
    for v in &inspection.violations {
        say(
            out,
            &format!("   [{}] {}", v.kind.code(), v.message_zh),
            &format!("   [{}] {}", v.kind.code(), v.message_en),
        );
    }

    // 11. Everything written waits in the outbox (the history service a phone's outbox screen
    // calls).
    let waiting = history::outbox(&device, OutboxFilter::Unresolved, history::MAX_PAGE)
        .map_err(|e| app_failure(&e, out))?;
    let counts = waiting.counts;
    let mut by_kind = BTreeMap::new();
    for e in &waiting.entries {
        *by_kind.entry(e.entry.kind.clone()).or_insert(0u64) += 1;
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
    let sync = platform.sync(&device, out)?;
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
    let dashboard = if args.dashboard {
        let welder = dashboard::Welder {
            credential: &credential_text,
            key: &phone,
            certificate_no: &credential.certificate_no,
        };
        Some(dashboard::set_up(
            &platform, &device, &issuer, &welder, out,
        )?)
    } else {
        None
    };
    let (dashboard, stop) = match dashboard {
        Some((report, signal)) => (Some(report), Some(signal)),
        None => (None, None),
    };
    if out.json {
        let shown = svc::show(&device, now.timestamp(), AppLang::En, &permit_id)
            .map_err(|e| app_failure(&e, out))?;
        out.json(&DemoReport {
            dir: dir.display().to_string(),
            images: report_images,
            outbox_pending: counts.pending,
            decision: first,
            permit: PermitReport {
                permit_id,
                state: closed.state,
                level: closed.level,
                steps: shown.steps.len(),
                code_png: walk.code_png.display().to_string(),
                code_matches: walk.code_matches,
                signatures: closed.signatures.len(),
                approved_with_presence: walk.approved_with_presence,
                due_after_completion: due_after,
            },
            second_decision: second,
            inspection: InspectionReport {
                inspection_id: inspection.inspection_id,
                violations: inspection.violations,
                report_required: inspection.report_required,
            },
            outbox: counts,
            outbox_by_kind: by_kind,
            sync,
            dashboard,
        })?;
    }
    if let Some(signal) = stop {
        signal.wait();
        // The server finishes its open requests and stops.
        drop(platform);
        say(out, "平台已停止。", "The platform has stopped.");
    }
    Ok(())
}

/// The demo's platform admin token (the server lives in the demo folder only).
const DEMO_ADMIN: &str = "demo-admin-token";

/// A platform server in `dir/platform` (SQLite, loopback) that holds the registry, with the four
/// people who sign permits and this phone enrolled.
struct LocalPlatform {
    server: weldguard_server::Background,
    /// This phone's enrolment (its token is what a shell keeps in secure storage).
    enrolled: Enrolled,
    directory_entries: usize,
}

impl LocalPlatform {
    /// Start the server; the platform's administrator hands it the registry and makes one-time
    /// enrolment codes (people, their ids and permit roles). Each signer's phone enrols its own key
    /// through the enrolment service (a profile of its own), then this phone enrols (the service
    /// saves the platform's trust and fetches the signed signer directory); the trust file this
    /// phone carries is handed in again, as a shell does at every start.
    fn start(
        dir: &Path,
        device: &Device,
        carried_trust: &TrustStore,
        credential: &WelderCredential,
        signers: &Signers,
        out: &Output,
    ) -> Result<LocalPlatform, Failure> {
        use weldguard_core::sync::protocol::{NewEnrolment, Role};
        use weldguard_core::sync::{RetryPolicy, SyncClient};
        let net = |e: weldguard_core::sync::SyncError| fail("demo.sync", e.message_en());
        let server = weldguard_server::Background::start(&dir.join("platform"), DEMO_ADMIN)
            .map_err(|e| fail("demo.server", e))?;
        let admin = SyncClient::new(&server.url, Some(DEMO_ADMIN.into()), RetryPolicy::default())
            .map_err(net)?;
        admin.write_registry(&registry(credential)).map_err(net)?;
        let code = |person: &Person, roles: Vec<String>| {
            admin
                .enrolment(&NewEnrolment {
                    person: person.name.clone(),
                    role: Role::Supervisor,
                    person_id: Some(person.id.clone()),
                    permit_roles: roles,
                })
                .map(|c| c.code)
                .map_err(net)
        };
        let now = Utc::now().timestamp();
        let phones = dir.join("phones");
        std::fs::create_dir_all(&phones).map_err(|e| fail("demo.write", e))?;
        let approver_roles = approver_roles(now)?;
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
            let code = code(person, roles.clone())?;
            let phone = Device::open(phones.join(format!("{}.db", person.id)))
                .map_err(|e| app_failure(&e, out))?;
            enrol(
                &phone,
                &EnrolRequest {
                    server_url: server.url.clone(),
                    code,
                    public_key: signer.public_key(),
                    device_name: format!("{} phone", person.id),
                },
                now,
            )
            .map_err(|e| app_failure(&e, out))?;
        }
        let code = code(&person("王监护", "S-010"), Vec::new())?;
        let enrolled = enrol(
            device,
            &EnrolRequest {
                server_url: server.url.clone(),
                code,
                public_key: Vec::new(),
                device_name: "weldguard demo".into(),
            },
            now,
        )
        .map_err(|e| app_failure(&e, out))?;
        device
            .adopt_trust(carried_trust, now_ms())
            .map_err(|e| app_failure(&e, out))?;
        let directory_entries = device
            .store()
            .signer_directory()
            .map_err(|e| fail("demo.store", e.message_en()))?
            .map_or(0, |d| d.entries.len());
        Ok(LocalPlatform {
            server,
            enrolled,
            directory_entries,
        })
    }

    /// Sync everything the phone recorded (the sync service): trust, status list, directory,
    /// push, snapshot, permits.
    fn sync(&self, device: &Device, out: &Output) -> Result<SyncSummary, Failure> {
        let now = Utc::now().timestamp();
        let summary = app_sync(
            device,
            SyncRequest::new(self.enrolled.server.clone(), self.enrolled.token.clone()),
            now,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .map_err(|e| app_failure(&e, out))?;
        let status = device
            .store()
            .status_list_info()
            .map_err(|e| fail("demo.store", e.message_en()))?;
        Ok(SyncSummary {
            pushed: summary.pushed,
            applied: summary.applied,
            rejected: summary.rejected,
            pulled_changes: summary.pulled_changes,
            snapshot_chunks: summary.snapshot_chunks,
            status_list_entries: status.as_ref().map_or(0, |s| s.entries),
            revocation_data_age_secs: summary.revocation_data_age_secs.unwrap_or(-1),
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
    out: &Output,
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
            lang: AppLang::Zh,
        },
    )
    .map_err(|e| app_failure(&e, out))?;
    Ok(DecideAnswer::of(view))
}

/// The people who sign, each with a software key (a phone keeps it in hardware and asks for the
/// person's presence; here the approver's key says presence was verified, as the approval needs).
struct Signers {
    applicant: SoftwarePersonSigner,
    checker: SoftwarePersonSigner,
    approver: SoftwarePersonSigner,
    fire_watch: SoftwarePersonSigner,
    inspector: SoftwarePersonSigner,
}

impl Signers {
    fn generate() -> Result<Signers, Failure> {
        let key = |present: bool| {
            SoftwareSigner::generate()
                .map(|k| SoftwarePersonSigner::new(k, present))
                .map_err(|e| fail("demo.key", e))
        };
        Ok(Signers {
            applicant: key(false)?,
            checker: key(false)?,
            approver: key(true)?,
            fire_watch: key(false)?,
            inspector: key(false)?,
        })
    }
}

fn person(name: &str, id: &str) -> Person {
    Person {
        name: name.into(),
        id: id.into(),
    }
}

fn acting(p: &Person, role: Option<&str>) -> ActorInput {
    ActorInput {
        name: p.name.clone(),
        id: p.id.clone(),
        role: role.map(str::to_owned),
    }
}

fn site_location() -> GeoPoint {
    GeoPoint::from_degrees(SITE_LAT, SITE_LON)
}

/// What the person checking fills in: every item of the given sections answered, with the
/// evidence each requires (photos, the machine 6 m away, the people by name).
fn answers(
    sections: &[Section],
    welder: &Person,
    fire_watch: &Person,
    gas_at: i64,
) -> Result<Vec<ChecklistAnswer>, Failure> {
    let catalog = Catalog::builtin().map_err(|e| fail("permit.catalog", e))?;
    let mut sample = SampleEvidence::new(welder.clone(), fire_watch.clone(), gas_at);
    sample.machine_distance_m = Some(6);
    Ok(sample_answers(&catalog, sections, &sample))
}

/// The approver roles of the demo's rule profile, for the platform's enrolment of the approver.
fn approver_roles(at: i64) -> Result<Vec<String>, Failure> {
    let profiles = ProfileSet::builtin().map_err(|e| fail("permit.profiles", format!("{e:?}")))?;
    let date =
        WorkTime::china(DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default()).local_date;
    let profile = profiles
        .select(PROFILE, date)
        .ok_or_else(|| fail("permit.profile_unknown", PROFILE))?;
    Ok(profile
        .levels
        .iter()
        .map(|l| l.approver.id.clone())
        .collect())
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

/// The permit walked to approved, and its site code.
struct ApprovedPermit {
    approved: PermitView,
    approved_with_presence: bool,
    code_png: PathBuf,
    code_matches: bool,
    code_verdict: svc::Text,
}

/// Draft, submit, check on site and approve the demo permit through the permit services (each
/// step signed by its person's key); write its site code as a PNG and scan it back.
fn approved_permit(
    device: &Device,
    signers: &Signers,
    welder: &Person,
    t0: DateTime<Utc>,
    dir: &Path,
    out: &Output,
) -> Result<ApprovedPermit, Failure> {
    let at = |minutes: i64| (t0 + Duration::minutes(minutes)).timestamp();
    let lang = AppLang::En;
    let failed = |e: weldguard_core::app::AppError| app_failure(&e, out);
    let valid_from = t0.timestamp();
    let drafted = svc::draft(
        device,
        at(2),
        lang,
        DraftInput {
            site_id: SITE.into(),
            site_name: "肥城市某商业综合体项目 3号楼".into(),
            rules: PROFILE.into(),
            site_location: site_location(),
            night: None,
            approval_radius_m: None,
            work: "3号楼地下室钢结构支架焊接".into(),
            hot_work_point: "3号楼地下一层东侧".into(),
            hot_work_points: 1,
            level: PermitLevel::Level2,
            valid_from,
            valid_until: valid_from + 8 * 3600,
            applicant: applicant(),
            welders: vec![welder.clone()],
            machines: vec![MACHINE_ID.into()],
            fire_watch: vec![fire_watch()],
            conditions: WorkConditions::default(),
            permit_id: None,
        },
    )
    .map_err(failed)?;
    let id = drafted.permit_id;
    svc::submit(
        device,
        at(4),
        lang,
        Some(site_location()),
        &id,
        acting(&applicant(), None),
        None,
        &signers.applicant,
    )
    .map_err(failed)?;
    svc::site_check(
        device,
        at(8),
        lang,
        Some(site_location()),
        &id,
        acting(&checker(), None),
        answers(
            &[Section::Prohibition, Section::Must],
            welder,
            &fire_watch(),
            at(6),
        )?,
        &signers.checker,
    )
    .map_err(failed)?;
    // The demo's approver is at the site in person; the role is the level's approver's.
    let approved = svc::approve(
        device,
        at(12),
        lang,
        Some(site_location()),
        &id,
        acting(&approver(), None),
        &signers.approver,
    )
    .map_err(failed)?;
    let approved_with_presence = approved.signatures.iter().any(|s| {
        s.step == weldguard_core::permit::SignedStep::Approve && s.user_present == Some(true)
    });
    let code = svc::site_code(device, at(12), &id, &signers.approver).map_err(failed)?;
    let png = dir.join("permit.png");
    write_png(&code.text, EcLevel::M, &png)?;
    // The printed site code reads back and matches the stored permit.
    let scanned = scan_png(&png)?.unwrap_or_default();
    let check = svc::scan(device, lang, &scanned).map_err(failed)?;
    let zh = svc::scan(device, AppLang::Zh, &scanned).map_err(failed)?;
    let code_matches = check.valid && check.matches_stored == Some(true);
    if !code_matches {
        return Err(fail("demo.permit_code", check.verdict.en));
    }
    Ok(ApprovedPermit {
        approved,
        approved_with_presence,
        code_png: png,
        code_matches,
        code_verdict: svc::Text {
            zh: zh.verdict.zh,
            en: check.verdict.en.clone(),
            text: check.verdict.en,
        },
    })
}

/// When the work started and completed and the permit was closed (Unix seconds).
struct WorkTimes {
    start: i64,
    complete: i64,
    close: i64,
}

/// Work starts, completes (what is due then: the fire watch, in Chinese and English), and the
/// permit is closed after the post-work check, through the permit services.
fn work_and_close(
    device: &Device,
    signers: &Signers,
    permit_id: &str,
    welder: &Person,
    times: WorkTimes,
    out: &Output,
) -> Result<(PermitView, Vec<Due>, Vec<Due>), Failure> {
    let WorkTimes {
        start,
        complete,
        close,
    } = times;
    let lang = AppLang::En;
    let failed = |e: weldguard_core::app::AppError| app_failure(&e, out);
    svc::start(
        device,
        start,
        lang,
        permit_id,
        false,
        Some(welder.id.clone()),
    )
    .map_err(failed)?;
    svc::complete(device, complete, lang, permit_id).map_err(failed)?;
    let due_zh = due(device, complete, AppLang::Zh).map_err(failed)?;
    let due_en = due(device, complete, AppLang::En).map_err(failed)?;
    let watch = fire_watch();
    let closed = svc::close(
        device,
        close,
        lang,
        Some(site_location()),
        permit_id,
        acting(&watch, Some("fire_watch")),
        answers(&[Section::PostWork], welder, &watch, close)?,
        &signers.fire_watch,
    )
    .map_err(failed)?;
    if closed.state != PermitState::Closed {
        return Err(fail("demo.permit", "the permit did not close"));
    }
    Ok((closed, due_zh, due_en))
}

/// What the inspection found, as the history service lists it.
struct Inspected {
    inspection_id: String,
    violations: Vec<Violation>,
    report_required: bool,
}

/// The inspector scans the welder's code and the machine label, sees the permit and the site, and
/// seals the record: the inspection service the phones call.
fn inspect(
    device: &Device,
    signers: &Signers,
    (welder_text, machine_text): (&str, &str),
    permit_id: &str,
    at: DateTime<Utc>,
    out: &Output,
) -> Result<Inspected, Failure> {
    let input = InspectionRecordInput {
        site_id: SITE.into(),
        inspector_name: "网格员刘".into(),
        inspector_id: "G-0042".into(),
        welder_text: Some(welder_text.to_owned()),
        machine_text: Some(machine_text.to_owned()),
        permit: Some(PermitShown::Id(permit_id.to_owned())),
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
        &signers.inspector,
        at.timestamp(),
        AppLang::Zh,
    )
    .map_err(|e| app_failure(&e, out))?;
    // The sealed record as saved (its seal verified on reading).
    history::inspections(device, 10)
        .map_err(|e| app_failure(&e, out))?
        .into_iter()
        .find(|r| r.inspection_id == view.inspection_id)
        .map(|r| Inspected {
            inspection_id: r.inspection_id,
            violations: r.violations,
            report_required: r.report_required,
        })
        .ok_or_else(|| fail("demo.store", "the inspection was not saved"))
}
