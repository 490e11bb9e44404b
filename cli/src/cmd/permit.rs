//! `weldguard permit …`: run a hot-work permit (动火作业许可) from the shell: make a device key,
//! draft, submit, check on site, approve, record gas analyses, start, suspend, resume, complete,
//! close, reject, cancel, expire; show, list and verify stored permits; make the permit's site code.
//!
//! A thin adapter over the core's permit services (`weldguard_core::app::permits`): the arguments
//! become a service call, the service's view is printed as it is (JSON or text). Every step is
//! checked by the core's life-cycle rules under the permit's rule profile and saved with its outbox
//! entry in one transaction; a refused step prints one line and changes nothing. Signing steps
//! take `--key FILE`, a device key file made by `weldguard permit key`; a software key cannot
//! verify the person's presence, so an approval needs `--present`: the operator confirms the
//! person is present. `weldguard permit due` lists what is due and by when.

use std::path::{Path, PathBuf};

use chrono::TimeZone;
use clap::{Args, Subcommand, ValueEnum};
use qrcode::{EcLevel, QrCode};
use serde::{Deserialize, Serialize};
use weldguard_core::app::permits::{self as svc, ActorInput, DraftInput, GasInput, PermitView};
use weldguard_core::app::signing::SoftwarePersonSigner;
use weldguard_core::app::{AppError, Device};
use weldguard_core::codes::{DeviceSigner, SoftwareSigner, from_hex, to_hex};
use weldguard_core::domain::Explain;
use weldguard_core::permit::{
    ChecklistAnswer, GeoPoint, PermitLevel, PermitState, Person, WorkCalendar, WorkConditions,
};
use weldguard_core::store::PermitStoreError;
use weldguard_core::store::permits::state_name;

use crate::cmd::code::parse_time;
use crate::data_dir::{StateArgs, app_failure, app_lang, store_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct PermitArgs {
    #[command(subcommand)]
    command: PermitCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Special,
    Level1,
    Level2,
    Level3,
}

impl From<LevelArg> for PermitLevel {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Special => PermitLevel::Special,
            LevelArg::Level1 => PermitLevel::Level1,
            LevelArg::Level2 => PermitLevel::Level2,
            LevelArg::Level3 => PermitLevel::Level3,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    Draft,
    Submitted,
    Checked,
    Approved,
    Active,
    Suspended,
    Completed,
    Closed,
    Rejected,
    Cancelled,
    Expired,
}

impl From<StateArg> for PermitState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Draft => PermitState::Draft,
            StateArg::Submitted => PermitState::Submitted,
            StateArg::Checked => PermitState::Checked,
            StateArg::Approved => PermitState::Approved,
            StateArg::Active => PermitState::Active,
            StateArg::Suspended => PermitState::Suspended,
            StateArg::Completed => PermitState::Completed,
            StateArg::Closed => PermitState::Closed,
            StateArg::Rejected => PermitState::Rejected,
            StateArg::Cancelled => PermitState::Cancelled,
            StateArg::Expired => PermitState::Expired,
        }
    }
}

/// Options of a step someone signs.
#[derive(Debug, Args)]
struct SignedStepArgs {
    /// The permit id.
    id: String,
    /// Device key file of the person signing (from `weldguard permit key`).
    #[arg(long)]
    key: PathBuf,
    /// Who signs, as NAME:ID (staff or certificate number).
    #[arg(long)]
    by: String,
    /// The signer's role id (default: applicant / supervisor / the level's approver role).
    #[arg(long)]
    role: Option<String>,
    /// Where the signer stands (degrees), both or neither.
    #[arg(long, requires = "lon", allow_hyphen_values = true)]
    lat: Option<f64>,
    #[arg(long, requires = "lat", allow_hyphen_values = true)]
    lon: Option<f64>,
    /// Time of the step (RFC 3339, YYYY-MM-DD in China time, or Unix seconds); default now.
    #[arg(long)]
    at: Option<String>,
    /// The operator confirms the person is present (a software key cannot verify presence);
    /// an approval is refused without it.
    #[arg(long)]
    present: bool,
    #[command(flatten)]
    data: StateArgs,
}

