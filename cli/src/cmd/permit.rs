//! `weldguard permit …`: run a hot-work permit (动火作业许可) from the shell: make a device key,
//! draft, submit, check on site, approve, record gas analyses, start, suspend, resume, complete,
//! close, reject, cancel, expire; show, list and verify stored permits; make the permit's site code.
//!
//! Every step is checked by the core's life-cycle rules under the permit's rule profile and saved
//! with its outbox entry in one transaction; a refused step prints one line and changes nothing.
//! Signing steps take `--key FILE`, a device key file made by `weldguard permit key`.

use std::path::{Path, PathBuf};

use chrono::{NaiveTime, TimeZone};
use clap::{Args, Subcommand, ValueEnum};
use qrcode::{EcLevel, QrCode};
use serde::{Deserialize, Serialize};
use weldguard_core::codes::{DeviceSigner, SoftwareSigner, from_hex, to_hex};
use weldguard_core::domain::Explain;
use weldguard_core::permit::{
    Action, Actor, Catalog, ChecklistAnswer, GasReading, GeoPoint, NightHours, Permit,
    PermitContent, PermitLevel, PermitState, Person, ProfileSet, RuleContext, RuleProfile, Site,
    WorkCalendar, WorkConditions, check_against_permit, issue_permit_code, read_permit_code,
};
use weldguard_core::store::permits::state_name;
use weldguard_core::store::records::new_record_id;
use weldguard_core::store::{PermitStoreError, Store, StoredPermitStep};

use crate::cmd::code::parse_time;
use crate::data_dir::{StateArgs, store_failure};
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

fn builtin_rules() -> Result<(ProfileSet, Catalog), Failure> {
    let profiles = ProfileSet::builtin()
        .map_err(|e| Failure::runtime("permit.profiles", format!("built-in profiles: {e:?}")))?;
    let catalog = Catalog::builtin()
        .map_err(|e| Failure::runtime("permit.catalog", format!("built-in catalog: {e}")))?;
    Ok((profiles, catalog))
}

/// The profile version a permit records.
fn profile_of<'a>(profiles: &'a ProfileSet, permit: &Permit) -> Result<&'a RuleProfile, Failure> {
    profiles
        .profiles
        .iter()
        .find(|p| p.id == permit.content.profile_id && p.version == permit.content.profile_version)
        .ok_or_else(|| {
            Failure::input(
                "permit.profile_unknown",
                format!(
                    "rule profile {} {} is not known to this build",
                    permit.content.profile_id, permit.content.profile_version
                ),
            )
        })
}

fn load(store: &Store, id: &str, out: &Output) -> Result<Permit, Failure> {
    store
        .permit(id)
        .map_err(|e| permit_store_failure(&e, out))?
        .ok_or_else(|| explained(&PermitStoreError::NotFound(id.to_owned()), out, true))
}

fn actor(flag: &str, text: &str, role: String) -> Result<Actor, Failure> {
    let p = parse_person(flag, text)?;
    Ok(Actor {
        name: p.name,
        id: p.id,
        role,
    })
}

fn print_step(permit: &Permit, step: &StoredPermitStep, out: &Output) -> Result<(), Failure> {
    let flags: Vec<_> = permit.flags().collect();
    if out.json {
        return out.json(&serde_json::json!({
            "permit_id": permit.content.permit_id,
            "state": permit.state,
            "level": permit.level(),
            "step": step,
            "flags": flags,
        }));
    }
    stdoutln!(
        "{} {}: {} ({} {})",
        out.lang.pick("动火作业证", "permit"),
        permit.content.permit_id,
        out.lang
            .pick(permit.state.name_zh(), permit.state.name_en()),
        out.lang.pick("步骤", "step"),
        step.id
    );
    for f in flags {
        stdoutln!(
            "  {} [{}] {}",
            out.lang.pick("记录在案：", "on record:"),
            f.clause,
            out.lang.pick(&f.message_zh, &f.message_en)
        );
    }
    Ok(())
}

/// Load, apply, save; print the result.
fn step(
    data: &StateArgs,
    id: &str,
    out: &Output,
    make: impl FnOnce(&Permit, &RuleProfile) -> Result<Action<'static>, Failure>,
) -> Result<(), Failure> {
    let store = data.open_store(out)?;
    let (profiles, catalog) = builtin_rules()?;
    let permit = load(&store, id, out)?;
    let profile = profile_of(&profiles, &permit)?;
    let action = make(&permit, profile)?;
    let ctx = RuleContext {
        profile,
        catalog: &catalog,
    };
    let (after, saved) = store
        .apply_permit_action(id, &ctx, action, now_ms())
        .map_err(|e| permit_store_failure(&e, out))?;
    print_step(&after, &saved, out)
}

