//! `weldguard demo`: the main job end to end on an embedded default (a fresh folder, SQLite, software
//! keys): an issuer key; a machine label, a welder credential and a live presentation printed as PNG
//! QR images; the images scanned back and verified; the start-work decision (扫码开机) printed in
//! Chinese and English and recorded with its outbox entry.

use std::path::{Path, PathBuf};

use chrono::{Days, Utc};
use clap::Args;
use qrcode::EcLevel;
use serde::Serialize;
use weldguard_core::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, ReplayCache, RevocationSet, SoftwareSigner, TrustStore,
    TrustedKey, Verifier, issue_credential, issue_machine_label, present,
};
use weldguard_core::domain::{
    Binding, Explain, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::rules::WorkTime;
use weldguard_core::scan::{ScanOptions, scan_image_bytes};
use weldguard_core::startwork::{PermitContext, ScanToStart, scan_to_start};
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};

use crate::cmd::code::write_png;
use crate::cmd::decide::{DecideAnswer, human};
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

/// What the demo did, for `--json`.
#[derive(Serialize)]
struct DemoReport {
    dir: String,
    images: Vec<ScannedImage>,
    decision: DecideAnswer,
    outbox_pending: u64,
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
        println!("{zh}\n  {en}");
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
    let codes = scan_image_bytes(&bytes, &ScanOptions::default()).map_err(|e| {
        fail(
            "demo.scan",
            format!("{}: {}", path.display(), e.message_en()),
        )
    })?;
    Ok(codes.into_iter().find_map(|c| c.text))
}

pub fn run(args: DemoArgs, out: &Output) -> Result<(), Failure> {
    let now = Utc::now();
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
        .add(TrustedKey::for_key(&issuer, now.timestamp() - 86_400, None))
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
        issued_at: now.timestamp() - 3600,
    };

    // 3. The device database with the registry the platform hands out.
    let store =
        Store::open(dir.join("device.db")).map_err(|e| fail("demo.store", e.message_en()))?;
    store
        .apply_registry_changes(registry(&credential), None, now.timestamp_millis())
        .map_err(|e| fail("demo.store", e.message_en()))?;

    // 4. Codes printed as PNG labels.
    let machine_text = issue_machine_label(&issuer, &label).map_err(|e| fail("demo.issue", e))?;
    let credential_text = issue_credential(&issuer, &credential, now.timestamp() - 3600)
        .map_err(|e| fail("demo.issue", e))?;
    let presentation_text =
        present(&credential_text, &phone, now.timestamp()).map_err(|e| fail("demo.issue", e))?;
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
            .map(|t| verifier.verify(t, now.timestamp(), &mut ReplayCache::default()));
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
    let question = ScanToStart {
        machine_text: &scanned_texts[0],
        welder_text: &scanned_texts[2],
        permit: PermitContext {
            source: &store,
            site_id: SITE,
        },
        at: now,
    };
    let outcome = scan_to_start(&question, &verifier, &mut ReplayCache::default(), &store);
    let session = store
        .record_work_session(
            NewWorkSession {
                machine_id: outcome.machine_id.clone().unwrap_or_default(),
                certificate_no: outcome.certificate_no.clone().unwrap_or_default(),
                started_at_ms: now.timestamp_millis(),
                allowed: outcome.decision.allowed,
                reason_codes: outcome
                    .decision
                    .denials()
                    .map(|f| f.code.to_owned())
                    .collect(),
                permit_id: outcome.permit_id.clone(),
            },
            now.timestamp_millis(),
        )
        .map_err(|e| fail("demo.store", e.message_en()))?;
    let answer = DecideAnswer {
        outcome,
        session_id: Some(session.id),
    };
    say(out, "3. 扫码开机判定：", "3. Start-work decision:");
    if !out.json {
        print!("{}", human(&answer, Lang::Zh));
        print!("{}", human(&answer, Lang::En));
    }
    let pending = store
        .outbox_counts()
        .map_err(|e| fail("demo.store", e.message_en()))?
        .pending;
    say(
        out,
        &format!("4. 待上传记录：{pending} 条（离线保存，联网后同步）"),
        &format!("4. Records waiting for upload: {pending} (kept offline, synced when online)"),
    );
    if out.json {
        return out.json(&DemoReport {
            dir: dir.display().to_string(),
            images: report_images,
            decision: answer,
            outbox_pending: pending,
        });
    }
    Ok(())
}