/// Options of an unsigned step.
#[derive(Debug, Args)]
struct PlainStepArgs {
    /// The permit id.
    id: String,
    /// Time of the step; default now.
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    data: StateArgs,
}

#[derive(Debug, Args)]
struct DraftArgs {
    /// Site id.
    #[arg(long)]
    site_id: String,
    /// Site name.
    #[arg(long)]
    site_name: String,
    /// Rule profile of the site: gb30871 (chemical plants) or construction.
    #[arg(long, default_value = "gb30871")]
    rules: String,
    /// Site location (degrees).
    #[arg(long, allow_hyphen_values = true)]
    lat: f64,
    #[arg(long, allow_hyphen_values = true)]
    lon: f64,
    /// Night hours in the site's local time, HH:MM-HH:MM.
    #[arg(long, default_value = "20:00-06:00")]
    night: String,
    /// On-site approval radius in metres (default: the profile's).
    #[arg(long)]
    approval_radius: Option<u32>,
    /// The work to do.
    #[arg(long)]
    work: String,
    /// Where the hot work happens (equipment, part).
    #[arg(long)]
    point: String,
    /// How many hot-work points the permit covers.
    #[arg(long, default_value_t = 1)]
    points: u32,
    /// Requested level.
    #[arg(long, value_enum)]
    level: LevelArg,
    /// Validity start and end (RFC 3339, YYYY-MM-DD or Unix seconds).
    #[arg(long)]
    from: String,
    #[arg(long)]
    until: String,
    /// The applicant, NAME:ID.
    #[arg(long)]
    applicant: String,
    /// A welder, NAME:CERTIFICATE_NO (repeat for each welder).
    #[arg(long = "welder", required = true)]
    welders: Vec<String>,
    /// A welding machine id (repeat).
    #[arg(long = "machine")]
    machines: Vec<String>,
    /// A fire watch (监护人), NAME:ID (repeat).
    #[arg(long = "fire-watch")]
    fire_watch: Vec<String>,
    /// Outdoor work.
    #[arg(long)]
    outdoor: bool,
    /// Forecast wind force (Beaufort).
    #[arg(long)]
    wind: Option<u8>,
    /// Wind shields in place.
    #[arg(long)]
    shields: bool,
    /// A complex hot-work environment.
    #[arg(long)]
    complex: bool,
    /// The permit id (default: a new UUIDv7).
    #[arg(long)]
    permit_id: Option<String>,
    /// Time of drafting; default now.
    #[arg(long)]
    at: Option<String>,
    #[command(flatten)]
    data: StateArgs,
}

