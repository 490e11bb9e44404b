//! `weldguard enroll` and `weldguard sync`: thin over the application layer's enrolment and sync
//! services ([`weldguard_core::app::enrol`], [`weldguard_core::app::sync`]), the calls a phone
//! makes. The server address and device token are kept beside the profile's database in
//! `sync.json` (readable by the owner only); the platform's issuer keys are kept in the profile's
//! database (the trust anchor saved at enrolment, extended by rotations a sync verifies) and copied
//! to `trust.json` for the commands that take `--trust`. With them a sync fetches and verifies the
//! signed revocation status list first, and a first sync loads the signed registry snapshot. A
//! profile enrolled by an older version has only `trust.json`: it is handed in as the anchor.
//!
//! Device tokens expire (24 h by default). `enroll` registers the public part of a device key:
//! the file given with `--key` (from `weldguard permit key`), or a new `device-key.json` beside
//! `sync.json`; `sync` then refreshes an expired token by signing the server's nonce with that key
//! and rewrites `sync.json` (a temporary file renamed over it) with the new token at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use serde::{Deserialize, Serialize};
use weldguard_core::app::Device;
use weldguard_core::app::enrol::{EnrolRequest, enrol, public_key_from_hex};
use weldguard_core::app::sync::{DriftOutcome, SyncRequest, TokenRefresh, sync as app_sync};
use weldguard_core::codes::{DeviceSigner, SoftwareSigner, TrustStore, to_hex};
use weldguard_core::domain::Explain;
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{Progress, SyncError, SyncPhase};

use crate::data_dir::{StateArgs, app_failure, store_failure};
use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The platform server, e.g. http://127.0.0.1:8787
    #[arg(long, value_name = "URL")]
    server: String,
    /// The enrolment code an administrator made for you.
    #[arg(long)]
    code: String,
    /// A label for this device, shown to administrators.
    #[arg(long, default_value = "weldguard-cli")]
    device_name: String,
    /// The device key's public part (hex), when the key is kept elsewhere (this profile then
    /// cannot refresh its token by itself).
    #[arg(long, default_value = "", conflicts_with = "key")]
    public_key: String,
    /// The device key file (from `weldguard permit key`) to enrol with; `sync` refreshes the
    /// token with it. Without this or `--public-key`, a new key is made beside `sync.json`.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    #[command(flatten)]
    data: StateArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Use this server instead of the one given at enrolment.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Afterwards compare the registry cache with the platform's checksums, refetching on drift.
    #[arg(long)]
    check_drift: bool,
    #[command(flatten)]
    data: StateArgs,
}

/// What `enroll` keeps for `sync`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enrolment {
    server: String,
    token: String,
    device_id: String,
    person: String,
    role: Role,
    /// When `token` expires (Unix ms); absent: never, or not told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_expires_at_ms: Option<i64>,
    /// The device key file that refreshes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_file: Option<PathBuf>,
}

/// The key file made at enrolment when none is given, beside `sync.json`.
const DEVICE_KEY_FILE: &str = "device-key.json";

