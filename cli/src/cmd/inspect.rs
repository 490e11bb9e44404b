//! `weldguard inspect check|record|list`: the inspector's check (逢查必核) from the shell, a thin
//! adapter over `app::inspection`. `check` shows a scanned welder code's licence as the registry
//! keeps it; `record` hands the scans, the permit shown (by id or its scanned site code),
//! observations from a JSON file and photo digests to the service, which derives the violations,
//! seals the record with the inspector's key and saves it with its outbox entry in one
//! transaction.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use weldguard_core::app::Device;
use weldguard_core::app::history::inspections;
use weldguard_core::app::inspection::{
    InspectionRecordInput, LicenceState, Location, PermitShown, ScannedWelderCode, WelderCheckView,
    check_welder, record_inspection,
};
use weldguard_core::app::signing::SoftwarePersonSigner;
use weldguard_core::codes::{RevocationSet, TrustStore, from_hex};
use weldguard_core::domain::Explain;
use weldguard_core::inspect::Observation;

use crate::cmd::decide::{finding_line, scanned_text};
use crate::cmd::permit::{load_signer, parse_person, read_file, time_or_now};
use crate::data_dir::{StateArgs, app_failure, app_lang};
use crate::output::{Failure, Lang, Output};

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(subcommand)]
    command: InspectCommand,
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// The site inspected.
    #[arg(long)]
    site_id: String,
    /// The inspector, NAME:ID.
    #[arg(long)]
    inspector: String,
    /// The inspector's device key file (from `weldguard permit key`); seals the record.
    #[arg(long)]
    key: PathBuf,
    /// The scanned text of the welder's credential (or presentation); omit when none was shown.
    #[arg(long)]
    credential: Option<String>,
    /// The scanned text of the machine label; omit when there is none.
    #[arg(long)]
    machine: Option<String>,
    /// Trust file of issuer keys (needed with --credential or --machine).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Revocation file (JSON list of {"target","id"}).
    #[arg(long)]
    revocations: Option<PathBuf>,
    /// The permit shown, by id (from this device's store).
    #[arg(long, conflicts_with = "permit_code")]
    permit: Option<String>,
    /// The permit's scanned site code; the permit must be stored here.
    #[arg(long)]
    permit_code: Option<String>,
    /// JSON list of observations: {"item_id","outcome":"compliant|not_compliant|not_applicable|not_checked","note","photos":[]}.
    #[arg(long)]
    observations: Option<PathBuf>,
    /// SHA-256 digest (hex) of a photo taken (repeat).
    #[arg(long = "photo")]
    photos: Vec<String>,
    /// Where the inspector stands (degrees).
    #[arg(long, requires = "lon", allow_hyphen_values = true)]
    lat: Option<f64>,
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    lon: Option<f64>,
    /// Free notes.
    #[arg(long, default_value = "")]
    notes: String,
    /// Time of the inspection; default now.
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    data: StateArgs,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The welder's scanned code (a live presentation, a credential or a certificate number), or
    /// @FILE.
    #[arg(value_name = "TEXT|@FILE")]
    text: String,
    /// Trust file of issuer keys (as `weldguard keys generate --trust-out` writes it).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Revocation file (JSON list of {"target","id"}); the database's revocations always apply.
    #[arg(long)]
    revocations: Option<PathBuf>,
    /// Time of the check; default now.
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    data: StateArgs,
}

#[derive(Debug, Subcommand)]
enum InspectCommand {
    /// Check a welder's scanned code: the licence as the registry keeps it (逢查必核).
    Check(Box<CheckArgs>),
    /// Record and seal an inspection.
    Record(Box<RecordArgs>),
    /// List recorded inspections, newest first (each seal verified).
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        data: StateArgs,
    },
}