#[derive(Debug, Subcommand)]
enum PermitCommand {
    /// Make a device key file (ES256) for signing permit steps; prints its public key.
    Key {
        /// Where to write the key file (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Draft a new permit.
    Draft(Box<DraftArgs>),
    /// The applicant submits: the level is decided and the validity checked.
    Submit {
        #[command(flatten)]
        step: SignedStepArgs,
        /// Work calendar JSON (holidays, rest days, sensitive periods); default: the platform's
        /// calendar synced into this profile (weekends only before the first sync).
        #[arg(long)]
        calendar: Option<PathBuf>,
    },
    /// The on-site check (十不准、九必须): answers from a JSON file.
    Check {
        #[command(flatten)]
        step: SignedStepArgs,
        /// JSON list of checklist answers.
        #[arg(long)]
        answers: PathBuf,
    },
    /// The approver signs on site.
    Approve {
        #[command(flatten)]
        step: SignedStepArgs,
    },
    /// Record a gas analysis.
    Gas {
        /// The permit id.
        id: String,
        /// Lower explosive limit of the gas, hundredths of %vol (methane: 500).
        #[arg(long)]
        lel: u32,
        /// Measured concentration, hundredths of %vol.
        #[arg(long)]
        concentration: u32,
        /// Where it was measured.
        #[arg(long)]
        point: String,
        /// Who measured it.
        #[arg(long)]
        analyst: String,
        /// When it was taken; default now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        data: StateArgs,
    },
    /// Work starts.
    Start {
        #[command(flatten)]
        step: PlainStepArgs,
        /// Continuous gas monitoring in place (required for special level).
        #[arg(long)]
        continuous_monitoring: bool,
        /// Who starts (certificate number).
        #[arg(long)]
        by: Option<String>,
    },
    /// Interrupt the work.
    Suspend {
        #[command(flatten)]
        step: PlainStepArgs,
        #[arg(long)]
        reason: String,
    },
    /// Resume interrupted work.
    Resume {
        #[command(flatten)]
        step: PlainStepArgs,
    },
    /// Work finished; the post-work watch runs.
    Complete {
        #[command(flatten)]
        step: PlainStepArgs,
    },
    /// The post-work check and closing: answers from a JSON file.
    Close {
        #[command(flatten)]
        step: SignedStepArgs,
        /// JSON list of post-work checklist answers.
        #[arg(long)]
        answers: PathBuf,
    },
    /// Mark an approved, active or suspended permit expired (at or after its validity end).
    Expire {
        #[command(flatten)]
        step: PlainStepArgs,
    },
    /// Reject a submitted or checked permit.
    Reject {
        #[command(flatten)]
        step: PlainStepArgs,
        /// Who rejects, NAME:ID.
        #[arg(long)]
        by: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Cancel a permit.
    Cancel {
        #[command(flatten)]
        step: PlainStepArgs,
        /// Who cancels, NAME:ID.
        #[arg(long)]
        by: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Show a stored permit (verified) and its saved steps.
    Show {
        id: String,
        #[command(flatten)]
        data: StateArgs,
    },
    /// List stored permits.
    List {
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[command(flatten)]
        data: StateArgs,
    },
    /// Verify a stored permit's signature chain. Exits 0 with `valid: false` when it does not verify.
    Verify {
        id: String,
        #[command(flatten)]
        data: StateArgs,
    },
    /// Make the permit's site code, signed with the approver's device key.
    Code {
        id: String,
        /// The approver's device key file.
        #[arg(long)]
        key: PathBuf,
        /// Write the QR code as a PNG image.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Time of issue; default now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        data: StateArgs,
    },
    /// Read a scanned permit code offline and, when the permit is stored here, match it.
    Scan {
        /// The scanned `WG1:` text.
        text: String,
        #[command(flatten)]
        data: StateArgs,
    },
    /// What is due and by when: gas analyses, re-analysis after an interruption, permit expiry,
    /// the fire watch after the work, licences expiring or due for review.
    Due {
        /// The time to list for; default now.
        #[arg(long)]
        at: Option<String>,
        /// List licences expiring or due for review within this many days.
        #[arg(long, default_value_t = weldguard_core::app::due::LICENCE_NOTICE_DAYS)]
        within_days: u32,
        #[command(flatten)]
        data: StateArgs,
    },
    /// Check on-site answers (JSON file) without saving or signing: may the check, and the
    /// approval after it, go ahead, and why not.
    Preview {
        /// The permit id.
        id: String,
        /// JSON list of checklist answers.
        #[arg(long)]
        answers: PathBuf,
        /// The time to judge at; default now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        data: StateArgs,
    },
}

/// A device key file.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    /// The 32-byte secret scalar, hex.
    secret: String,
    /// SEC1 compressed public key, hex.
    public_key: String,
}

const KEY_FORMAT: &str = "weldguard/device-key/1";

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn time_or_now(at: Option<&str>) -> Result<i64, Failure> {
    match at {
        Some(t) => parse_time(t),
        None => Ok(chrono::Utc::now().timestamp()),
    }
}

pub(crate) fn read_file(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::input(
            "input.file",
            format!("cannot read {what} {}: {e}", path.display()),
        )
    })
}

