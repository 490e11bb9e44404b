//! `weldguard inspect record|list`: an on-site inspection (逢查必核) from the shell. The scanned
//! credential and machine label texts are verified offline against a trust file, the permit comes
//! from this device's store (by id, or by its scanned site code, which must match the stored
//! permit), observations against the checklist come from a JSON file; the core derives the
//! violations, the inspector's device key seals the record, and the record is saved with its outbox
//! entry in one transaction.

use std::path::PathBuf;

use chrono::TimeZone;
use clap::{Args, Subcommand};
use weldguard_core::codes::{
    ReplayCache, RevocationSet, ScannedText, TrustStore, VerifiedClaims, Verifier, classify,
    from_hex,
};
use weldguard_core::domain::{Explain, MachineLabel, WelderCredential};
use weldguard_core::inspect::{
    InspectionInput, Observation, ScanOutcome, Violation, ViolationKind, assess,
};
use weldguard_core::permit::{Actor, Catalog, Permit, check_against_permit, read_permit_code};
use weldguard_core::store::records::new_record_id;

use crate::cmd::permit::{
    explained, geo, load_signer, now_ms, parse_person, permit_store_failure, read_file, time_or_now,
};
use crate::data_dir::{StateArgs, store_failure};
use crate::output::{Failure, Output};

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

#[derive(Debug, Subcommand)]
enum InspectCommand {
    /// Record and seal an inspection.
    Record(Box<RecordArgs>),
    /// List recorded inspections, newest first (each seal verified).
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        data: StateArgs,
    },
}

enum Scanned {
    Welder,
    Machine,
}

/// Verify a scanned text into the outcome the inspection records.
fn scan<T>(
    text: Option<&str>,
    what: Scanned,
    verifier: Option<&Verifier<'_>>,
    at: i64,
    replay: &mut ReplayCache,
    pick: impl Fn(VerifiedClaims) -> Option<T>,
) -> Result<ScanOutcome<T>, Failure> {
    let Some(text) = text else {
        return Ok(ScanOutcome::NotScanned);
    };
    let Some(verifier) = verifier else {
        return Err(Failure::input(
            "input.trust",
            "--trust FILE is needed to verify scanned codes",
        ));
    };
    Ok(match classify(text) {
        ScannedText::Unsigned(u) => ScanOutcome::failed(&u),
        ScannedText::Signed => match verifier.verify(text, at, replay) {
            Ok(code) => match pick(code.claims) {
                Some(claims) => ScanOutcome::Verified { claims },
                None => ScanOutcome::Failed {
                    code: "inspect.wrong_code_kind".into(),
                    message_zh: match what {
                        Scanned::Welder => "扫描的不是人员码".into(),
                        Scanned::Machine => "扫描的不是设备码".into(),
                    },
                    message_en: match what {
                        Scanned::Welder => "the scanned code is not a welder credential".into(),
                        Scanned::Machine => "the scanned code is not a machine label".into(),
                    },
                },
            },
            Err(e) => ScanOutcome::failed(&e),
        },
    })
}

fn violation(kind: ViolationKind, zh: String, en: String) -> Violation {
    Violation {
        kind,
        severity: kind.severity(),
        item_id: None,
        message_zh: zh,
        message_en: en,
    }
}