/// What a signed step does.
enum SignedKind {
    Submit(Option<WorkCalendar>),
    Check(Vec<ChecklistAnswer>),
    Approve,
    Close(Vec<ChecklistAnswer>),
}

/// Load, sign and apply a signed step, save; print the result.
fn signed_step(args: SignedStepArgs, kind: SignedKind, out: &Output) -> Result<(), Failure> {
    let signer = load_signer(&args.key)?;
    let at = time_or_now(args.at.as_deref())?;
    let location = geo(args.lat, args.lon)?;
    let store = args.data.open_store(out)?;
    let (profiles, catalog) = builtin_rules()?;
    let permit = load(&store, &args.id, out)?;
    let profile = profile_of(&profiles, &permit)?;
    let role = args.role.clone().unwrap_or_else(|| match kind {
        SignedKind::Submit(_) => "applicant".into(),
        SignedKind::Approve => approver_role(&permit, profile),
        SignedKind::Check(_) | SignedKind::Close(_) => "supervisor".into(),
    });
    let by = actor("by", &args.by, role)?;
    let calendar;
    let action = match kind {
        SignedKind::Submit(c) => {
            calendar = match c {
                Some(given) => given,
                None => store
                    .work_calendar()
                    .map_err(|e| crate::data_dir::store_failure(&e, out))?,
            };
            Action::Submit {
                by,
                signer: &signer,
                calendar: &calendar,
                at,
                location,
            }
        }
        SignedKind::Check(answers) => Action::SiteCheck {
            by,
            signer: &signer,
            answers,
            at,
            location,
        },
        SignedKind::Approve => Action::Approve {
            by,
            signer: &signer,
            at,
            location,
        },
        SignedKind::Close(post_work) => Action::Close {
            by,
            signer: &signer,
            post_work,
            at,
            location,
        },
    };
    let ctx = RuleContext {
        profile,
        catalog: &catalog,
    };
    let (after, saved) = store
        .apply_permit_action(&args.id, &ctx, action, now_ms())
        .map_err(|e| permit_store_failure(&e, out))?;
    print_step(&after, &saved, out)
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

fn approver_role(permit: &Permit, profile: &RuleProfile) -> String {
    profile
        .level(permit.level())
        .map(|l| l.approver.id.clone())
        .unwrap_or_else(|| "approver".into())
}

fn parse_night(text: &str) -> Result<NightHours, Failure> {
    let bad = || Failure::input("input.night", format!("--night {text:?}: use HH:MM-HH:MM"));
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let t = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
    Ok(NightHours {
        start: t(a)?,
        end: t(b)?,
    })
}

fn draft(a: DraftArgs, out: &Output) -> Result<(), Failure> {
    let at = time_or_now(a.at.as_deref())?;
    let valid_from = parse_time(&a.from)?;
    let valid_until = parse_time(&a.until)?;
    if valid_until <= valid_from {
        return Err(Failure::input(
            "input.validity",
            "--until must be after --from",
        ));
    }
    let location = geo(Some(a.lat), Some(a.lon))?
        .ok_or_else(|| Failure::input("input.location", "--lat and --lon are required"))?;
    let applicant = parse_person("applicant", &a.applicant)?;
    let welders = a
        .welders
        .iter()
        .map(|w| parse_person("welder", w))
        .collect::<Result<Vec<_>, _>>()?;
    let fire_watch = a
        .fire_watch
        .iter()
        .map(|w| parse_person("fire-watch", w))
        .collect::<Result<Vec<_>, _>>()?;
    let (profiles, catalog) = builtin_rules()?;
    let china = chrono::FixedOffset::east_opt(8 * 3600)
        .ok_or_else(|| Failure::runtime("internal.offset", "UTC+8"))?;
    let date = china
        .timestamp_opt(at, 0)
        .single()
        .map(|t| t.date_naive())
        .ok_or_else(|| Failure::input("input.time", "--at is out of range"))?;
    let profile = profiles.select(&a.rules, date).ok_or_else(|| {
        Failure::input(
            "permit.profile_unknown",
            format!(
                "no rule profile {:?} in force on {date} (known: gb30871, construction)",
                a.rules
            ),
        )
    })?;
    let permit_id = match a.permit_id {
        Some(id) if !id.trim().is_empty() => id,
        Some(_) => return Err(Failure::input("input.permit_id", "--permit-id is empty")),
        None => new_record_id(now_ms()).map_err(|e| store_failure(&e, out))?,
    };
    let content = PermitContent {
        permit_id: permit_id.clone(),
        site: Site {
            site_id: a.site_id,
            name: a.site_name,
            profile_id: profile.id.clone(),
            location,
            utc_offset_secs: 8 * 3600,
            night: parse_night(&a.night)?,
            approval_radius_m: a.approval_radius,
        },
        profile_id: profile.id.clone(),
        profile_version: profile.version.clone(),
        catalog_version: catalog.version.clone(),
        work_description: a.work,
        hot_work_point: a.point,
        hot_work_points: a.points,
        location,
        conditions: WorkConditions {
            wind_force: a.wind,
            outdoor: a.outdoor,
            shields: a.shields,
            complex_environment: a.complex,
        },
        requested_level: a.level.into(),
        valid_from,
        valid_until,
        applicant: applicant.clone(),
        welders,
        machines: a.machines,
        fire_watch,
    };
    let ctx = RuleContext {
        profile,
        catalog: &catalog,
    };
    let by = Actor {
        name: applicant.name,
        id: applicant.id,
        role: "applicant".into(),
    };
    let permit = Permit::draft(content, &ctx, &by, at).map_err(|e| explained(&e, out, true))?;
    let store = a.data.open_store(out)?;
    let saved = store
        .save_permit(None, &permit, None, now_ms())
        .map_err(|e| permit_store_failure(&e, out))?;
    print_step(&permit, &saved, out)
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

fn summary_line(p: &Permit, out: &Output) -> String {
    let c = &p.content;
    format!(
        "{}  {:<10} {:<8} {}  {} – {}  {}",
        c.permit_id,
        out.lang.pick(p.state.name_zh(), p.state.name_en()),
        format!("{:?}", p.level()).to_lowercase(),
        c.site.site_id,
        time_text(c.valid_from),
        time_text(c.valid_until),
        c.welders
            .iter()
            .map(|w| w.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn show(id: String, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let store = data.open_store(out)?;
    let permit = load(&store, &id, out)?;
    let steps = store
        .permit_steps(&id)
        .map_err(|e| permit_store_failure(&e, out))?;
    if out.json {
        return out.json(&serde_json::json!({ "permit": permit, "steps": steps }));
    }
    let c = &permit.content;
    stdoutln!("{}", summary_line(&permit, out));
    stdoutln!(
        "  {}: {} / {}",
        out.lang.pick("作业", "work"),
        c.work_description,
        c.hot_work_point
    );
    for s in &permit.signatures {
        stdoutln!(
            "  {} {:?} {} ({}) {}",
            out.lang.pick("签名", "signed"),
            s.step,
            s.signer.name,
            s.signer.role,
            time_text(s.at)
        );
    }
    for s in &steps {
        stdoutln!("  {} {} -> {}", s.id, s.action, state_name(s.state));
    }
    Ok(())
}

fn list(state: Option<StateArg>, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let store = data.open_store(out)?;
    let permits = store
        .permits(state.map(Into::into))
        .map_err(|e| permit_store_failure(&e, out))?;
    if out.json {
        let rows: Vec<_> = permits
            .iter()
            .map(|p| {
                serde_json::json!({
                    "permit_id": p.content.permit_id,
                    "state": p.state,
                    "level": p.level(),
                    "site_id": p.content.site.site_id,
                    "valid_from": p.content.valid_from,
                    "valid_until": p.content.valid_until,
                    "welders": p.content.welders.iter().map(|w| &w.id).collect::<Vec<_>>(),
                })
            })
            .collect();
        return out.json(&serde_json::json!({ "permits": rows }));
    }
    if permits.is_empty() {
        stdoutln!("{}", out.lang.pick("（没有动火作业证）", "(no permits)"));
    }
    for p in &permits {
        stdoutln!("{}", summary_line(p, out));
    }
    Ok(())
}

fn verify(id: String, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let store = data.open_store(out)?;
    let result = store.permit(&id);
    // Who signed, against the signer directory this device holds (docs/adr/0014).
    let vouched: Option<weldguard_core::permit::PermitError> = match &result {
        Ok(Some(p)) => {
            let directory = store
                .signer_directory()
                .map_err(|e| crate::data_dir::store_failure(&e, out))?;
            let profiles = ProfileSet::builtin_shared()
                .map_err(|e| Failure::runtime("permit.profiles", e.to_string()))?;
            weldguard_core::permit::vouch(p, profiles, directory.as_ref()).err()
        }
        _ => None,
    };
    let (valid, reason, signatures) = match &result {
        Ok(Some(p)) => (
            vouched.is_none(),
            vouched.as_ref().map(|e| e as &dyn Explain),
            p.signatures
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "step": s.step, "signer": s.signer, "at": s.at,
                        "public_key": to_hex(&s.public_key),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Ok(None) => {
            return Err(explained(&PermitStoreError::NotFound(id), out, true));
        }
        Err(e @ PermitStoreError::Tampered { .. }) => (false, Some(e as &dyn Explain), Vec::new()),
        Err(e) => return Err(permit_store_failure(e, out)),
    };
    if out.json {
        return out.json(&serde_json::json!({
            "permit_id": id,
            "valid": valid,
            "signatures": signatures,
            "reason": reason.map(|e| serde_json::json!({
                "code": e.code(), "message_zh": e.message_zh(), "message_en": e.message_en()
            })),
        }));
    }
    match reason {
        None => stdoutln!(
            "{} {id}: {} {}",
            out.lang.pick("动火作业证", "permit"),
            out.lang
                .pick("签名链有效，签名数", "signature chain valid, signatures:"),
            signatures.len()
        ),
        Some(e) => stdoutln!(
            "{}{} [{}]",
            out.lang.pick("无效：", "INVALID: "),
            out.lang.pick(&e.message_zh(), &e.message_en()),
            e.code()
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
    let signer = load_signer(&key)?;
    let at = time_or_now(at.as_deref())?;
    let store = data.open_store(out)?;
    let permit = load(&store, &id, out)?;
    let text = issue_permit_code(&permit, &signer, at).map_err(|e| explained(&e, out, true))?;
    if let Some(path) = &png {
        let qr = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
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
            "permit_id": id,
            "text": text,
            "chars": text.len(),
            "png": png.map(|p| p.display().to_string()),
        }));
    }
    stdoutln!("{text}");
    Ok(())
}

fn scan(text: String, data: StateArgs, out: &Output) -> Result<(), Failure> {
    let claims = match read_permit_code(&text) {
        Ok(c) => c,
        Err(e) => {
            if out.json {
                return out.json(&serde_json::json!({
                    "valid": false,
                    "reason": { "code": e.code(), "message_zh": e.message_zh(), "message_en": e.message_en() },
                }));
            }
            stdoutln!(
                "{}{} [{}]",
                out.lang.pick("无效：", "INVALID: "),
                out.lang.pick(&e.message_zh(), &e.message_en()),
                e.code()
            );
            return Ok(());
        }
    };
    let store = data.open_store(out)?;
    let stored = store
        .permit(&claims.permit_id)
        .map_err(|e| permit_store_failure(&e, out))?;
    let matched = stored.as_ref().map(|p| check_against_permit(&claims, p));
    if out.json {
        return out.json(&serde_json::json!({
            "valid": true,
            "claims": claims,
            "stored": stored.is_some(),
            "matches_stored": matched.as_ref().map(|m| m.is_ok()),
            "mismatch": matched.and_then(|m| m.err()).map(|e| e.message_en()),
        }));
    }
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
    match matched {
        None => stdoutln!(
            "  {}",
            out.lang.pick(
                "本机无此作业证，仅能确认码未被改动",
                "not stored here: only proves the code is unaltered"
            )
        ),
        Some(Ok(())) => stdoutln!(
            "  {}",
            out.lang
                .pick("与存储的作业证一致", "matches the stored permit")
        ),
        Some(Err(e)) => stdoutln!(
            "  {}{}",
            out.lang
                .pick("与存储的作业证不符：", "DOES NOT MATCH the stored permit: "),
            out.lang.pick(&e.message_zh(), &e.message_en())
        ),
    }
    Ok(())
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
            let taken_at = time_or_now(at.as_deref())?;
            step(&data, &id, out, |_, _| {
                Ok(Action::RecordGas {
                    reading: GasReading {
                        taken_at,
                        lel_centi_pct: lel,
                        concentration_centi_pct: concentration,
                        point,
                        analyst: analyst.clone(),
                    },
                    by: Some(analyst),
                })
            })
        }
        PermitCommand::Start {
            step: s,
            continuous_monitoring,
            by,
        } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |_, _| {
                Ok(Action::Start {
                    at,
                    continuous_monitoring,
                    by,
                })
            })
        }
        PermitCommand::Suspend { step: s, reason } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |_, _| {
                Ok(Action::Suspend { at, reason })
            })
        }
        PermitCommand::Resume { step: s } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |_, _| Ok(Action::Resume { at }))
        }
        PermitCommand::Complete { step: s } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |_, _| Ok(Action::Complete { at }))
        }
        PermitCommand::Expire { step: s } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |_, _| Ok(Action::Expire { at }))
        }
        PermitCommand::Reject {
            step: s,
            by,
            role,
            reason,
        } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |p, profile| {
                let role = role.unwrap_or_else(|| approver_role(p, profile));
                Ok(Action::Reject {
                    by: actor("by", &by, role)?,
                    at,
                    reason,
                })
            })
        }
        PermitCommand::Cancel {
            step: s,
            by,
            role,
            reason,
        } => {
            let at = time_or_now(s.at.as_deref())?;
            step(&s.data, &s.id, out, |_, _| {
                Ok(Action::Cancel {
                    by: actor("by", &by, role.unwrap_or_else(|| "applicant".into()))?,
                    at,
                    reason,
                })
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
    }
}