pub(crate) fn load_signer(path: &Path) -> Result<SoftwareSigner, Failure> {
    let bad = |why: String| Failure::input("input.key_file", format!("{}: {why}", path.display()));
    let file: KeyFile = serde_json::from_str(&read_file(path, "key file")?)
        .map_err(|e| bad(format!("not a device key file: {e}")))?;
    if file.format != KEY_FORMAT {
        return Err(bad(format!("unknown key format {:?}", file.format)));
    }
    let secret = from_hex(&file.secret).ok_or_else(|| bad("secret is not hex".into()))?;
    SoftwareSigner::from_secret(&secret).map_err(|e| bad(e.to_string()))
}

/// The key file as the person's signer; `present`: the operator confirms the person is present.
fn person_signer(path: &Path, present: bool) -> Result<SoftwarePersonSigner, Failure> {
    Ok(SoftwarePersonSigner::new(load_signer(path)?, present))
}

/// `NAME:ID`.
pub(crate) fn parse_person(flag: &str, text: &str) -> Result<Person, Failure> {
    match text.split_once(':') {
        Some((name, id)) if !name.trim().is_empty() && !id.trim().is_empty() => Ok(Person {
            name: name.trim().to_owned(),
            id: id.trim().to_owned(),
        }),
        _ => Err(Failure::input(
            "input.person",
            format!("--{flag} {text:?}: use NAME:ID"),
        )),
    }
}

fn actor_input(flag: &str, text: &str, role: Option<String>) -> Result<ActorInput, Failure> {
    let p = parse_person(flag, text)?;
    Ok(ActorInput {
        name: p.name,
        id: p.id,
        role,
    })
}

pub(crate) fn geo(lat: Option<f64>, lon: Option<f64>) -> Result<Option<GeoPoint>, Failure> {
    match (lat, lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(Failure::input(
                    "input.location",
                    format!("location {lat},{lon} is out of range"),
                ));
            }
            Ok(Some(GeoPoint::from_degrees(lat, lon)))
        }
        _ => Ok(None),
    }
}

/// A core error as a CLI failure in the user's language.
pub(crate) fn explained(e: &dyn Explain, out: &Output, exit_input: bool) -> Failure {
    let message = out.lang.pick(&e.message_zh(), &e.message_en()).to_owned();
    if exit_input {
        Failure::input(e.code(), message)
    } else {
        Failure::runtime(e.code(), message)
    }
}

pub(crate) fn permit_store_failure(e: &PermitStoreError, out: &Output) -> Failure {
    match e {
        PermitStoreError::Store(s) => store_failure(s, out),
        PermitStoreError::Tampered { .. } => explained(e, out, false),
        _ => explained(e, out, true),
    }
}

/// The profile's device (store and trust) for the services.
pub(crate) fn open_device(data: &StateArgs, out: &Output) -> Result<Device, Failure> {
    let store = data.open_store(out)?;
    Device::with_store(store).map_err(|e| app_failure(&e, out))
}

fn make_key(path: PathBuf, out: &Output) -> Result<(), Failure> {
    if path.exists() {
        return Err(Failure::input(
            "output.exists",
            format!("{} exists; not overwriting a key", path.display()),
        ));
    }
    let signer =
        SoftwareSigner::generate().map_err(|e| Failure::runtime("keys.generate", e.to_string()))?;
    let public_key = to_hex(&signer.public_key());
    let file = KeyFile {
        format: KEY_FORMAT.into(),
        secret: to_hex(&signer.secret()),
        public_key: public_key.clone(),
    };
    let text = serde_json::to_string_pretty(&file)
        .map_err(|e| Failure::runtime("output.json", e.to_string()))?;
    // Owner-only from the first byte; never over an existing file.
    crate::private::create_new(&path, &text).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::input(
                "output.exists",
                format!("{} exists; not overwriting a key", path.display()),
            )
        } else {
            Failure::input(
                "output.write",
                format!("cannot write {}: {e}", path.display()),
            )
        }
    })?;
    if out.json {
        return out.json(&serde_json::json!({
            "key_file": path.display().to_string(),
            "public_key": public_key,
        }));
    }
    stdoutln!(
        "{} {} ({} {public_key})",
        out.lang.pick("设备密钥已写入", "device key written to"),
        path.display(),
        out.lang.pick("公钥", "public key"),
    );
    Ok(())
}