fn record(a: RecordArgs, out: &Output) -> Result<(), Failure> {
    let signer = load_signer(&a.key)?;
    let at = time_or_now(a.at.as_deref())?;
    let location = geo(a.lat, a.lon)?;
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
    let observations: Vec<Observation> = match &a.observations {
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
    let trust = match &a.trust {
        Some(path) => Some(
            TrustStore::from_json(&read_file(path, "trust file")?)
                .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let revocations = match &a.revocations {
        Some(path) => RevocationSet::from_json(&read_file(path, "revocation file")?)
            .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        None => RevocationSet::new(),
    };
    let verifier = trust.as_ref().map(|t| Verifier::new(t, &revocations));
    let mut replay = ReplayCache::default();
    let welder: ScanOutcome<WelderCredential> = scan(
        a.credential.as_deref(),
        Scanned::Welder,
        verifier.as_ref(),
        at,
        &mut replay,
        |c| match c {
            VerifiedClaims::WelderCredential(c) => Some(c.credential),
            VerifiedClaims::Presentation { credential, .. } => Some(credential.credential),
            VerifiedClaims::MachineLabel(_) => None,
        },
    )?;
    let machine: ScanOutcome<MachineLabel> = scan(
        a.machine.as_deref(),
        Scanned::Machine,
        verifier.as_ref(),
        at,
        &mut replay,
        |c| match c {
            VerifiedClaims::MachineLabel(m) => Some(m),
            _ => None,
        },
    )?;

    let store = a.data.open_store(out)?;
    let mut extra = Vec::new();
    let permit: Option<Permit> = match (&a.permit, &a.permit_code) {
        (Some(id), _) => Some(
            store
                .permit(id)
                .map_err(|e| permit_store_failure(&e, out))?
                .ok_or_else(|| {
                    Failure::input("permit_store.not_found", format!("permit {id} not found"))
                })?,
        ),
        (None, Some(text)) => match read_permit_code(text) {
            Err(e) => {
                extra.push(violation(
                    ViolationKind::PermitTampered,
                    format!("动火作业证码无效：{}", e.message_zh()),
                    format!("the permit code is invalid: {}", e.message_en()),
                ));
                None
            }
            Ok(claims) => {
                let stored = store
                    .permit(&claims.permit_id)
                    .map_err(|e| permit_store_failure(&e, out))?;
                match &stored {
                    Some(p) => {
                        if let Err(e) = check_against_permit(&claims, p) {
                            extra.push(violation(
                                ViolationKind::PermitTampered,
                                e.message_zh(),
                                e.message_en(),
                            ));
                        }
                    }
                    None => extra.push(violation(
                        ViolationKind::Other,
                        format!("本机未存储作业证 {}，无法核对", claims.permit_id),
                        format!(
                            "permit {} is not stored on this device and could not be checked",
                            claims.permit_id
                        ),
                    )),
                }
                stored
            }
        },
        (None, None) => None,
    };
    let catalog = Catalog::builtin()
        .map_err(|e| Failure::runtime("permit.catalog", format!("built-in catalog: {e}")))?;
    let today = chrono::FixedOffset::east_opt(8 * 3600)
        .and_then(|o| o.timestamp_opt(at, 0).single())
        .map(|t| t.date_naive())
        .ok_or_else(|| Failure::input("input.time", "--at is out of range"))?;
    let inspection_id = new_record_id(now_ms()).map_err(|e| store_failure(&e, out))?;
    let signers = store
        .signer_directory()
        .map_err(|e| store_failure(&e, out))?;
    let input = InspectionInput {
        inspection_id,
        inspector: Actor {
            name: inspector.name,
            id: inspector.id,
            role: "inspector".into(),
        },
        site_id: a.site_id,
        location,
        at,
        today,
        welder,
        machine,
        permit: permit.as_ref(),
        signers: signers.as_ref(),
        observations,
        extra_violations: extra,
        photos,
        notes: a.notes,
    };
    let mut inspection = assess(input, &catalog).map_err(|e| explained(&e, out, true))?;
    inspection
        .sign(&signer)
        .map_err(|e| explained(&e, out, false))?;
    let saved = store
        .record_inspection(&inspection, now_ms())
        .map_err(|e| permit_store_failure(&e, out))?;
    let b = &inspection.body;
    if out.json {
        return out.json(&serde_json::json!({
            "inspection_id": saved.id,
            "violations": b.violations,
            "report_required": b.report_required,
            "permit": b.permit,
        }));
    }
    stdoutln!(
        "{} {}: {} {}{}",
        out.lang.pick("检查记录", "inspection"),
        saved.id,
        b.violations.len(),
        out.lang.pick("项问题", "violation(s)"),
        if b.report_required {
            out.lang.pick("，须立即上报", "; report upward now")
        } else {
            ""
        }
    );
    for v in &b.violations {
        stdoutln!(
            "  [{:?}] {} {}",
            v.severity,
            v.kind.code(),
            out.lang.pick(&v.message_zh, &v.message_en)
        );
    }
    Ok(())
}

fn list(limit: usize, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let store = data.open_store(out)?;
    let rows = store
        .inspections(limit)
        .map_err(|e| permit_store_failure(&e, out))?;
    if out.json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| {
                let b = &r.inspection.body;
                serde_json::json!({
                    "inspection_id": r.id,
                    "site_id": b.site_id,
                    "at": b.at,
                    "inspector": b.inspector,
                    "permit_id": b.permit.as_ref().map(|p| &p.permit_id),
                    "violations": b.violations,
                    "report_required": b.report_required,
                })
            })
            .collect();
        return out.json(&serde_json::json!({ "inspections": list }));
    }
    if rows.is_empty() {
        stdoutln!("{}", out.lang.pick("（没有检查记录）", "(no inspections)"));
    }
    for r in &rows {
        let b = &r.inspection.body;
        stdoutln!(
            "{}  {}  {}  {}={}{}",
            r.id,
            b.site_id,
            b.inspector.name,
            out.lang.pick("问题", "violations"),
            b.violations.len(),
            if b.report_required {
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
        InspectCommand::Record(a) => record(*a, out),
        InspectCommand::List { limit, data } => list(limit, data, out),
    }
}