/// Write a new device key file (the format of `weldguard permit key`), readable by the owner.
fn make_device_key(path: &Path) -> Result<SoftwareSigner, Failure> {
    let signer =
        SoftwareSigner::generate().map_err(|e| Failure::runtime("keys.generate", e.to_string()))?;
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "format": "weldguard/device-key/1",
        "secret": to_hex(&signer.secret()),
        "public_key": to_hex(&signer.public_key()),
    }))
    .map_err(|e| Failure::runtime("output.json", e.to_string()))?;
    write_private(path, &text).map_err(|e| {
        Failure::runtime(
            "sync.save_key",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    Ok(signer)
}

fn save_enrolment(path: &Path, saved: &Enrolment) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(saved).map_err(std::io::Error::other)?;
    write_private(path, &text)
}

fn enrolment_path(data: &StateArgs, out: &Output) -> Result<PathBuf, Failure> {
    let db = weldguard_core::store::profile_db_path(&data.data_dir()?, &data.profile)
        .map_err(|e| store_failure(&e, out))?;
    Ok(db.with_file_name("sync.json"))
}

pub(crate) fn sync_failure(error: &SyncError, out: &Output) -> Failure {
    let message = out
        .lang
        .pick(&error.message_zh(), &error.message_en())
        .to_owned();
    match error {
        SyncError::InvalidAddress(_)
        | SyncError::Refused { .. }
        | SyncError::Unauthorized(_)
        | SyncError::TokenExpired(_)
        | SyncError::RefreshFailed { .. } => Failure::input(error.code(), message),
        _ => Failure::runtime(error.code(), message),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Keep `trust.json` beside `sync.json` the same as the profile's trust (other commands and older
/// versions read it).
fn write_trust_file(path: &Path, trust: &TrustStore) -> Result<(), Failure> {
    let trust_path = path.with_file_name(TRUST_FILE);
    write_private(&trust_path, &trust.to_json()).map_err(|e| {
        Failure::runtime(
            "sync.save_trust",
            format!("cannot write {}: {e}", trust_path.display()),
        )
    })
}

pub fn enroll(args: EnrollArgs, out: &Output) -> Result<(), Failure> {
    // Opening the store creates the profile folder and checks the database is usable.
    let device =
        Device::with_store(args.data.open_store(out)?).map_err(|e| app_failure(&e, out))?;
    let path = enrolment_path(&args.data, out)?;
    let (public_key, key_file) = match (&args.key, args.public_key.is_empty()) {
        (Some(file), _) => {
            let signer = super::permit::load_signer(file)?;
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            (signer.public_key(), Some(absolute))
        }
        (None, false) => (
            public_key_from_hex(&args.public_key).map_err(|e| app_failure(&e, out))?,
            None,
        ),
        (None, true) => {
            let file = path.with_file_name(DEVICE_KEY_FILE);
            let signer = match super::permit::load_signer(&file) {
                Ok(signer) => signer,
                Err(_) => make_device_key(&file)?,
            };
            (signer.public_key(), Some(file))
        }
    };
    let request = EnrolRequest {
        server_url: args.server.clone(),
        code: args.code.clone(),
        public_key,
        device_name: args.device_name.clone(),
    };
    let enrolled = enrol(&device, &request, unix_now()).map_err(|e| app_failure(&e, out))?;
    let saved = Enrolment {
        server: enrolled.server.clone(),
        token: enrolled.token.clone(),
        device_id: enrolled.device_id.clone(),
        person: enrolled.person.clone(),
        role: enrolled.role,
        token_expires_at_ms: enrolled.token_expires_at_ms,
        key_file,
    };
    save_enrolment(&path, &saved).map_err(|e| {
        Failure::runtime(
            "sync.save_enrolment",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    write_trust_file(&path, &device.trust())?;
    if out.json {
        return out.json(&serde_json::json!({
            "device_id": saved.device_id,
            "person": saved.person,
            "person_id": enrolled.person_id,
            "permit_roles": enrolled.permit_roles,
            "role": saved.role,
            "server": saved.server,
            "issuer_keys": enrolled.issuer_keys.len(),
            "issuer_kids": enrolled.issuer_keys,
            "token_expires_at_ms": saved.token_expires_at_ms,
            "can_refresh": saved.key_file.is_some(),
        }));
    }
    stdoutln!(
        "{} {} ({}, {})",
        out.lang.pick("已注册设备", "enrolled device"),
        saved.device_id,
        saved.person,
        saved.role.as_str()
    );
    Ok(())
}

/// The platform's trust file, beside `sync.json`.
const TRUST_FILE: &str = "trust.json";

/// Write `text` to a new owner-only file and rename it over `path`: readers see the old file or the
/// new one, never a part ([`crate::private::replace`]).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    crate::private::replace(path, text)
}

pub fn sync(args: SyncArgs, out: &Output) -> Result<(), Failure> {
    let path = enrolment_path(&args.data, out)?;
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Failure::input(
            "sync.not_enrolled",
            out.lang.pick(
                "本设备尚未注册，请先运行 weldguard enroll",
                "this device is not enrolled yet; run weldguard enroll first",
            ),
        )
    })?;
    let saved: Enrolment = serde_json::from_str(&text).map_err(|e| {
        Failure::input(
            "sync.bad_enrolment_file",
            format!("{}: {e}", path.display()),
        )
    })?;
    let device =
        Device::with_store(args.data.open_store(out)?).map_err(|e| app_failure(&e, out))?;
    let now = unix_now();
    // A profile enrolled before its trust was kept in the database: its trust.json is the anchor
    // (as a phone shell's set_trust); keys the profile holds already are not changed by it.
    let trust_path = path.with_file_name(TRUST_FILE);
    if let Ok(text) = std::fs::read_to_string(&trust_path) {
        let trust = TrustStore::from_json(&text).map_err(|e| {
            Failure::input(
                "sync.bad_trust_file",
                format!("{}: {e}", trust_path.display()),
            )
        })?;
        device
            .adopt_trust(&trust, now.saturating_mul(1000))
            .map_err(|e| app_failure(&e, out))?;
    }
    let server = args.server.clone().unwrap_or(saved.server.clone());
    let mut request = SyncRequest::new(server, saved.token.clone());
    request.check_drift = args.check_drift;
    if let Some(key_file) = &saved.key_file {
        let signer = super::permit::load_signer(key_file)?;
        let enrolment = std::sync::Mutex::new(saved.clone());
        let file = path.clone();
        request.refresh = Some(TokenRefresh {
            device_id: saved.device_id.clone(),
            key: Arc::new(signer),
            on_token: Box::new(move |t| {
                // Saved at once: the previous token no longer works.
                let mut e = enrolment
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                e.token = t.token.clone();
                e.token_expires_at_ms = t.expires_at_ms;
                if let Err(err) = save_enrolment(&file, &e) {
                    stderrln!(
                        "weldguard: cannot save the refreshed token to {}: {err} \
                         (the next sync refreshes again)",
                        file.display()
                    );
                }
            }),
        });
    }
    let lang = out.lang;
    let mut bar = ProgressBar::new(!(args.quiet || out.json), lang);
    let summary = app_sync(
        &device,
        request,
        now,
        &mut |p| bar.show(p),
        &AtomicBool::new(false),
    )
    .map_err(|e| app_failure(&e, out));
    bar.finish();
    let summary = summary?;
    if summary.trust.changed() {
        write_trust_file(&path, &device.trust())?;
    }
    if out.json {
        return out.json(&summary);
    }
    stdoutln!(
        "{}: {} ({} {}, {} {}, {} {}); {}: {}; {}: {}",
        lang.pick("上传", "pushed"),
        summary.pushed,
        summary.applied,
        lang.pick("已接收", "applied"),
        summary.duplicate,
        lang.pick("重复", "duplicate"),
        summary.rejected,
        lang.pick("被拒", "rejected"),
        lang.pick("名录变更", "registry changes"),
        summary.pulled_changes,
        lang.pick("作业证更新", "permits updated"),
        summary.permits_changed
    );
    for permit in &summary.changed_permits {
        stdoutln!("  {} → {}", permit.permit_id, permit.state);
    }
    if !summary.trust.added.is_empty() {
        stdoutln!(
            "{}: {}",
            lang.pick("新信任的签发密钥", "issuer keys now trusted"),
            summary.trust.added.join(", ")
        );
    }
    if !summary.trust.refused.is_empty() {
        stdoutln!(
            "{}: {}",
            lang.pick(
                "未被信任的签发密钥（无已信任密钥的背书）",
                "issuer keys not trusted (no endorsement by a trusted key)"
            ),
            summary
                .trust
                .refused
                .iter()
                .map(|r| format!("{} ({})", r.kid, r.code))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let revocations = device
        .store()
        .status_list_info()
        .map_err(|e| store_failure(&e, out))?;
    match &revocations {
        Some(info) => stdoutln!(
            "{} {} ({} {}, {})",
            lang.pick("吊销名单", "revocation list"),
            info.sequence,
            info.entries,
            lang.pick("条", "entries"),
            age_text(info.age_secs(now), lang),
        ),
        None => stdoutln!(
            "{}",
            lang.pick(
                "吊销名单：从未更新（需要平台信任文件 trust.json）",
                "revocation list: never updated (needs the platform's trust.json)"
            )
        ),
    }
    if let Some(drift) = &summary.drift {
        let text = match drift {
            DriftOutcome::InSync => lang
                .pick("名录校验一致", "registry matches the platform")
                .to_owned(),
            DriftOutcome::NotComparable => lang
                .pick(
                    "名录校验跳过：平台数据刚有变化",
                    "drift check skipped: the platform changed meanwhile",
                )
                .to_owned(),
            DriftOutcome::Refetched {
                collections,
                refetched_rows,
                pulled_changes,
            } => format!(
                "{} {}; {} {}, {} {}",
                lang.pick(
                    "名录与平台不一致，已重新下载",
                    "registry drifted, refetched"
                ),
                collections.join(", "),
                refetched_rows,
                lang.pick("行", "rows"),
                pulled_changes,
                lang.pick("条更新", "changes since"),
            ),
        };
        stdoutln!("{text}");
    }
    Ok(())
}

fn age_text(secs: i64, lang: crate::output::Lang) -> String {
    let (n, zh, en) = if secs < 3600 {
        (secs / 60, "分钟前", "min ago")
    } else if secs < 2 * 86_400 {
        (secs / 3600, "小时前", "h ago")
    } else {
        (secs / 86_400, "天前", "days ago")
    };
    format!("{n} {}", lang.pick(zh, en))
}

/// A one-line progress bar on a terminal (redrawn in place), plain lines otherwise.
struct ProgressBar {
    enabled: bool,
    terminal: bool,
    lang: crate::output::Lang,
    drawn: bool,
}

impl ProgressBar {
    fn new(enabled: bool, lang: crate::output::Lang) -> Self {
        use std::io::IsTerminal;
        Self {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            lang,
            drawn: false,
        }
    }

    fn show(&mut self, p: Progress) {
        if !self.enabled {
            return;
        }
        let phase = match p.phase {
            SyncPhase::Push => self.lang.pick("上传记录", "push"),
            SyncPhase::Pull => self.lang.pick("下载名录", "pull"),
        };
        let counts = match p.total {
            Some(total) => format!("{}/{total}", p.done),
            None => p.done.to_string(),
        };
        if !self.terminal {
            stderrln!("{phase}: {counts}");
            return;
        }
        const WIDTH: u64 = 30;
        let bar = match p.total {
            Some(total) if total > 0 => {
                let filled = (p.done.min(total) * WIDTH / total) as usize;
                format!(
                    "[{}{}] {:>3}%",
                    "#".repeat(filled),
                    "-".repeat(WIDTH as usize - filled),
                    p.done.min(total) * 100 / total
                )
            }
            _ => format!("[{}]", "?".repeat(WIDTH as usize)),
        };
        stderr!("\r\x1b[2K{phase} {bar} {counts}");
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            stderrln!();
            self.drawn = false;
        }
    }
}