fn time_text(t: i64) -> String {
    chrono::FixedOffset::east_opt(8 * 3600)
        .and_then(|o| o.timestamp_opt(t, 0).single())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn summary_line(v: &PermitView) -> String {
    let s = &v.summary;
    format!(
        "{}  {:<10} {:<8} {}  {} – {}  {}",
        s.permit_id,
        s.state_name.text,
        format!("{:?}", s.level).to_lowercase(),
        s.site_id,
        time_text(s.valid_from),
        time_text(s.valid_until),
        s.welders.join(",")
    )
}

/// The view's flags, deadlines and allowed actions, as text.
fn print_details(v: &PermitView, out: &Output) {
    for f in &v.flag_texts {
        stdoutln!(
            "  {} [{}] {}",
            out.lang.pick("记录在案：", "on record:"),
            f.clause,
            f.text.text
        );
    }
    for d in &v.deadlines {
        stdoutln!(
            "  {}{}",
            if d.passed {
                out.lang.pick("已到期：", "passed: ")
            } else {
                out.lang.pick("期限：", "deadline: ")
            },
            d.text.text
        );
    }
    let allowed: Vec<&str> = v
        .actions
        .iter()
        .filter(|a| a.allowed)
        .map(|a| a.name.text.as_str())
        .collect();
    if !allowed.is_empty() {
        stdoutln!(
            "  {}{}",
            out.lang.pick("现在可以：", "allowed now: "),
            allowed.join(out.lang.pick("、", ", "))
        );
    }
    for a in v.actions.iter().filter(|a| !a.allowed) {
        let why: Vec<&str> = a
            .why_not
            .iter()
            .map(|f| out.lang.pick(&f.message_zh, &f.message_en))
            .collect();
        stdoutln!(
            "  {}{}{}{}",
            out.lang.pick("暂不能", "not yet: "),
            a.name.text,
            out.lang.pick("：", ": "),
            why.join(out.lang.pick("；", "; "))
        );
    }
}

/// A step's result.
fn print_step(v: &PermitView, out: &Output) -> Result<(), Failure> {
    if out.json {
        return out.json(v);
    }
    stdoutln!(
        "{} {}: {} ({} {})",
        out.lang.pick("动火作业证", "permit"),
        v.permit_id,
        v.state_name.text,
        out.lang.pick("步骤", "step"),
        v.step.as_ref().map_or("-", |s| s.id.as_str())
    );
    print_details(v, out);
    Ok(())
}

fn show(id: String, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let device = open_device(&data, out)?;
    let now = chrono::Utc::now().timestamp();
    let detail = svc::show(&device, now, app_lang(out), &id).map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&detail);
    }
    let v = &detail.view;
    stdoutln!("{}", summary_line(v));
    stdoutln!(
        "  {}: {} / {}",
        out.lang.pick("作业", "work"),
        v.summary.work,
        v.summary.hot_work_point
    );
    for s in &v.signatures {
        stdoutln!(
            "  {} {} {} ({}) {}{}",
            out.lang.pick("签名", "signed"),
            s.step_name.text,
            s.signer.name,
            s.signer.role,
            time_text(s.at),
            match s.user_present {
                Some(true) => out.lang.pick("，本人已验证", ", presence verified"),
                _ => "",
            }
        );
    }
    for s in &detail.steps {
        stdoutln!("  {} {} -> {}", s.id, s.action, state_name(s.state));
    }
    print_details(v, out);
    Ok(())
}

