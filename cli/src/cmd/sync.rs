//! `weldguard enroll` and `weldguard sync`: enrol this profile's device with a platform server, then
//! push its outbox and pull registry changes. The server address and device token are kept beside
//! the profile's database in `sync.json` (readable by the owner only), and the platform's issuer keys
//! in `trust.json`: with them a sync fetches and verifies the signed revocation status list first, and
//! a first sync loads the signed registry snapshot.
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
use weldguard_core::codes::{DeviceSigner, SoftwareSigner, TrustStore, to_hex};
use weldguard_core::domain::Explain;
use weldguard_core::sync::protocol::Role;
use weldguard_core::sync::{
    DriftCheck, Progress, RetryPolicy, StatusListCheck, SyncClient, SyncError, SyncPhase,
};

use crate::data_dir::{StateArgs, store_failure};
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

fn sync_failure(error: &SyncError, out: &Output) -> Failure {
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

pub fn enroll(args: EnrollArgs, out: &Output) -> Result<(), Failure> {
    // Opening the store creates the profile folder and checks the database is usable.
    args.data.open_store(out)?;
    let client = SyncClient::new(&args.server, None, RetryPolicy::default())
        .map_err(|e| sync_failure(&e, out))?;
    let path = enrolment_path(&args.data, out)?;
    let (public_key, key_file) = match (&args.key, args.public_key.is_empty()) {
        (Some(file), _) => {
            let signer = super::permit::load_signer(file)?;
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            (to_hex(&signer.public_key()), Some(absolute))
        }
        (None, false) => (args.public_key.clone(), None),
        (None, true) => {
            let file = path.with_file_name(DEVICE_KEY_FILE);
            let signer = match super::permit::load_signer(&file) {
                Ok(signer) => signer,
                Err(_) => make_device_key(&file)?,
            };
            (to_hex(&signer.public_key()), Some(file))
        }
    };
    let answer = client
        .enrol(&args.code, &public_key, &args.device_name)
        .map_err(|e| sync_failure(&e, out))?;
    let saved = Enrolment {
        server: client.base_url().to_owned(),
        token: answer.token,
        device_id: answer.device_id,
        person: answer.person,
        role: answer.role,
        token_expires_at_ms: answer.token_expires_at_ms,
        key_file,
    };
    save_enrolment(&path, &saved).map_err(|e| {
        Failure::runtime(
            "sync.save_enrolment",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    // The platform's issuer keys, over the channel the enrolment code just opened.
    let enrolled = SyncClient::new(
        &saved.server,
        Some(saved.token.clone()),
        RetryPolicy::default(),
    )
    .map_err(|e| sync_failure(&e, out))?;
    let trust = enrolled.trust_file().map_err(|e| sync_failure(&e, out))?;
    let trust_text = serde_json::to_string_pretty(&trust)
        .map_err(|e| Failure::runtime("sync.save_trust", e.to_string()))?;
    let trust_path = path.with_file_name(TRUST_FILE);
    write_private(&trust_path, &trust_text).map_err(|e| {
        Failure::runtime(
            "sync.save_trust",
            format!("cannot write {}: {e}", trust_path.display()),
        )
    })?;
    if out.json {
        return out.json(&serde_json::json!({
            "device_id": saved.device_id,
            "person": saved.person,
            "role": saved.role,
            "server": saved.server,
            "issuer_keys": trust.keys.len(),
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
    let store = args.data.open_store(out)?;
    let server = args.server.clone().unwrap_or(saved.server.clone());
    let mut client = SyncClient::new(&server, Some(saved.token.clone()), RetryPolicy::default())
        .map_err(|e| sync_failure(&e, out))?;
    if let Some(key_file) = &saved.key_file {
        let signer = super::permit::load_signer(key_file)?;
        let device_id = saved.device_id.clone();
        let enrolment = std::sync::Mutex::new(saved.clone());
        let file = path.clone();
        client = client.with_refresh(&device_id, Arc::new(signer), move |t| {
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
        });
    }
    let trust_path = path.with_file_name(TRUST_FILE);
    if let Ok(text) = std::fs::read_to_string(&trust_path) {
        let trust = TrustStore::from_json(&text).map_err(|e| {
            Failure::input(
                "sync.bad_trust_file",
                format!("{}: {e}", trust_path.display()),
            )
        })?;
        client = client.with_trust(trust);
    }
    let lang = out.lang;
    let mut bar = ProgressBar::new(!(args.quiet || out.json), lang);
    let report = client
        .sync(&store, &mut |p| bar.show(p), &AtomicBool::new(false))
        .map_err(|e| sync_failure(&e, out));
    bar.finish();
    let report = report?;
    let drift = if args.check_drift {
        let drift = client
            .check_drift(&store, &mut |p| bar.show(p), &AtomicBool::new(false))
            .map_err(|e| sync_failure(&e, out));
        bar.finish();
        Some(drift?)
    } else {
        None
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let revocations = store
        .status_list_info()
        .map_err(|e| store_failure(&e, out))?;
    if out.json {
        return out.json(&serde_json::json!({
            "pushed": report.pushed,
            "applied": report.applied,
            "duplicate": report.duplicate,
            "rejected": report.rejected,
            "pulled_changes": report.pulled_changes,
            "pages": report.pages,
            "refetches": report.refetches,
            "retries": report.retries,
            "token_refreshes": report.token_refreshes,
            "snapshot_chunks": report.snapshot_chunks,
            "pulled_permits": report.pulled_permits,
            "permits_changed": report.permits_changed,
            "refetched_rows": report.refetched_rows,
            "status_list": status_list_json(report.status_list),
            "revocation_data_age_secs": revocations.as_ref().map(|r| r.age_secs(now)),
            "drift": drift.as_ref().map(drift_json),
        }));
    }
    stdoutln!(
        "{}: {} ({} {}, {} {}, {} {}); {}: {}; {}: {}",
        lang.pick("上传", "pushed"),
        report.pushed,
        report.applied,
        lang.pick("已接收", "applied"),
        report.duplicate,
        lang.pick("重复", "duplicate"),
        report.rejected,
        lang.pick("被拒", "rejected"),
        lang.pick("名录变更", "registry changes"),
        report.pulled_changes,
        lang.pick("作业证更新", "permits updated"),
        report.permits_changed
    );
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
    if let Some(drift) = &drift {
        let text = match drift {
            DriftCheck::InSync => lang
                .pick("名录校验一致", "registry matches the platform")
                .to_owned(),
            DriftCheck::NotComparable => lang
                .pick(
                    "名录校验跳过：平台数据刚有变化",
                    "drift check skipped: the platform changed meanwhile",
                )
                .to_owned(),
            DriftCheck::Refetched {
                collections,
                report,
            } => format!(
                "{} {}; {} {}, {} {}",
                lang.pick(
                    "名录与平台不一致，已重新下载",
                    "registry drifted, refetched"
                ),
                collections
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                report.refetched_rows,
                lang.pick("行", "rows"),
                report.pulled_changes,
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

fn status_list_json(check: StatusListCheck) -> serde_json::Value {
    match check {
        StatusListCheck::NotChecked => serde_json::json!({"outcome": "not_checked"}),
        StatusListCheck::Updated { sequence } => {
            serde_json::json!({"outcome": "updated", "sequence": sequence})
        }
        StatusListCheck::Unchanged { sequence } => {
            serde_json::json!({"outcome": "unchanged", "sequence": sequence})
        }
        StatusListCheck::Older { held, received } => {
            serde_json::json!({"outcome": "older_refused", "held": held, "received": received})
        }
    }
}

fn drift_json(drift: &DriftCheck) -> serde_json::Value {
    match drift {
        DriftCheck::InSync => serde_json::json!({"outcome": "in_sync"}),
        DriftCheck::NotComparable => serde_json::json!({"outcome": "not_comparable"}),
        DriftCheck::Refetched {
            collections,
            report,
        } => serde_json::json!({
            "outcome": "refetched",
            "collections": collections,
            "refetched_rows": report.refetched_rows,
            "pulled_changes": report.pulled_changes,
        }),
    }
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