/// The profile's device with the trust and revocation files handed in.
fn open_device(
    data: &StateArgs,
    trust: Option<&PathBuf>,
    revocations: Option<&PathBuf>,
    out: &Output,
) -> Result<Device, Failure> {
    let trust = match trust {
        Some(path) => Some(
            TrustStore::from_json(&read_file(path, "trust file")?)
                .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let revocations = match revocations {
        Some(path) => Some(
            RevocationSet::from_json(&read_file(path, "revocation file")?)
                .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let device = Device::with_store(data.open_store(out)?).map_err(|e| app_failure(&e, out))?;
    if let Some(trust) = trust {
        device.set_trust(trust);
    }
    if let Some(extra) = revocations {
        device.add_revocations(extra);
    }
    Ok(device)
}

fn record(a: RecordArgs, out: &Output) -> Result<(), Failure> {
    let signer = load_signer(&a.key)?;
    let at = time_or_now(a.at.as_deref())?;
    let inspector = parse_person("inspector", &a.inspector)?;
    let photos = a
        .photos
        .iter()
        .map(|h| {
            from_hex(h).filter(|b| b.len() == 32).ok_or_else(|| {
                Failure::input(
                    "input.photo",
                    format!("--photo {h:?}: not a 64-hex-digit SHA-256 digest"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let findings: Vec<Observation> = match &a.observations {
        Some(path) => {
            serde_json::from_str(&read_file(path, "observations file")?).map_err(|e| {
                Failure::input(
                    "input.observations",
                    format!("{}: not a JSON list of observations: {e}", path.display()),
                )
            })?
        }
        None => Vec::new(),
    };
    let device = open_device(&a.data, a.trust.as_ref(), a.revocations.as_ref(), out)?;
    if (a.credential.is_some() || a.machine.is_some()) && device.trust().keys().is_empty() {
        return Err(Failure::input(
            "input.trust",
            "--trust FILE is needed to verify scanned codes",
        ));
    }
    let input = InspectionRecordInput {
        site_id: a.site_id,
        inspector_name: inspector.name,
        inspector_id: inspector.id,
        welder_text: a.credential,
        machine_text: a.machine,
        permit: match (a.permit, a.permit_code) {
            (Some(id), _) => Some(PermitShown::Id(id)),
            (None, Some(code)) => Some(PermitShown::Code(code)),
            (None, None) => None,
        },
        findings,
        photos,
        location: match (a.lat, a.lon) {
            (Some(latitude), Some(longitude)) => Some(Location {
                latitude,
                longitude,
            }),
            _ => None,
        },
        notes: a.notes,
    };
    // A software key cannot verify the inspector's presence; the seal does not require it.
    let sealer = SoftwarePersonSigner::new(signer, false);
    let view = record_inspection(&device, input, &sealer, at, app_lang(out))
        .map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&view);
    }
    stdoutln!(
        "{} {}: {} {}{}",
        out.lang.pick("检查记录", "inspection"),
        view.inspection_id,
        view.violations.len(),
        out.lang.pick("项问题", "violation(s)"),
        if view.report_required {
            out.lang.pick("，须立即上报", "; report upward now")
        } else {
            ""
        }
    );
    for v in &view.violations {
        stdoutln!("  [{:?}] {} {}", v.violation.severity, v.code, v.text);
    }
    Ok(())
}

fn check(a: CheckArgs, out: &Output) -> Result<(), Failure> {
    let text = scanned_text(&a.text)?;
    let at = time_or_now(a.at.as_deref())?;
    let device = open_device(&a.data, a.trust.as_ref(), a.revocations.as_ref(), out)?;
    let view = check_welder(&device, &text, at, app_lang(out)).map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&view);
    }
    stdout!("{}", check_text(&view, out.lang));
    Ok(())
}

/// The check as people read it.
fn check_text(v: &WelderCheckView, lang: Lang) -> String {
    let mut text = String::new();
    let code = match v.scanned {
        ScannedWelderCode::Presentation => {
            lang.pick("动态亮码，验签通过", "live presentation, verified")
        }
        ScannedWelderCode::Credential => lang.pick(
            "人员码（非动态），验签通过",
            "credential (not live), verified",
        ),
        ScannedWelderCode::UnsignedCertificateNo => {
            lang.pick("未签名的操作证号", "unsigned certificate number")
        }
        ScannedWelderCode::Unverified => lang.pick("验签失败", "did NOT verify"),
    };
    text.push_str(&format!(
        "{} {code}\n",
        lang.pick("人员码：", "Welder code:")
    ));
    let state = match v.state {
        LicenceState::Valid => lang.pick("有效", "VALID"),
        LicenceState::Revoked => lang.pick("已吊销", "REVOKED"),
        LicenceState::Expired => lang.pick("已过期", "EXPIRED"),
        LicenceState::NotYetValid => lang.pick("尚未生效", "NOT YET VALID"),
        LicenceState::ReviewOverdue => lang.pick("逾期未复审", "REVIEW OVERDUE"),
        LicenceState::Unknown => lang.pick("无法确认", "UNKNOWN"),
    };
    text.push_str(&format!(
        "{} {}: {state}\n",
        lang.pick("操作证", "Licence"),
        v.certificate_no.as_deref().unwrap_or("-")
    ));
    if let Some(l) = &v.licence {
        let categories: Vec<&str> = l.categories.iter().map(|c| c.name.as_str()).collect();
        text.push_str(&format!(
            "  {} {}  {} {}\n  {} {}\n  {} {} – {}  {} {}\n",
            lang.pick("姓名", "name"),
            l.name,
            lang.pick("身份证号", "ID number"),
            l.id_number_masked,
            lang.pick("作业类别", "categories"),
            categories.join(lang.pick("、", ", ")),
            lang.pick("有效期", "valid"),
            l.issued_on,
            l.expires_on,
            lang.pick("下次复审", "next review"),
            l.next_review_on
        ));
    }
    if !v.bound_machines.is_empty() {
        let ids: Vec<&str> = v
            .bound_machines
            .iter()
            .map(|m| m.machine_id.as_str())
            .collect();
        text.push_str(&format!(
            "  {} {}\n",
            lang.pick("绑定设备：", "bound machines:"),
            ids.join(", ")
        ));
    }
    for r in &v.reasons {
        text.push_str(&finding_line(r, lang));
        text.push('\n');
    }
    text
}

fn list(limit: u32, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let device = Device::with_store(data.open_store(out)?).map_err(|e| app_failure(&e, out))?;
    let rows = inspections(&device, limit).map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&serde_json::json!({ "inspections": rows }));
    }
    if rows.is_empty() {
        stdoutln!("{}", out.lang.pick("（没有检查记录）", "(no inspections)"));
    }
    for r in &rows {
        stdoutln!(
            "{}  {}  {}  {}={}{}",
            r.inspection_id,
            r.site_id,
            r.inspector.name,
            out.lang.pick("问题", "violations"),
            r.violations.len(),
            if r.report_required {
                out.lang.pick("  须上报", "  REPORT")
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub fn run(args: InspectArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        InspectCommand::Check(a) => check(*a, out),
        InspectCommand::Record(a) => record(*a, out),
        InspectCommand::List { limit, data } => list(limit, data, out),
    }
}