fn list(state: Option<StateArg>, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let device = open_device(&data, out)?;
    let now = chrono::Utc::now().timestamp();
    let views = svc::list(&device, now, app_lang(out), state.map(Into::into))
        .map_err(|e| app_failure(&e, out))?;
    if out.json {
        let rows: Vec<_> = views
            .iter()
            .map(|v| {
                let mut row = serde_json::to_value(&v.summary).unwrap_or_default();
                if let Some(map) = row.as_object_mut() {
                    map.insert(
                        "deadlines".into(),
                        serde_json::to_value(&v.deadlines).unwrap_or_default(),
                    );
                    map.insert(
                        "allowed_actions".into(),
                        serde_json::to_value(
                            v.actions
                                .iter()
                                .filter(|a| a.allowed)
                                .map(|a| a.action)
                                .collect::<Vec<_>>(),
                        )
                        .unwrap_or_default(),
                    );
                }
                row
            })
            .collect();
        return out.json(&serde_json::json!({ "permits": rows }));
    }
    if views.is_empty() {
        stdoutln!("{}", out.lang.pick("（没有动火作业证）", "(no permits)"));
    }
    for v in &views {
        stdoutln!("{}", summary_line(v));
    }
    Ok(())
}

fn verify(id: String, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let device = open_device(&data, out)?;
    let v = svc::verify(&device, app_lang(out), &id).map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&v);
    }
    match &v.reason {
        None => stdoutln!(
            "{} {id}: {} {}",
            out.lang.pick("动火作业证", "permit"),
            out.lang
                .pick("签名链有效，签名数", "signature chain valid, signatures:"),
            v.signatures.len()
        ),
        Some(r) => stdoutln!(
            "{}{} [{}]",
            out.lang.pick("无效：", "INVALID: "),
            r.text,
            r.code
        ),
    }
    Ok(())
}

fn code(
    id: String,
    key: PathBuf,
    png: Option<PathBuf>,
    at: Option<String>,
    data: StateArgs,
    out: &Output,
) -> Result<(), Failure> {
    let signer = person_signer(&key, false)?;
    let at = time_or_now(at.as_deref())?;
    let device = open_device(&data, out)?;
    let v = svc::site_code(&device, at, &id, &signer).map_err(|e| app_failure(&e, out))?;
    if let Some(path) = &png {
        let qr = QrCode::with_error_correction_level(v.text.as_bytes(), EcLevel::M)
            .map_err(|e| Failure::runtime("output.qr", e.to_string()))?;
        qr.render::<image::Luma<u8>>()
            .min_dimensions(480, 480)
            .build()
            .save(path)
            .map_err(|e| {
                Failure::input(
                    "output.png",
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
    }
    if out.json {
        return out.json(&serde_json::json!({
            "permit_id": v.permit_id,
            "text": v.text,
            "chars": v.chars,
            "png": png.map(|p| p.display().to_string()),
        }));
    }
    stdoutln!("{}", v.text);
    Ok(())
}

fn scan(text: String, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let device = open_device(&data, out)?;
    let v = svc::scan(&device, app_lang(out), &text).map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&v);
    }
    let Some(claims) = &v.claims else {
        stdoutln!("{}", v.verdict.text);
        return Ok(());
    };
    stdoutln!(
        "{} {}  {}  {:?}  {} – {}  {} {}",
        out.lang.pick("动火作业证码", "permit code"),
        claims.permit_id,
        claims.site_name,
        claims.level,
        time_text(claims.valid_from),
        time_text(claims.valid_until),
        out.lang.pick("审批人", "approved by"),
        claims.approved_by
    );
    stdoutln!("  {}", v.verdict.text);
    Ok(())
}

fn due(at: Option<String>, within_days: u32, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let now = time_or_now(at.as_deref())?;
    let device = open_device(&data, out)?;
    let items = weldguard_core::app::due::due_within(&device, now, app_lang(out), within_days)
        .map_err(|e| app_failure(&e, out))?;
    if out.json {
        return out.json(&serde_json::json!({ "at": now, "due": items }));
    }
    if items.is_empty() {
        stdoutln!("{}", out.lang.pick("（没有待办事项）", "(nothing due)"));
    }
    for d in &items {
        stdoutln!(
            "{}  {}{}  {}",
            time_text(d.due_at),
            if d.overdue {
                out.lang.pick("【已到期】", "[OVERDUE] ")
            } else {
                ""
            },
            d.permit_id
                .as_deref()
                .or(d.certificate_no.as_deref())
                .unwrap_or("-"),
            d.text
        );
    }
    Ok(())
}

fn read_answers(path: &Path) -> Result<Vec<ChecklistAnswer>, Failure> {
    serde_json::from_str(&read_file(path, "answers file")?).map_err(|e| {
        Failure::input(
            "input.answers",
            format!(
                "{}: not a JSON list of checklist answers: {e}",
                path.display()
            ),
        )
    })
}

fn draft(a: DraftArgs, out: &Output) -> Result<(), Failure> {
    let at = time_or_now(a.at.as_deref())?;
    let valid_from = parse_time(&a.from)?;
    let valid_until = parse_time(&a.until)?;
    let site_location = geo(Some(a.lat), Some(a.lon))?
        .ok_or_else(|| Failure::input("input.location", "--lat and --lon are required"))?;
    let people = |flag: &str, list: &[String]| {
        list.iter()
            .map(|w| parse_person(flag, w))
            .collect::<Result<Vec<_>, _>>()
    };
    let input = DraftInput {
        site_id: a.site_id,
        site_name: a.site_name,
        rules: a.rules,
        site_location,
        night: Some(a.night),
        approval_radius_m: a.approval_radius,
        work: a.work,
        hot_work_point: a.point,
        hot_work_points: a.points,
        level: a.level.into(),
        valid_from,
        valid_until,
        applicant: parse_person("applicant", &a.applicant)?,
        welders: people("welder", &a.welders)?,
        machines: a.machines,
        fire_watch: people("fire-watch", &a.fire_watch)?,
        conditions: WorkConditions {
            wind_force: a.wind,
            outdoor: a.outdoor,
            shields: a.shields,
            complex_environment: a.complex,
        },
        permit_id: a.permit_id,
    };
    let device = open_device(&a.data, out)?;
    let v = svc::draft(&device, at, app_lang(out), input).map_err(|e| app_failure(&e, out))?;
    print_step(&v, out)
}

/// Run a plain step: open the device, call the service with the time, print its view.
fn plain(
    s: &PlainStepArgs,
    out: &Output,
    call: impl FnOnce(&Device, i64, weldguard_core::app::Lang) -> Result<PermitView, AppError>,
) -> Result<(), Failure> {
    let at = time_or_now(s.at.as_deref())?;
    let device = open_device(&s.data, out)?;
    let v = call(&device, at, app_lang(out)).map_err(|e| app_failure(&e, out))?;
    print_step(&v, out)
}

/// What a signed step does.
enum SignedKind {
    Submit(Option<WorkCalendar>),
    Check(Vec<ChecklistAnswer>),
    Approve,
    Close(Vec<ChecklistAnswer>),
}

/// Run a signed step through the services with the key file as the person's signer.
fn signed_step(args: SignedStepArgs, kind: SignedKind, out: &Output) -> Result<(), Failure> {
    let signer = person_signer(&args.key, args.present)?;
    let at = time_or_now(args.at.as_deref())?;
    let location = geo(args.lat, args.lon)?;
    let by = actor_input("by", &args.by, args.role)?;
    let device = open_device(&args.data, out)?;
    let lang = app_lang(out);
    let id = args.id.as_str();
    let v = match kind {
        SignedKind::Submit(calendar) => {
            svc::submit(&device, at, lang, location, id, by, calendar, &signer)
        }
        SignedKind::Check(answers) => {
            svc::site_check(&device, at, lang, location, id, by, answers, &signer)
        }
        SignedKind::Approve => svc::approve(&device, at, lang, location, id, by, &signer),
        SignedKind::Close(post_work) => {
            svc::close(&device, at, lang, location, id, by, post_work, &signer)
        }
    }
    .map_err(|e| app_failure(&e, out))?;
    print_step(&v, out)
}

pub fn run(args: PermitArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        PermitCommand::Key { out: path } => make_key(path, out),
        PermitCommand::Draft(a) => draft(*a, out),
        PermitCommand::Submit { step, calendar } => {
            let calendar: Option<WorkCalendar> = match &calendar {
                Some(path) => {
                    serde_json::from_str(&read_file(path, "calendar file")?).map_err(|e| {
                        Failure::input(
                            "input.calendar",
                            format!("{}: not a work calendar: {e}", path.display()),
                        )
                    })?
                }
                None => None,
            };
            signed_step(step, SignedKind::Submit(calendar), out)
        }
        PermitCommand::Check { step, answers } => {
            signed_step(step, SignedKind::Check(read_answers(&answers)?), out)
        }
        PermitCommand::Approve { step } => signed_step(step, SignedKind::Approve, out),
        PermitCommand::Close { step, answers } => {
            signed_step(step, SignedKind::Close(read_answers(&answers)?), out)
        }
        PermitCommand::Gas {
            id,
            lel,
            concentration,
            point,
            analyst,
            at,
            data,
        } => {
            let now = time_or_now(at.as_deref())?;
            let device = open_device(&data, out)?;
            let gas = GasInput {
                lel_centi_pct: lel,
                concentration_centi_pct: concentration,
                point,
                analyst,
                taken_at: Some(now),
            };
            let v = svc::record_gas(&device, now, app_lang(out), &id, gas)
                .map_err(|e| app_failure(&e, out))?;
            print_step(&v, out)
        }
        PermitCommand::Start {
            step: s,
            continuous_monitoring,
            by,
        } => plain(&s, out, |d, at, lang| {
            svc::start(d, at, lang, &s.id, continuous_monitoring, by)
        }),
        PermitCommand::Suspend { step: s, reason } => plain(&s, out, |d, at, lang| {
            svc::suspend(d, at, lang, &s.id, reason)
        }),
        PermitCommand::Resume { step: s } => {
            plain(&s, out, |d, at, lang| svc::resume(d, at, lang, &s.id))
        }
        PermitCommand::Complete { step: s } => {
            plain(&s, out, |d, at, lang| svc::complete(d, at, lang, &s.id))
        }
        PermitCommand::Expire { step: s } => {
            plain(&s, out, |d, at, lang| svc::expire(d, at, lang, &s.id))
        }
        PermitCommand::Reject {
            step: s,
            by,
            role,
            reason,
        } => {
            let by = actor_input("by", &by, role)?;
            plain(&s, out, |d, at, lang| {
                svc::reject(d, at, lang, &s.id, by, reason)
            })
        }
        PermitCommand::Cancel {
            step: s,
            by,
            role,
            reason,
        } => {
            let by = actor_input("by", &by, role)?;
            plain(&s, out, |d, at, lang| {
                svc::cancel(d, at, lang, &s.id, by, reason)
            })
        }
        PermitCommand::Show { id, data } => show(id, data, out),
        PermitCommand::List { state, data } => list(state, data, out),
        PermitCommand::Verify { id, data } => verify(id, data, out),
        PermitCommand::Code {
            id,
            key,
            png,
            at,
            data,
        } => code(id, key, png, at, data, out),
        PermitCommand::Scan { text, data } => scan(text, data, out),
        PermitCommand::Due {
            at,
            within_days,
            data,
        } => due(at, within_days, data, out),
        PermitCommand::Preview {
            id,
            answers,
            at,
            data,
        } => {
            let answers = read_answers(&answers)?;
            let at = time_or_now(at.as_deref())?;
            let device = open_device(&data, out)?;
            let v = svc::preview_answers(&device, at, app_lang(out), &id, answers)
                .map_err(|e| app_failure(&e, out))?;
            print_step(&v, out)
        }
    }
}
